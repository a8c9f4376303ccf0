// SPDX-License-Identifier: Apache-2.0
/*
 * Informer: a thread that keeps a local cache of one resource type in step
 * with the API server by LIST then WATCH, and tells handlers what changed.
 * The state machine and the delivery contract are in sluice/informer.h.
 *
 * Objects cross threads as immutable serialised entries (struct inf_entry,
 * atomic refcount): the cache, the dispatch queue and readers on other threads
 * share entries, and every thread parses its own json-c tree. The one
 * exception is a parsed list item handed to the dispatch queue (struct
 * inf_event.obj): json-c refcounts are not atomic, so the informer thread
 * drops every reference it had before queueing it, and the queue's mutex
 * orders its last touch before the dispatcher's first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "jtext.h"
#include "sluice/err.h"
#include "sluice/informer.h"
#include "sluice/json.h"
#include "sluice/log.h"

#define INF_SUBSYS "informer"

/* Positive watch-callback results: why the informer stopped a stream. */
#define INF_STOP_EXPIRED 1 /* ERROR event with code 410: relist now */
#define INF_STOP_ERROR	 2 /* any other ERROR event: relist after a back-off */

/*
 * QUEUE mode: by default at most this many parsed objects wait in the queue
 * (opts.queue_objs_max); past it a list item is queued as text again, as
 * every object was before. A parsed
 * EndpointSlice of 10 endpoints is ~15 KiB of json-c, its text ~1.3 KiB:
 * the bound keeps a consumer that dispatches slower than the list arrives
 * (or not at all until synced) from holding a whole parsed list.
 */
#define INF_QUEUE_OBJS_MAX 1024

/* One object as cached: immutable once built, shared by refcount. */
struct inf_entry {
	atomic_uint refs;
	char *key;  /* "ns/name" or "name" */
	char *rv;   /* metadata.resourceVersion ("" when absent) */
	char *json; /* plain serialisation, NUL-terminated; NULL in a metadata-only
		     * cache (SL_INF_CACHE_METADATA): parsed as a metadata stub */
	size_t len; /* bytes in json */
	bool light; /* key and rv live in the same allocation (inf_entry_light) */
};

struct inf_node {
	struct inf_node *next;
	struct inf_entry *e; /* holds one reference */
	uint32_t hash;
};

/* key → entry, chained hash; grows at load factor 1. */
struct inf_map {
	struct inf_node **b;
	size_t nb; /* buckets, a power of two (0 before the first insert) */
	size_t n;  /* entries */
};

enum inf_kind { INF_ADD, INF_UPDATE, INF_DELETE, INF_SYNCED };

/* A queued delivery (QUEUE mode). */
struct inf_event {
	struct inf_event *next;
	enum inf_kind kind;
	struct inf_entry *old;	 /* UPDATE: previous; DELETE: last state */
	struct inf_entry *cur;	 /* ADD/UPDATE: new state */
	struct json_object *obj; /* ADD/UPDATE, when set: cur parsed; the only
				  * reference to it (see the top of the file) */
	void *typed;		 /* ADD/UPDATE, when set: cur decoded (typed_kind),
				  * handed to on_add_typed */
};

struct sl_informer {
	struct sl_client *c; /* borrowed */
	char *group, *version, *resource, *ns, *lsel, *fsel;
	struct sl_gvr gvr; /* points at the strings above */
	enum sl_inf_delivery delivery;
	bool cache_meta;	  /* SL_INF_CACHE_METADATA: map entries are key + rv only */
	enum k8s_kind typed_kind; /* != UNKNOWN: stream first lists typed */
	struct sl_informer_handlers h;
	unsigned int page_limit, watch_min_s, watch_max_s, queue_objs_max;

	pthread_t thread;
	bool running;		    /* thread started and not yet joined */
	struct sl_cancel *cancel;   /* fired by stop: interrupts list, watch, sleep */
	struct sl_backoff bo;	    /* informer thread only */
	size_t text_fallbacks;	    /* informer thread only: parsed items queued as text */
	unsigned int queue_wait_ms; /* opts.queue_wait_ms */
	int64_t room_wait_ms;	    /* informer thread only: what is left of it in this list */

	pthread_rwlock_t lock; /* guards map */
	struct inf_map map;

	pthread_mutex_t mu;  /* guards everything below */
	pthread_cond_t cond; /* signalled on synced and on stop */
	bool synced;
	bool stopping;
	struct sl_informer_stats st;
	struct inf_event *qhead, *qtail; /* QUEUE mode */
	size_t q_objs;			 /* queued events that carry a parsed obj */
	int efd;			 /* eventfd, QUEUE mode only, else -1 */
};

/* ---- entries and the map --------------------------------------------- */

static void inf_entry_put(struct inf_entry *e)
{
	if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
		return;
	if (!e->light) {
		free(e->key);
		free(e->rv);
		free(e->json);
	}
	free(e);
}

static struct inf_entry *inf_entry_get(struct inf_entry *e)
{
	if (e)
		atomic_fetch_add(&e->refs, 1);
	return e;
}

/* client-go's MetaNamespaceKeyFunc. NULL when the object has no name. */
static char *inf_key(struct json_object *obj)
{
	struct json_object *md = sl_json_get(obj, "metadata");
	const char *ns = sl_json_get_str(md, "namespace");
	const char *name = sl_json_get_str(md, "name");
	char *k;

	if (!name || !*name)
		return NULL;
	if (ns && *ns) {
		if (asprintf(&k, "%s/%s", ns, name) < 0)
			return NULL;
		return k;
	}
	return strdup(name);
}

static struct inf_entry *inf_entry_new(struct json_object *obj)
{
	struct inf_entry *e = calloc(1, sizeof(*e));
	const char *rv = json_object_get_string(
		sl_json_path(obj, "metadata", "resourceVersion", (char *)NULL));
	const char *s;

	if (!e)
		return NULL;
	atomic_init(&e->refs, 1);
	e->key = inf_key(obj);
	e->rv = strdup(rv ? rv : "");
	s = sl_json_str(obj, &e->len);
	e->json = s ? strndup(s, e->len) : NULL;
	if (!e->key || !e->rv || !e->json) {
		inf_entry_put(e);
		return NULL;
	}
	return e;
}

/* A metadata-only copy of e for the cache: what relists and on_update need. */
static struct inf_entry *inf_entry_light(const struct inf_entry *e)
{
	size_t kl = strlen(e->key) + 1, rl = strlen(e->rv) + 1;
	/* One allocation: a cache of 10,000s of these stays dense. */
	struct inf_entry *l = calloc(1, sizeof(*l) + kl + rl);

	if (!l)
		return NULL;
	atomic_init(&l->refs, 1);
	l->light = true;
	l->key = memcpy((char *)(l + 1), e->key, kl);
	l->rv = memcpy((char *)(l + 1) + kl, e->rv, rl);
	return l;
}

/* Key and resourceVersion only, straight from a parsed object: a list item
 * that is delivered parsed needs no text in a metadata-only cache. */
static struct inf_entry *inf_entry_meta(struct json_object *obj)
{
	struct inf_entry tmp = {0}, *l;

	tmp.key = inf_key(obj);
	tmp.rv = (char *)json_object_get_string(
		sl_json_path(obj, "metadata", "resourceVersion", (char *)NULL));
	if (!tmp.rv)
		tmp.rv = "";
	l = tmp.key ? inf_entry_light(&tmp) : NULL;
	free(tmp.key);
	return l;
}

/* {"metadata":{"namespace":..,"name":..,"resourceVersion":..}} from a light entry. */
static struct json_object *inf_entry_stub(const struct inf_entry *e)
{
	struct json_object *o = json_object_new_object(), *md = json_object_new_object();
	const char *slash = strchr(e->key, '/');
	bool oom;

	if (!o || !md || json_object_object_add(o, "metadata", md)) {
		json_object_put(o);
		json_object_put(md);
		return NULL;
	}
	/* md is o's now. */
	oom = sl_json_set_str(md, "name", slash ? slash + 1 : e->key) ||
	      (*e->rv && sl_json_set_str(md, "resourceVersion", e->rv));
	if (!oom && slash) {
		char *ns = strndup(e->key, (size_t)(slash - e->key));

		oom = !ns || sl_json_set_str(md, "namespace", ns);
		free(ns);
	}
	if (oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *inf_entry_parse(const struct inf_entry *e)
{
	if (!e)
		return NULL;
	if (!e->json)
		return inf_entry_stub(e);
	return sl_json_parse(e->json, e->len, NULL, 0);
}

static uint32_t inf_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct inf_node **inf_map_slot(struct inf_map *m, const char *key, uint32_t h)
{
	struct inf_node **pp;

	if (!m->nb)
		return NULL;
	for (pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && !strcmp((*pp)->e->key, key))
			return pp;
	return pp;
}

static struct inf_entry *inf_map_find(struct inf_map *m, const char *key)
{
	struct inf_node **pp = inf_map_slot(m, key, inf_hash(key));

	return pp && *pp ? (*pp)->e : NULL;
}

static int inf_map_grow(struct inf_map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct inf_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct inf_node *n = m->b[i], *next;

		for (; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

/* Inserts e (taking the caller's reference); returns the replaced entry
 * (its reference now the caller's) or NULL. *err gets -ENOMEM on failure. */
static struct inf_entry *inf_map_put(struct inf_map *m, struct inf_entry *e, int *err)
{
	uint32_t h = inf_hash(e->key);
	struct inf_node **pp, *n;
	struct inf_entry *old;

	*err = 0;
	if (m->n >= m->nb && inf_map_grow(m)) {
		*err = -ENOMEM;
		inf_entry_put(e);
		return NULL;
	}
	pp = inf_map_slot(m, e->key, h);
	if (*pp) {
		old = (*pp)->e;
		(*pp)->e = e;
		return old;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		*err = -ENOMEM;
		inf_entry_put(e);
		return NULL;
	}
	n->e = e;
	n->hash = h;
	*pp = n;
	m->n++;
	return NULL;
}

/* Removes key; returns its entry (reference now the caller's) or NULL. */
static struct inf_entry *inf_map_del(struct inf_map *m, const char *key)
{
	struct inf_node **pp = inf_map_slot(m, key, inf_hash(key)), *n;
	struct inf_entry *e;

	if (!pp || !*pp)
		return NULL;
	n = *pp;
	*pp = n->next;
	e = n->e;
	free(n);
	m->n--;
	return e;
}

static void inf_map_fini(struct inf_map *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct inf_node *n = m->b[i], *next;

		for (; n; n = next) {
			next = n->next;
			inf_entry_put(n->e);
			free(n);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

static uint64_t inf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- delivery -------------------------------------------------------- */

/* Runs one handler. cur_obj, when given, is the already-parsed new state. */
static void inf_run_handler(struct sl_informer *inf, enum inf_kind kind, struct inf_entry *old,
			    struct inf_entry *cur, struct json_object *cur_obj)
{
	const struct sl_informer_handlers *h = &inf->h;
	struct json_object *o = NULL, *n = NULL;

	switch (kind) {
	case INF_ADD:
		if (!h->on_add)
			return;
		n = cur_obj ? json_object_get(cur_obj) : inf_entry_parse(cur);
		if (n)
			h->on_add(n, h->arg);
		break;
	case INF_UPDATE:
		if (!h->on_update)
			return;
		o = inf_entry_parse(old);
		n = cur_obj ? json_object_get(cur_obj) : inf_entry_parse(cur);
		if (o && n)
			h->on_update(o, n, h->arg);
		break;
	case INF_DELETE:
		if (!h->on_delete)
			return;
		o = inf_entry_parse(old);
		if (o)
			h->on_delete(o, h->arg);
		break;
	case INF_SYNCED:
		if (h->on_synced)
			h->on_synced(h->arg);
		break;
	}
	json_object_put(o);
	json_object_put(n);
}

/*
 * Appends ev to the dispatch queue. The eventfd is written only when the
 * queue was empty: a dispatcher clears the fd before it takes the queue (and
 * re-arms it when it leaves events behind), so a non-empty queue always has
 * a wakeup pending or a dispatcher about to take the new event. One write per
 * event was 20,000 syscalls and as many loop wakeups in a 10,000-Service
 * list.
 */
static void inf_enqueue_ex(struct sl_informer *inf, struct inf_event *ev, bool mark_synced)
{
	uint64_t one = 1;
	bool was_empty;

	pthread_mutex_lock(&inf->mu);
	was_empty = !inf->qhead;
	if (inf->qtail)
		inf->qtail->next = ev;
	else
		inf->qhead = ev;
	inf->qtail = ev;
	inf->st.queued++;
	if (mark_synced) {
		inf->synced = true;
		pthread_cond_broadcast(&inf->cond);
	}
	pthread_mutex_unlock(&inf->mu);
	/* After the enqueue: a dispatcher that already read the fd finds the
	 * event in the queue, one that has not sees the fd readable. */
	if (was_empty && write(inf->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn(INF_SUBSYS, "'%s': eventfd write failed: %s", inf->resource,
			strerror(errno));
}

static void inf_enqueue(struct sl_informer *inf, struct inf_event *ev)
{
	inf_enqueue_ex(inf, ev, false);
}

/* Delivers now (THREAD) or queues (QUEUE). Borrows old/cur. */
static int inf_deliver(struct sl_informer *inf, enum inf_kind kind, struct inf_entry *old,
		       struct inf_entry *cur, struct json_object *cur_obj)
{
	struct inf_event *ev;

	if (inf->delivery == SL_INF_DELIVER_THREAD) {
		inf_run_handler(inf, kind, old, cur, cur_obj);
		return 0;
	}
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->kind = kind;
	ev->old = inf_entry_get(old);
	ev->cur = inf_entry_get(cur);
	inf_enqueue(inf, ev);
	return 0;
}

/*
 * Delivers a parsed new state, taking over the caller's reference to obj,
 * which must be the only one. QUEUE mode queues obj itself (no text, no
 * second parse on the dispatching thread) while fewer than
 * INF_QUEUE_OBJS_MAX parsed objects wait; past that, or when cur carries no
 * text, cur is made from obj's text first. Borrows old/cur.
 */
/*
 * QUEUE mode: reserves a place for one more parsed or typed object in the
 * queue, waiting for the consumer to make room while this list's
 * queue_wait_ms lasts. false = no room: the caller queues text instead.
 */
static bool inf_reserve_room(struct sl_informer *inf)
{
	bool room;

	pthread_mutex_lock(&inf->mu);
	room = inf->q_objs < inf->queue_objs_max;
	if (!room && inf->room_wait_ms > 0 && !inf->stopping) {
		/* Dispatch broadcasts cond when it takes objects, stop does too. */
		uint64_t t0 = inf_now_ms();
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += inf->room_wait_ms / 1000;
		ts.tv_nsec += (inf->room_wait_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (inf->q_objs >= inf->queue_objs_max && !inf->stopping &&
		       pthread_cond_timedwait(&inf->cond, &inf->mu, &ts) != ETIMEDOUT)
			;
		inf->room_wait_ms -= (int64_t)(inf_now_ms() - t0);
		room = inf->q_objs < inf->queue_objs_max;
	}
	if (room)
		inf->q_objs++; /* reserved: only this thread adds */
	pthread_mutex_unlock(&inf->mu);
	return room;
}

static void inf_release_room(struct sl_informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	inf->q_objs--;
	pthread_mutex_unlock(&inf->mu);
}

/*
 * Queues an ADD/UPDATE carrying obj or typed (one of them; taken over) in
 * the room inf_reserve_room() made; gives the room back on ENOMEM.
 */
static int inf_enqueue_decoded(struct sl_informer *inf, enum inf_kind kind, struct inf_entry *old,
			       struct inf_entry *cur, struct json_object *obj, void *typed)
{
	struct inf_event *ev = calloc(1, sizeof(*ev));

	if (!ev) {
		inf_release_room(inf);
		json_object_put(obj);
		k8s_obj_free(inf->typed_kind, typed);
		return -ENOMEM;
	}
	ev->kind = kind;
	ev->old = inf_entry_get(old);
	ev->cur = inf_entry_get(cur);
	ev->obj = obj;
	ev->typed = typed;
	inf_enqueue(inf, ev);
	return 0;
}

/*
 * Delivers a parsed new state, taking over the caller's reference to obj,
 * which must be the only one. QUEUE mode queues obj itself (no text, no
 * second parse on the dispatching thread) while fewer than
 * INF_QUEUE_OBJS_MAX parsed objects wait; past that, or when cur carries no
 * text, cur is made from obj's text first. Borrows old/cur.
 */
static int inf_deliver_owned(struct sl_informer *inf, enum inf_kind kind, struct inf_entry *old,
			     struct inf_entry *cur, struct json_object *obj)
{
	struct inf_entry *text = NULL;
	int rc;

	if (inf->delivery == SL_INF_DELIVER_THREAD) {
		inf_run_handler(inf, kind, old, cur, obj);
		json_object_put(obj);
		return 0;
	}
	if (!inf_reserve_room(inf)) {
		inf->text_fallbacks++;
		if (!cur->json) {
			text = inf_entry_new(obj);
			if (!text) {
				json_object_put(obj);
				return -ENOMEM;
			}
			cur = text;
		}
		json_object_put(obj);
		rc = inf_deliver(inf, kind, old, cur, NULL);
		inf_entry_put(text);
		return rc;
	}
	return inf_enqueue_decoded(inf, kind, old, cur, obj, NULL);
}

static void inf_fill_kind(struct json_object *item, const char *list_kind, const char *api);

/*
 * The typed counterpart (QUEUE mode only): takes over typed, decoded from
 * txt (len bytes), the item's text, which becomes the event's text when
 * the queue has no room for another object (list_kind and api: the list's
 * kind and apiVersion, for it). Borrows old/cur.
 */
static int inf_deliver_typed(struct sl_informer *inf, enum inf_kind kind, struct inf_entry *old,
			     struct inf_entry *cur, void *typed, const char *txt, size_t len,
			     const char *list_kind, const char *api)
{
	int rc;

	if (!inf_reserve_room(inf)) {
		/* As text, with the list's kind and apiVersion like any list item
		 * (inf_fill_kind): the rare path, so it may parse. */
		struct json_object *it = sl_json_parse(txt, len, NULL, 0);
		struct inf_entry *text;

		inf->text_fallbacks++;
		k8s_obj_free(inf->typed_kind, typed);
		if (!it)
			return -ENOMEM; /* the page scanned as JSON: only memory is left */
		inf_fill_kind(it, list_kind, api);
		text = inf_entry_new(it);
		json_object_put(it);
		if (!text)
			return -ENOMEM;
		rc = inf_deliver(inf, kind, old, text, NULL);
		inf_entry_put(text);
		return rc;
	}
	return inf_enqueue_decoded(inf, kind, old, cur, NULL, typed);
}

int sl_informer_fd(struct sl_informer *inf)
{
	return inf->efd;
}

int sl_informer_dispatch(struct sl_informer *inf, unsigned int max)
{
	struct inf_event *batch = NULL, **tail = &batch, *ev;
	uint64_t v, one = 1;
	unsigned int n = 0;
	bool more;

	if (inf->efd < 0)
		return 0;
	/* Clear readiness before draining so a concurrent enqueue re-arms it. */
	if (read(inf->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn(INF_SUBSYS, "'%s': eventfd read failed: %s", inf->resource,
			strerror(errno));
	pthread_mutex_lock(&inf->mu);
	while (inf->qhead && (!max || n < max)) {
		ev = inf->qhead;
		inf->qhead = ev->next;
		ev->next = NULL;
		*tail = ev;
		tail = &ev->next;
		n++;
		if (ev->obj || ev->typed)
			inf->q_objs--;
	}
	if (n)
		pthread_cond_broadcast(&inf->cond); /* room for a waiting list */
	if (!inf->qhead)
		inf->qtail = NULL;
	inf->st.queued -= n;
	more = inf->qhead != NULL;
	pthread_mutex_unlock(&inf->mu);
	if (more && write(inf->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn(INF_SUBSYS, "'%s': eventfd write failed: %s", inf->resource,
			strerror(errno));
	while ((ev = batch)) {
		batch = ev->next;
		if (ev->typed)
			inf->h.on_add_typed(ev->typed, inf->h.arg); /* theirs now */
		else
			inf_run_handler(inf, ev->kind, ev->old, ev->cur, ev->obj);
		json_object_put(ev->obj);
		inf_entry_put(ev->old);
		inf_entry_put(ev->cur);
		free(ev);
	}
	return (int)n;
}

/* ---- cache updates --------------------------------------------------- */

static void inf_set_rv(struct sl_informer *inf, const char *rv)
{
	if (!rv || !*rv)
		return;
	pthread_mutex_lock(&inf->mu);
	snprintf(inf->st.last_rv, sizeof(inf->st.last_rv), "%s", rv);
	pthread_mutex_unlock(&inf->mu);
}

static void inf_set_objects(struct sl_informer *inf, size_t n)
{
	pthread_mutex_lock(&inf->mu);
	inf->st.objects = n;
	pthread_mutex_unlock(&inf->mu);
}

static int inf_upsert(struct sl_informer *inf, struct json_object *obj)
{
	struct inf_entry *e = inf_entry_new(obj), *old, *cached;
	size_t n;
	int rc;

	if (!e) {
		pr_warn(INF_SUBSYS, "'%s': object without metadata.name ignored", inf->resource);
		return 0;
	}
	/* One reference for the map, one for delivery; a metadata-only cache
	 * keeps a light copy instead and the text lives only until delivered. */
	cached = inf->cache_meta ? inf_entry_light(e) : inf_entry_get(e);
	if (!cached) {
		inf_entry_put(e);
		return -ENOMEM;
	}
	pthread_rwlock_wrlock(&inf->lock);
	old = inf_map_put(&inf->map, cached, &rc);
	n = inf->map.n;
	pthread_rwlock_unlock(&inf->lock);
	if (!rc) {
		inf_set_objects(inf, n);
		rc = inf_deliver(inf, old ? INF_UPDATE : INF_ADD, old, e, obj);
	}
	inf_entry_put(old);
	/* Two references were taken (new + get); inf_map_put drops the map's on
	 * failure, this drops delivery's. The analyzer cannot follow the atomic
	 * count and reports the second put as a use after free. */
	inf_entry_put(e); // NOLINT(clang-analyzer-unix.Malloc)
	return rc;
}

static int inf_remove(struct sl_informer *inf, struct json_object *obj)
{
	struct inf_entry *last = inf_entry_new(obj), *old;
	size_t n;
	int rc = 0;

	if (!last)
		return 0;
	pthread_rwlock_wrlock(&inf->lock);
	old = inf_map_del(&inf->map, last->key);
	n = inf->map.n;
	pthread_rwlock_unlock(&inf->lock);
	if (old) {
		inf_set_objects(inf, n);
		/* The event carries the object's final state: deliver that. */
		rc = inf_deliver(inf, INF_DELETE, last, NULL, NULL);
	} else {
		pr_debug(INF_SUBSYS, "'%s': DELETED for unknown %s", inf->resource, last->key);
	}
	inf_entry_put(old);
	inf_entry_put(last);
	return rc;
}

/*
 * One item of a streamed list (see inf_list): into the cache, delivered with
 * the parsed object, whose only reference the call takes over. A duplicate
 * key in a later page is an update, as a watch would deliver it.
 */
static int inf_stream_item(struct sl_informer *inf, struct json_object *it, size_t i)
{
	struct inf_entry *e, *cached, *old;
	size_t n;
	int rc;

	/* A metadata-only cache needs no text at all; a full one keeps it. */
	e = inf->cache_meta ? inf_entry_meta(it) : inf_entry_new(it);
	if (!e) {
		pr_warn(INF_SUBSYS, "'%s': list item %zu has no metadata.name", inf->resource, i);
		json_object_put(it);
		return 0;
	}
	cached = inf_entry_get(e);
	pthread_rwlock_wrlock(&inf->lock);
	old = inf_map_put(&inf->map, cached, &rc);
	n = inf->map.n;
	pthread_rwlock_unlock(&inf->lock);
	if (!rc) {
		inf_set_objects(inf, n);
		rc = inf_deliver_owned(inf, old ? INF_UPDATE : INF_ADD, old, e, it);
	} else {
		json_object_put(it);
	}
	inf_entry_put(old);
	inf_entry_put(e); // NOLINT(clang-analyzer-unix.Malloc): refcounted, see inf_upsert
	return rc;
}

/*
 * Typed streaming: item i of a list page, as text. Decoded straight into
 * the typed struct, cached as key + rv and queued for on_add_typed; an item
 * that does not decode (or has no name) goes the json way instead, so the
 * consumer's on_add reports it as it would any malformed object.
 */
static int inf_stream_text_item(struct sl_informer *inf, struct k8s_text_run *run, const char *txt,
				size_t len, const char *list_kind, const char *api, size_t i)
{
	struct inf_entry tmp = {0}, *e, *cached, *old;
	const struct k8s_meta *m = NULL;
	void *typed = NULL;
	char kbuf[512];
	size_t n;
	int rc;

	if (!k8s_obj_decode_text_run(run, inf->typed_kind, txt, len, &typed, NULL, 0))
		m = k8s_obj_meta(inf->typed_kind, typed);
	if (!m || !m->name || !*m->name ||
	    (size_t)snprintf(kbuf, sizeof(kbuf), "%s%s%s", m->namespace ? m->namespace : "",
			     m->namespace && *m->namespace ? "/" : "", m->name) >= sizeof(kbuf)) {
		struct json_object *it = sl_json_parse(txt, len, NULL, 0);

		k8s_obj_free(inf->typed_kind, typed);
		if (!it)
			return -ENOMEM; /* the page scanned as JSON: only memory is left */
		inf_fill_kind(it, list_kind, api);
		return inf_stream_item(inf, it, i);
	}
	tmp.key = kbuf;
	tmp.rv = m->resource_version ? m->resource_version : "";
	e = inf_entry_light(&tmp);
	if (!e) {
		k8s_obj_free(inf->typed_kind, typed);
		return -ENOMEM;
	}
	cached = inf_entry_get(e);
	pthread_rwlock_wrlock(&inf->lock);
	old = inf_map_put(&inf->map, cached, &rc);
	n = inf->map.n;
	pthread_rwlock_unlock(&inf->lock);
	if (!rc) {
		inf_set_objects(inf, n);
		rc = inf_deliver_typed(inf, old ? INF_UPDATE : INF_ADD, old, e, typed, txt, len,
				       list_kind, api);
	} else {
		k8s_obj_free(inf->typed_kind, typed);
	}
	inf_entry_put(old);
	inf_entry_put(e); // NOLINT(clang-analyzer-unix.Malloc): refcounted, see inf_upsert
	return rc;
}

/* Where the items of a list page are, and what its metadata says. */
struct inf_page {
	const char **item; /* item[i], item_len[i]: each item's text */
	size_t *item_len;
	size_t n, cap;
	char *cont, *rv;  /* metadata.continue, metadata.resourceVersion */
	char *kind, *api; /* the list's kind and apiVersion */
};

static void inf_page_reset(struct inf_page *pg)
{
	free(pg->cont);
	free(pg->rv);
	free(pg->kind);
	free(pg->api);
	pg->cont = pg->rv = pg->kind = pg->api = NULL;
	pg->n = 0;
}

static void inf_page_fini(struct inf_page *pg)
{
	inf_page_reset(pg);
	free(pg->item);
	free(pg->item_len);
}

/* A string member into *out (replacing it); anything else is skipped. */
static int inf_page_str(struct jt *j, char **out)
{
	size_t len;

	if (jt_peek(j) != JT_STRING)
		return jt_skip(j);
	free(*out);
	return jt_string(j, out, &len, NULL);
}

/*
 * Scans a list page's text, checking all of it is JSON, for the spans of
 * its items and its metadata: the items are decoded later, one at a time.
 * 0, -SL_ERR_PARSE (logged) or -ENOMEM.
 */
static int inf_page_scan(struct sl_informer *inf, const char *txt, size_t len, struct inf_page *pg)
{
	struct jt j;
	const char *key;
	size_t kl;
	int rc;

	inf_page_reset(pg);
	jt_init(&j, txt, len);
	if (memchr(txt, '\0', len)) {
		rc = -SL_ERR_PARSE;
		snprintf(j.err, sizeof(j.err), "NUL byte in JSON text");
		goto bad;
	}
	if ((rc = jt_obj_begin(&j)))
		goto bad;
	while ((rc = jt_obj_next(&j, &key, &kl)) > 0) {
		if (kl == 8 && !memcmp(key, "metadata", 8) && jt_peek(&j) == JT_OBJECT) {
			if ((rc = jt_obj_begin(&j)))
				goto bad;
			while ((rc = jt_obj_next(&j, &key, &kl)) > 0) {
				if (kl == 8 && !memcmp(key, "continue", 8))
					rc = inf_page_str(&j, &pg->cont);
				else if (kl == 15 && !memcmp(key, "resourceVersion", 15))
					rc = inf_page_str(&j, &pg->rv);
				else
					rc = jt_skip(&j);
				if (rc)
					goto bad;
			}
		} else if (kl == 5 && !memcmp(key, "items", 5) && jt_peek(&j) == JT_ARRAY) {
			if ((rc = jt_arr_begin(&j)))
				goto bad;
			while ((rc = jt_arr_next(&j)) > 0) {
				const char *start;

				if (pg->n == pg->cap) {
					size_t cap = pg->cap ? pg->cap * 2 : 512;
					const char **v = realloc(pg->item, cap * sizeof(*v));
					size_t *l =
						v ? realloc(pg->item_len, cap * sizeof(*l)) : NULL;

					if (v)
						pg->item = v;
					if (!l)
						return -ENOMEM;
					pg->item_len = l;
					pg->cap = cap;
				}
				jt_peek(&j); /* past the whitespace */
				start = j.p;
				if ((rc = jt_skip(&j)))
					goto bad;
				pg->item[pg->n] = start;
				pg->item_len[pg->n++] = (size_t)(j.p - start);
			}
		} else if (kl == 4 && !memcmp(key, "kind", 4)) {
			rc = inf_page_str(&j, &pg->kind);
		} else if (kl == 10 && !memcmp(key, "apiVersion", 10)) {
			rc = inf_page_str(&j, &pg->api);
		} else {
			rc = jt_skip(&j);
		}
		if (rc)
			goto bad;
	}
	if (!rc)
		rc = jt_finish(&j);
	if (!rc)
		return 0;
bad:
	if (rc == -SL_ERR_PARSE)
		pr_warn(INF_SUBSYS, "'%s': list reply is not a JSON object: %s", inf->resource,
			j.err);
	return rc;
}

/* A list item as an entry; NULL (logged) when it has no name or on ENOMEM. */
static struct inf_entry *inf_item_entry(struct sl_informer *inf, struct json_object *it, size_t i)
{
	struct inf_entry *e = inf_entry_new(it);

	if (!e)
		pr_warn(INF_SUBSYS, "'%s': list item %zu has no metadata.name", inf->resource, i);
	return e;
}

/*
 * The relist step over entries: ents[i] is item i (a reference the call
 * takes over; NULL = skipped), items the parsed list when there is one (THREAD
 * handlers get item i itself instead of a re-parse), else NULL. Frees ents.
 */
static int inf_replace_entries(struct sl_informer *inf, struct inf_entry **ents, size_t n,
			       struct json_object *items, const char *rv)
{
	struct inf_map fresh = {0}, old;
	struct inf_entry **cached;
	size_t count;
	int rc = 0;

	/* ents[i]: item i as delivered; cached[i]: what the map holds for it
	 * (the same entry, or its light copy in a metadata-only cache). Each
	 * array holds its own reference, distinct from the map's. */
	cached = calloc(n ? n : 1, sizeof(*cached));
	if (!cached) {
		for (size_t i = 0; i < n; i++)
			inf_entry_put(ents[i]);
		free(ents);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		struct inf_entry *e = ents[i], *dup;

		if (!e)
			continue;
		cached[i] = inf->cache_meta ? inf_entry_light(e) : inf_entry_get(e);
		if (!cached[i]) {
			rc = -ENOMEM;
			break;
		}
		dup = inf_map_put(&fresh, inf_entry_get(cached[i]), &rc);
		inf_entry_put(dup); /* a duplicate key: the later item wins */
	}
	if (rc) {
		/* Refcounted, not a use after free (see above). */
		for (size_t i = 0; i < n; i++) {
			inf_entry_put(ents[i]);	  // NOLINT(clang-analyzer-unix.Malloc)
			inf_entry_put(cached[i]); // NOLINT(clang-analyzer-unix.Malloc)
		}
		free(ents);
		free(cached);
		inf_map_fini(&fresh);
		return rc;
	}
	pthread_rwlock_wrlock(&inf->lock);
	old = inf->map;
	inf->map = fresh;
	count = fresh.n;
	pthread_rwlock_unlock(&inf->lock);
	inf_set_objects(inf, count);

	/* From here on `fresh` is read only by this thread and writes happen
	 * only on this thread, so lookups without the lock are safe. */
	for (size_t i = 0; i < old.nb; i++)
		for (struct inf_node *nd = old.b[i]; nd; nd = nd->next)
			if (!inf_map_find(&fresh, nd->e->key) && !rc)
				rc = inf_deliver(inf, INF_DELETE, nd->e, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		struct inf_entry *e = ents[i], *prev;

		if (!e)
			continue;
		/* Skip all but the surviving copy of a duplicated key. */
		if (!rc && inf_map_find(&fresh, e->key) == cached[i]) {
			struct json_object *it = items ? json_object_array_get_idx(items, i) : NULL;

			prev = inf_map_find(&old, e->key);
			if (!prev)
				rc = inf_deliver(inf, INF_ADD, NULL, e, it);
			else if (strcmp(prev->rv, e->rv) || !*e->rv)
				rc = inf_deliver(inf, INF_UPDATE, prev, e, it);
		}
		inf_entry_put(e);
		inf_entry_put(cached[i]); // NOLINT(clang-analyzer-unix.Malloc)
	}
	free(ents);
	free(cached);
	inf_map_fini(&old);
	inf_set_rv(inf, rv);
	return rc;
}

int sl_informer_replace(struct sl_informer *inf, struct json_object *items, const char *rv)
{
	struct inf_entry **ents;
	size_t n;

	if (!items || !json_object_is_type(items, json_type_array))
		return -EINVAL;
	n = json_object_array_length(items);
	ents = calloc(n ? n : 1, sizeof(*ents));
	if (!ents)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		ents[i] = inf_item_entry(inf, json_object_array_get_idx(items, i), i);
	return inf_replace_entries(inf, ents, n, items, rv);
}

/* ---- list and watch -------------------------------------------------- */

static void inf_count(struct sl_informer *inf, uint64_t *ctr)
{
	pthread_mutex_lock(&inf->mu);
	(*ctr)++;
	pthread_mutex_unlock(&inf->mu);
}

static void inf_selectors(struct sl_informer *inf, struct sl_buf *q)
{
	if (inf->lsel)
		sl_client_query_add(q, "labelSelector", inf->lsel);
	if (inf->fsel)
		sl_client_query_add(q, "fieldSelector", inf->fsel);
}

/* The path of one list page (cont: the previous page's continue token, or
 * NULL for the first); NULL on ENOMEM. */
static char *inf_page_path(struct sl_informer *inf, const char *cont)
{
	struct sl_buf q = SL_BUF_INIT;
	char lim[16], *path;

	snprintf(lim, sizeof(lim), "%u", inf->page_limit);
	sl_client_query_add(&q, "limit", lim);
	if (cont)
		sl_client_query_add(&q, "continue", cont);
	inf_selectors(inf, &q);
	path = q.oom ? NULL : sl_client_path(&inf->gvr, inf->ns, NULL, q.data);
	sl_buf_fini(&q);
	return path;
}

/* List items lack kind/apiVersion; give them the list's, as client-go's
 * UnstructuredList does, so list and watch objects look the same. */
static void inf_fill_kind(struct json_object *item, const char *list_kind, const char *api)
{
	size_t kl = list_kind ? strlen(list_kind) : 0;

	if (!sl_json_get(item, "kind") && kl > 4 && !strcmp(list_kind + kl - 4, "List")) {
		char kind[128];

		snprintf(kind, sizeof(kind), "%.*s", (int)(kl - 4), list_kind);
		sl_json_set_str(item, "kind", kind);
	}
	if (!sl_json_get(item, "apiVersion") && api)
		sl_json_set_str(item, "apiVersion", api);
}

/*
 * The typed streamed list (a QUEUE first list with opts.typed_kind) fetches
 * pages on a thread of its own, one page ahead: the server produces page
 * N+1 and it crosses the wire while this thread decodes page N. Before, the
 * next page was requested only once the previous one was decoded, so at
 * 10,000 EndpointSlices (20 pages) the server's time per page sat on the
 * start's critical path. The fetcher is the only thread using the cancel
 * token (client.c: a token runs requests on one thread at a time) until it
 * is joined.
 */
struct inf_fetch {
	struct sl_informer *inf;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sl_client_resp resp; /* the slot: a fetched and scanned page */
	struct inf_page pg;
	bool full;
	bool done; /* no page follows the one in the slot (or rc is set) */
	bool stop; /* the decoder gave up: fetch nothing more */
	int rc;	   /* why the fetcher ended early */
};

static void *inf_fetch_run(void *arg)
{
	struct inf_fetch *f = arg;
	struct sl_informer *inf = f->inf;
	char *cont = NULL;
	int rc = 0;

	for (;;) {
		struct sl_client_resp resp;
		struct inf_page pg = {0};
		char *path = inf_page_path(inf, cont);

		if (!path) {
			rc = -ENOMEM;
			break;
		}
		rc = sl_client_request_text(inf->c, "GET", path, inf->cancel, &resp);
		if (!rc && (resp.status < 200 || resp.status >= 300))
			rc = sl_client_status_err(resp.status, NULL);
		else if (!rc)
			rc = inf_page_scan(inf, resp.body.data, resp.body.len, &pg);
		if (rc && rc != -ECANCELED)
			pr_warn(INF_SUBSYS, "'%s': list %s failed: %s", inf->resource, path,
				resp.err[0] ? resp.err : sl_strerror(rc));
		free(path);
		free(cont);
		cont = NULL;
		if (!rc && pg.cont && *pg.cont && !(cont = strdup(pg.cont)))
			rc = -ENOMEM;
		if (rc) {
			sl_client_resp_fini(&resp);
			inf_page_fini(&pg);
			break;
		}
		pthread_mutex_lock(&f->mu);
		while (f->full && !f->stop)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->stop) {
			pthread_mutex_unlock(&f->mu);
			sl_client_resp_fini(&resp);
			inf_page_fini(&pg);
			break;
		}
		f->resp = resp;
		f->pg = pg;
		f->full = true;
		f->done = !cont;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		if (!cont)
			break;
	}
	free(cont);
	pthread_mutex_lock(&f->mu);
	if (rc) {
		f->rc = rc;
		f->done = true;
	}
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* inf_list's streamed typed case (see above): 0 or the first error. */
static int inf_list_typed(struct sl_informer *inf)
{
	struct inf_fetch f = {.inf = inf};
	/* The list's objects share slabs (k8s_text_run): a malloc of a few KiB
	 * per object here, freed on the consumer's thread, was a third of the
	 * decode's time at 50,000 EndpointSlices. */
	struct k8s_text_run *run = k8s_text_run_new();
	char *rv = NULL;
	size_t n_streamed = 0;
	pthread_t th;
	int rc = 0, pages = 0;

	if (!run)
		return -ENOMEM;
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);
	if (pthread_create(&th, NULL, inf_fetch_run, &f)) {
		k8s_text_run_end(run);
		pr_warn(INF_SUBSYS, "'%s': list: cannot start the page fetcher thread; retrying",
			inf->resource);
		pthread_cond_destroy(&f.cv);
		pthread_mutex_destroy(&f.mu);
		return -EAGAIN;
	}
	for (;;) {
		struct sl_client_resp resp;
		struct inf_page pg;

		pthread_mutex_lock(&f.mu);
		while (!f.full && !f.done)
			pthread_cond_wait(&f.cv, &f.mu);
		if (!f.full) {
			rc = f.rc;
			pthread_mutex_unlock(&f.mu);
			break;
		}
		resp = f.resp;
		pg = f.pg;
		f.full = false;
		pthread_cond_broadcast(&f.cv);
		pthread_mutex_unlock(&f.mu);

		for (size_t i = 0; i < pg.n && !rc; i++)
			rc = inf_stream_text_item(inf, run, pg.item[i], pg.item_len[i], pg.kind,
						  pg.api, n_streamed++);
		free(rv);
		rv = pg.rv ? strdup(pg.rv) : NULL;
		if (pg.rv && !rv)
			rc = -ENOMEM;
		sl_client_resp_fini(&resp);
		inf_page_fini(&pg);
		pages++;
		if (rc)
			break;
	}
	pthread_mutex_lock(&f.mu);
	f.stop = true;
	pthread_cond_broadcast(&f.cv);
	pthread_mutex_unlock(&f.mu);
	pthread_join(th, NULL);
	if (f.full) { /* fetched after the decoder stopped */
		sl_client_resp_fini(&f.resp);
		inf_page_fini(&f.pg);
	}
	pthread_cond_destroy(&f.cv);
	pthread_mutex_destroy(&f.mu);
	k8s_text_run_end(run);
	if (!rc && (!rv || !*rv)) {
		pr_warn(INF_SUBSYS, "'%s': list reply has no metadata.resourceVersion",
			inf->resource);
		rc = -SL_ERR_PARSE;
	}
	if (!rc) {
		pr_debug(INF_SUBSYS,
			 "'%s': listed %zu objects in %d pages at rv %s, streamed (%zu queued as "
			 "text)",
			 inf->resource, n_streamed, pages, rv, inf->text_fallbacks);
		inf_set_rv(inf, rv);
	}
	free(rv);
	return rc;
}

/*
 * LIST with paging, then replace. 0, -ECANCELED, or another negative error.
 * THREAD handlers are given the parsed items, so every page is kept until the
 * replace; QUEUE delivery of a relist only needs the entries (serialised
 * text), so each page becomes entries and is freed at once: at 10,000
 * EndpointSlices the parsed pages were hundreds of MiB, the text a tenth of
 * that.
 *
 * A QUEUE list into an empty cache (the first one, mostly) has nothing to
 * diff, so it is streamed: each page's items go into the cache and the queue
 * as soon as the page is parsed, as parsed objects (inf_deliver_owned), and
 * the consumer decodes page 1 while page 2 is on the wire. Serialising each
 * item to text and parsing it again on the loop thread was a quarter of the
 * agent's CPU at a 10,000-Service start. A list that fails half way leaves
 * the streamed items cached; the next list diffs against them as a relist.
 */
static int inf_list(struct sl_informer *inf)
{
	bool keep = inf->delivery == SL_INF_DELIVER_THREAD, stream = false;
	struct json_object *items = keep ? json_object_new_array() : NULL, *page = NULL;
	struct json_object **held = NULL;
	struct inf_entry **ents = NULL;
	size_t n_ents = 0, cap_ents = 0, n_held = 0, cap_held = 0, n_streamed = 0;
	char *cont = NULL, *rv = NULL;
	int rc = 0, pages = 0;

	if (keep && !items)
		return -ENOMEM;
	if (!keep) {
		/* Only this thread writes the map. */
		pthread_rwlock_rdlock(&inf->lock);
		stream = inf->map.n == 0;
		pthread_rwlock_unlock(&inf->lock);
	}
	inf->text_fallbacks = 0;
	inf->room_wait_ms = inf->queue_wait_ms;
	if (stream && inf->typed_kind) {
		json_object_put(items); /* NULL: keep is false when stream is true */
		return inf_list_typed(inf);
	}
	do {
		struct sl_client_resp resp;
		struct json_object *its;
		const char *next, *lrv;
		char *path = inf_page_path(inf, cont);

		if (!path) {
			rc = -ENOMEM;
			break;
		}
		rc = sl_client_request(inf->c, "GET", path, NULL, 0, NULL, inf->cancel, &resp);
		if (!rc && (resp.status < 200 || resp.status >= 300))
			rc = sl_client_status_err(resp.status, NULL);
		else if (!rc && !json_object_is_type(resp.json, json_type_object))
			rc = -SL_ERR_PARSE;
		if (rc) {
			if (rc != -ECANCELED)
				pr_warn(INF_SUBSYS, "'%s': list %s failed: %s", inf->resource, path,
					resp.err[0] ? resp.err : sl_strerror(rc));
			free(path);
			sl_client_resp_fini(&resp);
			break;
		}
		free(path);
		page = resp.json;
		resp.json = NULL;
		sl_client_resp_fini(&resp);
		its = sl_json_get(page, "items");
		for (size_t i = 0; its && json_object_is_type(its, json_type_array) &&
				   i < json_object_array_length(its);
		     i++) {
			struct json_object *it = json_object_array_get_idx(its, i);

			inf_fill_kind(it, sl_json_get_str(page, "kind"),
				      sl_json_get_str(page, "apiVersion"));
			if (keep) {
				json_object_array_add(items, json_object_get(it));
				continue;
			}
			if (stream) {
				/* Held until the page is freed, then handed over. */
				if (n_held == cap_held) {
					size_t cap = cap_held ? cap_held * 2 : 512;
					struct json_object **v = realloc(held, cap * sizeof(*v));

					if (!v) {
						rc = -ENOMEM;
						break;
					}
					held = v;
					cap_held = cap;
				}
				held[n_held++] = json_object_get(it);
				continue;
			}
			if (n_ents == cap_ents) {
				size_t cap = cap_ents ? cap_ents * 2 : 512;
				struct inf_entry **v = realloc(ents, cap * sizeof(*v));

				if (!v) {
					rc = -ENOMEM;
					break;
				}
				ents = v;
				cap_ents = cap;
			}
			ents[n_ents] = inf_item_entry(inf, it, n_ents);
			n_ents++;
		}
		if (rc) {
			json_object_put(page);
			page = NULL;
			break;
		}
		next = json_object_get_string(
			sl_json_path(page, "metadata", "continue", (char *)NULL));
		lrv = json_object_get_string(
			sl_json_path(page, "metadata", "resourceVersion", (char *)NULL));
		free(cont);
		cont = next && *next ? strdup(next) : NULL;
		free(rv);
		rv = lrv ? strdup(lrv) : NULL;
		json_object_put(page);
		page = NULL;
		pages++;
		/* The page's references are gone: each held item's only one is
		 * ours to hand over. */
		for (size_t i = 0; i < n_held; i++) {
			struct json_object *it = held[i];

			held[i] = NULL;
			if (!rc)
				rc = inf_stream_item(inf, it, n_streamed++);
			else
				json_object_put(it);
		}
		n_held = 0;
	} while (cont && !rc);

	if (!rc && (!rv || !*rv)) {
		pr_warn(INF_SUBSYS, "'%s': list reply has no metadata.resourceVersion",
			inf->resource);
		rc = -SL_ERR_PARSE;
	}
	if (!rc) {
		pr_debug(INF_SUBSYS,
			 "'%s': listed %zu objects in %d pages at rv %s%s (%zu queued as text)",
			 inf->resource,
			 keep	  ? json_object_array_length(items)
			 : stream ? n_streamed
				  : n_ents,
			 pages, rv, stream ? ", streamed" : "", inf->text_fallbacks);
		if (stream) {
			inf_set_rv(inf, rv);
		} else if (keep) {
			rc = sl_informer_replace(inf, items, rv);
		} else {
			rc = inf_replace_entries(inf, ents, n_ents, NULL, rv);
			ents = NULL; /* taken over */
			n_ents = 0;
		}
	}
	for (size_t i = 0; i < n_ents; i++)
		inf_entry_put(ents[i]);
	free(ents);
	for (size_t i = 0; i < n_held; i++)
		json_object_put(held[i]);
	free(held);
	free(cont);
	free(rv);
	json_object_put(items);
	return rc;
}

static int inf_watch_event(const struct sl_watch_event *ev, void *arg)
{
	struct sl_informer *inf = arg;
	const char *rv = json_object_get_string(
		sl_json_path(ev->object, "metadata", "resourceVersion", (char *)NULL));
	int64_t code = 0;
	int rc = 0;

	inf_count(inf, &inf->st.events);
	switch (ev->type) {
	case SL_WATCH_ADDED:
	case SL_WATCH_MODIFIED:
		rc = inf_upsert(inf, ev->object);
		break;
	case SL_WATCH_DELETED:
		rc = inf_remove(inf, ev->object);
		break;
	case SL_WATCH_BOOKMARK:
		break;
	case SL_WATCH_ERROR:
		sl_json_get_int(ev->object, "code", &code);
		pr_info(INF_SUBSYS, "'%s': watch error %lld: %s", inf->resource, (long long)code,
			sl_json_get_str(ev->object, "message") ?: "(no message)");
		return code == 410 ? INF_STOP_EXPIRED : INF_STOP_ERROR;
	}
	if (!rc)
		inf_set_rv(inf, rv);
	return rc;
}

/* One WATCH from the last RV. Returns what sl_client_watch returns. */
static int inf_watch(struct sl_informer *inf, long *status, uint64_t *events)
{
	struct sl_buf q = SL_BUF_INIT;
	char rv[64], tmo[16], err[320];
	unsigned int timeout_s = sl_backoff_rand(&inf->bo, inf->watch_min_s, inf->watch_max_s);
	uint64_t before;
	char *path;
	int rc;

	/* Both are read by the caller on every return, the ENOMEM one included. */
	*status = 0;
	*events = 0;
	pthread_mutex_lock(&inf->mu);
	snprintf(rv, sizeof(rv), "%s", inf->st.last_rv);
	before = inf->st.events;
	pthread_mutex_unlock(&inf->mu);
	snprintf(tmo, sizeof(tmo), "%u", timeout_s);
	sl_client_query_add(&q, "watch", "true");
	sl_client_query_add(&q, "allowWatchBookmarks", "true");
	sl_client_query_add(&q, "resourceVersion", rv);
	sl_client_query_add(&q, "timeoutSeconds", tmo);
	inf_selectors(inf, &q);
	path = q.oom ? NULL : sl_client_path(&inf->gvr, inf->ns, NULL, q.data);
	sl_buf_fini(&q);
	if (!path)
		return -ENOMEM;
	rc = sl_client_watch(inf->c, path, timeout_s + 60, inf_watch_event, inf, inf->cancel,
			     status, err, sizeof(err));
	if (rc < 0 && rc != -ECANCELED)
		pr_info(INF_SUBSYS, "'%s': %s", inf->resource, err);
	free(path);
	pthread_mutex_lock(&inf->mu);
	*events = inf->st.events - before;
	pthread_mutex_unlock(&inf->mu);
	return rc;
}

/*
 * QUEUE mode sets synced in the same critical section that queues the
 * on_synced event: a consumer may dispatch on_synced the moment it is
 * queued, and one that checks has_synced there (the agent's first sync
 * waits for every informer) must see true, or it waits for an event that
 * never comes; and wait_synced must not return before the marker is queued.
 * Setting it afterwards, a 10,000-Service agent start hung now and then with
 * every list taken in. THREAD mode runs on_synced first, then wakes waiters.
 */
static void inf_mark_synced(struct sl_informer *inf)
{
	struct inf_event *ev = NULL;

	if (inf->delivery == SL_INF_DELIVER_QUEUE)
		ev = calloc(1, sizeof(*ev));
	if (ev) {
		ev->kind = INF_SYNCED;
		inf_enqueue_ex(inf, ev, true);
		return;
	}
	/* THREAD mode; or out of memory, where the marker is lost as before. */
	inf_deliver(inf, INF_SYNCED, NULL, NULL, NULL);
	pthread_mutex_lock(&inf->mu);
	inf->synced = true;
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->mu);
}

static void *inf_thread(void *arg)
{
	struct sl_informer *inf = arg;
	bool listed = false, ever_listed = false, refused;
	uint64_t events = 0, t0;
	long status;
	int rc;

	while (!sl_cancel_fired(inf->cancel)) {
		if (!listed) {
			rc = inf_list(inf);
			if (rc == -ECANCELED)
				break;
			if (rc) {
				inf_count(inf, &inf->st.errors);
				sl_cancel_sleep(inf->cancel, sl_backoff_next(&inf->bo));
				continue;
			}
			listed = true;
			sl_backoff_reset(&inf->bo);
			inf_count(inf, &inf->st.lists);
			if (ever_listed)
				inf_count(inf, &inf->st.relists);
			else
				inf_mark_synced(inf);
			ever_listed = true;
		} else {
			inf_count(inf, &inf->st.watch_restarts);
		}

		t0 = inf_now_ms();
		rc = inf_watch(inf, &status, &events);
		if (rc == -ECANCELED || sl_cancel_fired(inf->cancel))
			break;
		/* A watch that carried events was a success, however it ended. */
		if (events)
			sl_backoff_reset(&inf->bo);
		if (rc == 0) {
			/* Normal end (timeoutSeconds). A server that closes at
			 * once, over and over, must not turn this into a spin. */
			if (events == 0 && inf_now_ms() - t0 < 1000)
				sl_cancel_sleep(inf->cancel, sl_backoff_next(&inf->bo));
			continue;
		}
		inf_count(inf, &inf->st.errors);
		if (rc == INF_STOP_EXPIRED || status == 410) {
			/* History compacted past our RV: only a relist can resync. */
			listed = false;
			continue;
		}
		/* Transport errors (refused, reset mid-stream), 429 and 503
		 * (overloaded, starting or shutting down) say nothing about our RV: retry the watch
		 * from it, like client-go does for refused connections and 429. Any other refusal
		 * or a corrupt stream may have lost events: resync by listing. */
		refused = status != 0 && (status < 200 || status >= 300);
		if (rc == INF_STOP_ERROR || rc == -SL_ERR_PARSE ||
		    (refused && status != 429 && status != 503))
			listed = false;
		sl_cancel_sleep(inf->cancel, sl_backoff_next(&inf->bo));
	}
	return NULL;
}

/* ---- lifecycle and queries ------------------------------------------- */

static char *inf_dup(const char *s, bool *oom)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

struct sl_informer *sl_informer_new(struct sl_client *c, const struct sl_informer_opts *o,
				    char *err, size_t errlen)
{
	struct sl_informer *inf;
	pthread_condattr_t ca;
	bool oom = false;

	if (err && errlen)
		err[0] = '\0';
	if (!c || !o || !o->gvr.version || !*o->gvr.version || !o->gvr.resource ||
	    !*o->gvr.resource) {
		if (err)
			snprintf(err, errlen, "informer needs a client, a version and a resource");
		errno = EINVAL;
		return NULL;
	}
	if (o->delivery != SL_INF_DELIVER_THREAD && o->delivery != SL_INF_DELIVER_QUEUE) {
		if (err)
			snprintf(err, errlen, "'%s': unknown delivery mode %d", o->gvr.resource,
				 (int)o->delivery);
		errno = EINVAL;
		return NULL;
	}
	if (o->cache != SL_INF_CACHE_OBJECTS && o->cache != SL_INF_CACHE_METADATA) {
		if (err)
			snprintf(err, errlen, "'%s': unknown cache mode %d", o->gvr.resource,
				 (int)o->cache);
		errno = EINVAL;
		return NULL;
	}
	if (o->watch_max_s && o->watch_max_s < o->watch_min_s) {
		if (err)
			snprintf(err, errlen, "'%s': watch_max_s < watch_min_s", o->gvr.resource);
		errno = EINVAL;
		return NULL;
	}
	/* Typed streaming needs a queue (the objects cross to the consumer's
	 * thread), a metadata cache (there is no text to keep) and a handler. */
	if (o->typed_kind != K8S_KIND_UNKNOWN &&
	    (!k8s_kind_name(o->typed_kind) || !o->handlers.on_add_typed ||
	     o->delivery != SL_INF_DELIVER_QUEUE || o->cache != SL_INF_CACHE_METADATA)) {
		if (err)
			snprintf(err, errlen,
				 "'%s': typed_kind needs a known kind, on_add_typed, QUEUE "
				 "delivery and a metadata cache",
				 o->gvr.resource);
		errno = EINVAL;
		return NULL;
	}
	inf = calloc(1, sizeof(*inf));
	if (!inf) {
		errno = ENOMEM;
		return NULL;
	}
	inf->efd = -1;
	inf->c = c;
	inf->group = strdup(o->gvr.group ? o->gvr.group : "");
	inf->version = strdup(o->gvr.version);
	inf->resource = strdup(o->gvr.resource);
	oom = !inf->group || !inf->version || !inf->resource;
	inf->ns = inf_dup(o->ns, &oom);
	inf->lsel = inf_dup(o->label_selector, &oom);
	inf->fsel = inf_dup(o->field_selector, &oom);
	inf->gvr = (struct sl_gvr){inf->group, inf->version, inf->resource};
	inf->delivery = o->delivery;
	inf->cache_meta = o->cache == SL_INF_CACHE_METADATA;
	inf->typed_kind = o->typed_kind;
	inf->h = o->handlers;
	inf->page_limit = o->page_limit ? o->page_limit : 500;
	inf->queue_objs_max = o->queue_objs_max ? o->queue_objs_max : INF_QUEUE_OBJS_MAX;
	inf->queue_wait_ms = o->queue_wait_ms;
	inf->watch_min_s = o->watch_min_s ? o->watch_min_s : 300;
	inf->watch_max_s = o->watch_max_s ? o->watch_max_s : 600;
	if (inf->watch_max_s < inf->watch_min_s)
		inf->watch_max_s = inf->watch_min_s;
	sl_backoff_init(&inf->bo, o->backoff_initial_ms ? o->backoff_initial_ms : 100,
			o->backoff_cap_ms ? o->backoff_cap_ms : 30000,
			(uint64_t)inf_now_ms() ^ (uint64_t)(uintptr_t)inf);
	pthread_rwlock_init(&inf->lock, NULL);
	pthread_mutex_init(&inf->mu, NULL);
	/* wait_synced computes deadlines on CLOCK_MONOTONIC. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&inf->cond, &ca);
	pthread_condattr_destroy(&ca);
	inf->cancel = sl_cancel_new();
	if (o->delivery == SL_INF_DELIVER_QUEUE)
		inf->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (oom || !inf->cancel || (o->delivery == SL_INF_DELIVER_QUEUE && inf->efd < 0)) {
		int e = oom || !inf->cancel ? ENOMEM : errno;

		sl_informer_free(inf);
		errno = e;
		return NULL;
	}
	return inf;
}

int sl_informer_start(struct sl_informer *inf)
{
	int rc;

	if (inf->running)
		return -EALREADY;
	sl_cancel_reset(inf->cancel);
	pthread_mutex_lock(&inf->mu);
	inf->stopping = false;
	pthread_mutex_unlock(&inf->mu);
	rc = pthread_create(&inf->thread, NULL, inf_thread, inf);
	if (rc)
		return -rc;
	inf->running = true;
	return 0;
}

void sl_informer_stop(struct sl_informer *inf)
{
	if (!inf)
		return;
	pthread_mutex_lock(&inf->mu);
	inf->stopping = true;
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->mu);
	if (!inf->running)
		return;
	sl_cancel_fire(inf->cancel);
	pthread_join(inf->thread, NULL);
	inf->running = false;
}

void sl_informer_free(struct sl_informer *inf)
{
	struct inf_event *ev;

	if (!inf)
		return;
	sl_informer_stop(inf);
	while ((ev = inf->qhead)) {
		inf->qhead = ev->next;
		json_object_put(ev->obj);
		k8s_obj_free(inf->typed_kind, ev->typed);
		inf_entry_put(ev->old);
		inf_entry_put(ev->cur);
		free(ev);
	}
	inf_map_fini(&inf->map);
	sl_cancel_free(inf->cancel);
	if (inf->efd >= 0)
		close(inf->efd);
	pthread_rwlock_destroy(&inf->lock);
	pthread_mutex_destroy(&inf->mu);
	pthread_cond_destroy(&inf->cond);
	free(inf->group);
	free(inf->version);
	free(inf->resource);
	free(inf->ns);
	free(inf->lsel);
	free(inf->fsel);
	free(inf);
}

bool sl_informer_has_synced(struct sl_informer *inf)
{
	bool s;

	pthread_mutex_lock(&inf->mu);
	s = inf->synced;
	pthread_mutex_unlock(&inf->mu);
	return s;
}

int sl_informer_wait_synced(struct sl_informer *inf, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&inf->mu);
	while (!inf->synced && !inf->stopping && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&inf->cond, &inf->mu);
		else if (pthread_cond_timedwait(&inf->cond, &inf->mu, &ts) == ETIMEDOUT)
			rc = -ETIMEDOUT;
	}
	if (!inf->synced && rc == 0)
		rc = -ECANCELED;
	if (inf->synced)
		rc = 0;
	pthread_mutex_unlock(&inf->mu);
	return rc;
}

struct json_object *sl_informer_get(struct sl_informer *inf, const char *ns, const char *name)
{
	struct inf_entry *e;
	struct json_object *o;
	char *key;

	if (!name) {
		errno = EINVAL;
		return NULL;
	}
	if (ns && *ns) {
		if (asprintf(&key, "%s/%s", ns, name) < 0)
			key = NULL; /* asprintf leaves it undefined on failure */
	} else {
		key = strdup(name);
	}
	if (!key) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_rwlock_rdlock(&inf->lock);
	e = inf_entry_get(inf_map_find(&inf->map, key));
	pthread_rwlock_unlock(&inf->lock);
	free(key);
	if (!e) {
		errno = ENOENT;
		return NULL;
	}
	/* Parse outside the lock: the entry is immutable and we hold a ref. */
	o = inf_entry_parse(e);
	inf_entry_put(e);
	if (!o)
		errno = ENOMEM;
	return o;
}

static int inf_entry_cmp(const void *a, const void *b)
{
	return strcmp((*(struct inf_entry *const *)a)->key, (*(struct inf_entry *const *)b)->key);
}

struct json_object *sl_informer_list(struct sl_informer *inf)
{
	struct inf_entry **v;
	struct json_object *arr;
	size_t n = 0;

	pthread_rwlock_rdlock(&inf->lock);
	v = calloc(inf->map.n ? inf->map.n : 1, sizeof(*v));
	for (size_t i = 0; v && i < inf->map.nb; i++)
		for (struct inf_node *nd = inf->map.b[i]; nd; nd = nd->next)
			v[n++] = inf_entry_get(nd->e);
	pthread_rwlock_unlock(&inf->lock);
	arr = v ? json_object_new_array_ext((int)n) : NULL;
	if (!arr) {
		for (size_t i = 0; v && i < n; i++)
			inf_entry_put(v[i]);
		free(v);
		errno = ENOMEM;
		return NULL;
	}
	qsort(v, n, sizeof(*v), inf_entry_cmp);
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = inf_entry_parse(v[i]);

		if (o)
			json_object_array_add(arr, o);
		inf_entry_put(v[i]);
	}
	free(v);
	return arr;
}

void sl_informer_stats(struct sl_informer *inf, struct sl_informer_stats *out)
{
	pthread_mutex_lock(&inf->mu);
	*out = inf->st;
	pthread_mutex_unlock(&inf->mu);
}
