/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Informer: list + watch + local cache + handlers for one resource type, the
 * one way every Sluice component learns about Services, EndpointSlices, Pods,
 * Nodes and NetworkPolicies. It behaves like client-go's reflector:
 *
 *   LIST (limit=500, continue paging) → replace the cache, delivering
 *   add/update/delete for the differences to the previous cache → WATCH from
 *   the list's resourceVersion (allowWatchBookmarks=true, timeoutSeconds
 *   random in [5, 10] minutes) → when the stream ends, WATCH again from the
 *   last resourceVersion seen (bookmarks advance it) → an ERROR event with
 *   code 410 or an HTTP 410 re-lists at once; any other ERROR event, a
 *   corrupt stream or a non-2xx reply other than 429/503 re-lists after a
 *   back-off; connection errors, 429 and 503 back off (100 ms doubling to
 *   30 s, jittered) and retry the same step.
 *
 * Cache. Keys are "namespace/name" ("name" for cluster-scoped objects). The
 * cache holds each object serialised (json-c objects cannot be shared between
 * threads: their refcounts are not atomic), under a rwlock; sl_informer_get()
 * and sl_informer_list() parse a private copy the caller owns. The cache is
 * updated before the handlers of the same event run, so a handler that looks
 * something up sees at least that event's state.
 *
 * A consumer that keeps its own decoded copy of every object (the node agent)
 * can ask for a metadata-only cache (SL_INF_CACHE_METADATA): the cache then
 * holds each object's key and resourceVersion only, enough to diff a relist,
 * and the JSON text lives only until its event has been delivered. In that
 * mode sl_informer_get() and sl_informer_list() return metadata stubs
 * ({"metadata":{"namespace","name","resourceVersion"}}), and so are the
 * old_obj of on_update and the object of an on_delete that a relist found
 * vanished; on_add, the new_obj of on_update and watch DELETED events still
 * carry the whole object.
 *
 * Delivery. Handlers run serially, in event order, in one of two places
 * chosen at creation:
 *   - SL_INF_DELIVER_THREAD: on the informer's own thread, as events arrive.
 *   - SL_INF_DELIVER_QUEUE: for single-threaded event-loop consumers (DNS
 *     server, agent). Events are queued; sl_informer_fd() returns an eventfd
 *     that is readable while events are queued; the loop polls it and calls
 *     sl_informer_dispatch(), which runs the handlers on the caller's thread.
 *     The queue is unbounded: a consumer that stops dispatching grows it.
 * Objects passed to handlers are borrowed and valid only during the call
 * (take json_object_get() to keep one, on that same thread).
 *
 * Relist semantics: after a relist, objects whose resourceVersion is
 * unchanged get no callback; changed ones get on_update(old, new); vanished
 * ones get on_delete(last known state). Deletes are delivered before adds
 * and updates. A DELETED event for a key the cache does not hold is dropped.
 * In QUEUE mode a list into an empty cache (the first one) is streamed: each
 * page's items are cached and queued as soon as that page has been parsed,
 * handed over as parsed objects (or typed ones: opts.typed_kind below; up to
 * queue_objs_max waiting at once; then
 * the list pauses for up to queue_wait_ms in all for the consumer to make
 * room, and the rest is queued as text), so the consumer decodes while the
 * rest of the list is on the wire; on_synced
 * still comes after the last item. A list that fails part way leaves the
 * items already queued cached, and the next list diffs against them.
 *
 * Synced: sl_informer_has_synced() is true once the first full list has been
 * applied to the cache and its handlers have run (THREAD) or been queued
 * (QUEUE). on_synced runs once, right after the first list's events, in
 * event order (so in QUEUE mode from sl_informer_dispatch()).
 */
#ifndef SLUICE_INFORMER_H
#define SLUICE_INFORMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sluice/client.h"
#include "sluice/k8s.h"

struct sl_informer;

struct sl_informer_handlers {
	void (*on_add)(struct json_object *obj, void *arg);
	void (*on_update)(struct json_object *old_obj, struct json_object *new_obj, void *arg);
	void (*on_delete)(struct json_object *obj, void *arg);
	void (*on_synced)(void *arg);
	void *arg;
	/* Typed streaming (opts.typed_kind): an object of the first list, added
	 * or updated, already decoded; the handler owns it (k8s_obj_free). */
	void (*on_add_typed)(void *obj, void *arg);
};

enum sl_inf_cache {
	SL_INF_CACHE_OBJECTS = 0, /* the whole object (default) */
	SL_INF_CACHE_METADATA,	  /* key and resourceVersion only (see above) */
};

enum sl_inf_delivery {
	SL_INF_DELIVER_THREAD, /* handlers on the informer thread */
	SL_INF_DELIVER_QUEUE,  /* handlers from sl_informer_dispatch() on the caller's thread */
};

struct sl_informer_opts {
	struct sl_gvr gvr;	    /* which resource */
	const char *ns;		    /* namespace, NULL or "" = all namespaces */
	const char *label_selector; /* NULL = everything */
	const char *field_selector; /* NULL = everything */
	enum sl_inf_delivery delivery;
	enum sl_inf_cache cache;
	struct sl_informer_handlers handlers;
	/* Tunables; 0 = default. */
	unsigned int page_limit;	 /* list page size; default 500 */
	unsigned int watch_min_s;	 /* watch timeoutSeconds drawn from [min, max]; */
	unsigned int watch_max_s;	 /*   default [300, 600] */
	unsigned int backoff_initial_ms; /* default 100 */
	unsigned int backoff_cap_ms;	 /* default 30000 */
	unsigned int queue_objs_max;	 /* QUEUE: parsed list items queued at once
					  * before the rest go as text; default 1024 */
	unsigned int queue_wait_ms;	 /* QUEUE: how long in all a list may pause
					  * for room before that; default 0. Pausing
					  * delays synced (and wait_synced) until the
					  * consumer dispatches: only for consumers
					  * that dispatch while they wait for it */
	/*
	 * QUEUE delivery with a metadata-only cache, and on_add_typed set: the
	 * streamed first list is fetched as text and each item is decoded
	 * straight into the typed struct of this kind (k8s_obj_decode_text) on
	 * the informer's thread, so the consumer's thread neither parses nor
	 * decodes it and no json-c tree is built. Items that do not decode (or
	 * have no name) go to on_add as parsed objects, so the consumer reports
	 * them as it does any malformed object. Later lists and watch events are
	 * delivered as usual. K8S_KIND_UNKNOWN (0) = off. The list's objects
	 * share slabs (k8s_text_run): free them (k8s_obj_free, any thread) once
	 * read, as the agent does; one kept keeps its 256 KiB slab.
	 */
	enum k8s_kind typed_kind;
};

/* Counters for /metrics; read with sl_informer_stats(). */
struct sl_informer_stats {
	uint64_t lists;		 /* completed full lists (the first one included) */
	uint64_t relists;	 /* lists after the first */
	uint64_t watch_restarts; /* watches started after the first of each list */
	uint64_t events;	 /* watch events received (bookmarks and errors too) */
	uint64_t errors;	 /* failed list/watch attempts */
	uint64_t objects;	 /* objects in the cache now */
	uint64_t queued;	 /* QUEUE mode: events waiting for dispatch */
	char last_rv[64];	 /* last resourceVersion seen ("" before the first list) */
};

/*
 * Creates a stopped informer. The client is borrowed and must outlive the
 * informer; strings in opts are copied. Returns NULL with errno (EINVAL with
 * a message in err for bad options, ENOMEM).
 */
struct sl_informer *sl_informer_new(struct sl_client *c, const struct sl_informer_opts *opts,
				    char *err, size_t errlen);

/* Starts the informer thread. Returns 0, -EALREADY, or -errno from pthread. */
int sl_informer_start(struct sl_informer *inf);

/*
 * Stops the thread: interrupts a blocked list, watch or back-off sleep within
 * milliseconds and joins it. Safe to call twice or on a never-started
 * informer. Must not be called from a handler. Queued events stay queued.
 */
void sl_informer_stop(struct sl_informer *inf);

/* Stops (if needed) and frees. NULL is fine. */
void sl_informer_free(struct sl_informer *inf);

bool sl_informer_has_synced(struct sl_informer *inf);

/*
 * Waits until synced: 0, -ETIMEDOUT, or -ECANCELED if the informer is or
 * gets stopped. timeout_ms < 0 waits forever. In QUEUE mode synced means
 * "listed and queued", so waiting never depends on dispatching.
 */
int sl_informer_wait_synced(struct sl_informer *inf, int timeout_ms);

/*
 * Returns a private copy of the cached object (caller puts it), or NULL with
 * errno ENOENT. ns NULL/"" for cluster-scoped objects. Thread-safe.
 */
struct json_object *sl_informer_get(struct sl_informer *inf, const char *ns, const char *name);

/* All cached objects as a new JSON array sorted by key (caller puts it). */
struct json_object *sl_informer_list(struct sl_informer *inf);

/* QUEUE mode: the eventfd to poll for readability (owned by the informer);
 * -1 in THREAD mode. */
int sl_informer_fd(struct sl_informer *inf);

/*
 * QUEUE mode: runs handlers for up to max queued events (0 = all queued now)
 * on the caller's thread. Returns the number of events delivered. Call it
 * from one thread only. The eventfd stays readable while events remain.
 */
int sl_informer_dispatch(struct sl_informer *inf, unsigned int max);

void sl_informer_stats(struct sl_informer *inf, struct sl_informer_stats *out);

/*
 * The relist step, exposed so it can be tested without a server: replaces
 * the cache with `items` (a JSON array of objects, borrowed) as a LIST would,
 * delivering the differences. Only for a stopped informer.
 */
int sl_informer_replace(struct sl_informer *inf, struct json_object *items, const char *rv);

#endif
