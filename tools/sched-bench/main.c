// SPDX-License-Identifier: Apache-2.0
/*
 * sched-bench: scheduling throughput and latency against a running API server
 * with a scheduler (sluice-control, or sluice-control --controllers none plus
 * sluice-scheduler).
 *
 *   sched-bench --server http://127.0.0.1:P [--nodes 100] [--pods 2000]
 *               [--creators 8] [--rate R] [--timeout 120]
 *
 * Registers --nodes Nodes as plain API objects (Ready, 64 CPU, 256Gi, 250
 * pods; no agents), watches pods through an informer, then creates --pods pods
 * in a namespace of their own (100m CPU, 64Mi each, one label set so they also exercise the spread
 * score) as fast as --creators closed-loop threads can, and records for each pod the time its
 * create was sent and the time the watch first showed spec.nodeName. Without --rate the creators
 * are closed-loop (as fast as the server takes them: throughput); with --rate R pod i is due at
 * start + i/R and its latency counts from that due time, so a slow server cannot hide queueing (no
 * coordinated omission): latency at a given load. Prints one line of key=value pairs: pods/s
 * created, pods/s scheduled (first create sent to last bind seen), and p50/p99/max latency create
 * -> bind seen; and two parts of it: the create's round trip (create_*) and create -> the pod's
 * first watch event (visible_*: the commit and one watch delivery, before any scheduler sees it);
 * late_p99_ms: paced runs, how late the bench's own threads sent creates (it counts in the rest).
 * The objects are left in place: run it against a throwaway server
 * (--store memory). Exit 1 if a create fails or a pod stays unbound.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/sched.h"
#include "sluice/client.h"
#include "sluice/informer.h"
#include "sluice/json.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct bench {
	struct sl_client *client;
	char prefix[32]; /* run tag in every name, so runs never collide */
	long n_pods;
	double rate; /* pods/s, 0 = closed loop */
	char pods_path[96];
	uint64_t t0;
	_Atomic uint64_t *sent, *bound; /* per pod, us; 0 = not yet */
	uint64_t *create_rtt;	   /* per pod, us: POST sent -> 201 (written by its creator only) */
	_Atomic uint64_t *visible; /* per pod, us: its first watch event, bound or not */
	uint64_t
		*late; /* per pod, us: paced runs, how late its create left (the bench's own lag) */
	atomic_long next, n_bound, errors;
};

static long pod_index(const struct bench *b, const char *name)
{
	size_t pl = strlen(b->prefix);
	char *end;
	long i;

	if (strncmp(name, b->prefix, pl) || strncmp(name + pl, "-p-", 3))
		return -1;
	i = strtol(name + pl + 3, &end, 10);
	return (*end || i < 0 || i >= b->n_pods) ? -1 : i;
}

static void seen(struct json_object *o, void *arg)
{
	struct bench *b = arg;
	const char *node = sl_json_get_str(sl_json_get(o, "spec"), "nodeName");
	const char *name = sl_json_get_str(sl_json_get(o, "metadata"), "name");
	uint64_t zero = 0, zero2 = 0;
	long i;

	if (!name || (i = pod_index(b, name)) < 0)
		return;
	atomic_compare_exchange_strong(&b->visible[i], &zero2, now_us());
	if (!node || !*node)
		return;
	if (atomic_compare_exchange_strong(&b->bound[i], &zero, now_us()))
		atomic_fetch_add(&b->n_bound, 1);
}
static void seen_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	seen(n, arg);
}

static int post(struct bench *b, const char *path, const char *body, char *err, size_t errlen)
{
	struct sl_client_resp r = {0};
	int rc = sl_client_request(b->client, "POST", path, body, strlen(body), NULL, NULL, &r);

	if (!rc && r.status != 201 && r.status != 200 && r.status != 409) {
		snprintf(err, errlen, "POST %s: %ld %s", path, r.status, r.err);
		rc = -1;
	} else if (rc) {
		snprintf(err, errlen, "POST %s: %s", path, r.err);
	}
	sl_client_resp_fini(&r);
	return rc;
}

static void *creator(void *arg)
{
	struct bench *b = arg;
	char body[1024], err[512];
	long i;

	while ((i = atomic_fetch_add(&b->next, 1)) < b->n_pods) {
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s-p-%"
			 "ld\","
			 "\"labels\":{\"app\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
			 "\"image\":\"x\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":"
			 "\"64Mi\"}}}]}}",
			 b->prefix, i, b->prefix);
		if (b->rate > 0) {
			uint64_t due = b->t0 + (uint64_t)((double)i * 1e6 / b->rate),
				 now = now_us();
			if (due > now)
				usleep((useconds_t)(due - now));
			atomic_store(&b->sent[i], due);
		} else {
			atomic_store(&b->sent[i], now_us());
		}
		uint64_t t = now_us();
		b->late[i] = t - atomic_load(&b->sent[i]);
		if (post(b, b->pods_path, body, err, sizeof(err))) {
			fprintf(stderr, "sched-bench: %s\n", err);
			atomic_fetch_add(&b->errors, 1);
		}
		b->create_rtt[i] = now_us() - t;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b);

static int offline(long nodes, long pods)
{
	struct sched_node *n = calloc((size_t)nodes, sizeof(*n)),
			  **v = calloc((size_t)nodes, sizeof(*v));
	struct sched_fit *fits = calloc((size_t)nodes, sizeof(*fits));
	int32_t *owner = calloc((size_t)nodes, sizeof(*owner));
	uint64_t *lat = calloc((size_t)pods, sizeof(*lat)), t0, t1;
	const char *pj = "{\"metadata\":{\"name\":\"p\",\"namespace\":\"b\",\"labels\":{"
			 "\"app\":\"b\"}},\"spec\":{\"containers\":[{\"resources\":{\"requests\":"
			 "{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}}]}}";
	struct json_object *j = sl_json_parse(pj, strlen(pj), NULL, 0);
	struct sched_pod p;
	char err[256];
	uint32_t rr = 0;
	long bound = 0;

	if (!n || !v || !fits || !owner || !lat || !j || sched_pod_parse(j, &p, err, sizeof(err))) {
		fprintf(stderr, "sched-bench: offline setup failed\n");
		free(n);
		free(v);
		free(fits);
		free(owner);
		free(lat);
		json_object_put(j);
		return 1;
	}
	for (long i = 0; i < nodes; i++) {
		char nj[512];
		struct json_object *o;
		snprintf(nj, sizeof(nj),
			 "{\"metadata\":{\"name\":\"n-%ld\"},\"status\":{\"allocatable\":{\"cpu\":"
			 "\"64\",\"memory\":\"256Gi\",\"pods\":\"250\"},\"conditions\":[{\"type\":"
			 "\"Ready\",\"status\":\"True\"}]}}",
			 i);
		o = sl_json_parse(nj, strlen(nj), NULL, 0);
		if (!o || sched_node_parse(o, &n[i], err, sizeof(err)))
			return 1; /* NOLINT(clang-analyzer-unix.Malloc): the process exits */
		json_object_put(o);
		v[i] = &n[i];
	}
	t0 = now_us();
	for (long k = 0; k < pods; k++) {
		uint64_t a = now_us();
		int idx = sched_select(&p, v, (size_t)nodes, owner, NULL, &rr, fits, NULL);
		if (idx >= 0) {
			sched_node_account(v[idx], &p, 1);
			owner[idx]++;
			bound++;
		}
		lat[k] = now_us() - a;
	}
	t1 = now_us();
	qsort(lat, (size_t)pods, sizeof(*lat), cmp_u64);
	printf("sched-bench offline nodes=%ld pods=%ld bound=%ld decisions_per_s=%.0f "
	       "p50_us=%" PRIu64 " p99_us=%" PRIu64 "\n",
	       nodes, pods, bound, (double)pods * 1e6 / (double)(t1 - t0 ? t1 - t0 : 1),
	       lat[pods / 2], lat[(size_t)((double)pods * 0.99)]);
	sched_pod_fini(&p);
	json_object_put(j);
	for (long i = 0; i < nodes; i++)
		sched_node_fini(&n[i]);
	free(n);
	free(v);
	free(fits);
	free(owner);
	free(lat);
	return bound == pods ? 0 : 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static long num(const char *flag, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || !*s || v < lo || v > hi) {
		fprintf(stderr, "sched-bench: %s '%s': expected an integer in [%ld, %ld]\n", flag,
			s, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"nodes", required_argument, NULL, 'n'},
		{"pods", required_argument, NULL, 'p'},
		{"creators", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 't'},
		{"rate", required_argument, NULL, 'r'},
		{"offline", no_argument, NULL, 'o'},
		{0},
	};
	struct sl_client_opts co = {.timeout_ms = 30000};
	struct sl_informer_opts io = {0};
	struct sl_informer *inf;
	struct bench b = {0};
	long nodes = 100, creators = 8, timeout_s = 120;
	uint64_t t0, t_created, first = UINT64_MAX, last = 0, *lat, *vis;
	pthread_t *thr;
	char err[512], rate_s[32];
	long n_lat = 0;
	bool off = false;
	int c;

	b.n_pods = 2000;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			co.server = optarg;
			break;
		case 'n':
			nodes = num("--nodes", optarg, 1, 5000);
			break;
		case 'p':
			b.n_pods = num("--pods", optarg, 1, 1000000);
			break;
		case 'c':
			creators = num("--creators", optarg, 1, 256);
			break;
		case 't':
			timeout_s = num("--timeout", optarg, 1, 3600);
			break;
		case 'o':
			off = true;
			break;
		case 'r':
			b.rate = (double)num("--rate", optarg, 1, 1000000);
			break;
		default:
			fprintf(stderr, "usage: sched-bench --server URL [--nodes N] [--pods N] "
					"[--creators N] [--rate R] [--timeout S]\n");
			return 2;
		}
	}
	if (off)
		return offline(nodes, b.n_pods);
	if (!co.server) {
		fprintf(stderr, "sched-bench: --server URL is required\n");
		return 2;
	}
	b.client = sl_client_new(&co, err, sizeof(err));
	if (!b.client) {
		fprintf(stderr, "sched-bench: %s\n", err);
		return 2;
	}
	snprintf(b.prefix, sizeof(b.prefix), "sb%x", (unsigned)getpid());
	b.sent = calloc((size_t)b.n_pods, sizeof(*b.sent));
	b.bound = calloc((size_t)b.n_pods, sizeof(*b.bound));
	lat = calloc((size_t)b.n_pods, sizeof(*lat));
	b.create_rtt = calloc((size_t)b.n_pods, sizeof(*b.create_rtt));
	b.visible = calloc((size_t)b.n_pods, sizeof(*b.visible));
	vis = calloc((size_t)b.n_pods, sizeof(*vis));
	b.late = calloc((size_t)b.n_pods, sizeof(*b.late));
	thr = calloc((size_t)creators, sizeof(*thr));
	if (!b.sent || !b.bound || !lat || !thr || !b.create_rtt || !b.visible || !vis || !b.late) {
		fprintf(stderr, "sched-bench: out of memory\n");
		free(b.late);
		free(vis);
		free(b.visible);
		free(b.create_rtt);
		free(b.sent);
		free(b.bound);
		free(lat);
		free(thr);
		return 1;
	}
	/* A namespace of its own: no Service selects these pods, as in a real burst of a new
	 * workload, and the run leaves the rest of the server alone. */
	{
		char body[256];
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
			 "\"%s\"}}",
			 b.prefix);
		snprintf(b.pods_path, sizeof(b.pods_path), "/api/v1/namespaces/%s/pods", b.prefix);
		if (post(&b, "/api/v1/namespaces", body, err, sizeof(err))) {
			/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): the process exits */
			fprintf(stderr, "sched-bench: %s\n", err);
			return 1;
		}
	}
	for (long i = 0; i < nodes; i++) {
		char body[1024];
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s-n-%"
			 "ld\","
			 "\"labels\":{\"kubernetes.io/hostname\":\"%s-n-%ld\"}},\"status\":{"
			 "\"allocatable\":{\"cpu\":\"64\",\"memory\":\"256Gi\",\"pods\":\"250\"},"
			 "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
			 b.prefix, i, b.prefix, i);
		if (post(&b, "/api/v1/nodes", body, err, sizeof(err))) {
			fprintf(stderr, "sched-bench: %s\n", err);
			return 1;
		}
	}
	io.gvr = SL_GVR_PODS;
	io.ns = b.prefix;
	io.delivery = SL_INF_DELIVER_THREAD;
	io.handlers =
		(struct sl_informer_handlers){.on_add = seen, .on_update = seen_update, .arg = &b};
	inf = sl_informer_new(b.client, &io, err, sizeof(err));
	if (!inf || sl_informer_start(inf) || sl_informer_wait_synced(inf, 10000)) {
		fprintf(stderr, "sched-bench: pod informer: %s\n", inf ? "no sync" : err);
		return 1;
	}
	sleep(1); /* the scheduler's node informer sees the new nodes */
	t0 = b.t0 = now_us();
	for (long i = 0; i < creators; i++)
		pthread_create(&thr[i], NULL, creator, &b);
	for (long i = 0; i < creators; i++)
		pthread_join(thr[i], NULL);
	t_created = now_us();
	while (atomic_load(&b.n_bound) < b.n_pods && now_us() - t0 < (uint64_t)timeout_s * 1000000)
		usleep(2000);
	sl_informer_stop(inf);
	for (long i = 0; i < b.n_pods; i++) {
		uint64_t s = atomic_load(&b.sent[i]), d = atomic_load(&b.bound[i]);
		if (s && s < first)
			first = s;
		if (!d)
			continue;
		if (d > last)
			last = d;
		lat[n_lat++] = d > s ? d - s : 0;
	}
	/* sent (or due) -> the first watch event of the pod: the create's commit and one watch
	 * delivery, which the scheduler's own view of the pod starts after */
	for (long i = 0; i < b.n_pods; i++) {
		uint64_t s = atomic_load(&b.sent[i]), v = atomic_load(&b.visible[i]);
		vis[i] = v > s ? v - s : 0;
	}
	qsort(vis, (size_t)b.n_pods, sizeof(*vis), cmp_u64);
	qsort(b.late, (size_t)b.n_pods, sizeof(*b.late), cmp_u64);
	snprintf(rate_s, sizeof(rate_s), "%.0f", b.rate);
	qsort(lat, (size_t)n_lat, sizeof(*lat), cmp_u64);
	qsort(b.create_rtt, (size_t)b.n_pods, sizeof(*b.create_rtt), cmp_u64);
	size_t mid = (size_t)n_lat / 2, pmid = (size_t)b.n_pods / 2;
	/* the create's own round trip, part of every pod's create -> bound time */
	printf("sched-bench nodes=%ld pods=%ld rate=%s bound=%ld create_errors=%ld "
	       "create_p50_ms=%.2f create_p99_ms=%.2f visible_p50_ms=%.2f visible_p99_ms=%.2f "
	       "late_p99_ms=%.2f created_per_s=%.0f ",
	       nodes, b.n_pods, b.rate > 0 ? rate_s : "max", n_lat, atomic_load(&b.errors),
	       (double)b.create_rtt[pmid] / 1000.0,
	       (double)b.create_rtt[(size_t)((double)b.n_pods * 0.99)] / 1000.0,
	       (double)vis[pmid] / 1000.0, (double)vis[(size_t)((double)b.n_pods * 0.99)] / 1000.0,
	       (double)b.late[(size_t)((double)b.n_pods * 0.99)] / 1000.0,
	       (double)b.n_pods * 1e6 / (double)(t_created - t0));
	printf("scheduled_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
	       n_lat && last > first ? (double)n_lat * 1e6 / (double)(last - first) : 0.0,
	       n_lat ? (double)lat[mid] / 1000.0 : 0.0,
	       n_lat ? (double)lat[(size_t)((double)n_lat * 0.99) < (size_t)n_lat
					   ? (size_t)((double)n_lat * 0.99)
					   : (size_t)n_lat - 1] /
			       1000.0
		     : 0.0,
	       n_lat ? (double)lat[n_lat - 1] / 1000.0 : 0.0);
	sl_informer_free(inf);
	sl_client_free(b.client);
	free(b.sent);
	free(b.bound);
	free(b.create_rtt);
	free((void *)b.visible);
	free(vis);
	free(b.late);
	free(lat);
	free(thr);
	return (n_lat == b.n_pods && !atomic_load(&b.errors)) ? 0 : 1;
}
