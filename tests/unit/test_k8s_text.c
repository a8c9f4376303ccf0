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
#include <pthread.h>
#include <stdint.h>
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

/* fn(name, text, len, scratch, ctx) for every .json document of the corpus that could be
 * read (scratch: len + 16 bytes for mutate); how many, or -1 without the directory. */
static int corpus_each(void (*fn)(const char *name, const char *txt, size_t len, char *scratch,
				  void *ctx),
		       void *ctx)
{
	DIR *d = opendir(CORPUS_DIR);
	struct dirent *e;
	int files = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[512], *txt, *m;
		size_t len = 0;

		if (!strstr(e->d_name, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, e->d_name);
		txt = slurp(path, &len);
		m = txt ? malloc(len + 16) : NULL;
		if (m) {
			files++;
			fn(e->d_name, txt, len, m, ctx);
		}
		free(m);
		free(txt);
	}
	closedir(d);
	return files;
}

struct agree_ctx {
	int bad, mutations;
};

static void agree_doc(const char *name, const char *txt, size_t len, char *m, void *ctx)
{
	struct agree_ctx *c = ctx;

	for (enum k8s_kind k = K8S_KIND_UNKNOWN + 1; k < K8S_KIND_MAX; k++) {
		if (!agree(k, txt, len, name))
			c->bad++;
		for (int i = 0; i < 300 && c->bad < 5; i++) {
			size_t ml = mutate(txt, len, m);

			c->mutations++;
			if (!agree(k, m, ml, name))
				c->bad++;
		}
	}
}

TEST(corpus_and_mutations_agree_with_the_tree_decoder)
{
	struct agree_ctx c = {0};
	int files = corpus_each(agree_doc, &c), bad = c.bad, mutations = c.mutations;

	if (!ASSERT_TRUE(files >= 0, "corpus directory (run from the repo root)"))
		return;
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

/* --- runs (k8s_text_run: objects of a list sharing slabs) ------------------------------ */

/* An EndpointSlice of n endpoints named name, as the API serves it. */
static size_t slice_text(char *buf, size_t cap, const char *name, int n)
{
	size_t o = (size_t)snprintf(
		buf, cap,
		"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\","
		"\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"labels\":"
		"{\"kubernetes.io/service-name\":\"%s\"},\"unknownField\":[1,{}]},"
		"\"addressType\":\"IPv4\",\"endpoints\":[",
		name, name);

	for (int i = 0; i < n && o < cap; i++)
		o += (size_t)snprintf(
			buf + o, cap - o,
			"%s{\"addresses\":[\"198.18.%d.%d\"],\"conditions\":{\"ready\":"
			"true},\"nodeName\":\"node-a\"}",
			i ? "," : "", (i >> 8) & 255, i & 255);
	if (o < cap)
		o += (size_t)snprintf(buf + o, cap - o,
				      "],\"ports\":[{\"name\":\"http\",\"port\":8080,"
				      "\"protocol\":\"TCP\"}]}");
	return o < cap ? o : 0;
}

struct run_ctx {
	struct k8s_text_run *run;
	struct {
		enum k8s_kind kind;
		void *obj;
	} * kept;
	size_t n_kept, cap;
	int bad, refused;
};

/* The document and 59 mutations of it, each decoded alone and in the run: the run's
 * objects are kept (c->kept) until the test ends. */
static void run_doc(const char *name, const char *txt, size_t len, char *m, void *ctx)
{
	struct run_ctx *c = ctx;

	for (enum k8s_kind k = K8S_KIND_UNKNOWN + 1; k < K8S_KIND_MAX; k++) {
		for (int i = 0; i < 60; i++) {
			size_t ml = i ? mutate(txt, len, m) : len;
			const char *t = i ? m : txt;
			char e1[256] = "", e2[256] = "";
			void *a = NULL, *b = NULL;
			int r1 = k8s_obj_decode_text(k, t, ml, &a, e1, sizeof(e1));
			int r2 = k8s_obj_decode_text_run(c->run, k, t, ml, &b, e2, sizeof(e2));

			if (r1 != r2 || strcmp(e1, e2) || (!r1 && !k8s_obj_equal_typed(k, a, b))) {
				if (c->bad++ < 5)
					fprintf(stderr,
						"  %s: kind %d: %d \"%s\" vs run %d \"%s\"\n", name,
						(int)k, r1, e1, r2, e2);
			}
			if (r2)
				c->refused++;
			k8s_obj_free(k, a);
			if (b && c->n_kept == c->cap) {
				size_t nc = c->cap ? c->cap * 2 : 256;
				void *v = realloc(c->kept, nc * sizeof(*c->kept));

				if (!v) {
					k8s_obj_free(k, b);
					b = NULL;
				} else {
					c->kept = v;
					c->cap = nc;
				}
			}
			if (b) {
				c->kept[c->n_kept].kind = k;
				c->kept[c->n_kept++].obj = b;
			}
		}
	}
}

/* Every corpus document and a few hundred mutations of each, decoded in one
 * run and alone: same verdict, same message, same values; the run's objects
 * are all kept until the end, then freed in an order unrelated to the slabs. */
TEST(run_decodes_as_alone)
{
	uint64_t rng_saved = rng_state; /* the other tests' mutations stay as they were */
	struct run_ctx c = {.run = k8s_text_run_new()};
	size_t n_kept;
	int bad, refused;

	if (!ASSERT_NOT_NULL(c.run, "run"))
		return;
	if (!ASSERT_TRUE(corpus_each(run_doc, &c) >= 0, "corpus directory")) {
		k8s_text_run_end(c.run);
		return;
	}
	n_kept = c.n_kept;
	bad = c.bad;
	refused = c.refused;
	k8s_text_run_end(c.run); /* before the objects: they keep their slabs */
	for (size_t step = 7, i = 0; i < n_kept; i++) {
		size_t j = (i * step) % n_kept; /* a permutation when gcd(step, n) = 1 */

		if (n_kept % step == 0)
			j = n_kept - 1 - i;
		k8s_obj_free(c.kept[j].kind, c.kept[j].obj);
	}
	free(c.kept);
	rng_state = rng_saved;
	ASSERT_TRUE(n_kept > 500, "objects decoded in the run");
	ASSERT_TRUE(refused > 500, "bad inputs refused in the run");
	ASSERT_EQ(bad, 0, "documents where the run and a lone decode differ");
}

/* Consecutive small objects of a run are packed (each block trimmed to what
 * it used); a bad one in between gives its room back with a message; one too
 * large for a slab gets a block of its own; all decode correctly. */
TEST(run_packs_and_survives_bad_and_large_objects)
{
	struct k8s_text_run *run = k8s_text_run_new();
	static char big[256 * 1024];
	char txt[4096], err[256];
	struct k8s_endpointslice *a = NULL, *b = NULL, *c = NULL, *l = NULL;
	void *x = NULL;
	size_t n, n_one;
	int rc;

	if (!ASSERT_NOT_NULL(run, "run"))
		return;
	n = n_one = slice_text(txt, sizeof(txt), "one", 10);
	ASSERT_OK(k8s_obj_decode_text_run(run, K8S_KIND_ENDPOINTSLICE, txt, n, (void **)&a, err,
					  sizeof(err)),
		  err);
	/* Missing fields, unknown fields, then a type error deep inside. */
	{
		static const char bad[] = "{\"metadata\":{\"name\":\"x\"},\"zzz\":1,\"endpoints\":"
					  "[{\"addresses\":[\"1.2.3.4\"]},{\"addresses\":[7]}]}";

		rc = k8s_obj_decode_text_run(run, K8S_KIND_ENDPOINTSLICE, bad, sizeof(bad) - 1, &x,
					     err, sizeof(err));
	}
	ASSERT_EQ(rc, -SL_ERR_INVALID, "bad object refused");
	ASSERT_STREQ(err, "endpoints[1].addresses[0]: expected string", "message names the field");
	ASSERT_NULL(x, "no object on failure");
	rc = k8s_obj_decode_text_run(run, K8S_KIND_ENDPOINTSLICE, "{\"metadata\":", 12, &x, err,
				     sizeof(err));
	ASSERT_EQ(rc, -SL_ERR_INVALID, "cut short refused");
	ASSERT_STREQ(err, "metadata: expected object", "cut short: the message");
	n = slice_text(txt, sizeof(txt), "two", 10);
	ASSERT_OK(k8s_obj_decode_text_run(run, K8S_KIND_ENDPOINTSLICE, txt, n, (void **)&b, err,
					  sizeof(err)),
		  err);
	n = slice_text(big, sizeof(big), "large", 2000);
	ASSERT_TRUE(n > 0, "large text built");
	ASSERT_OK(k8s_obj_decode_text_run(run, K8S_KIND_ENDPOINTSLICE, big, n, (void **)&l, err,
					  sizeof(err)),
		  err);
	n = slice_text(txt, sizeof(txt), "three", 0);
	ASSERT_OK(k8s_obj_decode_text_run(run, K8S_KIND_ENDPOINTSLICE, txt, n, (void **)&c, err,
					  sizeof(err)),
		  err);
	if (a && b && c && l) {
		uintptr_t pa = (uintptr_t)a->meta.arena, pb = (uintptr_t)b->meta.arena;

		/* A block is sized for the worst case (the struct + 2 x the
		 * text + 512); a's trimmed to what it used, and the failed
		 * ones' room given back, put b closer than that after a. */
		if (!ASSERT_TRUE(pb > pa && pb - pa < sizeof(*a) + 2 * n_one + 512,
				 "b packed right after a"))
			fprintf(stderr, "  a at %#lx, b at %#lx, text %zu bytes\n",
				(unsigned long)pa, (unsigned long)pb, n_one);
		ASSERT_STREQ(a->meta.name, "one", "a's name");
		ASSERT_STREQ(b->meta.name, "two", "b's name");
		ASSERT_STREQ(c->meta.name, "three", "c's name");
		ASSERT_EQ(a->n_endpoints, 10, "a's endpoints");
		ASSERT_EQ(l->n_endpoints, 2000, "the large object's endpoints");
		ASSERT_STREQ(l->endpoints[1999].addresses.v[0], "198.18.7.207", "its last address");
		ASSERT_EQ(c->n_endpoints, 0, "no endpoints: none");
	}
	k8s_obj_free(K8S_KIND_ENDPOINTSLICE, b);
	k8s_text_run_end(run);
	k8s_obj_free(K8S_KIND_ENDPOINTSLICE, l);
	k8s_obj_free(K8S_KIND_ENDPOINTSLICE, a);
	k8s_obj_free(K8S_KIND_ENDPOINTSLICE, c);
	k8s_text_run_end(NULL);
	ASSERT_EQ(k8s_obj_decode_text_run(NULL, K8S_KIND_UNKNOWN, "{}", 2, &x, err, sizeof(err)),
		  -EINVAL, "no run: as k8s_obj_decode_text");
}

/* The informer's case: one thread decodes, another frees, at the same time
 * (the slabs' reference counts; run under the sanitizers). */
#define RUN_OBJS 4000
struct run_handoff {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void *obj[RUN_OBJS];
	size_t n, taken;
	bool done;
};

static void *run_consumer(void *arg)
{
	struct run_handoff *h = arg;
	size_t freed = 0;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->taken == h->n && !h->done)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->taken == h->n)
			break;
		{
			void *o = h->obj[h->taken++];

			pthread_mutex_unlock(&h->mu);
			k8s_obj_free(K8S_KIND_ENDPOINTSLICE, o);
			freed++;
			pthread_mutex_lock(&h->mu);
		}
	}
	pthread_mutex_unlock(&h->mu);
	return (void *)(uintptr_t)freed;
}

TEST(run_objects_freed_on_another_thread)
{
	static struct run_handoff h = {.mu = PTHREAD_MUTEX_INITIALIZER,
				       .cv = PTHREAD_COND_INITIALIZER};
	struct k8s_text_run *run = k8s_text_run_new();
	pthread_t th;
	void *freed = NULL;
	int failed = 0;

	if (!ASSERT_NOT_NULL(run, "run") ||
	    !ASSERT_EQ(pthread_create(&th, NULL, run_consumer, &h), 0, "consumer thread")) {
		k8s_text_run_end(run);
		return;
	}
	for (size_t i = 0; i < RUN_OBJS; i++) {
		char txt[4096], name[32];
		void *o = NULL;
		size_t n;

		snprintf(name, sizeof(name), "s-%zu", i);
		n = slice_text(txt, sizeof(txt), name, (int)(i % 17));
		if (k8s_obj_decode_text_run(run, K8S_KIND_ENDPOINTSLICE, txt, n, &o, NULL, 0) ||
		    strcmp(((struct k8s_endpointslice *)o)->meta.name, name)) {
			failed++;
			k8s_obj_free(K8S_KIND_ENDPOINTSLICE, o);
			continue;
		}
		pthread_mutex_lock(&h.mu);
		h.obj[h.n++] = o;
		pthread_cond_signal(&h.cv);
		pthread_mutex_unlock(&h.mu);
	}
	k8s_text_run_end(run);
	pthread_mutex_lock(&h.mu);
	h.done = true;
	pthread_cond_signal(&h.cv);
	pthread_mutex_unlock(&h.mu);
	pthread_join(th, &freed);
	ASSERT_EQ(failed, 0, "objects that did not decode");
	ASSERT_EQ((size_t)(uintptr_t)freed, (size_t)RUN_OBJS, "objects freed by the consumer");
}
