// SPDX-License-Identifier: Apache-2.0
/*
 * lib/selector.c: label selector string and JSON forms, the Kubernetes label
 * syntax checks, matching truth tables, canonical strings and round trips,
 * and field selectors with upstream escaping. Expected strings and error
 * texts are the ones k8s.io/apimachinery produces (with our "at position N: "
 * prefix), so a drift from kube-apiserver behaviour fails here.
 */
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "sluice/json.h"
#include "sluice/selector.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define NAME_REGEX_MSG                                                                            \
	"must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "  \
	"an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for " \
	"validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define VALUE_REGEX_MSG                                                                          \
	"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' " \
	"or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "    \
	"'my_value',  or '12345', regex used for validation is "                                 \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
#define PREFIX_REGEX_MSG                                                                       \
	"prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "  \
	"characters, '-' or '.', and must start and end with an alphanumeric character (e.g. " \
	"'example.com', regex used for validation is "                                         \
	"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"

/* Parses s and checks its canonical string; returns false on failure. */
static bool check_canon(const char *s, const char *want)
{
	char err[512] = "";
	struct sl_labelsel *sel = sl_labelsel_parse(s, err, sizeof(err));
	char *str;
	bool ok;

	if (!ASSERT_NOT_NULL(sel, s)) {
		fprintf(stderr, "  input '%s': %s\n", s, err);
		return false;
	}
	str = sl_labelsel_string(sel);
	ok = ASSERT_STREQ(str, want, s);
	free(str);
	sl_labelsel_free(sel);
	return ok;
}

TEST(labelsel_parse_forms)
{
	static const struct {
		const char *in, *canon;
	} cases[] = {
		{"", ""},
		{" \t\r\n ", ""},
		{"a=b", "a=b"},
		{"a==b", "a=b"},
		{"a!=b", "a!=b"},
		{"a in (x,y)", "a in (x,y)"},
		{" a  notin ( y , x ) ", "a notin (x,y)"},
		{"a", "a"},
		{"!a", "!a"},
		{" ! a ", "!a"},
		{"a=", "a="},
		{"a==", "a="},
		{"a!=", "a!="},
		{"a=,b", "a=,b"},
		{"a>1", "a>1"},
		{"a < 10", "a<10"},
		{"a>007", "a>007"},
		/* upstream quirks: "()" and "(,)" are the set {""} */
		{"a in ()", "a in ()"},
		{"a notin (,)", "a notin ()"},
		{"a in (x,)", "a in (,x)"},
		{"a in (,x)", "a in (,x)"},
		{"a in (x,,y)", "a in (,x,y)"},
		{"a in (x,x,y,x)", "a in (x,y)"},
		{"x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"},
		/* sorted by key, then operator; duplicates are AND'ed, not merged */
		{"b=1,a=2", "a=2,b=1"},
		{"a=b,a=b", "a=b,a=b"},
		{"!a,a,a=x", "a=x,a,!a"},
		{"z,!y,x notin (1),w in (2),v!=3,u=4", "u=4,v!=3,w in (2),x notin (1),!y,z"},
		/* keywords are identifiers where a key or value is expected */
		{"in in (in,notin)", "in in (in,notin)"},
		{"notin=notin", "notin=notin"},
		{"!in", "!in"},
		{"example.com/app-name==My.Value_1", "example.com/app-name=My.Value_1"},
		{"\ta\n=\rb", "a=b"},
		{"a=b,c", "a=b,c"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		check_canon(cases[i].in, cases[i].canon);
}

TEST(labelsel_parse_structure)
{
	char err[256];
	struct sl_labelsel *sel = sl_labelsel_parse("b in (y,x,y), a!=", err, sizeof(err));

	if (!ASSERT_NOT_NULL(sel, "parse"))
		return;
	ASSERT_EQ(sel->n_reqs, 2, "two requirements");
	ASSERT_FALSE(sel->nothing, "parse never sets nothing");
	ASSERT_STREQ(sel->reqs[0].key, "a", "sorted by key");
	ASSERT_EQ(sel->reqs[0].op, SL_SEL_NEQ, "op");
	ASSERT_EQ(sel->reqs[0].n_values, 1, "one value");
	ASSERT_STREQ(sel->reqs[0].values[0], "", "empty value");
	ASSERT_EQ(sel->reqs[1].op, SL_SEL_IN, "in");
	ASSERT_EQ(sel->reqs[1].n_values, 2, "deduplicated");
	ASSERT_STREQ(sel->reqs[1].values[0], "x", "sorted 0");
	ASSERT_STREQ(sel->reqs[1].values[1], "y", "sorted 1");
	ASSERT_FALSE(sl_labelsel_empty(sel), "not empty");
	sl_labelsel_free(sel);

	sel = sl_labelsel_parse("!k", err, sizeof(err));
	if (ASSERT_NOT_NULL(sel, "!k")) {
		ASSERT_EQ(sel->reqs[0].op, SL_SEL_NOTEXISTS, "notexists");
		ASSERT_EQ(sel->reqs[0].n_values, 0, "no values");
	}
	sl_labelsel_free(sel);

	sel = sl_labelsel_parse("", err, sizeof(err));
	if (ASSERT_NOT_NULL(sel, "empty"))
		ASSERT_TRUE(sl_labelsel_empty(sel), "empty selector");
	sl_labelsel_free(sel);
	sel = sl_labelsel_parse(NULL, err, sizeof(err));
	ASSERT_NOT_NULL(sel, "NULL string is the empty selector");
	sl_labelsel_free(sel);
	sl_labelsel_free(NULL);
}

TEST(labelsel_parse_errors)
{
	static const struct {
		const char *in, *msg;
	} cases[] = {
		{"a in (x",
		 "at position 7: unable to parse requirement: found '', expected: ',' or ')'"},
		{"a in x", "at position 5: unable to parse requirement: found 'x' expected: '('"},
		{"a in", "at position 4: unable to parse requirement: found '' expected: '('"},
		{"in in", "at position 5: unable to parse requirement: found '' expected: '('"},
		{"a in (,x y)",
		 "at position 9: unable to parse requirement: found 'y', expected: ',' or ')'"},
		{"a in (()",
		 "at position 6: unable to parse requirement: found '(', expected: ',', ')' or "
		 "identifier"},
		{"a in (x,(",
		 "at position 8: unable to parse requirement: found '(', expected: ',', or "
		 "identifier"},
		{"a in (x,",
		 "at position 8: unable to parse requirement: found '', expected: ',', or "
		 "identifier"},
		{"a b",
		 "at position 2: unable to parse requirement: found 'b', expected: in, notin, "
		 "=, ==, !=, gt, lt"},
		{"a (",
		 "at position 2: unable to parse requirement: found '(', expected: in, notin, "
		 "=, ==, !=, gt, lt"},
		{"a=b,", "at position 4: found '', expected: identifier after ','"},
		{"a=b,,c", "at position 4: found ',', expected: identifier after ','"},
		{"a=b,=c", "at position 4: found '=', expected: identifier after ','"},
		{",a", "at position 0: found ',', expected: !, identifier, or 'end of string'"},
		{")", "at position 0: found ')', expected: !, identifier, or 'end of string'"},
		{"a=b c", "at position 4: found 'c', expected: ',' or 'end of string'"},
		{"a=b=c", "at position 3: found '=', expected: ',' or 'end of string'"},
		{"a in (x))", "at position 8: found ')', expected: ',' or 'end of string'"},
		{"!a=b", "at position 2: found '=', expected: ',' or 'end of string'"},
		{"!a in (x)", "at position 3: found 'in', expected: ',' or 'end of string'"},
		{"!", "at position 1: unable to parse requirement: found '', expected: identifier"},
		{"!!a",
		 "at position 1: unable to parse requirement: found '!', expected: identifier"},
		{"!=a", "at position 0: found '!=', expected: !, identifier, or 'end of string'"},
		{"a=(",
		 "at position 2: unable to parse requirement: found '(', expected: identifier"},
		{"a!==b",
		 "at position 3: unable to parse requirement: found '=', expected: identifier"},
		{"a=!b",
		 "at position 2: unable to parse requirement: found '!', expected: identifier"},
		/* key syntax, reported at the key */
		{"_a=b", "at position 0: unable to parse requirement: Invalid value: \"_a\": name "
			 "part " NAME_REGEX_MSG},
		{"x, a/b/c",
		 "at position 3: unable to parse requirement: Invalid value: \"a/b/c\": a "
		 "qualified "
		 "name " NAME_REGEX_MSG " with an optional DNS subdomain prefix and '/' (e.g. "
		 "'example.com/MyName')"},
		{"Example.com/a", "at position 0: unable to parse requirement: Invalid value: "
				  "\"Example.com/a\": " PREFIX_REGEX_MSG},
		{"/a",
		 "at position 0: unable to parse requirement: Invalid value: \"/a\": prefix part "
		 "must be non-empty"},
		{"a/",
		 "at position 0: unable to parse requirement: Invalid value: \"a/\": name part "
		 "must be non-empty"},
		{"a\"\x01", "at position 0: unable to parse requirement: Invalid value: "
			    "\"a\\\"\\x01\": name part " NAME_REGEX_MSG},
		/* value syntax, reported at the value with its sorted index */
		{"a=_b", "at position 2: unable to parse requirement: values[0][a]: Invalid value: "
			 "\"_b\": " VALUE_REGEX_MSG},
		{"k in (ok,_b)",
		 "at position 9: unable to parse requirement: values[0][k]: Invalid "
		 "value: \"_b\": " VALUE_REGEX_MSG},
		{"k in (Z,_b)", "at position 8: unable to parse requirement: values[1][k]: Invalid "
				"value: \"_b\": " VALUE_REGEX_MSG},
		{"a="
		 "0123456789012345678901234567890123456789012345678901234567890123",
		 "at position 2: unable to parse requirement: values[0][a]: Invalid value: "
		 "\"0123456789012345678901234567890123456789012345678901234567890123\": must be no "
		 "more than 63 characters"},
		/* Gt/Lt need an int64, and still a label value */
		{"a>x",
		 "at position 2: unable to parse requirement: values[0]: Invalid value: \"x\": "
		 "for 'Gt', 'Lt' operators, the value must be an integer"},
		{"a<",
		 "at position 2: unable to parse requirement: values[0]: Invalid value: \"\": "
		 "for 'Gt', 'Lt' operators, the value must be an integer"},
		{"a>9223372036854775808",
		 "at position 2: unable to parse requirement: values[0]: Invalid value: "
		 "\"9223372036854775808\": for 'Gt', 'Lt' operators, the value must be an integer"},
		{"a>-1", "at position 2: unable to parse requirement: values[0][a]: Invalid value: "
			 "\"-1\": " VALUE_REGEX_MSG},
	};
	char err[1024];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_labelsel *sel;

		errno = 0;
		err[0] = '\0';
		sel = sl_labelsel_parse(cases[i].in, err, sizeof(err));
		if (!ASSERT_NULL(sel, cases[i].in)) {
			sl_labelsel_free(sel);
			continue;
		}
		ASSERT_EQ(errno, EINVAL, cases[i].in);
		ASSERT_STREQ(err, cases[i].msg, cases[i].in);
	}
}

TEST(labelsel_error_buffer_edges)
{
	char small[8];
	struct sl_labelsel *sel;

	/* No buffer, tiny buffer: still an error, never an overflow. */
	ASSERT_NULL(sl_labelsel_parse("a b", NULL, 0), "no err buffer");
	ASSERT_NULL(sl_labelsel_parse("a b", small, sizeof(small)), "small buffer");
	ASSERT_EQ(strlen(small), sizeof(small) - 1, "truncated");
	sel = sl_labelsel_parse("a>9223372036854775807,b<-9223372036854775808x", NULL, 0);
	ASSERT_NULL(sel, "min int with junk");
}

TEST(label_key_value_checks)
{
	char k[400];
	const char *m;

	ASSERT_NULL(sl_label_key_check("a"), "one char");
	ASSERT_NULL(sl_label_key_check("A_b.c-9"), "mixed");
	ASSERT_NULL(sl_label_key_check("kubernetes.io/metadata.name"), "prefixed");
	ASSERT_NULL(sl_label_key_check("1.2-3/x"), "digit prefix");
	ASSERT_STREQ(sl_label_key_check(""), "name part must be non-empty", "empty");
	ASSERT_STREQ(sl_label_key_check(NULL), "name part must be non-empty", "NULL");
	ASSERT_STREQ(sl_label_key_check("-a"), "name part " NAME_REGEX_MSG, "leading -");
	ASSERT_STREQ(sl_label_key_check("a-"), "name part " NAME_REGEX_MSG, "trailing -");
	ASSERT_STREQ(sl_label_key_check(".a"), "name part " NAME_REGEX_MSG, "leading .");
	ASSERT_STREQ(sl_label_key_check("a_"), "name part " NAME_REGEX_MSG, "trailing _");
	ASSERT_STREQ(sl_label_key_check("a b"), "name part " NAME_REGEX_MSG, "space");
	ASSERT_STREQ(sl_label_key_check("a\xc3\xa9"), "name part " NAME_REGEX_MSG, "utf-8");
	ASSERT_STREQ(sl_label_key_check("/a"), "prefix part must be non-empty", "empty prefix");
	ASSERT_STREQ(sl_label_key_check("a/"), "name part must be non-empty", "empty name");
	m = sl_label_key_check("a/b/c");
	ASSERT_TRUE(m && !strncmp(m, "a qualified name must consist", 29), "two slashes");
	ASSERT_STREQ(sl_label_key_check("A.com/x"), PREFIX_REGEX_MSG, "uppercase prefix");
	ASSERT_STREQ(sl_label_key_check("a..b/x"), PREFIX_REGEX_MSG, "empty dns label");
	ASSERT_STREQ(sl_label_key_check(".a/x"), PREFIX_REGEX_MSG, "leading dot");
	ASSERT_STREQ(sl_label_key_check("a./x"), PREFIX_REGEX_MSG, "trailing dot");
	ASSERT_STREQ(sl_label_key_check("a-.b/x"), PREFIX_REGEX_MSG, "label ends with -");
	ASSERT_STREQ(sl_label_key_check("a_b/x"), PREFIX_REGEX_MSG, "underscore in prefix");

	/* name: 63 ok, 64 too long */
	memset(k, 'a', 63);
	k[63] = '\0';
	ASSERT_NULL(sl_label_key_check(k), "63");
	k[63] = 'a';
	k[64] = '\0';
	ASSERT_STREQ(sl_label_key_check(k), "name part must be no more than 63 characters", "64");
	/* prefix: 253 ok, 254 too long (a single long DNS label is fine upstream) */
	memset(k, 'p', 253);
	strcpy(k + 253, "/name");
	ASSERT_NULL(sl_label_key_check(k), "prefix 253");
	memset(k, 'p', 254);
	strcpy(k + 254, "/name");
	ASSERT_STREQ(sl_label_key_check(k), "prefix part must be no more than 253 characters",
		     "prefix 254");
	/* prefix problems are reported before name problems */
	memset(k, 'p', 254);
	strcpy(k + 254, "/-");
	ASSERT_STREQ(sl_label_key_check(k), "prefix part must be no more than 253 characters",
		     "prefix first");
	/* max total: 253 + '/' + 63 */
	memset(k, 'p', 253);
	k[253] = '/';
	memset(k + 254, 'n', 63);
	k[317] = '\0';
	ASSERT_NULL(sl_label_key_check(k), "317 chars total");

	ASSERT_NULL(sl_label_value_check(""), "empty value");
	ASSERT_NULL(sl_label_value_check(NULL), "NULL value");
	ASSERT_NULL(sl_label_value_check("A.b_c-9"), "value chars");
	ASSERT_STREQ(sl_label_value_check("-a"), VALUE_REGEX_MSG, "value leading -");
	ASSERT_STREQ(sl_label_value_check("a."), VALUE_REGEX_MSG, "value trailing .");
	ASSERT_STREQ(sl_label_value_check("a/b"), VALUE_REGEX_MSG, "value slash");
	ASSERT_STREQ(sl_label_value_check("_"), VALUE_REGEX_MSG, "value _");
	memset(k, 'v', 63);
	k[63] = '\0';
	ASSERT_NULL(sl_label_value_check(k), "value 63");
	k[63] = 'v';
	k[64] = '\0';
	ASSERT_STREQ(sl_label_value_check(k), "must be no more than 63 characters", "value 64");
}

/* Label sets for the truth table. */
static const struct sl_label ls_app_web[] = {{"app", "web"}};
static const struct sl_label ls_app_db[] = {{"app", "db"}};
static const struct sl_label ls_app_empty[] = {{"app", ""}};
static const struct sl_label ls_web_front[] = {{"tier", "front"}, {"app", "web"}};
static const struct sl_label ls_web_back[] = {{"app", "web"}, {"tier", "back"}};
static const struct sl_label ls_api_gen3[] = {{"app", "api"}, {"gen", "3"}};
static const struct sl_label ls_gen2[] = {{"gen", "2"}};
static const struct sl_label ls_gen1[] = {{"gen", "1"}};
static const struct sl_label ls_genx[] = {{"gen", "x"}};
static const struct sl_label ls_genneg[] = {{"gen", "-5"}};

static const struct {
	const struct sl_label *l;
	size_t n;
	const char *json;
} label_sets[] = {
	{NULL, 0, "{}"},
	{ls_app_web, 1, "{\"app\":\"web\"}"},
	{ls_app_db, 1, "{\"app\":\"db\"}"},
	{ls_app_empty, 1, "{\"app\":\"\"}"},
	{ls_web_front, 2, "{\"tier\":\"front\",\"app\":\"web\"}"},
	{ls_web_back, 2, "{\"app\":\"web\",\"tier\":\"back\"}"},
	{ls_api_gen3, 2, "{\"app\":\"api\",\"gen\":\"3\"}"},
	{ls_gen2, 1, "{\"gen\":\"2\"}"},
	{ls_gen1, 1, "{\"gen\":\"1\"}"},
	{ls_genx, 1, "{\"gen\":\"x\"}"},
	{ls_genneg, 1, "{\"gen\":\"-5\"}"},
};

TEST(labelsel_truth_table)
{
	/* One character per label set above: 1 = matches. */
	static const struct {
		const char *sel, *want;
	} rows[] = {
		{"", "11111111111"},
		{"app=web", "01001100000"},
		{"app==web", "01001100000"},
		{"app!=web", "10110011111"},
		{"app in (web,db)", "01101100000"},
		{"app notin (web,db)", "10010011111"},
		{"app", "01111110000"},
		{"!app", "10000001111"},
		{"app=web,tier!=front", "01000100000"},
		{"app=web,tier notin (front)", "01000100000"},
		{"app=web,tier", "00001100000"},
		{"app=", "00010000000"},
		{"app in ()", "00010000000"},
		{"app notin ()", "11101111111"},
		{"gen>2", "00000010000"},
		{"gen<2", "00000000101"},
		{"gen>0,gen<3", "00000001100"},
		{"app,app!=web", "00110010000"},
		{"app=web,app=db", "00000000000"},
		{"!app,!gen", "10000000000"},
		{"missing notin (x),app", "01111110000"},
	};
	char err[512];

	for (size_t r = 0; r < ARRAY_SIZE(rows); r++) {
		struct sl_labelsel *sel = sl_labelsel_parse(rows[r].sel, err, sizeof(err));

		if (!ASSERT_NOT_NULL(sel, rows[r].sel))
			continue;
		for (size_t c = 0; c < ARRAY_SIZE(label_sets); c++) {
			struct json_object *lj = sl_json_parse(label_sets[c].json,
							       strlen(label_sets[c].json), NULL, 0);
			bool want = rows[r].want[c] == '1';
			bool got = sl_labelsel_match(sel, label_sets[c].l, label_sets[c].n);
			bool got_json = sl_labelsel_match_json(sel, lj);

			if (got != want || got_json != want)
				(void)TEST_FAIL_AT("'%s' vs %s: want %d, got %d (json %d)",
						   rows[r].sel, label_sets[c].json, want, got,
						   got_json);
			json_object_put(lj);
		}
		sl_labelsel_free(sel);
	}
}

TEST(labelsel_match_edges)
{
	struct sl_labelsel *none = sl_labelsel_nothing();
	struct sl_labelsel *exists = sl_labelsel_parse("a", NULL, 0);
	struct json_object *j = sl_json_parse("{\"a\":1}", 7, NULL, 0);
	const struct sl_label nullval[] = {{"a", NULL}};

	if (!ASSERT_NOT_NULL(none, "nothing") || !ASSERT_NOT_NULL(exists, "exists"))
		goto out;
	ASSERT_FALSE(sl_labelsel_match(none, NULL, 0), "nothing matches nothing");
	ASSERT_FALSE(sl_labelsel_match(none, ls_app_web, 1), "nothing vs labels");
	ASSERT_FALSE(sl_labelsel_match_json(none, NULL), "nothing json");
	ASSERT_FALSE(sl_labelsel_empty(none), "nothing is not empty");
	ASSERT_TRUE(sl_labelsel_match(NULL, NULL, 0), "NULL selector matches");
	ASSERT_TRUE(sl_labelsel_empty(NULL), "NULL is empty");
	ASSERT_TRUE(sl_labelsel_match(exists, nullval, 1), "NULL value counts as present");
	ASSERT_FALSE(sl_labelsel_match_json(exists, NULL), "no labels map");
	/* non-string label values cannot be valid labels; they count as absent */
	ASSERT_FALSE(sl_labelsel_match_json(exists, j), "non-string value");
	ASSERT_FALSE(sl_labelsel_equal(none, exists), "nothing != exists");
	ASSERT_TRUE(sl_labelsel_equal(NULL, NULL), "NULL == NULL");
	ASSERT_FALSE(sl_labelsel_equal(exists, NULL), "x != NULL");
out:
	json_object_put(j);
	sl_labelsel_free(none);
	sl_labelsel_free(exists);
}

TEST(labelsel_round_trip)
{
	static const char *const inputs[] = {
		"",
		"a",
		"!a",
		"a=",
		"a!=",
		"a in ()",
		"a notin (,)",
		"a in (x,,y)",
		"x in (foo,,baz),y,z notin ()",
		"z=1,y!=2,x in (3),w notin (4),v,!u,t>5,s<6",
		"a,a,!a,a=b,a=b,a=c,a!=b",
		"in in (in, notin),notin notin (notin)",
		"example.com/a==B, example.com/a notin (x.y-z_0)",
		"k in (b,a,c,a,b),k in (a,b,c)",
	};

	for (size_t i = 0; i < ARRAY_SIZE(inputs); i++) {
		char err[512];
		struct sl_labelsel *a = sl_labelsel_parse(inputs[i], err, sizeof(err)), *b = NULL;
		char *sa = NULL, *sb = NULL;

		if (!ASSERT_NOT_NULL(a, inputs[i]))
			continue;
		sa = sl_labelsel_string(a);
		if (!ASSERT_NOT_NULL(sa, "string"))
			goto next;
		b = sl_labelsel_parse(sa, err, sizeof(err));
		if (!ASSERT_NOT_NULL(b, sa))
			goto next;
		ASSERT_TRUE(sl_labelsel_equal(a, b), inputs[i]);
		sb = sl_labelsel_string(b);
		ASSERT_STREQ(sb, sa, "string is a fixed point");
	next:
		free(sa);
		free(sb);
		sl_labelsel_free(a);
		sl_labelsel_free(b);
	}
}

static struct sl_labelsel *sel_from_json_text(const char *txt, char *err, size_t errlen)
{
	struct json_object *o = sl_json_parse(txt, strlen(txt), NULL, 0);
	struct sl_labelsel *sel;

	if (!o) {
		(void)TEST_FAIL_AT("bad test JSON: %s", txt);
		return NULL;
	}
	sel = sl_labelsel_from_json(o, "spec.podSelector", err, errlen);
	json_object_put(o);
	return sel;
}

TEST(labelsel_json_form)
{
	static const struct {
		const char *json, *canon;
	} cases[] = {
		{"{}", ""},
		{"{\"matchLabels\":null,\"matchExpressions\":null}", ""},
		{"{\"matchLabels\":{}, \"matchExpressions\":[]}", ""},
		{"{\"matchLabels\":{\"tier\":\"db\",\"app\":\"web\"}}", "app=web,tier=db"},
		{"{\"matchLabels\":{\"app\":\"\"}}", "app="},
		{"{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":["
		 "{\"key\":\"tier\",\"operator\":\"NotIn\",\"values\":[\"front\",\"back\","
		 "\"front\"]},"
		 "{\"key\":\"x\",\"operator\":\"Exists\"},"
		 "{\"key\":\"y\",\"operator\":\"DoesNotExist\",\"values\":[]},"
		 "{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"web\",\"api\"]}]}",
		 "app=web,app in (api,web),tier notin (back,front),x,!y"},
		{"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"\"]}]}",
		 "a in ()"},
		{"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":null}],"
		 "\"unknownField\":1}",
		 "a"},
	};
	char err[1024];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_labelsel *sel = sel_from_json_text(cases[i].json, err, sizeof(err)),
				   *back;
		char *s;

		if (!ASSERT_NOT_NULL(sel, cases[i].json)) {
			fprintf(stderr, "  %s\n", err);
			continue;
		}
		s = sl_labelsel_string(sel);
		ASSERT_STREQ(s, cases[i].canon, cases[i].json);
		/* JSON and string forms compile to the same structure */
		back = sl_labelsel_parse(s, err, sizeof(err));
		ASSERT_TRUE(sl_labelsel_equal(sel, back), "json -> string -> parse");
		free(s);
		sl_labelsel_free(back);
		sl_labelsel_free(sel);
	}

	/* NULL object = match everything */
	{
		struct sl_labelsel *sel = sl_labelsel_from_json(NULL, "x", err, sizeof(err));

		ASSERT_NOT_NULL(sel, "NULL json");
		ASSERT_TRUE(sl_labelsel_empty(sel), "NULL json is empty");
		sl_labelsel_free(sel);
	}
}

TEST(labelsel_json_errors)
{
	static const struct {
		const char *json, *msg;
	} cases[] = {
		{"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Foo\"}]}",
		 "spec.podSelector.matchExpressions[0].operator: Unsupported value: \"Foo\": "
		 "supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\""},
		{"{\"matchExpressions\":[{\"key\":\"a\"}]}",
		 "spec.podSelector.matchExpressions[0].operator: Unsupported value: \"\": "
		 "supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\""},
		{"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"in\",\"values\":[\"x\"]}]}",
		 "spec.podSelector.matchExpressions[0].operator: Unsupported value: \"in\": "
		 "supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\""},
		{"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},"
		 "{\"key\":\"b\",\"operator\":\"In\",\"values\":[]}]}",
		 "spec.podSelector.matchExpressions[1].values: Required value: must be specified "
		 "when `operator` is 'In' or 'NotIn'"},
		{"{\"matchExpressions\":[{\"key\":\"b\",\"operator\":\"NotIn\"}]}",
		 "spec.podSelector.matchExpressions[0].values: Required value: must be specified "
		 "when `operator` is 'In' or 'NotIn'"},
		{"{\"matchExpressions\":[{\"key\":\"b\",\"operator\":\"DoesNotExist\",\"values\":["
		 "\"x\"]}]}",
		 "spec.podSelector.matchExpressions[0].values: Forbidden: may not be specified "
		 "when "
		 "`operator` is 'Exists' or 'DoesNotExist'"},
		{"{\"matchExpressions\":[{\"key\":\"-a\",\"operator\":\"Exists\"}]}",
		 "spec.podSelector.matchExpressions[0].key: Invalid value: \"-a\": name "
		 "part " NAME_REGEX_MSG},
		{"{\"matchExpressions\":[{\"operator\":\"Exists\"}]}",
		 "spec.podSelector.matchExpressions[0].key: Invalid value: \"\": name part must be "
		 "non-empty"},
		{"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"ok\",\"a "
		 "b\"]}]}",
		 "spec.podSelector.matchExpressions[0].values[1]: Invalid value: \"a "
		 "b\": " VALUE_REGEX_MSG},
		{"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"ok\",3]}]"
		 "}",
		 "spec.podSelector.matchExpressions[0].values[1]: Invalid value: int: must be a "
		 "string"},
		{"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":\"x\"}]}",
		 "spec.podSelector.matchExpressions[0].values: Invalid value: string: must be an "
		 "array of strings"},
		{"{\"matchExpressions\":[{\"key\":7,\"operator\":\"Exists\"}]}",
		 "spec.podSelector.matchExpressions[0].key: Invalid value: int: must be a string"},
		{"{\"matchExpressions\":[\"a\"]}",
		 "spec.podSelector.matchExpressions[0]: Invalid value: string: must be an object"},
		{"{\"matchExpressions\":{}}",
		 "spec.podSelector.matchExpressions: Invalid value: object: must be an array"},
		{"{\"matchLabels\":{\"a/b/c\":\"x\"}}",
		 "spec.podSelector.matchLabels: Invalid value: \"a/b/c\": a qualified "
		 "name " NAME_REGEX_MSG
		 " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"},
		{"{\"matchLabels\":{\"a\":\"-x\"}}",
		 "spec.podSelector.matchLabels: Invalid value: \"-x\": " VALUE_REGEX_MSG},
		{"{\"matchLabels\":{\"a\":1}}",
		 "spec.podSelector.matchLabels[a]: Invalid value: int: must be a string"},
		{"{\"matchLabels\":[]}",
		 "spec.podSelector.matchLabels: Invalid value: array: must be an object of string "
		 "values"},
		{"[]", "spec.podSelector: Invalid value: array: must be a LabelSelector object"},
	};
	char err[1024];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_labelsel *sel;

		err[0] = '\0';
		errno = 0;
		sel = sel_from_json_text(cases[i].json, err, sizeof(err));
		if (!ASSERT_NULL(sel, cases[i].json)) {
			sl_labelsel_free(sel);
			continue;
		}
		ASSERT_EQ(errno, EINVAL, "errno");
		ASSERT_STREQ(err, cases[i].msg, cases[i].json);
	}
}

TEST(labelsel_from_set_json)
{
	const char *txt = "{\"tier\":\"db\",\"app\":\"web\"}";
	struct json_object *o = sl_json_parse(txt, strlen(txt), NULL, 0);
	struct json_object *bad = sl_json_parse("{\"_a\":\"x\"}", 10, NULL, 0);
	struct sl_labelsel *sel = NULL;
	char err[512], *s = NULL;

	sel = sl_labelsel_from_set_json(o, "spec.selector", err, sizeof(err));
	if (!ASSERT_NOT_NULL(sel, "set"))
		goto out;
	s = sl_labelsel_string(sel);
	ASSERT_STREQ(s, "app=web,tier=db", "set string");
	ASSERT_TRUE(sl_labelsel_match(sel, ls_web_back, 0) == false, "no labels");
	sl_labelsel_free(sel);
	sel = sl_labelsel_from_set_json(bad, "spec.selector", err, sizeof(err));
	ASSERT_NULL(sel, "bad key");
	ASSERT_STREQ(err, "spec.selector: Invalid value: \"_a\": name part " NAME_REGEX_MSG,
		     "set error");
	sel = sl_labelsel_from_set_json(NULL, NULL, err, sizeof(err));
	if (ASSERT_NOT_NULL(sel, "NULL set"))
		ASSERT_TRUE(sl_labelsel_empty(sel), "NULL set is empty");
out:
	free(s);
	sl_labelsel_free(sel);
	json_object_put(o);
	json_object_put(bad);
}

/* ---- field selectors ---------------------------------------------------- */

static bool check_field(const char *in, const char *canon)
{
	char err[512] = "";
	struct sl_fieldsel *sel = sl_fieldsel_parse(in, err, sizeof(err)), *back = NULL;
	char *s, *s2 = NULL;
	bool ok;

	if (!ASSERT_NOT_NULL(sel, in)) {
		fprintf(stderr, "  input '%s': %s\n", in, err);
		return false;
	}
	s = sl_fieldsel_string(sel);
	ok = ASSERT_STREQ(s, canon, in);
	back = sl_fieldsel_parse(s, err, sizeof(err));
	ok = ASSERT_NOT_NULL(back, "reparse") && ok;
	ok = ASSERT_TRUE(sl_fieldsel_equal(sel, back), "round trip") && ok;
	s2 = sl_fieldsel_string(back);
	ok = ASSERT_STREQ(s2, s, "fixed point") && ok;
	free(s);
	free(s2);
	sl_fieldsel_free(sel);
	sl_fieldsel_free(back);
	return ok;
}

TEST(fieldsel_parse_forms)
{
	static const struct {
		const char *in, *canon;
	} cases[] = {
		{"", ""},
		{",,", ""},
		{"metadata.name=foo", "metadata.name=foo"},
		{"a==b", "a=b"},
		{"a!=b", "a!=b"},
		{"a=", "a="},
		{"a!=", "a!="},
		{"c!=d,a=b", "a=b,c!=d"},
		{",a=b,,", "a=b"},
		{"a!=x,a=x", "a=x,a!=x"},
		/* escapes in values */
		{"a=x\\,y\\=z\\\\w", "a=x\\,y\\=z\\\\w"},
		{"a==\\=", "a=\\="},
		{"a!=\\\\", "a!=\\\\"},
		/* the field is taken verbatim up to the first operator */
		{"a!b=c", "a!b=c"},
		{"a = b", "a = b"},
		{"=x", "=x"},
		{"a\\,b=c", "a\\,b=c"},
		{"a\\=b", "a\\=b"},
		{"a\\!=b", "a\\!=b"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		check_field(cases[i].in, cases[i].canon);
}

TEST(fieldsel_structure)
{
	char err[256];
	struct sl_fieldsel *sel =
		sl_fieldsel_parse("spec.nodeName!=,a\\,b=x\\,y\\=z\\\\", err, sizeof(err));

	if (!ASSERT_NOT_NULL(sel, "parse"))
		return;
	ASSERT_EQ(sel->n_reqs, 2, "two");
	ASSERT_STREQ(sel->reqs[0].field, "a\\,b", "field verbatim");
	ASSERT_STREQ(sel->reqs[0].value, "x,y=z\\", "value unescaped");
	ASSERT_FALSE(sel->reqs[0].negate, "=");
	ASSERT_STREQ(sel->reqs[1].field, "spec.nodeName", "field 2");
	ASSERT_STREQ(sel->reqs[1].value, "", "empty value");
	ASSERT_TRUE(sel->reqs[1].negate, "!=");
	sl_fieldsel_free(sel);
	sl_fieldsel_free(NULL);
}

TEST(fieldsel_parse_errors)
{
	static const struct {
		const char *in, *msg;
	} cases[] = {
		{"a", "at position 0: invalid selector: 'a'; can't understand 'a'"},
		{"zzz,b=1", "at position 0: invalid selector: 'zzz,b=1'; can't understand 'zzz'"},
		{"b=1,zzz", "at position 4: invalid selector: 'b=1,zzz'; can't understand 'zzz'"},
		{"a!b", "at position 0: invalid selector: 'a!b'; can't understand 'a!b'"},
		{"a=b=c",
		 "at position 3: invalid field selector: unescaped character in value: '='"},
		{"a==b==c",
		 "at position 4: invalid field selector: unescaped character in value: '='"},
		{"a!==b",
		 "at position 3: invalid field selector: unescaped character in value: '='"},
		{"a=b\\x", "at position 3: invalid field selector: invalid escape sequence: \\x"},
		{"a=b\\", "at position 3: invalid field selector: invalid escape sequence: \\"},
		{"x=1,a=\\,b\\",
		 "at position 9: invalid field selector: invalid escape sequence: \\"},
		{"a\x01", "at position 0: invalid selector: 'a\\x01'; can't understand 'a\\x01'"},
	};
	char err[512];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_fieldsel *sel;

		err[0] = '\0';
		errno = 0;
		sel = sl_fieldsel_parse(cases[i].in, err, sizeof(err));
		if (!ASSERT_NULL(sel, cases[i].in)) {
			sl_fieldsel_free(sel);
			continue;
		}
		ASSERT_EQ(errno, EINVAL, "errno");
		ASSERT_STREQ(err, cases[i].msg, cases[i].in);
	}
}

struct fake_obj {
	const char *name, *node, *phase;
};

static const char *fake_get(const char *field, void *arg)
{
	const struct fake_obj *o = arg;

	if (!strcmp(field, "metadata.name"))
		return o->name;
	if (!strcmp(field, "spec.nodeName"))
		return o->node;
	if (!strcmp(field, "status.phase"))
		return o->phase;
	return NULL;
}

TEST(fieldsel_match)
{
	static const struct fake_obj objs[] = {
		{"a", NULL, "Pending"},
		{"b", "n1", "Running"},
		{"c,d", "n2", "Running"},
	};
	static const struct {
		const char *sel, *want;
	} rows[] = {
		{"", "111"},
		{"spec.nodeName=", "100"},
		{"spec.nodeName!=", "011"},
		{"spec.nodeName=n1", "010"},
		{"status.phase!=Running", "100"},
		{"status.phase==Running,spec.nodeName!=n1", "001"},
		{"metadata.name=c\\,d", "001"},
		{"other.field=", "111"},
		{"other.field=x", "000"},
	};
	char err[256];

	for (size_t r = 0; r < ARRAY_SIZE(rows); r++) {
		struct sl_fieldsel *sel = sl_fieldsel_parse(rows[r].sel, err, sizeof(err));

		if (!ASSERT_NOT_NULL(sel, rows[r].sel))
			continue;
		for (size_t c = 0; c < ARRAY_SIZE(objs); c++) {
			bool want = rows[r].want[c] == '1';
			bool got = sl_fieldsel_match(sel, fake_get, (void *)&objs[c]);

			if (got != want)
				(void)TEST_FAIL_AT("'%s' vs obj %zu: want %d got %d", rows[r].sel,
						   c, want, got);
		}
		sl_fieldsel_free(sel);
	}
	ASSERT_TRUE(sl_fieldsel_match(NULL, fake_get, NULL), "NULL selector matches");
}

TEST(fieldsel_unsupported)
{
	static const char *const pod_fields[] = {"metadata.name", "metadata.namespace",
						 "spec.nodeName", NULL};
	struct sl_fieldsel *sel =
		sl_fieldsel_parse("metadata.name=a,spec.nodeName!=,spec.x=1", NULL, 0);

	if (!ASSERT_NOT_NULL(sel, "parse"))
		return;
	ASSERT_STREQ(sl_fieldsel_unsupported(sel, pod_fields), "spec.x", "first unsupported");
	sl_fieldsel_free(sel);
	sel = sl_fieldsel_parse("spec.nodeName=n1,metadata.namespace!=kube-system", NULL, 0);
	if (ASSERT_NOT_NULL(sel, "parse 2"))
		ASSERT_NULL(sl_fieldsel_unsupported(sel, pod_fields), "all supported");
	ASSERT_STREQ(sl_fieldsel_unsupported(sel, NULL), "metadata.namespace", "no supported list");
	sl_fieldsel_free(sel);
	ASSERT_NULL(sl_fieldsel_unsupported(NULL, pod_fields), "NULL selector");
}

TEST(labelsel_parse_length_limits)
{
	char in[700], err[1024], *s = NULL;
	struct sl_labelsel *sel = NULL;

	/* 253-char prefix + 63-char name = 63-char value: the longest valid pair */
	memset(in, 'p', 253);
	in[253] = '/';
	memset(in + 254, 'n', 63);
	in[317] = '=';
	memset(in + 318, 'v', 63);
	in[381] = '\0';
	sel = sl_labelsel_parse(in, err, sizeof(err));
	if (!ASSERT_NOT_NULL(sel, "longest valid"))
		goto out;
	s = sl_labelsel_string(sel);
	ASSERT_STREQ(s, in, "longest valid canonical");
	sl_labelsel_free(sel);

	/* one more character in the name part, reported at the key */
	memset(in, 'x', 64);
	strcpy(in + 64, " in (a)");
	sel = sl_labelsel_parse(in, err, sizeof(err));
	ASSERT_NULL(sel, "64-char name");
	ASSERT_TRUE(
		strstr(err, "at position 0: unable to parse requirement: Invalid value: \"xxx") ==
			err,
		"names the key");
	ASSERT_TRUE(strstr(err, "\": name part must be no more than 63 characters") != NULL,
		    "length message");

	/* the 254-char prefix, reported at the second requirement's key */
	strcpy(in, "a, ");
	memset(in + 3, 'p', 254);
	strcpy(in + 257, "/n");
	sel = sl_labelsel_parse(in, err, sizeof(err));
	ASSERT_NULL(sel, "254-char prefix");
	ASSERT_TRUE(!strncmp(err, "at position 3: ", 15), "position of second key");
	ASSERT_TRUE(strstr(err, "prefix part must be no more than 253 characters") != NULL,
		    "prefix message");
out:
	free(s);
	sl_labelsel_free(sel);
}
