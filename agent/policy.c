// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's NetworkPolicy loop (policy.h): informers -> libnetpol -> pinned maps.
 *
 * Everything runs on the agent's libevent loop: informer handlers record changes in the
 * compiler context (np_*_set only marks what is dirty), a zero-delay timer compiles once
 * per burst and writes the diff. The CNI ADD path compiles synchronously so a new pod's
 * entries are in place before its first packet.
 *
 * The race between CNI ADD and the Pod informer: at ADD the Pod object has no address yet
 * (the runtime reports it after the sandbox is up), and the informer may even deliver an
 * older version later. The ADD's address is therefore remembered per pod and put into
 * every version of that Pod that has none (unless it is Succeeded/Failed), until CNI DEL
 * or the Pod's deletion. So the pod's endpoint entry exists from ADD on, computed from
 * the Pod object as the API has it at ADD (informer cache, else a GET).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "policy.h"
#include "netpol/netpol.h"
#include "sluice/buf.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/informer.h"
#include "sluice/json.h"
#include "sluice/k8s.h"
#include "sluice/log.h"
#include "abi/lb.h"
#include "abi/policy.h"
#include "tc_pod.skel.h"

#define PL "policy"
/* How long a CNI ADD right after the start waits for the first lists. */
#define NPOL_ADD_SYNC_MS 3000

enum { PI_POL, PI_NS, PI_POD, PI_N };

struct cni_ip {
	char *key; /* "ns/name" */
	char *ip;
};

struct npol;
struct pinf {
	struct npol *p;
	int kind;
};

struct npol {
	struct event_base *base;
	struct sl_client *client;
	char node[256], pin_root[PATH_MAX];
	struct np_ctx *ctx;
	struct tc_pod *skel; /* holds the pinned maps open */
	int ep_fd, rules_fd, cidrs_fd, ctr_fd;
	struct sl_informer *inf[PI_N];
	struct event *inf_ev[PI_N];
	struct pinf pctx[PI_N];
	bool synced[PI_N];
	struct event *compile_ev, *retry_ev;
	bool reconciled; /* the maps equal the compiler's output */
	struct cni_ip *ips;
	size_t n_ips;
	char **reported; /* "ns/name\nmessage" already posted as Events */
	size_t n_reported;
	struct timespec dirty_since;
	/* Wall clock of the last change the loop took in and of its maps being written, for
	 * `netpol-lab.py latency` to split an update's latency into API, agent and datapath. */
	double last_seen_unix, last_applied_unix;
	bool dirty;
	/* metrics */
	unsigned long long compiles, compile_errors, map_errors, entries_written;
	double last_compile_s, last_apply_s;
};

static struct npol *self_inst;

struct npol *npol_self(void)
{
	return self_inst;
}

static double unix_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double elapsed_s(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static bool all_synced(const struct npol *p)
{
	return p->synced[PI_POL] && p->synced[PI_NS] && p->synced[PI_POD];
}

/* --- CNI addresses ------------------------------------------------------------------------ */

static char *key_of(const char *ns, const char *name)
{
	size_t n = strlen(ns) + strlen(name) + 2;
	char *k = malloc(n);

	if (k)
		snprintf(k, n, "%s/%s", ns, name);
	return k;
}

static struct cni_ip *cni_ip_find(struct npol *p, const char *ns, const char *name)
{
	for (size_t i = 0; i < p->n_ips; i++) {
		const char *k = p->ips[i].key, *sl = strchr(k, '/');

		if (sl && (size_t)(sl - k) == strlen(ns) && !strncmp(k, ns, (size_t)(sl - k)) &&
		    !strcmp(sl + 1, name))
			return &p->ips[i];
	}
	return NULL;
}

static void cni_ip_drop(struct npol *p, const char *ns, const char *name)
{
	struct cni_ip *c = cni_ip_find(p, ns, name);

	if (!c)
		return;
	free(c->key);
	free(c->ip);
	*c = p->ips[--p->n_ips];
}

static int cni_ip_set(struct npol *p, const char *ns, const char *name, const char *ip)
{
	struct cni_ip *c = cni_ip_find(p, ns, name), *v;
	char *dup = strdup(ip);

	if (!dup)
		return -ENOMEM;
	if (c) {
		free(c->ip);
		c->ip = dup;
		return 0;
	}
	v = realloc(p->ips, (p->n_ips + 1) * sizeof(*v));
	if (!v) {
		free(dup);
		return -ENOMEM;
	}
	p->ips = v;
	v[p->n_ips].key = key_of(ns, name);
	v[p->n_ips].ip = dup;
	if (!v[p->n_ips].key) {
		free(dup);
		return -ENOMEM;
	}
	p->n_ips++;
	return 0;
}

/* A copy of pod with the ADD's address when the object has none yet; NULL = use pod. */
static struct json_object *pod_with_cni_ip(struct npol *p, struct json_object *pod)
{
	const char *ns = sl_json_get_str(sl_json_get(pod, "metadata"), "namespace");
	const char *name = sl_json_get_str(sl_json_get(pod, "metadata"), "name");
	struct json_object *st = sl_json_get(pod, "status"), *cp, *ips, *one;
	const char *phase = sl_json_get_str(st, "phase"), *cur = sl_json_get_str(st, "podIP");
	struct cni_ip *c;

	if (!ns || !name || (cur && *cur) ||
	    (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))))
		return NULL;
	c = cni_ip_find(p, ns, name);
	if (!c)
		return NULL;
	cp = NULL;
	if (json_object_deep_copy(pod, &cp, NULL) || !cp)
		return NULL;
	st = sl_json_get(cp, "status");
	if (!st) {
		st = json_object_new_object();
		json_object_object_add(cp, "status", st);
	}
	ips = json_object_new_array();
	one = json_object_new_object();
	json_object_object_add(one, "ip", json_object_new_string(c->ip));
	json_object_array_add(ips, one);
	json_object_object_add(st, "podIP", json_object_new_string(c->ip));
	json_object_object_add(st, "podIPs", ips);
	return cp;
}

/* --- Events --------------------------------------------------------------------------------- */

static unsigned long long event_stamp(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* A Warning Event on the NetworkPolicy, once per (policy, message) per agent run. */
static void report_rejected(struct npol *p, const char *ns, const char *name, const char *msg)
{
	struct sl_buf key = SL_BUF_INIT, body = SL_BUF_INIT;
	struct sl_client_resp resp = {0};
	char path[400], ts[32], **v;
	time_t now = time(NULL);
	struct tm tm;

	sl_buf_printf(&key, "%s/%s\n%s", ns, name, msg);
	if (key.oom)
		goto out;
	for (size_t i = 0; i < p->n_reported; i++)
		if (!strcmp(p->reported[i], key.data))
			goto out;
	pr_warn(PL, "%s (the pods it selects allow nothing in the directions it names)", msg);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	sl_buf_printf(&body,
		      "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":"
		      "\"%s.%llx\",\"namespace\":\"%s\"},\"involvedObject\":{\"apiVersion\":"
		      "\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"namespace\":\"%s\","
		      "\"name\":\"%s\"},\"reason\":\"PolicyRejected\",\"message\":",
		      name, event_stamp(), ns, ns, name);
	sl_buf_json_str(&body, msg);
	sl_buf_printf(&body,
		      ",\"type\":\"Warning\",\"count\":1,\"firstTimestamp\":\"%s\","
		      "\"lastTimestamp\":\"%s\",\"source\":{\"component\":\"sluice-agent\","
		      "\"host\":\"%s\"}}",
		      ts, ts, p->node);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", ns);
	if (!body.oom &&
	    !sl_client_request(p->client, "POST", path, body.data, body.len, NULL, NULL, &resp) &&
	    (resp.status < 300 || resp.status == 409)) {
		v = realloc(p->reported, (p->n_reported + 1) * sizeof(*v));
		if (v) {
			p->reported = v;
			p->reported[p->n_reported] = strdup(key.data);
			if (p->reported[p->n_reported])
				p->n_reported++;
		}
	} else {
		pr_warn(PL, "networkpolicy '%s/%s': posting the event failed: %ld %s", ns, name,
			resp.status, resp.err);
	}
	sl_client_resp_fini(&resp);
out:
	sl_buf_fini(&key);
	sl_buf_fini(&body);
}

/* --- maps ----------------------------------------------------------------------------------- */

static int upd(struct npol *p, int fd, const void *k, const void *v, const char *what)
{
	if (!bpf_map_update_elem(fd, k, v, BPF_ANY)) {
		p->entries_written++;
		return 0;
	}
	p->map_errors++;
	pr_err(PL, "map %s: update failed: %s", what, strerror(errno));
	return -errno;
}

static int del(struct npol *p, int fd, const void *k, const char *what)
{
	if (!bpf_map_delete_elem(fd, k) || errno == ENOENT)
		return 0;
	p->map_errors++;
	pr_err(PL, "map %s: delete failed: %s", what, strerror(errno));
	return -errno;
}

/* The compiler's diff order: new sets, endpoints repointed, then removals. */
static int apply_diff(struct npol *p, const struct np_diff *d)
{
	int err = 0;

	for (size_t i = 0; !err && i < d->add.n_rules; i++)
		err = upd(p, p->rules_fd, &d->add.rules[i].key, &d->add.rules[i].val, "rules");
	for (size_t i = 0; !err && i < d->add.n_cidrs; i++)
		err = upd(p, p->cidrs_fd, &d->add.cidrs[i].key, &d->add.cidrs[i].val, "cidrs");
	for (size_t i = 0; !err && i < d->add.n_ep; i++)
		err = upd(p, p->ep_fd, &d->add.ep[i].key, &d->add.ep[i].val, "endpoints");
	for (size_t i = 0; !err && i < d->del.n_ep; i++)
		err = del(p, p->ep_fd, &d->del.ep[i].key, "endpoints");
	for (size_t i = 0; !err && i < d->del.n_rules; i++)
		err = del(p, p->rules_fd, &d->del.rules[i].key, "rules");
	for (size_t i = 0; !err && i < d->del.n_cidrs; i++)
		err = del(p, p->cidrs_fd, &d->del.cidrs[i].key, "cidrs");
	return err;
}

static size_t cmp_size;
static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, cmp_size);
}

/* Deletes every key of fd not among the n wanted keys (stride bytes apart, key first). */
static int prune(struct npol *p, int fd, const void *wanted, size_t n, size_t stride, size_t ksz,
		 const char *what)
{
	uint8_t *keys = n ? malloc(n * ksz) : NULL, cur[64] = {0}, next[64];
	uint8_t *extra = NULL;
	size_t n_extra = 0, cap = 0;
	bool first = true;
	int err = 0;

	if (n && !keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		memcpy(keys + i * ksz, (const uint8_t *)wanted + i * stride, ksz);
	cmp_size = ksz;
	if (n)
		qsort(keys, n, ksz, key_cmp);
	while (!bpf_map_get_next_key(fd, first ? NULL : cur, next)) {
		first = false;
		memcpy(cur, next, ksz);
		cmp_size = ksz;
		if (n && bsearch(cur, keys, n, ksz, key_cmp))
			continue;
		if (n_extra == cap) {
			uint8_t *v = realloc(extra, (cap = cap ? cap * 2 : 64) * ksz);
			if (!v) {
				err = -ENOMEM;
				break;
			}
			extra = v;
		}
		memcpy(extra + n_extra++ * ksz, cur, ksz);
	}
	for (size_t i = 0; !err && i < n_extra; i++)
		err = del(p, fd, extra + i * ksz, what);
	if (n_extra)
		pr_info(PL, "map %s: %zu stale entries of a previous run removed", what, n_extra);
	free(keys);
	free(extra);
	return err;
}

/* Makes the maps equal to the full output: upserts first, then removes the rest. */
static int reconcile(struct npol *p)
{
	struct np_entries e = {0};
	int err = np_dump(p->ctx, &e);

	for (size_t i = 0; !err && i < e.n_rules; i++)
		err = upd(p, p->rules_fd, &e.rules[i].key, &e.rules[i].val, "rules");
	for (size_t i = 0; !err && i < e.n_cidrs; i++)
		err = upd(p, p->cidrs_fd, &e.cidrs[i].key, &e.cidrs[i].val, "cidrs");
	for (size_t i = 0; !err && i < e.n_ep; i++)
		err = upd(p, p->ep_fd, &e.ep[i].key, &e.ep[i].val, "endpoints");
	if (!err)
		err = prune(p, p->ep_fd, e.ep, e.n_ep, sizeof(e.ep[0]), sizeof(e.ep[0].key),
			    "endpoints");
	if (!err)
		err = prune(p, p->rules_fd, e.rules, e.n_rules, sizeof(e.rules[0]),
			    sizeof(e.rules[0].key), "rules");
	if (!err)
		err = prune(p, p->cidrs_fd, e.cidrs, e.n_cidrs, sizeof(e.cidrs[0]),
			    sizeof(e.cidrs[0].key), "cidrs");
	if (!err)
		pr_info(PL, "maps reconciled: %zu endpoints, %zu rules, %zu cidrs", e.n_ep,
			e.n_rules, e.n_cidrs);
	np_entries_fini(&e);
	return err;
}

/* Compiles what is dirty and writes it. 0 or negative (the maps may then lag: a retry
 * timer rebuilds them whole). */
static int compile_apply(struct npol *p)
{
	struct np_diff d = {0};
	struct timespec t0;
	char err[512] = "";
	int ret, aerr;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = np_compile(p->ctx, p->reconciled ? &d : NULL, err, sizeof(err));
	p->compiles++;
	p->last_compile_s = elapsed_s(&t0);
	if (ret == -ENOSPC) {
		p->compile_errors++;
		pr_err(PL, "compile: %s (those pods fail closed)", err);
	} else if (ret) {
		p->compile_errors++;
		pr_err(PL, "compile failed: %s %s; rebuilding the context from the informers",
		       sl_strerror(ret), err);
		np_diff_fini(&d);
		return ret;
	}
	aerr = p->reconciled ? apply_diff(p, &d) : reconcile(p);
	np_diff_fini(&d);
	if (aerr) {
		/* Unknown map state: the next attempt writes everything and prunes. */
		p->reconciled = false;
		np_invalidate(p->ctx);
		event_add(p->retry_ev, &(struct timeval){1, 0});
		return aerr;
	}
	p->reconciled = true;
	if (p->dirty) {
		p->last_apply_s = elapsed_s(&p->dirty_since);
		p->last_applied_unix = unix_now();
		p->dirty = false;
	}
	return 0;
}

static void compile_cb(evutil_socket_t fd, short what, void *arg)
{
	struct npol *p = arg;

	if (all_synced(p))
		compile_apply(p);
}

static void mark_dirty(struct npol *p)
{
	if (!p->dirty) {
		p->dirty = true;
		clock_gettime(CLOCK_MONOTONIC, &p->dirty_since);
		p->last_seen_unix = unix_now();
	}
	if (!evtimer_pending(p->compile_ev, NULL))
		event_active(p->compile_ev, EV_TIMEOUT, 0);
}

/* --- informers ------------------------------------------------------------------------------- */

static void obj_set(struct npol *p, int kind, struct json_object *obj)
{
	static const enum k8s_kind kinds[PI_N] = {K8S_KIND_NETWORKPOLICY, K8S_KIND_NAMESPACE,
						  K8S_KIND_POD};
	struct json_object *cp = kind == PI_POD ? pod_with_cni_ip(p, obj) : NULL;
	char err[512] = "";
	void *o = NULL;
	int ret;

	ret = k8s_obj_decode(kinds[kind], cp ? cp : obj, &o, err, sizeof(err));
	if (ret) {
		const char *ns = sl_json_get_str(sl_json_get(obj, "metadata"), "namespace");
		const char *name = sl_json_get_str(sl_json_get(obj, "metadata"), "name");

		pr_err(PL, "%s '%s/%s' does not decode: %s", k8s_kind_name(kinds[kind]),
		       ns ? ns : "", name ? name : "?", err);
		if (kind == PI_POL && ns && name)
			report_rejected(p, ns, name, err);
		json_object_put(cp);
		return;
	}
	switch (kind) {
	case PI_POL: {
		const struct k8s_netpol *np = o;

		ret = np_policy_set(p->ctx, np, err, sizeof(err));
		if (ret == -SL_ERR_INVALID)
			report_rejected(p, np->meta.namespace, np->meta.name, err);
		break;
	}
	case PI_NS:
		ret = np_ns_set_k8s(p->ctx, o);
		break;
	default:
		ret = np_pod_set_k8s(p->ctx, o, err, sizeof(err));
		break;
	}
	if (ret && ret != -SL_ERR_INVALID)
		pr_err(PL, "%s: %s %s", k8s_kind_name(kinds[kind]), sl_strerror(ret), err);
	else if (ret && kind == PI_POD)
		pr_err(PL, "pod: %s", err);
	k8s_obj_free(kinds[kind], o);
	json_object_put(cp);
	mark_dirty(p);
}

static void obj_del(struct npol *p, int kind, struct json_object *obj)
{
	const char *ns = sl_json_get_str(sl_json_get(obj, "metadata"), "namespace");
	const char *name = sl_json_get_str(sl_json_get(obj, "metadata"), "name");

	if (!name)
		return;
	if (kind == PI_POL && ns)
		np_policy_del(p->ctx, ns, name);
	else if (kind == PI_NS)
		np_ns_del(p->ctx, name);
	else if (kind == PI_POD && ns) {
		np_pod_del(p->ctx, ns, name);
		cni_ip_drop(p, ns, name);
	}
	mark_dirty(p);
}

static void on_add(struct json_object *obj, void *arg)
{
	struct pinf *c = arg;

	obj_set(c->p, c->kind, obj);
}

static void on_update(struct json_object *old, struct json_object *obj, void *arg)
{
	struct pinf *c = arg;

	obj_set(c->p, c->kind, obj);
}

static void on_delete(struct json_object *obj, void *arg)
{
	struct pinf *c = arg;

	obj_del(c->p, c->kind, obj);
}

static void on_synced(void *arg)
{
	struct pinf *c = arg;

	c->p->synced[c->kind] = true;
	if (all_synced(c->p))
		pr_info(PL, "informers synced: compiling");
	mark_dirty(c->p);
}

static void inf_cb(evutil_socket_t fd, short what, void *arg)
{
	sl_informer_dispatch(arg, 0);
}

/* --- CNI hooks ------------------------------------------------------------------------------- */

int npol_endpoint_add(struct npol *p, const char *ns, const char *name, const char *ip, char *why,
		      size_t whylen)
{
	struct json_object *pod;
	struct sl_client_resp resp = {0};
	char path[600];
	int err;

	if (!p || !ns || !name)
		return 0;
	/* Right after a start the first lists may still be on their way: wait for them
	 * (briefly, on the loop: nothing else can be served correctly before) and run the
	 * queued events here, in order, as the loop would. */
	for (int i = 0; i < PI_N && !all_synced(p); i++) {
		if (!p->synced[i] && !sl_informer_wait_synced(p->inf[i], NPOL_ADD_SYNC_MS))
			sl_informer_dispatch(p->inf[i], 0);
	}
	if (!all_synced(p)) {
		snprintf(why, whylen,
			 "network policy state is not synced yet (API server unreachable?); retry");
		return -EAGAIN;
	}
	err = cni_ip_set(p, ns, name, ip);
	if (err)
		return err;
	pod = sl_informer_get(p->inf[PI_POD], ns, name);
	if (!pod) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", ns, name);
		err = sl_client_request(p->client, "GET", path, NULL, 0, NULL, NULL, &resp);
		if (!err && resp.status == 404) {
			/* Not an API pod (a runtime driven by hand): not an endpoint. */
			sl_client_resp_fini(&resp);
			return 0;
		}
		if (err || resp.status != 200) {
			snprintf(why, whylen,
				 "cannot read pod %.100s/%.100s for its policy: %s %.150s", ns,
				 name, err ? sl_strerror(err) : "HTTP error", resp.err);
			sl_client_resp_fini(&resp);
			return -EAGAIN;
		}
		pod = json_object_get(resp.json);
		sl_client_resp_fini(&resp);
	}
	obj_set(p, PI_POD, pod);
	json_object_put(pod);
	err = compile_apply(p);
	if (err) {
		snprintf(why, whylen, "writing the policy maps failed: %s", sl_strerror(err));
		return err;
	}
	return 0;
}

void npol_endpoint_del(struct npol *p, const char *ns, const char *name)
{
	if (p && ns && name)
		cni_ip_drop(p, ns, name);
}

/* --- metrics --------------------------------------------------------------------------------- */

const char *npol_reason_name(unsigned idx)
{
	switch (idx) {
	case SL_R_MALFORMED:
		return "malformed";
	case SL_R_POLICY_INGRESS:
		return "denied_ingress";
	case SL_R_POLICY_EGRESS:
		return "denied_egress";
	case SL_R_POLICY_FAILED:
		return "denied_failed_closed";
	case SL_NP_C_ALLOW:
		return "allowed";
	case SL_NP_C_ALLOW_NODE:
		return "allowed_node";
	case SL_NP_C_CACHED:
		return "allowed_established";
	case SL_NP_C_SELF:
		return "allowed_self";
	default:
		return NULL;
	}
}

void npol_metrics_write(struct npol *p, struct evbuffer *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_counter *c;
	struct np_stats st;

	if (!p)
		return;
	c = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*c)) : NULL;
	evbuffer_add_printf(out, "# TYPE sluice_policy_packets_total counter\n");
	for (unsigned i = 0; c && i < SL_NP_R_MAX; i++) {
		const char *n = npol_reason_name(i);
		unsigned long long pk = 0;

		if (!n || bpf_map_lookup_elem(p->ctr_fd, &i, c))
			continue;
		for (int j = 0; j < ncpu; j++)
			pk += c[j].packets;
		evbuffer_add_printf(
			out, "sluice_policy_packets_total{verdict=\"%s\",reason=\"%s\"} %llu\n",
			strncmp(n, "allowed", 7) ? "deny" : "allow", n, pk);
	}
	free(c);
	np_stats_get(p->ctx, &st);
	evbuffer_add_printf(
		out,
		"# TYPE sluice_policy_compiles_total counter\nsluice_policy_compiles_total %llu\n"
		"# TYPE sluice_policy_compile_errors_total counter\n"
		"sluice_policy_compile_errors_total %llu\n"
		"# TYPE sluice_policy_map_errors_total counter\nsluice_policy_map_errors_total "
		"%llu\n"
		"# TYPE sluice_policy_last_compile_seconds gauge\n"
		"sluice_policy_last_compile_seconds %.6f\n"
		"# TYPE sluice_policy_last_apply_seconds gauge\n"
		"sluice_policy_last_apply_seconds %.6f\n"
		"# TYPE sluice_policy_last_change_seen_timestamp_seconds gauge\n"
		"sluice_policy_last_change_seen_timestamp_seconds %.6f\n"
		"# TYPE sluice_policy_last_applied_timestamp_seconds gauge\n"
		"sluice_policy_last_applied_timestamp_seconds %.6f\n"
		"# TYPE sluice_policy_objects gauge\n"
		"sluice_policy_objects{kind=\"policies\"} %zu\n"
		"sluice_policy_objects{kind=\"pods\"} %zu\n"
		"sluice_policy_objects{kind=\"identities\"} %zu\n"
		"sluice_policy_objects{kind=\"rulesets\"} %zu\n"
		"# TYPE sluice_policy_map_entries gauge\n"
		"sluice_policy_map_entries{map=\"endpoints\"} %zu\n"
		"sluice_policy_map_entries{map=\"rules\"} %zu\n"
		"sluice_policy_map_entries{map=\"cidrs\"} %zu\n",
		p->compiles, p->compile_errors, p->map_errors, p->last_compile_s, p->last_apply_s,
		p->last_seen_unix, p->last_applied_unix, st.policies, st.pods, st.identities,
		st.rulesets, st.ep_entries, st.rule_entries, st.cidr_entries);
}

/* --- lifecycle ------------------------------------------------------------------------------- */

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	mark_dirty(arg);
}

struct npol *npol_open(const struct npol_opts *o)
{
	static const struct sl_gvr gvrs[PI_N] = {
		{.group = "networking.k8s.io", .version = "v1", .resource = "networkpolicies"},
		{.group = "", .version = "v1", .resource = "namespaces"},
		{.group = "", .version = "v1", .resource = "pods"},
	};
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct npol *p = calloc(1, sizeof(*p));
	struct bpf_program *prog;
	char err[512];
	int ret = 0;

	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->base = o->base;
	p->client = o->client;
	p->ep_fd = p->rules_fd = p->cidrs_fd = p->ctr_fd = -1;
	snprintf(p->node, sizeof(p->node), "%s", o->node_name);
	snprintf(p->pin_root, sizeof(p->pin_root), "%s", o->pin_root);
	p->ctx = np_new(NULL);
	if (!p->ctx || np_set_node(p->ctx, o->node_name)) {
		ret = -ENOMEM;
		goto fail;
	}
	/* Loading the enforcement object pins (or reuses) its maps by name. Its maps only:
	 * the pod programs are loaded and attached by the endpoint code (endpoint.c dp_ready);
	 * verifying them here as well cost ~0.16 s of CPU at every start, against the first
	 * sync on the same cores. */
	oo.pin_root_path = p->pin_root;
	p->skel = tc_pod__open_opts(&oo);
	if (!p->skel) {
		ret = -errno;
		goto fail;
	}
	for (prog = bpf_object__next_program(p->skel->obj, NULL); prog;
	     prog = bpf_object__next_program(p->skel->obj, prog))
		bpf_program__set_autoload(prog, false);
	ret = tc_pod__load(p->skel);
	if (ret) {
		pr_err(PL, "loading the enforcement program failed: %s", strerror(-ret));
		goto fail;
	}
	p->ep_fd = bpf_map__fd(p->skel->maps.sl_np_ep_v1);
	p->rules_fd = bpf_map__fd(p->skel->maps.sl_np_rules_v1);
	p->cidrs_fd = bpf_map__fd(p->skel->maps.sl_np_cidrs_v1);
	p->ctr_fd = bpf_map__fd(p->skel->maps.sl_np_ctr_v1);
	p->compile_ev = evtimer_new(p->base, compile_cb, p);
	p->retry_ev = evtimer_new(p->base, retry_cb, p);
	if (!p->compile_ev || !p->retry_ev) {
		ret = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < PI_N; i++) {
		struct sl_informer_opts io = {
			.gvr = gvrs[i],
			.delivery = SL_INF_DELIVER_QUEUE,
			.handlers = {.on_add = on_add,
				     .on_update = on_update,
				     .on_delete = on_delete,
				     .on_synced = on_synced,
				     .arg = &p->pctx[i]},
		};

		p->pctx[i] = (struct pinf){.p = p, .kind = i};
		p->inf[i] = sl_informer_new(p->client, &io, err, sizeof(err));
		if (!p->inf[i]) {
			pr_err(PL, "informer '%s': %s", gvrs[i].resource, err);
			ret = -EINVAL;
			goto fail;
		}
		p->inf_ev[i] = event_new(p->base, sl_informer_fd(p->inf[i]), EV_READ | EV_PERSIST,
					 inf_cb, p->inf[i]);
		if (!p->inf_ev[i]) {
			ret = -ENOMEM;
			goto fail;
		}
		event_add(p->inf_ev[i], NULL);
		sl_informer_start(p->inf[i]);
	}
	self_inst = p;
	return p;
fail:
	npol_close(p);
	errno = -ret;
	return NULL;
}

void npol_close(struct npol *p)
{
	if (!p)
		return;
	if (self_inst == p)
		self_inst = NULL;
	for (int i = 0; i < PI_N; i++) {
		sl_informer_free(p->inf[i]);
		if (p->inf_ev[i])
			event_free(p->inf_ev[i]);
	}
	if (p->compile_ev)
		event_free(p->compile_ev);
	if (p->retry_ev)
		event_free(p->retry_ev);
	/* The maps stay pinned and the programs attached: enforcement continues. */
	tc_pod__destroy(p->skel);
	np_free(p->ctx);
	for (size_t i = 0; i < p->n_ips; i++) {
		free(p->ips[i].key);
		free(p->ips[i].ip);
	}
	free(p->ips);
	for (size_t i = 0; i < p->n_reported; i++)
		free(p->reported[i]);
	free(p->reported);
	free(p);
}
