// SPDX-License-Identifier: Apache-2.0
/*
 * k8s_obj_decode_text() (lib/k8s_text.c, lib/jtext.c) against the tree
 * decoder it stands in for: on every corpus document and on thousands of
 * mutations of them (bytes flipped, inserted, removed; cut short), both must
 * agree on whether the text is an object of that kind, and when it is, on
 * every typed value. Plus the scanner's corners: escapes, surrogates,
 * numbers at the edges of int64, duplicate members, nesting depth.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

#define CORPUS_DIR "tests/fuzz/corpus/k8s"

/* What the tree decoder says about txt as kind: 1 decoded, 0 refused, with
 * the object in *obj. */
static int tree_decode(enum k8s_kind kind, const char *txt, size_t len, void **obj)
{
	struct json_object *doc = sl_json_parse(txt, len, NULL, 0);
	char err[256];
	int rc;

	*obj = NULL;
	if (!doc)
		return 0;
	rc = k8s_obj_decode(kind, doc, obj, err, sizeof(err));
	json_object_put(doc);
	return rc == 0;
}

/* json-c's strict mode still takes a few spellings RFC 8259 does not (NaN,
 * Infinity, a leading '+' is not one of them); the text decoder refuses
 * them. Those are the only disagreements allowed. */
static bool jsonc_extension(const char *txt, size_t len)
{
	static const char *const ext[] = {"NaN", "nan", "Infinity", "infinity", "-Inf", "-inf"};

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (memmem(txt, len, ext[i], strlen(ext[i])))
			return true;
	return false;
}

/* Both decoders on txt as kind; false (with a line on stderr) if they disagree. */
static bool agree(enum k8s_kind kind, const char *txt, size_t len, const char *what)
{
	void *tree = NULL, *fast = NULL;
	char err[256] = "";
	int t = tree_decode(kind, txt, len, &tree);
	int rc = k8s_obj_decode_text(kind, txt, len, &fast, err, sizeof(err));
	bool ok = true;

	if (rc && rc != -SL_ERR_INVALID) {
		fprintf(stderr, "  %s: kind %d: text decode returned %d\n", what, (int)kind, rc);
		ok = false;
	} else if (rc && !err[0]) {
		fprintf(stderr, "  %s: kind %d: refused without a message\n", what, (int)kind);
		ok = false;
	} else if (t && rc) {
		ok = jsonc_extension(txt, len);
		if (!ok)
			fprintf(stderr, "  %s: kind %d: tree decodes, text says \"%s\": %.*s\n",
				what, (int)kind, err, (int)(len > 300 ? 300 : len), txt);
	} else if (!t && !rc) {
		fprintf(stderr, "  %s: kind %d: text decodes what the tree refuses: %.*s\n", what,
			(int)kind, (int)(len > 300 ? 300 : len), txt);
		ok = false;
	} else if (t && !k8s_obj_equal_typed(kind, tree, fast)) {
		fprintf(stderr, "  %s: kind %d: typed values differ: %.*s\n", what, (int)kind,
			(int)(len > 300 ? 300 : len), txt);
		ok = false;
	}
	k8s_obj_free(kind, tree);
	k8s_obj_free(kind, fast);
	return ok;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else if (buf) {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* One random edit of src into dst (room for len + 8); returns the new length. */
static size_t mutate(const char *src, size_t len, char *dst)
{
	static const char bytes[] = "{}[]\",:0123456789-+.eE \\tnulfasrNI\x01\x7f\xc3";
	size_t at = len ? rng() % len : 0;
	char b = bytes[rng() % (sizeof(bytes) - 1)];

	memcpy(dst, src, len);
	switch (rng() % 4) {
	case 0: /* replace */
		if (len)
			dst[at] = b;
		return len;
	case 1: /* insert */
		memmove(dst + at + 1, dst + at, len - at);
		dst[at] = b;
		return len + 1;
	case 2: /* delete */
		if (len)
			memmove(dst + at, dst + at + 1, len - at - 1);
		return len ? len - 1 : 0;
	default: /* cut short */
		return at;
	}
}

TEST(corpus_and_mutations_agree_with_the_tree_decoder)
{
	DIR *d = opendir(CORPUS_DIR);
	struct dirent *e;
	int files = 0, bad = 0, mutations = 0;

	if (!ASSERT_NOT_NULL(d, "corpus directory (run from the repo root)"))
		return;
	while ((e = readdir(d))) {
		char path[512], *txt, *m;
		size_t len = 0;

		if (!strstr(e->d_name, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, e->d_name);
		txt = slurp(path, &len);
		if (!txt)
			continue;
		files++;
		m = malloc(len + 16);
		for (enum k8s_kind k = K8S_KIND_UNKNOWN + 1; k < K8S_KIND_MAX && m; k++) {
			if (!agree(k, txt, len, e->d_name))
				bad++;
			for (int i = 0; i < 300 && bad < 5; i++) {
				size_t ml = mutate(txt, len, m);

				mutations++;
				if (!agree(k, m, ml, e->d_name))
					bad++;
			}
		}
		free(m);
		free(txt);
	}
	closedir(d);
	ASSERT_TRUE(files >= 20, "corpus files read");
	ASSERT_TRUE(mutations > 10000, "mutations tried");
	ASSERT_EQ(bad, 0, "documents where the two decoders disagree");
}

struct corner {
	enum k8s_kind kind;
	const char *txt;
};

TEST(scanner_corners_agree)
{
	static const struct corner c[] = {
		{K8S_KIND_SERVICE,
		 "{\"metadata\":{\"name\":\"a\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\"}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"name\":\"lone \\ud800 x \\udc00\"}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"name\":\"nul \\u0000 inside\"}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"name\":\"a\",\"name\":\"b\"}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"name\":\"a\",\"name\":null}}"},
		{K8S_KIND_SERVICE,
		 "{\"metadata\":{\"labels\":{\"x\":\"1\",\"y\":\"2\",\"x\":\"3\"}}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":9223372036854775807}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":9223372036854775808}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":-9223372036854775808}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":18446744073709551616}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":1.0}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":1e3}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":-0}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":01}}"},
		{K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"port\":2147483648}]}}"},
		{K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"port\":-2147483648}]}}"},
		{K8S_KIND_SERVICE,
		 "{\"spec\":{\"ports\":[{\"targetPort\":\"http\"},{\"targetPort\":8080},null]}}"},
		{K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"targetPort\":1.5}]}}"},
		{K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[],\"ports\":[{\"port\":1}]}}"},
		{K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"port\":1}],\"ports\":null}}"},
		{K8S_KIND_SERVICE, "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"x\":[[[{}]]]}"},
		{K8S_KIND_SERVICE, "{\"kind\":\"Pod\"}"},
		{K8S_KIND_SERVICE, "{\"kind\":null,\"apiVersion\":7}"},
		{K8S_KIND_SERVICE, " {} "},
		{K8S_KIND_SERVICE, "{} x"},
		{K8S_KIND_SERVICE, "{,}"},
		{K8S_KIND_SERVICE, "{\"a\":1,}"},
		{K8S_KIND_SERVICE, "[]"},
		{K8S_KIND_SERVICE, "\"str\""},
		{K8S_KIND_SERVICE, "{\"a\":\"tab\there\"}"},
		{K8S_KIND_SERVICE, "{\"a\":\"\\x\"}"},
		{K8S_KIND_SERVICE, "{\"a\":tru}"},
		{K8S_KIND_SERVICE,
		 "{\"metadata\":{\"creationTimestamp\":\"2024-05-14T09:12:44+01:00\"}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"creationTimestamp\":\"yesterday\"}}"},
		{K8S_KIND_SERVICE, "{\"metadata\":{\"creationTimestamp\":\"2024-05-14T09:12:44Z\","
				   "\"creationTimestamp\":null}}"},
		{K8S_KIND_ENDPOINTSLICE, "{\"endpoints\":[{\"addresses\":[\"198.18.0.1\",null]}]}"},
		{K8S_KIND_ENDPOINTSLICE,
		 "{\"endpoints\":[{\"addresses\":[\"198.18.0.1\"],\"conditions\":{\"ready\":1}}]}"},
		{K8S_KIND_ENDPOINTSLICE,
		 "{\"endpoints\":[{\"conditions\":{\"ready\":false,\"serving\":true}}]}"},
		{K8S_KIND_NETWORKPOLICY, "{\"spec\":{\"podSelector\":{\"matchLabels\":{\"a\":\"b\"}"
					 "},\"ingress\":[{\"from\":[{\"podSelector\":[]}]}]}}"},
		{K8S_KIND_NETWORKPOLICY,
		 "{\"spec\":{\"podSelector\":{\"matchLabels\":{\"a\":\"b\"}}}}"},
		{K8S_KIND_CONFIGMAP, "{\"binaryData\":{\"k\":\"AAEC\"},\"data\":{\"a\":\"b\"}}"},
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (!agree(c[i].kind, c[i].txt, strlen(c[i].txt), c[i].txt))
			bad++;
	ASSERT_EQ(bad, 0, "corner documents where the two decoders disagree");
}

TEST(nesting_limit_and_messages)
{
	char deep[400], err[256];
	void *obj = NULL;
	size_t n = 0;
	int rc;

	/* 64 levels inside an unknown member pass, 70 do not (SL_JSON_MAX_DEPTH). */
	n += (size_t)snprintf(deep, sizeof(deep), "{\"x\":");
	for (int i = 0; i < 70; i++)
		deep[n++] = '[';
	for (int i = 0; i < 70; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	rc = k8s_obj_decode_text(K8S_KIND_SERVICE, deep, n, &obj, err, sizeof(err));
	ASSERT_EQ(rc, -SL_ERR_INVALID, "70 levels refused");
	ASSERT_TRUE(strstr(err, "invalid JSON: nesting too deep") != NULL, err);
	ASSERT_TRUE(agree(K8S_KIND_SERVICE, deep, n, "deep"), "tree decoder refuses it too");

	rc = k8s_obj_decode_text(K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"port\":\"80\"}]}}", 33,
				 &obj, err, sizeof(err));
	ASSERT_EQ(rc, -SL_ERR_INVALID, "string port refused");
	ASSERT_STREQ(err, "spec.ports[0].port: expected integer", "message names the field");
	ASSERT_NULL(obj, "no object on failure");
	rc = k8s_obj_decode_text(K8S_KIND_SERVICE, "{\"a\":\0}", 7, &obj, err, sizeof(err));
	ASSERT_EQ(rc, -SL_ERR_INVALID, "NUL byte refused");
	rc = k8s_obj_decode_text(K8S_KIND_UNKNOWN, "{}", 2, &obj, err, sizeof(err));
	ASSERT_EQ(rc, -EINVAL, "unknown kind");
}
