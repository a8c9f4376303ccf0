// SPDX-License-Identifier: Apache-2.0
/*
 * The controller manager inside sluice-control: flag checks, the shared
 * client and informers, the work queue, one thread per controller, and a
 * stop that cancels requests in flight so it never waits on the API server.
 *
 * Informers deliver on their own threads (SL_INF_DELIVER_THREAD) and only
 * enqueue keys; the controller threads read the informer caches and write
 * through the API, like client-go controllers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_int.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"

/* --- flags --------------------------------------------------------------------------------- */

int ctl_config_check(const struct ctl_config *cfg, unsigned *which, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{"endpointslice", CTL_ENDPOINTSLICE}, {"endpoints", CTL_ENDPOINTS},
		{"nodeipam", CTL_NODEIPAM},	      {"nodelifecycle", CTL_NODELIFECYCLE},
		{"scheduler", CTL_SCHEDULER},	      {"replicaset", CTL_REPLICASET},
		{"deployment", CTL_DEPLOYMENT},	      {"daemonset", CTL_DAEMONSET},
		{"garbagecollector", CTL_GC},
	};
	const char *list = cfg->controllers ? cfg->controllers : "all";
	unsigned w = 0;

	if (!strcmp(list, "all")) {
		w = CTL_ALL;
	} else if (strcmp(list, "none")) {
		const char *p = list;
		while (1) {
			size_t len = strcspn(p, ",");
			bool found = false;
			for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
				if (strlen(names[i].name) == len &&
				    !strncmp(p, names[i].name, len)) {
					w |= names[i].bit;
					found = true;
				}
			}
			if (!found) {
				snprintf(err, errlen,
					 "--controllers '%s': unknown controller '%.*s'; accepted: "
					 "all, none, or a comma list of endpointslice, endpoints, "
					 "nodeipam, nodelifecycle, scheduler, replicaset, "
					 "deployment, daemonset, garbagecollector",
					 list, (int)len, p);
				return -EINVAL;
			}
			if (!p[len])
				break;
			p += len + 1;
		}
	}
	if (cfg->grace_s < 1 || cfg->grace_s > 86400) {
		snprintf(err, errlen,
			 "--node-monitor-grace-period %d: expected seconds in [1, 86400]",
			 cfg->grace_s);
		return -EINVAL;
	}
	{
		/* The CIDR is checked even when IPAM is off: a bad flag is a bad flag. */
		char why[256];
		struct ctl_cidrset *s =
			ctl_cidrset_new(cfg->cluster_cidr, cfg->node_cidr_mask, why, sizeof(why));
		if (!s) {
			snprintf(err, errlen, "--cluster-cidr '%s' / --node-cidr-mask-size %d: %s",
				 cfg->cluster_cidr ? cfg->cluster_cidr : "", cfg->node_cidr_mask,
				 why);
			return -EINVAL;
		}
		ctl_cidrset_free(s);
	}
	*which = w;
	return 0;
}

/* --- work queue ----------------------------------------------------------------------------- */

uint64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ctlq_init(struct ctl_queue *q)
{
	pthread_condattr_t ca;

	memset(q, 0, sizeof(*q));
	if (pthread_mutex_init(&q->mu, NULL))
		return -ENOMEM;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&q->cv, &ca)) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&q->mu);
		return -ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	return 0;
}

void ctlq_fini(struct ctl_queue *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->v[i].key);
	free(q->v);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
}

void ctlq_add(struct ctl_queue *q, const char *key, unsigned delay_ms)
{
	uint64_t due = ctl_now_ms() + delay_ms;

	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < q->n; i++) {
		if (!strcmp(q->v[i].key, key)) {
			if (due < q->v[i].due_ms)
				q->v[i].due_ms = due;
			goto wake;
		}
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct ctl_qent *v = realloc(q->v, cap * sizeof(*v));
		if (!v) {
			/* Dropping a key loses one sync; the next event or the
			 * periodic pass of the owner catches up. */
			pr_warn("ctl", "queue '%s': out of memory, event dropped", key);
			pthread_mutex_unlock(&q->mu);
			return;
		}
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n].key = strdup(key);
	if (!q->v[q->n].key) {
		pthread_mutex_unlock(&q->mu);
		return;
	}
	q->v[q->n].due_ms = due;
	q->n++;
wake:
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void ctlq_stop(struct ctl_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void wait_until(struct ctl_queue *q, uint64_t when_ms)
{
	struct timespec ts = {.tv_sec = (time_t)(when_ms / 1000),
			      .tv_nsec = (long)(when_ms % 1000) * 1000000};
	pthread_cond_timedwait(&q->cv, &q->mu, &ts);
}

int ctlq_get(struct ctl_queue *q, char ***keys, unsigned batch_ms)
{
	char **out = NULL;
	size_t n = 0;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		uint64_t now = ctl_now_ms(), first = UINT64_MAX;
		if (q->stop) {
			pthread_mutex_unlock(&q->mu);
			return -1;
		}
		for (size_t i = 0; i < q->n; i++)
			if (q->v[i].due_ms < first)
				first = q->v[i].due_ms;
		if (first <= now)
			break;
		if (first == UINT64_MAX)
			pthread_cond_wait(&q->cv, &q->mu);
		else
			wait_until(q, first);
	}
	/* Something is due: give the burst it belongs to a moment to arrive. */
	{
		uint64_t until = ctl_now_ms() + batch_ms;
		while (!q->stop && ctl_now_ms() < until)
			wait_until(q, until);
	}
	out = calloc(q->n ? q->n : 1, sizeof(*out));
	if (out) {
		uint64_t now = ctl_now_ms();
		size_t j = 0;
		for (size_t i = 0; i < q->n; i++) {
			if (q->v[i].due_ms <= now)
				out[n++] = q->v[i].key;
			else
				q->v[j++] = q->v[i];
		}
		q->n = j;
	}
	pthread_mutex_unlock(&q->mu);
	*keys = out;
	return (int)n;
}

/* --- requests ------------------------------------------------------------------------------- */

char *ctl_path(const struct sl_gvr *r, const char *ns, const char *name, bool status)
{
	char *p = sl_client_path(r, ns, name, NULL), *q;

	if (!p || !status)
		return p;
	q = malloc(strlen(p) + 8);
	if (q)
		sprintf(q, "%s/status", p);
	free(p);
	return q;
}

int ctl_request(struct ctl_worker *w, const char *method, const char *path,
		struct json_object *body, const char *content_type, struct json_object **out,
		char *err, size_t errlen)
{
	struct sl_client_resp resp = {0};
	const char *b = NULL;
	size_t blen = 0;
	int rc;

	if (out)
		*out = NULL;
	if (body)
		b = sl_json_str(body, &blen);
	rc = sl_client_request(w->ctl->client, method, path, b, blen, content_type, w->cancel,
			       &resp);
	if (rc) {
		snprintf(err, errlen, "%s %s: %s", method, path,
			 resp.err[0] ? resp.err : sl_strerror(rc));
		sl_client_resp_fini(&resp);
		return rc;
	}
	if (resp.status < 200 || resp.status > 299) {
		const char *reason = sl_json_get_str(resp.json, "reason");
		const char *msg = sl_json_get_str(resp.json, "message");
		rc = sl_client_status_err(resp.status, reason);
		snprintf(err, errlen, "%s %s: %ld %s", method, path, resp.status,
			 msg ? msg : (resp.err[0] ? resp.err : ""));
		sl_client_resp_fini(&resp);
		return rc;
	}
	if (out && resp.json)
		*out = json_object_get(resp.json);
	sl_client_resp_fini(&resp);
	return 0;
}

void ctl_event(struct ctl_worker *w, const char *kind, const char *api_version, const char *ns,
	       const char *name, const char *uid, const char *type, const char *reason,
	       const char *message, const char *component)
{
	struct json_object *ev = json_object_new_object(), *meta, *io, *src;
	char ts[K8S_TIME_BUFSZ], ename[320], err[512];
	struct timespec now;
	struct k8s_time t;
	const char *evns = ns && *ns ? ns : "default";
	char *path;
	int rc;

	if (!ev)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	t.sec = now.tv_sec;
	t.nsec = 0;
	k8s_time_format(&t, false, ts, sizeof(ts));
	/* client-go's recorder names events <object>.<hex nanoseconds>. */
	snprintf(ename, sizeof(ename), "%.240s.%llx", name,
		 (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec);
	sl_json_set_str(ev, "apiVersion", "v1");
	sl_json_set_str(ev, "kind", "Event");
	meta = sl_json_ensure_obj(ev, "metadata");
	sl_json_set_str(meta, "name", ename);
	sl_json_set_str(meta, "namespace", evns);
	io = sl_json_ensure_obj(ev, "involvedObject");
	sl_json_set_str(io, "kind", kind);
	sl_json_set_str(io, "apiVersion", api_version);
	sl_json_set_str(io, "name", name);
	if (ns && *ns)
		sl_json_set_str(io, "namespace", ns);
	if (uid)
		sl_json_set_str(io, "uid", uid);
	sl_json_set_str(ev, "reason", reason);
	sl_json_set_str(ev, "message", message);
	sl_json_set_str(ev, "type", type);
	sl_json_set_int(ev, "count", 1);
	sl_json_set_str(ev, "firstTimestamp", ts);
	sl_json_set_str(ev, "lastTimestamp", ts);
	src = sl_json_ensure_obj(ev, "source");
	sl_json_set_str(src, "component", component);
	sl_json_set_str(ev, "reportingComponent", component);
	sl_json_set_str(ev, "reportingInstance", "sluice-control");
	path = sl_client_path(&CTL_GVR_EVENTS, evns, NULL, NULL);
	rc = path ? ctl_request(w, "POST", path, ev, NULL, NULL, err, sizeof(err)) : -ENOMEM;
	if (rc)
		pr_warn("ctl", "event '%s': create failed: %s", ename,
			rc == -ENOMEM ? "out of memory" : err);
	free(path);
	json_object_put(ev);
}

bool ctl_sleep(struct ctl_worker *w, unsigned ms)
{
	return sl_cancel_sleep(w->cancel, ms) == 0 && !atomic_load(&w->ctl->stop);
}

/* --- informer handlers: they only enqueue ------------------------------------------------------
 */

static void enqueue_obj(struct ctl_queue *q, const char *prefix, struct json_object *obj)
{
	struct json_object *meta = sl_json_get(obj, "metadata");
	const char *ns = sl_json_get_str(meta, "namespace"), *name = sl_json_get_str(meta, "name");
	char key[600];

	if (!name)
		return;
	snprintf(key, sizeof(key), "%s/%s/%s", prefix, ns ? ns : "", name);
	ctlq_add(q, key, 0);
}

static void svc_add(struct json_object *o, void *arg)
{
	enqueue_obj(&((struct ctl *)arg)->epq, "s", o);
}
static void svc_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	enqueue_obj(&((struct ctl *)arg)->epq, "s", n);
}
static void svc_delete(struct json_object *o, void *arg)
{
	enqueue_obj(&((struct ctl *)arg)->epq, "d", o);
}

/* A pod may matter to any Service of its namespace: the namespace is queued
 * and expanded against the Service cache when the batch runs. */
static void pod_event(struct json_object *o, void *arg)
{
	struct ctl *c = arg;
	const char *ns = sl_json_get_str(sl_json_get(o, "metadata"), "namespace");
	char key[300];

	snprintf(key, sizeof(key), "n/%s", ns ? ns : "");
	ctlq_add(&c->epq, key, 0);
}
static void pod_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	pod_event(n, arg);
}

/* Someone else's edit of one of our slices is repaired by a sync. */
static void slice_event(struct json_object *o, void *arg)
{
	struct ctl *c = arg;
	struct json_object *meta = sl_json_get(o, "metadata");
	struct json_object *labels = sl_json_get(meta, "labels");
	const char *svc = sl_json_get_str(labels, K8S_LABEL_SERVICE_NAME);
	const char *mb = sl_json_get_str(labels, CTL_MANAGED_BY_LABEL);
	const char *ns = sl_json_get_str(meta, "namespace");
	char key[600];

	if (!svc || !mb || strcmp(mb, CTL_MANAGED_BY))
		return;
	snprintf(key, sizeof(key), "s/%s/%s", ns ? ns : "", svc);
	ctlq_add(&c->epq, key, 0);
}
static void slice_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	slice_event(n, arg);
}

static void ep_event(struct json_object *o, void *arg)
{
	enqueue_obj(&((struct ctl *)arg)->epq, "s", o);
}
static void ep_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	ep_event(n, arg);
}

static void node_event(struct json_object *o, void *arg)
{
	const char *name = sl_json_get_str(sl_json_get(o, "metadata"), "name");

	if (name)
		ctlq_add(&((struct ctl *)arg)->ipamq, name, 0);
}
static void node_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	node_event(n, arg);
}

/* --- lifecycle -------------------------------------------------------------------------------- */

struct sl_informer *ctl_informer_start(struct sl_client *client, const struct sl_gvr *gvr,
				       const char *ns, const struct sl_informer_handlers *h,
				       char *err, size_t errlen)
{
	struct sl_informer_opts o = {0};
	struct sl_informer *inf;

	o.gvr = *gvr;
	o.ns = ns;
	o.delivery = SL_INF_DELIVER_THREAD;
	o.handlers = *h;
	o.backoff_initial_ms = 50;
	o.backoff_cap_ms = 2000;
	inf = sl_informer_new(client, &o, err, errlen);
	if (inf && sl_informer_start(inf)) {
		snprintf(err, errlen, "informer %s: start failed", gvr->resource);
		sl_informer_free(inf);
		return NULL;
	}
	return inf;
}

static struct sl_informer *inf_new(struct ctl *c, struct sl_gvr gvr, const char *ns,
				   struct sl_informer_handlers h, char *err, size_t errlen)
{
	h.arg = c;
	return ctl_informer_start(c->client, &gvr, ns, &h, err, errlen);
}

static int worker_start(struct ctl *c, struct ctl_worker *w, void *(*fn)(void *))
{
	w->ctl = c;
	w->cancel = sl_cancel_new();
	if (!w->cancel)
		return -ENOMEM;
	if (pthread_create(&w->thr, NULL, fn, w))
		return -EAGAIN;
	w->started = true;
	return 0;
}

struct ctl *ctl_start(const struct ctl_config *cfg, const char *server, const char *token,
		      char *err, size_t errlen)
{
	struct sl_client_opts co = {.server = server, .token = token, .timeout_ms = 30000};
	struct ctl *c;
	unsigned which;

	if (ctl_config_check(cfg, &which, err, errlen)) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->cfg = *cfg;
	c->which = which;
	if (!which)
		return c;
	c->client = sl_client_new(&co, err, errlen);
	if (!c->client)
		goto fail;
	if (ctlq_init(&c->epq) || ctlq_init(&c->ipamq)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->epq_init = c->ipamq_init = true;
	if (which & (CTL_ENDPOINTSLICE | CTL_ENDPOINTS)) {
		c->svc_inf = inf_new(c, SL_GVR_SERVICES, NULL,
				     (struct sl_informer_handlers){.on_add = svc_add,
								   .on_update = svc_update,
								   .on_delete = svc_delete},
				     err, errlen);
		if (!c->svc_inf)
			goto fail;
		c->slice_inf = inf_new(c, SL_GVR_ENDPOINTSLICES, NULL,
				       (struct sl_informer_handlers){.on_add = slice_event,
								     .on_update = slice_update,
								     .on_delete = slice_event},
				       err, errlen);
		if (!c->slice_inf)
			goto fail;
		if (which & CTL_ENDPOINTS) {
			c->ep_inf = inf_new(c, CTL_GVR_ENDPOINTS, NULL,
					    (struct sl_informer_handlers){.on_add = ep_event,
									  .on_update = ep_update,
									  .on_delete = ep_event},
					    err, errlen);
			if (!c->ep_inf)
				goto fail;
		}
	}
	if (which & (CTL_ENDPOINTSLICE | CTL_ENDPOINTS | CTL_NODELIFECYCLE)) {
		struct sl_informer_handlers h = {0};
		if (which & (CTL_ENDPOINTSLICE | CTL_ENDPOINTS))
			h = (struct sl_informer_handlers){.on_add = pod_event,
							  .on_update = pod_update,
							  .on_delete = pod_event};
		c->pod_inf = inf_new(c, SL_GVR_PODS, NULL, h, err, errlen);
		if (!c->pod_inf)
			goto fail;
	}
	if (which & (CTL_NODEIPAM | CTL_NODELIFECYCLE)) {
		struct sl_informer_handlers h = {0};
		if (which & CTL_NODEIPAM)
			h = (struct sl_informer_handlers){.on_add = node_event,
							  .on_update = node_update,
							  .on_delete = node_event};
		c->node_inf = inf_new(c, SL_GVR_NODES, NULL, h, err, errlen);
		if (!c->node_inf)
			goto fail;
	}
	if (which & CTL_NODELIFECYCLE) {
		c->lease_inf = inf_new(c, CTL_GVR_LEASES, "kube-node-lease",
				       (struct sl_informer_handlers){0}, err, errlen);
		if (!c->lease_inf)
			goto fail;
	}
	if (which & CTL_SCHEDULER) {
		c->sched = sched_start(&(struct sched_config){0}, c->client, err, errlen);
		if (!c->sched)
			goto fail;
	}
	if ((which & (CTL_ENDPOINTSLICE | CTL_ENDPOINTS)) &&
	    worker_start(c, &c->ep_w, ctl_endpoints_thread))
		goto fail_thr;
	if ((which & CTL_NODEIPAM) && worker_start(c, &c->ipam_w, ctl_ipam_thread))
		goto fail_thr;
	if ((which & CTL_NODELIFECYCLE) && worker_start(c, &c->life_w, ctl_lifecycle_thread))
		goto fail_thr;
	if ((which & (CTL_REPLICASET | CTL_DEPLOYMENT | CTL_DAEMONSET | CTL_GC)) &&
	    wl_start(c, which, err, errlen))
		goto fail;
	return c;
fail_thr:
	snprintf(err, errlen, "cannot start controller threads");
fail:
	ctl_stop(c);
	errno = EINVAL;
	return NULL;
}

static void worker_stop(struct ctl_worker *w)
{
	if (w->cancel)
		sl_cancel_fire(w->cancel);
}

static void worker_join(struct ctl_worker *w)
{
	if (w->started)
		pthread_join(w->thr, NULL);
	sl_cancel_free(w->cancel);
	w->cancel = NULL;
	w->started = false;
}

void ctl_stop(struct ctl *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, true);
	wl_stop(c);
	if (c->epq_init)
		ctlq_stop(&c->epq);
	if (c->ipamq_init)
		ctlq_stop(&c->ipamq);
	worker_stop(&c->ep_w);
	worker_stop(&c->ipam_w);
	worker_stop(&c->life_w);
	/* Stopping informers also ends the workers' waits for their sync. */
	sl_informer_stop(c->svc_inf);
	sl_informer_stop(c->pod_inf);
	sl_informer_stop(c->slice_inf);
	sl_informer_stop(c->ep_inf);
	sl_informer_stop(c->node_inf);
	sl_informer_stop(c->lease_inf);
	worker_join(&c->ep_w);
	worker_join(&c->ipam_w);
	worker_join(&c->life_w);
	sl_informer_free(c->svc_inf);
	sl_informer_free(c->pod_inf);
	sl_informer_free(c->slice_inf);
	sl_informer_free(c->ep_inf);
	sl_informer_free(c->node_inf);
	sl_informer_free(c->lease_inf);
	sched_stop(c->sched); /* before the client it borrows */
	ctl_endpoints_cleanup(c);
	ctl_ipam_cleanup(c);
	if (c->epq_init)
		ctlq_fini(&c->epq);
	if (c->ipamq_init)
		ctlq_fini(&c->ipamq);
	sl_client_free(c->client);
	free(c);
}
