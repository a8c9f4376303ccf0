// SPDX-License-Identifier: Apache-2.0
/*
 * lib/client.c and lib/kubeconfig.c without a server: kubeconfig and YAML
 * parsing, the watch-stream decoder under every chunking, back-off bounds,
 * path building, status mapping, cancellation and connection errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/informer.h"
#include "sluice/json.h"

static const char kubectl_yaml[] = "apiVersion: v1\n"
				   "clusters:\n"
				   "- cluster:\n"
				   "    certificate-authority: ca.crt   # relative to the file\n"
				   "    server: https://198.18.0.1:6443\n"
				   "  name: lab\n"
				   "- cluster:\n"
				   "    insecure-skip-tls-verify: true\n"
				   "    server: \"http://127.0.0.1:8080\"\n"
				   "  name: local\n"
				   "contexts:\n"
				   "- context:\n"
				   "    cluster: lab\n"
				   "    user: admin\n"
				   "  name: lab\n"
				   "- context:\n"
				   "    cluster: local\n"
				   "    user: ''\n"
				   "  name: 'local'\n"
				   "- context:\n"
				   "    cluster: nowhere\n"
				   "  name: broken\n"
				   "current-context: lab\n"
				   "kind: Config\n"
				   "preferences: {}\n"
				   "users:\n"
				   "- name: admin\n"
				   "  user:\n"
				   "    token: s3cr#t\n";

static const char kubectl_json[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"c\","
	"\"clusters\":[{\"name\":\"k\",\"cluster\":{\"server\":\"http://127.0.0.1:1\","
	"\"insecure-skip-tls-verify\":true}}],"
	"\"contexts\":[{\"name\":\"c\",\"context\":{\"cluster\":\"k\",\"user\":\"u\"}}],"
	"\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"tok\"}}]}";

TEST(kubeconfig_kubectl_yaml)
{
	struct sl_client_opts o;
	struct json_object *store = NULL;
	char err[256];
	int rc;

	rc = sl_kubeconfig_parse("/etc/kube/config", kubectl_yaml, strlen(kubectl_yaml), NULL, &o,
				 &store, err, sizeof(err));
	if (!ASSERT_OK(rc, err))
		goto out;
	ASSERT_STREQ(o.server, "https://198.18.0.1:6443", "server");
	ASSERT_STREQ(o.ca_file, "/etc/kube/ca.crt", "relative CA path resolved");
	ASSERT_STREQ(o.token, "s3cr#t", "token keeps # without a blank before it");
	ASSERT_FALSE(o.insecure, "insecure");
	json_object_put(store);

	rc = sl_kubeconfig_parse("/etc/kube/config", kubectl_yaml, strlen(kubectl_yaml), "local",
				 &o, &store, err, sizeof(err));
	if (!ASSERT_OK(rc, err))
		goto out;
	ASSERT_STREQ(o.server, "http://127.0.0.1:8080", "quoted server");
	ASSERT_TRUE(o.insecure, "insecure-skip-tls-verify");
	ASSERT_NULL(o.token, "no user, no token");
	ASSERT_NULL(o.ca_file, "no CA");
out:
	json_object_put(store);
}

TEST(kubeconfig_json_form)
{
	struct sl_client_opts o;
	struct json_object *store = NULL;
	char err[256];

	if (!ASSERT_OK(sl_kubeconfig_parse("k.json", kubectl_json, strlen(kubectl_json), NULL, &o,
					   &store, err, sizeof(err)),
		       err))
		return;
	ASSERT_STREQ(o.server, "http://127.0.0.1:1", "server");
	ASSERT_STREQ(o.token, "tok", "token");
	ASSERT_TRUE(o.insecure, "insecure");
	json_object_put(store);
}

TEST(kubeconfig_errors_name_file_and_problem)
{
	struct sl_client_opts o;
	struct json_object *store = NULL;
	char err[256];
	int rc;

	rc = sl_kubeconfig_parse("/x", kubectl_yaml, strlen(kubectl_yaml), "foo", &o, &store, err,
				 sizeof(err));
	ASSERT_EQ(rc, -EINVAL, "missing context");
	ASSERT_STREQ(err, "kubeconfig /x: context \"foo\" not found", "message");
	ASSERT_NULL(store, "nothing to free on error");

	rc = sl_kubeconfig_parse("/x", kubectl_yaml, strlen(kubectl_yaml), "broken", &o, &store,
				 err, sizeof(err));
	ASSERT_EQ(rc, -EINVAL, "missing cluster");
	ASSERT_TRUE(strstr(err, "cluster \"nowhere\"") != NULL, err);

	rc = sl_kubeconfig_parse("/x", "kind: Config\n", 13, NULL, &o, &store, err, sizeof(err));
	ASSERT_EQ(rc, -EINVAL, "no current-context");
	ASSERT_TRUE(strstr(err, "no current-context") != NULL, err);

	rc = sl_kubeconfig_parse("/x", "a:\n  b: 1\n c: 2\n", 16, NULL, &o, &store, err,
				 sizeof(err));
	ASSERT_EQ(rc, -EINVAL, "bad indentation");
	ASSERT_TRUE(strstr(err, "kubeconfig /x: line 3") != NULL, err);

	const char *execcfg = "current-context: c\ncontexts:\n- name: c\n  context:\n"
			      "    cluster: k\n    user: u\nclusters:\n- name: k\n  cluster:\n"
			      "    server: http://h\nusers:\n- name: u\n  user:\n    exec:\n"
			      "      command: aws\n";
	rc = sl_kubeconfig_parse("/x", execcfg, strlen(execcfg), NULL, &o, &store, err,
				 sizeof(err));
	ASSERT_EQ(rc, -EINVAL, "exec plugin");
	ASSERT_TRUE(strstr(err, "exec") != NULL, err);
}

TEST(kubeconfig_file_and_token_file)
{
	char dir[] = "/tmp/sluice-kc-XXXXXX", cfg[300], tokf[300], err[256];
	struct sl_client *c = NULL;
	FILE *f;

	if (!ASSERT_NOT_NULL(mkdtemp(dir), "mkdtemp"))
		return;
	snprintf(cfg, sizeof(cfg), "%s/config", dir);
	snprintf(tokf, sizeof(tokf), "%s/token", dir);
	f = fopen(tokf, "w");
	fputs("abc123\n", f);
	fclose(f);
	f = fopen(cfg, "w");
	fputs("current-context: c\ncontexts:\n- name: c\n  context: {\"cluster\": \"k\", "
	      "\"user\": \"u\"}\nclusters:\n- name: k\n  cluster:\n    server: "
	      "http://127.0.0.1:9/\n"
	      "users:\n- name: u\n  user:\n    tokenFile: token\n",
	      f);
	fclose(f);
	c = sl_client_from_kubeconfig(cfg, NULL, err, sizeof(err));
	if (ASSERT_NOT_NULL(c, err))
		ASSERT_STREQ(sl_client_server(c), "http://127.0.0.1:9", "trailing slash dropped");
	sl_client_free(c);

	unlink(tokf);
	c = sl_client_from_kubeconfig(cfg, NULL, err, sizeof(err));
	ASSERT_NULL(c, "token file missing");
	ASSERT_TRUE(strstr(err, "token file") && strstr(err, "cannot open"), err);
	unlink(cfg);
	c = sl_client_from_kubeconfig(cfg, NULL, err, sizeof(err));
	ASSERT_NULL(c, "kubeconfig missing");
	ASSERT_EQ(errno, ENOENT, "errno");
	ASSERT_TRUE(strstr(err, cfg) != NULL, err);
	rmdir(dir);
}

TEST(yaml_subset)
{
	const char *y = "---\n# comment\na: 'it''s'\nb:\n  - x\n  - \"y\\n\"\n  -\n    c: ~\n"
			"d: [1, 2]\ne:\n  f: g # trailing\n";
	struct json_object *o, *want;
	char err[128];

	o = sl_yaml_parse(y, strlen(y), err, sizeof(err));
	if (!ASSERT_NOT_NULL(o, err))
		return;
	const char *wtxt = "{\"a\":\"it's\",\"b\":[\"x\",\"y\\n\",{\"c\":null}],\"d\":[1,2],"
			   "\"e\":{\"f\":\"g\"}}";

	want = sl_json_parse(wtxt, strlen(wtxt), err, sizeof(err));
	ASSERT_NOT_NULL(want, err);
	if (!ASSERT_TRUE(sl_json_equal(o, want), "same tree"))
		fprintf(stderr, "  got %s\n", sl_json_str(o, NULL));
	json_object_put(o);
	json_object_put(want);

	ASSERT_NULL(sl_yaml_parse("a: |\n  x\n", 9, err, sizeof(err)), "block scalar");
	ASSERT_TRUE(strstr(err, "line 1") != NULL, err);
	ASSERT_NULL(sl_yaml_parse("a:\n\tb: 1\n", 9, err, sizeof(err)), "tab");
	ASSERT_NULL(sl_yaml_parse("a: 1\n---\nb: 2\n", 14, err, sizeof(err)), "two documents");
}

/* NULL text: with a length it is an error, not a crash; without one it is "". */
TEST(yaml_null_text)
{
	struct json_object *a, *b;
	char err[128] = "";

	errno = 0;
	ASSERT_NULL(sl_yaml_parse(NULL, 3, err, sizeof(err)), "NULL text with a length");
	ASSERT_EQ(errno, EINVAL, "EINVAL");
	ASSERT_TRUE(strstr(err, "NULL text") != NULL, err);
	a = sl_yaml_parse(NULL, 0, err, sizeof(err));
	b = sl_yaml_parse("", 0, err, sizeof(err));
	ASSERT_TRUE(a == b || (a && b && sl_json_equal(a, b)), "NULL, 0 parses as empty text");
	json_object_put(a);
	json_object_put(b);
}

struct collected {
	int n;
	enum sl_watch_type types[8];
	char names[8][32];
	int stop_at; /* stop when n reaches this (0 = never) */
};

static int collect_event(const struct sl_watch_event *ev, void *arg)
{
	struct collected *c = arg;
	const char *name =
		json_object_get_string(sl_json_path(ev->object, "metadata", "name", (char *)NULL));

	if (c->n < 8) {
		c->types[c->n] = ev->type;
		snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name ? name : "");
	}
	c->n++;
	return c->stop_at && c->n == c->stop_at ? 7 : 0;
}

static const char stream3[] =
	"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}"
	"\n"
	"\r\n"
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}\n"
	"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}";

TEST(watch_decoder_any_chunking)
{
	size_t len = strlen(stream3);

	/* Every split point, and byte-by-byte: the same three events. */
	for (size_t step = 1; step <= len; step = step < 8 ? step + 1 : step * 2) {
		struct collected c = {0};
		struct sl_watch_decoder *d = sl_watch_decoder_new(0, collect_event, &c);
		int rc = 0;

		if (!ASSERT_NOT_NULL(d, "new"))
			return;
		for (size_t off = 0; off < len && !rc; off += step)
			rc = sl_watch_decoder_feed(d, stream3 + off,
						   len - off < step ? len - off : step);
		ASSERT_OK(rc, "feed");
		ASSERT_EQ(c.n, 2, "last line waits for its newline");
		ASSERT_OK(sl_watch_decoder_finish(d), "finish");
		ASSERT_EQ(c.n, 3, "three events");
		ASSERT_EQ(sl_watch_decoder_events(d), 3, "counter");
		ASSERT_EQ(c.types[0], SL_WATCH_ADDED, "type 0");
		ASSERT_EQ(c.types[1], SL_WATCH_MODIFIED, "type 1");
		ASSERT_EQ(c.types[2], SL_WATCH_BOOKMARK, "type 2");
		ASSERT_STREQ(c.names[1], "b", "name 1");
		sl_watch_decoder_free(d);
		if (test_failed_current)
			return;
	}
}

TEST(watch_decoder_errors)
{
	static const char *const bad[] = {
		"{\"type\":\"ADDED\",\"object\":{}\n",	   /* truncated JSON */
		"{\"type\":\"EXPLODED\",\"object\":{}}\n", /* unknown type */
		"{\"type\":\"ADDED\",\"object\":[]}\n",	   /* object not an object */
		"{\"object\":{}}\n",			   /* no type */
		"[1]\n",				   /* not an object */
	};
	struct collected c = {0};
	struct sl_watch_decoder *d;
	char big[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = sl_watch_decoder_new(0, collect_event, &c);
		ASSERT_EQ(sl_watch_decoder_feed(d, bad[i], strlen(bad[i])), -SL_ERR_PARSE, bad[i]);
		ASSERT_TRUE(strstr(sl_watch_decoder_error(d), "watch event 1:") != NULL,
			    sl_watch_decoder_error(d));
		/* Sticky: good input after an error is refused too. */
		ASSERT_EQ(sl_watch_decoder_feed(d, "\n", 1), -SL_ERR_PARSE, "sticky");
		sl_watch_decoder_free(d);
	}
	ASSERT_EQ(c.n, 0, "no event from bad input");

	/* Bounded lines: the limit holds across chunks, without a newline. */
	d = sl_watch_decoder_new(256, collect_event, &c);
	memset(big, ' ', sizeof(big));
	ASSERT_OK(sl_watch_decoder_feed(d, big, 200), "under the limit");
	ASSERT_EQ(sl_watch_decoder_feed(d, big, 100), -SL_ERR_PARSE, "over the limit");
	ASSERT_TRUE(strstr(sl_watch_decoder_error(d), "longer than 256") != NULL,
		    sl_watch_decoder_error(d));
	sl_watch_decoder_free(d);

	d = sl_watch_decoder_new(0, collect_event, &c);
	ASSERT_EQ(sl_watch_decoder_feed(d, "{\"type\"\0", 8), -SL_ERR_PARSE, "NUL");
	sl_watch_decoder_free(d);
}

TEST(watch_decoder_callback_stops)
{
	struct collected c = {.stop_at = 1};
	struct sl_watch_decoder *d = sl_watch_decoder_new(0, collect_event, &c);

	ASSERT_EQ(sl_watch_decoder_feed(d, stream3, strlen(stream3)), 7, "callback's value");
	ASSERT_EQ(c.n, 1, "no event after the stop");
	sl_watch_decoder_free(d);
}

TEST(backoff_bounds_and_growth)
{
	struct sl_backoff b;
	unsigned int d, nominal = 100;

	sl_backoff_init(&b, 100, 30000, 42);
	for (int i = 0; i < 20; i++) {
		d = sl_backoff_next(&b);
		if (!ASSERT_TRUE(d >= nominal - nominal / 2 && d <= nominal, "within [d/2, d]"))
			fprintf(stderr, "  step %d: %u not in [%u, %u]\n", i, d, nominal / 2,
				nominal);
		nominal = nominal > 15000 ? 30000 : nominal * 2;
	}
	ASSERT_EQ(b.cur_ms, 30000, "capped");
	sl_backoff_reset(&b);
	d = sl_backoff_next(&b);
	ASSERT_TRUE(d >= 50 && d <= 100, "reset");

	/* Jitter actually varies. */
	unsigned int first = sl_backoff_rand(&b, 0, 1000000), differ = 0;

	for (int i = 0; i < 10; i++)
		differ += sl_backoff_rand(&b, 0, 1000000) != first;
	ASSERT_TRUE(differ > 0, "random");
}

TEST(path_and_status)
{
	struct sl_gvr eps = SL_GVR_ENDPOINTSLICES, svc = SL_GVR_SERVICES;
	struct sl_buf q = SL_BUF_INIT;
	char *p;

	p = sl_client_path(&svc, "default", "web", NULL);
	ASSERT_STREQ(p, "/api/v1/namespaces/default/services/web", "core");
	free(p);
	sl_client_query_add(&q, "labelSelector", "app in (a,b),!x");
	sl_client_query_add(&q, "limit", "500");
	p = sl_client_path(&eps, NULL, NULL, sl_buf_cstr(&q));
	ASSERT_STREQ(p,
		     "/apis/discovery.k8s.io/v1/endpointslices"
		     "?labelSelector=app%20in%20%28a%2Cb%29%2C%21x&limit=500",
		     "group, all namespaces, escaped query");
	free(p);
	p = sl_client_path(&svc, "a/b", "..", NULL);
	ASSERT_NULL(p, "name .. refused");
	ASSERT_EQ(errno, EINVAL, "errno");
	p = sl_client_path(&svc, "a/b", "c d", NULL);
	ASSERT_STREQ(p, "/api/v1/namespaces/a%2Fb/services/c%20d", "segments escaped");
	free(p);
	sl_buf_fini(&q);

	ASSERT_EQ(sl_client_status_err(201, NULL), 0, "2xx");
	ASSERT_EQ(sl_client_status_err(404, "NotFound"), -SL_ERR_NOTFOUND, "404");
	ASSERT_EQ(sl_client_status_err(409, "AlreadyExists"), -SL_ERR_EXISTS, "409 exists");
	ASSERT_EQ(sl_client_status_err(409, "Conflict"), -SL_ERR_CONFLICT, "409 conflict");
	ASSERT_EQ(sl_client_status_err(410, "Expired"), -SL_ERR_COMPACTED, "410");
	ASSERT_EQ(sl_client_status_err(422, "Invalid"), -SL_ERR_INVALID, "422");
	ASSERT_EQ(sl_client_status_err(503, NULL), -SL_ERR_HTTP, "503");
}

TEST(client_new_checks_url)
{
	struct sl_client_opts o = {.server = "ftp://x"};
	char err[200];

	ASSERT_NULL(sl_client_new(&o, err, sizeof(err)), "ftp");
	ASSERT_TRUE(strstr(err, "http://") != NULL, err);
	o.server = NULL;
	ASSERT_NULL(sl_client_new(&o, err, sizeof(err)), "no server");
	ASSERT_EQ(errno, EINVAL, "errno");
}

static void *fire_later(void *arg)
{
	usleep(50 * 1000);
	sl_cancel_fire(arg);
	return NULL;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

TEST(cancel_interrupts_sleep)
{
	struct sl_cancel *k = sl_cancel_new();
	pthread_t t;
	uint64_t t0;

	if (!ASSERT_NOT_NULL(k, "new"))
		return;
	ASSERT_OK(sl_cancel_sleep(k, 20), "short sleep");
	pthread_create(&t, NULL, fire_later, k);
	t0 = mono_ms();
	ASSERT_EQ(sl_cancel_sleep(k, 60000), -ECANCELED, "fired");
	ASSERT_TRUE(mono_ms() - t0 < 5000, "woke long before the deadline");
	pthread_join(t, NULL);
	ASSERT_EQ(sl_cancel_sleep(k, 10), -ECANCELED, "sticky");
	sl_cancel_reset(k);
	ASSERT_OK(sl_cancel_sleep(k, 10), "reset");
	sl_cancel_free(k);
}

TEST(request_to_closed_port)
{
	/* Port 9 (discard) on loopback has no listener here: connection refused. */
	struct sl_client_opts o = {.server = "http://127.0.0.1:9"};
	struct sl_client_resp resp;
	struct sl_gvr svc = SL_GVR_SERVICES;
	struct sl_client *c = sl_client_new(&o, NULL, 0);
	struct json_object *out = (void *)1;
	char err[256];

	if (!ASSERT_NOT_NULL(c, "new"))
		return;
	ASSERT_EQ(sl_client_request(c, "GET", "/api", NULL, 0, NULL, NULL, &resp), -ECONNREFUSED,
		  "refused");
	ASSERT_TRUE(strstr(resp.err, "127.0.0.1:9") != NULL, resp.err);
	ASSERT_EQ(resp.status, 0, "no status");
	sl_client_resp_fini(&resp);
	ASSERT_EQ(sl_client_get(c, &svc, "default", "web", &out, err, sizeof(err)), -ECONNREFUSED,
		  "helper");
	ASSERT_NULL(out, "out cleared");
	ASSERT_EQ(sl_client_request(c, "GET", "api", NULL, 0, NULL, NULL, &resp), -EINVAL,
		  "relative path");
	sl_client_resp_fini(&resp);
	sl_client_free(c);
}

/* ---- informer pieces that need no server ----------------------------- */

struct seen {
	char log[1024]; /* "+a@1 ~a@1>2 -b@3 S " */
};

static void seen_add(struct seen *s, char op, struct json_object *o1, struct json_object *o2)
{
	char one[96];
	const char *n1 = json_object_get_string(sl_json_path(o1, "metadata", "name", (char *)NULL));
	const char *r1 = json_object_get_string(
		sl_json_path(o1, "metadata", "resourceVersion", (char *)NULL));
	const char *r2 = o2 ? json_object_get_string(
				      sl_json_path(o2, "metadata", "resourceVersion", (char *)NULL))
			    : "";

	snprintf(one, sizeof(one), "%c%s@%s%s%s ", op, n1, r1, o2 ? ">" : "", r2);
	strncat(s->log, one, sizeof(s->log) - strlen(s->log) - 1);
}

static void h_add(struct json_object *o, void *arg)
{
	seen_add(arg, '+', o, NULL);
}

static void h_update(struct json_object *o, struct json_object *n, void *arg)
{
	seen_add(arg, '~', o, n);
}

static void h_delete(struct json_object *o, void *arg)
{
	seen_add(arg, '-', o, NULL);
}

static void h_synced(void *arg)
{
	struct seen *s = arg;

	strncat(s->log, "S ", sizeof(s->log) - strlen(s->log) - 1);
}

static struct json_object *items_of(const char *txt)
{
	return sl_json_parse(txt, strlen(txt), NULL, 0);
}

static struct sl_informer *offline_informer(struct sl_client **c, struct seen *s,
					    enum sl_inf_delivery mode)
{
	struct sl_client_opts co = {.server = "http://127.0.0.1:9"};
	struct sl_informer_opts io = {
		.gvr = SL_GVR_SERVICES,
		.delivery = mode,
		.handlers = {h_add, h_update, h_delete, h_synced, s},
	};

	*c = sl_client_new(&co, NULL, 0);
	return *c ? sl_informer_new(*c, &io, NULL, 0) : NULL;
}

TEST(informer_replace_delivers_differences)
{
	struct seen s = {""};
	struct sl_client *c = NULL;
	struct sl_informer *inf = offline_informer(&c, &s, SL_INF_DELIVER_THREAD);
	struct json_object *l1, *l2, *got;
	struct sl_informer_stats st;

	if (!ASSERT_NOT_NULL(inf, "new"))
		goto out;
	l1 = items_of(
		"[{\"metadata\":{\"namespace\":\"d\",\"name\":\"a\",\"resourceVersion\":\"1\"}},"
		"{\"metadata\":{\"namespace\":\"d\",\"name\":\"b\",\"resourceVersion\":\"2\"}},"
		"{\"metadata\":{\"name\":\"cluster\",\"resourceVersion\":\"3\"}},"
		"{\"metadata\":{\"namespace\":\"d\"}}]");
	l2 = items_of(
		"[{\"metadata\":{\"namespace\":\"d\",\"name\":\"a\",\"resourceVersion\":\"1\"}},"
		"{\"metadata\":{\"name\":\"cluster\",\"resourceVersion\":\"7\"}},"
		"{\"metadata\":{\"namespace\":\"e\",\"name\":\"c\",\"resourceVersion\":\"8\"}}]");
	ASSERT_OK(sl_informer_replace(inf, l1, "3"), "first list");
	ASSERT_STREQ(s.log, "+a@1 +b@2 +cluster@3 ", "adds in list order, nameless item skipped");
	s.log[0] = '\0';
	ASSERT_OK(sl_informer_replace(inf, l2, "8"), "relist");
	/* a unchanged: nothing; b gone: delete first; cluster changed; c new. */
	ASSERT_STREQ(s.log, "-b@2 ~cluster@3>7 +c@8 ", "differences only");

	got = sl_informer_get(inf, "e", "c");
	ASSERT_STREQ(json_object_get_string(
			     sl_json_path(got, "metadata", "resourceVersion", (char *)NULL)),
		     "8", "get namespaced");
	json_object_put(got);
	got = sl_informer_get(inf, NULL, "cluster");
	ASSERT_NOT_NULL(got, "get cluster-scoped");
	json_object_put(got);
	ASSERT_NULL(sl_informer_get(inf, "d", "b"), "deleted");
	ASSERT_EQ(errno, ENOENT, "errno");
	got = sl_informer_list(inf);
	ASSERT_EQ(json_object_array_length(got), 3, "list");
	ASSERT_STREQ(json_object_get_string(sl_json_path(json_object_array_get_idx(got, 0),
							 "metadata", "name", (char *)NULL)),
		     "cluster", "sorted by key: \"cluster\" < \"d/a\" < \"e/c\"");
	json_object_put(got);
	sl_informer_stats(inf, &st);
	ASSERT_EQ(st.objects, 3, "objects");
	ASSERT_STREQ(st.last_rv, "8", "last rv");
	ASSERT_FALSE(sl_informer_has_synced(inf), "replace alone is not a sync");
	ASSERT_EQ(sl_informer_fd(inf), -1, "no fd in THREAD mode");
	json_object_put(l1);
	json_object_put(l2);
out:
	sl_informer_free(inf);
	sl_client_free(c);
}

TEST(informer_queue_mode_dispatch)
{
	struct seen s = {""};
	struct sl_client *c = NULL;
	struct sl_informer *inf = offline_informer(&c, &s, SL_INF_DELIVER_QUEUE);
	struct json_object *l1, *l2;
	struct sl_informer_stats st;
	uint64_t v;
	int fd;

	if (!ASSERT_NOT_NULL(inf, "new"))
		goto out;
	fd = sl_informer_fd(inf);
	ASSERT_TRUE(fd >= 0, "eventfd");
	ASSERT_TRUE(read(fd, &v, sizeof(v)) < 0 && errno == EAGAIN, "not readable when empty");
	l1 = items_of("[{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}},"
		      "{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"1\"}}]");
	l2 = items_of("[{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"2\"}}]");
	ASSERT_OK(sl_informer_replace(inf, l1, "1"), "list");
	ASSERT_OK(sl_informer_replace(inf, l2, "2"), "relist");
	ASSERT_STREQ(s.log, "", "nothing runs before dispatch");
	sl_informer_stats(inf, &st);
	ASSERT_EQ(st.queued, 4, "queued");
	ASSERT_EQ(sl_informer_dispatch(inf, 1), 1, "one");
	ASSERT_STREQ(s.log, "+a@1 ", "first event");
	/* Still readable because events remain. */
	ASSERT_TRUE(read(fd, &v, sizeof(v)) == sizeof(v), "readable while queued");
	ASSERT_EQ(sl_informer_dispatch(inf, 0), 3, "rest");
	ASSERT_STREQ(s.log, "+a@1 +b@1 -b@1 ~a@1>2 ", "event order kept across the queue");
	ASSERT_TRUE(read(fd, &v, sizeof(v)) < 0 && errno == EAGAIN, "drained");
	ASSERT_EQ(sl_informer_dispatch(inf, 0), 0, "empty");
	json_object_put(l1);
	json_object_put(l2);
out:
	sl_informer_free(inf);
	sl_client_free(c);
}

/* A '*' after an entry: the handler saw the whole object (it has a spec). */
static void seen_spec(struct seen *s, struct json_object *o)
{
	if (sl_json_get(o, "spec"))
		strncat(s->log, "* ", sizeof(s->log) - strlen(s->log) - 1);
}

static void hm_add(struct json_object *o, void *arg)
{
	seen_add(arg, '+', o, NULL);
	seen_spec(arg, o);
}

static void hm_update(struct json_object *o, struct json_object *n, void *arg)
{
	seen_add(arg, '~', o, n);
	seen_spec(arg, o);
	seen_spec(arg, n);
}

static void hm_delete(struct json_object *o, void *arg)
{
	seen_add(arg, '-', o, NULL);
	seen_spec(arg, o);
}

TEST(informer_metadata_cache_keeps_keys_only)
{
	struct seen s = {""};
	struct sl_client_opts co = {.server = "http://127.0.0.1:9"};
	struct sl_client *c = sl_client_new(&co, NULL, 0);
	struct sl_informer_opts io = {
		.gvr = SL_GVR_SERVICES,
		.delivery = SL_INF_DELIVER_QUEUE,
		.cache = SL_INF_CACHE_METADATA,
		.handlers = {hm_add, hm_update, hm_delete, h_synced, &s},
	};
	struct sl_informer *inf = c ? sl_informer_new(c, &io, NULL, 0) : NULL;
	struct json_object *l1, *l2, *got;
	char err[128];

	if (!ASSERT_NOT_NULL(inf, "new"))
		goto out;
	l1 = items_of("[{\"metadata\":{\"namespace\":\"d\",\"name\":\"a\",\"resourceVersion\":"
		      "\"1\"},\"spec\":{}},"
		      "{\"metadata\":{\"namespace\":\"d\",\"name\":\"b\",\"resourceVersion\":"
		      "\"2\"},\"spec\":{}},"
		      "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"2\"},\"spec\":{}},"
		      "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"3\"},\"spec\":{}}]");
	l2 = items_of("[{\"metadata\":{\"namespace\":\"d\",\"name\":\"a\",\"resourceVersion\":"
		      "\"4\"},\"spec\":{}},"
		      "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"3\"},\"spec\":{}}]");
	ASSERT_OK(sl_informer_replace(inf, l1, "3"), "list");
	ASSERT_OK(sl_informer_replace(inf, l2, "4"), "relist");
	/* The queue carries whole objects until dispatched; the duplicate key
	 * "a" keeps its later copy. */
	ASSERT_EQ(sl_informer_dispatch(inf, 0), 5, "dispatch");
	ASSERT_STREQ(s.log, "+a@1 * +b@2 * +a@3 * -b@2 ~a@1>4 * ",
		     "adds and new states whole; old and vanished states are stubs");
	got = sl_informer_get(inf, "d", "a");
	ASSERT_STREQ(json_object_get_string(
			     sl_json_path(got, "metadata", "resourceVersion", (char *)NULL)),
		     "4", "stub has the resourceVersion");
	ASSERT_STREQ(
		json_object_get_string(sl_json_path(got, "metadata", "namespace", (char *)NULL)),
		"d", "and the namespace");
	ASSERT_NULL(sl_json_get(got, "spec"), "and nothing else");
	json_object_put(got);
	got = sl_informer_get(inf, NULL, "a");
	ASSERT_NULL(sl_json_path(got, "metadata", "namespace", (char *)NULL),
		    "cluster-scoped stub has no namespace");
	json_object_put(got);
	got = sl_informer_list(inf);
	ASSERT_EQ(json_object_array_length(got), 2, "list of stubs");
	json_object_put(got);
	json_object_put(l1);
	json_object_put(l2);
	io.cache = (enum sl_inf_cache)7;
	ASSERT_NULL(sl_informer_new(c, &io, err, sizeof(err)), "unknown cache mode");
	ASSERT_TRUE(strstr(err, "cache mode 7") != NULL, err);
out:
	sl_informer_free(inf);
	sl_client_free(c);
}

TEST(informer_stop_is_prompt_while_backing_off)
{
	struct seen s = {""};
	struct sl_client *c = NULL;
	struct sl_informer *inf = offline_informer(&c, &s, SL_INF_DELIVER_THREAD);
	struct sl_informer_stats st;
	uint64_t t0;

	if (!ASSERT_NOT_NULL(inf, "new"))
		goto out;
	/* Nothing listens on 127.0.0.1:9: the informer fails and backs off. */
	ASSERT_OK(sl_informer_start(inf), "start");
	ASSERT_EQ(sl_informer_start(inf), -EALREADY, "double start");
	ASSERT_EQ(sl_informer_wait_synced(inf, 300), -ETIMEDOUT, "never syncs");
	sl_informer_stats(inf, &st);
	ASSERT_TRUE(st.errors >= 1, "list failures counted");
	t0 = mono_ms();
	sl_informer_stop(inf);
	ASSERT_TRUE(mono_ms() - t0 < 1000, "stop interrupts the back-off sleep");
	ASSERT_EQ(sl_informer_wait_synced(inf, 1000), -ECANCELED, "stopped");
	sl_informer_stop(inf);
out:
	sl_informer_free(inf);
	sl_client_free(c);
}
