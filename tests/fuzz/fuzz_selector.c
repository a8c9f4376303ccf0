// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for lib/selector.c. The input (cut at the first NUL, as a
 * C string arriving from a URL query would be) goes to both the label and
 * the field selector parsers; input starting with '{' also goes through
 * sl_labelsel_from_json. Besides ASan/UBSan findings it checks the
 * invariants the API server relies on, and abort()s when one breaks so the
 * fuzzer records the input:
 *   - a rejected input always comes with an error message;
 *   - parse(string(sel)) succeeds and equals sel, and string() is a fixed
 *     point (label selectors from either form, and field selectors);
 *   - sl_labelsel_match() and sl_labelsel_match_json() agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/json.h"
#include "sluice/selector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool cond)
{
	if (!cond)
		abort();
}

/* Labels built from the selector itself so requirements actually meet
 * matching keys: key -> its first value (or "1"), first key wins. */
static void check_match_forms(const struct sl_labelsel *sel)
{
	struct sl_label *labels = calloc(sel->n_reqs + 1, sizeof(*labels));
	struct json_object *obj = json_object_new_object();
	size_t n = 0;

	must(labels && obj);
	for (size_t i = 0; i < sel->n_reqs; i++) {
		const struct sl_sel_req *r = &sel->reqs[i];
		bool dup = false;

		/* Every other requirement leaves its key out, so absence is
		 * exercised too. */
		if (i % 3 == 2)
			continue;
		for (size_t j = 0; j < n; j++)
			dup = dup || !strcmp(labels[j].key, r->key);
		if (dup)
			continue;
		labels[n].key = r->key;
		labels[n].value = r->n_values ? r->values[0] : "1";
		json_object_object_add(obj, r->key, json_object_new_string(labels[n].value));
		n++;
	}
	must(sl_labelsel_match(sel, labels, n) == sl_labelsel_match_json(sel, obj));
	json_object_put(obj);
	free(labels);
}

static void check_label_round_trip(const struct sl_labelsel *sel)
{
	char err[512] = "";
	char *s = sl_labelsel_string(sel), *s2;
	struct sl_labelsel *back;

	must(s != NULL);
	back = sl_labelsel_parse(s, err, sizeof(err));
	must(back != NULL);
	must(sl_labelsel_equal(sel, back));
	s2 = sl_labelsel_string(back);
	must(s2 && !strcmp(s, s2));
	check_match_forms(sel);
	free(s);
	free(s2);
	sl_labelsel_free(back);
}

static void fuzz_labels(const char *s)
{
	char err[512] = "";
	struct sl_labelsel *sel = sl_labelsel_parse(s, err, sizeof(err));

	if (!sel) {
		must(err[0] != '\0');
		return;
	}
	check_label_round_trip(sel);
	sl_labelsel_free(sel);
}

static void fuzz_json(const char *s, size_t len)
{
	char err[512] = "";
	struct json_object *obj = sl_json_parse(s, len, NULL, 0);
	struct sl_labelsel *sel;

	if (!obj)
		return;
	sel = sl_labelsel_from_json(obj, "spec.selector", err, sizeof(err));
	if (sel)
		check_label_round_trip(sel);
	else
		must(err[0] != '\0');
	sl_labelsel_free(sel);
	/* The same object as a plain label map (Service.spec.selector). */
	err[0] = '\0';
	sel = sl_labelsel_from_set_json(obj, "spec.selector", err, sizeof(err));
	if (sel)
		check_label_round_trip(sel);
	else
		must(err[0] != '\0');
	sl_labelsel_free(sel);
	json_object_put(obj);
}

static void fuzz_fields(const char *s)
{
	char err[512] = "";
	struct sl_fieldsel *sel = sl_fieldsel_parse(s, err, sizeof(err)), *back;
	char *str, *str2;

	if (!sel) {
		must(err[0] != '\0');
		return;
	}
	str = sl_fieldsel_string(sel);
	must(str != NULL);
	back = sl_fieldsel_parse(str, err, sizeof(err));
	must(back != NULL);
	must(sl_fieldsel_equal(sel, back));
	str2 = sl_fieldsel_string(back);
	must(str2 && !strcmp(str, str2));
	free(str);
	free(str2);
	sl_fieldsel_free(back);
	sl_fieldsel_free(sel);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = strndup((const char *)data, size);

	if (!s)
		return 0;
	fuzz_labels(s);
	fuzz_fields(s);
	if (s[0] == '{')
		fuzz_json(s, strlen(s));
	free(s);
	return 0;
}
