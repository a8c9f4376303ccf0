// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzz target for the API server's request decoder path: the bytes of a
 * request body go through sl_json_parse() and then, for every kind the server
 * serves, through what a create and an update do with them: default_object(),
 * validate_object() without and with an `old` object (the defaulted input
 * itself, as for a no-op update), and table_cells() for `kubectl get`.
 *
 * Beyond "no crash, no leak, no UB", it checks what callers rely on:
 * defaulting returns 0 or -ENOMEM and is idempotent (defaulting a defaulted
 * object changes nothing, so a stored object re-defaulted on update is not a
 * spurious change); validation returns the number of causes it appended and
 * every cause has a known reason and a message; an object valid on create
 * is also valid as an unchanged update (immutability rules must not fire when
 * nothing changed, so a stored object can always be written back); a table
 * row has one cell per column.
 * A broken invariant aborts so libFuzzer and the corpus replay report it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/json.h"

/* Relative paths: the libFuzzer build has no -I. (see Makefile FUZZ_CFLAGS). */
#include "../../control/table.h"
#include "../../control/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	const char *kind;
	bool namespaced;
} kinds[] = {
	{"Namespace", false},	 {"Pod", true},	      {"Service", true},       {"Endpoints", true},
	{"EndpointSlice", true}, {"Node", false},     {"NetworkPolicy", true}, {"Event", true},
	{"Lease", true},	 {"ConfigMap", true},
};

#define FUZZ_CHECK(cond, kind, what)                                              \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "fuzz_api_object: %s: %s\n", kind, what); \
			abort();                                                  \
		}                                                                 \
	} while (0)

static bool known_reason(const char *r)
{
	static const char *const reasons[] = {
		CAUSE_INVALID,	 CAUSE_REQUIRED, CAUSE_NOT_SUPPORTED, CAUSE_DUPLICATE,
		CAUSE_FORBIDDEN, CAUSE_TOO_LONG, CAUSE_UNKNOWN_FIELD, CAUSE_TOO_MANY};

	for (size_t i = 0; r && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (!strcmp(r, reasons[i]))
			return true;
	return false;
}

/* Validates obj (against old when non-NULL) and checks the causes' shape.
 * Returns the causes (caller finis). */
static void fuzz_validate(const char *kind, bool namespaced, struct json_object *obj,
			  struct json_object *old, struct api_causes *out)
{
	int n = validate_object(kind, namespaced, obj, old, out);

	FUZZ_CHECK(n >= 0 && (size_t)n == out->n, kind, "return value != causes appended");
	for (size_t i = 0; i < out->n; i++) {
		FUZZ_CHECK(known_reason(out->v[i].reason), kind, "cause with an unknown reason");
		FUZZ_CHECK(out->v[i].field != NULL, kind, "cause without a field");
		FUZZ_CHECK(out->v[i].message && out->v[i].message[0], kind,
			   "cause without a message");
	}
}

/* True when every (field, reason) of `sub` also appears in `super`; names the
 * first that does not on stderr. */
static bool causes_subset(const struct api_causes *sub, const struct api_causes *super)
{
	for (size_t i = 0; i < sub->n; i++) {
		bool found = false;
		for (size_t j = 0; j < super->n && !found; j++)
			found = !strcmp(sub->v[i].field, super->v[j].field) &&
				!strcmp(sub->v[i].reason, super->v[j].reason);
		if (!found) {
			fprintf(stderr, "fuzz_api_object: update-only cause: %s: %s: %s\n",
				sub->v[i].field, sub->v[i].reason, sub->v[i].message);
			return false;
		}
	}
	return true;
}

static void fuzz_kind(const char *kind, bool namespaced, const struct json_object *doc)
{
	struct json_object *obj = sl_json_clone((struct json_object *)doc), *again = NULL;
	struct json_object *old = NULL, *cells, *cols;
	struct api_causes create = {0}, update = {0};
	int rc;

	if (!obj)
		return;
	rc = default_object(kind, obj, NULL);
	FUZZ_CHECK(rc == 0 || rc == -ENOMEM, kind, "default_object: unexpected error");
	if (rc)
		goto out;
	again = sl_json_clone(obj);
	if (again && default_object(kind, again, NULL) == 0)
		FUZZ_CHECK(sl_json_equal(again, obj), kind, "defaulting is not idempotent");

	fuzz_validate(kind, namespaced, obj, NULL, &create);

	/* An update that changes nothing: the stored object is the same one. */
	old = sl_json_clone(obj);
	if (old) {
		rc = default_object(kind, obj, old);
		FUZZ_CHECK(rc == 0 || rc == -ENOMEM, kind, "default_object(old): unexpected error");
		fuzz_validate(kind, namespaced, obj, old, &update);
		/* Only for valid objects: on a wrong addressType, say, a create
		 * answers that alone (as upstream does) while an update, where
		 * addressType is merely unchanged, goes on to check the rest. */
		if (rc == 0 && create.n == 0 && sl_json_equal(obj, old))
			FUZZ_CHECK(causes_subset(&update, &create), kind,
				   "a valid object fails validation as an unchanged update");
	}

	if (json_object_is_type(obj, json_type_object)) {
		cells = table_cells(kind, obj, (time_t)1715677964);
		cols = table_columns(kind);
		if (cells && cols)
			FUZZ_CHECK(json_object_array_length(cells) ==
					   json_object_array_length(cols),
				   kind, "table row and columns differ in length");
		json_object_put(cells);
		json_object_put(cols);
	}
out:
	api_causes_fini(&create);
	api_causes_fini(&update);
	json_object_put(again);
	json_object_put(old);
	json_object_put(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *doc = sl_json_parse((const char *)data, size, NULL, 0), *copy;

	if (!doc)
		return 0;
	/* json-c accepts NaN; NaN != NaN, so equality-based checks would lie. */
	copy = sl_json_clone(doc);
	if (!copy || !sl_json_equal(doc, copy)) {
		json_object_put(copy);
		json_object_put(doc);
		return 0;
	}
	json_object_put(copy);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		fuzz_kind(kinds[i].kind, kinds[i].namespaced, doc);
	json_object_put(doc);
	return 0;
}
