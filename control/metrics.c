// SPDX-License-Identifier: Apache-2.0
/*
 * Prometheus text metrics for sluice-control: request counts and latency by
 * verb/resource/code (names mirror kube-apiserver's apiserver_request_*),
 * watchers, watch events, slow-watcher closes, store commit latency, object
 * counts and resident memory. Single-threaded (event loop).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				 0.1,	 0.25,	0.5,	1,     2.5,  5,	    10};
#define NB (sizeof(buckets) / sizeof(buckets[0]))

struct hist {
	unsigned long long b[NB + 1]; /* last = +Inf */
	unsigned long long count;
	double sum;
};

struct req_count {
	enum api_verb verb;
	int res; /* api_resources index, -1 = none */
	int code;
	unsigned long long n;
};

struct metrics {
	struct req_count *counts;
	size_t n_counts, cap_counts;
	struct hist *lat; /* [VERB_N][api_resources_n + 1] */
	struct hist commit;
	unsigned long long watch_events;
	unsigned long long watch_slow_closed;
};

static void hist_add(struct hist *h, double v)
{
	size_t i = 0;

	while (i < NB && v > buckets[i])
		i++;
	h->b[i]++;
	h->count++;
	h->sum += v;
}

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->lat = calloc((size_t)VERB_N * (api_resources_n + 1), sizeof(*m->lat));
	if (!m->lat) {
		free(m);
		return NULL;
	}
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	free(m->counts);
	free(m->lat);
	free(m);
}

void metrics_request(struct metrics *m, enum api_verb verb, const struct api_resource *res,
		     int code, double seconds)
{
	int ri = res ? (int)api_resource_index(res) : -1;
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n_counts; i++) {
		struct req_count *c = &m->counts[i];
		if (c->verb == verb && c->res == ri && c->code == code)
			break;
	}
	if (i == m->n_counts) {
		if (m->n_counts == m->cap_counts) {
			size_t cap = m->cap_counts ? m->cap_counts * 2 : 64;
			struct req_count *v = realloc(m->counts, cap * sizeof(*v));
			if (!v)
				return;
			m->counts = v;
			m->cap_counts = cap;
		}
		m->counts[i] = (struct req_count){verb, ri, code, 0};
		m->n_counts++;
	}
	m->counts[i].n++;
	hist_add(&m->lat[(size_t)verb * (api_resources_n + 1) + (size_t)(ri + 1)], seconds);
}

void metrics_commit(struct metrics *m, double seconds)
{
	if (m)
		hist_add(&m->commit, seconds);
}

void metrics_watch_event(struct metrics *m, unsigned n)
{
	if (m)
		m->watch_events += n;
}

void metrics_watch_closed_slow(struct metrics *m)
{
	if (m)
		m->watch_slow_closed++;
}

static void hist_render(struct sl_buf *out, const char *name, const char *labels,
			const struct hist *h)
{
	unsigned long long cum = 0;

	for (size_t i = 0; i < NB; i++) {
		cum += h->b[i];
		sl_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
			      labels[0] ? "," : "", buckets[i], cum);
	}
	cum += h->b[NB];
	sl_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, labels[0] ? "," : "",
		      cum);
	sl_buf_printf(out, "%s_sum{%s} %.6f\n", name, labels, h->sum);
	sl_buf_printf(out, "%s_count{%s} %llu\n", name, labels, h->count);
}

static long rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

void metrics_render(struct metrics *m, struct server *srv, struct sl_buf *out)
{
	char labels[160];

	sl_buf_puts(out, "# HELP sluice_apiserver_request_total Requests by verb, resource and "
			 "HTTP code.\n# TYPE sluice_apiserver_request_total counter\n");
	for (size_t i = 0; i < m->n_counts; i++) {
		const struct req_count *c = &m->counts[i];
		sl_buf_printf(
			out,
			"sluice_apiserver_request_total{verb=\"%s\",resource=\"%s\",code=\"%d\"} "
			"%llu\n",
			api_verb_name(c->verb), c->res >= 0 ? api_resources[c->res].plural : "",
			c->code, c->n);
	}
	sl_buf_puts(out, "# HELP sluice_apiserver_request_duration_seconds Request latency by verb "
			 "and resource (watches: stream lifetime).\n"
			 "# TYPE sluice_apiserver_request_duration_seconds histogram\n");
	for (int v = 0; v < VERB_N; v++) {
		for (size_t r = 0; r <= api_resources_n; r++) {
			const struct hist *h = &m->lat[(size_t)v * (api_resources_n + 1) + r];
			if (!h->count)
				continue;
			snprintf(labels, sizeof(labels), "verb=\"%s\",resource=\"%s\"",
				 api_verb_name((enum api_verb)v),
				 r ? api_resources[r - 1].plural : "");
			hist_render(out, "sluice_apiserver_request_duration_seconds", labels, h);
		}
	}
	sl_buf_puts(out,
		    "# HELP sluice_store_commit_duration_seconds Time from write admission "
		    "to durable commit.\n# TYPE sluice_store_commit_duration_seconds histogram\n");
	hist_render(out, "sluice_store_commit_duration_seconds", "", &m->commit);
	sl_buf_printf(out,
		      "# HELP sluice_apiserver_watchers Open watch streams.\n"
		      "# TYPE sluice_apiserver_watchers gauge\nsluice_apiserver_watchers %zu\n",
		      watch_count(srv));
	sl_buf_printf(out,
		      "# HELP sluice_apiserver_watch_events_total Events sent to watchers.\n"
		      "# TYPE sluice_apiserver_watch_events_total counter\n"
		      "sluice_apiserver_watch_events_total %llu\n",
		      m->watch_events);
	sl_buf_printf(out,
		      "# HELP sluice_apiserver_watch_slow_closed_total Watchers closed for "
		      "falling behind.\n# TYPE sluice_apiserver_watch_slow_closed_total counter\n"
		      "sluice_apiserver_watch_slow_closed_total %llu\n",
		      m->watch_slow_closed);
	sl_buf_printf(out,
		      "# HELP sluice_apiserver_pending_writes Writes waiting for commit.\n"
		      "# TYPE sluice_apiserver_pending_writes gauge\n"
		      "sluice_apiserver_pending_writes %u\n",
		      srv->pending_writes);
	sl_buf_printf(out,
		      "# HELP sluice_store_revision Current store revision.\n"
		      "# TYPE sluice_store_revision gauge\nsluice_store_revision %lld\n",
		      (long long)cache_rev(srv->cache));
	sl_buf_puts(out, "# HELP sluice_apiserver_objects Objects stored, by resource.\n"
			 "# TYPE sluice_apiserver_objects gauge\n");
	for (size_t r = 0; r < api_resources_n; r++)
		sl_buf_printf(out, "sluice_apiserver_objects{resource=\"%s\"} %zu\n",
			      api_resources[r].plural, cache_count(srv->cache, &api_resources[r]));
	sl_buf_printf(
		out,
		"# HELP sluice_apiserver_cache_bytes Approximate watch cache size.\n"
		"# TYPE sluice_apiserver_cache_bytes gauge\nsluice_apiserver_cache_bytes %zu\n",
		cache_bytes(srv->cache));
	sl_buf_printf(out,
		      "# HELP process_resident_memory_bytes Resident memory.\n"
		      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes "
		      "%ld\n",
		      rss_bytes());
}
