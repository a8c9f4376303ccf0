// SPDX-License-Identifier: Apache-2.0
/*
 * lib/patch.c: JSON merge patch (RFC 7386 Appendix A), JSON patch (RFC 6902
 * Appendix A plus error cases), strategic merge patch as kubectl sends it, and
 * the built-in merge key table. Every case also checks that neither input was
 * modified and, through ASan, that nothing leaks.
 */
#include <errno.h>

#include "harness.h"
#include "sluice/json.h"
#include "sluice/patch.h"

enum kind {
	K_MERGE,
	K_JSON,
	K_SMP,	    /* with sl_smp_builtin_merge_key */
	K_SMP_NOKEY /* with a NULL merge key function */
};

/* Parses a test literal; "null" gives NULL, as sl_json_parse does. */
static struct json_object *J(const char *s)
{
	struct json_object *o = sl_json_parse(s, strlen(s), NULL, 0);

	if (!o && strcmp(s, "null"))
		fprintf(stderr, "  bad test JSON: %s\n", s);
	return o;
}

/* Runs one patch; returns 0 or a negative errno like the _ex functions. */
static int run(enum kind k, const struct json_object *doc, const struct json_object *patch,
	       struct json_object **out, char *err, size_t errlen)
{
	switch (k) {
	case K_MERGE:
		return sl_patch_merge_ex(doc, patch, out, err, errlen);
	case K_JSON:
		return sl_patch_json_ex(doc, patch, out, err, errlen);
	case K_SMP:
	case K_SMP_NOKEY:
		*out = sl_patch_strategic(doc, patch, k == K_SMP ? sl_smp_builtin_merge_key : NULL,
					  NULL, err, errlen);
		return *out ? 0 : -errno;
	}
	return -EINVAL;
}

/*
 * Applies patch to doc and compares with want (want == NULL: expect an error
 * whose message contains errsub). Both inputs are compared with pristine
 * copies afterwards.
 */
static bool check(enum kind k, const char *doc_s, const char *patch_s, const char *want_s,
		  const char *errsub)
{
	struct json_object *doc = J(doc_s), *patch = J(patch_s), *want = NULL, *got = NULL;
	struct json_object *doc0 = sl_json_clone(doc), *patch0 = sl_json_clone(patch);
	char err[256] = "untouched";
	bool ok = true;
	int rc;

	rc = run(k, doc, patch, &got, err, sizeof(err));
	if (want_s) {
		want = J(want_s);
		if (rc) {
			fprintf(stderr, "  unexpected error %d: %s\n", rc, err);
			ok = false;
		} else if (!sl_json_equal(got, want)) {
			fprintf(stderr, "  got  %s\n", got ? sl_json_str(got, NULL) : "null");
			fprintf(stderr, "  want %s\n", want_s);
			ok = false;
		}
	} else {
		if (!rc || got) {
			fprintf(stderr, "  expected an error, got %s\n",
				got ? sl_json_str(got, NULL) : "null");
			ok = false;
		} else if (errsub && !strstr(err, errsub)) {
			fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, errsub);
			ok = false;
		}
	}
	if (!sl_json_equal(doc, doc0) || !sl_json_equal(patch, patch0)) {
		fprintf(stderr, "  an input was modified\n");
		ok = false;
	}
	/* No reference to the inputs may survive in the result. */
	if (doc && json_object_put(doc) != 1) {
		fprintf(stderr, "  doc still referenced\n");
		ok = false;
	}
	if (patch && json_object_put(patch) != 1) {
		fprintf(stderr, "  patch still referenced\n");
		ok = false;
	}
	json_object_put(doc0);
	json_object_put(patch0);
	json_object_put(got);
	json_object_put(want);
	return ok;
}

#define CHECK(k, doc, patch, want, name)    ASSERT_TRUE(check(k, doc, patch, want, NULL), name)
#define CHECK_ERR(k, doc, patch, sub, name) ASSERT_TRUE(check(k, doc, patch, NULL, sub), name)

/* ---- RFC 7386 ------------------------------------------------------------ */

TEST(merge_rfc7386_appendix_a)
{
	static const char *const cases[][3] = {
		{"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
		{"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
		{"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
		{"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
		{"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
		{"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
		{"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
		 "{\"a\":{\"b\":\"d\"}}"},
		{"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
		{"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
		{"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
		{"{\"a\":\"foo\"}", "null", "null"},
		{"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
		{"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
		{"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
		{"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!ASSERT_TRUE(check(K_MERGE, cases[i][0], cases[i][1], cases[i][2], NULL),
				 "appendix A"))
			fprintf(stderr, "  case %zu: %s + %s\n", i + 1, cases[i][0], cases[i][1]);
	}
}

TEST(merge_rfc7386_section3_example)
{
	CHECK(K_MERGE,
	      "{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
	      "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
	      "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\","
	      "\"author\":{\"familyName\":null},\"tags\":[\"example\"]}",
	      "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
	      "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}",
	      "rfc 7386 section 3");
}

TEST(merge_null_result_and_public_api)
{
	struct json_object *doc = J("{\"a\":1}"), *res;
	char err[128];

	errno = 0;
	res = sl_patch_merge(doc, NULL, err, sizeof(err));
	ASSERT_NULL(res, "null result is not a document");
	ASSERT_EQ(errno, EINVAL, "errno");
	ASSERT_TRUE(strstr(err, "null") != NULL, "message says null");
	res = sl_patch_merge(NULL, doc, err, sizeof(err));
	if (ASSERT_NOT_NULL(res, "null doc + object"))
		ASSERT_TRUE(sl_json_equal(res, doc), "patch applied to {}");
	json_object_put(res);
	/* The result keeps the target's member order; new members go last. */
	{
		struct json_object *p = J("{\"c\":3,\"a\":2}"), *t = J("{\"a\":1,\"b\":1}");

		res = sl_patch_merge(t, p, err, sizeof(err));
		if (ASSERT_NOT_NULL(res, "merge"))
			ASSERT_STREQ(sl_json_str(res, NULL), "{\"a\":2,\"b\":1,\"c\":3}", "order");
		json_object_put(res);
		json_object_put(p);
		json_object_put(t);
	}
	json_object_put(doc);
}

/* ---- RFC 6902 ------------------------------------------------------------ */

TEST(json_rfc6902_appendix_a)
{
	CHECK(K_JSON, "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
	      "{\"baz\":\"qux\",\"foo\":\"bar\"}", "A.1 add object member");
	CHECK(K_JSON, "{\"foo\":[\"bar\",\"baz\"]}",
	      "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
	      "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "A.2 add array element");
	CHECK(K_JSON, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
	      "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}",
	      "A.3 remove object member");
	CHECK(K_JSON, "{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
	      "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]", "{\"foo\":[\"bar\",\"baz\"]}",
	      "A.4 remove array element");
	CHECK(K_JSON, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
	      "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
	      "{\"baz\":\"boo\",\"foo\":\"bar\"}", "A.5 replace");
	CHECK(K_JSON,
	      "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
	      "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
	      "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}",
	      "A.6 move value");
	CHECK(K_JSON, "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
	      "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
	      "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}", "A.7 move array element");
	CHECK(K_JSON, "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
	      "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
	      "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
	      "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}", "A.8 test success");
	CHECK_ERR(K_JSON, "{\"baz\":\"qux\"}",
		  "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]",
		  "op 0 (test): path /baz: test failed", "A.9 test error");
	CHECK(K_JSON, "{\"foo\":\"bar\"}",
	      "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
	      "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}", "A.10 add nested member");
	CHECK(K_JSON, "{\"foo\":\"bar\"}",
	      "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
	      "{\"foo\":\"bar\",\"baz\":\"qux\"}", "A.11 ignore unknown members");
	CHECK_ERR(K_JSON, "{\"foo\":\"bar\"}",
		  "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]",
		  "op 0 (add): path /baz/bat: parent does not exist", "A.12 nonexistent target");
	/* A.13: json-c keeps the last duplicate member, so this is remove /baz: missing. */
	CHECK_ERR(K_JSON, "{\"foo\":\"bar\"}",
		  "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"op\":\"remove\"}]",
		  "does not exist", "A.13 invalid patch document");
	CHECK(K_JSON, "{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
	      "{\"/\":9,\"~1\":10}", "A.14 escape ordering");
	CHECK_ERR(K_JSON, "{\"/\":9,\"~1\":10}",
		  "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", "test failed",
		  "A.15 string is not number");
	CHECK(K_JSON, "{\"foo\":[\"bar\"]}",
	      "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
	      "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}", "A.16 add array value");
}

TEST(json_pointer_rfc6901)
{
	const char *doc = "{\"foo\":[\"bar\",\"baz\"],\"\":0,\"a/b\":1,\"c%d\":2,\"e^f\":3,"
			  "\"g|h\":4,\"i\\\\j\":5,\"k\\\"l\":6,\" \":7,\"m~n\":8}";
	static const char *const cases[][2] = {
		{"", NULL}, /* the whole document, checked below */
		{"/foo", "[\"bar\",\"baz\"]"},
		{"/foo/0", "\"bar\""},
		{"/", "0"},
		{"/a~1b", "1"},
		{"/c%d", "2"},
		{"/e^f", "3"},
		{"/g|h", "4"},
		{"/i\\\\j", "5"},
		{"/k\\\"l", "6"},
		{"/ ", "7"},
		{"/m~0n", "8"},
	};
	char patch[256];

	for (size_t i = 1; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(patch, sizeof(patch), "[{\"op\":\"test\",\"path\":\"%s\",\"value\":%s}]",
			 cases[i][0], cases[i][1]);
		if (!ASSERT_TRUE(check(K_JSON, doc, patch, doc, NULL), "rfc 6901 section 5"))
			fprintf(stderr, "  pointer %s\n", cases[i][0]);
	}
	snprintf(patch, sizeof(patch), "[{\"op\":\"test\",\"path\":\"\",\"value\":%s}]", doc);
	CHECK(K_JSON, doc, patch, doc, "whole document");
}

TEST(json_pointer_errors)
{
	const char *doc = "{\"foo\":[\"bar\",\"baz\"],\"n\":1}";

	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/foo/01\",\"value\":1}]",
		  "op 0 (add): path /foo/01: \"01\" is not an array index", "leading zero");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"replace\",\"path\":\"/foo/00\",\"value\":1}]",
		  "not an array index", "double zero");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"remove\",\"path\":\"/foo/-1\"}]", "not an array index",
		  "negative");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"remove\",\"path\":\"/foo/+1\"}]", "not an array index",
		  "plus sign");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/foo/3\",\"value\":1}]",
		  "index 3 out of bounds (array has 2 elements)", "add past the end");
	CHECK(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/foo/2\",\"value\":1}]",
	      "{\"foo\":[\"bar\",\"baz\",1],\"n\":1}", "add at the end");
	CHECK(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/foo/0\",\"value\":1}]",
	      "{\"foo\":[1,\"bar\",\"baz\"],\"n\":1}", "add at the front");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"remove\",\"path\":\"/foo/2\"}]", "out of bounds",
		  "remove past the end");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"remove\",\"path\":\"/foo/-\"}]", "out of bounds",
		  "remove -");
	CHECK_ERR(K_JSON, doc,
		  "[{\"op\":\"replace\",\"path\":\"/foo/99999999999999999999\",\"value\":1}]",
		  "out of bounds", "huge index");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/a~2b\",\"value\":1}]",
		  "'~' must be followed by '0' or '1'", "bad escape");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/a~\",\"value\":1}]", "'~' must be",
		  "trailing tilde");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"foo\",\"value\":1}]",
		  "must be empty or start with '/'", "no leading slash");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/n/x\",\"value\":1}]",
		  "parent is not an object or array", "add below a scalar");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/foo\\u0000x\",\"value\":1}]", "NUL",
		  "NUL in pointer");
}

TEST(json_op_errors)
{
	const char *doc = "{\"spec\":{\"a\":1},\"l\":[1,2]}";

	CHECK_ERR(K_JSON, doc,
		  "[{\"op\":\"test\",\"path\":\"/spec/a\",\"value\":1},"
		  "{\"op\":\"add\",\"path\":\"/spec/b\",\"value\":2},"
		  "{\"op\":\"remove\",\"path\":\"/spec/x\"}]",
		  "op 2 (remove): path /spec/x does not exist", "message names index, op, path");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"frobnicate\",\"path\":\"/a\"}]",
		  "op 0 (?): unknown op \"frobnicate\"", "unknown op");
	CHECK_ERR(K_JSON, doc, "[{\"path\":\"/a\"}]", "missing \"op\"", "no op");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\"}]", "op 0 (add): missing \"path\"", "no path");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":7,\"value\":1}]", "must be a string",
		  "path not a string");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/x\"}]", "missing \"value\"",
		  "add without value");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"replace\",\"path\":\"/x\",\"value\":1}]",
		  "op 0 (replace): path /x does not exist", "replace missing");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"move\",\"path\":\"/x\"}]", "missing \"from\"",
		  "move without from");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"move\",\"from\":\"/nope\",\"path\":\"/x\"}]",
		  "op 0 (move): from /nope does not exist", "move from missing");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"copy\",\"from\":\"/nope\",\"path\":\"/x\"}]",
		  "op 0 (copy): from /nope does not exist", "copy from missing");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"move\",\"from\":\"/spec\",\"path\":\"/spec/inner\"}]",
		  "cannot move a value into its own child", "move into own child");
	CHECK_ERR(K_JSON, doc, "[{\"op\":\"remove\",\"path\":\"\"}]",
		  "cannot remove the whole document", "remove root");
	CHECK_ERR(K_JSON, doc, "[1]", "op 0 (?): operation must be a JSON object", "op not object");
	CHECK_ERR(K_JSON, doc, "{\"op\":\"add\"}", "must be an array", "patch not array");
	CHECK(K_JSON, doc, "[]", doc, "empty patch");
}

TEST(json_ops_more)
{
	const char *doc = "{\"a\":{\"b\":[1,2,3]},\"c\":\"x\"}";

	CHECK(K_JSON, doc, "[{\"op\":\"copy\",\"from\":\"/a/b\",\"path\":\"/d\"}]",
	      "{\"a\":{\"b\":[1,2,3]},\"c\":\"x\",\"d\":[1,2,3]}", "copy");
	CHECK(K_JSON, doc, "[{\"op\":\"copy\",\"from\":\"/a/b/0\",\"path\":\"/a/b/-\"}]",
	      "{\"a\":{\"b\":[1,2,3,1]},\"c\":\"x\"}", "copy within array");
	CHECK(K_JSON, doc, "[{\"op\":\"move\",\"from\":\"/c\",\"path\":\"/a/c\"}]",
	      "{\"a\":{\"b\":[1,2,3],\"c\":\"x\"}}", "move into object");
	CHECK(K_JSON, doc, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]", doc,
	      "move onto itself");
	CHECK(K_JSON, doc, "[{\"op\":\"move\",\"from\":\"/a/b/2\",\"path\":\"/a/b/0\"}]",
	      "{\"a\":{\"b\":[3,1,2]},\"c\":\"x\"}", "move array element forward");
	CHECK(K_JSON, doc, "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"z\":1}}]", "{\"z\":1}",
	      "replace root");
	CHECK(K_JSON, doc, "[{\"op\":\"replace\",\"path\":\"/a/b/1\",\"value\":{\"k\":null}}]",
	      "{\"a\":{\"b\":[1,{\"k\":null},3]},\"c\":\"x\"}", "replace array element");
	CHECK(K_JSON, doc, "[{\"op\":\"add\",\"path\":\"/c\",\"value\":null}]",
	      "{\"a\":{\"b\":[1,2,3]},\"c\":null}", "add null replaces member");
	/* test is structural: member order ignored, 1 equals 1.0. */
	CHECK(K_JSON, "{\"o\":{\"x\":1,\"y\":[true,null]}}",
	      "[{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"y\":[true,null],\"x\":1.0}}]",
	      "{\"o\":{\"x\":1,\"y\":[true,null]}}", "structural test");
	CHECK_ERR(K_JSON, "{\"o\":{\"x\":1,\"y\":[true,null]}}",
		  "[{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"y\":[null,true],\"x\":1}}]",
		  "test failed", "array order matters");
	CHECK_ERR(K_JSON, "{\"o\":{\"x\":1}}",
		  "[{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"x\":1,\"z\":null}}]",
		  "test failed", "extra null member differs");
}

TEST(json_atomic_and_null_result)
{
	struct json_object *doc = J("{\"a\":1,\"l\":[1]}"), *patch, *res,
			   *doc0 = sl_json_clone(doc);
	char err[256];

	/* Three ops succeed, the fourth fails: nothing of the first three shows. */
	patch = J("[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},"
		  "{\"op\":\"remove\",\"path\":\"/a\"},"
		  "{\"op\":\"add\",\"path\":\"/l/0\",\"value\":0},"
		  "{\"op\":\"test\",\"path\":\"/b\",\"value\":3}]");
	errno = 0;
	res = sl_patch_json(doc, patch, err, sizeof(err));
	ASSERT_NULL(res, "failed patch returns NULL");
	ASSERT_EQ(errno, EINVAL, "errno");
	ASSERT_TRUE(strstr(err, "op 3 (test)") != NULL, "names op 3");
	ASSERT_TRUE(sl_json_equal(doc, doc0), "original untouched");
	json_object_put(patch);

	patch = J("[{\"op\":\"replace\",\"path\":\"\",\"value\":null}]");
	res = sl_patch_json(doc, patch, err, sizeof(err));
	ASSERT_NULL(res, "null result");
	ASSERT_TRUE(strstr(err, "result is null") != NULL, "message");
	ASSERT_OK(sl_patch_json_ex(doc, patch, &res, err, sizeof(err)), "_ex allows null");
	ASSERT_NULL(res, "null document");
	json_object_put(patch);
	json_object_put(doc);
	json_object_put(doc0);
}

/* A document of `n` nested arrays, built without the parser. */
static struct json_object *nested_arrays(int n)
{
	struct json_object *o = json_object_new_array();

	for (int i = 1; i < n; i++) {
		struct json_object *p = json_object_new_array();

		json_object_array_add(p, o);
		o = p;
	}
	return o;
}

TEST(depth_limits)
{
	struct json_object *deep = nested_arrays(SL_JSON_MAX_DEPTH + 10), *ok = nested_arrays(61);
	struct json_object *doc = J("{\"a\":{\"b\":{}}}"), *patch, *wrap, *res;
	char err[256];

	/* A document deeper than the parser allows (built in memory) is refused. */
	wrap = json_object_new_object();
	json_object_object_add(wrap, "x", json_object_get(deep));
	res = sl_patch_merge(wrap, doc, err, sizeof(err));
	ASSERT_NULL(res, "merge: too deep");
	ASSERT_TRUE(strstr(err, "deeper than") != NULL, "merge message");
	res = sl_patch_strategic(wrap, doc, sl_smp_builtin_merge_key, NULL, err, sizeof(err));
	ASSERT_NULL(res, "strategic: too deep");
	patch = json_object_new_array();
	res = sl_patch_json(wrap, patch, err, sizeof(err));
	ASSERT_NULL(res, "json: too deep");
	json_object_put(patch);
	res = sl_patch_merge(doc, wrap, err, sizeof(err));
	ASSERT_NULL(res, "merge: patch too deep");
	json_object_put(wrap);

	/* 61 arrays at /a/b/c nest 64 deep: the limit, and the result parses back. */
	{
		struct json_object *op = json_object_new_object();

		patch = json_object_new_array();
		json_object_object_add(op, "op", json_object_new_string("add"));
		json_object_object_add(op, "path", json_object_new_string("/a/b/c"));
		json_object_object_add(op, "value", json_object_get(ok));
		json_object_array_add(patch, op);
		res = sl_patch_json(doc, patch, err, sizeof(err));
		if (ASSERT_NOT_NULL(res, "64 deep is fine")) {
			size_t n;
			const char *s = sl_json_str(res, &n);
			struct json_object *back = sl_json_parse(s, n, err, sizeof(err));

			ASSERT_NOT_NULL(back, "result parses back");
			json_object_put(back);
		}
		json_object_put(res);
		/* The same value one level deeper would nest 65: refused. */
		json_object_object_add(op, "path", json_object_new_string("/a/b/c/d"));
		json_object_object_add(sl_json_path(doc, "a", "b", (char *)NULL), "c",
				       json_object_new_object());
		res = sl_patch_json(doc, patch, err, sizeof(err));
		ASSERT_NULL(res, "65 deep is refused");
		json_object_put(res);
		ASSERT_TRUE(strstr(err, "op 0 (add): result nests deeper than 64") != NULL,
			    "message");
		json_object_put(patch);
	}
	CHECK_ERR(
		K_JSON, "{\"a\":{}}",
		"[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/a/x\"},"
		"{\"op\":\"copy\",\"from\":\"\",\"path\":\"/a/x/a/x\"},"
		"{\"op\":\"copy\",\"from\":\"\",\"path\":\"/a/x/a/x/a/x/a/x\"},"
		"{\"op\":\"copy\",\"from\":\"\",\"path\":\"/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x\"},"
		"{\"op\":\"copy\",\"from\":\"\",\"path\":\"/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x"
		"/a/x/a/x/a/x/a/x/a/x/a/x\"},"
		"{\"op\":\"copy\",\"from\":\"\",\"path\":\"/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x"
		"/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x/a/x"
		"/a/x/a/x\"}]",
		"deeper than 64", "copy doubling depth");
	json_object_put(deep);
	json_object_put(ok);
	json_object_put(doc);
}

TEST(json_copy_bomb_is_capped)
{
	/* Each op copies the whole document into itself: 2^n nodes without a cap. */
	struct json_object *patch = json_object_new_array(), *doc = J("{\"a\":[1,2,3,4,5,6,7,8]}");
	struct json_object *res;
	char err[256], path[32];

	for (int i = 0; i < 40; i++) {
		struct json_object *op = json_object_new_object();

		snprintf(path, sizeof(path), "/c%d", i);
		json_object_object_add(op, "op", json_object_new_string("copy"));
		json_object_object_add(op, "from", json_object_new_string(""));
		json_object_object_add(op, "path", json_object_new_string(path));
		json_object_array_add(patch, op);
	}
	res = sl_patch_json(doc, patch, err, sizeof(err));
	ASSERT_NULL(res, "refused");
	ASSERT_TRUE(strstr(err, "copies more than") != NULL, "message");
	json_object_put(patch);
	json_object_put(doc);
}

/* ---- Strategic merge patch ------------------------------------------------ */

#define DEPLOY                                                                                 \
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","  \
	"\"labels\":{\"app\":\"web\",\"tier\":\"fe\"}},\"spec\":{\"replicas\":2,"              \
	"\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":1}},"        \
	"\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{"                 \
	"\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.24\",\"args\":[\"-a\",\"-b\"]," \
	"\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}],"                             \
	"\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],"         \
	"\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"}]},"                     \
	"{\"name\":\"sidecar\",\"image\":\"envoy:1\"}],"                                       \
	"\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}}],"                                   \
	"\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\"}]}}}}"

TEST(smp_labels_add_remove)
{
	CHECK(K_SMP, "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}",
	      "{\"metadata\":{\"labels\":{\"b\":null,\"c\":\"3\"}}}",
	      "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\",\"c\":\"3\"}}}",
	      "kubectl label c=3 b-");
	CHECK(K_SMP, "{\"metadata\":{\"name\":\"p\"}}",
	      "{\"metadata\":{\"labels\":{\"x\":\"y\",\"gone\":null}}}",
	      "{\"metadata\":{\"name\":\"p\",\"labels\":{\"x\":\"y\"}}}",
	      "labels on an object without any");
}

TEST(smp_deployment_image_change)
{
	/* kubectl set image deployment/web app=nginx:1.25 */
	CHECK(K_SMP, DEPLOY,
	      "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\","
	      "\"image\":\"nginx:1.25\"}]}}}}",
	      "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
	      "\"labels\":{\"app\":\"web\",\"tier\":\"fe\"}},\"spec\":{\"replicas\":2,"
	      "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":1}},"
	      "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{"
	      "\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.25\",\"args\":[\"-a\",\"-b\"],"
	      "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}],"
	      "\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],"
	      "\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"}]},"
	      "{\"name\":\"sidecar\",\"image\":\"envoy:1\"}],"
	      "\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}}],"
	      "\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\"}]}}}}",
	      "set image");
	/* Without merge keys the containers list is replaced wholesale. */
	CHECK(K_SMP_NOKEY,
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"1\"},{\"name\":\"b\"}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"2\"}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"2\"}]}}",
	      "NULL keyfn: atomic");
}

TEST(smp_nested_lists_by_key)
{
	/* env by name, ports by containerPort, volumeMounts by mountPath, args atomic. */
	CHECK(K_SMP,
	      "{\"spec\":{\"containers\":[{\"name\":\"app\",\"args\":[\"-a\",\"-b\"],"
	      "\"ports\":[{\"containerPort\":80,\"name\":\"http\"}],"
	      "\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],"
	      "\"volumeMounts\":[{\"name\":\"d\",\"mountPath\":\"/d\",\"readOnly\":true}]}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"app\",\"args\":[\"-c\"],"
	      "\"ports\":[{\"containerPort\":80,\"name\":\"web\"},{\"containerPort\":443}],"
	      "\"env\":[{\"name\":\"B\",\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}],"
	      "\"volumeMounts\":[{\"mountPath\":\"/d\",\"readOnly\":null}]}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"app\",\"args\":[\"-c\"],"
	      "\"ports\":[{\"containerPort\":80,\"name\":\"web\"},{\"containerPort\":443}],"
	      "\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"3\"},"
	      "{\"name\":\"C\",\"value\":\"4\"}],"
	      "\"volumeMounts\":[{\"name\":\"d\",\"mountPath\":\"/d\"}]}]}}",
	      "nested merge");
	/* A Pod's initContainers and volumes. */
	CHECK(K_SMP,
	      "{\"spec\":{\"initContainers\":[{\"name\":\"i\",\"image\":\"1\"}],"
	      "\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]}}",
	      "{\"spec\":{\"initContainers\":[{\"name\":\"i\",\"image\":\"2\"}],"
	      "\"volumes\":[{\"name\":\"w\",\"configMap\":{\"name\":\"cm\"}}]}}",
	      "{\"spec\":{\"initContainers\":[{\"name\":\"i\",\"image\":\"2\"}],"
	      "\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}},{\"name\":\"w\",\"configMap\":{"
	      "\"name\":\"cm\"}}]}}",
	      "pod lists");
}

TEST(smp_service_ports)
{
	const char *svc =
		"{\"kind\":\"Service\",\"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":["
		"{\"name\":\"http\",\"port\":80,\"targetPort\":8080},"
		"{\"name\":\"metrics\",\"port\":9090}]}}";

	CHECK(K_SMP, svc,
	      "{\"spec\":{\"ports\":[{\"name\":\"https\",\"port\":443,\"targetPort\":8443}]}}",
	      "{\"kind\":\"Service\",\"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":["
	      "{\"name\":\"http\",\"port\":80,\"targetPort\":8080},{\"name\":\"metrics\",\"port\":"
	      "9090},"
	      "{\"name\":\"https\",\"port\":443,\"targetPort\":8443}]}}",
	      "add a port: appended");
	CHECK(K_SMP, svc, "{\"spec\":{\"ports\":[{\"$patch\":\"delete\",\"port\":80}]}}",
	      "{\"kind\":\"Service\",\"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":["
	      "{\"name\":\"metrics\",\"port\":9090}]}}",
	      "remove a port by key");
	CHECK(K_SMP, svc, "{\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":9000}]}}",
	      "{\"kind\":\"Service\",\"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":["
	      "{\"name\":\"http\",\"port\":80,\"targetPort\":9000},{\"name\":\"metrics\",\"port\":"
	      "9090}]}}",
	      "change a port in place");
	/* The merge key matches numerically: 80.0 is port 80. */
	CHECK(K_SMP, svc, "{\"spec\":{\"ports\":[{\"$patch\":\"delete\",\"port\":80.0}]}}",
	      "{\"kind\":\"Service\",\"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":["
	      "{\"name\":\"metrics\",\"port\":9090}]}}",
	      "numeric key");
	/* An empty list in a strategic patch merges nothing (upstream behaviour). */
	CHECK(K_SMP, svc, "{\"spec\":{\"ports\":[]}}", svc, "empty list is a no-op");
}

TEST(smp_kubectl_apply_set_element_order)
{
	/* kubectl apply: config went from [app, sidecar] to [sidecar, app, log]. */
	CHECK(K_SMP,
	      "{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"a\"},"
	      "{\"name\":\"sidecar\",\"image\":\"s\"}]}}",
	      "{\"spec\":{\"$setElementOrder/"
	      "containers\":[{\"name\":\"sidecar\"},{\"name\":\"app\"},"
	      "{\"name\":\"log\"}],\"containers\":[{\"name\":\"log\",\"image\":\"l\"}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"sidecar\",\"image\":\"s\"},"
	      "{\"name\":\"app\",\"image\":\"a\"},{\"name\":\"log\",\"image\":\"l\"}]}}",
	      "reorder and add");
	/* kubectl apply removing a container it once applied. */
	CHECK(K_SMP,
	      "{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"a\"},"
	      "{\"name\":\"old\",\"image\":\"o\"}]}}",
	      "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"app\"}],"
	      "\"containers\":[{\"$patch\":\"delete\",\"name\":\"old\"}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"a\"}]}}", "delete");
	/* A server-side element the client never applied keeps its place. */
	CHECK(K_SMP,
	      "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\"},"
	      "{\"name\":\"injected\"},{\"name\":\"b\"}]}}}}",
	      "{\"spec\":{\"template\":{\"spec\":{\"$setElementOrder/"
	      "containers\":[{\"name\":\"b\"},"
	      "{\"name\":\"a\"}]}}}}",
	      "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"injected\"},"
	      "{\"name\":\"b\"},{\"name\":\"a\"}]}}}}",
	      "server-only element");
	/* Finalizers: order of a primitive merge list. */
	CHECK(K_SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	      "{\"metadata\":{\"$setElementOrder/finalizers\":[\"c\",\"b\",\"a\"],"
	      "\"finalizers\":[\"c\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"c\",\"b\",\"a\"]}}", "primitive order");
	CHECK_ERR(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
		  "{\"spec\":{\"$setElementOrder/containers\":[{\"image\":\"x\"}]}}",
		  "has no merge key \"name\"", "order element without key");
	CHECK_ERR(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
		  "{\"spec\":{\"$setElementOrder/containers\":{\"name\":\"a\"}}}", "must be a list",
		  "order not a list");
}

TEST(smp_patch_directives)
{
	/* $patch: replace on a map. */
	CHECK(K_SMP, "{\"spec\":{\"selector\":{\"a\":\"1\",\"b\":\"2\"}}}",
	      "{\"spec\":{\"selector\":{\"$patch\":\"replace\",\"c\":\"3\",\"n\":null}}}",
	      "{\"spec\":{\"selector\":{\"c\":\"3\"}}}", "map replace");
	/* $patch: delete on a map leaves it empty, as upstream. */
	CHECK(K_SMP, "{\"spec\":{\"selector\":{\"a\":\"1\"},\"x\":1}}",
	      "{\"spec\":{\"selector\":{\"$patch\":\"delete\"}}}",
	      "{\"spec\":{\"selector\":{},\"x\":1}}", "map delete");
	/* $patch: merge is the default. */
	CHECK(K_SMP, "{\"spec\":{\"selector\":{\"a\":\"1\"}}}",
	      "{\"spec\":{\"selector\":{\"$patch\":\"merge\",\"b\":\"2\"}}}",
	      "{\"spec\":{\"selector\":{\"a\":\"1\",\"b\":\"2\"}}}", "map merge");
	/* $patch: replace inside a keyed list. */
	CHECK(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"},{\"$patch\":\"replace\"}"
	      "]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}", "list replace");
	/* $patch: delete of a missing element or from a missing list is a no-op. */
	CHECK(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
	      "{\"spec\":{\"containers\":[{\"$patch\":\"delete\",\"name\":\"zz\"}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}", "delete missing element");
	CHECK(K_SMP, "{\"spec\":{}}",
	      "{\"spec\":{\"volumes\":[{\"$patch\":\"delete\",\"name\":\"zz\"}]}}",
	      "{\"spec\":{\"volumes\":[]}}", "delete from missing list");
	/* Delete first, then the re-added element is new (upstream order). */
	CHECK(K_SMP,
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"1\",\"x\":1},{\"name\":\"b\"}"
	      "]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"2\"},"
	      "{\"$patch\":\"delete\",\"name\":\"a\"}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"b\"},{\"name\":\"a\",\"image\":\"2\"}]}}",
	      "delete then add");
	/* $retainKeys: Deployment strategy switched to Recreate. */
	{
		struct json_object *doc = J(DEPLOY), *patch, *res;
		char err[256];

		patch = J("{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":"
			  "\"Recreate\"}}}");
		res = sl_patch_strategic(doc, patch, sl_smp_builtin_merge_key, NULL, err,
					 sizeof(err));
		if (ASSERT_NOT_NULL(res, "retainKeys")) {
			struct json_object *want = J("{\"type\":\"Recreate\"}");

			ASSERT_TRUE(
				sl_json_equal(sl_json_path(res, "spec", "strategy", (char *)NULL),
					      want),
				"only type kept");
			ASSERT_TRUE(
				sl_json_equal(sl_json_path(res, "spec", "template", (char *)NULL),
					      sl_json_path(doc, "spec", "template", (char *)NULL)),
				"rest untouched");
			json_object_put(want);
		}
		json_object_put(res);
		json_object_put(patch);
		json_object_put(doc);
	}
}

TEST(smp_primitive_lists)
{
	/* finalizers merge as a set; $deleteFromPrimitiveList removes. */
	CHECK(K_SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"c\",\"d\",\"d\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\",\"d\"]}}", "set union");
	CHECK(K_SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}",
	      "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"b\",\"zz\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"a\",\"c\"]}}", "delete from primitive list");
	CHECK(K_SMP, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	      "{\"metadata\":{\"$deleteFromPrimitiveList/"
	      "finalizers\":[\"a\"],\"finalizers\":[\"x\"]}}",
	      "{\"metadata\":{\"finalizers\":[\"b\",\"x\"]}}", "delete and add");
	/* args has no merge strategy: replaced. */
	CHECK(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"1\",\"2\"]}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"3\"]}]}}",
	      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"3\"]}]}}",
	      "atomic primitives");
	/* tolerations are atomic upstream. */
	CHECK(K_SMP, "{\"spec\":{\"tolerations\":[{\"key\":\"a\"},{\"key\":\"b\"}]}}",
	      "{\"spec\":{\"tolerations\":[{\"key\":\"c\",\"value\":null}]}}",
	      "{\"spec\":{\"tolerations\":[{\"key\":\"c\"}]}}", "tolerations replaced");
	CHECK_ERR(K_SMP, "{\"metadata\":{\"finalizers\":[\"a\"]}}",
		  "{\"metadata\":{\"finalizers\":[{\"x\":1}]}}", "holds an object",
		  "object in a set");
	CHECK_ERR(K_SMP, "{\"metadata\":{\"finalizers\":[\"a\"]}}",
		  "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[[1]]}}",
		  "not a primitive value", "list in delete list");
}

TEST(smp_status_and_metadata_lists)
{
	CHECK(K_SMP,
	      "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},"
	      "{\"type\":\"MemoryPressure\",\"status\":\"False\"}],"
	      "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"}]}}",
	      "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
	      "\"addresses\":[{\"type\":\"Hostname\",\"address\":\"n1\"}]}}",
	      "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
	      "{\"type\":\"MemoryPressure\",\"status\":\"False\"}],"
	      "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"},"
	      "{\"type\":\"Hostname\",\"address\":\"n1\"}]}}",
	      "node status");
	CHECK(K_SMP, "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"u1\",\"name\":\"rs\"}]}}",
	      "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"u1\",\"controller\":true},"
	      "{\"uid\":\"u2\",\"name\":\"x\"}]}}",
	      "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"u1\",\"name\":\"rs\",\"controller\":"
	      "true},"
	      "{\"uid\":\"u2\",\"name\":\"x\"}]}}",
	      "ownerReferences by uid");
	/* NetworkPolicy lists are atomic. */
	CHECK(K_SMP, "{\"spec\":{\"ingress\":[{\"from\":[{\"podSelector\":{}}]}]}}",
	      "{\"spec\":{\"ingress\":[{\"ports\":[{\"port\":80}]}]}}",
	      "{\"spec\":{\"ingress\":[{\"ports\":[{\"port\":80}]}]}}", "networkpolicy atomic");
}

TEST(smp_directives_never_in_result)
{
	/* New values (no original) are cleaned too: nulls and directives dropped. */
	struct json_object *patch =
		J("{\"spec\":{\"$retainKeys\":[\"a\",\"b\"],\"a\":{\"$patch\":\"replace\","
		  "\"x\":null,\"y\":1},\"b\":[{\"$patch\":\"replace\"},{\"n\":null}],"
		  "\"$setElementOrder/containers\":[{\"name\":\"c\"}],"
		  "\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"E\","
		  "\"$patch\":\"merge\"}],\"q\":null}],"
		  "\"$deleteFromPrimitiveList/f\":[\"x\"]}}");
	struct json_object *res;
	char err[256];

	res = sl_patch_strategic(NULL, patch, sl_smp_builtin_merge_key, NULL, err, sizeof(err));
	if (ASSERT_NOT_NULL(res, "apply to nothing")) {
		const char *s = sl_json_str(res, NULL);

		ASSERT_TRUE(strchr(s, '$') == NULL, "no directive left");
		ASSERT_TRUE(strstr(s, "null") == NULL, "no patch null left");
		ASSERT_STREQ(
			s,
			"{\"spec\":{\"a\":{\"y\":1},\"b\":[{}],\"containers\":[{\"name\":\"c\","
			"\"env\":[{\"name\":\"E\"}]}]}}",
			"cleaned");
	}
	json_object_put(res);
	json_object_put(patch);
}

TEST(smp_errors)
{
	CHECK_ERR(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
		  "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
		  "list spec.containers: element 0 has no merge key \"name\"", "missing merge key");
	CHECK_ERR(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
		  "{\"spec\":{\"containers\":[{\"name\":{\"x\":1}}]}}", "no merge key",
		  "object as merge key");
	CHECK_ERR(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
		  "{\"spec\":{\"containers\":[{\"$patch\":\"explode\",\"name\":\"a\"}]}}",
		  "unknown \"$patch\" directive \"explode\"", "bad list directive");
	CHECK_ERR(K_SMP, "{\"spec\":{}}", "{\"spec\":{\"$patch\":7}}",
		  "map spec: unknown \"$patch\"", "bad map directive");
	CHECK_ERR(K_SMP, "{\"spec\":{\"tolerations\":[]}}",
		  "{\"spec\":{\"tolerations\":[{\"$patch\":\"delete\",\"key\":\"a\"}]}}",
		  "needs a list with a merge key", "delete in atomic list");
	CHECK_ERR(K_SMP, "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
		  "{\"spec\":{\"containers\":[{\"$patch\":\"delete\"}]}}", "without merge key",
		  "delete without key");
	CHECK_ERR(K_SMP, "{\"spec\":{}}", "{\"spec\":{\"$retainKeys\":\"a\"}}", "must be a list",
		  "retainKeys not list");
	CHECK_ERR(K_SMP, "{\"spec\":{}}", "{\"spec\":{\"$retainKeys\":[1]}}", "is not a string",
		  "retainKeys element");
	CHECK_ERR(K_SMP, "{}", "[1]", "must be a JSON object", "patch not object");
	CHECK_ERR(K_SMP, "[1]", "{}", "document is not an object", "doc not object");
}

TEST(smp_large_lists_are_linear)
{
	/* 20000 x 20000 elements: quadratic matching would take minutes. */
	enum { N = 20000 };
	struct json_object *doc = json_object_new_object(), *patch = json_object_new_object();
	struct json_object *dl = json_object_new_array(), *pl = json_object_new_array(), *res;
	char err[256], name[32];

	for (int i = 0; i < N; i++) {
		struct json_object *d = json_object_new_object(), *p = json_object_new_object();

		snprintf(name, sizeof(name), "c%d", i);
		json_object_object_add(d, "name", json_object_new_string(name));
		json_object_object_add(p, "name", json_object_new_string(name));
		json_object_object_add(p, "image", json_object_new_int(i));
		json_object_array_add(dl, d);
		json_object_array_add(pl, p);
	}
	json_object_object_add(sl_json_ensure_obj(doc, "spec"), "containers", dl);
	json_object_object_add(sl_json_ensure_obj(patch, "spec"), "containers", pl);
	res = sl_patch_strategic(doc, patch, sl_smp_builtin_merge_key, NULL, err, sizeof(err));
	if (ASSERT_NOT_NULL(res, "merged")) {
		struct json_object *l = sl_json_path(res, "spec", "containers", (char *)NULL);
		int64_t img = -1;

		ASSERT_EQ(json_object_array_length(l), N, "same length");
		sl_json_get_int(json_object_array_get_idx(l, N - 1), "image", &img);
		ASSERT_EQ(img, N - 1, "last merged");
	}
	json_object_put(res);
	json_object_put(doc);
	json_object_put(patch);
}

TEST(builtin_merge_keys)
{
	static const char *const cases[][2] = {
		{"spec.containers", "name"},
		{"spec.initContainers", "name"},
		{"spec.ephemeralContainers", "name"},
		{"spec.template.spec.containers", "name"},
		{"spec.template.spec.initContainers", "name"},
		{"spec.jobTemplate.spec.template.spec.containers", "name"},
		{"spec.containers.ports", "containerPort"},
		{"spec.template.spec.containers.ports", "containerPort"},
		{"spec.template.spec.initContainers.env", "name"},
		{"spec.containers.volumeMounts", "mountPath"},
		{"spec.template.spec.containers.volumeDevices", "devicePath"},
		{"spec.volumes", "name"},
		{"spec.template.spec.volumes", "name"},
		{"spec.imagePullSecrets", "name"},
		{"spec.template.spec.imagePullSecrets", "name"},
		{"spec.ports", "port"},
		{"metadata.ownerReferences", "uid"},
		{"spec.template.metadata.ownerReferences", "uid"},
		{"metadata.finalizers", ""},
		{"status.conditions", "type"},
		{"status.addresses", "type"},
		{"status.podIPs", "ip"},
		{"spec.tolerations", NULL},
		{"spec.template.spec.tolerations", NULL},
		{"spec.containers.args", NULL},
		{"spec.containers.envFrom", NULL},
		{"spec.ingress", NULL},
		{"spec.egress", NULL},
		{"spec.ingress.ports", NULL},
		{"endpoints", NULL},
		{"ports", NULL},
		{"xspec.containers", NULL},
		{"containers", NULL},
		{"", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = sl_smp_builtin_merge_key(cases[i][0], NULL);
		bool ok = cases[i][1] ? (got && !strcmp(got, cases[i][1])) : !got;

		if (!ASSERT_TRUE(ok, "merge key"))
			fprintf(stderr, "  %s -> %s, want %s\n", cases[i][0], got ? got : "NULL",
				cases[i][1] ? cases[i][1] : "NULL");
	}
	ASSERT_NULL(sl_smp_builtin_merge_key(NULL, NULL), "NULL path");
}
