// SPDX-License-Identifier: Apache-2.0
/*
 * The scheduler at run time: informer handlers keep the cache (nodes and
 * every pod's digest and placement), one thread decides, a pool of workers
 * talks to the API (binds, PodScheduled=False conditions, Events).
 *
 * One mutex guards the cache and both queues. Informer threads parse outside
 * it and only swap digests in; a decision holds it (filters and scores over
 * every node, microseconds for a hundred nodes), on the deciding thread or,
 * for a new pod that finds the queue empty, right on the pod informer's
 * thread; workers take it to pick a job and to undo an assumption when a
 * bind fails.
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
	size_t gidx;  /* position in s->nodes: stable, indexes owner counts */
};

/*
 * How many pods of one owner are placed on each node, kept as pods are placed and unplaced, so a
 * decision reads its spread counts in O(nodes) instead of walking every placed pod (which made a
 * burst of n pods of one ReplicaSet cost O(n^2)). Freed when the owner has no pod placed.
 */
#define OWNER_BUCKETS 1024
struct owner_cnt {
	uint64_t owner;
	int64_t total;
	int32_t *cnt; /* by snode gidx */
	size_t cap;
	struct owner_cnt *next;
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
	uint64_t seen_us; /* first sight unscheduled (latency: the pod's e2e start) */
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
	uint64_t seen_us, pop_us, decided_us; /* JOB_BIND: the pod's timeline, for latency */
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
	struct spod *placed; /* pods accounted on a node: what topology spread counts */
	struct owner_cnt *owners[OWNER_BUCKETS];
	size_t n_unsched;     /* pods in SP_UNSCHED: wake_unsched has nothing to do at 0 */
	struct snode **nodes; /* every node ever seen */
	size_t n_nodes, cap_nodes;
	struct sched_node **arr; /* present nodes, what a decision looks at */
	size_t n_arr;
	bool arr_dirty;

	char **active; /* ring of pod keys */
	size_t a_head, a_n, a_cap;
	bool flush;  /* a cluster change: wake UNSCHED pods */
	bool synced; /* both informers have listed: decisions may start */
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

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* --- latency histograms ----------------------------------------------------------------------
 *
 * Log-linear buckets over microseconds (16 per power of two: under 5 % error), so a scheduler
 * that runs for months keeps a fixed few kilobytes per histogram.
 */
static unsigned lat_bucket(uint64_t us)
{
	unsigned e;

	if (us < SCHED_LAT_SUB)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us); /* us in [2^e, 2^(e+1)) */
	if (e - 3 >= SCHED_LAT_BUCKETS / SCHED_LAT_SUB)
		return SCHED_LAT_BUCKETS - 1;
	return (e - 3) * SCHED_LAT_SUB + (unsigned)((us >> (e - 4)) & (SCHED_LAT_SUB - 1));
}

static uint64_t lat_bucket_top(unsigned b)
{
	unsigned e;

	if (b < SCHED_LAT_SUB)
		return b;
	e = b / SCHED_LAT_SUB + 3;
	return ((uint64_t)(SCHED_LAT_SUB + b % SCHED_LAT_SUB + 1) << (e - 4)) - 1;
}

void sched_lat_add(struct sched_lat *h, uint64_t us)
{
	h->b[lat_bucket(us)]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

uint64_t sched_lat_quantile(const struct sched_lat *h, double q)
{
	uint64_t want, acc = 0;

	if (!h->n)
		return 0;
	want = (uint64_t)(q * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	for (unsigned b = 0; b < SCHED_LAT_BUCKETS; b++) {
		acc += h->b[b];
		if (acc >=
		    want) /* the last bucket holds everything beyond: its top means nothing */
			return b + 1 < SCHED_LAT_BUCKETS && lat_bucket_top(b) < h->max_us
				       ? lat_bucket_top(b)
				       : h->max_us;
	}
	return h->max_us;
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
	sn->gidx = s->n_nodes;
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

static void set_state(struct sched *s, struct spod *sp, enum spod_state st)
{
	if (sp->state == SP_UNSCHED)
		s->n_unsched--;
	if (st == SP_UNSCHED)
		s->n_unsched++;
	sp->state = st;
}

static struct owner_cnt **owner_slot(struct sched *s, uint64_t owner)
{
	struct owner_cnt **pp = &s->owners[owner % OWNER_BUCKETS];

	while (*pp && (*pp)->owner != owner)
		pp = &(*pp)->next;
	return pp;
}

/* Counts sp's owner on node gidx up or down. On allocation failure the count stays short and
 * the spread score is slightly off for that owner; placement itself stays correct. */
static void owner_count(struct sched *s, const struct spod *sp, size_t gidx, int sign)
{
	struct owner_cnt **pp, *oc;

	if (!sp->p.owner)
		return;
	pp = owner_slot(s, sp->p.owner);
	oc = *pp;
	if (!oc) {
		if (sign < 0)
			return;
		oc = calloc(1, sizeof(*oc));
		if (!oc)
			return;
		oc->owner = sp->p.owner;
		*pp = oc;
	}
	if (gidx >= oc->cap) {
		size_t cap = s->cap_nodes > gidx ? s->cap_nodes : gidx + 1;
		int32_t *v = realloc(oc->cnt, cap * sizeof(*v));
		if (!v)
			return;
		memset(v + oc->cap, 0, (cap - oc->cap) * sizeof(*v));
		oc->cnt = v;
		oc->cap = cap;
	}
	if (sign < 0 && !oc->cnt[gidx])
		return;
	oc->cnt[gidx] += sign;
	oc->total += sign;
	if (!oc->total) {
		*pp = oc->next;
		free(oc->cnt);
		free(oc);
	}
}

static void place(struct sched *s, struct spod *sp, struct snode *sn)
{
	if (sp->on) {
		owner_count(s, sp, sp->on->gidx, -1);
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
		owner_count(s, sp, sn->gidx, 1);
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

static struct job *job_push(struct sched *s, enum job_kind kind, const struct spod *sp,
			    const char *node, const char *msg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
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
		return NULL;
	}
	if (kind == JOB_SCHEDULED_EVENT) {
		if (s->n_events >= EVENT_QUEUE_MAX) {
			s->st.events_dropped++;
			job_free(j);
			return NULL;
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
	return j;
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
	set_state(s, sp, SP_PENDING); /* out of the UNSCHED count */
	pod_unlink(s, sp);
	spod_free(sp);
}

static void decide(struct sched *s, struct spod *sp, uint64_t pop_us);

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
		set_state(s, sp, SP_PENDING);
		sp->seen_us = now_us();
	}
	if (np.node) {
		struct snode *sn = node_get(s, np.node, true);
		place(s, sp, NULL);
		sched_pod_fini(&sp->p);
		sp->p = np;
		memset(&np, 0, sizeof(np));
		place(s, sp, sn);
		set_state(s, sp, SP_BOUND);
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
	if (sp->state == SP_PENDING) {
		if (s->synced && !s->a_n && !sp->queued) {
			/*
			 * Nothing waits before it: decide here, on the informer thread, rather than
			 * wake the deciding thread for it. A decision is microseconds; a thread
			 * wakeup on a busy machine is often milliseconds, and it was the largest
			 * part of the queue time at moderate rates. With a backlog the pod joins
			 * the queue instead, so pods are still decided in arrival order.
			 */
			if (s->arr_dirty)
				arr_rebuild(s);
			decide(s, sp, now_us());
		} else {
			active_push(s, sp);
		}
	}
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

	if (!s->n_unsched) {
		/* nothing to wake: skip the walk over every bucket, which the deciding thread
		 * would otherwise do each time its queue runs dry, that is once per pod when
		 * pods come one at a time */
		s->flush = false;
		return;
	}
	for (size_t b = 0; b < HASH_BUCKETS; b++) {
		for (struct spod *sp = s->hash[b]; sp; sp = sp->hnext) {
			if (sp->state != SP_UNSCHED)
				continue;
			if (all || s->flush)
				sp->wake = true;
			if (sp->wake && sp->next_try_ms <= now) {
				sp->wake = false;
				set_state(s, sp, SP_PENDING);
				active_push(s, sp);
			}
		}
	}
	s->flush = false;
}

static void decide(struct sched *s, struct spod *sp, uint64_t pop_us)
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
		set_state(s, sp, SP_UNSCHED);
		sp->next_try_ms = now_ms() + BACKOFF_MIN_MS;
		sp->wake = true;
		return;
	}
	if (owner) {
		struct owner_cnt *oc = *owner_slot(s, sp->p.owner);
		for (size_t g = 0; oc && g < s->n_nodes && g < oc->cap; g++)
			if (s->nodes[g]->idx >= 0)
				owner[s->nodes[g]->idx] = oc->cnt[g];
		if (sp->on && sp->on->idx >= 0 && owner[sp->on->idx] > 0)
			owner[sp->on->idx]--; /* not itself */
	}
	if (tsc) {
		for (struct spod *o = s->placed; o; o = o->pnext) {
			int i;
			if (o->on->idx < 0 || o == sp)
				continue;
			i = o->on->idx;
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
		struct job *j;
		place(s, sp, sn);
		set_state(s, sp, SP_ASSUMED);
		sp->backoff_ms = 0;
		j = job_push(s, JOB_BIND, sp, s->arr[idx]->name, NULL);
		if (j) {
			j->seen_us = sp->seen_us;
			j->pop_us = pop_us;
			j->decided_us = now_us();
		}
	} else {
		char msg[1024];
		uint64_t now = now_ms();
		sched_fit_message(fits, n, msg, sizeof(msg));
		s->st.unschedulable_attempts++;
		set_state(s, sp, SP_UNSCHED);
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
	s->synced = true;
	s->next_periodic_ms = now_ms() + s->cfg.retry_s * 1000ull;
	while (!s->stop) {
		char *key;
		struct spod *sp;
		uint64_t now = now_ms(), pop_us;

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
		pop_us = now_us();
		sp = pod_find(s, key);
		free(key);
		if (!sp)
			continue;
		sp->queued = false;
		if (sp->state != SP_PENDING)
			continue;
		if (s->arr_dirty)
			arr_rebuild(s);
		decide(s, sp, pop_us);
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
			set_state(s, sp, SP_BOUND);
		} else {
			place(s, sp, NULL);
			set_state(s, sp, SP_UNSCHED);
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
	uint64_t start_us = now_us(), end_us;

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
	end_us = now_us();
	snprintf(msg, sizeof(msg), "Successfully assigned %s/%s to %s", j->ns, j->name, j->node);
	pthread_mutex_lock(&w->s->mu);
	w->s->st.scheduled++;
	sched_lat_add(&w->s->st.e2e, end_us - j->seen_us);
	sched_lat_add(&w->s->st.attempt, end_us - j->pop_us);
	sched_lat_add(&w->s->st.queue, j->pop_us - j->seen_us);
	sched_lat_add(&w->s->st.decide, j->decided_us - j->pop_us);
	sched_lat_add(&w->s->st.wait, start_us - j->decided_us);
	sched_lat_add(&w->s->st.bind, end_us - start_us);
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
		/* Little's law: binds in flight = rate x round trip. At 1,000 pods/s and a few ms
		 * per bind on a busy server, 8 workers were the bottleneck (binds waited for a
		 * worker for up to hundreds of ms); upstream binds each pod in its own goroutine.
		 */
		s->cfg.bind_workers = 32;
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
	if (s->st.scheduled) {
		/* the scheduler's own view of its latency (tools/bench/sched.sh reads this line) */
		char line[1024];
		sched_stats_latency_line(&s->st, line, sizeof(line));
		pr_info("sched", "%" PRIu64 " pods bound, %" PRIu64 " bind errors; latency %s",
			s->st.scheduled, s->st.bind_errors, line);
	}
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
	for (size_t b = 0; b < OWNER_BUCKETS; b++) {
		while (s->owners[b]) {
			struct owner_cnt *oc = s->owners[b];
			s->owners[b] = oc->next;
			free(oc->cnt);
			free(oc);
		}
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

size_t sched_stats_latency_line(const struct sched_stats *st, char *buf, size_t len)
{
	const struct {
		const char *name;
		const struct sched_lat *h;
	} hs[] = {{"e2e", &st->e2e},	   {"attempt", &st->attempt}, {"queue", &st->queue},
		  {"decide", &st->decide}, {"wait", &st->wait},	      {"bind", &st->bind}};
	size_t off = 0;

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]) && off < len; i++) {
		int n = snprintf(buf + off, len - off,
				 "%s%s_p50_ms=%.2f %s_p99_ms=%.2f %s_max_ms=%.2f", i ? " " : "",
				 hs[i].name, (double)sched_lat_quantile(hs[i].h, 0.50) / 1000.0,
				 hs[i].name, (double)sched_lat_quantile(hs[i].h, 0.99) / 1000.0,
				 hs[i].name, (double)hs[i].h->max_us / 1000.0);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	return off < len ? off : (len ? len - 1 : 0);
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
