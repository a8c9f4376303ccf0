// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-dns top level: the informers feed the zone on one libevent loop
 * (queue delivery, so zone writes happen on this thread only and each burst
 * of events is committed once), the worker threads answer, and the same
 * loop serves /metrics, /health and /ready. Cluster names are SERVFAIL until
 * every informer has listed once (dns_zone_set_synced), so clients retry
 * rather than cache an NXDOMAIN that is only a cold start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "dns.h"
#include "forward.h"
#include "server.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/hostport.h"
#include "sluice/informer.h"
#include "sluice/k8s.h"
#include "sluice/log.h"
#include "zone.h"

#define DN "dns"

enum { INF_SVC, INF_EPS, INF_POD, INF_NS, INF_N };

struct dns_app;

struct inf_ctx {
	struct dns_app *app;
	enum k8s_kind kind;
	bool synced;
};

struct dns_app {
	const struct dns_run_opts *o;
	struct event_base *base;
	struct sl_client *client;
	struct sl_informer *inf[INF_N];
	struct event *inf_ev[INF_N];
	struct inf_ctx ctx[INF_N];
	struct event *commit_ev, *sig_term, *sig_int;
	struct evhttp *http;
	struct dns_zone *zone;
	struct dns_fwd *fwd;
	struct dns_server *srv;
	bool dirty;
	bool synced;
	uint64_t commits, commit_errors, object_errors;
};

/* ---- informers → zone --------------------------------------------------------------------- */

static void mark_dirty(struct dns_app *a)
{
	if (!a->dirty) {
		a->dirty = true;
		event_active(a->commit_ev, EV_TIMEOUT, 0);
	}
}

static void on_add(struct json_object *obj, void *arg)
{
	struct inf_ctx *c = arg;

	if (dns_zone_upsert(c->app->zone, c->kind, obj))
		c->app->object_errors++;
	mark_dirty(c->app);
}

static void on_update(struct json_object *old, struct json_object *obj, void *arg)
{
	on_add(obj, arg);
}

static void on_delete(struct json_object *obj, void *arg)
{
	struct inf_ctx *c = arg;

	dns_zone_delete(c->app->zone, c->kind, obj);
	mark_dirty(c->app);
}

static void on_synced(void *arg)
{
	struct inf_ctx *c = arg;

	c->synced = true;
	mark_dirty(c->app);
}

static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_app *a = arg;
	bool all = true;

	a->dirty = false;
	if (dns_zone_commit(a->zone)) {
		a->commit_errors++;
		pr_warn(DN, "zone '%s': commit failed: out of memory; retrying on the next event",
			a->o->cfg.zone);
		return;
	}
	a->commits++;
	for (int i = 0; i < INF_N; i++)
		all = all && a->ctx[i].synced;
	if (all && !a->synced) {
		struct dns_zone_stats st;
		a->synced = true;
		dns_zone_set_synced(a->zone, true);
		dns_zone_stats(a->zone, &st);
		pr_info(DN,
			"zone '%s': synced (%zu services, %zu namespaces): serving NXDOMAIN "
			"from now on",
			a->o->cfg.zone, st.services, st.namespaces);
	}
}

static void inf_cb(evutil_socket_t fd, short what, void *arg)
{
	sl_informer_dispatch(arg, 0);
}

/* ---- HTTP: /metrics /health /ready --------------------------------------------------------- */

static void metrics_write(struct dns_app *a, struct evbuffer *out)
{
	struct dns_server_stats st;
	struct dns_cache_stats cs;
	struct dns_zone_stats zs;
	uint64_t cum = 0;

	dns_server_stats(a->srv, &st);
	dns_cache_stats(dns_fwd_cache(a->fwd), &cs);
	dns_zone_stats(a->zone, &zs);
	evbuffer_add_printf(out, "# HELP sluice_dns_queries_total Queries received, by type.\n"
				 "# TYPE sluice_dns_queries_total counter\n");
	for (int i = 0; i < DNS_ST_NTYPES; i++)
		evbuffer_add_printf(out, "sluice_dns_queries_total{type=\"%s\"} %llu\n",
				    dns_stat_type_names[i], (unsigned long long)st.queries[i]);
	evbuffer_add_printf(out, "# HELP sluice_dns_responses_total Replies sent, by rcode.\n"
				 "# TYPE sluice_dns_responses_total counter\n");
	for (int i = 0; i < DNS_ST_NRCODES; i++)
		evbuffer_add_printf(out, "sluice_dns_responses_total{rcode=\"%s\"} %llu\n",
				    dns_stat_rcode_names[i], (unsigned long long)st.rcodes[i]);
	evbuffer_add_printf(out, "# HELP sluice_dns_request_duration_seconds Time from query to "
				 "reply.\n# TYPE sluice_dns_request_duration_seconds histogram\n");
	for (int i = 0; i <= DNS_ST_NLAT; i++) {
		cum += st.lat[i];
		if (i < DNS_ST_NLAT)
			evbuffer_add_printf(out,
					    "sluice_dns_request_duration_seconds_bucket{le=\"%g\"} "
					    "%llu\n",
					    dns_stat_lat_us[i] / 1e6, (unsigned long long)cum);
		else
			evbuffer_add_printf(
				out,
				"sluice_dns_request_duration_seconds_bucket{le=\"+Inf\"} "
				"%llu\n",
				(unsigned long long)cum);
	}
	evbuffer_add_printf(out,
			    "sluice_dns_request_duration_seconds_sum %.6f\n"
			    "sluice_dns_request_duration_seconds_count %llu\n",
			    st.lat_sum_us / 1e6, (unsigned long long)cum);
#define CTR(name, help, v)                                                                 \
	evbuffer_add_printf(out,                                                           \
			    "# HELP sluice_dns_" name " " help "\n# TYPE sluice_dns_" name \
			    " counter\nsluice_dns_" name " %llu\n",                        \
			    (unsigned long long)(v))
#define GAUGE(name, help, v)                                                               \
	evbuffer_add_printf(out,                                                           \
			    "# HELP sluice_dns_" name " " help "\n# TYPE sluice_dns_" name \
			    " gauge\nsluice_dns_" name " %llu\n",                          \
			    (unsigned long long)(v))
	CTR("udp_queries_total", "Queries over UDP.", st.udp);
	CTR("tcp_queries_total", "Queries over TCP.", st.tcp);
	CTR("zone_answers_total", "Queries answered from the cluster zone.", st.zone);
	CTR("forwarded_total", "Queries sent upstream.", st.forwarded);
	CTR("cache_hits_total", "Forwarded names answered from the cache.", st.cache_hits);
	CTR("cache_misses_total", "Forwarded names not in the cache.", st.cache_misses);
	GAUGE("cache_entries", "Entries in the forward cache.", cs.entries);
	CTR("cache_evictions_total", "Cache entries evicted (LRU).", cs.evictions);
	CTR("truncated_total", "UDP replies sent with TC.", st.truncated);
	CTR("dropped_total", "Packets dropped as unparseable.", st.dropped);
	CTR("upstream_timeouts_total", "Upstream attempts that timed out.", st.upstream_timeouts);
	CTR("upstream_failed_total", "Forwarded queries answered SERVFAIL.", st.upstream_failed);
	CTR("pending_full_total", "Forwarded queries refused: no slot.", st.pending_full);
	CTR("tcp_accepted_total", "TCP connections accepted.", st.tcp_accepted);
	CTR("tcp_rejected_total", "TCP connections over the limit.", st.tcp_rejected);
	CTR("tcp_timeouts_total", "TCP connections closed idle or slow.", st.tcp_timeouts);
	GAUGE("tcp_connections", "Open TCP connections.", st.tcp_open);
	GAUGE("synced", "1 once every informer has listed.", a->synced ? 1 : 0);
	GAUGE("zone_services", "Services in the zone.", zs.services);
	GAUGE("zone_endpoints", "Endpoint addresses in the zone.", zs.endpoints);
	GAUGE("zone_namespaces", "Namespaces in the zone.", zs.namespaces);
	GAUGE("zone_serial", "SOA serial of the published snapshot.", zs.serial);
	CTR("zone_commits_total", "Snapshots published.", a->commits);
	CTR("zone_object_errors_total", "Objects the zone rejected.", a->object_errors);
	evbuffer_add_printf(out, "# HELP sluice_dns_upstream_up 1 when the upstream is healthy.\n"
				 "# TYPE sluice_dns_upstream_up gauge\n");
	for (unsigned int i = 0; i < dns_fwd_n_upstreams(a->fwd); i++) {
		struct dns_fwd_upstream_stats us;
		dns_fwd_upstream_stats(a->fwd, i, &us);
		evbuffer_add_printf(out,
				    "sluice_dns_upstream_up{upstream=\"%s\"} %d\n"
				    "sluice_dns_upstream_queries_total{upstream=\"%s\"} %llu\n"
				    "sluice_dns_upstream_failures_total{upstream=\"%s\"} %llu\n"
				    "sluice_dns_upstream_tcp_retries_total{upstream=\"%s\"} %llu\n",
				    us.addr, us.up ? 1 : 0, us.addr, (unsigned long long)us.queries,
				    us.addr, (unsigned long long)us.failures, us.addr,
				    (unsigned long long)us.tcp_retries);
	}
#undef CTR
#undef GAUGE
}

static void http_cb(struct evhttp_request *req, void *arg)
{
	struct dns_app *a = arg;
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *out = evbuffer_new();
	char path[64];
	size_t n;

	if (!out) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	n = strcspn(uri ? uri : "", "?");
	snprintf(path, sizeof(path), "%.*s", (int)(n < 63 ? n : 63), uri ? uri : "");
	if (!strcmp(path, "/health") || !strcmp(path, "/healthz")) {
		evbuffer_add_printf(out, "ok\n");
		evhttp_send_reply(req, 200, "OK", out);
	} else if (!strcmp(path, "/ready") || !strcmp(path, "/readyz")) {
		evbuffer_add_printf(out, a->synced ? "ok\n" : "informers not synced\n");
		evhttp_send_reply(req, a->synced ? 200 : 503, a->synced ? "OK" : "Not Ready", out);
	} else if (!strcmp(path, "/metrics")) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "text/plain; version=0.0.4");
		metrics_write(a, out);
		evhttp_send_reply(req, 200, "OK", out);
	} else {
		evbuffer_add_printf(out, "not found; try /metrics, /health, /ready\n");
		evhttp_send_reply(req, 404, "Not Found", out);
	}
	evbuffer_free(out);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct dns_app *a = arg;

	pr_info(DN, "signal %d: stopping", (int)sig);
	event_base_loopexit(a->base, NULL);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static int app_client(struct dns_app *a)
{
	char err[512] = "";

	if (a->o->kubeconfig) {
		a->client = sl_client_from_kubeconfig(a->o->kubeconfig, NULL, err, sizeof(err));
	} else if (a->o->server) {
		struct sl_client_opts co = {.server = a->o->server, .token = a->o->token};
		a->client = sl_client_new(&co, err, sizeof(err));
	} else {
		snprintf(err, sizeof(err), "--server URL or --kubeconfig FILE is required");
	}
	if (!a->client) {
		pr_err(DN, "API client: %s", err);
		return -EINVAL;
	}
	return 0;
}

static int app_informers(struct dns_app *a)
{
	static const enum k8s_kind kinds[INF_N] = {K8S_KIND_SERVICE, K8S_KIND_ENDPOINTSLICE,
						   K8S_KIND_POD, K8S_KIND_NAMESPACE};
	const struct sl_gvr gvrs[INF_N] = {SL_GVR_SERVICES, SL_GVR_ENDPOINTSLICES, SL_GVR_PODS,
					   SL_GVR_NAMESPACES};
	char err[512];

	for (int i = 0; i < INF_N; i++) {
		struct sl_informer_opts io = {
			.gvr = gvrs[i],
			.delivery = SL_INF_DELIVER_QUEUE,
			.handlers = {.on_add = on_add,
				     .on_update = on_update,
				     .on_delete = on_delete,
				     .on_synced = on_synced,
				     .arg = &a->ctx[i]},
		};
		a->ctx[i].app = a;
		a->ctx[i].kind = kinds[i];
		a->inf[i] = sl_informer_new(a->client, &io, err, sizeof(err));
		if (!a->inf[i]) {
			pr_err(DN, "informer '%s': %s", gvrs[i].resource, err);
			return -EINVAL;
		}
		a->inf_ev[i] = event_new(a->base, sl_informer_fd(a->inf[i]), EV_READ | EV_PERSIST,
					 inf_cb, a->inf[i]);
		if (!a->inf_ev[i] || event_add(a->inf_ev[i], NULL))
			return -ENOMEM;
		if (sl_informer_start(a->inf[i])) {
			pr_err(DN, "informer '%s': start failed", gvrs[i].resource);
			return -EAGAIN;
		}
	}
	return 0;
}

int dns_run(const struct dns_run_opts *o)
{
	struct dns_app a = {.o = o};
	struct dns_config cfg = o->cfg;
	static const enum dns_pod_mode pod_modes[] = {DNS_PODS_INSECURE, DNS_PODS_VERIFIED,
						      DNS_PODS_DISABLED};
	struct dns_zone_opts zo = {.zone = cfg.zone, .ttl = cfg.ttl, .pods = pod_modes[cfg.pods]};
	struct dns_fwd_opts fo;
	struct dns_server_opts so;
	struct sockaddr_storage bound;
	char err[512], abuf[80];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (!cfg.n_upstream) {
		const char *rp = o->resolv_conf ? o->resolv_conf : "/etc/resolv.conf";
		rc = dns_config_resolv_conf(&cfg, rp, err, sizeof(err));
		if (rc < 0)
			pr_warn(DN, "%s; names outside '%s' will get SERVFAIL", err, cfg.zone);
		else if (rc == 0)
			pr_warn(DN,
				"resolv.conf '%s': no usable nameserver (our own address is "
				"skipped); names outside '%s' will get SERVFAIL",
				rp, cfg.zone);
	}
	rc = app_client(&a);
	if (rc)
		return rc;
	a.zone = dns_zone_new(&zo);
	if (!a.zone) {
		rc = -errno;
		pr_err(DN, "zone '%s': creation failed: %s", cfg.zone, sl_strerror(rc));
		goto out;
	}
	fo = (struct dns_fwd_opts){
		.upstream = cfg.upstream,
		.n_upstream = cfg.n_upstream,
		.timeout_ms = cfg.upstream_timeout_ms,
		.max_fails = cfg.max_fails,
		.cache_size = cfg.cache_size,
		.cache_min_ttl = cfg.cache_min_ttl,
		.cache_max_ttl = cfg.cache_max_ttl,
		.bufsize = (uint16_t)cfg.bufsize,
	};
	a.fwd = dns_fwd_new(&fo);
	if (!a.fwd) {
		rc = -ENOMEM;
		pr_err(DN, "forwarder: creation failed: %s", sl_strerror(rc));
		goto out;
	}
	so = (struct dns_server_opts){
		.listen = cfg.listen,
		.workers = cfg.workers,
		.tcp_max_conns = cfg.tcp_max_conns,
		.tcp_idle_ms = cfg.tcp_idle_ms,
		.bufsize = (uint16_t)cfg.bufsize,
		.zone = a.zone,
		.fwd = a.fwd,
	};
	a.srv = dns_server_new(&so);
	if (!a.srv) {
		rc = -errno;
		goto out;
	}
	a.base = event_base_new();
	a.commit_ev = a.base ? event_new(a.base, -1, 0, commit_cb, &a) : NULL;
	a.sig_term = a.base ? evsignal_new(a.base, SIGTERM, signal_cb, &a) : NULL;
	a.sig_int = a.base ? evsignal_new(a.base, SIGINT, signal_cb, &a) : NULL;
	if (!a.commit_ev || !a.sig_term || !a.sig_int) {
		rc = -ENOMEM;
		goto out;
	}
	event_add(a.sig_term, NULL);
	event_add(a.sig_int, NULL);
	if (cfg.metrics[0]) {
		struct sockaddr_storage ma;
		char host[sizeof(cfg.metrics)];
		struct evhttp_bound_socket *bs = NULL;

		dns_config_addr_parse(cfg.metrics, 9153, &ma);
		snprintf(host, sizeof(host), "%s", cfg.metrics);
		*strrchr(host, ':') = '\0';
		a.http = evhttp_new(a.base);
		if (a.http)
			bs = evhttp_bind_socket_with_handle(
				a.http, host, ntohs(((struct sockaddr_in *)&ma)->sin_port));
		if (!bs) {
			pr_err(DN, "metrics '%s': bind failed: %s", cfg.metrics, strerror(errno));
			rc = -EADDRINUSE;
			goto out;
		}
		sl_listener_nodelay(evhttp_bound_socket_get_fd(bs));
		evhttp_set_gencb(a.http, http_cb, &a);
	}
	rc = app_informers(&a);
	if (rc)
		goto out;
	rc = dns_server_start(a.srv);
	if (rc) {
		pr_err(DN, "workers: start failed: %s", sl_strerror(rc));
		goto out;
	}
	dns_server_addr(a.srv, &bound);
	pr_info(DN, "serving zone '%s' on %s (UDP+TCP), %u upstream(s), API %s", cfg.zone,
		dns_config_addr_str(&bound, abuf, sizeof(abuf)), cfg.n_upstream,
		sl_client_server(a.client));
	event_base_dispatch(a.base);
	rc = 0;
out:
	/* Informers first (they feed the zone), then the workers (they read
	 * zone and forwarder), then the forwarder (its helper threads post to
	 * the workers' queues), then the rest. */
	for (int i = 0; i < INF_N; i++) {
		sl_informer_free(a.inf[i]);
		if (a.inf_ev[i])
			event_free(a.inf_ev[i]);
	}
	dns_server_stop(a.srv);
	dns_fwd_free(a.fwd);
	dns_server_free(a.srv);
	if (a.http)
		evhttp_free(a.http);
	if (a.commit_ev)
		event_free(a.commit_ev);
	if (a.sig_term)
		event_free(a.sig_term);
	if (a.sig_int)
		event_free(a.sig_int);
	if (a.base)
		event_base_free(a.base);
	dns_zone_free(a.zone);
	sl_client_free(a.client);
	return rc;
}
