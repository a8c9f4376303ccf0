/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes API client over libcurl, shared by every Sluice component that
 * talks to an API server (agent, DNS server, scheduler, controllers, CLI).
 *
 * Pieces, from the bottom up:
 *   - struct sl_client: where the server is and how to authenticate (server
 *     URL, optional bearer token, CA file, insecure flag), built from flags or
 *     from a kubeconfig file (the subset kubectl writes; YAML or JSON).
 *   - sl_client_request(): one synchronous HTTP request; the response body
 *     comes back raw and, when it is JSON, parsed. Helpers for get/list/
 *     create/update/patch/delete map HTTP failures to -SL_ERR_* and copy the
 *     server's Status message into an error string.
 *   - sl_watch_decoder: turns watch-stream bytes, arriving in arbitrary
 *     chunks, into {type, object} events. Pure, no I/O; fuzzed.
 *   - sl_client_watch(): a streaming GET fed through the decoder.
 *   - struct sl_cancel: makes requests and back-off sleeps interruptible
 *     from another thread (the informer's stop).
 *   - struct sl_backoff: exponential back-off with jitter.
 *
 * Threading: a client is immutable after creation and may be shared by any
 * number of threads; every request uses its own curl easy handle, and
 * connections are reused through a curl share object guarded by mutexes.
 * json_object results are owned by the calling thread (json-c refcounts are
 * not atomic).
 */
#ifndef SLUICE_CLIENT_H
#define SLUICE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sluice/buf.h"

struct sl_client;

/* Connection settings. Strings are copied by sl_client_new(). */
struct sl_client_opts {
	const char *server;	 /* "http://127.0.0.1:6443" or https://...; required */
	const char *token;	 /* bearer token or NULL */
	const char *ca_file;	 /* PEM bundle to verify the server, NULL = system store */
	const char *cert_file;	 /* client certificate (PEM) or NULL */
	const char *key_file;	 /* client key (PEM) or NULL */
	bool insecure;		 /* skip TLS verification (insecure-skip-tls-verify) */
	unsigned int timeout_ms; /* whole-request limit for non-watch requests; 0 = 60000 */
};

/*
 * Returns a new client (caller frees with sl_client_free) or NULL with errno
 * set: EINVAL when server is missing or not an http(s) URL (err says which),
 * ENOMEM. Initialises libcurl once per process.
 */
struct sl_client *sl_client_new(const struct sl_client_opts *o, char *err, size_t errlen);

/*
 * Builds a client from a kubeconfig file: current-context (or `context` when
 * non-NULL) → context → cluster.server, cluster.certificate-authority,
 * insecure-skip-tls-verify, user.token / user.tokenFile /
 * client-certificate / client-key. Relative file paths are resolved against
 * the kubeconfig's directory, as kubectl does. The token file is read once,
 * here. Accepts the block YAML kubectl writes and the same document as JSON.
 * On failure returns NULL, errno EINVAL (ENOENT if unreadable) and err names
 * the file and the problem: `kubeconfig /x: context "foo" not found`.
 */
struct sl_client *sl_client_from_kubeconfig(const char *path, const char *context, char *err,
					    size_t errlen);

/*
 * The parsing half of the above, exposed for tests and tools: fills `o` from
 * kubeconfig text. `path` is used for messages and to resolve relative file
 * names. Strings written to `o` point into `*store`, which the caller
 * releases with json_object_put() after use. Returns 0 or -EINVAL/-ENOMEM.
 */
int sl_kubeconfig_parse(const char *path, const char *text, size_t len, const char *context,
			struct sl_client_opts *o, struct json_object **store, char *err,
			size_t errlen);

/*
 * The YAML subset reader behind kubeconfig parsing: block mappings and
 * sequences (sequences may sit at their parent key's indentation, as kubectl
 * writes them), plain / 'single' / "double" quoted scalars, flow
 * collections written as JSON ({}, [], {"a":1}), comments, a leading `---`.
 * Plain true/false/null become JSON booleans/null; every other scalar is a
 * string. Anchors, tags, block scalars (| >) and multi-document files are
 * rejected with a message naming the line. A text starting with '{' is
 * parsed as JSON. Caller owns the result; NULL + errno EINVAL on error.
 */
struct json_object *sl_yaml_parse(const char *text, size_t len, char *err, size_t errlen);

void sl_client_free(struct sl_client *c);

/* The server URL without a trailing slash (borrowed). */
const char *sl_client_server(const struct sl_client *c);

/* ---- interruption ---------------------------------------------------- */

/*
 * A cancellation token. Requests given one run on its curl multi handle and
 * return -ECANCELED within milliseconds of sl_cancel_fire() from any thread
 * (curl_multi_wakeup, no polling interval). One request at a time per token.
 */
struct sl_cancel;

struct sl_cancel *sl_cancel_new(void);
void sl_cancel_free(struct sl_cancel *k);
/* Thread-safe; sticky until sl_cancel_reset(). */
void sl_cancel_fire(struct sl_cancel *k);
void sl_cancel_reset(struct sl_cancel *k);
bool sl_cancel_fired(const struct sl_cancel *k);
/* Sleeps ms milliseconds; returns 0, or -ECANCELED as soon as the token fires. */
int sl_cancel_sleep(struct sl_cancel *k, unsigned int ms);

/* ---- synchronous requests -------------------------------------------- */

struct sl_client_resp {
	long status;		  /* HTTP status; 0 when no response arrived */
	struct sl_buf body;	  /* raw body bytes (NUL-terminated) */
	struct json_object *json; /* body parsed when it is valid JSON, else NULL; owned here */
	char err[256];		  /* transport error, or the Status message of a non-2xx reply */
};

/*
 * Sends one request: method ("GET", "POST", ...), path_and_query starting
 * with '/' (already escaped; see sl_client_path), optional body with its
 * content type (default application/json). `cancel` may be NULL.
 * Returns 0 when a response arrived (whatever its status; check resp->status),
 * -ECANCELED, -ECONNREFUSED, -ETIMEDOUT or -SL_ERR_HTTP for transport
 * failures (resp->err says what), -ENOMEM. Release resp with
 * sl_client_resp_fini() in every case. Thread-safe.
 */
int sl_client_request(struct sl_client *c, const char *method, const char *path_and_query,
		      const void *body, size_t body_len, const char *content_type,
		      struct sl_cancel *cancel, struct sl_client_resp *resp);
void sl_client_resp_fini(struct sl_client_resp *resp);

/*
 * The same without a request body, leaving a 2xx body as text (resp->json
 * stays NULL; resp->body.data is NUL-terminated): for large replies the
 * caller scans itself (the informer's first LIST). Error bodies are still
 * parsed for their Status message.
 */
int sl_client_request_text(struct sl_client *c, const char *method, const char *path_and_query,
			   struct sl_cancel *cancel, struct sl_client_resp *resp);

/*
 * Maps an HTTP status (and the Status reason, which may be NULL) to 0 or a
 * negative error: 404 -SL_ERR_NOTFOUND, 409 AlreadyExists -SL_ERR_EXISTS,
 * other 409 -SL_ERR_CONFLICT, 410 -SL_ERR_COMPACTED, 400/422 -SL_ERR_INVALID,
 * 401/403 -EACCES, other non-2xx -SL_ERR_HTTP.
 */
int sl_client_status_err(long status, const char *reason);

/* A resource type: group "" is the core group (/api/v1). */
struct sl_gvr {
	const char *group;    /* "", "discovery.k8s.io", "networking.k8s.io", ... */
	const char *version;  /* "v1" */
	const char *resource; /* plural: "services", "endpointslices", ... */
};

#define SL_GVR_SERVICES	       ((struct sl_gvr){"", "v1", "services"})
#define SL_GVR_PODS	       ((struct sl_gvr){"", "v1", "pods"})
#define SL_GVR_NODES	       ((struct sl_gvr){"", "v1", "nodes"})
#define SL_GVR_NAMESPACES      ((struct sl_gvr){"", "v1", "namespaces"})
#define SL_GVR_ENDPOINTSLICES  ((struct sl_gvr){"discovery.k8s.io", "v1", "endpointslices"})
#define SL_GVR_NETWORKPOLICIES ((struct sl_gvr){"networking.k8s.io", "v1", "networkpolicies"})

/*
 * Builds "/api/v1/namespaces/<ns>/<resource>[/<name>][?query]" (or
 * "/apis/<group>/<version>/..."). ns NULL or "" = all namespaces / a
 * cluster-scoped resource. ns and name are percent-escaped; query is
 * appended as given (build it with sl_client_query_add). Caller frees;
 * NULL + errno on failure.
 */
char *sl_client_path(const struct sl_gvr *r, const char *ns, const char *name, const char *query);

/* Appends "&key=value" (or "key=value" to an empty buffer), escaping value. */
void sl_client_query_add(struct sl_buf *q, const char *key, const char *value);

/*
 * CRUD helpers. Each returns 0 or a negative error (sl_client_status_err or
 * a transport error) and on error writes a one-line message into err: the
 * server's Status message when there is one ("services \"web\" not found").
 * `*out` (when out is non-NULL) receives the object the server returned;
 * caller puts it. `obj` arguments are borrowed.
 */
int sl_client_get(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *name,
		  struct json_object **out, char *err, size_t errlen);
/* One list call; query is e.g. "labelSelector=a%3Db&limit=500" or NULL. */
int sl_client_list(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *query,
		   struct json_object **out, char *err, size_t errlen);
int sl_client_create(struct sl_client *c, const struct sl_gvr *r, const char *ns,
		     struct json_object *obj, struct json_object **out, char *err, size_t errlen);
/* PUT; name defaults to obj's metadata.name when NULL. */
int sl_client_update(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *name,
		     struct json_object *obj, struct json_object **out, char *err, size_t errlen);
/* patch_type: a full content type, e.g. "application/merge-patch+json". */
int sl_client_patch(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *name,
		    const char *patch_type, const char *patch, struct json_object **out, char *err,
		    size_t errlen);
int sl_client_delete(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *name,
		     char *err, size_t errlen);

/* ---- watch streams --------------------------------------------------- */

enum sl_watch_type {
	SL_WATCH_ADDED,
	SL_WATCH_MODIFIED,
	SL_WATCH_DELETED,
	SL_WATCH_BOOKMARK,
	SL_WATCH_ERROR,
};

const char *sl_watch_type_name(enum sl_watch_type t);

struct sl_watch_event {
	enum sl_watch_type type;
	struct json_object *object; /* the event's "object" (always a JSON object);
				       borrowed, valid during the callback; take a
				       reference with json_object_get() to keep it */
};

/* Called once per event, in stream order. Return 0 to go on; any other value
 * stops decoding and is returned by sl_watch_decoder_feed(). */
typedef int (*sl_watch_event_fn)(const struct sl_watch_event *ev, void *arg);

/* Longest accepted event line unless told otherwise. */
#define SL_WATCH_MAX_LINE (16u << 20)

struct sl_watch_decoder;

/*
 * A decoder for newline-delimited watch events. max_line 0 means
 * SL_WATCH_MAX_LINE; a line longer than that is an error, so a broken or
 * hostile server cannot make the buffer grow without bound. Blank lines are
 * skipped. NULL + errno ENOMEM on failure.
 */
struct sl_watch_decoder *sl_watch_decoder_new(size_t max_line, sl_watch_event_fn fn, void *arg);
void sl_watch_decoder_free(struct sl_watch_decoder *d);
/*
 * Feeds len bytes (any split, any size). Returns 0, the callback's nonzero
 * return, or -SL_ERR_PARSE for a malformed event / over-long line / NUL byte
 * (sl_watch_decoder_error() says which, with the event's ordinal). After an
 * error every later call fails the same way.
 */
int sl_watch_decoder_feed(struct sl_watch_decoder *d, const char *buf, size_t len);
/* End of stream: decodes a final line that lacks its '\n'. Same returns. */
int sl_watch_decoder_finish(struct sl_watch_decoder *d);
/* Last error message ("" when none). Borrowed. */
const char *sl_watch_decoder_error(const struct sl_watch_decoder *d);
/* Events decoded so far. */
uint64_t sl_watch_decoder_events(const struct sl_watch_decoder *d);

/*
 * Streams GET path_and_query (which must contain watch=true) and hands each
 * event to fn on the calling thread. No overall timeout: a stream lives until
 * the server ends it; a stalled connection is cut by a low-speed limit of
 * 1 byte in `stall_s` seconds (0 = 660, i.e. past the longest watch timeout
 * the informer asks for) plus TCP keepalive. `cancel` may be NULL.
 * Returns 0 when the server ended the stream cleanly, the callback's nonzero
 * value if it stopped the stream, -SL_ERR_PARSE for a bad stream, -ECANCELED,
 * a transport error, or sl_client_status_err() of a non-2xx reply. *status
 * gets the HTTP status (0 if none) and err a one-line reason on failure.
 */
int sl_client_watch(struct sl_client *c, const char *path_and_query, unsigned int stall_s,
		    sl_watch_event_fn fn, void *arg, struct sl_cancel *cancel, long *status,
		    char *err, size_t errlen);

/* ---- back-off -------------------------------------------------------- */

/*
 * Exponential back-off with "equal jitter": the n-th delay is drawn from
 * [d/2, d] where d = min(initial_ms * 2^n, cap_ms), so retrying clients
 * spread out instead of arriving together. Not thread-safe (one per loop).
 */
struct sl_backoff {
	unsigned int initial_ms; /* first nominal delay */
	unsigned int cap_ms;	 /* largest nominal delay */
	unsigned int cur_ms;	 /* next nominal delay */
	uint64_t rng;		 /* xorshift state; any nonzero seed */
};

void sl_backoff_init(struct sl_backoff *b, unsigned int initial_ms, unsigned int cap_ms,
		     uint64_t seed);
/* Returns the next delay in ms and doubles the nominal delay (up to the cap). */
unsigned int sl_backoff_next(struct sl_backoff *b);
/* Back to initial_ms after a success. */
void sl_backoff_reset(struct sl_backoff *b);
/* Uniform pseudo-random value in [lo, hi] from the back-off's generator. */
unsigned int sl_backoff_rand(struct sl_backoff *b, unsigned int lo, unsigned int hi);

#endif
