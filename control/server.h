/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal structure of the API server, shared by server.c (HTTP plumbing,
 * routing, lifecycle), handlers.c (CRUD), watch.c (watch streams),
 * discovery.c (discovery, OpenAPI, Table), metrics.c.
 */
#ifndef SLUICE_CONTROL_SERVER_H
#define SLUICE_CONTROL_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "alloc.h"
#include "cache.h"
#include "causes.h"
#include "control.h"
#include "resource.h"
#include "sluice/buf.h"
#include "store.h"

#define API_MAX_BODY (3u << 20) /* kube-apiserver's request body limit */

enum api_verb {
	VERB_GET,
	VERB_LIST,
	VERB_WATCH,
	VERB_CREATE,
	VERB_UPDATE,
	VERB_PATCH,
	VERB_DELETE,
	VERB_DELETECOLLECTION,
	VERB_OTHER, /* discovery, health, metrics */
	VERB_N,
};

struct ctl;
struct metrics;
struct watch_stream;
struct wchunk;

/* A framed watch event shared by the watchers of one fan-out (watch.c). */
struct watch_chunk_slot {
	const struct cache_obj *obj;
	int64_t rev;
	enum cache_ev_type type;
	struct wchunk *c;
};

struct token {
	char *token;
	char *user;
};

struct server {
	struct control_config cfg;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	int port;
	struct store *store;
	struct event *store_ev;
	struct cache *cache;
	struct ipalloc *svc_ips;
	struct portalloc *node_ports;
	struct token *tokens;
	size_t n_tokens;
	struct metrics *metrics;
	struct event *sig_term, *sig_int, *tick;
	struct watch_stream *watches;	   /* all open watch streams */
	struct watch_chunk_slot chunks[4]; /* most recent framed events (an event
					      yields at most a few distinct ones) */
	unsigned chunk_next;
	unsigned pending_writes;
	bool shutting_down;
	time_t shutdown_deadline; /* give up waiting for in-flight writes */
	bool ready;		  /* bootstrap objects exist */
	struct ctl *ctl;	  /* controller threads (ctl.h), NULL when none run */
	time_t started;
};

/* One API request in flight (for writes it lives until the store answers). */
struct api_req {
	struct server *srv;
	struct evhttp_request *req;
	enum api_verb verb;
	const struct api_resource *res; /* NULL for non-resource paths */
	char ns[256];
	char name[256];
	char sub[32]; /* subresource: "status", "binding", or "" */
	struct evkeyvalq query;
	bool query_parsed;
	bool table;	     /* Accept asks for as=Table */
	bool partial_meta;   /* Table rows carry PartialObjectMetadata (default) */
	bool include_object; /* includeObject=Object */
	bool include_none;   /* includeObject=None */
	struct timespec start;
};

/* --- server.c ---------------------------------------------------------------- */
const char *api_query(struct api_req *ar, const char *key);
void api_reply_json(struct api_req *ar, int code, const char *body, size_t len);
void api_reply_obj(struct api_req *ar, int code, struct json_object *obj); /* consumes obj */
struct evbuffer;
void api_reply_evbuf(struct api_req *ar, int code, struct evbuffer *body); /* consumes body */
/* Kubernetes Status error. details may be NULL; it is consumed. */
void api_reply_status(struct api_req *ar, int code, const char *reason, const char *msg,
		      struct json_object *details);
void api_reply_invalid(struct api_req *ar, const char *kind, const char *name,
		       const struct api_causes *causes);
/* Frees the api_req (after a reply). */
void api_req_free(struct api_req *ar);
bool api_auth_required(const struct server *srv);

/* --- handlers.c -------------------------------------------------------------- */
void handle_get(struct api_req *ar);
void handle_list(struct api_req *ar);
void handle_create(struct api_req *ar, const char *body, size_t len);
void handle_update(struct api_req *ar, const char *body, size_t len);
void handle_patch(struct api_req *ar, const char *body, size_t len);
void handle_delete(struct api_req *ar, const char *body, size_t len);
void handle_deletecollection(struct api_req *ar);
void handle_binding(struct api_req *ar, const char *body, size_t len);
void api_reply_too_large_rv(struct api_req *ar, int64_t want, int64_t cur);
/* Rebuilds allocators from the cache and creates the built-in namespaces and
 * the kubernetes Service if missing. */
int server_bootstrap(struct server *srv);
/* Store event callback: cache + allocator bookkeeping. */
void server_on_store_event(const struct store_event *ev, void *arg);

/* --- watch.c ----------------------------------------------------------------- */
void handle_watch(struct api_req *ar);
void watch_tick(struct server *srv);	  /* bookmarks, deadlines, slow watchers */
void watch_close_all(struct server *srv); /* shutdown */
size_t watch_count(const struct server *srv);

/* --- discovery.c ------------------------------------------------------------- */
/* Returns true if the path was a discovery/OpenAPI/version path and was answered. */
bool discovery_handle(struct api_req *ar, const char *path);
/* Builds a meta.k8s.io/v1 Table for the given objects (borrowed). */
struct json_object *table_build(struct api_req *ar, struct cache_obj **objs, size_t n,
				const char *rv, const char *cont);

/* --- metrics.c --------------------------------------------------------------- */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
void metrics_request(struct metrics *m, enum api_verb verb, const struct api_resource *res,
		     int code, double seconds);
void metrics_commit(struct metrics *m, double seconds);
void metrics_watch_event(struct metrics *m, unsigned n);
void metrics_watch_closed_slow(struct metrics *m);
void metrics_render(struct metrics *m, struct server *srv, struct sl_buf *out);

double api_elapsed(const struct timespec *start);
const char *api_verb_name(enum api_verb v);

#endif
