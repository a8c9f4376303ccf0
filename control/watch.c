// SPDX-License-Identifier: Apache-2.0
/*
 * Watch streams: a chunked HTTP/1.1 response carrying one JSON event per line
 * ({"type":..,"object":..}\n), flushed per event.
 *
 * Semantics follow kube-apiserver: resourceVersion unset or "0" starts with a
 * synthetic ADDED per current object; N replays every event after N from the
 * watch cache's ring; N older than the ring starts the stream and sends one
 * ERROR event carrying a 410 Expired Status (what client-go's reflector turns
 * into a relist). BOOKMARKs only when asked for. Streams end after
 * timeoutSeconds, or a random time in [min-request-timeout, 2x] so clients
 * do not reconnect in lockstep.
 *
 * Back-pressure: a watcher whose connection has more than
 * --watch-buffer-bytes of unsent output is closed (the client re-watches
 * from its last resourceVersion) instead of buffering without bound or
 * slowing everyone else down.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include "server.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/selector.h"

bool api_filter_from_query(struct api_req *ar, struct cache_watcher *f);

#define WATCH_MAX_TIMEOUT_S (7 * 86400)
/* While a watch is open the peer has nothing to send; input beyond this is
 * left unread (and drained periodically) so a client cannot make the server
 * buffer without bound. */
#define WATCH_INPUT_WATERMARK 4096

struct watch_stream {
	struct server *srv;
	struct api_req *ar;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct cache_watcher w;
	bool bookmarks;
	bool table;
	bool sent_columns;
	bool peer_gone;
	bool ending;
	bool slow;	     /* closed for falling behind: drop the connection */
	bool chunked;	     /* HTTP/1.1 chunked reply: shared pre-framed chunks apply */
	bool replaying;	     /* initial/ring replay in progress: no slow check */
	size_t replay_bytes; /* backlog right after the replay (allowed on top) */
	time_t deadline;
	time_t last_send;
	struct watch_stream *prev, *next;
};

size_t watch_count(const struct server *srv)
{
	size_t n = 0;

	for (struct watch_stream *ws = srv->watches; ws; ws = ws->next)
		n++;
	return n;
}

static void ws_unlink(struct watch_stream *ws)
{
	struct server *srv = ws->srv;

	if (ws->prev)
		ws->prev->next = ws->next;
	else if (srv->watches == ws)
		srv->watches = ws->next;
	if (ws->next)
		ws->next->prev = ws->prev;
	ws->prev = ws->next = NULL;
}

/*
 * Ends the stream and frees it. Normally with the terminating chunk (the
 * connection then serves further requests); a slow watcher's connection is
 * dropped at once, because its unsent backlog is exactly what we must not
 * keep holding.
 */
static void ws_end(struct watch_stream *ws)
{
	struct server *srv = ws->srv;

	cache_watch_stop(srv->cache, &ws->w);
	ws_unlink(ws);
	if (ws->evcon) {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(ws->evcon);
		evhttp_connection_set_closecb(ws->evcon, NULL, NULL);
		if (ws->slow) {
			/* Frees the request too. */
			evhttp_connection_free(ws->evcon);
			ws->req = NULL;
		} else {
			evhttp_connection_set_timeout(ws->evcon, srv->cfg.idle_timeout_s);
			if (bev)
				bufferevent_setwatermark(bev, EV_READ, 0, 0);
		}
	}
	/* With the peer gone evhttp has detached the request; reply_end then
	 * only frees it. */
	if (ws->req)
		evhttp_send_reply_end(ws->req);
	metrics_request(srv->metrics, VERB_WATCH, ws->w.res, 200, api_elapsed(&ws->ar->start));
	sl_labelsel_free(ws->w.lsel);
	sl_fieldsel_free(ws->w.fsel);
	api_req_free(ws->ar);
	free(ws);
}

static void ws_closecb(struct evhttp_connection *evcon, void *arg)
{
	struct watch_stream *ws = arg;

	ws->peer_gone = true;
	ws->evcon = NULL;
	ws_end(ws);
}

static size_t ws_backlog(struct watch_stream *ws)
{
	struct bufferevent *bev;

	if (!ws->evcon)
		return 0;
	bev = evhttp_connection_get_bufferevent(ws->evcon);
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* "addr:port" of the peer, for log lines. */
static const char *ws_peer(struct evhttp_connection *evcon)
{
	static char buf[80];
	char *addr = NULL;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(buf, sizeof(buf), "%s:%u", addr ? addr : "?", port);
	return buf;
}

/* Sends a ready chunk (consumed); returns -1 when the watcher must go. */
static int ws_send_buf(struct watch_stream *ws, struct evbuffer *b)
{
	/* Slowness is judged on what was still unsent before this event: one
	 * large event, or one commit batch, must not condemn a reader that keeps
	 * up. */
	size_t before = ws_backlog(ws);

	evhttp_send_reply_chunk(ws->req, b);
	evbuffer_free(b);
	ws->last_send = time(NULL);
	/* The initial replay may be larger than the limit: the client reads
	 * it at its own pace; only what piles up beyond it counts. */
	if (!ws->replaying && before > ws->srv->cfg.watch_buffer_bytes + ws->replay_bytes) {
		pr_warn("control", "watch '%s' from %s: %zu bytes unsent; closing slow watcher",
			ws->w.res->plural, ws->evcon ? ws_peer(ws->evcon) : "?", ws_backlog(ws));
		metrics_watch_closed_slow(ws->srv->metrics);
		ws->slow = true;
		return -1;
	}
	return 0;
}

/* Queues one line built from bytes (bookmarks, errors, tables). */
static int ws_send(struct watch_stream *ws, const char *type, const char *obj, size_t len)
{
	struct evbuffer *b = evbuffer_new();

	if (!b)
		return -1;
	evbuffer_add_printf(b, "{\"type\":\"%s\",\"object\":", type);
	evbuffer_add(b, obj, len);
	evbuffer_add(b, "}\n", 2);
	return ws_send_buf(ws, b);
}

/*
 * Queues one event carrying a cached object. The object's JSON is referenced,
 * not copied: with 1,000 watchers an event costs 1,000 small headers, not
 * 1,000 copies of the object.
 */
static int ws_send_obj(struct watch_stream *ws, const char *type, struct cache_obj *o)
{
	struct evbuffer *b = evbuffer_new();

	if (!b)
		return -1;
	evbuffer_add_printf(b, "{\"type\":\"%s\",\"object\":", type);
	cache_obj_ref(o);
	if (evbuffer_add_reference(b, o->json, o->len, cache_obj_unref_cb, o))
		cache_obj_unref(o);
	/* By reference as well: evbuffer_add() after a reference chain
	 * allocates a new chain twice the object's size (see handle_list). */
	evbuffer_add_reference(b, "}\n", 2, NULL, NULL);
	return ws_send_buf(ws, b);
}

/*
 * Fan-out fast path. One event goes to up to thousands of watchers; most see
 * the same bytes. The complete HTTP chunk ("<len>\r\n{"type":..,"object":..}\n\r\n")
 * is built once per (object, type) and shared by reference. When a watcher's
 * connection has nothing queued, the chunk is written to the socket at once,
 * so the common case costs one send() and no epoll_ctl round trip (perf on
 * 1,000 watchers showed a quarter of the time in enabling and disabling
 * write interest per event); only a leftover goes through the bufferevent.
 */
struct wchunk {
	unsigned refs;
	size_t len;
	char data[];
};

static void wchunk_unref(struct wchunk *c)
{
	if (c && --c->refs == 0)
		free(c);
}

static void wchunk_unref_cb(const void *data, size_t len, void *arg)
{
	wchunk_unref(arg);
}

static struct wchunk *wchunk_get(struct server *srv, enum cache_ev_type type, struct cache_obj *o)
{
	const char *tn = cache_ev_name(type);
	char head[64];
	struct wchunk *c;
	size_t body, hl;
	int n;

	for (unsigned i = 0; i < 4; i++)
		if (srv->chunks[i].c && srv->chunks[i].obj == o &&
		    srv->chunks[i].rev == o->mod_rev && srv->chunks[i].type == type)
			return srv->chunks[i].c;
	char pre[48];
	int pl = snprintf(pre, sizeof(pre), "{\"type\":\"%s\",\"object\":", tn);

	/* Chunk body: the event line {"type":..,"object":<json>}\n */
	body = (size_t)pl + o->len + 2;
	n = snprintf(head, sizeof(head), "%zx\r\n%s", body, pre);
	hl = (size_t)n;
	c = malloc(sizeof(*c) + hl + o->len + 4);
	if (!c)
		return NULL;
	memcpy(c->data, head, hl);
	memcpy(c->data + hl, o->json, o->len);
	memcpy(c->data + hl + o->len, "}\n\r\n", 4);
	c->len = hl + o->len + 4;
	c->refs = 1; /* the cache's */
	wchunk_unref(srv->chunks[srv->chunk_next].c);
	srv->chunks[srv->chunk_next].obj = o;
	srv->chunks[srv->chunk_next].rev = o->mod_rev;
	srv->chunks[srv->chunk_next].type = type;
	srv->chunks[srv->chunk_next].c = c;
	srv->chunk_next = (srv->chunk_next + 1) % 4;
	return c;
}

static int ws_send_chunk(struct watch_stream *ws, struct wchunk *c)
{
	struct bufferevent *bev = ws->evcon ? evhttp_connection_get_bufferevent(ws->evcon) : NULL;
	struct evbuffer *out = bev ? bufferevent_get_output(bev) : NULL;
	size_t off = 0, before;

	if (!out)
		return -1;
	before = evbuffer_get_length(out);
	if (evbuffer_get_length(out) == 0) {
		ssize_t n =
			send(bufferevent_getfd(bev), c->data, c->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			off = (size_t)n;
		/* Errors other than EAGAIN surface through the bufferevent when
		 * it writes the rest. */
	}
	if (off < c->len) {
		c->refs++;
		if (evbuffer_add_reference(out, c->data + off, c->len - off, wchunk_unref_cb, c))
			c->refs--;
	}
	ws->last_send = time(NULL);
	if (before > ws->srv->cfg.watch_buffer_bytes + ws->replay_bytes && !ws->replaying) {
		pr_warn("control", "watch '%s' from %s: %zu bytes unsent; closing slow watcher",
			ws->w.res->plural, ws_peer(ws->evcon), ws_backlog(ws));
		metrics_watch_closed_slow(ws->srv->metrics);
		ws->slow = true;
		return -1;
	}
	return 0;
}

static int ws_event(struct cache_watcher *w, enum cache_ev_type type, struct cache_obj *obj,
		    void *arg)
{
	struct watch_stream *ws = arg;
	int rc;

	if (ws->ending)
		return -1;
	metrics_watch_event(ws->srv->metrics, 1);
	if (ws->table) {
		char rv[24];
		struct json_object *t;
		size_t len;
		snprintf(rv, sizeof(rv), "%" PRId64, obj->mod_rev);
		t = table_build(ws->ar, &obj, 1, rv, NULL);
		if (!t)
			return -1;
		if (ws->sent_columns)
			/* kube sends column definitions with the first event only. */
			json_object_object_add(t, "columnDefinitions", json_object_new_array());
		ws->sent_columns = true;
		{
			const char *js = sl_json_str(t, &len);
			rc = ws_send(ws, cache_ev_name(type), js, len);
		}
		json_object_put(t);
		if (rc)
			ws->ending = true;
		return rc;
	}
	if (ws->chunked && ws->evcon) {
		struct wchunk *c = wchunk_get(ws->srv, type, obj);
		rc = c ? ws_send_chunk(ws, c) : -1;
	} else {
		rc = ws_send_obj(ws, cache_ev_name(type), obj);
	}
	if (rc)
		ws->ending = true;
	return rc;
}

static void ws_send_bookmark(struct watch_stream *ws, bool initial_end)
{
	char buf[512];
	int n;

	n = snprintf(
		buf, sizeof(buf),
		"{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":"
		"\"%" PRId64 "\"%s}}",
		ws->w.res->kind, api_resource_api_version(ws->w.res), cache_rev(ws->srv->cache),
		initial_end ? ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}" : "");
	if (ws_send(ws, "BOOKMARK", buf, (size_t)n))
		ws->ending = true;
}

static void ws_send_expired(struct watch_stream *ws, int64_t want)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
			 "\"Failure\",\"message\":\"too old resource version: %" PRId64 " (%" PRId64
			 ")\",\"reason\":\"Expired\",\"code\":410}",
			 want, cache_oldest_rev(ws->srv->cache) + 1);
	ws_send(ws, "ERROR", buf, (size_t)n);
}

/*
 * A watch on /<plural>/<name> is a watch on metadata.name=<name>, ANDed with
 * any fieldSelector. The requirement is added structurally: building a
 * selector string would let a name containing ',' or '=' change its meaning.
 */
static int watch_add_name(struct cache_watcher *w, const char *name)
{
	struct sl_fieldsel_req *reqs;

	if (!w->fsel) {
		w->fsel = calloc(1, sizeof(*w->fsel));
		if (!w->fsel)
			return -ENOMEM;
	}
	reqs = realloc(w->fsel->reqs, (w->fsel->n_reqs + 1) * sizeof(*reqs));
	if (!reqs)
		return -ENOMEM;
	w->fsel->reqs = reqs;
	reqs[w->fsel->n_reqs].field = strdup("metadata.name");
	reqs[w->fsel->n_reqs].value = strdup(name);
	reqs[w->fsel->n_reqs].negate = false;
	if (!reqs[w->fsel->n_reqs].field || !reqs[w->fsel->n_reqs].value) {
		free(reqs[w->fsel->n_reqs].field);
		free(reqs[w->fsel->n_reqs].value);
		return -ENOMEM;
	}
	w->fsel->n_reqs++;
	return 0;
}

void handle_watch(struct api_req *ar)
{
	struct server *srv = ar->srv;
	const char *rvq = api_query(ar, "resourceVersion");
	const char *to = api_query(ar, "timeoutSeconds");
	const char *bm = api_query(ar, "allowWatchBookmarks");
	const char *sie = api_query(ar, "sendInitialEvents");
	struct watch_stream *ws;
	struct evkeyvalq *h;
	int64_t from = 0;
	long timeout = 0;
	bool initial = true;
	int err;

	ws = calloc(1, sizeof(*ws));
	if (!ws) {
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		api_req_free(ar);
		return;
	}
	if (!api_filter_from_query(ar, &ws->w)) {
		free(ws);
		api_req_free(ar);
		return;
	}
	if (ar->name[0] && watch_add_name(&ws->w, ar->name)) {
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		goto fail;
	}
	if (rvq && rvq[0] && strcmp(rvq, "0")) {
		char *end;
		errno = 0;
		from = strtoll(rvq, &end, 10);
		if (*end || errno || from < 0) {
			char msg[320];
			snprintf(msg, sizeof(msg),
				 "resourceVersion: Invalid value: \"%.200s\": "
				 "must be a non-negative integer",
				 rvq);
			api_reply_status(ar, 400, "BadRequest", msg, NULL);
			goto fail;
		}
		initial = false;
		if (from > cache_rev(srv->cache)) {
			api_reply_too_large_rv(ar, from, cache_rev(srv->cache));
			goto fail;
		}
	}
	if (sie && !strcmp(sie, "true"))
		initial = true;
	if (to && to[0]) {
		char *end;
		errno = 0;
		timeout = strtol(to, &end, 10);
		if (*end || errno || timeout < 0) {
			api_reply_status(ar, 400, "BadRequest",
					 "timeoutSeconds: Invalid value: must be a non-negative "
					 "integer",
					 NULL);
			goto fail;
		}
		/* Longer watches than a week buy nothing and would overflow the
		 * connection timeout arithmetic. */
		if (timeout > WATCH_MAX_TIMEOUT_S)
			timeout = WATCH_MAX_TIMEOUT_S;
	}
	if (!timeout) {
		unsigned r = 0;
		long base = srv->cfg.min_request_timeout_s;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (unsigned)time(NULL);
		timeout = base + (base > 0 ? (long)(r % (unsigned)base) : 0);
	}
	ws->srv = srv;
	ws->ar = ar;
	ws->req = ar->req;
	ws->evcon = evhttp_request_get_connection(ar->req);
	ws->bookmarks = bm && (!strcmp(bm, "true") || !strcmp(bm, "1"));
	ws->table = ar->table;
	ws->deadline = time(NULL) + timeout;
	ws->last_send = time(NULL);
	ws->w.fn = ws_event;
	ws->w.arg = ws;

	h = evhttp_request_get_output_headers(ar->req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-cache, private");
	evhttp_send_reply_start(ar->req, 200, "OK");
	{
		/* evhttp chose chunked framing iff the client speaks HTTP/1.1. */
		const char *te = evhttp_find_header(h, "Transfer-Encoding");
		ws->chunked = te && !strcmp(te, "chunked");
	}
	if (ws->evcon) {
		/* Idle keep-alive limits do not apply to a watch; it ends at its
		 * deadline. */
		struct bufferevent *bev = evhttp_connection_get_bufferevent(ws->evcon);
		evhttp_connection_set_timeout(ws->evcon, (int)timeout + 60);
		evhttp_connection_set_closecb(ws->evcon, ws_closecb, ws);
		if (bev)
			bufferevent_setwatermark(bev, EV_READ, 0, WATCH_INPUT_WATERMARK);
	}
	ws->next = srv->watches;
	if (srv->watches)
		srv->watches->prev = ws;
	srv->watches = ws;

	ws->replaying = true;
	err = cache_watch_start(srv->cache, &ws->w, initial, from);
	ws->replaying = false;
	ws->replay_bytes = ws_backlog(ws);
	if (err == -SL_ERR_COMPACTED) {
		ws_send_expired(ws, from);
		ws_end(ws);
		return;
	}
	if (err || ws->ending) {
		ws_end(ws);
		return;
	}
	if (sie && !strcmp(sie, "true") && ws->bookmarks)
		ws_send_bookmark(ws, true);
	if (ws->ending)
		ws_end(ws);
	return;
fail:
	sl_labelsel_free(ws->w.lsel);
	sl_fieldsel_free(ws->w.fsel);
	free(ws);
	api_req_free(ar);
}

void watch_tick(struct server *srv)
{
	time_t now = time(NULL);
	struct watch_stream *ws, *next;

	for (ws = srv->watches; ws; ws = next) {
		next = ws->next;
		if (ws->evcon) {
			struct bufferevent *bev = evhttp_connection_get_bufferevent(ws->evcon);
			struct evbuffer *in = bev ? bufferevent_get_input(bev) : NULL;
			if (in)
				evbuffer_drain(in, evbuffer_get_length(in));
		}
		if (ws->ending || now >= ws->deadline) {
			if (!ws->ending && ws->bookmarks)
				ws_send_bookmark(ws, false);
			ws_end(ws);
			continue;
		}
		/* Idle watchers get a bookmark so they can resume cheaply (and a
		 * dead peer is noticed by the write). */
		if (ws->bookmarks && now - ws->last_send >= 15) {
			ws_send_bookmark(ws, false);
			if (ws->ending)
				ws_end(ws);
		}
	}
}

void watch_close_all(struct server *srv)
{
	/* ws_end() unlinks the head from srv->watches (ws->srv == srv for every
	 * stream); the analyzer does not know that invariant and reports a reuse. */
	while (srv->watches)
		ws_end(srv->watches); // NOLINT(clang-analyzer-unix.Malloc)
	for (unsigned i = 0; i < 4; i++) {
		wchunk_unref(srv->chunks[i].c);
		srv->chunks[i].c = NULL;
	}
}
