/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The watch cache: every current object, pre-serialised, plus a ring of recent
 * events, fed from the store's commit path. get/list/watch are all served from
 * here (kube-apiserver's cacher over etcd3 storage, in one process).
 *
 * Objects are immutable and reference-counted once published: a list or a
 * watcher replay can hold them while writes replace them. Each object carries
 * its JSON (with metadata.resourceVersion set), its labels and the values of
 * the resource's selectable fields, so selector matching never re-parses.
 *
 * Single-threaded: owned by the server's event loop.
 */
#ifndef SLUICE_CONTROL_CACHE_H
#define SLUICE_CONTROL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "resource.h"
#include "sluice/selector.h"
#include "store.h"

struct cache_obj {
	unsigned refs;
	const struct api_resource *res;
	char *key;	  /* store key */
	const char *ns;	  /* "" for cluster-scoped; points into nsname */
	const char *name; /* points into nsname */
	char *nsname;	  /* "ns\0name\0" backing storage */
	char *json;	  /* serialised object, resourceVersion included */
	size_t len;
	int64_t mod_rev;
	int64_t create_rev;
	struct sl_label *labels; /* sorted by key; strings live in label_strs */
	size_t n_labels;
	char *label_strs;
	char **fields; /* values in api_resource_field_list(res) order */
	size_t n_fields;
	bool deleting; /* metadata.deletionTimestamp is set (clients cannot set it) */
};

struct cache_obj *cache_obj_ref(struct cache_obj *o);
void cache_obj_unref(struct cache_obj *o);
/* evbuffer_add_reference() cleanup: drops the reference taken for a reply or
 * watch event that points into o->json (arg is the object). */
void cache_obj_unref_cb(const void *data, size_t len, void *arg);
/* Parses o->json; caller owns the result (NULL on failure). */
struct json_object *cache_obj_parse(const struct cache_obj *o);
/* Value of a selectable field or NULL if unsupported. */
const char *cache_obj_field(const struct cache_obj *o, const char *field);

enum cache_ev_type {
	CACHE_ADDED,
	CACHE_MODIFIED,
	CACHE_DELETED,
	CACHE_BOOKMARK,
	CACHE_ERROR,
};
const char *cache_ev_name(enum cache_ev_type t);

struct cache_event {
	int64_t rev;
	enum cache_ev_type type;
	struct cache_obj *obj;	/* new state; for DELETED the last state at rev */
	struct cache_obj *prev; /* state before (NULL on create) */
};

struct cache_watcher;
/* Delivers one event to a watcher; returns 0, or -1 to have the watcher
 * stopped (the owner then calls cache_watch_stop). */
typedef int (*cache_watch_fn)(struct cache_watcher *w, enum cache_ev_type type,
			      struct cache_obj *obj, void *arg);

struct cache_watcher {
	const struct api_resource *res;
	char *ns;		  /* NULL = all namespaces */
	struct sl_labelsel *lsel; /* NULL = everything; owned */
	struct sl_fieldsel *fsel; /* NULL = everything; owned */
	cache_watch_fn fn;
	void *arg;
	int64_t rev; /* last revision delivered */
	bool active; /* linked into the cache */
	struct cache_watcher *prev_w, *next_w;
};

struct cache;

struct cache *cache_new(size_t ring_events);
void cache_free(struct cache *c);

/* Loads current objects and recent history from the store at startup. */
int cache_load(struct cache *c, struct store *s);

/* Folds one committed store event in (the store's event callback). hint may
 * be a json_object of the new value (without resourceVersion); the cache
 * sets the RV on it and serialises it instead of parsing the value bytes. */
void cache_apply(struct cache *c, const struct store_event *ev);

int64_t cache_rev(const struct cache *c);	 /* latest revision applied */
int64_t cache_oldest_rev(const struct cache *c); /* watches need from >= this-1 */

/* Borrowed object or NULL. */
struct cache_obj *cache_get(struct cache *c, const struct api_resource *r, const char *ns,
			    const char *name);

bool cache_match(const struct cache_watcher *filter, const struct cache_obj *o);

/*
 * Iterates current objects of r in key order, starting strictly after
 * `after_key` (NULL = from the start), filtered by ns/selectors in `filter`
 * (its fn is unused). fn returns 0 to continue, non-zero to stop.
 */
typedef int (*cache_list_fn)(struct cache_obj *o, void *arg);
void cache_list(struct cache *c, const struct cache_watcher *filter, const char *after_key,
		cache_list_fn fn, void *arg);
/* Number of current objects of r (all namespaces). */
size_t cache_count(struct cache *c, const struct api_resource *r);

/*
 * Starts a watch: replays history then links w for live events.
 *   initial = true:  synthetic ADDED for every current match, then changes
 *                    after the current revision (RV unset or "0");
 *   initial = false: every event with revision > from_rev.
 * Returns 0, or -SL_ERR_COMPACTED when from_rev is older than the ring.
 * Replay stops early (and returns -ECANCELED) if fn asks to stop.
 */
int cache_watch_start(struct cache *c, struct cache_watcher *w, bool initial, int64_t from_rev);
void cache_watch_stop(struct cache *c, struct cache_watcher *w);
size_t cache_watchers(const struct cache *c);

/* Memory accounting for /metrics and benchmarks. */
size_t cache_bytes(const struct cache *c);

#endif
