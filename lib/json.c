// SPDX-License-Identifier: Apache-2.0
/* JSON helpers on json-c: strict parsing, plain output, path access. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sluice/json.h"

#define SL_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct json_object *sl_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t used;

	if (err && errlen)
		err[0] = '\0';
	if (len > INT32_MAX) {
		if (err)
			snprintf(err, errlen, "body too large");
		errno = EINVAL;
		return NULL;
	}
	if (memchr(buf, '\0', len)) {
		if (err)
			snprintf(err, errlen, "NUL byte in JSON text");
		errno = EINVAL;
		return NULL;
	}
	tok = json_tokener_new_ex(SL_JSON_MAX_DEPTH);
	if (!tok) {
		errno = ENOMEM;
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue && len) {
		/* A top-level number or literal is only complete once the tokener
		 * sees the end of input; a NUL byte tells it so. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		if (jerr == json_tokener_success)
			goto done;
		used = len;
	}
	if (jerr == json_tokener_continue) {
		if (err)
			snprintf(err, errlen, "unexpected end of JSON input");
		json_object_put(obj);
		obj = NULL;
	} else if (jerr != json_tokener_success) {
		if (err)
			snprintf(err, errlen, "at offset %zu: %s", used,
				 json_tokener_error_desc(jerr));
		obj = NULL;
	} else {
		for (size_t i = used; i < len; i++) {
			if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t') {
				if (err)
					snprintf(err, errlen,
						 "at offset %zu: trailing data after JSON value",
						 i);
				json_object_put(obj);
				obj = NULL;
				break;
			}
		}
	}
done:
	if (!obj && jerr == json_tokener_success && err)
		snprintf(err, errlen, "the value is JSON null");
	json_tokener_free(tok);
	if (!obj)
		errno = EINVAL;
	return obj;
}

const char *sl_json_str(struct json_object *obj, size_t *len)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(obj, SL_JSON_FLAGS, &n);

	if (len)
		*len = n;
	return s;
}

void sl_json_append(struct sl_buf *b, struct json_object *obj)
{
	size_t n;
	const char *s = sl_json_str(obj, &n);

	sl_buf_append(b, s, n);
}

struct json_object *sl_json_get(const struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	if (!obj || !json_object_is_type(obj, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

struct json_object *sl_json_path(const struct json_object *obj, ...)
{
	va_list ap;
	const char *key;
	const struct json_object *cur = obj;

	va_start(ap, obj);
	while (cur && (key = va_arg(ap, const char *)))
		cur = sl_json_get(cur, key);
	va_end(ap);
	return (struct json_object *)cur;
}

const char *sl_json_get_str(const struct json_object *obj, const char *key)
{
	struct json_object *v = sl_json_get(obj, key);

	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool sl_json_get_int(const struct json_object *obj, const char *key, int64_t *out)
{
	struct json_object *v = sl_json_get(obj, key);

	if (!v || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

struct json_object *sl_json_ensure_obj(struct json_object *obj, const char *key)
{
	struct json_object *v = sl_json_get(obj, key);

	if (v && json_object_is_type(v, json_type_object))
		return v;
	v = json_object_new_object();
	if (!v)
		return NULL;
	if (json_object_object_add(obj, key, v)) {
		json_object_put(v);
		return NULL;
	}
	return v;
}

int sl_json_set_str(struct json_object *obj, const char *key, const char *val)
{
	struct json_object *v = json_object_new_string(val);

	if (!v || json_object_object_add(obj, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int sl_json_set_int(struct json_object *obj, const char *key, int64_t val)
{
	struct json_object *v = json_object_new_int64(val);

	if (!v || json_object_object_add(obj, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

struct json_object *sl_json_clone(struct json_object *obj)
{
	struct json_object *dst = NULL;

	if (!obj)
		return NULL;
	if (json_object_deep_copy(obj, &dst, NULL))
		return NULL;
	return dst;
}

bool sl_json_equal(struct json_object *a, struct json_object *b)
{
	/* json_object_equal compares objects member-wise, order-insensitive. */
	return json_object_equal(a, b) != 0;
}
