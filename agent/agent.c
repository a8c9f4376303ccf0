// SPDX-License-Identifier: Apache-2.0
/*
 * The node agent's control loop.
 *
 *   informers (Services, EndpointSlices, Nodes; queue delivery on eventfds;
 *        │ metadata-only caches for the first two: the agent keeps its own copy)
 *        │ each object decoded once into agent/lbinc.c, which marks the
 *        │ Services it touches dirty; a short debounce batches bursts
 *        ▼
 *   lbi_plan (agent/lbinc.c): rebuilds only the dirty Services with
 *        │ lbm_state_build (agent/model.c) and merges them into writes
 *        ▼
 *   dp_* (agent/datapath.c): backends first, then frontends (atomic slot
 *   flips), then deletes, then backend removals
 *
 * One libevent loop thread runs everything: informer dispatch, syncs, the
 * healthCheckNodePort servers and /metrics. On the first sync after a start
 * the agent also reconciles what it finds pinned (frontends and backends that
 * are no longer wanted are removed only after everything wanted is in place),
 * so a restart never empties a map that traffic depends on.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <dirent.h>
#include <fcntl.h>
#include <mntent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "agent.h"
#include "bigmem.h"
#include "datapath.h"
#include "lbinc.h"
#include "model.h"
#include "node.h"
#include "sockterm.h"
#include "sync_pace.h"
#include "nodeport.h"
#include "pods.h"
#include "policy.h"
#include "proxier.h"
#include "sluice/buf.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/hostport.h"
#include "sluice/informer.h"
#include "sluice/json.h"
#include "sluice/log.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define AG	      "agent"
#define AGENT_RUN_DIR "/run/sluice"

enum { INF_SVC, INF_EPS, INF_NODE, INF_N };

struct agent;
struct inf_ctx {
	struct agent *a;
	enum k8s_kind kind;
	const char *resource;
};

struct hc_port {
	uint16_t port;
	struct evhttp_bound_socket *sock;
};

struct agent {
	struct agent_config cfg;
	struct event_base *base;
	struct sl_client *client;
	struct sl_informer *inf[INF_N];
	struct inf_ctx ctx[INF_N];
	struct event *inf_ev[INF_N];
	struct event *sync_ev, *sig_term, *sig_int;
	bool sync_pending;
	/* The last retry's delay after failed syncs in a row, 0 after a sync
	 * that succeeded (sync_retry_delay_s). retry_pending: sync_ev is that
	 * retry's timer. */
	unsigned retry_s;
	bool retry_pending;
	bool dirty;
	struct dp *dp;
	struct sockterm *st; /* destroys sockets translated to removed backends; NULL if
				the kernel lacks bpf_sock_destroy */
	struct np *np;	     /* uplink N-S path (nodeport.h); NULL without --devices */
	struct node *node;   /* kubelet side (node.h); NULL without --run-pods */
	struct pods *pods;   /* pod runtime (pods.h); NULL without --run-pods */
	/* Services, EndpointSlices and this node, decoded once per event into
	 * compact copies; each sync rebuilds only the Services events touched. */
	struct lbi *lbi;
	bool want_full;	  /* next sync writes everything and reconciles the maps
			   * (at start, and after a failed write) */
	bool healthy;	  /* the last sync applied cleanly */
	struct npol *pol; /* NetworkPolicy loop (policy.h) */
	/* The policy loop, the kubelet side and the socket iterator open after
	 * the first sync (open_rest): services first. rest_ev is the fallback
	 * for a first sync that does not come. */
	bool rest_open;
	struct event *rest_ev;
	int exit_rc; /* a failure after the loop started (open_rest) */
	/* a legacy dataplane (proxier.h) in place of the socket LB; NULL = bpf */
	const struct pxy_ops *pxops;
	struct pxy *px;
	__be32 *local_addrs;
	size_t n_local_addrs;
	/* health checks */
	struct evhttp *hc_http;
	struct hc_port *hc;
	size_t n_hc;
	/* problems already reported as Events ("ns/name/reason") */
	char **reported;
	size_t n_reported;
	/* metrics */
	struct evhttp *metrics_http;
	unsigned long long syncs, sync_errors, ops_applied;
	double last_sync_s, sync_s_sum;
	unsigned long long sync_hist[8]; /* <1ms <5 <10 <50 <100 <500 <1000 >=1000 */
	time_t last_event;
	struct timespec dirty_since;
	struct timespec last_sync_end; /* CLOCK_MONOTONIC */
	/* Where a start's time goes, logged once after the first sync (all in
	 * seconds; at_* since agent_run began). */
	struct {
		struct timespec t0;
		double at_dp_open;	 /* BPF objects loaded, maps pinned */
		double at_listed[INF_N]; /* the loop took that informer's on_synced */
		double decode_s;	 /* loop time in handlers (decode, compact copy) */
		unsigned long objects;	 /* handler calls before the first sync */
	} start;
};

void agent_config_defaults(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->bpffs = DP_BPFFS_DEFAULT;
	cfg->metrics_listen = "127.0.0.1:10249";
	cfg->hc_bind = "0.0.0.0";
	cfg->sync_delay_ms = 5;
	cfg->hash_seed = NP_HASH_SEED_DEFAULT;
	cfg->cni_conf_dir = "/etc/cni/net.d";
	cfg->cni_bin_dir = "/opt/cni/bin";
	cfg->cluster_domain = "cluster.local";
}

/* --- host setup ------------------------------------------------------------------- */

int agent_bpffs_ensure(const char *path)
{
	struct statfs st;

	if (mkdir(path, 0700) && errno != EEXIST) {
		pr_err(AG, "bpffs '%s': mkdir failed: %s", path, strerror(errno));
		return -errno;
	}
	if (!statfs(path, &st) && (unsigned long)st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", path, "bpf", 0, "mode=0700")) {
		pr_err(AG, "bpffs '%s': mount -t bpf failed: %s", path, strerror(errno));
		return -errno;
	}
	pr_info(AG, "bpffs '%s': mounted", path);
	return 0;
}

int agent_cgroup2_root(char *out, size_t outlen)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mntent *m;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(out, outlen, "%s", m->mnt_dir);
			rc = 0;
			break;
		}
	}
	endmntent(f);
	return rc;
}

/*
 * The dataplane that last programmed this node, recorded in
 * /run/sluice/<node>/dataplane.<netns inode> so a restart with another
 * --dataplane removes the old one's state first (proxier.h). Netfilter state
 * is per network namespace, hence the inode (agents of one name in two
 * namespaces, as in tests, must not clean each other's rules); /run because
 * the rules and pins it describes do not survive a reboot either.
 */
static void dataplane_path(char *out, size_t len, const char *node_name)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		st.st_ino = 0;
	snprintf(out, len, "%s/%s/dataplane.%llu", AGENT_RUN_DIR, node_name,
		 (unsigned long long)st.st_ino);
}

static int dataplane_recorded(const char *node_name, enum agent_dataplane *out)
{
	char path[PATH_MAX], buf[32];
	FILE *f;
	size_t n;

	dataplane_path(path, sizeof(path), node_name);
	f = fopen(path, "re");
	if (!f)
		return errno ? -errno : -EIO;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return agent_dataplane_parse(buf, out);
}

/* Records d; NULL removes the record. Failures are logged, never fatal. */
static void dataplane_record(const char *node_name, const char *d)
{
	char path[PATH_MAX], dir[PATH_MAX];
	FILE *f;

	dataplane_path(path, sizeof(path), node_name);
	if (!d) {
		unlink(path);
		snprintf(dir, sizeof(dir), "%s/%s", AGENT_RUN_DIR, node_name);
		rmdir(dir);	      /* other namespaces' records may remain */
		rmdir(AGENT_RUN_DIR); /* and other nodes' */
		return;
	}
	mkdir(AGENT_RUN_DIR, 0755);
	snprintf(dir, sizeof(dir), "%s/%s", AGENT_RUN_DIR, node_name);
	mkdir(dir, 0755);
	f = fopen(path, "we");
	if (!f) {
		pr_warn(AG, "node '%s': recording the dataplane in '%s' failed: %s", node_name,
			path, strerror(errno));
		return;
	}
	if ((fprintf(f, "%s\n", d) < 0) | (fclose(f) != 0)) /* both, always */
		pr_warn(AG, "node '%s': recording the dataplane in '%s' failed: %s", node_name,
			path, strerror(errno));
}

int agent_cleanup(const char *bpffs, const char *node_name)
{
	char root[PATH_MAX];
	int rc, n;

	/* Uplink tc filters first, while the pins still identify them. */
	snprintf(root, sizeof(root), "%s/sluice/%s", bpffs ? bpffs : DP_BPFFS_DEFAULT, node_name);
	n = np_detach_all(root);
	if (n < 0)
		pr_err(AG, "node '%s': detaching the uplink tc filters failed: %s", node_name,
		       sl_strerror(n));
	rc = dp_cleanup(bpffs ? bpffs : DP_BPFFS_DEFAULT, node_name);
	if (!rc && n < 0)
		rc = n;
	/* Every legacy dataplane's rules in this netns, recorded or not: the
	 * recorded one may be stale (a crash between programming and writing
	 * the record). */
	for (int d = AGENT_DP_BPF + 1; d < AGENT_DP_N; d++) {
		const struct pxy_ops *ops = pxy_ops_for((enum agent_dataplane)d);
		int e = ops ? ops->cleanup() : 0;

		if (e < 0 && e != -ENOTSUP) {
			pr_err(AG, "node '%s': removing the %s rules failed: %s", node_name,
			       ops->name, sl_strerror(e));
			if (!rc)
				rc = e;
		}
	}
	dataplane_record(node_name, NULL);

	if (rc)
		pr_err(AG, "node '%s': cleanup failed: %s", node_name, sl_strerror(rc));
	else
		pr_info(AG, "node '%s': datapath detached and unpinned", node_name);
	return rc;
}

static uint64_t host_netns_cookie(void)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
			cookie = 0;
		close(fd);
	}
	return cookie;
}

/* --- events for problems ---------------------------------------------------------- */

static bool reported(struct agent *a, const char *k)
{
	for (size_t i = 0; i < a->n_reported; i++)
		if (!strcmp(a->reported[i], k))
			return true;
	return false;
}

/* Event names as client-go's recorder makes them: <object>.<hex nanoseconds>. */
static unsigned long long event_stamp(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Posts a Warning Event on the Service, once per (service, reason). */
static void report_problems(struct agent *a, const struct lbm_problem *problems, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct lbm_problem *p = &problems[i];
		char key[600], path[400], ts[32], **v;
		struct sl_buf body = SL_BUF_INIT;
		struct sl_client_resp resp = {0};
		time_t now = time(NULL);
		struct tm tm;

		snprintf(key, sizeof(key), "%s/%s/%s", p->ns, p->name, p->reason);
		if (reported(a, key))
			continue;
		pr_warn(AG, "service '%s/%s': %s: %s", p->ns, p->name, p->reason, p->message);
		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		sl_buf_printf(
			&body,
			"{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":"
			"\"%s.%llx\",\"namespace\":\"%s\"},\"involvedObject\":{\"apiVersion\":"
			"\"v1\","
			"\"kind\":\"Service\",\"namespace\":\"%s\",\"name\":\"%s\"},\"reason\":",
			p->name, event_stamp(), p->ns, p->ns, p->name);
		sl_buf_json_str(&body, p->reason);
		sl_buf_puts(&body, ",\"message\":");
		sl_buf_json_str(&body, p->message);
		sl_buf_printf(&body,
			      ",\"type\":\"Warning\",\"count\":1,\"firstTimestamp\":\"%s\","
			      "\"lastTimestamp\":\"%s\",\"source\":{\"component\":\"sluice-agent\","
			      "\"host\":\"%s\"}}",
			      ts, ts, a->cfg.node_name);
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", p->ns);
		if (!body.oom &&
		    sl_client_request(a->client, "POST", path, body.data, body.len, NULL, NULL,
				      &resp) == 0 &&
		    (resp.status < 300 || resp.status == 409)) {
			/* Reported only once the API has it; a failed post is retried at
			 * the next sync that still sees the problem. */
			v = realloc(a->reported, (a->n_reported + 1) * sizeof(*v));
			if (v) {
				a->reported = v;
				a->reported[a->n_reported++] = strdup(key);
			}
		} else {
			pr_warn(AG, "service '%s/%s': posting event failed: %ld %s", p->ns, p->name,
				resp.status, resp.err);
		}
		sl_client_resp_fini(&resp);
		sl_buf_fini(&body);
	}
}

/* --- health check node ports ------------------------------------------------------ */

struct hc_find {
	uint16_t port;
	const struct lbm_service *s;
};

static int hc_find_cb(const struct lbm_service *s, void *arg)
{
	struct hc_find *f = arg;

	if (s->hc_node_port != f->port)
		return 0;
	f->s = s;
	return 1;
}

static const struct lbm_service *hc_service(struct agent *a, uint16_t port)
{
	struct hc_find f = {.port = port};

	if (!port)
		return NULL;
	lbi_foreach_service(a->lbi, hc_find_cb, &f);
	return f.s;
}

/* kube-proxy's answer: 200 with the local endpoint count, 503 when none. */
static void hc_cb(struct evhttp_request *req, void *arg)
{
	struct agent *a = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct sockaddr_in sin = {0};
	socklen_t sl = sizeof(sin);
	const struct lbm_service *s = NULL;
	struct evbuffer *out = evbuffer_new();
	uint32_t n = 0;

	if (bev && !getsockname(bufferevent_getfd(bev), (struct sockaddr *)&sin, &sl))
		s = hc_service(a, ntohs(sin.sin_port));
	if (s)
		n = s->hc_local_endpoints;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Content-Type-Options",
			  "nosniff");
	evbuffer_add_printf(out,
			    "{\"service\":{\"namespace\":\"%s\",\"name\":\"%s\"},"
			    "\"localEndpoints\":%u,\"serviceProxyHealthy\":true}",
			    s ? s->ns : "", s ? s->name : "", n);
	evhttp_send_reply(req, n ? 200 : 503, n ? "OK" : "Service Unavailable", out);
	evbuffer_free(out);
}

/* The services with a healthCheckNodePort (few: type LoadBalancer, eTP Local). */
struct hc_want {
	const struct lbm_service **v;
	size_t n, cap;
	bool oom;
};

static int hc_want_cb(const struct lbm_service *s, void *arg)
{
	struct hc_want *w = arg;

	if (!s->hc_node_port)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		const struct lbm_service **v = realloc(w->v, cap * sizeof(*v));

		if (!v) {
			w->oom = true;
			return 1;
		}
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = s;
	return 0;
}

static void hc_update(struct agent *a)
{
	struct hc_want w = {0};

	lbi_foreach_service(a->lbi, hc_want_cb, &w);
	if (w.oom) {
		free(w.v);
		return; /* keep the ports as they are */
	}
	/* Close ports no longer wanted. */
	for (size_t i = 0; i < a->n_hc;) {
		bool keep = false;
		for (size_t j = 0; j < w.n && !keep; j++)
			keep = w.v[j]->hc_node_port == a->hc[i].port;
		if (keep) {
			i++;
			continue;
		}
		evhttp_del_accept_socket(a->hc_http, a->hc[i].sock);
		a->hc[i] = a->hc[--a->n_hc];
	}
	for (size_t j = 0; j < w.n; j++) {
		uint16_t port = w.v[j]->hc_node_port;
		bool have = !port;
		struct hc_port *v;
		for (size_t i = 0; i < a->n_hc && !have; i++)
			have = a->hc[i].port == port;
		if (have)
			continue;
		v = realloc(a->hc, (a->n_hc + 1) * sizeof(*v));
		if (!v)
			break;
		a->hc = v;
		v[a->n_hc].port = port;
		v[a->n_hc].sock = evhttp_bind_socket_with_handle(a->hc_http, a->cfg.hc_bind, port);
		if (!v[a->n_hc].sock) {
			pr_warn(AG, "service '%s/%s': healthCheckNodePort %u: bind failed: %s",
				w.v[j]->ns, w.v[j]->name, port, strerror(errno));
			continue;
		}
		sl_listener_nodelay(evhttp_bound_socket_get_fd(v[a->n_hc].sock));
		a->n_hc++;
	}
	free(w.v);
}

/* --- sync --------------------------------------------------------------------------- */

static int ids_for(struct agent *a, const struct lbm_state *st, const struct lbm_frontend *fe,
		   __u32 *ids)
{
	for (__u16 i = 0; i < fe->count; i++) {
		const struct lbm_backend *b = &st->backends[fe->be[i]];
		int err = dp_backend_id(a->dp, b->addr, b->port, b->proto, &ids[i]);
		if (err)
			return err;
	}
	return 0;
}

/* Backend creates and updates, in batched map writes. Converted a chunk at
 * a time: a copy of all 200,000 of a start was 3 MiB of fresh pages. */
#define BE_CHUNK 8192

static int apply_backends(struct agent *a, const struct lbm_backend *bs, size_t n)
{
	struct sl_backend *v;
	int err = 0;

	if (!n)
		return 0;
	v = calloc(n < BE_CHUNK ? n : BE_CHUNK, sizeof(*v));
	if (!v || dp_backend_reserve(a->dp, n)) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i += BE_CHUNK) {
		size_t m = n - i < BE_CHUNK ? n - i : BE_CHUNK;
		int e;

		for (size_t k = 0; k < m; k++)
			v[k] = (struct sl_backend){
				.addr = bs[i + k].addr,
				.port = bs[i + k].port,
				.proto = bs[i + k].proto,
				.state = bs[i + k].state,
				.node_id = bs[i + k].local ? 0 : 1,
			};
		e = dp_backend_upsert_many(a->dp, v, m);
		err = err ? err : e;
	}
	free(v);
	return err;
}

static int apply_frontend(struct agent *a, const struct lbm_state *st,
			  const struct lbm_frontend *fe)
{
	__u32 *ids = calloc(fe->count ? fe->count : 1, sizeof(*ids));
	struct dp_svc svc = {.key = fe->key,
			     .flags = (__u16)(fe->flags | (fe->drop ? SL_SVC_F_DROP : 0)),
			     .affinity_s = fe->affinity_s};
	struct np_txn txn;
	__u32 svc_id;
	int err;

	if (!ids)
		return -ENOMEM;
	err = ids_for(a, st, fe, ids);
	/* N-S frontends get their Maglev table before the entry points at it. */
	if (!err)
		err = np_maglev_begin(a->np, st, fe, ids, &svc.flags, &svc.maglev_base, &txn);
	if (!err) {
		svc.backend_ids = ids;
		svc.count = fe->count;
		err = dp_svc_upsert(a->dp, &svc, &svc_id);
		np_txn_end(a->np, &txn, !err);
	}
	free(ids);
	return err;
}

/*
 * The plan's frontend writes; returns the number that failed. Frontends
 * without a Maglev table go to dp_svc_upsert_many first: it creates the new
 * ones in a few batched writes (a start: 20,000 frontends in one pass
 * instead of ~7 bpf() calls each). A frontend it creates was in neither
 * scope of svc4, so it had no Maglev table to release (np_maglev_begin
 * would have found none). Everything else, and whatever it leaves, goes
 * through apply_frontend one by one.
 */
static unsigned apply_frontends(struct agent *a, const struct lbi_plan *plan)
{
	size_t n = plan->n_fe_put, n_ids = 0, m = 0;
	struct dp_svc *svcs = NULL;
	bool *done = NULL, *written = NULL;
	size_t *idx = NULL;
	__u32 *ids = NULL, *p;
	unsigned errors = 0;

	for (size_t i = 0; i < n; i++)
		n_ids += plan->fe_put[i].st->frontends[plan->fe_put[i].idx].count;
	svcs = calloc(n + 1, sizeof(*svcs));
	done = calloc(n + 1, sizeof(*done));
	written = calloc(n + 1, sizeof(*written));
	idx = calloc(n + 1, sizeof(*idx));
	ids = calloc(n_ids + 1, sizeof(*ids));
	if (svcs && done && written && idx && ids) {
		p = ids;
		for (size_t i = 0; i < n; i++) {
			const struct lbm_state *st = plan->fe_put[i].st;
			const struct lbm_frontend *fe = &st->frontends[plan->fe_put[i].idx];

			if (np_frontend_maglev(fe) || ids_for(a, st, fe, p))
				continue;
			svcs[m] = (struct dp_svc){
				.key = fe->key,
				.flags = (__u16)((fe->flags | (fe->drop ? SL_SVC_F_DROP : 0)) &
						 ~SL_SVC_F_MAGLEV),
				.affinity_s = fe->affinity_s,
				.backend_ids = p,
				.count = fe->count};
			p += fe->count;
			idx[m++] = i;
		}
		if (!dp_svc_upsert_many(a->dp, svcs, m, done))
			for (size_t k = 0; k < m; k++)
				written[idx[k]] = done[k];
	}
	for (size_t i = 0; i < n; i++) {
		const struct lbm_state *st = plan->fe_put[i].st;

		if (!written || !written[i])
			errors += apply_frontend(a, st, &st->frontends[plan->fe_put[i].idx]) != 0;
	}
	free(svcs);
	free(done);
	free(written);
	free(idx);
	free(ids);
	return errors;
}

/* dp_svc_delete plus the release of the entry's Maglev table. */
static int delete_frontend(struct agent *a, const struct sl_svc_key *key)
{
	struct np_txn txn;
	int err;

	np_maglev_begin_delete(a->np, key, &txn);
	err = dp_svc_delete(a->dp, key);
	np_txn_end(a->np, &txn, !err || err == -SL_ERR_NOTFOUND);
	return err;
}

struct reconcile {
	struct agent *a;
	unsigned removed;
};

static int stale_frontend(const struct sl_svc_key *key, void *arg)
{
	struct reconcile *r = arg;

	if (!lbi_want_frontend(r->a->lbi, key) && !delete_frontend(r->a, key))
		r->removed++;
	return 0;
}

/* Wanted backends are a hash lookup in lbinc (a linear scan per pinned
 * backend was quadratic). */
static int stale_backend(const struct sl_backend *be, __u32 id, void *arg)
{
	struct reconcile *r = arg;

	if (lbi_want_backend(r->a->lbi, be->addr, be->port, be->proto))
		return 0;
	if (!dp_backend_remove(r->a->dp, be->addr, be->port, be->proto))
		r->removed++;
	return 0;
}

static void sync_record(struct agent *a, double s)
{
	static const double bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1};
	size_t i = 0;

	while (i < 7 && s >= bounds[i])
		i++;
	a->sync_hist[i]++;
	a->syncs++;
	a->last_sync_s = s;
	a->sync_s_sum += s;
}

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * Network namespaces whose sockets the socket LB can have translated: those
 * of the processes in the node's cgroup subtree (the hooks apply there and
 * nowhere else). Returns open fds (caller closes), deduplicated by inode.
 */
struct netns_set {
	int *fds;
	ino_t *inos;
	size_t n, cap;
};

static void netns_add_pid(struct netns_set *ns, const char *pid)
{
	char path[64];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/ns/net", pid);
	if (stat(path, &st))
		return;
	for (size_t i = 0; i < ns->n; i++)
		if (ns->inos[i] == st.st_ino)
			return;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		int *f = realloc(ns->fds, cap * sizeof(*f));
		ino_t *i = f ? realloc(ns->inos, cap * sizeof(*i)) : NULL;
		if (f)
			ns->fds = f;
		if (!f || !i)
			return;
		ns->inos = i;
		ns->cap = cap;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ns->fds[ns->n] = fd;
	ns->inos[ns->n++] = st.st_ino;
}

static void netns_walk_cgroup(struct netns_set *ns, const char *dir, int depth)
{
	char path[PATH_MAX], line[32];
	DIR *d;
	FILE *f;
	struct dirent *e;

	if (depth > 16)
		return;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (line[0])
				netns_add_pid(ns, line);
		}
		fclose(f);
	}
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		netns_walk_cgroup(ns, path, depth + 1);
	}
	closedir(d);
}

static void netns_set_fini(struct netns_set *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		close(ns->fds[i]);
	free(ns->fds);
	free(ns->inos);
}

static bool obj_key(struct json_object *obj, char *key, size_t len)
{
	struct json_object *meta = sl_json_get(obj, "metadata");
	const char *ns = sl_json_get_str(meta, "namespace");
	const char *name = sl_json_get_str(meta, "name");
	int n;

	if (!name)
		return false;
	n = snprintf(key, len, "%s/%s", ns ? ns : "", name);
	return n > 0 && (size_t)n < len;
}

/* A sync failed: the next one, a full resync, after a back-off (sync_pace.h),
 * even if this sync's own take-in already asked for one sooner. */
static unsigned sync_retry(struct agent *a)
{
	struct timeval tv = {0, 0};

	a->retry_s = sync_retry_delay_s(a->retry_s);
	tv.tv_sec = a->retry_s;
	a->dirty = true;
	a->sync_pending = true;
	a->retry_pending = true;
	event_add(a->sync_ev, &tv);
	return (unsigned)tv.tv_sec;
}

/* Writes a plan into the eBPF maps; returns the number of failed writes. */
static unsigned apply_plan_bpf(struct agent *a, const struct lbi_plan *plan)
{
	struct sockterm_target *gone = NULL;
	size_t n_gone = 0;
	unsigned errors = 0;
	int err;

	errors += apply_backends(a, plan->be_put, plan->n_be_put) != 0;
	errors += apply_frontends(a, plan);
	for (size_t i = 0; i < plan->n_fe_del; i++) {
		err = delete_frontend(a, &plan->fe_del[i]);
		errors += err != 0 && err != -SL_ERR_NOTFOUND;
	}
	for (size_t i = 0; i < plan->n_be_del; i++) {
		const struct lbm_backend *b = &plan->be_del[i];

		err = dp_backend_remove(a->dp, b->addr, b->port, b->proto);
		if (err == -SL_ERR_NOTFOUND)
			err = 0;
		errors += err != 0;
		/* Connected UDP sockets would keep talking to the dead backend
		 * (kubernetes#125467); TCP connections are left to fail on their
		 * own, as kube-proxy does. */
		if (!err && b->proto == IPPROTO_UDP) {
			struct sockterm_target *v = realloc(gone, (n_gone + 1) * sizeof(*v));
			if (v) {
				gone = v;
				gone[n_gone++] = (struct sockterm_target){
					.addr = b->addr, .port = b->port, .proto = b->proto};
			}
		}
	}
	a->ops_applied +=
		plan->n_be_put + plan->n_fe_put + plan->n_fe_del + plan->n_be_del - errors;
	/* Adopted pinned state (or a failed write): drop what is no longer
	 * wanted, now that everything wanted is in place. Not after a first
	 * sync into maps this start created that wrote all it wanted: they hold
	 * exactly that plan (the walks were ~1/3 of its map time). */
	if (plan->full && !errors && (a->syncs || !dp_maps_created(a->dp))) {
		struct reconcile r = {.a = a};

		dp_svc_foreach(a->dp, stale_frontend, &r);
		dp_backend_foreach(a->dp, stale_backend, &r);
		if (r.removed)
			pr_info(AG, "node '%s': removed %u stale entries from the maps",
				a->cfg.node_name, r.removed);
	}
	if (n_gone && a->st) {
		struct sockterm_stats sts = {0};
		struct netns_set ns = {0};
		int terr;

		netns_walk_cgroup(&ns, a->cfg.cgroup_root, 0);
		terr = sockterm_backends_gone(a->st, gone, n_gone, ns.fds, ns.n, &sts);
		netns_set_fini(&ns);
		if (terr)
			pr_warn(AG,
				"node '%s': destroying sockets of %zu removed backends failed: %s",
				a->cfg.node_name, n_gone, sl_strerror(terr));
		else if (sts.destroyed)
			pr_info(AG, "node '%s': destroyed %u sockets connected to removed backends",
				a->cfg.node_name, sts.destroyed);
	}
	free(gone);
	return errors;
}

/* Hands the model to the legacy dataplane; returns 1 when it failed. */
static unsigned apply_plan_legacy(struct agent *a, const struct lbi_plan *plan)
{
	int err = a->pxops->sync(a->px, a->lbi, plan->full || a->want_full);

	if (err) {
		pr_err(AG, "node '%s': programming the %s dataplane failed: %s", a->cfg.node_name,
		       a->pxops->name, sl_strerror(err));
		return 1;
	}
	a->ops_applied += plan->n_be_put + plan->n_fe_put + plan->n_fe_del + plan->n_be_del;
	return 0;
}

/*
 * Builds a chunk of the Services already taken in, before the first sync
 * (lbi_prebuild): small, so the loop goes back to draining the informers'
 * bounded queues within a millisecond or two; a long build there let them
 * fill and wait. lbi_prebuild's result: 1 = more are ready, 2 = more in a
 * moment, 0 = none, <0 = left to the plan.
 */
#define PREBUILD_CHUNK 64
static int prebuild_chunk(struct agent *a)
{
	int rc = lbi_prebuild(a->lbi, PREBUILD_CHUNK);

	if (rc < 0)
		pr_debug(AG, "prebuild: %s; the first plan builds the rest", sl_strerror(rc));
	return rc;
}

static void agent_sync(struct agent *a)
{
	struct json_object *nodes;
	struct lbi_plan plan;
	struct timespec t0;
	double t_plan, t_apply;
	unsigned errors = 0;
	size_t n_addrs, n_ops;
	const __be32 *addrs;
	bool trim;
	int err;

	for (int i = 0; i < INF_N; i++)
		if (!sl_informer_has_synced(a->inf[i])) {
			/* The first sync waits for complete caches; meanwhile the
			 * Services already in are built, a chunk per loop turn
			 * (lbi_prebuild), and this comes back for the next. */
			int more = a->syncs ? 0 : prebuild_chunk(a);

			if (more > 0 && !a->sync_pending) {
				a->sync_pending = true;
				event_add(a->sync_ev, &(struct timeval){0, more == 1 ? 0 : 2000});
			}
			return;
		}
	/* Take in whatever is queued first, so a sync never sees half a burst
	 * (at start: Services without their slices, written twice). */
	for (int i = 0; i < INF_N; i++)
		sl_informer_dispatch(a->inf[i], 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	a->dirty = false;
	/* Nodes are few: the uplink path reads them as JSON. */
	nodes = sl_informer_list(a->inf[INF_NODE]);
	if (np_node_sync(a->np, a->cfg.node_name, nodes))
		errors++;
	json_object_put(nodes);
	addrs = lbi_node_addrs(a->lbi, &n_addrs);
	if (n_addrs != a->n_local_addrs ||
	    (n_addrs && memcmp(addrs, a->local_addrs, n_addrs * sizeof(__be32)))) {
		__be32 *v = malloc((n_addrs + 1) * sizeof(*v));
		if (v && !dp_local_addrs_set(a->dp, addrs, n_addrs) &&
		    (!a->px || !a->pxops->set_node_addrs(a->px, addrs, n_addrs))) {
			if (n_addrs) /* addrs is NULL when the Node is gone */
				memcpy(v, addrs, n_addrs * sizeof(*v));
			free(a->local_addrs);
			a->local_addrs = v;
			a->n_local_addrs = n_addrs;
		} else {
			free(v);
			errors++;
		}
	}
	t_plan = since(&t0);
	err = lbi_plan(a->lbi, a->want_full, &plan);
	t_plan = since(&t0) - t_plan;
	if (err) {
		pr_err(AG, "node '%s': building the datapath model failed: %s", a->cfg.node_name,
		       sl_strerror(err));
		a->sync_errors++;
		a->healthy = false;
		sync_retry(a);
		return;
	}
	t_apply = since(&t0);
	errors += a->px ? apply_plan_legacy(a, &plan) : apply_plan_bpf(a, &plan);
	t_apply = since(&t0) - t_apply;
	if (!a->syncs)
		pr_info(AG,
			"node '%s': first sync: BPF loaded at %.3f s; lists taken in at %.3f s "
			"(Services), %.3f s (EndpointSlices), %.3f s (Nodes); %lu objects decoded "
			"in %.3f s of loop time; plan %.3f s (%zu of %zu fragments built ahead); "
			"map writes %.3f s (%zu frontends, %zu backends); done at %.3f s",
			a->cfg.node_name, a->start.at_dp_open, a->start.at_listed[INF_SVC],
			a->start.at_listed[INF_EPS], a->start.at_listed[INF_NODE], a->start.objects,
			a->start.decode_s, t_plan, plan.services_prebuilt, plan.services_built,
			t_apply, plan.n_fe_put, plan.n_be_put, since(&a->start.t0));
	n_ops = plan.n_be_put + plan.n_fe_put + plan.n_fe_del + plan.n_be_del;
	if (plan.hc_changed)
		hc_update(a);
	if (errors) {
		/* Something failed (logged by dp): the next sync writes everything
		 * again and reconciles, soon. */
		a->want_full = true;
		a->healthy = false;
		a->sync_errors++;
		pr_warn(AG, "node '%s': sync had %u failed operations; full resync in %u s",
			a->cfg.node_name, errors, sync_retry(a));
	} else {
		a->retry_s = 0;
		a->want_full = false;
		a->healthy = true;
		report_problems(a, plan.problems, plan.n_problems);
	}
	sync_record(a, since(&t0));
	clock_gettime(CLOCK_MONOTONIC, &a->last_sync_end);
	pr_debug(AG, "node '%s': sync: %zu services rebuilt, %zu ops in %.3f ms", a->cfg.node_name,
		 plan.services_built, n_ops, a->last_sync_s * 1e3);
	trim = plan.full || plan.services_built >= 1000;
	lbi_plan_fini(&plan);
	if (a->syncs == 1)
		sl_heap_warm_stop();
	/* A start or a large change freed the informers' list pages, the
	 * decoded objects and the plan: give the heap back instead of keeping
	 * the peak. */
	if (trim)
		malloc_trim(0);
	if (a->syncs == 1)
		mallopt(M_TRIM_THRESHOLD, 128 * 1024); /* glibc's default (see agent_run) */
}

static void sockterm_start(struct agent *a)
{
	a->st = sockterm_open(dp_pin_root(a->dp));
	if (!a->st)
		pr_warn(AG,
			"node '%s': socket termination unavailable (%s): connected UDP clients "
			"of removed backends recover only when they reconnect",
			a->cfg.node_name, strerror(errno));
}

/*
 * Opens what the services do not need, once they are programmed: the socket
 * iterator (unless the start adopted maps), the NetworkPolicy loop (its
 * tc_pod object: a verification and the conntrack maps' preallocation, about
 * 0.3 s of CPU) and then the kubelet side. The policy loop opens before the
 * endpoint socket, because CNI ADD writes a pod's policy entries; until then
 * an ADD finds no socket and fails with the plugin's "agent not running"
 * error, which the runtime retries. Pinned programs and maps keep enforcing
 * policy for the pods already running in the meantime (fail-static).
 */
static int open_rest(struct agent *a)
{
	if (a->rest_open)
		return 0;
	a->rest_open = true;
	evtimer_del(a->rest_ev);
	if (!a->st)
		sockterm_start(a);
	a->pol = npol_open(&(struct npol_opts){.base = a->base,
					       .client = a->client,
					       .pin_root = dp_pin_root(a->dp),
					       .node_name = a->cfg.node_name});
	if (!a->pol) {
		int rc = -errno;
		pr_err(AG, "node '%s': NetworkPolicy enforcement: %s", a->cfg.node_name,
		       sl_strerror(rc));
		return rc;
	}
	if (a->cfg.run_pods) {
		struct json_object *nodes;

		a->node = node_open(&a->cfg, a->base, a->client, dp_pin_root(a->dp));
		if (!a->node)
			return -errno;
		/* The Node informer ran before the kubelet side existed: hand it
		 * what it missed (later events and the synced marker, should they
		 * still be queued, repeat harmlessly). */
		nodes = sl_informer_list(a->inf[INF_NODE]);
		for (size_t i = 0; nodes && i < json_object_array_length(nodes); i++)
			node_observe(a->node, json_object_array_get_idx(nodes, i), false);
		json_object_put(nodes);
		if (sl_informer_has_synced(a->inf[INF_NODE]))
			node_synced(a->node);
		a->pods = pods_open(a->base, a->client, &a->cfg);
		if (!a->pods)
			return -errno;
	}
	return 0;
}

/* open_rest failed: the agent stops, as it did when this ran before the loop. */
static void open_rest_or_stop(struct agent *a)
{
	int rc = open_rest(a);

	if (rc) {
		a->exit_rc = rc;
		event_base_loopbreak(a->base);
	}
}

static void sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	a->sync_pending = false;
	a->retry_pending = false;
	agent_sync(a);
	if (a->syncs && !a->rest_open)
		open_rest_or_stop(a);
}

static void rest_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	if (!a->rest_open)
		pr_warn(AG, "node '%s': no first sync after 30 s: opening the policy loop anyway",
			a->cfg.node_name);
	open_rest_or_stop(a);
}

/*
 * Schedules a sync. After a quiet period the sync runs at once (on the next
 * loop turn, after the events already queued), so a lone endpoint change does
 * not wait out a debounce; right after a sync it waits a pause proportional
 * to that sync's cost, at most sync_delay_ms (sync_pace.h), so a stream of
 * events is still batched while cheap syncs do not hold a change back.
 */
static void mark_dirty(struct agent *a)
{
	struct timeval tv = {0, 0};

	if (a->syncs) {
		long us = sync_pace_wait_us(since(&a->last_sync_end), a->last_sync_s,
					    a->cfg.sync_delay_ms);

		tv.tv_sec = us / 1000000;
		tv.tv_usec = us % 1000000;
	}
	if (!a->dirty)
		clock_gettime(CLOCK_MONOTONIC, &a->dirty_since);
	a->dirty = true;
	a->last_event = time(NULL);
	if (a->retry_pending) {
		/* An event during a back-off brings the (full) resync forward, once,
		 * but to no sooner than SYNC_RETRY_MIN_S after the failed sync: a
		 * change that frees room waits at most that, and steady churn
		 * against a full map costs a full resync a second, not one per
		 * event. */
		long min_us = (long)((SYNC_RETRY_MIN_S - since(&a->last_sync_end)) * 1e6);

		if (min_us > tv.tv_sec * 1000000L + tv.tv_usec) {
			tv.tv_sec = min_us / 1000000;
			tv.tv_usec = min_us % 1000000;
		}
		a->retry_pending = false;
		event_add(a->sync_ev, &tv);
	} else if (!a->sync_pending) {
		a->sync_pending = true;
		event_add(a->sync_ev, &tv);
	}
}

/* Hands the typed object (NULL = forget key) to lbinc; it keeps a compact copy. */
static int lbi_put(struct inf_ctx *c, const char *key, const void *typed)
{
	struct agent *a = c->a;

	switch (c->kind) {
	case K8S_KIND_SERVICE:
		return lbi_service_set(a->lbi, key, typed);
	case K8S_KIND_ENDPOINTSLICE:
		return lbi_slice_set(a->lbi, key, typed);
	case K8S_KIND_NODE:
		/* Only this node's addresses matter (externalIPs, NodePorts); the
		 * key of a cluster-scoped object is "/name". */
		if (strcmp(key[0] == '/' ? key + 1 : key, a->cfg.node_name) != 0)
			return 0;
		return lbi_node_set(a->lbi, typed);
	default:
		return 0;
	}
}

/*
 * The common end of on_add and on_add_typed: the typed object (NULL = forget
 * key) into the model, freed after; t0 is when the handler started (the
 * first sync's split counts the objects taken in and the loop's time).
 */
static void take_typed(struct inf_ctx *c, const char *key, void *typed, const struct timespec *t0)
{
	if (lbi_put(c, key, typed) && typed)
		pr_err(AG, "%s '%s': out of memory", c->resource, key);
	k8s_obj_free(c->kind, typed);
	mark_dirty(c->a);
	if (!c->a->syncs) {
		c->a->start.decode_s += since(t0);
		c->a->start.objects++;
	}
}

static void on_add(struct json_object *obj, void *arg)
{
	struct inf_ctx *c = arg;
	char key[600], err[256];
	struct timespec t0 = {0};
	void *typed = NULL;

	if (!c->a->syncs)
		clock_gettime(CLOCK_MONOTONIC, &t0);

	if (!obj_key(obj, key, sizeof(key))) {
		pr_warn(AG, "%s: object without metadata.name skipped", c->resource);
		return;
	}
	if (c->kind == K8S_KIND_NODE)
		node_observe(c->a->node, obj, false);
	if (k8s_obj_decode(c->kind, obj, &typed, err, sizeof(err))) {
		/* The latest version is unusable: forget the previous one too, so
		 * the datapath does not keep serving a state the API abandoned. */
		pr_warn(AG, "%s '%s': malformed object skipped: %s", c->resource, key, err);
		typed = NULL;
	}
	take_typed(c, key, typed, &t0);
}

/*
 * A Service or EndpointSlice of the first list, decoded from its text on the
 * informer's thread (sl_informer_opts.typed_kind): the loop only copies it
 * into the model. At 10,000 Services the json-c tree and its walk were most
 * of the agent's start.
 */
static void on_add_typed(void *typed, void *arg)
{
	struct inf_ctx *c = arg;
	const struct k8s_meta *m = k8s_obj_meta(c->kind, typed);
	char key[600];
	struct timespec t0 = {0};
	int n;

	if (!c->a->syncs)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The informer hands over only objects with a name. */
	n = snprintf(key, sizeof(key), "%s/%s", m->namespace ? m->namespace : "", m->name);
	if (n < 0 || (size_t)n >= sizeof(key)) {
		pr_warn(AG, "%s '%s': name too long, skipped", c->resource, m->name);
		k8s_obj_free(c->kind, typed);
		return;
	}
	take_typed(c, key, typed, &t0);
}

static void on_update(struct json_object *o, struct json_object *n, void *arg)
{
	on_add(n, arg);
}

static void on_delete(struct json_object *obj, void *arg)
{
	struct inf_ctx *c = arg;
	char key[600];

	if (obj_key(obj, key, sizeof(key)))
		lbi_put(c, key, NULL);
	if (c->kind == K8S_KIND_NODE)
		node_observe(c->a->node, obj, true);
	mark_dirty(c->a);
}

static void on_synced(void *arg)
{
	struct inf_ctx *c = arg;

	if (c->kind == K8S_KIND_NODE)
		node_synced(c->a->node);
	c->a->start.at_listed[c - c->a->ctx] = since(&c->a->start.t0);
	mark_dirty(c->a);
}

/*
 * Takes in what the Service and EndpointSlice informers queued so far, from
 * between the steps of the setup (BPF loads for the policy and uplink paths)
 * that run before the event loop does: their lists are streaming in as parsed
 * objects, and a queue left alone falls back to text past its bound (see
 * sluice/informer.h). Their handlers need only the model and the sync timer.
 * Nodes too: the model needs this node's object before it can build a
 * Service ahead (lbi_prebuild); the kubelet side, not open yet, ignores them
 * and gets them replayed when it opens (open_rest).
 */
static void take_in_lists(struct agent *a)
{
	for (int i = 0; i < INF_N; i++)
		sl_informer_dispatch(a->inf[i], 0);
}

static void inf_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sl_informer *inf = arg;

	sl_informer_dispatch(inf, 0);
}

/* --- metrics ------------------------------------------------------------------------- */

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	struct agent *a = arg;
	static const char *bounds[] = {"0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf"};
	static const char *reasons[SL_R_MAX] = {
		"ok",	    "no_backend", "backend_gone", "slot_oob",	   "ct_full",
		"nat_fail", "malformed",  "unsupported",  "bind_nodeport", "affinity_hit"};
	const char *path = evhttp_request_get_uri(req);
	struct evbuffer *out = evbuffer_new();
	struct sl_counter ctr[SL_R_MAX];
	struct dp_fill fill;
	unsigned long long cum = 0;

	if (path && !strncmp(path, "/healthz", 8)) {
		bool ok = a->healthy;
		evbuffer_add_printf(out, ok ? "ok" : "not synced");
		evhttp_send_reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", out);
		evbuffer_free(out);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4");
	evbuffer_add_printf(out, "# TYPE sluice_agent_sync_duration_seconds histogram\n");
	for (int i = 0; i < 8; i++) {
		cum += a->sync_hist[i];
		evbuffer_add_printf(out,
				    "sluice_agent_sync_duration_seconds_bucket{le=\"%s\"} %llu\n",
				    bounds[i], cum);
	}
	evbuffer_add_printf(
		out,
		"sluice_agent_sync_duration_seconds_sum %.6f\n"
		"sluice_agent_sync_duration_seconds_count %llu\n"
		"# TYPE sluice_agent_sync_errors_total counter\n"
		"sluice_agent_sync_errors_total %llu\n"
		"# TYPE sluice_agent_ops_applied_total counter\n"
		"sluice_agent_ops_applied_total %llu\n"
		"# TYPE sluice_agent_sync_pending gauge\nsluice_agent_sync_pending %d\n",
		a->sync_s_sum, a->syncs, a->sync_errors, a->ops_applied, a->dirty ? 1 : 0);
	if (a->healthy) {
		size_t nfe, nbe;

		lbi_counts(a->lbi, &nfe, &nbe);
		evbuffer_add_printf(
			out,
			"# TYPE sluice_agent_frontends gauge\nsluice_agent_frontends %zu\n"
			"# TYPE sluice_agent_backends gauge\nsluice_agent_backends %zu\n",
			nfe, nbe);
	}
	if (!dp_fill_read_cached(a->dp, &fill)) {
		evbuffer_add_printf(out, "# TYPE sluice_agent_map_entries gauge\n");
		evbuffer_add_printf(out,
				    "sluice_agent_map_entries{map=\"svc4\"} %u\n"
				    "sluice_agent_map_entries{map=\"be4\"} %u\n"
				    "sluice_agent_map_entries{map=\"slots\"} %u\n"
				    "sluice_agent_map_entries{map=\"sockrev4\"} %u\n"
				    "sluice_agent_map_entries{map=\"aff4\"} %u\n",
				    fill.services, fill.backends, fill.slots, fill.sock_rev,
				    fill.affinity);
		evbuffer_add_printf(out, "# TYPE sluice_agent_map_capacity gauge\n");
		evbuffer_add_printf(out,
				    "sluice_agent_map_capacity{map=\"svc4\"} %u\n"
				    "sluice_agent_map_capacity{map=\"be4\"} %u\n"
				    "sluice_agent_map_capacity{map=\"slots\"} %u\n"
				    "sluice_agent_map_capacity{map=\"sockrev4\"} %u\n"
				    "sluice_agent_map_capacity{map=\"aff4\"} %u\n",
				    fill.services_max, fill.backends_max, fill.slots_max,
				    fill.sock_rev_max, fill.affinity_max);
	}
	if (!dp_counters_read(a->dp, ctr)) {
		evbuffer_add_printf(out, "# TYPE sluice_datapath_events_total counter\n");
		for (int i = 0; i < SL_R_MAX; i++)
			if (reasons[i])
				evbuffer_add_printf(
					out, "sluice_datapath_events_total{reason=\"%s\"} %llu\n",
					reasons[i], (unsigned long long)ctr[i].packets);
	}
	evbuffer_add_printf(out,
			    "# TYPE sluice_agent_dataplane gauge\n"
			    "sluice_agent_dataplane{dataplane=\"%s\"} 1\n",
			    a->pxops ? a->pxops->name : "bpf");
	if (a->px) {
		struct pxy_stats ps = {0};

		a->pxops->stats(a->px, &ps);
		evbuffer_add_printf(
			out,
			"# TYPE sluice_agent_dataplane_syncs_total counter\n"
			"sluice_agent_dataplane_syncs_total %llu\n"
			"# TYPE sluice_agent_dataplane_sync_errors_total counter\n"
			"sluice_agent_dataplane_sync_errors_total %llu\n"
			"# TYPE sluice_agent_dataplane_rules gauge\n"
			"sluice_agent_dataplane_rules %llu\n"
			"# TYPE sluice_agent_dataplane_last_sync_seconds gauge\n"
			"sluice_agent_dataplane_last_sync_seconds %.6f\n"
			"# TYPE sluice_agent_dataplane_last_program_seconds gauge\n"
			"sluice_agent_dataplane_last_program_seconds %.6f\n",
			(unsigned long long)ps.syncs, (unsigned long long)ps.sync_errors,
			(unsigned long long)ps.rules, ps.last_sync_s, ps.last_program_s);
	}
	np_metrics_write(a->np, out);
	npol_metrics_write(a->pol, out);
	for (int i = 0; i < INF_N; i++) {
		static const char *names[] = {"services", "endpointslices", "nodes"};
		struct sl_informer_stats st;
		sl_informer_stats(a->inf[i], &st);
		evbuffer_add_printf(out,
				    "sluice_agent_informer_objects{resource=\"%s\"} %llu\n"
				    "sluice_agent_informer_relists_total{resource=\"%s\"} %llu\n",
				    names[i], (unsigned long long)st.objects, names[i],
				    (unsigned long long)st.relists);
	}
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

/* --- lifecycle ----------------------------------------------------------------------- */

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;

	pr_info(AG, "signal %d: stopping (the datapath stays in place)", (int)sig);
	event_base_loopexit(a->base, NULL);
}

/* --- uplink N-S path (nodeport.h) ---------------------------------------------------- */

/* Loads tc_nodeport on --devices (comma-separated), or, without devices,
 * detaches filters a previous run left on this netns's interfaces. */
static int nodeport_open(struct agent *a)
{
	struct np_opts o = {
		.pin_root = dp_pin_root(a->dp),
		.hash_seed = a->cfg.hash_seed,
		.nat_port_min = (__u16)a->cfg.nat_port_min,
		.nat_port_max = (__u16)a->cfg.nat_port_max,
		.maglev_tables = a->cfg.maglev_tables,
		.gc_interval_s = a->cfg.ct_gc_interval_s,
		/* the GC timer: np_start_gc, on the loop's thread */
	};
	char *list, *save = NULL, *tok;
	const char **devs = NULL;
	size_t n = 0;
	int rc = 0;

	if (!a->cfg.devices || !a->cfg.devices[0]) {
		if (np_detach_all(dp_pin_root(a->dp)) > 0)
			pr_info(AG, "no --devices: uplink filters of a previous run detached");
		return 0;
	}
	list = strdup(a->cfg.devices);
	devs = calloc(strlen(a->cfg.devices) / 2 + 2, sizeof(*devs));
	if (!list || !devs) {
		rc = -ENOMEM;
		goto out;
	}
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		devs[n++] = tok;
	o.devices = devs;
	o.n_devices = n;
	a->np = np_open(&o);
	if (!a->np) {
		rc = -errno;
		pr_err(AG, "node '%s': --devices '%s': loading the uplink datapath failed: %s",
		       a->cfg.node_name, a->cfg.devices, sl_strerror(rc));
	}
out:
	free(list);
	free(devs);
	return rc;
}

/*
 * The BPF side of the start on a thread of its own: the service datapath
 * (dp_open: ~0.2 s of map creation and verification) and, with --devices,
 * the uplinks'. Meanwhile the caller takes in the lists: before, the
 * informers filled their bounded queues in the first ~40 ms of the load and
 * then waited for it, idle, on the critical path of a start. The thread
 * touches only a->dp and a->np (the handlers only the model and the sync
 * timer); the uplinks' GC timer is added on the loop's thread afterwards
 * (np_start_gc), as libevent wants.
 */
struct setup_job {
	struct agent *a;
	const struct dp_opts *dpo;
	int done_fd; /* eventfd, written when the job ends */
	int rc;
};

static void *setup_run(void *arg)
{
	struct setup_job *j = arg;
	struct agent *a = j->a;

	a->dp = dp_open(j->dpo);
	if (!a->dp) {
		j->rc = -errno;
		pr_err(AG, "node '%s': opening the datapath failed: %s", a->cfg.node_name,
		       sl_strerror(j->rc));
	} else {
		a->start.at_dp_open = since(&a->start.t0);
		j->rc = nodeport_open(a);
	}
	if (j->done_fd >= 0 && eventfd_write(j->done_fd, 1))
		pr_warn(AG, "setup: eventfd: %s", strerror(errno));
	return NULL;
}

/* Runs setup_run on a thread, taking in the lists until it ends (inline
 * when no thread can be had). 0 or what the job failed with. */
static int setup_bpf(struct agent *a, const struct dp_opts *dpo)
{
	struct setup_job j = {.a = a, .dpo = dpo};
	struct pollfd p[INF_N + 1] = {{.fd = -1}};
	pthread_t th;

	j.done_fd = eventfd(0, EFD_CLOEXEC);
	if (j.done_fd < 0 || pthread_create(&th, NULL, setup_run, &j)) {
		if (j.done_fd >= 0)
			close(j.done_fd);
		j.done_fd = -1;
		setup_run(&j);
		take_in_lists(a);
		return j.rc;
	}
	for (int i = 0; i < INF_N; i++)
		p[i] = (struct pollfd){.fd = sl_informer_fd(a->inf[i]), .events = POLLIN};
	p[INF_N] = (struct pollfd){.fd = j.done_fd, .events = POLLIN};
	for (;;) {
		int more;

		take_in_lists(a);
		more = prebuild_chunk(a);
		if (poll(p, INF_N + 1, more == 1 ? 0 : more == 2 ? 2 : -1) < 0 && errno != EINTR) {
			pr_warn(AG, "setup: poll: %s", strerror(errno));
			break; /* join below: the load goes on alone */
		}
		if (p[INF_N].revents)
			break;
	}
	pthread_join(th, NULL);
	close(j.done_fd);
	take_in_lists(a);
	return j.rc;
}

/*
 * Opens the legacy dataplane --dataplane asks for (a.px stays NULL for bpf)
 * and removes the state of the one recorded for this node if it differs:
 * the bpf hooks are detached by dp_open(no_attach) and the uplink filters
 * here, netfilter rules by their backend's cleanup.
 */
static int dataplane_switch(struct agent *a)
{
	enum agent_dataplane want = (enum agent_dataplane)a->cfg.dataplane, had;
	const char *name = agent_dataplane_name(want);
	const struct pxy_ops *old;

	if (!name) {
		pr_err(AG, "dataplane %d: unknown", a->cfg.dataplane);
		return -EINVAL;
	}
	if (want != AGENT_DP_BPF) {
		struct pxy_cfg pc = {
			.node_name = a->cfg.node_name,
			.cluster_cidr = a->cfg.cluster_cidr,
			.masquerade_all = a->cfg.masquerade_all,
		};

		if (a->cfg.devices && a->cfg.devices[0]) {
			pr_err(AG,
			       "--devices loads the eBPF uplink path, which --dataplane %s "
			       "replaces; drop one of them",
			       name);
			return -EINVAL;
		}
		if (a->cfg.iptables_variant && !strcmp(a->cfg.iptables_variant, "legacy"))
			pc.iptables_cmd = "iptables-legacy-restore";
		else if (a->cfg.iptables_variant && !strcmp(a->cfg.iptables_variant, "nft"))
			pc.iptables_cmd = "iptables-nft-restore";
		a->pxops = pxy_ops_for(want);
		if (!a->pxops) {
			pr_err(AG, "--dataplane %s: not built into this sluice-agent", name);
			return -ENOTSUP;
		}
		a->px = a->pxops->open(&pc);
		if (!a->px) {
			int err = -errno;

			pr_err(AG, "node '%s': --dataplane %s cannot start: %s (reason above)",
			       a->cfg.node_name, name, sl_strerror(err));
			return err ? err : -EINVAL;
		}
	}
	had = AGENT_DP_BPF; /* no record (or an unreadable one): bpf */
	if (dataplane_recorded(a->cfg.node_name, &had))
		had = AGENT_DP_BPF;
	if (had == want)
		return 0;
	pr_info(AG, "node '%s': switching the service dataplane from %s to %s", a->cfg.node_name,
		agent_dataplane_name(had), name);
	old = pxy_ops_for(had);
	if (old) {
		int err = old->cleanup();

		if (err < 0)
			pr_warn(AG, "node '%s': removing the %s rules failed: %s", a->cfg.node_name,
				old->name, sl_strerror(err));
	} else if (had == AGENT_DP_BPF) {
		char root[PATH_MAX];

		snprintf(root, sizeof(root), "%s/sluice/%s",
			 a->cfg.bpffs ? a->cfg.bpffs : DP_BPFFS_DEFAULT, a->cfg.node_name);
		np_detach_all(root);
	}
	return 0;
}

int agent_run(const struct agent_config *cfg)
{
	static const struct sl_gvr gvrs[INF_N] = {
		{.group = "", .version = "v1", .resource = "services"},
		{.group = "discovery.k8s.io", .version = "v1", .resource = "endpointslices"},
		{.group = "", .version = "v1", .resource = "nodes"},
	};
	struct agent a = {0};
	char err[512], cgroot[PATH_MAX];
	struct dp_opts dpo = {0};
	int rc = 0;

	a.cfg = *cfg;
	clock_gettime(CLOCK_MONOTONIC, &a.start.t0);
	signal(SIGPIPE, SIG_IGN);
	/* One malloc arena for every thread (set before the informer threads
	 * start): the informer threads' list pages and objects are freed on
	 * this thread, and per-thread arenas kept them as fragmented, mostly
	 * free heaps (83 -> 70 MiB RSS, 135 -> 93 MiB peak at 10,000 Services,
	 * with no measurable CPU cost). */
	mallopt(M_ARENA_MAX, 1);
	/* The first lists' pages (up to ~1 MiB each, one or two per list in
	 * flight) and decode slabs (256 KiB) are freed as fast as they are
	 * allocated: with glibc's defaults the larger ones were mmap'd or the
	 * heap's top trimmed after them, and every next page faulted its memory
	 * in again (a fault is a hypercall on this VM). Keep them in the heap
	 * until the first sync's malloc_trim, which gives the start's peak back
	 * as before; agent_sync restores the trim threshold then. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	if (!cfg->node_name || !cfg->node_name[0]) {
		pr_err(AG, "--node-name is required");
		return -EINVAL;
	}
	if (cfg->kubeconfig) {
		a.client = sl_client_from_kubeconfig(cfg->kubeconfig, NULL, err, sizeof(err));
	} else {
		struct sl_client_opts co = {.server = cfg->server, .token = cfg->token};
		a.client = cfg->server ? sl_client_new(&co, err, sizeof(err)) : NULL;
		if (!cfg->server)
			snprintf(err, sizeof(err), "--server or --kubeconfig is required");
	}
	if (!a.client) {
		pr_err(AG, "API client: %s", err);
		return -EINVAL;
	}
	/* The heap the start fills (lists, model, plan) is mapped ahead of use,
	 * 16 MiB at a time, until the first sync (bigmem.h). */
	sl_heap_warm_start(16 << 20);
	/*
	 * The informers start first: the LIST of every Service and EndpointSlice
	 * (tens of MB at 10,000 Services) then travels while the BPF objects load
	 * and the maps are created, instead of after. Events only queue until
	 * the loop below dispatches them, so nothing else needs to exist yet.
	 */
	for (int i = 0; i < INF_N; i++) {
		static const enum k8s_kind kinds[INF_N] = {K8S_KIND_SERVICE, K8S_KIND_ENDPOINTSLICE,
							   K8S_KIND_NODE};
		struct sl_informer_opts io = {
			.gvr = gvrs[i],
			.delivery = SL_INF_DELIVER_QUEUE,
			/* lbinc keeps what the model reads; the uplink path lists Nodes. */
			.cache = i == INF_NODE ? SL_INF_CACHE_OBJECTS : SL_INF_CACHE_METADATA,
			/* The setup below takes the lists in between its steps
			 * (take_in_lists) and nothing waits for them to sync:
			 * a list may wait for room rather than turn to text.
			 * The objects arrive typed (a few KiB each; a json-c
			 * tree was ~25 KiB): 1,024 in flight let the informer
			 * threads decode while this one loads BPF (10,000
			 * Services programmed in ~1.1 s instead of ~1.4 s);
			 * 4,096 was faster still but the freed objects left
			 * the heap fragmented above 64 MiB RSS. */
			.queue_objs_max = 1024,
			.queue_wait_ms = 10000,
			/* Pages of 1,000, not the informer's 500. With the
			 * two cores shared by both lists' fetchers and
			 * decoders and the API server, a page's request took
			 * ~12 ms at 50,000 Services and the decoders waited
			 * ~0.7 s of the Services list for pages. Half as many
			 * pages: 50,000 x 10 programmed from empty in 1.5-1.7 s
			 * instead of 1.8-2.0 s (tools/bench/coldstart.sh,
			 * paired); 2,000 was slower again, with ~0.4 s more
			 * agent CPU (not analysed). A kube-apiserver serves
			 * an informer's first list (resourceVersion 0) from
			 * its cache in one piece. */
			.page_limit = 1000,
			/* Services and EndpointSlices of the first list are
			 * decoded on the informer threads, from their text. */
			.typed_kind = i == INF_NODE ? K8S_KIND_UNKNOWN : kinds[i],
			.handlers = {.on_add = on_add,
				     .on_update = on_update,
				     .on_delete = on_delete,
				     .on_synced = on_synced,
				     .on_add_typed = on_add_typed,
				     .arg = &a.ctx[i]},
		};

		a.ctx[i] =
			(struct inf_ctx){.a = &a, .kind = kinds[i], .resource = gvrs[i].resource};
		a.inf[i] = sl_informer_new(a.client, &io, err, sizeof(err));
		if (!a.inf[i]) {
			pr_err(AG, "informer '%s': %s", gvrs[i].resource, err);
			rc = -EINVAL;
			goto out;
		}
		rc = sl_informer_start(a.inf[i]);
		if (rc) {
			pr_err(AG, "informer '%s': cannot start its thread: %s", gvrs[i].resource,
			       sl_strerror(rc));
			goto out;
		}
	}
	rc = agent_bpffs_ensure(cfg->bpffs);
	if (rc)
		goto out;
	if (!cfg->cgroup_root) {
		rc = agent_cgroup2_root(cgroot, sizeof(cgroot));
		if (rc) {
			pr_err(AG, "no cgroup v2 mount found; pass --cgroup-root");
			goto out;
		}
		a.cfg.cgroup_root = cgroot;
	}
	rc = dataplane_switch(&a);
	if (rc)
		goto out;
	a.lbi = lbi_new(cfg->node_name);
	/* Only the eBPF maps bound a frontend's backends (a slot block). */
	if (a.lbi)
		lbi_max_backends_set(a.lbi, a.px ? LBM_MAX_BACKENDS : LBM_MAX_BACKENDS_BPF);
	a.base = a.lbi ? event_base_new() : NULL;
	a.sync_ev = a.base ? evtimer_new(a.base, sync_cb, &a) : NULL;
	a.sig_term = a.base ? evsignal_new(a.base, SIGTERM, signal_cb, &a) : NULL;
	a.sig_int = a.base ? evsignal_new(a.base, SIGINT, signal_cb, &a) : NULL;
	a.hc_http = a.base ? evhttp_new(a.base) : NULL;
	if (!a.sync_ev || !a.sig_term || !a.sig_int || !a.hc_http) {
		rc = -ENOMEM;
		goto out;
	}
	evhttp_set_gencb(a.hc_http, hc_cb, &a);
	event_add(a.sig_term, NULL);
	dpo.bpffs = cfg->bpffs;
	dpo.node = cfg->node_name;
	dpo.cgroup = a.cfg.cgroup_root;
	dpo.no_attach = a.px != NULL;
	rc = setup_bpf(&a, &dpo);
	if (rc)
		goto out;
	dp_host_netns_set(a.dp, host_netns_cookie());
	/* No record means bpf: only a legacy dataplane leaves one behind. */
	dataplane_record(cfg->node_name,
			 a.px ? agent_dataplane_name((enum agent_dataplane)cfg->dataplane) : NULL);
	/* Adopted maps may hold backends removed while the agent was down: the
	 * first sync destroys their UDP sockets, so the iterator must be there.
	 * Maps this start created have none, and its load (the kernel's BTF
	 * parsed, a verification) can wait until the services are in. */
	if (!dp_maps_created(a.dp))
		sockterm_start(&a);
	if (a.px) {
		/* The pod datapath still reads the service maps: with them empty
		 * it leaves service traffic to netfilter. (No plan has run, so
		 * the model wants nothing yet, whatever it has taken in.) */
		struct reconcile r = {.a = &a};

		dp_svc_foreach(a.dp, stale_frontend, &r);
		dp_backend_foreach(a.dp, stale_backend, &r);
	}
	a.want_full = true; /* adopt and reconcile whatever is pinned */
	if (a.np && np_start_gc(a.np, a.base)) {
		rc = -ENOMEM;
		goto out;
	}
	event_add(a.sig_int, NULL);

	if (cfg->metrics_listen && cfg->metrics_listen[0]) {
		struct evhttp_bound_socket *ms = NULL;
		char host[128];
		int port;
		if (sl_hostport_parse(cfg->metrics_listen, host, sizeof(host), &port)) {
			pr_err(AG, "--metrics-listen '%s': expected HOST:PORT",
			       cfg->metrics_listen);
			rc = -EINVAL;
			goto out;
		}
		a.metrics_http = evhttp_new(a.base);
		if (a.metrics_http)
			ms = evhttp_bind_socket_with_handle(a.metrics_http, host,
							    (ev_uint16_t)port);
		if (!ms) {
			pr_err(AG, "--metrics-listen '%s': bind failed: %s", cfg->metrics_listen,
			       strerror(errno));
			rc = -EADDRINUSE;
			goto out;
		}
		sl_listener_nodelay(evhttp_bound_socket_get_fd(ms));
		evhttp_set_gencb(a.metrics_http, metrics_cb, &a);
	}

	/* The informers have been listing since the start: their queues fill
	 * until the loop dispatches them. */
	for (int i = 0; i < INF_N; i++) {
		a.inf_ev[i] = event_new(a.base, sl_informer_fd(a.inf[i]), EV_READ | EV_PERSIST,
					inf_cb, a.inf[i]);
		if (!a.inf_ev[i] || event_add(a.inf_ev[i], NULL)) {
			rc = -ENOMEM;
			goto out;
		}
	}
	/* Should the first sync not come (an API that lists Services but not
	 * Nodes, say), the rest opens anyway after a while. */
	a.rest_ev = evtimer_new(a.base, rest_cb, &a);
	if (!a.rest_ev || event_add(a.rest_ev, &(struct timeval){30, 0})) {
		rc = -ENOMEM;
		goto out;
	}
	pr_info(AG, "node '%s': running (pins %s, cgroup %s, API %s)", cfg->node_name,
		dp_pin_root(a.dp), a.cfg.cgroup_root, sl_client_server(a.client));
	event_base_dispatch(a.base);
	rc = a.exit_rc;
out:
	for (int i = 0; i < INF_N; i++) {
		sl_informer_free(a.inf[i]);
		if (a.inf_ev[i])
			event_free(a.inf_ev[i]);
	}
	if (a.hc_http)
		evhttp_free(a.hc_http);
	if (a.metrics_http)
		evhttp_free(a.metrics_http);
	if (a.sync_ev)
		event_free(a.sync_ev);
	if (a.rest_ev)
		event_free(a.rest_ev);
	if (a.sig_term)
		event_free(a.sig_term);
	if (a.sig_int)
		event_free(a.sig_int);
	node_close(a.node); /* before the base: timers and the endpoint socket */
	pods_close(a.pods); /* before the base: events on it; pods keep running */
	np_close(a.np);	    /* before the base: it owns a timer on it */
	if (a.px)
		a.pxops->close(a.px);
	npol_close(a.pol); /* before the base: informer events and timers */
	if (a.base)
		event_base_free(a.base);
	sockterm_close(a.st);
	dp_close(a.dp);
	lbi_free(a.lbi);
	free(a.local_addrs);
	free(a.hc);
	for (size_t i = 0; i < a.n_reported; i++)
		free(a.reported[i]);
	free(a.reported);
	sl_client_free(a.client);
	sl_heap_warm_stop(); /* when the first sync never came */
	return rc;
}
