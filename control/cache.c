// SPDX-License-Identifier: Apache-2.0
/*
 * Watch cache. Per resource: a key-sorted array of current objects (binary
 * search for get, a contiguous range for a namespace, in-order iteration for
 * list/continue) and a list of watchers. Globally: a ring of the most recent
 * events for watch resumption; a resume point older than the ring is 410.
 *
 * Event fan-out happens here, synchronously from the store's dispatch, so the
 * delay from commit to delivery is one loop iteration. Each event's JSON was
 * serialised once; watchers only decide whether it matches their filter and
 * which type it has for them (an update that moves an object out of a
 * watcher's selector is a DELETED for that watcher, into it an ADDED, as
 * kube-apiserver does).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"

/* Upper bound on the bytes of history the event ring keeps alive. */
#define CACHE_RING_MAX_BYTES ((size_t)256 << 20)

struct res_index {
	struct cache_obj **v; /* sorted by key */
	size_t n, cap;
	struct cache_watcher *watchers;
	size_t n_watchers;
};

struct cache {
	struct res_index *idx; /* one per api_resources[] row */
	struct cache_event *ring;
	size_t ring_cap;
	size_t ring_head; /* index of the oldest event */
	size_t ring_n;
	int64_t rev;	    /* latest revision applied */
	int64_t oldest_rev; /* history is complete for revisions > oldest_rev */
	size_t ring_bytes;  /* JSON bytes the ring keeps alive (new + prev states) */
	size_t bytes;	    /* JSON bytes of current objects */
	size_t n_watchers;
};

/* --- objects ---------------------------------------------------------------- */

struct cache_obj *cache_obj_ref(struct cache_obj *o)
{
	if (o)
		o->refs++;
	return o;
}

void cache_obj_unref(struct cache_obj *o)
{
	if (!o || --o->refs)
		return;
	free(o->key);
	free(o->nsname);
	free(o->json);
	free(o->labels);
	free(o->label_strs);
	if (o->fields) {
		for (size_t i = 0; i < o->n_fields; i++)
			free(o->fields[i]);
		free(o->fields);
	}
	free(o);
}

void cache_obj_unref_cb(const void *data, size_t len, void *arg)
{
	cache_obj_unref(arg);
}

struct json_object *cache_obj_parse(const struct cache_obj *o)
{
	return sl_json_parse(o->json, o->len, NULL, 0);
}

const char *cache_obj_field(const struct cache_obj *o, const char *field)
{
	const char *const *list = api_resource_field_list(o->res);

	for (size_t i = 0; list && list[i] && i < o->n_fields; i++)
		if (!strcmp(list[i], field))
			return o->fields[i];
	return NULL;
}

const char *cache_ev_name(enum cache_ev_type t)
{
	static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
	return t <= CACHE_ERROR ? names[t] : "ERROR";
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sl_label *)a)->key, ((const struct sl_label *)b)->key);
}

/* Takes ownership of nothing; obj gets its resourceVersion set. */
static struct cache_obj *obj_build(const struct api_resource *r, const char *key,
				   struct json_object *obj, int64_t mod_rev, int64_t create_rev)
{
	struct cache_obj *o = calloc(1, sizeof(*o));
	struct json_object *meta, *labels;
	const char *ns, *name;
	const char *const *fields;
	char rv[24];
	size_t len, nslen, namelen, total = 0;

	if (!o)
		return NULL;
	o->refs = 1;
	o->res = r;
	o->mod_rev = mod_rev;
	o->create_rev = create_rev;
	o->key = strdup(key);
	meta = sl_json_ensure_obj(obj, "metadata");
	if (!o->key || !meta)
		goto fail;
	snprintf(rv, sizeof(rv), "%" PRId64, mod_rev);
	if (sl_json_set_str(meta, "resourceVersion", rv))
		goto fail;

	ns = sl_json_get_str(meta, "namespace");
	name = sl_json_get_str(meta, "name");
	ns = ns ? ns : "";
	name = name ? name : "";
	nslen = strlen(ns);
	namelen = strlen(name);
	o->nsname = malloc(nslen + namelen + 2);
	if (!o->nsname)
		goto fail;
	memcpy(o->nsname, ns, nslen + 1);
	memcpy(o->nsname + nslen + 1, name, namelen + 1);
	o->ns = o->nsname;
	o->name = o->nsname + nslen + 1;

	o->deleting = sl_json_get(meta, "deletionTimestamp") != NULL;
	labels = sl_json_get(meta, "labels");
	if (labels && json_object_is_type(labels, json_type_object)) {
		size_t n = 0;
		char *p;
		json_object_object_foreach(labels, k, v)
		{
			if (json_object_is_type(v, json_type_string)) {
				total += strlen(k) + strlen(json_object_get_string(v)) + 2;
				n++;
			}
		}
		if (n) {
			o->labels = calloc(n, sizeof(*o->labels));
			o->label_strs = malloc(total);
			if (!o->labels || !o->label_strs)
				goto fail;
			p = o->label_strs;
			json_object_object_foreach(labels, k2, v2)
			{
				const char *val;
				if (!json_object_is_type(v2, json_type_string))
					continue;
				val = json_object_get_string(v2);
				o->labels[o->n_labels].key = p;
				p = stpcpy(p, k2) + 1;
				o->labels[o->n_labels].value = p;
				p = stpcpy(p, val) + 1;
				o->n_labels++;
			}
			qsort(o->labels, o->n_labels, sizeof(*o->labels), label_cmp);
		}
	}

	fields = api_resource_field_list(r);
	while (fields && fields[o->n_fields])
		o->n_fields++;
	if (o->n_fields) {
		o->fields = calloc(o->n_fields, sizeof(char *));
		if (!o->fields)
			goto fail;
		for (size_t i = 0; i < o->n_fields; i++) {
			const char *v = api_resource_field(r, obj, fields[i]);
			o->fields[i] = strdup(v ? v : "");
			if (!o->fields[i])
				goto fail;
		}
	}

	const char *s = sl_json_str(obj, &len);
	o->json = malloc(len + 1);
	if (!o->json)
		goto fail;
	memcpy(o->json, s, len + 1);
	o->len = len;
	return o;
fail:
	cache_obj_unref(o);
	return NULL;
}

/* --- index ------------------------------------------------------------------ */

/* Position of key in idx, or where it would be inserted (*found = false). */
static size_t idx_find(const struct res_index *idx, const char *key, bool *found)
{
	size_t lo = 0, hi = idx->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(idx->v[mid]->key, key);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* Installs o (reference taken over) in place of any object with its key;
 * returns the previous object (reference handed to the caller) or NULL. */
static struct cache_obj *idx_put(struct cache *c, struct res_index *idx, struct cache_obj *o)
{
	bool found;
	size_t pos = idx_find(idx, o->key, &found);
	struct cache_obj *old;

	if (found) {
		old = idx->v[pos];
		idx->v[pos] = o;
		c->bytes += o->len;
		c->bytes -= old->len;
		return old;
	}
	if (idx->n == idx->cap) {
		size_t cap = idx->cap ? idx->cap * 2 : 64;
		struct cache_obj **v = realloc(idx->v, cap * sizeof(struct cache_obj *));
		if (!v) {
			/* Keep serving: the object is dropped from the cache and the
			 * failure is loud; a restart reloads from the store. */
			pr_err("cache", "'%s': out of memory growing index", o->key);
			cache_obj_unref(o);
			return NULL;
		}
		idx->v = v;
		idx->cap = cap;
	}
	memmove(&idx->v[pos + 1], &idx->v[pos], (idx->n - pos) * sizeof(struct cache_obj *));
	idx->v[pos] = o;
	idx->n++;
	c->bytes += o->len;
	return NULL;
}

static struct cache_obj *idx_del(struct cache *c, struct res_index *idx, const char *key)
{
	bool found;
	size_t pos = idx_find(idx, key, &found);
	struct cache_obj *old;

	if (!found)
		return NULL;
	old = idx->v[pos];
	memmove(&idx->v[pos], &idx->v[pos + 1], (idx->n - pos - 1) * sizeof(struct cache_obj *));
	idx->n--;
	c->bytes -= old->len;
	return old;
}

/* --- lifecycle -------------------------------------------------------------- */

struct cache *cache_new(size_t ring_events)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->idx = calloc(api_resources_n, sizeof(*c->idx));
	c->ring_cap = ring_events ? ring_events : 10000;
	c->ring = calloc(c->ring_cap, sizeof(*c->ring));
	if (!c->idx || !c->ring) {
		cache_free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

static void ring_drop_oldest(struct cache *c)
{
	struct cache_event *e = &c->ring[c->ring_head];

	c->oldest_rev = e->rev;
	c->ring_bytes -= (e->obj ? e->obj->len : 0) + (e->prev ? e->prev->len : 0);
	cache_obj_unref(e->obj);
	cache_obj_unref(e->prev);
	memset(e, 0, sizeof(*e));
	c->ring_head = (c->ring_head + 1) % c->ring_cap;
	c->ring_n--;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	while (c->ring && c->ring_n)
		ring_drop_oldest(c);
	free(c->ring);
	for (size_t i = 0; c->idx && i < api_resources_n; i++) {
		struct res_index *idx = &c->idx[i];
		for (size_t j = 0; j < idx->n; j++)
			cache_obj_unref(idx->v[j]);
		free(idx->v);
		/* Watchers belong to their owners; just unlink them. */
		for (struct cache_watcher *w = idx->watchers; w; w = w->next_w)
			w->active = false;
	}
	free(c->idx);
	free(c);
}

int64_t cache_rev(const struct cache *c)
{
	return c->rev;
}

int64_t cache_oldest_rev(const struct cache *c)
{
	return c->oldest_rev;
}

size_t cache_bytes(const struct cache *c)
{
	size_t objs = 0;

	for (size_t i = 0; i < api_resources_n; i++)
		objs += c->idx[i].n;
	return c->bytes + objs * (sizeof(struct cache_obj) + 128) +
	       c->ring_cap * sizeof(struct cache_event);
}

size_t cache_watchers(const struct cache *c)
{
	return c->n_watchers;
}

size_t cache_count(struct cache *c, const struct api_resource *r)
{
	return c->idx[api_resource_index(r)].n;
}

/* --- matching --------------------------------------------------------------- */

static const char *obj_field_get(const char *field, void *arg)
{
	return cache_obj_field(arg, field);
}

bool cache_match(const struct cache_watcher *f, const struct cache_obj *o)
{
	if (!o || o->res != f->res)
		return false;
	if (f->ns && strcmp(f->ns, o->ns))
		return false;
	if (f->lsel && !sl_labelsel_match(f->lsel, o->labels, o->n_labels))
		return false;
	if (f->fsel && !sl_fieldsel_match(f->fsel, obj_field_get, (void *)o))
		return false;
	return true;
}

struct cache_obj *cache_get(struct cache *c, const struct api_resource *r, const char *ns,
			    const char *name)
{
	char key[512];
	bool found;
	size_t pos;

	if (api_resource_key(r, ns, name, key, sizeof(key)))
		return NULL;
	pos = idx_find(&c->idx[api_resource_index(r)], key, &found);
	return found ? c->idx[api_resource_index(r)].v[pos] : NULL;
}

void cache_list(struct cache *c, const struct cache_watcher *filter, const char *after_key,
		cache_list_fn fn, void *arg)
{
	struct res_index *idx = &c->idx[api_resource_index(filter->res)];
	char prefix[512];
	size_t pos = 0, plen;
	bool found;

	if (api_resource_prefix(filter->res, filter->ns, prefix, sizeof(prefix)))
		return;
	plen = strlen(prefix);
	if (after_key && strncmp(after_key, prefix, plen) >= 0) {
		pos = idx_find(idx, after_key, &found);
		if (found)
			pos++;
	} else {
		pos = idx_find(idx, prefix, &found);
	}
	for (; pos < idx->n; pos++) {
		struct cache_obj *o = idx->v[pos];
		if (strncmp(o->key, prefix, plen))
			break;
		if (!cache_match(filter, o))
			continue;
		if (fn(o, arg))
			break;
	}
}

/* --- events ----------------------------------------------------------------- */

static void ring_push(struct cache *c, int64_t rev, enum cache_ev_type type, struct cache_obj *obj,
		      struct cache_obj *prev)
{
	struct cache_event *e;

	if (c->ring_n == c->ring_cap)
		ring_drop_oldest(c);
	/* History is bounded in bytes as well as events: a client rewriting a
	 * 3 MiB object must not pin ring_cap copies of it. */
	while (c->ring_n &&
	       c->ring_bytes + obj->len + (prev ? prev->len : 0) > CACHE_RING_MAX_BYTES)
		ring_drop_oldest(c);
	e = &c->ring[(c->ring_head + c->ring_n) % c->ring_cap];
	c->ring_bytes += obj->len + (prev ? prev->len : 0);
	e->rev = rev;
	e->type = type;
	e->obj = cache_obj_ref(obj);
	e->prev = cache_obj_ref(prev);
	c->ring_n++;
}

/* The event type a watcher with this filter sees, or -1 for none. */
static int event_for(const struct cache_watcher *w, enum cache_ev_type type,
		     const struct cache_obj *obj, const struct cache_obj *prev)
{
	bool cur_ok, prev_ok;

	if (type == CACHE_DELETED)
		return cache_match(w, obj) ? CACHE_DELETED : -1;
	cur_ok = cache_match(w, obj);
	prev_ok = prev && cache_match(w, prev);
	if (cur_ok && prev_ok)
		return CACHE_MODIFIED;
	if (cur_ok)
		return CACHE_ADDED;
	if (prev_ok)
		return CACHE_DELETED;
	return -1;
}

/*
 * The object a watcher that the object just left (by a label or field change)
 * is shown: kube-apiserver sends the previous state, stamped with the event's
 * revision, so the client's last-seen resourceVersion still advances. Built
 * at most once per event, and only when some watcher needs it.
 */
static struct cache_obj *leave_obj(struct cache_obj **slot, struct cache_obj *prev, int64_t rev)
{
	struct json_object *obj;

	/* cppcheck's identicalInnerCondition here is a false positive: the
	 * pointer is returned, not tested again. */
	if (*slot)
		return *slot; // cppcheck-suppress identicalInnerCondition
	obj = cache_obj_parse(prev);
	if (obj) {
		*slot = obj_build(prev->res, prev->key, obj, rev, prev->create_rev);
		json_object_put(obj);
	}
	return *slot ? *slot : prev;
}

/* Delivers one event to one watcher with the type it should see; returns the
 * callback's verdict (non-zero: stop this watcher). */
static int deliver(struct cache_watcher *w, int64_t rev, enum cache_ev_type type,
		   struct cache_obj *obj, struct cache_obj *prev, struct cache_obj **leave)
{
	int t = event_for(w, type, obj, prev);

	if (t < 0)
		return 0;
	if (t == CACHE_DELETED && type != CACHE_DELETED)
		return w->fn(w, CACHE_DELETED, leave_obj(leave, prev, rev), w->arg);
	return w->fn(w, (enum cache_ev_type)t, obj, w->arg);
}

static void fanout(struct cache *c, struct res_index *idx, int64_t rev, enum cache_ev_type type,
		   struct cache_obj *obj, struct cache_obj *prev)
{
	struct cache_watcher *w, *next;
	struct cache_obj *leave = NULL;

	for (w = idx->watchers; w; w = next) {
		next = w->next_w;
		if (rev <= w->rev)
			continue;
		w->rev = rev;
		/* The callback may stop this watcher (and only this one). */
		if (deliver(w, rev, type, obj, prev, &leave))
			cache_watch_stop(c, w);
	}
	cache_obj_unref(leave);
}

static struct cache_obj *obj_from_kv(const struct api_resource *r, const struct store_kv *kv,
				     struct json_object *hint, int64_t rev)
{
	struct json_object *obj =
		hint ? json_object_get(hint) : sl_json_parse(kv->value, kv->value_len, NULL, 0);
	struct cache_obj *o;

	if (!obj) {
		pr_err("cache", "'%s': stored value is not valid JSON; skipped", kv->key);
		return NULL;
	}
	o = obj_build(r, kv->key, obj, rev, kv->create_rev);
	json_object_put(obj);
	return o;
}

void cache_apply(struct cache *c, const struct store_event *ev)
{
	char *keycopy = strdup(ev->kv->key);
	char *ns, *name;
	const struct api_resource *r = keycopy ? api_resource_from_key(keycopy, &ns, &name) : NULL;
	struct res_index *idx;
	struct cache_obj *o, *old;
	int64_t rev = ev->kv->mod_rev;

	free(keycopy);
	if (rev > c->rev)
		c->rev = rev;
	if (!r) {
		pr_debug("cache", "'%s': not an API object key; ignored", ev->kv->key);
		return;
	}
	idx = &c->idx[api_resource_index(r)];
	o = obj_from_kv(r, ev->kv, ev->hint, rev);
	if (!o)
		return;
	if (ev->type == STORE_EV_DELETE) {
		old = idx_del(c, idx, ev->kv->key);
		ring_push(c, rev, CACHE_DELETED, o, old);
		fanout(c, idx, rev, CACHE_DELETED, o, old);
	} else {
		old = idx_put(c, idx, cache_obj_ref(o));
		ring_push(c, rev, old ? CACHE_MODIFIED : CACHE_ADDED, o, old);
		fanout(c, idx, rev, old ? CACHE_MODIFIED : CACHE_ADDED, o, old);
	}
	cache_obj_unref(old);
	cache_obj_unref(o);
}

static int load_kv(const struct store_kv *kv, void *arg)
{
	struct cache *c = arg;
	char *keycopy = strdup(kv->key);
	char *ns, *name;
	const struct api_resource *r = keycopy ? api_resource_from_key(keycopy, &ns, &name) : NULL;
	struct cache_obj *o;

	free(keycopy);
	if (!r)
		return 0;
	o = obj_from_kv(r, kv, NULL, kv->mod_rev);
	if (o)
		cache_obj_unref(idx_put(c, &c->idx[api_resource_index(r)], o));
	return 0;
}

static void load_event(const struct store_event *ev, void *arg)
{
	struct cache *c = arg;
	char *keycopy = strdup(ev->kv->key);
	char *ns, *name;
	const struct api_resource *r = keycopy ? api_resource_from_key(keycopy, &ns, &name) : NULL;
	struct cache_obj *o, *p = NULL;

	free(keycopy);
	if (!r)
		return;
	o = obj_from_kv(r, ev->kv, NULL, ev->kv->mod_rev);
	if (ev->prev && ev->prev->value)
		p = obj_from_kv(r, ev->prev, NULL, ev->prev->mod_rev);
	if (o)
		ring_push(c, ev->kv->mod_rev,
			  ev->type == STORE_EV_DELETE ? CACHE_DELETED
			  : p			      ? CACHE_MODIFIED
						      : CACHE_ADDED,
			  o, p);
	cache_obj_unref(o);
	cache_obj_unref(p);
}

int cache_load(struct cache *c, struct store *s)
{
	int64_t rev = 0, from;
	int err;

	err = store_range(s, "/", load_kv, c, &rev);
	if (err)
		return err;
	c->rev = rev;
	/* Recent history, so clients that watched the previous process can
	 * resume without a relist. */
	from = rev > (int64_t)c->ring_cap ? rev - (int64_t)c->ring_cap : 0;
	if (from < store_compact_rev(s))
		from = store_compact_rev(s);
	c->oldest_rev = from;
	err = store_log_read(s, from, load_event, c);
	if (err == -SL_ERR_COMPACTED) {
		c->oldest_rev = rev;
		err = 0;
	}
	if (c->ring_n && c->ring[c->ring_head].rev - 1 > c->oldest_rev)
		c->oldest_rev = c->ring[c->ring_head].rev - 1;
	return err;
}

/* --- watch ------------------------------------------------------------------ */

struct replay_ctx {
	struct cache_watcher *w;
	bool stopped;
};

static int replay_initial(struct cache_obj *o, void *arg)
{
	struct replay_ctx *rc = arg;

	if (rc->w->fn(rc->w, CACHE_ADDED, o, rc->w->arg)) {
		rc->stopped = true;
		return 1;
	}
	return 0;
}

int cache_watch_start(struct cache *c, struct cache_watcher *w, bool initial, int64_t from_rev)
{
	struct res_index *idx = &c->idx[api_resource_index(w->res)];
	struct replay_ctx rc = {.w = w};

	if (initial) {
		cache_list(c, w, NULL, replay_initial, &rc);
		w->rev = c->rev;
	} else {
		if (from_rev < c->oldest_rev)
			return -SL_ERR_COMPACTED;
		w->rev = from_rev;
		for (size_t i = 0; i < c->ring_n && !rc.stopped; i++) {
			struct cache_event *e = &c->ring[(c->ring_head + i) % c->ring_cap];
			struct cache_obj *leave = NULL;
			if (e->rev <= from_rev || e->obj->res != w->res)
				continue;
			if (deliver(w, e->rev, e->type, e->obj, e->prev, &leave))
				rc.stopped = true;
			cache_obj_unref(leave);
			w->rev = e->rev;
		}
		if (w->rev < c->rev && from_rev <= c->rev)
			w->rev = c->rev;
	}
	if (rc.stopped)
		return -ECANCELED;
	w->prev_w = NULL;
	w->next_w = idx->watchers;
	if (idx->watchers)
		idx->watchers->prev_w = w;
	idx->watchers = w;
	idx->n_watchers++;
	c->n_watchers++;
	w->active = true;
	return 0;
}

void cache_watch_stop(struct cache *c, struct cache_watcher *w)
{
	struct res_index *idx;

	if (!w || !w->active)
		return;
	idx = &c->idx[api_resource_index(w->res)];
	if (w->prev_w)
		w->prev_w->next_w = w->next_w;
	else
		idx->watchers = w->next_w;
	if (w->next_w)
		w->next_w->prev_w = w->prev_w;
	w->prev_w = w->next_w = NULL;
	w->active = false;
	idx->n_watchers--;
	c->n_watchers--;
}
