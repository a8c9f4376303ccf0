// SPDX-License-Identifier: Apache-2.0
/*
 * The scheduler at run time: informer handlers keep the cache (nodes and
 * every pod's digest and placement), one thread decides, a pool of workers
 * talks to the API (binds, PodScheduled=False conditions, Events).
 *
 * One mutex guards the cache and both queues. Informer threads parse outside
 * it and only swap digests in; the deciding thread holds it for one decision
 * (filters and scores over every node, microseconds for a hundred nodes);
 * workers take it to pick a job and to undo an assumption when a bind fails.
 *
 * Pod states:
 *   PENDING   ours, unscheduled, in or on its way to the active queue
 *   ASSUMED   a node was chosen and accounted; the bind is in flight
 *   BOUND     spec.nodeName set (by us or anyone): accounted on that node
 *   UNSCHED   fits nowhere; waits for a change in the cluster or a timer
 * A pod the informer shows without a node while ASSUMED keeps its
 * assumption: the watch has simply not caught up with the bind yet.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "sched.h"
#include "sluice/err.h"
#include "sluice/informer.h"
#include "sluice/json.h"
#include "sluice/k8s.h"
#include "sluice/log.h"

#define HASH_BUCKETS	16384
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	10000
#define EVENT_REPEAT_MS 60000 /* the same FailedScheduling message at most once a minute */

enum spod_state { SP_PENDING, SP_ASSUMED, SP_BOUND, SP_UNSCHED };

struct snode {
	struct sched_node n;
	bool present; /* false: deleted (kept while pods still name it) */
	int idx;      /* position in s->arr, -1 when not present */
};

struct spod {
	char *key; /* "ns/name" */
	struct sched_pod p;
	struct snode *on; /* where p is accounted; NULL = nowhere */
	enum spod_state state;
	bool queued;	      /* its key is in the active queue */
	bool wake;	      /* UNSCHED: a cluster change happened; retry once backoff ends */
	unsigned backoff_ms;  /* UNSCHED: current backoff */
	uint64_t next_try_ms; /* UNSCHED: not before */
	struct spod *pprev, *pnext; /* in s->placed while on != NULL */
	char *last_msg;		    /* last FailedScheduling message sent */
	uint64_t last_msg_ms;
	struct spod *hnext;
};

enum job_kind { JOB_BIND, JOB_UNSCHED, JOB_SCHEDULED_EVENT };

/* Scheduled events wait behind binds and are dropped beyond this many, like
 * client-go's event broadcaster drops under load: binds are what matter. */
#define EVENT_QUEUE_MAX 1000
/* ... and beyond a token bucket of this many per second (burst twice that):
 * a burst of thousands of pods would otherwise double the API writes. */
#define EVENT_RATE 50

struct job {
	enum job_kind kind;
	char *ns, *name, *uid, *node, *msg;
	struct job *next;
};

struct sworker {
	struct sched *s;
	struct sl_cancel *cancel;
	pthread_t thr;
	bool started;
};

struct sched {
	struct sched_config cfg;
	char *name;
	struct sl_client *client;
	struct sl_informer *pod_inf, *node_inf;
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* deciding thread: active queue or flush (CLOCK_MONOTONIC) */
	pthread_cond_t jcv; /* workers: jobs */
	bool stop;

	struct spod *hash[HASH_BUCKETS];
	size_t n_pods;
	struct spod *placed;  /* pods accounted on a node: what spreading counts */
	struct snode **nodes; /* every node ever seen */
	size_t n_nodes, cap_nodes;
	struct sched_node **arr; /* present nodes, what a decision looks at */
	size_t n_arr;
	bool arr_dirty;

	char **active; /* ring of pod keys */
	size_t a_head, a_n, a_cap;
	bool flush; /* a cluster change: wake UNSCHED pods */
	uint64_t next_periodic_ms;
	uint32_t rr;

	struct job *jhead, *jtail; /* binds and Unschedulable reports, in order */
	struct job *ehead, *etail; /* Scheduled events, when no bind waits */
	size_t n_events;
	double ev_tokens; /* Scheduled-event token bucket */
	uint64_t ev_last_ms;

	struct sworker decider;
	struct sworker *workers;
	size_t n_workers;

	struct sched_stats st;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- cache -------------------------------------------------------------------------------------
 */

static size_t hkey(const char *k)
{
	uint64_t h = 14695981039346656037ull;

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return (size_t)(h % HASH_BUCKETS);
}

static struct spod *pod_find(struct sched *s, const char *key)
{
	for (struct spod *p = s->hash[hkey(key)]; p; p = p->hnext)
		if (!strcmp(p->key, key))
			return p;
	return NULL;
}

static void pod_unlink(struct sched *s, struct spod *sp)
{
	struct spod **pp = &s->hash[hkey(sp->key)];

	while (*pp && *pp != sp)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = sp->hnext;
	s->n_pods--;
}

static void spod_free(struct spod *sp)
{
	if (!sp)
		return;
	sched_pod_fini(&sp->p);
	free(sp->key);
	free(sp->last_msg);
	free(sp);
}

static struct snode *node_get(struct sched *s, const char *name, bool create)
{
	struct snode *sn;

	for (size_t i = 0; i < s->n_nodes; i++)
		if (!strcmp(s->nodes[i]->n.name, name))
			return s->nodes[i];
	if (!create)
		return NULL;
	if (s->n_nodes == s->cap_nodes) {
		size_t cap = s->cap_nodes ? s->cap_nodes * 2 : 64;
		struct snode **v = realloc(s->nodes, cap * sizeof(*v));
		if (!v)
			return NULL;
		s->nodes = v;
		s->cap_nodes = cap;
	}
	sn = calloc(1, sizeof(*sn));
	if (!sn || !(sn->n.name = strdup(name))) {
		free(sn);
		return NULL;
	}
	sn->idx = -1;
	s->nodes[s->n_nodes++] = sn;
	return sn;
}

static void arr_rebuild(struct sched *s)
{
	struct sched_node **v = realloc(s->arr, (s->n_nodes ? s->n_nodes : 1) * sizeof(*v));

	if (!v)
		return; /* keep the old view; rebuilt on the next change */
	s->arr = v;
	s->n_arr = 0;
	for (size_t i = 0; i < s->n_nodes; i++) {
		struct snode *sn = s->nodes[i];
		sn->idx = sn->present ? (int)s->n_arr : -1;
		if (sn->present)
			s->arr[s->n_arr++] = &sn->n;
	}
	s->arr_dirty = false;
}

static void place(struct sched *s, struct spod *sp, struct snode *sn)
{
	if (sp->on) {
		sched_node_account(&sp->on->n, &sp->p, -1);
		if (sp->pprev)
			sp->pprev->pnext = sp->pnext;
		else
			s->placed = sp->pnext;
		if (sp->pnext)
			sp->pnext->pprev = sp->pprev;
		sp->pprev = sp->pnext = NULL;
	}
	sp->on = sn;
	if (sn) {
		sched_node_account(&sn->n, &sp->p, 1);
		sp->pnext = s->placed;
		if (s->placed)
			s->placed->pprev = sp;
		s->placed = sp;
	}
}

static void active_push(struct sched *s, struct spod *sp)
{
	if (sp->queued)
		return;
	if (s->a_n == s->a_cap) {
		size_t cap = s->a_cap ? s->a_cap * 2 : 256;
		char **v = malloc(cap * sizeof(*v));
		if (!v)
			return; /* the periodic pass finds PENDING pods not queued */
		for (size_t i = 0; i < s->a_n; i++)
			v[i] = s->active[(s->a_head + i) % s->a_cap];
		free(s->active);
		s->active = v;
		s->a_cap = cap;
		s->a_head = 0;
	}
	s->active[(s->a_head + s->a_n) % s->a_cap] = strdup(sp->key);
	if (!s->active[(s->a_head + s->a_n) % s->a_cap])
		return;
	s->a_n++;
	sp->queued = true;
	pthread_cond_signal(&s->cv);
}

static char *active_pop(struct sched *s)
{
	char *k;

	if (!s->a_n)
		return NULL;
	k = s->active[s->a_head];
	s->a_head = (s->a_head + 1) % s->a_cap;
	s->a_n--;
	return k;
}

static void job_free(struct job *j)
{
	free(j->ns);
	free(j->name);
	free(j->uid);
	free(j->node);
	free(j->msg);
	free(j);
}

static void job_push(struct sched *s, enum job_kind kind, const struct spod *sp, const char *node,
		     const char *msg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	j->kind = kind;
	j->ns = strdup(sp->p.ns ? sp->p.ns : "default");
	j->name = strdup(sp->p.name);
	j->uid = sp->p.uid ? strdup(sp->p.uid) : NULL;
	j->node = node ? strdup(node) : NULL;
	j->msg = msg ? strdup(msg) : NULL;
	if (!j->ns || !j->name || (node && !j->node) || (msg && !j->msg)) {
		free(j->ns);
		free(j->name);
		free(j->uid);
		free(j->node);
		free(j->msg);
		free(j);
		return;
	}
	if (kind == JOB_SCHEDULED_EVENT) {
		if (s->n_events >= EVENT_QUEUE_MAX) {
			s->st.events_dropped++;
			job_free(j);
			return;
		}
		if (s->etail)
			s->etail->next = j;
		else
			s->ehead = j;
		s->etail = j;
		s->n_events++;
	} else {
		if (s->jtail)
			s->jtail->next = j;
		else
			s->jhead = j;
		s->jtail = j;
	}
	pthread_cond_signal(&s->jcv);
}

static bool ours(const struct sched *s, const struct sched_pod *p)
{
	return !p->scheduler || !*p->scheduler || !strcmp(p->scheduler, SCHED_DEFAULT_NAME) ||
	       !strcmp(p->scheduler, s->name);
}

static void flush_locked(struct sched *s)
{
	s->flush = true;
	pthread_cond_signal(&s->cv);
}

/* --- informer handlers ------------------------------------------------------------------------ */

static void pod_gone(struct sched *s, const char *key)
{
	struct spod *sp = pod_find(s, key);

	if (!sp)
		return;
	if (sp->on)
		flush_locked(s); /* its resources are free again */
	place(s, sp, NULL);
	pod_unlink(s, sp);
	spod_free(sp);
}

static void pod_event(struct sched *s, struct json_object *o, bool deleted)
{
	struct sched_pod np;
	char err[256], key[600];
	struct spod *sp;
	int rc = sched_pod_parse(o, &np, err, sizeof(err));

	if (rc && np.name) {
		/* A pod we cannot read cannot be placed; the error is the pod's, so say so. */
		pr_warn("sched", "pod %s/%s: %s", np.ns ? np.ns : "", np.name,
			rc == -ENOMEM ? "out of memory" : err);
	}
	if (!np.name) {
		sched_pod_fini(&np);
		return;
	}
	snprintf(key, sizeof(key), "%s/%s", np.ns ? np.ns : "", np.name);
	pthread_mutex_lock(&s->mu);
	if (deleted || np.terminal || (rc && !np.node)) {
		pod_gone(s, key);
		goto out;
	}
	sp = pod_find(s, key);
	if (sp && sp->p.uid && np.uid && strcmp(sp->p.uid, np.uid)) {
		/* deleted and created again under the same name between two events */
		pod_gone(s, key);
		sp = NULL;
	}
	if (!np.node && !ours(s, &np)) {
		if (sp)
			pod_gone(s, key);
		goto out;
	}
	if (!sp) {
		sp = calloc(1, sizeof(*sp));
		if (!sp || !(sp->key = strdup(key))) {
			free(sp);
			goto out;
		}
		sp->hnext = s->hash[hkey(key)];
		s->hash[hkey(key)] = sp;
		s->n_pods++;
		sp->state = SP_PENDING;
	}
	if (np.node) {
		struct snode *sn = node_get(s, np.node, true);
		place(s, sp, NULL);
		sched_pod_fini(&sp->p);
		sp->p = np;
		memset(&np, 0, sizeof(np));
		place(s, sp, sn);
		sp->state = SP_BOUND;
		goto out;
	}
	if (sp->state == SP_ASSUMED)
		goto out; /* the watch has not seen our bind yet */
	if (sp->state == SP_BOUND) {
		/* nodeName cannot be cleared; an unbound copy is stale */
		goto out;
	}
	sched_pod_fini(&sp->p);
	sp->p = np;
	memset(&np, 0, sizeof(np));
	if (sp->state == SP_PENDING)
		active_push(s, sp);
out:
	pthread_mutex_unlock(&s->mu);
	sched_pod_fini(&np);
}

static void on_pod_add(struct json_object *o, void *arg)
{
	pod_event(arg, o, false);
}
static void on_pod_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	pod_event(arg, n, false);
}
static void on_pod_delete(struct json_object *o, void *arg)
{
	pod_event(arg, o, true);
}

static void node_event(struct sched *s, struct json_object *o, bool deleted)
{
	struct sched_node nn;
	char err[256];
	struct snode *sn;
	int rc = sched_node_parse(o, &nn, err, sizeof(err));

	if (!nn.name) {
		sched_node_fini(&nn);
		return;
	}
	if (rc && !deleted)
		pr_warn("sched", "node %s: %s; not schedulable until fixed", nn.name,
			rc == -ENOMEM ? "out of memory" : err);
	pthread_mutex_lock(&s->mu);
	sn = node_get(s, nn.name, true);
	if (sn) {
		if (deleted || rc) {
			sn->present = false;
		} else {
			/* the new spec, the old accounting */
			nn.used_cpu_m = sn->n.used_cpu_m;
			nn.used_mem = sn->n.used_mem;
			nn.used_pods = sn->n.used_pods;
			nn.nz_cpu_m = sn->n.nz_cpu_m;
			nn.nz_mem = sn->n.nz_mem;
			nn.ports = sn->n.ports;
			nn.n_ports = sn->n.n_ports;
			nn.cap_ports = sn->n.cap_ports;
			sn->n.ports = NULL;
			sched_node_fini(&sn->n);
			sn->n = nn;
			memset(&nn, 0, sizeof(nn));
			sn->present = true;
			flush_locked(s);
		}
		s->arr_dirty = true;
	}
	pthread_mutex_unlock(&s->mu);
	sched_node_fini(&nn);
}

static void on_node_add(struct json_object *o, void *arg)
{
	node_event(arg, o, false);
}
static void on_node_update(struct json_object *o, struct json_object *n, void *arg)
{
	(void)o;
	node_event(arg, n, false);
}
static void on_node_delete(struct json_object *o, void *arg)
{
	node_event(arg, o, true);
}

/* --- deciding ----------------------------------------------------------------------------------
 */

/* UNSCHED pods whose backoff is over go back to the active queue when woken. */
static void wake_unsched(struct sched *s, bool all)
{
	uint64_t now = now_ms();

	for (size_t b = 0; b < HASH_BUCKETS; b++) {
		for (struct spod *sp = s->hash[b]; sp; sp = sp->hnext) {
			if (sp->state != SP_UNSCHED)
				continue;
			if (all || s->flush)
				sp->wake = true;
			if (sp->wake && sp->next_try_ms <= now) {
				sp->wake = false;
				sp->state = SP_PENDING;
				active_push(s, sp);
			}
		}
	}
	s->flush = false;
}

static void decide(struct sched *s, struct spod *sp)
{
	size_t n = s->n_arr, nt = sp->p.n_tscs;
	int32_t *owner = NULL, *tsc = NULL;
	struct sched_fit *fits;
	int idx;

	fits = calloc(n ? n : 1, sizeof(*fits));
	if (sp->p.owner)
		owner = calloc(n ? n : 1, sizeof(*owner));
	if (nt)
		tsc = calloc(nt * (n ? n : 1), sizeof(*tsc));
	if (!fits || (sp->p.owner && !owner) || (nt && !tsc)) {
		free(fits);
		free(owner);
		free(tsc);
		sp->state = SP_UNSCHED;
		sp->next_try_ms = now_ms() + BACKOFF_MIN_MS;
		sp->wake = true;
		return;
	}
	if (owner || tsc) {
		for (struct spod *o = s->placed; o; o = o->pnext) {
			int i;
			if (o->on->idx < 0 || o == sp)
				continue;
			i = o->on->idx;
			if (owner && o->p.owner == sp->p.owner)
				owner[i]++;
			for (size_t c = 0; c < nt; c++) {
				if (!o->p.ns || !sp->p.ns || strcmp(o->p.ns, sp->p.ns))
					continue;
				if (sl_labelsel_match(sp->p.tscs[c].sel, o->p.labels,
						      o->p.n_labels))
					tsc[c * n + (size_t)i]++;
			}
		}
	}
	idx = sched_select(&sp->p, s->arr, n, owner, tsc, &s->rr, fits, NULL);
	if (idx >= 0) {
		struct snode *sn = NULL;
		for (size_t i = 0; i < s->n_nodes; i++)
			if (s->nodes[i]->idx == idx)
				sn = s->nodes[i];
		place(s, sp, sn);
		sp->state = SP_ASSUMED;
		sp->backoff_ms = 0;
		job_push(s, JOB_BIND, sp, s->arr[idx]->name, NULL);
	} else {
		char msg[1024];
		uint64_t now = now_ms();
		sched_fit_message(fits, n, msg, sizeof(msg));
		s->st.unschedulable_attempts++;
		sp->state = SP_UNSCHED;
		sp->backoff_ms = sp->backoff_ms ? sp->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (sp->backoff_ms > BACKOFF_MAX_MS)
			sp->backoff_ms = BACKOFF_MAX_MS;
		sp->next_try_ms = now + sp->backoff_ms;
		if (!sp->last_msg || strcmp(sp->last_msg, msg) ||
		    now - sp->last_msg_ms >= EVENT_REPEAT_MS) {
			free(sp->last_msg);
			sp->last_msg = strdup(msg);
			sp->last_msg_ms = now;
			job_push(s, JOB_UNSCHED, sp, NULL, msg);
		}
		pr_debug("sched", "pod %s: %s", sp->key, msg);
	}
	free(fits);
	free(owner);
	free(tsc);
}

static void *decider_thread(void *arg)
{
	struct sworker *w = arg;
	struct sched *s = w->s;

	if (sl_informer_wait_synced(s->node_inf, -1) || sl_informer_wait_synced(s->pod_inf, -1))
		return NULL;
	pthread_mutex_lock(&s->mu);
	s->next_periodic_ms = now_ms() + s->cfg.retry_s * 1000ull;
	while (!s->stop) {
		char *key;
		struct spod *sp;
		uint64_t now = now_ms();

		if (now >= s->next_periodic_ms) {
			wake_unsched(s, true);
			s->next_periodic_ms = now + s->cfg.retry_s * 1000ull;
		} else if (s->flush || !s->a_n) {
			wake_unsched(s, false);
		}
		if (!s->a_n) {
			/* 100 ms ticks end the backoff of woken pods */
			struct timespec ts;
			uint64_t until = now_ms() + 100;
			ts.tv_sec = (time_t)(until / 1000);
			ts.tv_nsec = (long)(until % 1000) * 1000000;
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			continue;
		}
		key = active_pop(s);
		sp = pod_find(s, key);
		free(key);
		if (!sp)
			continue;
		sp->queued = false;
		if (sp->state != SP_PENDING)
			continue;
		if (s->arr_dirty)
			arr_rebuild(s);
		decide(s, sp);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* --- API workers ---------------------------------------------------------------------------- */

static int api(struct sworker *w, const char *method, const char *path, struct json_object *body,
	       const char *ctype, char *err, size_t errlen)
{
	struct sl_client_resp resp = {0};
	const char *b = NULL;
	size_t blen = 0;
	int rc;

	if (body)
		b = sl_json_str(body, &blen);
	rc = sl_client_request(w->s->client, method, path, b, blen, ctype, w->cancel, &resp);
	if (rc) {
		/* the transport's message already names the method and path */
		if (resp.err[0])
			snprintf(err, errlen, "%s", resp.err);
		else
			snprintf(err, errlen, "%s %s: %s", method, path, sl_strerror(rc));
	} else if (resp.status < 200 || resp.status > 299) {
		const char *msg = sl_json_get_str(resp.json, "message");
		rc = sl_client_status_err(resp.status, sl_json_get_str(resp.json, "reason"));
		snprintf(err, errlen, "%s %s: %ld %s", method, path, resp.status, msg ? msg : "");
	}
	sl_client_resp_fini(&resp);
	return rc;
}

static void now_str(char *buf, size_t len, bool micro)
{
	struct timespec now;
	struct k8s_time t;

	clock_gettime(CLOCK_REALTIME, &now);
	t.sec = now.tv_sec;
	t.nsec = micro ? now.tv_nsec : 0;
	k8s_time_format(&t, micro, buf, len);
}

static void event_post(struct sworker *w, const struct job *j, const char *type, const char *reason,
		       const char *message)
{
	struct json_object *ev = json_object_new_object(), *meta, *io, *src;
	char ts[K8S_TIME_BUFSZ], ename[320], err[512];
	struct timespec now;
	char *path;
	int rc;

	if (!ev)
		return;
	now_str(ts, sizeof(ts), false);
	clock_gettime(CLOCK_REALTIME, &now);
	/* client-go's recorder names events <object>.<hex nanoseconds> */
	snprintf(ename, sizeof(ename), "%.240s.%llx", j->name,
		 (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec);
	sl_json_set_str(ev, "apiVersion", "v1");
	sl_json_set_str(ev, "kind", "Event");
	meta = sl_json_ensure_obj(ev, "metadata");
	sl_json_set_str(meta, "name", ename);
	sl_json_set_str(meta, "namespace", j->ns);
	io = sl_json_ensure_obj(ev, "involvedObject");
	sl_json_set_str(io, "kind", "Pod");
	sl_json_set_str(io, "apiVersion", "v1");
	sl_json_set_str(io, "name", j->name);
	sl_json_set_str(io, "namespace", j->ns);
	if (j->uid)
		sl_json_set_str(io, "uid", j->uid);
	sl_json_set_str(ev, "reason", reason);
	sl_json_set_str(ev, "message", message);
	sl_json_set_str(ev, "type", type);
	sl_json_set_int(ev, "count", 1);
	sl_json_set_str(ev, "firstTimestamp", ts);
	sl_json_set_str(ev, "lastTimestamp", ts);
	src = sl_json_ensure_obj(ev, "source");
	sl_json_set_str(src, "component", w->s->name);
	sl_json_set_str(ev, "reportingComponent", w->s->name);
	sl_json_set_str(ev, "reportingInstance", w->s->name);
	path = sl_client_path(&(struct sl_gvr){"", "v1", "events"}, j->ns, NULL, NULL);
	if (path && (rc = api(w, "POST", path, ev, NULL, err, sizeof(err))) && rc != -ECANCELED)
		pr_warn("sched", "event for pod %s/%s: %s", j->ns, j->name, err);
	free(path);
	json_object_put(ev);
}

/* A failed bind gives the node back and retries the pod after a backoff. */
static void bind_failed(struct sched *s, const struct job *j, int rc)
{
	char key[600];
	struct spod *sp;

	snprintf(key, sizeof(key), "%s/%s", j->ns, j->name);
	pthread_mutex_lock(&s->mu);
	s->st.bind_errors++;
	sp = pod_find(s, key);
	if (sp && sp->state == SP_ASSUMED) {
		if (rc == -SL_ERR_NOTFOUND) {
			pod_gone(s, key); /* deleted meanwhile; the watch confirms */
		} else if (rc == -SL_ERR_CONFLICT) {
			/* bound by someone else: the watch brings the real node */
			place(s, sp, NULL);
			sp->state = SP_BOUND;
		} else {
			place(s, sp, NULL);
			sp->state = SP_UNSCHED;
			sp->backoff_ms = BACKOFF_MIN_MS;
			sp->next_try_ms = now_ms() + BACKOFF_MIN_MS;
			sp->wake = true;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

static void do_bind(struct sworker *w, const struct job *j)
{
	struct json_object *b = json_object_new_object(), *meta, *tgt;
	char err[512], msg[700];
	char *path = NULL;
	int rc = -ENOMEM;

	if (b) {
		sl_json_set_str(b, "apiVersion", "v1");
		sl_json_set_str(b, "kind", "Binding");
		meta = sl_json_ensure_obj(b, "metadata");
		sl_json_set_str(meta, "name", j->name);
		sl_json_set_str(meta, "namespace", j->ns);
		tgt = sl_json_ensure_obj(b, "target");
		sl_json_set_str(tgt, "apiVersion", "v1");
		sl_json_set_str(tgt, "kind", "Node");
		sl_json_set_str(tgt, "name", j->node);
		path = sl_client_path(&SL_GVR_PODS, j->ns, j->name, NULL);
	}
	if (path) {
		char *full = malloc(strlen(path) + 9);
		if (full) {
			sprintf(full, "%s/binding", path);
			rc = api(w, "POST", full, b, NULL, err, sizeof(err));
			free(full);
		}
	} else {
		snprintf(err, sizeof(err), "out of memory");
	}
	free(path);
	json_object_put(b);
	if (rc == -ECANCELED)
		return;
	if (rc) {
		if (rc != -SL_ERR_NOTFOUND)
			pr_warn("sched", "bind %s/%s to %s: %s", j->ns, j->name, j->node, err);
		bind_failed(w->s, j, rc);
		return;
	}
	snprintf(msg, sizeof(msg), "Successfully assigned %s/%s to %s", j->ns, j->name, j->node);
	pthread_mutex_lock(&w->s->mu);
	w->s->st.scheduled++;
	{
		struct sched *s = w->s;
		uint64_t now = now_ms();
		s->ev_tokens += (double)(now - s->ev_last_ms) * EVENT_RATE / 1000.0;
		if (s->ev_tokens > 2 * EVENT_RATE)
			s->ev_tokens = 2 * EVENT_RATE;
		s->ev_last_ms = now;
		if (s->ev_tokens >= 1) {
			struct spod ev = {.p = {.ns = j->ns, .name = j->name, .uid = j->uid}};
			s->ev_tokens -= 1;
			job_push(s, JOB_SCHEDULED_EVENT, &ev, NULL, msg);
		} else {
			s->st.events_dropped++;
		}
	}
	pthread_mutex_unlock(&w->s->mu);
}

static void do_unsched(struct sworker *w, const struct job *j)
{
	struct json_object *patch = json_object_new_object(), *st, *conds, *c;
	char ts[K8S_TIME_BUFSZ], err[512];
	char *path = NULL, *full = NULL;
	int rc;

	if (!patch)
		return;
	now_str(ts, sizeof(ts), false);
	st = sl_json_ensure_obj(patch, "status");
	conds = json_object_new_array();
	c = json_object_new_object();
	if (conds && c) {
		json_object_object_add(st, "conditions", conds);
		json_object_array_add(conds, c);
		sl_json_set_str(c, "type", "PodScheduled");
		sl_json_set_str(c, "status", "False");
		sl_json_set_str(c, "reason", "Unschedulable");
		sl_json_set_str(c, "message", j->msg);
		sl_json_set_str(c, "lastTransitionTime", ts);
		path = sl_client_path(&SL_GVR_PODS, j->ns, j->name, NULL);
		full = path ? malloc(strlen(path) + 8) : NULL;
	} else {
		json_object_put(conds);
		json_object_put(c);
	}
	if (full) {
		sprintf(full, "%s/status", path);
		/* strategic merge: conditions merge by type, the others stay */
		rc = api(w, "PATCH", full, patch, "application/strategic-merge-patch+json", err,
			 sizeof(err));
		if (rc && rc != -SL_ERR_NOTFOUND && rc != -ECANCELED)
			pr_warn("sched", "pod %s/%s: condition: %s", j->ns, j->name, err);
	}
	free(full);
	free(path);
	json_object_put(patch);
	event_post(w, j, "Warning", "FailedScheduling", j->msg);
}

static void *worker_thread(void *arg)
{
	struct sworker *w = arg;
	struct sched *s = w->s;

	for (;;) {
		struct job *j;
		pthread_mutex_lock(&s->mu);
		while (!s->stop && !s->jhead && !s->ehead)
			pthread_cond_wait(&s->jcv, &s->mu);
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		if (s->jhead) {
			j = s->jhead;
			s->jhead = j->next;
			if (!s->jhead)
				s->jtail = NULL;
		} else {
			j = s->ehead;
			s->ehead = j->next;
			if (!s->ehead)
				s->etail = NULL;
			s->n_events--;
		}
		pthread_mutex_unlock(&s->mu);
		if (j->kind == JOB_BIND)
			do_bind(w, j);
		else if (j->kind == JOB_UNSCHED)
			do_unsched(w, j);
		else
			event_post(w, j, "Normal", "Scheduled", j->msg);
		job_free(j);
	}
}

/* --- lifecycle -------------------------------------------------------------------------------- */

static struct sl_informer *inf_new(struct sched *s, struct sl_gvr gvr,
				   struct sl_informer_handlers h, char *err, size_t errlen)
{
	h.arg = s;
	return ctl_informer_start(s->client, &gvr, NULL, &h, err, errlen);
}

static int worker_start(struct sched *s, struct sworker *w, void *(*fn)(void *))
{
	w->s = s;
	w->cancel = sl_cancel_new();
	if (!w->cancel)
		return -ENOMEM;
	if (pthread_create(&w->thr, NULL, fn, w))
		return -EAGAIN;
	w->started = true;
	return 0;
}

static void worker_join(struct sworker *w)
{
	if (w->started)
		pthread_join(w->thr, NULL);
	sl_cancel_free(w->cancel);
	w->cancel = NULL;
	w->started = false;
}

struct sched *sched_start(const struct sched_config *cfg, struct sl_client *client, char *err,
			  size_t errlen)
{
	struct sched *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	if (!s->cfg.bind_workers)
		s->cfg.bind_workers = 8;
	if (!s->cfg.retry_s)
		s->cfg.retry_s = 15;
	s->name = strdup(cfg->name && *cfg->name ? cfg->name : "sluice-scheduler");
	s->client = client;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->jcv, NULL);
	s->workers = calloc(s->cfg.bind_workers, sizeof(*s->workers));
	if (!s->name || !s->workers) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->node_inf = inf_new(s, SL_GVR_NODES,
			      (struct sl_informer_handlers){.on_add = on_node_add,
							    .on_update = on_node_update,
							    .on_delete = on_node_delete},
			      err, errlen);
	if (!s->node_inf)
		goto fail;
	s->pod_inf = inf_new(s, SL_GVR_PODS,
			     (struct sl_informer_handlers){.on_add = on_pod_add,
							   .on_update = on_pod_update,
							   .on_delete = on_pod_delete},
			     err, errlen);
	if (!s->pod_inf)
		goto fail;
	if (worker_start(s, &s->decider, decider_thread))
		goto fail_thr;
	for (size_t i = 0; i < s->cfg.bind_workers; i++) {
		s->n_workers = i + 1;
		if (worker_start(s, &s->workers[i], worker_thread))
			goto fail_thr;
	}
	return s;
fail_thr:
	snprintf(err, errlen, "cannot start scheduler threads");
fail:
	sched_stop(s);
	return NULL;
}

void sched_stop(struct sched *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_cond_broadcast(&s->jcv);
	pthread_mutex_unlock(&s->mu);
	if (s->decider.cancel)
		sl_cancel_fire(s->decider.cancel);
	for (size_t i = 0; i < s->n_workers; i++)
		if (s->workers[i].cancel)
			sl_cancel_fire(s->workers[i].cancel);
	/* stopping informers also ends the decider's wait for their sync */
	sl_informer_stop(s->node_inf);
	sl_informer_stop(s->pod_inf);
	worker_join(&s->decider);
	for (size_t i = 0; i < s->n_workers; i++)
		worker_join(&s->workers[i]);
	sl_informer_free(s->node_inf);
	sl_informer_free(s->pod_inf);
	for (size_t b = 0; b < HASH_BUCKETS; b++) {
		while (s->hash[b]) {
			struct spod *sp = s->hash[b];
			s->hash[b] = sp->hnext;
			spod_free(sp);
		}
	}
	for (size_t i = 0; i < s->n_nodes; i++) {
		sched_node_fini(&s->nodes[i]->n);
		free(s->nodes[i]);
	}
	free(s->nodes);
	free(s->arr);
	for (size_t i = 0; i < s->a_n; i++)
		free(s->active[(s->a_head + i) % s->a_cap]);
	free(s->active);
	while (s->jhead) {
		struct job *j = s->jhead;
		s->jhead = j->next;
		job_free(j);
	}
	while (s->ehead) {
		struct job *j = s->ehead;
		s->ehead = j->next;
		job_free(j);
	}
	free(s->workers);
	free(s->name);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->jcv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void sched_stats(struct sched *s, struct sched_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	for (size_t b = 0; b < HASH_BUCKETS; b++) {
		for (struct spod *sp = s->hash[b]; sp; sp = sp->hnext) {
			if (sp->state == SP_PENDING)
				out->pending++;
			else if (sp->state == SP_UNSCHED)
				out->unschedulable++;
		}
	}
	pthread_mutex_unlock(&s->mu);
}
