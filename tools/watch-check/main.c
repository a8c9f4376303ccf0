// SPDX-License-Identifier: Apache-2.0
/*
 * watch-check: watch correctness under concurrency, against a running API
 * server. N writer threads create, update and delete ConfigMaps while M
 * watcher threads watch the namespace from the same starting
 * resourceVersion; every other watcher drops its stream every few events and
 * resumes from the last resourceVersion it saw. At the end every watcher must
 * have seen every write exactly once, in revision order, with the right event
 * type. Prints TAP-like "ok - watch-check/<name>" lines; exit 1 on failure.
 *
 *   watch-check --server http://127.0.0.1:PORT [--writers 8] [--watchers 16]
 *               [--objects 400] [--namespace watch-check]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/client.h"
#include "sluice/json.h"
#include "sluice/log.h"

struct rec {
	int64_t rev;
	char type; /* 'A', 'M', 'D' */
};

struct recs {
	struct rec *v;
	size_t n, cap;
	pthread_mutex_t lock;
};

static void recs_add(struct recs *r, int64_t rev, char type)
{
	pthread_mutex_lock(&r->lock);
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (!r->v) {
			fprintf(stderr, "watch-check: out of memory\n");
			exit(2);
		}
	}
	r->v[r->n++] = (struct rec){rev, type};
	pthread_mutex_unlock(&r->lock);
}

static struct sl_client *client;
static const char *ns = "watch-check";
static int n_writers = 8, n_watchers = 16, n_objects = 400;
static struct recs writes = {.lock = PTHREAD_MUTEX_INITIALIZER};
static volatile int64_t final_rev; /* set when writers are done */
static int write_errors;

static int64_t rv_of(struct json_object *obj)
{
	const char *rv = sl_json_get_str(sl_json_get(obj, "metadata"), "resourceVersion");

	return rv ? strtoll(rv, NULL, 10) : -1;
}

static int64_t do_write(const char *method, const char *path, const char *body, const char *ctype)
{
	struct sl_client_resp resp = {0};
	int64_t rev = -1;
	int err = sl_client_request(client, method, path, body, body ? strlen(body) : 0, ctype,
				    NULL, &resp);

	if (!err && resp.status >= 200 && resp.status < 300 && resp.json)
		rev = rv_of(resp.json);
	else
		fprintf(stderr, "watch-check: %s %s: status %ld %s\n", method, path, resp.status,
			resp.err);
	sl_client_resp_fini(&resp);
	return rev;
}

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	char path[256], body[512];

	for (int i = id; i < n_objects; i += n_writers) {
		int64_t rev;
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
			 "\"cm-%d\"},\"data\":{\"v\":\"0\"}}",
			 i);
		rev = do_write("POST", path, body, NULL);
		if (rev < 0) {
			__atomic_add_fetch(&write_errors, 1, __ATOMIC_RELAXED);
			continue;
		}
		recs_add(&writes, rev, 'A');
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/cm-%d", ns, i);
		rev = do_write("PATCH", path, "{\"data\":{\"v\":\"1\"}}",
			       "application/merge-patch+json");
		if (rev < 0)
			__atomic_add_fetch(&write_errors, 1, __ATOMIC_RELAXED);
		else
			recs_add(&writes, rev, 'M');
		if (i % 2 == 0) {
			rev = do_write("DELETE", path, NULL, NULL);
			if (rev < 0)
				__atomic_add_fetch(&write_errors, 1, __ATOMIC_RELAXED);
			else
				recs_add(&writes, rev, 'D');
		}
	}
	return NULL;
}

struct watcher {
	int id;
	bool resumer;  /* drops the stream every few events and resumes */
	int64_t start; /* resourceVersion to start from */
	int64_t last;  /* last revision seen */
	struct recs seen;
	unsigned since_resume;
	unsigned resumes;
	char err[256];
	bool failed;
};

#define STOP_RESUME 1
#define STOP_DONE   2

static int watch_event(const struct sl_watch_event *ev, void *arg)
{
	struct watcher *w = arg;
	int64_t rev = rv_of(ev->object);

	switch (ev->type) {
	case SL_WATCH_ADDED:
	case SL_WATCH_MODIFIED:
	case SL_WATCH_DELETED:
		recs_add(&w->seen, rev, "AMD"[ev->type]);
		w->last = rev;
		break;
	case SL_WATCH_BOOKMARK:
		break;
	case SL_WATCH_ERROR:
		snprintf(w->err, sizeof(w->err), "ERROR event: %s",
			 sl_json_get_str(ev->object, "message") ?: "?");
		w->failed = true;
		return STOP_DONE;
	}
	if (final_rev && w->last >= final_rev)
		return STOP_DONE;
	if (w->resumer && ++w->since_resume >= 37) {
		w->since_resume = 0;
		return STOP_RESUME;
	}
	return 0;
}

static void *watcher(void *arg)
{
	struct watcher *w = arg;
	time_t deadline = 0;

	w->last = w->start;
	for (;;) {
		char path[256], err[256];
		long status = 0;
		int rc;
		snprintf(path, sizeof(path),
			 "/api/v1/namespaces/%s/configmaps?watch=true&resourceVersion=%" PRId64
			 "&allowWatchBookmarks=true&timeoutSeconds=%d",
			 ns, w->last, 2);
		rc = sl_client_watch(client, path, 30, watch_event, w, NULL, &status, err,
				     sizeof(err));
		if (rc == STOP_DONE || w->failed)
			break;
		if (rc == STOP_RESUME) {
			w->resumes++;
			continue;
		}
		if (rc && rc != STOP_RESUME) {
			snprintf(w->err, sizeof(w->err), "watch failed: %.200s (status %ld)", err,
				 status);
			w->failed = true;
			break;
		}
		/* Server ended the stream (timeoutSeconds): resume from last RV. */
		if (final_rev) {
			if (w->last >= final_rev)
				break;
			if (!deadline)
				deadline = time(NULL) + 20;
			if (time(NULL) > deadline) {
				snprintf(w->err, sizeof(w->err),
					 "timed out at rev %" PRId64 " waiting for %" PRId64,
					 w->last, (int64_t)final_rev);
				w->failed = true;
				break;
			}
		}
	}
	return NULL;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	return x->rev < y->rev ? -1 : x->rev > y->rev;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"writers", required_argument, NULL, 'w'},
		{"watchers", required_argument, NULL, 'W'},
		{"objects", required_argument, NULL, 'o'},
		{"namespace", required_argument, NULL, 'n'},
		{0},
	};
	struct sl_client_opts co = {0};
	struct sl_client_resp resp = {0};
	pthread_t *wt, *ww;
	struct watcher *ws;
	char err[256], body[256];
	int64_t start;
	int c, fails = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			co.server = optarg;
			break;
		case 'w':
			n_writers = atoi(optarg);
			break;
		case 'W':
			n_watchers = atoi(optarg);
			break;
		case 'o':
			n_objects = atoi(optarg);
			break;
		case 'n':
			ns = optarg;
			break;
		default:
			fprintf(stderr, "usage: watch-check --server URL [--writers N] "
					"[--watchers M] [--objects K] [--namespace NS]\n");
			return 2;
		}
	}
	if (!co.server || n_writers < 1 || n_watchers < 1 || n_objects < 1) {
		fprintf(stderr, "watch-check: --server is required; counts must be positive\n");
		return 2;
	}
	sl_log_set_level(SL_LOG_WARN);
	client = sl_client_new(&co, err, sizeof(err));
	if (!client) {
		fprintf(stderr, "watch-check: %s\n", err);
		return 2;
	}
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
		 "{\"name\":\"%s\"}}",
		 ns);
	sl_client_request(client, "POST", "/api/v1/namespaces", body, strlen(body), NULL, NULL,
			  &resp);
	sl_client_resp_fini(&resp);
	memset(&resp, 0, sizeof(resp));
	snprintf(err, sizeof(err), "/api/v1/namespaces/%s/configmaps", ns);
	if (sl_client_request(client, "GET", err, NULL, 0, NULL, NULL, &resp) || !resp.json) {
		fprintf(stderr, "watch-check: initial list failed: %s\n", resp.err);
		return 2;
	}
	start = rv_of(resp.json);
	sl_client_resp_fini(&resp);

	wt = calloc((size_t)n_writers, sizeof(*wt));
	ww = calloc((size_t)n_watchers, sizeof(*ww));
	ws = calloc((size_t)n_watchers, sizeof(*ws));
	for (int i = 0; i < n_watchers; i++) {
		ws[i].id = i;
		ws[i].resumer = i % 2 == 1;
		ws[i].start = start;
		pthread_mutex_init(&ws[i].seen.lock, NULL);
		pthread_create(&ww[i], NULL, watcher, &ws[i]);
	}
	for (int i = 0; i < n_writers; i++)
		pthread_create(&wt[i], NULL, writer, (void *)(intptr_t)i);
	for (int i = 0; i < n_writers; i++)
		pthread_join(wt[i], NULL);
	qsort(writes.v, writes.n, sizeof(*writes.v), rec_cmp);
	final_rev = writes.n ? writes.v[writes.n - 1].rev : start;
	for (int i = 0; i < n_watchers; i++)
		pthread_join(ww[i], NULL);

	printf("%s - watch-check/writes-succeeded (%zu writes, %d errors)\n",
	       write_errors ? "not ok" : "ok", writes.n, write_errors);
	fails += write_errors != 0;
	for (int i = 0; i < n_watchers; i++) {
		struct watcher *w = &ws[i];
		size_t j = 0;
		const char *why = w->failed ? w->err : NULL;
		char buf[256];
		for (size_t k = 1; !why && k < w->seen.n; k++)
			if (w->seen.v[k].rev <= w->seen.v[k - 1].rev) {
				snprintf(buf, sizeof(buf),
					 "out of order or duplicate: rev %" PRId64
					 " after %" PRId64,
					 w->seen.v[k].rev, w->seen.v[k - 1].rev);
				why = buf;
			}
		if (!why && w->seen.n != writes.n) {
			snprintf(buf, sizeof(buf), "saw %zu events, expected %zu", w->seen.n,
				 writes.n);
			why = buf;
		}
		for (j = 0; !why && j < writes.n; j++)
			if (w->seen.v[j].rev != writes.v[j].rev ||
			    w->seen.v[j].type != writes.v[j].type) {
				snprintf(buf, sizeof(buf),
					 "event %zu: saw rev %" PRId64 " %c, expected %" PRId64
					 " %c",
					 j, w->seen.v[j].rev, w->seen.v[j].type, writes.v[j].rev,
					 writes.v[j].type);
				why = buf;
			}
		if (why) {
			printf("not ok - watch-check/watcher-%d%s\n    %s\n", i,
			       w->resumer ? "-resuming" : "", why);
			fails++;
		} else {
			printf("ok - watch-check/watcher-%d%s (%zu events, %u resumes)\n", i,
			       w->resumer ? "-resuming" : "", w->seen.n, w->resumes);
		}
		free(w->seen.v);
		pthread_mutex_destroy(&w->seen.lock);
	}
	free(writes.v);
	free(wt);
	free(ww);
	free(ws);
	sl_client_free(client);
	return fails ? 1 : 0;
}
