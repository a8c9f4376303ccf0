// SPDX-License-Identifier: Apache-2.0
/* lib/json.c and lib/buf.c: strict parsing, plain output, path helpers. */
#include <errno.h>

#include "harness.h"
#include "sluice/json.h"

TEST(parse_rejects_trailing_garbage)
{
	char err[128];
	struct json_object *o = sl_json_parse("{\"a\":1} x", 9, err, sizeof(err));

	ASSERT_NULL(o, "trailing");
	ASSERT_TRUE(strstr(err, "offset 8") != NULL, "message names the position");
}

TEST(parse_rejects_truncated_and_deep)
{
	char err[128], deep[200];

	ASSERT_NULL(sl_json_parse("{\"a\":", 5, err, sizeof(err)), "truncated");
	memset(deep, '[', sizeof(deep));
	ASSERT_NULL(sl_json_parse(deep, sizeof(deep), err, sizeof(err)), "too deep");
	ASSERT_NULL(sl_json_parse("{\"a\":\"\0\"}", 9, err, sizeof(err)), "embedded NUL");
}

TEST(output_does_not_escape_slash)
{
	struct json_object *o = sl_json_parse("{\"k\":\"a/b\"}", 11, NULL, 0);
	const char *s;

	ASSERT_NOT_NULL(o, "parse");
	s = sl_json_str(o, NULL);
	ASSERT_STREQ(s, "{\"k\":\"a/b\"}", "plain output");
	json_object_put(o);
}

TEST(path_and_setters)
{
	const char *txt = "{\"metadata\":{\"name\":\"x\",\"generation\":3}}";
	struct json_object *o = sl_json_parse(txt, strlen(txt), NULL, 0);
	int64_t g = 0;

	ASSERT_STREQ(json_object_get_string(sl_json_path(o, "metadata", "name", (char *)NULL)), "x",
		     "path");
	ASSERT_NULL(sl_json_path(o, "metadata", "name", "deeper", (char *)NULL),
		    "path through string");
	ASSERT_TRUE(sl_json_get_int(sl_json_get(o, "metadata"), "generation", &g), "int");
	ASSERT_EQ(g, 3, "int value");
	ASSERT_OK(sl_json_set_str(sl_json_ensure_obj(o, "spec"), "a", "b"), "set");
	ASSERT_STREQ(sl_json_get_str(sl_json_get(o, "spec"), "a"), "b", "set value");
	json_object_put(o);
}

TEST(buf_json_string_escapes)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_json_str(&b, "a\"b\\c\n\x01");
	ASSERT_STREQ(sl_buf_cstr(&b), "\"a\\\"b\\\\c\\n\\u0001\"", "escapes");
	sl_buf_fini(&b);
}

TEST(parse_top_level_scalars)
{
	char err[128];
	struct json_object *o = sl_json_parse("42", 2, err, sizeof(err));

	if (ASSERT_NOT_NULL(o, "bare number"))
		ASSERT_EQ(json_object_get_int(o), 42, "value");
	json_object_put(o);
	o = sl_json_parse("true", 4, err, sizeof(err));
	ASSERT_NOT_NULL(o, "bare literal");
	json_object_put(o);
	ASSERT_NULL(sl_json_parse("null", 4, err, sizeof(err)), "null is not an object");
	ASSERT_STREQ(err, "the value is JSON null", "null message");
	ASSERT_NULL(sl_json_parse("4x", 2, err, sizeof(err)), "bad number");
}

#include "sluice/hostport.h"

TEST(hostport_parse)
{
	char host[16];
	int port = -1;

	ASSERT_OK(sl_hostport_parse("127.0.0.1:6443", host, sizeof(host), &port), "plain");
	ASSERT_STREQ(host, "127.0.0.1", "host");
	ASSERT_EQ(port, 6443, "port");
	ASSERT_OK(sl_hostport_parse(":0", host, sizeof(host), &port), "empty host, port 0");
	ASSERT_EQ(sl_hostport_parse("127.0.0.1", host, sizeof(host), &port), -EINVAL, "no colon");
	ASSERT_EQ(sl_hostport_parse("h:", host, sizeof(host), &port), -EINVAL, "no port");
	ASSERT_EQ(sl_hostport_parse("h:65536", host, sizeof(host), &port), -EINVAL, "range");
	ASSERT_EQ(sl_hostport_parse("h:12x", host, sizeof(host), &port), -EINVAL, "garbage");
	ASSERT_EQ(sl_hostport_parse("a-very-long-hostname:1", host, sizeof(host), &port), -EINVAL,
		  "host too long");
}
