/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON helpers on json-c. Objects are thread-confined (json-c refcounts are
 * not atomic in Debian's build): serialise once, share the bytes.
 *
 * Serialisation always uses JSON_C_TO_STRING_PLAIN | NOSLASHESCAPE so output
 * matches what Kubernetes clients expect ("a/b", not "a\/b").
 */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sluice/buf.h"

/* Deepest nesting accepted from outside input. */
#define SL_JSON_MAX_DEPTH 64

/*
 * Parses exactly one JSON value from buf[0..len) (no NUL needed). Trailing
 * non-whitespace, nesting deeper than SL_JSON_MAX_DEPTH and embedded NULs are
 * errors. On failure returns NULL and, if err is non-NULL, writes a one-line
 * reason ("at offset 17: unexpected character"). Caller owns the result.
 */
struct json_object *sl_json_parse(const char *buf, size_t len, char *err, size_t errlen);

/* Plain serialisation; the string is owned by obj (valid until it changes). */
const char *sl_json_str(struct json_object *obj, size_t *len);

/* Appends obj's plain serialisation to b. */
void sl_json_append(struct sl_buf *b, struct json_object *obj);

/* Member lookup that tolerates NULL and non-objects. Borrowed result. */
struct json_object *sl_json_get(const struct json_object *obj, const char *key);

/*
 * Walks a path of member names, e.g. sl_json_path(o, "metadata", "name", (char *)NULL).
 * Returns NULL if any step is missing or not an object. Borrowed result.
 */
struct json_object *sl_json_path(const struct json_object *obj, ...) __attribute__((sentinel));

/* String member or NULL when absent / not a string. Borrowed. */
const char *sl_json_get_str(const struct json_object *obj, const char *key);

/* Integer member; returns false when absent or not an integer. */
bool sl_json_get_int(const struct json_object *obj, const char *key, int64_t *out);

/* Returns obj[key], creating an empty object there if absent or not an object. */
struct json_object *sl_json_ensure_obj(struct json_object *obj, const char *key);

/* obj[key] = string (copied). Returns 0 or -ENOMEM. */
int sl_json_set_str(struct json_object *obj, const char *key, const char *val);
int sl_json_set_int(struct json_object *obj, const char *key, int64_t val);

/* Deep copy; NULL on allocation failure. Caller owns. */
struct json_object *sl_json_clone(struct json_object *obj);

/* Structural equality (object member order ignored). */
bool sl_json_equal(struct json_object *a, struct json_object *b);

#endif
