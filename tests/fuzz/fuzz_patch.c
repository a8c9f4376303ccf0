// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzz target for lib/patch.c. The input is "<document>\0<patch>" (no NUL:
 * the first half is the document, the second the patch); both are parsed with
 * sl_json_parse and fed to all three patch formats, strategic merge with the
 * built-in merge keys and with none. Checked on every input, aborting so
 * libFuzzer and the corpus replay in make test report it:
 *  - neither input changes;
 *  - a failure other than ENOMEM comes with a message;
 *  - a result serialises to text sl_json_parse accepts (depth limit kept);
 *  - merge patch is idempotent: merge(merge(d, p), p) == merge(d, p).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/json.h"
#include "sluice/patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, what)                                     \
	do {                                                       \
		if (!(cond)) {                                     \
			fprintf(stderr, "fuzz_patch: %s\n", what); \
			abort();                                   \
		}                                                  \
	} while (0)

/* A result must be storable: its text parses back under the same limits. */
static void fuzz_check_result(struct json_object *res)
{
	struct json_object *back;
	const char *s;
	size_t n;

	if (!res)
		return;
	s = sl_json_str(res, &n);
	back = sl_json_parse(s, n, NULL, 0);
	FUZZ_CHECK(back, "result does not parse back");
	FUZZ_CHECK(sl_json_equal(back, res), "result changes through text");
	json_object_put(back);
}

/* Does any object member of o carry a strategic merge directive name? */
static bool fuzz_has_directive(struct json_object *o, int depth)
{
	if (depth > 200)
		return false;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (fuzz_has_directive(json_object_array_get_idx(o, i), depth + 1))
				return true;
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			if (!strcmp(k, "$patch") || !strcmp(k, "$retainKeys") ||
			    !strncmp(k, "$setElementOrder/", 17) ||
			    !strncmp(k, "$deleteFromPrimitiveList/", 25) ||
			    fuzz_has_directive(v, depth + 1))
				return true;
		}
	}
	return false;
}

static void fuzz_check_failure(int rc, const char *err)
{
	if (rc && rc != -ENOMEM)
		FUZZ_CHECK(err[0], "failure without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *nul = memchr(data, 0, size);
	size_t dlen = nul ? (size_t)(nul - buf) : size / 2;
	size_t poff = nul ? dlen + 1 : dlen;
	struct json_object *doc, *patch, *doc0, *patch0, *res = NULL, *again = NULL;
	char err[256];
	int rc;

	doc = sl_json_parse(buf, dlen, NULL, 0);
	patch = sl_json_parse(buf + poff, size - poff, NULL, 0);
	doc0 = sl_json_clone(doc);
	patch0 = sl_json_clone(patch);

	err[0] = '\0';
	rc = sl_patch_merge_ex(doc, patch, &res, err, sizeof(err));
	fuzz_check_failure(rc, err);
	if (!rc) {
		fuzz_check_result(res);
		if (!sl_patch_merge_ex(res, patch, &again, err, sizeof(err)))
			FUZZ_CHECK(sl_json_equal(again, res), "merge patch is not idempotent");
		json_object_put(again);
	}
	json_object_put(res);
	res = NULL;

	rc = sl_patch_json_ex(doc, patch, &res, err, sizeof(err));
	fuzz_check_failure(rc, err);
	if (!rc)
		fuzz_check_result(res);
	json_object_put(res);

	for (int keys = 0; keys < 2; keys++) {
		res = sl_patch_strategic(doc, patch, keys ? sl_smp_builtin_merge_key : NULL, NULL,
					 err, sizeof(err));
		if (!res)
			fuzz_check_failure(-errno, err);
		fuzz_check_result(res);
		/* Only a directive name already in the document may survive. */
		if (res && !fuzz_has_directive(doc, 0))
			FUZZ_CHECK(!fuzz_has_directive(res, 0),
				   "directive in the strategic result");
		json_object_put(res);
	}

	FUZZ_CHECK(sl_json_equal(doc, doc0) && sl_json_equal(patch, patch0), "input modified");
	json_object_put(doc);
	json_object_put(patch);
	json_object_put(doc0);
	json_object_put(patch0);
	return 0;
}
