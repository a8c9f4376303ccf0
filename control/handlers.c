// SPDX-License-Identifier: Apache-2.0
/*
 * API verbs on resources: get, list, create, update, patch, delete,
 * deletecollection and pods/binding, with Kubernetes semantics:
 * optimistic concurrency (409 on a stale resourceVersion), generateName,
 * uid/creationTimestamp/generation, status subresources, no-op updates that
 * do not bump the revision, validation (422 with causes) and defaulting,
 * ClusterIP/NodePort allocation, and namespace termination.
 *
 * Reads are answered from the watch cache. A write becomes a `struct wop`
 * that lives until the store has committed it (group commit on the writer
 * thread) and dispatched its event into the cache; only then is the client
 * answered, so a read after a write always sees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "server.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/k8s.h"
#include "sluice/log.h"
#include "sluice/patch.h"
#include "sluice/selector.h"
#include "validate.h"

#define MAX_WRITE_RETRIES  8
#define MAX_PENDING_WRITES 20000
/* Services with more ports than this are refused (kube has no limit, but
 * nothing real comes close; the datapath's slot blocks are smaller). */
#define MAX_SVC_PORTS 256

enum patch_type {
	PATCH_NONE,
	PATCH_MERGE,
	PATCH_JSON,
	PATCH_STRATEGIC,
};

/* Allocations a Service write holds: taken at admission, released when the
 * write fails; the old object's values that the new one dropped are released
 * when it succeeds. */
struct svc_alloc {
	char ip[64];
	int ports[MAX_SVC_PORTS + 1];
	int n_ports;
};

enum wop_kind {
	W_CREATE,
	W_UPDATE,
	W_DELETE,
};

struct wop;
typedef void (*wop_done_fn)(struct wop *w, int err);

struct wop {
	struct server *srv;
	struct api_req *ar; /* NULL for internal writes (bootstrap, namespace cleanup) */
	const struct api_resource *res;
	enum wop_kind kind;
	struct json_object *obj; /* the object being written (handed to the cache as hint) */
	struct cache_obj *old;	 /* the object this write was based on */
	struct store_txn txn;
	char key[512];
	char *value;
	struct svc_alloc taken, release;
	/* Retried writes (PUT without resourceVersion, PATCH) re-run from here. */
	char *body;
	size_t body_len;
	enum patch_type ptype;
	bool explicit_rv; /* the client named a resourceVersion: conflicts are final */
	bool binding;	  /* pods/binding: reply with a Success Status */
	bool pod_delete;  /* DELETE of a pod: graceful or not is decided per attempt */
	bool grace_set;	  /* DeleteOptions.gracePeriodSeconds was given */
	int64_t grace;	  /* its value, seconds */
	int attempts;
	wop_done_fn done; /* internal completion */
	void *done_arg;
};

/* --- small helpers ------------------------------------------------------------ */

static void now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void new_uid(char out[37])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		/* getrandom on a booted kernel does not fail for 16 bytes; keep
		 * going with a time-based value rather than refusing writes. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(b, &ts, sizeof(ts) < 16 ? sizeof(ts) : 16);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* kube's names.SimpleNameGenerator: 5 characters from an alphabet without
 * vowels (no accidental words) or confusable characters. */
static void random_suffix(char out[6])
{
	static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char b[5];

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		memset(b, 7, sizeof(b));
	for (int i = 0; i < 5; i++)
		out[i] = alpha[b[i] % (sizeof(alpha) - 1)];
	out[5] = '\0';
}

static const char *res_group(const struct api_resource *r)
{
	return r->group;
}

static struct json_object *details_new(const struct api_resource *r, const char *name)
{
	struct json_object *d = json_object_new_object();

	if (!d)
		return NULL;
	if (name && name[0])
		json_object_object_add(d, "name", json_object_new_string(name));
	if (r->group[0])
		json_object_object_add(d, "group", json_object_new_string(res_group(r)));
	json_object_object_add(d, "kind", json_object_new_string(r->plural));
	return d;
}

static void reply_notfound(struct api_req *ar, const char *name)
{
	char msg[640];

	if (ar->res->group[0])
		snprintf(msg, sizeof(msg), "%s.%s \"%s\" not found", ar->res->plural,
			 ar->res->group, name);
	else
		snprintf(msg, sizeof(msg), "%s \"%s\" not found", ar->res->plural, name);
	api_reply_status(ar, 404, "NotFound", msg, details_new(ar->res, name));
}

static void reply_conflict(struct api_req *ar, const char *name)
{
	char msg[768];

	snprintf(msg, sizeof(msg),
		 "Operation cannot be fulfilled on %s%s%s \"%s\": the object has been modified; "
		 "please apply your changes to the latest version and try again",
		 ar->res->plural, ar->res->group[0] ? "." : "", ar->res->group, name);
	api_reply_status(ar, 409, "Conflict", msg, details_new(ar->res, name));
}

static void reply_badrequest(struct api_req *ar, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reply_badrequest(struct api_req *ar, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_reply_status(ar, 400, "BadRequest", msg, NULL);
}

/*
 * Rebuilds obj with Kubernetes' usual member order (apiVersion, kind,
 * metadata, ..., status) so stored and served objects read like kube's.
 * json-c keeps insertion order; this only moves references.
 */
static void canonical_order(struct json_object *obj)
{
	static const char *const first[] = {"apiVersion", "kind", "metadata"};
	struct json_object *tmp = json_object_new_object(), *st;
	struct lh_entry *e, *next;

	if (!tmp)
		return;
	for (size_t i = 0; i < 3; i++) {
		struct json_object *v = sl_json_get(obj, first[i]);
		if (v)
			json_object_object_add(tmp, first[i], json_object_get(v));
	}
	json_object_object_foreach(obj, k, v)
	{
		if (strcmp(k, "apiVersion") && strcmp(k, "kind") && strcmp(k, "metadata") &&
		    strcmp(k, "status"))
			json_object_object_add(tmp, k, json_object_get(v));
	}
	st = sl_json_get(obj, "status");
	if (st)
		json_object_object_add(tmp, "status", json_object_get(st));
	/* Empty obj, then move everything back in order. */
	for (e = json_object_get_object(obj)->head; e; e = next) {
		next = e->next;
		json_object_object_del(obj, (const char *)lh_entry_k(e));
	}
	json_object_object_foreach(tmp, k2, v2)
	{
		json_object_object_add(obj, k2, json_object_get(v2));
	}
	json_object_put(tmp);
}

/* Parses a request body as one JSON object of the request's kind. Replies and
 * returns NULL on any problem. */
static bool is_scale(const struct api_req *ar);

static struct json_object *parse_object(struct api_req *ar, const char *body, size_t len,
					bool set_type)
{
	const char *ctype =
		evhttp_find_header(evhttp_request_get_input_headers(ar->req), "Content-Type");
	struct json_object *obj;
	const char *av, *kind;
	char err[256];

	if (ctype && strstr(ctype, "protobuf")) {
		api_reply_status(ar, 415, "UnsupportedMediaType",
				 "the body of the request was in an unknown format - accepted "
				 "media types include: application/json, application/yaml",
				 NULL);
		return NULL;
	}
	if (!len) {
		reply_badrequest(ar, "the request body is empty; expected a JSON %s object",
				 ar->res->kind);
		return NULL;
	}
	obj = sl_json_parse(body, len, err, sizeof(err));
	if (!obj) {
		reply_badrequest(ar, "the body is not valid JSON: %s", err);
		return NULL;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		reply_badrequest(ar, "the body must be a JSON object, not %s",
				 json_type_to_name(json_object_get_type(obj)));
		json_object_put(obj);
		return NULL;
	}
	av = sl_json_get_str(obj, "apiVersion");
	kind = sl_json_get_str(obj, "kind");
	if (sl_json_get(obj, "apiVersion") && !av) {
		reply_badrequest(ar, "apiVersion must be a string");
		goto fail;
	}
	if (sl_json_get(obj, "kind") && !kind) {
		reply_badrequest(ar, "kind must be a string");
		goto fail;
	}
	if (av && strcmp(av, is_scale(ar) ? "autoscaling/v1" : api_resource_api_version(ar->res))) {
		reply_badrequest(
			ar,
			"the API version in the data (%s) does not match the expected "
			"API version (%s)",
			av, is_scale(ar) ? "autoscaling/v1" : api_resource_api_version(ar->res));
		goto fail;
	}
	if (kind && strcmp(kind, is_scale(ar) ? "Scale" : ar->res->kind)) {
		reply_badrequest(ar,
				 "the kind in the data (%s) does not match the expected kind (%s)",
				 kind, ar->res->kind);
		goto fail;
	}
	if (sl_json_get(obj, "metadata") &&
	    !json_object_is_type(sl_json_get(obj, "metadata"), json_type_object)) {
		reply_badrequest(ar, "metadata must be a JSON object");
		goto fail;
	}
	if (set_type) {
		sl_json_set_str(obj, "apiVersion", api_resource_api_version(ar->res));
		sl_json_set_str(obj, "kind", ar->res->kind);
	}
	return obj;
fail:
	json_object_put(obj);
	return NULL;
}

/* --- Service allocation --------------------------------------------------------- */

static bool svc_wants_ip(const struct json_object *spec)
{
	const char *type = sl_json_get_str(spec, "type");
	const char *ip = sl_json_get_str(spec, "clusterIP");

	if (type && !strcmp(type, "ExternalName"))
		return false;
	return !(ip && !strcmp(ip, "None"));
}

static bool svc_wants_nodeports(const struct json_object *spec)
{
	const char *type = sl_json_get_str(spec, "type");

	return type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer"));
}

static void alloc_undo(struct server *srv, struct svc_alloc *a)
{
	if (a->ip[0])
		ipalloc_release(srv->svc_ips, a->ip);
	for (int i = 0; i < a->n_ports; i++)
		portalloc_release(srv->node_ports, a->ports[i]);
	memset(a, 0, sizeof(*a));
}

static bool port_in(const struct svc_alloc *a, int port)
{
	for (int i = 0; i < a->n_ports; i++)
		if (a->ports[i] == port)
			return true;
	return false;
}

/* The ClusterIP and node ports an existing Service object holds. */
static void svc_held(const struct json_object *obj, struct svc_alloc *out)
{
	struct json_object *spec = sl_json_get(obj, "spec"), *ports;
	const char *ip;

	memset(out, 0, sizeof(*out));
	if (!spec)
		return;
	ip = sl_json_get_str(spec, "clusterIP");
	if (ip && ip[0] && strcmp(ip, "None"))
		snprintf(out->ip, sizeof(out->ip), "%s", ip);
	ports = sl_json_get(spec, "ports");
	if (ports && json_object_is_type(ports, json_type_array)) {
		for (size_t i = 0;
		     i < json_object_array_length(ports) && out->n_ports < MAX_SVC_PORTS; i++) {
			int64_t np;
			if (sl_json_get_int(json_object_array_get_idx(ports, i), "nodePort", &np) &&
			    np > 0)
				out->ports[out->n_ports++] = (int)np;
		}
	}
	{
		int64_t hc;
		if (sl_json_get_int(spec, "healthCheckNodePort", &hc) && hc > 0 &&
		    out->n_ports < MAX_SVC_PORTS + 1)
			out->ports[out->n_ports++] = (int)hc;
	}
}

static void port_taken_msg(struct server *srv, int err, char *msg, size_t len, int port)
{
	int lo, hi;

	portalloc_range(srv->node_ports, &lo, &hi);
	if (err == -EEXIST)
		snprintf(msg, len, "Invalid value: %d: provided port is already allocated", port);
	else
		snprintf(msg, len,
			 "Invalid value: %d: provided port is not in the valid range. The range of "
			 "valid ports is %d-%d",
			 port, lo, hi);
}

/*
 * Allocates what obj needs (ClusterIP, node ports, health check node port),
 * keeping whatever `old` already holds. Fills w->taken with new allocations
 * and w->release with old values that the new object no longer uses. Appends
 * causes on failure (and undoes its own allocations).
 */
static void svc_allocate(struct wop *w, struct json_object *obj, const struct json_object *old,
			 struct api_causes *causes)
{
	struct server *srv = w->srv;
	struct json_object *spec = sl_json_get(obj, "spec"), *ports;
	struct svc_alloc held = {0};
	const char *ip;
	char msg[256], field[64];
	int err;

	if (!spec)
		return;
	ports = sl_json_get(spec, "ports");
	if (ports && json_object_is_type(ports, json_type_array) &&
	    json_object_array_length(ports) > MAX_SVC_PORTS) {
		api_causes_add(causes, CAUSE_TOO_MANY, "spec.ports",
			       "Too many: %zu: must have at most %d items",
			       json_object_array_length(ports), MAX_SVC_PORTS);
		return;
	}
	if (old)
		svc_held(old, &held);

	if (svc_wants_ip(spec)) {
		ip = sl_json_get_str(spec, "clusterIP");
		if (ip && ip[0]) {
			if (strcmp(ip, held.ip)) {
				err = ipalloc_take(srv->svc_ips, ip);
				if (err == -EEXIST) {
					api_causes_add(
						causes, CAUSE_INVALID, "spec.clusterIPs",
						"Invalid value: [\"%s\"]: failed to allocate IP "
						"%s: provided IP is already allocated",
						ip, ip);
				} else if (err) {
					api_causes_add(
						causes, CAUSE_INVALID, "spec.clusterIPs",
						"Invalid value: [\"%s\"]: failed to allocate IP "
						"%s: provided IP is not in the valid range. The "
						"range of valid IPs is %s",
						ip, ip, ipalloc_cidr(srv->svc_ips));
				} else {
					snprintf(w->taken.ip, sizeof(w->taken.ip), "%s", ip);
				}
			}
		} else if (held.ip[0]) {
			/* Updates that omit clusterIP keep the allocated one. */
			sl_json_set_str(spec, "clusterIP", held.ip);
		} else {
			char buf[64];
			err = ipalloc_next(srv->svc_ips, buf, sizeof(buf));
			if (err) {
				api_causes_add(causes, CAUSE_INVALID, "spec.clusterIPs",
					       "Internal error: failed to allocate a serviceIP: "
					       "range is full");
			} else {
				snprintf(w->taken.ip, sizeof(w->taken.ip), "%s", buf);
				sl_json_set_str(spec, "clusterIP", buf);
			}
		}
		ip = sl_json_get_str(spec, "clusterIP");
		if (ip && ip[0]) {
			struct json_object *ips = json_object_new_array();
			json_object_array_add(ips, json_object_new_string(ip));
			json_object_object_add(spec, "clusterIPs", ips);
		}
	}

	ports = sl_json_get(spec, "ports");
	if (svc_wants_nodeports(spec) && ports && json_object_is_type(ports, json_type_array)) {
		struct json_object *oldports = sl_json_path(old, "spec", "ports", (char *)NULL);
		for (size_t i = 0; i < json_object_array_length(ports); i++) {
			struct json_object *p = json_object_array_get_idx(ports, i);
			int64_t np = 0, pp = 0;
			snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", i);
			if (!sl_json_get_int(p, "nodePort", &np) || np == 0) {
				/* Keep the node port the same port had before. */
				sl_json_get_int(p, "port", &pp);
				for (size_t j = 0;
				     oldports && j < json_object_array_length(oldports); j++) {
					struct json_object *op =
						json_object_array_get_idx(oldports, j);
					int64_t opp = 0, onp = 0;
					const char *pa = sl_json_get_str(p, "protocol"),
						   *pb = sl_json_get_str(op, "protocol");
					if (sl_json_get_int(op, "port", &opp) && opp == pp &&
					    sl_json_get_int(op, "nodePort", &onp) && onp > 0 &&
					    (!pa || !pb || !strcmp(pa, pb))) {
						np = onp;
						sl_json_set_int(p, "nodePort", np);
						break;
					}
				}
			}
			if (np > 0) {
				if (port_in(&held, (int)np) && !port_in(&w->taken, (int)np))
					continue;
				err = portalloc_take(srv->node_ports, (int)np);
				if (err) {
					port_taken_msg(srv, err, msg, sizeof(msg), (int)np);
					api_causes_add(causes, CAUSE_INVALID, field, "%s", msg);
					continue;
				}
				w->taken.ports[w->taken.n_ports++] = (int)np;
			} else {
				int got;
				if (portalloc_next(srv->node_ports, &got)) {
					api_causes_add(
						causes, CAUSE_INVALID, field,
						"Internal error: failed to allocate a nodePort: "
						"range is full");
					continue;
				}
				w->taken.ports[w->taken.n_ports++] = got;
				sl_json_set_int(p, "nodePort", got);
			}
			if (w->taken.n_ports >= MAX_SVC_PORTS)
				break;
		}
	} else if (ports && json_object_is_type(ports, json_type_array)) {
		/* Types without node ports must not carry them (kube clears them
		 * when a Service changes type to ClusterIP). */
		for (size_t i = 0; i < json_object_array_length(ports); i++)
			json_object_object_del(json_object_array_get_idx(ports, i), "nodePort");
	}

	/* healthCheckNodePort: LoadBalancer with externalTrafficPolicy Local. */
	{
		const char *type = sl_json_get_str(spec, "type");
		const char *etp = sl_json_get_str(spec, "externalTrafficPolicy");
		int64_t hc = 0;
		if (type && !strcmp(type, "LoadBalancer") && etp && !strcmp(etp, "Local")) {
			if (!sl_json_get_int(spec, "healthCheckNodePort", &hc) || hc == 0) {
				int64_t oldhc = 0;
				if (sl_json_get_int(sl_json_get(old, "spec"), "healthCheckNodePort",
						    &oldhc) &&
				    oldhc > 0) {
					sl_json_set_int(spec, "healthCheckNodePort", oldhc);
				} else {
					int got;
					if (portalloc_next(srv->node_ports, &got)) {
						api_causes_add(
							causes, CAUSE_INVALID,
							"spec.healthCheckNodePort",
							"Internal error: failed to allocate a "
							"nodePort: range is full");
					} else {
						w->taken.ports[w->taken.n_ports++] = got;
						sl_json_set_int(spec, "healthCheckNodePort", got);
					}
				}
			} else if (!port_in(&held, (int)hc)) {
				err = portalloc_take(srv->node_ports, (int)hc);
				if (err) {
					port_taken_msg(srv, err, msg, sizeof(msg), (int)hc);
					api_causes_add(causes, CAUSE_INVALID,
						       "spec.healthCheckNodePort", "%s", msg);
				} else {
					w->taken.ports[w->taken.n_ports++] = (int)hc;
				}
			}
		} else {
			json_object_object_del(spec, "healthCheckNodePort");
		}
	}

	if (causes->n) {
		alloc_undo(srv, &w->taken);
		return;
	}
	/* What the old object held and the new one does not is released after
	 * the write commits. */
	{
		struct svc_alloc now;
		svc_held(obj, &now);
		if (held.ip[0] && strcmp(held.ip, now.ip))
			snprintf(w->release.ip, sizeof(w->release.ip), "%s", held.ip);
		for (int i = 0; i < held.n_ports; i++)
			if (!port_in(&now, held.ports[i]))
				w->release.ports[w->release.n_ports++] = held.ports[i];
	}
}

/* --- write ops -------------------------------------------------------------------- */

static void wop_free(struct wop *w)
{
	if (!w)
		return;
	json_object_put(w->obj);
	cache_obj_unref(w->old);
	store_txn_fini(&w->txn);
	free(w->value);
	free(w->body);
	free(w);
}

/* Answers the client (or logs, for internal writes) and frees the op. */
static void wop_finish(struct wop *w, int err)
{
	if (w->done)
		w->done(w, err);
	api_req_free(w->ar);
	wop_free(w);
}

static void wop_fail_status(struct wop *w, int code, const char *reason, const char *msg)
{
	if (w->ar)
		api_reply_status(w->ar, code, reason, msg, details_new(w->res, w->ar->name));
	else
		pr_warn("control", "internal write '%s': %s", w->key, msg);
	wop_finish(w, -EINVAL);
}

static void wop_fail_invalid(struct wop *w, const char *name, const struct api_causes *causes)
{
	if (w->ar) {
		api_reply_invalid(w->ar, w->res->kind, name, causes);
	} else {
		pr_warn("control", "internal write '%s': invalid: %s: %s", w->key,
			causes->n ? causes->v[0].field : "", causes->n ? causes->v[0].message : "");
	}
	wop_finish(w, -SL_ERR_INVALID);
}

static void wop_retry(struct wop *w);
static void wop_done(struct store_txn *txn, void *arg);

static void wop_submit(struct wop *w)
{
	struct server *srv = w->srv;
	int err;

	free(w->value);
	w->value = NULL;
	store_txn_fini(&w->txn);
	memset(&w->txn, 0, sizeof(w->txn));
	w->txn.key = w->key;
	w->txn.done = wop_done;
	w->txn.done_arg = w;
	switch (w->kind) {
	case W_CREATE:
		w->txn.op = STORE_CREATE;
		break;
	case W_UPDATE:
		w->txn.op = STORE_UPDATE;
		w->txn.expect_rev = w->old->mod_rev;
		break;
	case W_DELETE:
		w->txn.op = STORE_DELETE;
		w->txn.expect_rev = w->old->mod_rev;
		break;
	}
	if (w->obj) {
		size_t len;
		const char *s;
		struct json_object *meta = sl_json_get(w->obj, "metadata");
		/* resourceVersion is the store's mod_rev, never stored in the value. */
		if (meta)
			json_object_object_del(meta, "resourceVersion");
		s = sl_json_str(w->obj, &len);
		w->value = malloc(len + 1);
		if (!w->value) {
			alloc_undo(srv, &w->taken);
			wop_fail_status(w, 500, "InternalError", "out of memory");
			return;
		}
		memcpy(w->value, s, len + 1);
		w->txn.value = w->value;
		w->txn.value_len = len;
		w->txn.hint = w->obj;
	}
	srv->pending_writes++;
	err = store_submit(srv->store, &w->txn);
	if (err) {
		char msg[256];
		srv->pending_writes--;
		alloc_undo(srv, &w->taken);
		if (err == -ESHUTDOWN) {
			wop_fail_status(w, 503, "ServiceUnavailable", "the store is shutting down");
			return;
		}
		snprintf(msg, sizeof(msg), "store rejected the write: %s", sl_strerror(err));
		pr_err("control", "'%s': submit failed: %s", w->key, sl_strerror(err));
		wop_fail_status(w, 500, "InternalError", msg);
	}
}

static void reply_object_json(struct api_req *ar, int code, struct json_object *obj);

static void wop_done(struct store_txn *txn, void *arg)
{
	struct wop *w = arg;
	struct server *srv = w->srv;
	char msg[640];

	srv->pending_writes--;
	metrics_commit(srv->metrics, w->ar ? api_elapsed(&w->ar->start) : 0);
	if (txn->err == 0) {
		alloc_undo(srv, &w->release); /* releases what the old object held */
		memset(&w->taken, 0, sizeof(w->taken));
		if (w->ar) {
			if (w->binding) {
				api_reply_status(w->ar, 201, NULL, NULL, NULL);
			} else if (w->kind == W_DELETE) {
				/* Like kube: the last state, at the deletion's revision. */
				struct json_object *o = cache_obj_parse(w->old);
				char rv[24];
				snprintf(rv, sizeof(rv), "%" PRId64, txn->rev);
				if (o)
					sl_json_set_str(sl_json_ensure_obj(o, "metadata"),
							"resourceVersion", rv);
				api_reply_obj(w->ar, 200, o);
			} else {
				reply_object_json(w->ar, w->kind == W_CREATE ? 201 : 200, w->obj);
			}
		}
		wop_finish(w, 0);
		return;
	}
	alloc_undo(srv, &w->taken);
	switch (txn->err) {
	case -SL_ERR_EXISTS:
		if (w->res->group[0])
			snprintf(msg, sizeof(msg), "%s.%s \"%s\" already exists", w->res->plural,
				 w->res->group,
				 sl_json_get_str(sl_json_get(w->obj, "metadata"), "name"));
		else
			snprintf(msg, sizeof(msg), "%s \"%s\" already exists", w->res->plural,
				 sl_json_get_str(sl_json_get(w->obj, "metadata"), "name"));
		if (w->ar) {
			api_reply_status(
				w->ar, 409, "AlreadyExists", msg,
				details_new(w->res, sl_json_get_str(sl_json_get(w->obj, "metadata"),
								    "name")));
		}
		wop_finish(w, txn->err);
		return;
	case -SL_ERR_CONFLICT:
	case -SL_ERR_NOTFOUND:
		if (w->attempts < MAX_WRITE_RETRIES && !w->explicit_rv && w->ar) {
			wop_retry(w);
			return;
		}
		if (w->ar) {
			if (txn->err == -SL_ERR_NOTFOUND)
				reply_notfound(w->ar, w->ar->name);
			else
				reply_conflict(w->ar, w->ar->name);
		}
		wop_finish(w, txn->err);
		return;
	default:
		snprintf(msg, sizeof(msg), "storage error: %s", sl_strerror(txn->err));
		pr_err("control", "'%s': write failed: %s", w->key, sl_strerror(txn->err));
		if (w->ar)
			api_reply_status(w->ar, 500, "InternalError", msg, NULL);
		wop_finish(w, txn->err);
		return;
	}
}

static struct wop *wop_new(struct server *srv, struct api_req *ar, const struct api_resource *r,
			   enum wop_kind kind)
{
	struct wop *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->srv = srv;
	w->ar = ar;
	w->res = r;
	w->kind = kind;
	return w;
}

/* --- the scale subresource --------------------------------------------------------- */

/*
 * The autoscaling/v1 Scale view of a Deployment or ReplicaSet: spec.replicas,
 * status.replicas and the selector in string form (what kubectl scale and
 * HPAs read). Returns a new object or NULL on out of memory.
 */
static struct json_object *scale_of(const struct json_object *obj)
{
	struct json_object *sc = json_object_new_object(), *meta, *ometa, *spec, *st;
	struct sl_labelsel *sel;
	int64_t v = 0;
	static const char *const keep[] = {"name", "namespace", "uid", "resourceVersion",
					   "creationTimestamp"};

	if (!sc)
		return NULL;
	sl_json_set_str(sc, "kind", "Scale");
	sl_json_set_str(sc, "apiVersion", "autoscaling/v1");
	meta = sl_json_ensure_obj(sc, "metadata");
	ometa = sl_json_get(obj, "metadata");
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		struct json_object *m = sl_json_get(ometa, keep[i]);
		if (m)
			json_object_object_add(meta, keep[i], json_object_get(m));
	}
	spec = sl_json_ensure_obj(sc, "spec");
	if (!sl_json_get_int(sl_json_get(obj, "spec"), "replicas", &v))
		v = 1;
	sl_json_set_int(spec, "replicas", v);
	st = sl_json_ensure_obj(sc, "status");
	v = 0;
	sl_json_get_int(sl_json_get(obj, "status"), "replicas", &v);
	sl_json_set_int(st, "replicas", v);
	sel = sl_labelsel_from_json(sl_json_get(sl_json_get(obj, "spec"), "selector"), "", NULL, 0);
	if (sel) {
		char *str = sl_labelsel_string(sel);
		if (str)
			sl_json_set_str(st, "selector", str);
		free(str);
		sl_labelsel_free(sel);
	}
	return sc;
}

static bool is_scale(const struct api_req *ar)
{
	return ar && !strcmp(ar->sub, "scale");
}

/* --- reading ------------------------------------------------------------------------ */

static void reply_object_json(struct api_req *ar, int code, struct json_object *obj)
{
	size_t len;
	const char *s;

	if (is_scale(ar)) {
		api_reply_obj(ar, code, scale_of(obj));
		return;
	}
	if (ar->table) {
		struct json_object *copy = sl_json_clone(obj);
		struct cache_obj tmp = {0};
		struct cache_obj *one = &tmp;
		const char *rv = sl_json_get_str(sl_json_get(obj, "metadata"), "resourceVersion");
		s = sl_json_str(obj, &len);
		tmp.res = ar->res;
		tmp.json = (char *)s;
		tmp.len = len;
		api_reply_obj(ar, code, table_build(ar, &one, 1, rv ? rv : "", NULL));
		json_object_put(copy);
		return;
	}
	s = sl_json_str(obj, &len);
	api_reply_json(ar, code, s, len);
}

void handle_get(struct api_req *ar)
{
	struct cache_obj *o = cache_get(ar->srv->cache, ar->res, ar->ns, ar->name);

	if (!o) {
		reply_notfound(ar, ar->name);
	} else if (is_scale(ar)) {
		struct json_object *obj = cache_obj_parse(o);
		if (obj)
			reply_object_json(ar, 200, obj);
		else
			api_reply_status(ar, 500, "InternalError",
					 "stored object is not valid JSON", NULL);
		json_object_put(obj);
	} else if (ar->table) {
		char rv[24];
		snprintf(rv, sizeof(rv), "%" PRId64, o->mod_rev);
		api_reply_obj(ar, 200, table_build(ar, &o, 1, rv, NULL));
	} else {
		api_reply_json(ar, 200, o->json, o->len);
	}
	api_req_free(ar);
}

/* kube-apiserver's answer to a resourceVersion the cache has not reached:
 * 504 with a ResourceVersionTooLarge cause, which client-go treats as "retry,
 * then relist". A single-process store never catches up to a version it did
 * not issue, so there is no point waiting first. */
void api_reply_too_large_rv(struct api_req *ar, int64_t want, int64_t cur)
{
	char msg[160];
	struct json_object *d = json_object_new_object(), *causes = json_object_new_array();
	struct json_object *c = json_object_new_object();

	snprintf(msg, sizeof(msg), "Too large resource version: %" PRId64 ", current: %" PRId64,
		 want, cur);
	json_object_object_add(c, "reason", json_object_new_string("ResourceVersionTooLarge"));
	json_object_object_add(c, "message", json_object_new_string(msg));
	json_object_array_add(causes, c);
	json_object_object_add(d, "causes", causes);
	json_object_object_add(d, "retryAfterSeconds", json_object_new_int(1));
	api_reply_status(ar, 504, "Timeout", msg, d);
}

/* Builds the filter for list/watch from the query; replies 400 and returns
 * false on bad selectors. */
bool api_filter_from_query(struct api_req *ar, struct cache_watcher *f);
bool api_filter_from_query(struct api_req *ar, struct cache_watcher *f)
{
	const char *ls = api_query(ar, "labelSelector");
	const char *fs = api_query(ar, "fieldSelector");
	char err[256];

	memset(f, 0, sizeof(*f));
	f->res = ar->res;
	f->ns = ar->ns[0] ? ar->ns : NULL;
	if (ls && ls[0]) {
		f->lsel = sl_labelsel_parse(ls, err, sizeof(err));
		if (!f->lsel) {
			reply_badrequest(ar, "unable to parse requirement: %s", err);
			return false;
		}
	}
	if (fs && fs[0]) {
		const char *bad;
		f->fsel = sl_fieldsel_parse(fs, err, sizeof(err));
		if (!f->fsel) {
			sl_labelsel_free(f->lsel);
			f->lsel = NULL;
			reply_badrequest(ar, "invalid field selector: %s", err);
			return false;
		}
		bad = sl_fieldsel_unsupported(f->fsel, api_resource_field_list(ar->res));
		if (bad) {
			reply_badrequest(ar, "field label not supported: %s", bad);
			sl_labelsel_free(f->lsel);
			sl_fieldsel_free(f->fsel);
			f->lsel = NULL;
			f->fsel = NULL;
			return false;
		}
	}
	/* A name in the path (watch on /pods/NAME) narrows to that object. */
	return true;
}

struct list_ctx {
	struct cache_obj **objs;
	size_t n, cap;
	size_t limit; /* 0 = no limit */
	bool more;
};

static int list_collect(struct cache_obj *o, void *arg)
{
	struct list_ctx *lc = arg;

	if (lc->limit && lc->n == lc->limit) {
		lc->more = true;
		return 1;
	}
	if (lc->n == lc->cap) {
		size_t cap = lc->cap ? lc->cap * 2 : 256;
		struct cache_obj **v = realloc(lc->objs, cap * sizeof(struct cache_obj *));
		if (!v)
			return 1;
		lc->objs = v;
		lc->cap = cap;
	}
	lc->objs[lc->n++] = o;
	return 0;
}

/* Continue tokens: base64url of "<rv>\n<last key>"; opaque to clients. */
static char *continue_encode(int64_t rv, const char *key)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char raw[600];
	int n = snprintf(raw, sizeof(raw), "%" PRId64 "\n%s", rv, key);
	char *out;
	size_t o = 0;

	if (n < 0 || (size_t)n >= sizeof(raw))
		return NULL;
	out = malloc(((size_t)n + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	for (int i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)raw[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)raw[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)raw[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tbl[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = tbl[v & 63];
	}
	out[o] = '\0';
	return out;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return -1;
}

static int continue_decode(const char *tok, int64_t *rv, char *key, size_t keylen)
{
	char raw[600];
	size_t n = 0, len = strlen(tok);
	unsigned acc = 0;
	int bits = 0;
	char *nl, *end;

	for (size_t i = 0; i < len; i++) {
		int v;
		if (tok[i] == '=')
			break;
		v = b64val(tok[i]);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= sizeof(raw))
				return -EINVAL;
			raw[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	raw[n] = '\0';
	nl = strchr(raw, '\n');
	if (!nl || memchr(raw, '\0', n))
		return -EINVAL;
	*nl = '\0';
	errno = 0;
	*rv = strtoll(raw, &end, 10);
	if (*end || errno || *rv < 0 || strlen(nl + 1) >= keylen || nl[1] != '/')
		return -EINVAL;
	strcpy(key, nl + 1);
	return 0;
}

void handle_list(struct api_req *ar)
{
	struct server *srv = ar->srv;
	struct cache_watcher f;
	struct list_ctx lc = {0};
	const char *lim = api_query(ar, "limit");
	const char *cont = api_query(ar, "continue");
	const char *rvq = api_query(ar, "resourceVersion");
	const char *rvm = api_query(ar, "resourceVersionMatch");
	char after[600], rvbuf[24], prefix[512];
	const char *after_key = NULL;
	int64_t list_rv = cache_rev(srv->cache);
	char *next = NULL;

	if (!api_filter_from_query(ar, &f))
		goto out_free;
	if (lim && lim[0]) {
		char *end;
		long long l = strtoll(lim, &end, 10);
		if (*end || l < 0) {
			reply_badrequest(
				ar, "limit: invalid value \"%s\": must be a non-negative integer",
				lim);
			goto out;
		}
		lc.limit = (size_t)l;
	}
	if (rvq && rvq[0]) {
		char *end;
		long long want = strtoll(rvq, &end, 10);
		if (*end || want < 0) {
			api_reply_status(ar, 400, "BadRequest",
					 "resourceVersion: Invalid value: must be a non-negative "
					 "integer",
					 NULL);
			goto out;
		}
		if (want > list_rv) {
			api_reply_too_large_rv(ar, want, list_rv);
			goto out;
		}
		if (rvm && !strcmp(rvm, "Exact") && want != list_rv) {
			char msg[160];
			snprintf(msg, sizeof(msg), "too old resource version: %lld (%lld)", want,
				 (long long)list_rv);
			api_reply_status(ar, 410, "Expired", msg, NULL);
			goto out;
		}
	}
	if (rvm && rvm[0] && strcmp(rvm, "Exact") && strcmp(rvm, "NotOlderThan")) {
		reply_badrequest(
			ar,
			"resourceVersionMatch: Unsupported value: \"%s\": supported values: "
			"\"Exact\", \"NotOlderThan\"",
			rvm);
		goto out;
	}
	if (cont && cont[0]) {
		if (continue_decode(cont, &list_rv, after, sizeof(after)) ||
		    api_resource_prefix(ar->res, f.ns, prefix, sizeof(prefix)) ||
		    strncmp(after, prefix, strlen(prefix))) {
			api_reply_status(ar, 400, "BadRequest",
					 "continue key is not valid: the token is malformed or "
					 "belongs to another resource",
					 NULL);
			goto out;
		}
		after_key = after;
	}

	cache_list(srv->cache, &f, after_key, list_collect, &lc);
	if (lc.more && lc.n)
		next = continue_encode(list_rv, lc.objs[lc.n - 1]->key);
	snprintf(rvbuf, sizeof(rvbuf), "%" PRId64, list_rv);

	if (ar->table) {
		api_reply_obj(ar, 200, table_build(ar, lc.objs, lc.n, rvbuf, next));
	} else {
		/*
		 * Items are already serialised: the list is a concatenation, copied
		 * into one buffer sized for the whole page. Referencing each item
		 * instead (evbuffer_add_reference) costs a 512-byte chain per item
		 * and per comma: serving a 500-item page was a thousand mallocs,
		 * and a start of an agent at 50,000 Services (two lists of 100
		 * pages) spent 0.5 s of the server's 0.9 s of CPU in malloc and
		 * the page faults of those chains. Copying ~1 KiB per item into a
		 * buffer allocated once costs a fraction of that.
		 */
		size_t total = 128 + strlen(ar->res->kind) +
			       strlen(api_resource_api_version(ar->res)) + strlen(rvbuf) +
			       (next ? strlen(next) + 16 : 0) + lc.n;
		struct evbuffer *b;

		for (size_t i = 0; i < lc.n; i++)
			total += lc.objs[i]->len;
		b = evbuffer_new();
		if (!b || evbuffer_expand(b, total)) {
			if (b)
				evbuffer_free(b);
			api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
			goto out;
		}
		evbuffer_add_printf(b,
				    "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":{"
				    "\"resourceVersion\":\"%s\"",
				    ar->res->kind, api_resource_api_version(ar->res), rvbuf);
		if (next)
			evbuffer_add_printf(b, ",\"continue\":\"%s\"", next);
		evbuffer_add(b, "},\"items\":[", 11);
		for (size_t i = 0; i < lc.n; i++) {
			if (i)
				evbuffer_add(b, ",", 1);
			evbuffer_add(b, lc.objs[i]->json, lc.objs[i]->len);
		}
		evbuffer_add(b, "]}", 2);
		api_reply_evbuf(ar, 200, b);
	}
out:
	sl_labelsel_free(f.lsel);
	sl_fieldsel_free(f.fsel);
out_free:
	free(next);
	free(lc.objs);
	api_req_free(ar);
}

/* --- create ------------------------------------------------------------------------- */

static void prepare_for_create(const struct api_resource *r, struct json_object *obj)
{
	if (!strcmp(r->kind, "Pod")) {
		/* Clients do not set pod status on create (kube resets it). */
		struct json_object *st = json_object_new_object();
		json_object_object_add(st, "phase", json_object_new_string("Pending"));
		json_object_object_add(obj, "status", st);
	} else if (!strcmp(r->kind, "Service")) {
		struct json_object *st = json_object_new_object();
		json_object_object_add(st, "loadBalancer", json_object_new_object());
		json_object_object_add(obj, "status", st);
	} else if (!strcmp(r->kind, "Namespace")) {
		json_object_object_del(obj, "status");
	}
}

/* Built-in namespaces that are never deleted. */
static bool ns_protected(const char *name)
{
	return !strcmp(name, "default") || !strcmp(name, "kube-system") ||
	       !strcmp(name, "kube-public");
}

/*
 * A namespace is terminating once the server has set its deletionTimestamp
 * (clients cannot set it: carry_system_fields keeps the stored value). Labels,
 * annotations or a status PUT saying "Terminating" mean nothing.
 */
static bool ns_terminating(const struct cache_obj *ns)
{
	return ns && ns->deleting && !ns_protected(ns->name);
}

/*
 * Common create path for HTTP and internal writes: obj is owned by w.
 * Returns after submitting or failing (the wop is finished on failure).
 */
static void create_submit(struct wop *w, const char *ns)
{
	struct server *srv = w->srv;
	const struct api_resource *r = w->res;
	struct json_object *meta = sl_json_ensure_obj(w->obj, "metadata");
	const char *name, *gen, *bodyns;
	struct api_causes causes = {0};
	char ts[32], uid[37];

	bodyns = sl_json_get_str(meta, "namespace");
	if (r->namespaced) {
		if (bodyns && bodyns[0] && strcmp(bodyns, ns)) {
			wop_fail_status(w, 400, "BadRequest",
					"the namespace of the provided object does not match the "
					"namespace sent on the request");
			return;
		}
		sl_json_set_str(meta, "namespace", ns);
		struct cache_obj *nso = cache_get(srv->cache, &api_resources[0], NULL, ns);
		if (!nso) {
			char msg[320];
			snprintf(msg, sizeof(msg), "namespaces \"%s\" not found", ns);
			if (w->ar)
				api_reply_status(w->ar, 404, "NotFound", msg,
						 details_new(&api_resources[0], ns));
			wop_finish(w, -SL_ERR_NOTFOUND);
			return;
		}
		if (ns_terminating(nso)) {
			char msg[400];
			snprintf(
				msg, sizeof(msg),
				"%s \"%s\" is forbidden: unable to create new content in namespace "
				"%s because it is being terminated",
				r->plural, sl_json_get_str(meta, "name") ?: "", ns);
			wop_fail_status(w, 403, "Forbidden", msg);
			return;
		}
	} else if (bodyns && bodyns[0]) {
		json_object_object_del(meta, "namespace");
	}
	if (sl_json_get(meta, "resourceVersion") && sl_json_get_str(meta, "resourceVersion") &&
	    sl_json_get_str(meta, "resourceVersion")[0]) {
		wop_fail_status(w, 400, "BadRequest",
				"resourceVersion should not be set on objects to be created");
		return;
	}
	name = sl_json_get_str(meta, "name");
	gen = sl_json_get_str(meta, "generateName");
	if ((!name || !name[0]) && gen && gen[0]) {
		char full[300], sfx[6];
		random_suffix(sfx);
		/* kube trims the prefix so prefix+suffix fits 63 characters. */
		snprintf(full, sizeof(full), "%.*s%s", (int)(strlen(gen) > 58 ? 58 : strlen(gen)),
			 gen, sfx);
		sl_json_set_str(meta, "name", full);
		name = sl_json_get_str(meta, "name");
	}
	if (!name || !name[0]) {
		api_causes_add(&causes, CAUSE_REQUIRED, "metadata.name",
			       "Required value: name or generateName is required");
		wop_fail_invalid(w, "", &causes);
		api_causes_fini(&causes);
		return;
	}
	if (w->ar)
		snprintf(w->ar->name, sizeof(w->ar->name), "%s", name);

	new_uid(uid);
	now_rfc3339(ts, sizeof(ts));
	sl_json_set_str(meta, "uid", uid);
	sl_json_set_str(meta, "creationTimestamp", ts);
	json_object_object_del(meta, "deletionTimestamp");
	json_object_object_del(meta, "deletionGracePeriodSeconds");
	json_object_object_del(meta, "selfLink");
	if (sl_json_get(w->obj, "spec"))
		sl_json_set_int(meta, "generation", 1);
	else
		json_object_object_del(meta, "generation");
	prepare_for_create(r, w->obj);

	canonical_order(w->obj);
	if (default_object(r->kind, w->obj, NULL)) {
		wop_fail_status(w, 500, "InternalError", "out of memory while defaulting");
		return;
	}
	validate_object(r->kind, r->namespaced, w->obj, NULL, &causes);
	if (!causes.n && !strcmp(r->kind, "Service"))
		svc_allocate(w, w->obj, NULL, &causes);
	if (causes.n) {
		wop_fail_invalid(w, name, &causes);
		api_causes_fini(&causes);
		return;
	}
	if (api_resource_key(r, r->namespaced ? ns : NULL, name, w->key, sizeof(w->key))) {
		alloc_undo(srv, &w->taken);
		wop_fail_status(w, 400, "BadRequest", "object name too long");
		return;
	}
	wop_submit(w);
}

void handle_create(struct api_req *ar, const char *body, size_t len)
{
	struct wop *w;
	struct json_object *obj;

	if (ar->srv->pending_writes >= MAX_PENDING_WRITES) {
		api_reply_status(ar, 429, "TooManyRequests",
				 "too many writes in flight, please try again later", NULL);
		api_req_free(ar);
		return;
	}
	obj = parse_object(ar, body, len, true);
	if (!obj) {
		api_req_free(ar);
		return;
	}
	w = wop_new(ar->srv, ar, ar->res, W_CREATE);
	if (!w) {
		json_object_put(obj);
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		api_req_free(ar);
		return;
	}
	w->obj = obj;
	create_submit(w, ar->ns);
}

/* Internal create (bootstrap); obj is consumed. */
static int create_internal(struct server *srv, const struct api_resource *r, const char *ns,
			   struct json_object *obj, wop_done_fn done, void *arg)
{
	struct wop *w = wop_new(srv, NULL, r, W_CREATE);

	if (!w) {
		json_object_put(obj);
		return -ENOMEM;
	}
	sl_json_set_str(obj, "apiVersion", api_resource_api_version(r));
	sl_json_set_str(obj, "kind", r->kind);
	w->obj = obj;
	w->done = done;
	w->done_arg = arg;
	create_submit(w, ns ? ns : "");
	return 0;
}

/* --- update / patch ------------------------------------------------------------------- */

static enum patch_type patch_type_of(const char *ctype)
{
	if (!ctype)
		return PATCH_NONE;
	if (!strncmp(ctype, "application/merge-patch+json", 28))
		return PATCH_MERGE;
	if (!strncmp(ctype, "application/json-patch+json", 27))
		return PATCH_JSON;
	if (!strncmp(ctype, "application/strategic-merge-patch+json", 38))
		return PATCH_STRATEGIC;
	return PATCH_NONE;
}

/* Copies what a write may not change from the stored object. */
static void carry_system_fields(const struct api_resource *r, struct json_object *obj,
				const struct json_object *old, bool status_only)
{
	struct json_object *meta = sl_json_ensure_obj(obj, "metadata");
	struct json_object *ometa = sl_json_get(old, "metadata");
	static const char *const keep[] = {"uid",
					   "creationTimestamp",
					   "deletionTimestamp",
					   "deletionGracePeriodSeconds",
					   "namespace",
					   "name"};
	int64_t gen = 0;

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		struct json_object *v = sl_json_get(ometa, keep[i]);
		if (v)
			json_object_object_add(meta, keep[i], json_object_get(v));
		else
			json_object_object_del(meta, keep[i]);
	}
	json_object_object_del(meta, "selfLink");
	if (r->has_status && !status_only) {
		/* The main resource cannot change status; /status can. */
		struct json_object *st = sl_json_get(old, "status");
		if (st)
			json_object_object_add(obj, "status", json_object_get(st));
		else
			json_object_object_del(obj, "status");
	}
	if (sl_json_get_int(ometa, "generation", &gen))
		sl_json_set_int(meta, "generation", gen);
}

/*
 * metadata.generation counts spec changes. Compared after defaulting, so a
 * PUT that omits defaulted fields is not a change (and stays a no-op).
 */
static void bump_generation(struct json_object *obj, const struct json_object *old)
{
	struct json_object *meta = sl_json_ensure_obj(obj, "metadata");
	int64_t gen = 0;
	bool changed;

	if (!sl_json_get_int(sl_json_get(old, "metadata"), "generation", &gen) &&
	    !sl_json_get(obj, "spec"))
		return;
	changed = !sl_json_equal(sl_json_get(obj, "spec"),
				 sl_json_get((struct json_object *)old, "spec"));
	sl_json_set_int(meta, "generation", gen + (changed ? 1 : 0) + (gen == 0 ? 1 : 0));
}

/* The object a status-subresource write produces: old with the new status. */
static struct json_object *status_only_object(const struct json_object *old,
					      struct json_object *incoming)
{
	struct json_object *obj = sl_json_clone((struct json_object *)old);
	struct json_object *st = sl_json_get(incoming, "status");

	if (!obj)
		return NULL;
	if (st)
		json_object_object_add(obj, "status", json_object_get(st));
	else
		json_object_object_del(obj, "status");
	/* Metadata labels/annotations may change through /status too (kube
	 * allows it for most kinds); keep the rest of metadata from old. */
	return obj;
}

static bool same_object(struct json_object *a, const struct json_object *b)
{
	/* Compare without resourceVersion (a never carries one at this point). */
	struct json_object *bc = sl_json_clone((struct json_object *)b);
	bool eq;

	if (!bc)
		return false;
	json_object_object_del(sl_json_get(bc, "metadata"), "resourceVersion");
	json_object_object_del(sl_json_get(a, "metadata"), "resourceVersion");
	eq = sl_json_equal(a, bc);
	json_object_put(bc);
	return eq;
}

/* Second half of update/patch: obj is the proposed object; w->old is set. */
static void update_submit(struct wop *w, bool status_only)
{
	struct server *srv = w->srv;
	struct api_causes causes = {0};
	struct json_object *old = cache_obj_parse(w->old);

	if (!old) {
		wop_fail_status(w, 500, "InternalError", "stored object is not valid JSON");
		return;
	}
	carry_system_fields(w->res, w->obj, old, status_only);
	canonical_order(w->obj);
	if (default_object(w->res->kind, w->obj, old)) {
		json_object_put(old);
		wop_fail_status(w, 500, "InternalError", "out of memory while defaulting");
		return;
	}
	bump_generation(w->obj, old);
	validate_object(w->res->kind, w->res->namespaced, w->obj, old, &causes);
	if (!causes.n && !strcmp(w->res->kind, "Service"))
		svc_allocate(w, w->obj, old, &causes);
	if (causes.n) {
		json_object_put(old);
		wop_fail_invalid(w, w->ar ? w->ar->name : "", &causes);
		api_causes_fini(&causes);
		return;
	}
	if (same_object(w->obj, old)) {
		/* A no-op write changes nothing, not even the revision. */
		alloc_undo(srv, &w->taken);
		if (w->ar && is_scale(w->ar))
			reply_object_json(w->ar, 200, old);
		else if (w->ar)
			api_reply_json(w->ar, 200, w->old->json, w->old->len);
		json_object_put(old);
		wop_finish(w, 0);
		return;
	}
	json_object_put(old);
	wop_submit(w);
}

/* Builds the proposed object for a PUT or PATCH from w->body against the
 * current cached object; replies and finishes w on failure. */
static void update_run(struct wop *w)
{
	struct api_req *ar = w->ar;
	struct cache_obj *cur = cache_get(w->srv->cache, w->res, ar->ns, ar->name);
	struct json_object *incoming = NULL, *old = NULL, *patch = NULL;
	bool status_only = !strcmp(ar->sub, "status");
	bool scale = is_scale(ar);
	const char *rv;
	char err[512];

	if (!cur) {
		reply_notfound(ar, ar->name);
		wop_finish(w, -SL_ERR_NOTFOUND);
		return;
	}
	cache_obj_unref(w->old);
	w->old = cache_obj_ref(cur);
	snprintf(w->key, sizeof(w->key), "%s", cur->key);
	json_object_put(w->obj);
	w->obj = NULL;

	if (w->ptype == PATCH_NONE) {
		incoming = sl_json_parse(w->body, w->body_len, NULL, 0);
	} else {
		old = cache_obj_parse(cur);
		if (old && scale) {
			/* A patch of /scale applies to the Scale view. */
			struct json_object *sc = scale_of(old);
			json_object_put(old);
			old = sc;
		}
		patch = sl_json_parse(w->body, w->body_len, err, sizeof(err));
		if (!patch) {
			json_object_put(old);
			reply_badrequest(ar, "the patch is not valid JSON: %s", err);
			wop_finish(w, -EINVAL);
			return;
		}
		switch (w->ptype) {
		case PATCH_MERGE:
			incoming = sl_patch_merge(old, patch, err, sizeof(err));
			break;
		case PATCH_JSON:
			incoming = sl_patch_json(old, patch, err, sizeof(err));
			break;
		default:
			incoming = sl_patch_strategic(old, patch, sl_smp_builtin_merge_key, NULL,
						      err, sizeof(err));
			break;
		}
		json_object_put(patch);
		if (!incoming) {
			json_object_put(old);
			if (w->ptype == PATCH_JSON && strstr(err, "test"))
				api_reply_status(ar, 422, "Invalid", err, NULL);
			else
				reply_badrequest(ar, "the patch could not be applied: %s", err);
			wop_finish(w, -EINVAL);
			return;
		}
		/* A patch is conditional only when it names a resourceVersion. */
		rv = sl_json_get_str(sl_json_get(incoming, "metadata"), "resourceVersion");
		if (rv &&
		    strcmp(rv, sl_json_get_str(sl_json_get(old, "metadata"), "resourceVersion")
				       ?: "")) {
			w->explicit_rv = true;
			json_object_put(old);
			json_object_put(incoming);
			reply_conflict(ar, ar->name);
			wop_finish(w, -SL_ERR_CONFLICT);
			return;
		}
		json_object_put(old);
		old = NULL;
	}
	if (!incoming || !json_object_is_type(incoming, json_type_object)) {
		json_object_put(incoming);
		reply_badrequest(ar, "the result must be a JSON object");
		wop_finish(w, -EINVAL);
		return;
	}
	/* A patch must not change identity or type. */
	{
		const char *n = sl_json_get_str(sl_json_get(incoming, "metadata"), "name");
		const char *k = sl_json_get_str(incoming, "kind");
		const char *av = sl_json_get_str(incoming, "apiVersion");
		if (n && strcmp(n, ar->name)) {
			reply_badrequest(
				ar,
				"the name of the object (%s) does not match the name on the "
				"URL (%s)",
				n, ar->name);
			json_object_put(incoming);
			wop_finish(w, -EINVAL);
			return;
		}
		if ((k && strcmp(k, scale ? "Scale" : w->res->kind)) ||
		    (av &&
		     strcmp(av, scale ? "autoscaling/v1" : api_resource_api_version(w->res)))) {
			reply_badrequest(ar, "the kind/apiVersion of the object may not change");
			json_object_put(incoming);
			wop_finish(w, -EINVAL);
			return;
		}
	}
	sl_json_set_str(incoming, "apiVersion", api_resource_api_version(w->res));
	sl_json_set_str(incoming, "kind", w->res->kind);
	if (w->ptype == PATCH_NONE) {
		struct json_object *meta = sl_json_get(incoming, "metadata");
		const char *bns = sl_json_get_str(meta, "namespace");
		rv = sl_json_get_str(meta, "resourceVersion");
		if (w->res->namespaced && bns && bns[0] && strcmp(bns, ar->ns)) {
			reply_badrequest(ar, "the namespace of the provided object does not match "
					     "the namespace sent on the request");
			json_object_put(incoming);
			wop_finish(w, -EINVAL);
			return;
		}
		if (rv && rv[0]) {
			char cur_rv[24];
			snprintf(cur_rv, sizeof(cur_rv), "%" PRId64, cur->mod_rev);
			w->explicit_rv = true;
			if (strcmp(rv, cur_rv)) {
				json_object_put(incoming);
				reply_conflict(ar, ar->name);
				wop_finish(w, -SL_ERR_CONFLICT);
				return;
			}
		}
	}
	if (scale) {
		/* Scale writes change spec.replicas and nothing else. */
		struct json_object *r = sl_json_get(sl_json_get(incoming, "spec"), "replicas");
		if (r && !json_object_is_type(r, json_type_int)) {
			json_object_put(incoming);
			reply_badrequest(ar, "Scale.spec.replicas: expected an integer");
			wop_finish(w, -EINVAL);
			return;
		}
		if (r && json_object_get_int64(r) < 0) {
			char msg[512];
			snprintf(msg, sizeof(msg),
				 "Scale.autoscaling \"%s\" is invalid: spec.replicas: Invalid "
				 "value: %" PRId64 ": must be greater than or equal to 0",
				 ar->name, json_object_get_int64(r));
			json_object_put(incoming);
			api_reply_status(ar, 422, "Invalid", msg, details_new(w->res, ar->name));
			wop_finish(w, -EINVAL);
			return;
		}
		old = cache_obj_parse(cur);
		w->obj = old;
		old = NULL;
		if (w->obj)
			sl_json_set_int(sl_json_ensure_obj(w->obj, "spec"), "replicas",
					r ? json_object_get_int64(r) : 0);
		json_object_object_del(sl_json_get(w->obj, "metadata"), "resourceVersion");
		json_object_put(incoming);
		if (!w->obj) {
			wop_fail_status(w, 500, "InternalError", "out of memory");
			return;
		}
	} else if (status_only) {
		old = cache_obj_parse(cur);
		w->obj = old ? status_only_object(old, incoming) : NULL;
		json_object_put(old);
		json_object_put(incoming);
		if (!w->obj) {
			wop_fail_status(w, 500, "InternalError", "out of memory");
			return;
		}
	} else {
		w->obj = incoming;
	}
	update_submit(w, status_only);
}

static void pod_delete_run(struct wop *w);

static void wop_retry(struct wop *w)
{
	w->attempts++;
	alloc_undo(w->srv, &w->taken);
	memset(&w->release, 0, sizeof(w->release));
	if (w->pod_delete) {
		pod_delete_run(w);
		return;
	}
	if (w->kind == W_DELETE) {
		struct cache_obj *cur = cache_get(w->srv->cache, w->res, w->ar->ns, w->ar->name);
		if (!cur) {
			reply_notfound(w->ar, w->ar->name);
			wop_finish(w, -SL_ERR_NOTFOUND);
			return;
		}
		cache_obj_unref(w->old);
		w->old = cache_obj_ref(cur);
		if (!strcmp(w->res->kind, "Service")) {
			struct json_object *obj = cache_obj_parse(cur);
			svc_held(obj, &w->release);
			json_object_put(obj);
		}
		wop_submit(w);
		return;
	}
	update_run(w);
}

static void start_update(struct api_req *ar, const char *body, size_t len, enum patch_type pt)
{
	struct wop *w;

	if (ar->srv->pending_writes >= MAX_PENDING_WRITES) {
		api_reply_status(ar, 429, "TooManyRequests",
				 "too many writes in flight, please try again later", NULL);
		api_req_free(ar);
		return;
	}
	if (pt == PATCH_NONE) {
		/* Validate the body shape once, up front, with precise errors. */
		struct json_object *obj = parse_object(ar, body, len, false);
		if (!obj) {
			api_req_free(ar);
			return;
		}
		json_object_put(obj);
	} else if (!len) {
		reply_badrequest(ar, "the patch body is empty");
		api_req_free(ar);
		return;
	}
	w = wop_new(ar->srv, ar, ar->res, W_UPDATE);
	if (!w || !(w->body = malloc(len + 1))) {
		free(w);
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		api_req_free(ar);
		return;
	}
	memcpy(w->body, body, len);
	w->body[len] = '\0';
	w->body_len = len;
	w->ptype = pt;
	update_run(w);
}

void handle_update(struct api_req *ar, const char *body, size_t len)
{
	start_update(ar, body, len, PATCH_NONE);
}

void handle_patch(struct api_req *ar, const char *body, size_t len)
{
	const char *ctype =
		evhttp_find_header(evhttp_request_get_input_headers(ar->req), "Content-Type");
	enum patch_type pt = patch_type_of(ctype);

	if (pt == PATCH_NONE) {
		char msg[512];
		if (ctype && !strncmp(ctype, "application/apply-patch", 23))
			snprintf(msg, sizeof(msg),
				 "server-side apply is not supported by sluice-control; use "
				 "client-side apply (kubectl apply without --server-side)");
		else
			snprintf(
				msg, sizeof(msg),
				"the body of the request was in an unknown format - accepted media "
				"types include: application/json-patch+json, "
				"application/merge-patch+json, "
				"application/strategic-merge-patch+json");
		api_reply_status(ar, 415, "UnsupportedMediaType", msg, NULL);
		api_req_free(ar);
		return;
	}
	start_update(ar, body, len, pt);
}

/* --- delete ------------------------------------------------------------------------- */

static void ns_finalize(struct server *srv, const char *ns);

static void ns_marked_done(struct wop *w, int err)
{
	if (!err)
		ns_finalize(w->srv, w->ar ? w->ar->name : (const char *)w->done_arg);
	if (!w->ar)
		free(w->done_arg);
}

static void delete_namespace(struct api_req *ar, struct cache_obj *cur)
{
	struct wop *w;
	struct json_object *obj, *meta, *st;
	char ts[32];

	if (ns_protected(ar->name)) {
		char msg[400];
		snprintf(msg, sizeof(msg),
			 "namespaces \"%s\" is forbidden: this namespace may not be deleted",
			 ar->name);
		api_reply_status(ar, 403, "Forbidden", msg, details_new(ar->res, ar->name));
		api_req_free(ar);
		return;
	}
	if (ns_terminating(cur)) {
		/* Already going; report the current state, as kube does. */
		api_reply_json(ar, 200, cur->json, cur->len);
		ns_finalize(ar->srv, ar->name);
		api_req_free(ar);
		return;
	}
	obj = cache_obj_parse(cur);
	w = wop_new(ar->srv, ar, ar->res, W_UPDATE);
	if (!obj || !w) {
		json_object_put(obj);
		free(w);
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		api_req_free(ar);
		return;
	}
	meta = sl_json_ensure_obj(obj, "metadata");
	now_rfc3339(ts, sizeof(ts));
	sl_json_set_str(meta, "deletionTimestamp", ts);
	st = sl_json_ensure_obj(obj, "status");
	sl_json_set_str(st, "phase", "Terminating");
	w->obj = obj;
	w->old = cache_obj_ref(cur);
	w->done = ns_marked_done;
	w->explicit_rv = true;
	api_resource_key(ar->res, NULL, ar->name, w->key, sizeof(w->key));
	wop_submit(w);
}

static void internal_delete(struct server *srv, struct cache_obj *o, wop_done_fn done, void *arg)
{
	struct wop *w = wop_new(srv, NULL, o->res, W_DELETE);

	if (!w) {
		/* Callers count completions; an op that never starts still ends. */
		struct wop failed = {.srv = srv, .res = o->res, .done_arg = arg, .old = o};
		if (done)
			done(&failed, -ENOMEM);
		return;
	}
	w->old = cache_obj_ref(o);
	w->done = done;
	w->done_arg = arg;
	snprintf(w->key, sizeof(w->key), "%s", o->key);
	if (!strcmp(o->res->kind, "Service")) {
		struct json_object *obj = cache_obj_parse(o);
		svc_held(obj, &w->release);
		json_object_put(obj);
	}
	wop_submit(w);
}

struct ns_cleanup {
	struct server *srv;
	char ns[256];
	unsigned pending;
	bool failed;
};

static int ns_collect(struct cache_obj *o, void *arg)
{
	struct list_ctx *lc = arg;

	return list_collect(o, lc);
}

static void ns_finalize_later(struct server *srv, const char *ns);

/* Drops one reference on the cleanup round; the last one decides what next. */
static void ns_cleanup_put(struct ns_cleanup *nc)
{
	struct server *srv = nc->srv;
	char ns[256];
	bool failed = nc->failed;

	if (--nc->pending)
		return;
	snprintf(ns, sizeof(ns), "%s", nc->ns);
	free(nc);
	if (srv->shutting_down)
		return; /* resumed from the Terminating state at the next start */
	if (failed) {
		/* Conflicts (a concurrent update) or store errors: try again a
		 * little later rather than spinning. */
		ns_finalize_later(srv, ns);
		return;
	}
	/* Objects created meanwhile (refused while Terminating, but cheap to
	 * check) trigger another round; an empty namespace is deleted. */
	ns_finalize(srv, ns);
}

static void ns_object_deleted(struct wop *w, int err)
{
	struct ns_cleanup *nc = w->done_arg;

	if (err && err != -SL_ERR_NOTFOUND)
		nc->failed = true;
	ns_cleanup_put(nc);
}

static void ns_removed(struct wop *w, int err)
{
	if (err)
		pr_warn("control", "namespace '%s': final delete failed: %s", w->key,
			sl_strerror(err));
}

struct ns_retry {
	struct server *srv;
	char ns[256];
};

static void ns_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ns_retry *r = arg;

	if (!r->srv->shutting_down)
		ns_finalize(r->srv, r->ns);
	free(r);
}

static void ns_finalize_later(struct server *srv, const char *ns)
{
	struct ns_retry *r = calloc(1, sizeof(*r));
	struct timeval tv = {1, 0};

	if (!r)
		return;
	r->srv = srv;
	snprintf(r->ns, sizeof(r->ns), "%s", ns);
	if (event_base_once(srv->base, -1, EV_TIMEOUT, ns_retry_cb, r, &tv))
		free(r);
}

/* Deletes everything in a Terminating namespace, then the namespace. */
static void ns_finalize(struct server *srv, const char *ns)
{
	struct ns_cleanup *nc = calloc(1, sizeof(*nc));
	struct cache_obj *nso;
	bool empty = true;

	if (!nc)
		return;
	nc->srv = srv;
	nc->pending = 1; /* held while submitting, so completions that run
			    synchronously cannot free nc under us */
	snprintf(nc->ns, sizeof(nc->ns), "%s", ns);
	for (size_t i = 0; i < api_resources_n; i++) {
		const struct api_resource *r = &api_resources[i];
		struct cache_watcher f = {.res = r, .ns = (char *)ns};
		struct list_ctx lc = {0};
		if (!r->namespaced)
			continue;
		cache_list(srv->cache, &f, NULL, ns_collect, &lc);
		for (size_t j = 0; j < lc.n; j++) {
			/* The +1 hold taken above keeps nc alive across synchronous
			 * completions; the analyzer loses pending once nc escapes. */
			nc->pending++; // NOLINT(clang-analyzer-unix.Malloc)
			empty = false;
			internal_delete(srv, lc.objs[j], ns_object_deleted, nc);
		}
		free(lc.objs);
	}
	if (!empty) {
		ns_cleanup_put(nc); // NOLINT(clang-analyzer-unix.Malloc): drops the hold, see above
		return;
	}
	free(nc);
	nso = cache_get(srv->cache, &api_resources[0], NULL, ns);
	if (nso && ns_terminating(nso))
		internal_delete(srv, nso, ns_removed, NULL);
}

static void orphaned_done(struct wop *w, int err)
{
	if (err)
		pr_warn("control",
			"'%s': removing the ownerReference of a deleted owner "
			"failed: %s (the garbage collector may delete it)",
			w->key, sl_strerror(err));
}

/*
 * propagationPolicy Orphan: the owner's dependents lose their reference to
 * it before it goes. Kubernetes does this with the "orphan" finalizer and the
 * garbage collector; here the writes are submitted ahead of the owner's
 * delete, so they commit first and the collector (which re-reads a dependent
 * before deleting it, with its resourceVersion as a precondition) never sees
 * a dependent still pointing at a deleted owner.
 */
static void orphan_dependents(struct server *srv, struct cache_obj *owner)
{
	struct json_object *oobj = cache_obj_parse(owner);
	struct json_object *ometa = sl_json_get(oobj, "metadata");
	const char *uid = sl_json_get_str(ometa, "uid");
	const char *ns = sl_json_get_str(ometa, "namespace");

	if (!uid) {
		json_object_put(oobj);
		return;
	}
	for (size_t i = 0; i < api_resources_n; i++) {
		const struct api_resource *r = &api_resources[i];
		struct cache_watcher f = {.res = r, .ns = (char *)ns};
		struct list_ctx lc = {0};
		/* Namespaced owners own objects of their namespace; cluster-scoped
		 * owners may own anything. */
		if (ns && !r->namespaced)
			continue;
		cache_list(srv->cache, &f, NULL, ns_collect, &lc);
		for (size_t j = 0; j < lc.n; j++) {
			struct json_object *obj, *refs, *keep;
			struct wop *w;
			bool hit = false;
			if (!strstr(lc.objs[j]->json, uid))
				continue; /* cheap filter before parsing */
			obj = cache_obj_parse(lc.objs[j]);
			refs = sl_json_get(sl_json_get(obj, "metadata"), "ownerReferences");
			keep = json_object_new_array();
			for (size_t k = 0; refs && keep && k < json_object_array_length(refs);
			     k++) {
				struct json_object *ref = json_object_array_get_idx(refs, k);
				const char *u = sl_json_get_str(ref, "uid");
				if (u && !strcmp(u, uid))
					hit = true;
				else
					json_object_array_add(keep, json_object_get(ref));
			}
			w = hit ? wop_new(srv, NULL, r, W_UPDATE) : NULL;
			if (!w) {
				json_object_put(keep);
				json_object_put(obj);
				continue;
			}
			if (json_object_array_length(keep))
				json_object_object_add(sl_json_get(obj, "metadata"),
						       "ownerReferences", keep);
			else {
				json_object_put(keep);
				json_object_object_del(sl_json_get(obj, "metadata"),
						       "ownerReferences");
			}
			w->obj = obj;
			w->old = cache_obj_ref(lc.objs[j]);
			w->done = orphaned_done;
			w->explicit_rv = true;
			snprintf(w->key, sizeof(w->key), "%s", lc.objs[j]->key);
			wop_submit(w);
		}
		free(lc.objs);
	}
	json_object_put(oobj);
}

/*
 * Pods are deleted gracefully, as kube-apiserver does (pod strategy
 * CheckGracefulDelete + rest.BeforeDelete): a pod bound to a node with an
 * effective grace period > 0 (DeleteOptions.gracePeriodSeconds, else
 * spec.terminationGracePeriodSeconds, else 30) is only marked:
 * deletionTimestamp = now + grace, deletionGracePeriodSeconds = grace, and
 * the reply is the pod. The node's agent stops it and deletes it with grace 0.
 * A later DELETE may shorten the grace (never lengthen it); grace 0, an
 * unbound pod and a finished pod are deleted at once. Runs again on a
 * conflicting write, so a status update racing with the delete is no error.
 */
static void pod_delete_run(struct wop *w)
{
	struct api_req *ar = w->ar;
	struct cache_obj *cur = cache_get(w->srv->cache, w->res, ar->ns, ar->name);
	struct json_object *obj, *meta, *spec;
	const char *node, *phase, *dts;
	int64_t grace = 30, old_grace = 0, gen = 0;
	struct k8s_time deadline = {0}, old_deadline = {0};
	char ts[K8S_TIME_BUFSZ];

	json_object_put(w->obj);
	w->obj = NULL;
	cache_obj_unref(w->old);
	w->old = NULL;
	if (!cur) {
		reply_notfound(ar, ar->name);
		wop_finish(w, -SL_ERR_NOTFOUND);
		return;
	}
	w->old = cache_obj_ref(cur);
	snprintf(w->key, sizeof(w->key), "%s", cur->key);
	obj = cache_obj_parse(cur);
	if (!obj) {
		wop_fail_status(w, 500, "InternalError", "stored object is not valid JSON");
		return;
	}
	meta = sl_json_ensure_obj(obj, "metadata");
	spec = sl_json_get(obj, "spec");
	node = sl_json_get_str(spec, "nodeName");
	phase = sl_json_get_str(sl_json_get(obj, "status"), "phase");
	if (w->grace_set)
		grace = w->grace;
	else
		sl_json_get_int(spec, "terminationGracePeriodSeconds", &grace);
	if (!node || !node[0] ||
	    (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))))
		grace = 0;
	if (grace < 0)
		grace = 1; /* upstream: a negative grace period means "soon", not "now" */
	dts = sl_json_get_str(meta, "deletionTimestamp");
	if (dts && k8s_time_parse(dts, &old_deadline))
		dts = NULL;
	if (grace > 0 && dts && sl_json_get_int(meta, "deletionGracePeriodSeconds", &old_grace) &&
	    grace >= old_grace) {
		/* Already going, at least as fast: nothing changes. */
		json_object_put(obj);
		api_reply_json(ar, 200, cur->json, cur->len);
		wop_finish(w, 0);
		return;
	}
	if (grace == 0) {
		json_object_put(obj);
		w->kind = W_DELETE;
		wop_submit(w);
		return;
	}
	if (dts) {
		/* Shortened: the deadline moves relative to the first request. */
		deadline.sec = old_deadline.sec - old_grace + grace;
		if (deadline.sec > old_deadline.sec)
			deadline.sec = old_deadline.sec;
	} else {
		deadline.sec = (int64_t)time(NULL) + grace;
	}
	k8s_time_format(&deadline, false, ts, sizeof(ts));
	sl_json_set_str(meta, "deletionTimestamp", ts);
	sl_json_set_int(meta, "deletionGracePeriodSeconds", grace);
	if (sl_json_get_int(meta, "generation", &gen) && gen > 0)
		sl_json_set_int(meta, "generation", gen + 1);
	w->kind = W_UPDATE;
	w->obj = obj;
	wop_submit(w);
}

void handle_delete(struct api_req *ar, const char *body, size_t len)
{
	bool grace_set = false;
	int64_t grace = 0;
	const char *qgrace = api_query(ar, "gracePeriodSeconds");

	struct cache_obj *cur = cache_get(ar->srv->cache, ar->res, ar->ns, ar->name);
	struct wop *w;
	bool has_pre = false, orphan = false;
	const char *qpp = api_query(ar, "propagationPolicy");

	if (!cur) {
		reply_notfound(ar, ar->name);
		api_req_free(ar);
		return;
	}
	if (len) {
		/* DeleteOptions: preconditions are honoured, propagationPolicy and
		 * gracePeriodSeconds are accepted. */
		char err[256];
		struct json_object *opts = sl_json_parse(body, len, err, sizeof(err));
		struct json_object *pre;
		const char *puid, *prv, *pp;
		if (!opts || !json_object_is_type(opts, json_type_object)) {
			json_object_put(opts);
			reply_badrequest(ar, "DeleteOptions: the body is not a JSON object: %s",
					 opts ? "wrong type" : err);
			api_req_free(ar);
			return;
		}
		{
			struct json_object *g = sl_json_get(opts, "gracePeriodSeconds");
			if (g && !json_object_is_type(g, json_type_null)) {
				if (!json_object_is_type(g, json_type_int)) {
					reply_badrequest(ar, "DeleteOptions.gracePeriodSeconds: "
							     "expected an integer");
					json_object_put(opts);
					api_req_free(ar);
					return;
				}
				grace = json_object_get_int64(g);
				grace_set = true;
			}
		}
		pp = sl_json_get_str(opts, "propagationPolicy");
		{
			struct json_object *od = sl_json_get(opts, "orphanDependents");
			if (pp ? !strcmp(pp, "Orphan")
			       : (od && json_object_is_type(od, json_type_boolean) &&
				  json_object_get_boolean(od)))
				orphan = true;
		}
		if (pp && strcmp(pp, "Orphan") && strcmp(pp, "Background") &&
		    strcmp(pp, "Foreground")) {
			reply_badrequest(ar,
					 "propagationPolicy: Unsupported value: \"%s\": supported "
					 "values: \"Foreground\", \"Background\", \"Orphan\"",
					 pp);
			json_object_put(opts);
			api_req_free(ar);
			return;
		}
		pre = sl_json_get(opts, "preconditions");
		puid = sl_json_get_str(pre, "uid");
		prv = sl_json_get_str(pre, "resourceVersion");
		if (puid || prv) {
			/* A conditional delete must not be retried against a newer
			 * object: conflicts become final 409s. */
			has_pre = true;
			struct json_object *obj = cache_obj_parse(cur);
			const char *uid = sl_json_get_str(sl_json_get(obj, "metadata"), "uid");
			char rv[24], msg[512];
			snprintf(rv, sizeof(rv), "%" PRId64, cur->mod_rev);
			if (puid && (!uid || strcmp(puid, uid))) {
				snprintf(msg, sizeof(msg),
					 "Precondition failed: UID in precondition: %s, UID in "
					 "object meta: %s",
					 puid, uid ? uid : "");
				api_reply_status(ar, 409, "Conflict", msg,
						 details_new(ar->res, ar->name));
				json_object_put(obj);
				json_object_put(opts);
				api_req_free(ar);
				return;
			}
			if (prv && strcmp(prv, rv)) {
				snprintf(
					msg, sizeof(msg),
					"Precondition failed: ResourceVersion in precondition: %s, "
					"ResourceVersion in object meta: %s",
					prv, rv);
				api_reply_status(ar, 409, "Conflict", msg,
						 details_new(ar->res, ar->name));
				json_object_put(obj);
				json_object_put(opts);
				api_req_free(ar);
				return;
			}
			json_object_put(obj);
		}
		json_object_put(opts);
	}
	if (qgrace && !grace_set) {
		char *end;
		errno = 0;
		grace = strtoll(qgrace, &end, 10);
		if (errno || !*qgrace || *end) {
			reply_badrequest(ar, "gracePeriodSeconds '%s': expected an integer",
					 qgrace);
			api_req_free(ar);
			return;
		}
		grace_set = true;
	}
	if (qpp && !strcmp(qpp, "Orphan"))
		orphan = true;
	if (!strcmp(ar->res->kind, "Namespace")) {
		delete_namespace(ar, cur);
		return;
	}
	if (orphan)
		orphan_dependents(ar->srv, cur);
	if (!strcmp(ar->res->kind, "Pod")) {
		w = wop_new(ar->srv, ar, ar->res, W_DELETE);
		if (!w) {
			api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
			api_req_free(ar);
			return;
		}
		w->pod_delete = true;
		w->grace_set = grace_set;
		w->grace = grace;
		w->explicit_rv = has_pre;
		pod_delete_run(w);
		return;
	}
	w = wop_new(ar->srv, ar, ar->res, W_DELETE);
	if (!w) {
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		api_req_free(ar);
		return;
	}
	w->old = cache_obj_ref(cur);
	w->explicit_rv = has_pre;
	snprintf(w->key, sizeof(w->key), "%s", cur->key);
	if (!strcmp(ar->res->kind, "Service")) {
		struct json_object *obj = cache_obj_parse(cur);
		svc_held(obj, &w->release);
		json_object_put(obj);
	}
	wop_submit(w);
}

struct delcoll {
	struct api_req *ar;
	unsigned pending;
	struct sl_buf items;
	size_t n;
};

static void delcoll_maybe_reply(struct delcoll *dc)
{
	struct api_req *ar = dc->ar;
	struct sl_buf b = SL_BUF_INIT;

	if (--dc->pending)
		return;
	sl_buf_printf(
		&b,
		"{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":"
		"\"%" PRId64 "\"},\"items\":[",
		ar->res->kind, api_resource_api_version(ar->res), cache_rev(ar->srv->cache));
	sl_buf_append(&b, dc->items.data ? dc->items.data : "", dc->items.len);
	sl_buf_puts(&b, "]}");
	api_reply_json(ar, 200, b.data, b.len);
	sl_buf_fini(&b);
	sl_buf_fini(&dc->items);
	api_req_free(ar);
	free(dc);
}

static void delcoll_one(struct wop *w, int err)
{
	struct delcoll *dc = w->done_arg;

	if (!err) {
		if (dc->n++)
			sl_buf_append(&dc->items, ",", 1);
		sl_buf_append(&dc->items, w->old->json, w->old->len);
	}
	delcoll_maybe_reply(dc);
}

void handle_deletecollection(struct api_req *ar)
{
	struct cache_watcher f;
	struct list_ctx lc = {0};
	struct delcoll *dc;

	if (!strcmp(ar->res->kind, "Namespace")) {
		api_reply_status(ar, 405, "MethodNotAllowed",
				 "deletecollection is not supported for namespaces", NULL);
		api_req_free(ar);
		return;
	}
	if (!api_filter_from_query(ar, &f)) {
		api_req_free(ar);
		return;
	}
	cache_list(ar->srv->cache, &f, NULL, list_collect, &lc);
	sl_labelsel_free(f.lsel);
	sl_fieldsel_free(f.fsel);
	dc = calloc(1, sizeof(*dc));
	if (!dc) {
		free(lc.objs);
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		api_req_free(ar);
		return;
	}
	dc->ar = ar;
	dc->pending = (unsigned)lc.n + 1; /* +1 held until all are submitted */
	/* pending counts one hold beyond the deletes, so a delete that completes
	 * synchronously cannot free dc; the analyzer loses that count once dc
	 * escapes to the first delete, hence the two NOLINTs. */
	for (size_t i = 0; i < lc.n; i++)
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		internal_delete(ar->srv, lc.objs[i], delcoll_one, dc);
	free(lc.objs);
	/* Drop the hold taken while submitting. */
	delcoll_maybe_reply(dc); // NOLINT(clang-analyzer-unix.Malloc)
}

/* --- pods/binding ---------------------------------------------------------------------- */

void handle_binding(struct api_req *ar, const char *body, size_t len)
{
	struct cache_obj *cur = cache_get(ar->srv->cache, ar->res, ar->ns, ar->name);
	struct json_object *b, *obj, *spec;
	const char *node, *kind, *bav, *bk;
	char err[256];
	struct wop *w;

	if (!cur) {
		reply_notfound(ar, ar->name);
		api_req_free(ar);
		return;
	}
	b = len ? sl_json_parse(body, len, err, sizeof(err)) : NULL;
	if (!b || !json_object_is_type(b, json_type_object)) {
		json_object_put(b);
		reply_badrequest(ar, "Binding: the body must be a JSON object");
		api_req_free(ar);
		return;
	}
	bav = sl_json_get_str(b, "apiVersion");
	bk = sl_json_get_str(b, "kind");
	if ((bk && strcmp(bk, "Binding")) || (bav && strcmp(bav, "v1"))) {
		json_object_put(b);
		reply_badrequest(ar, "the body must be a v1 Binding");
		api_req_free(ar);
		return;
	}
	node = sl_json_get_str(sl_json_get(b, "target"), "name");
	kind = sl_json_get_str(sl_json_get(b, "target"), "kind");
	if (!node || !node[0] || (kind && kind[0] && strcmp(kind, "Node"))) {
		struct api_causes causes = {0};
		api_causes_add(&causes, CAUSE_REQUIRED, "target.name", "Required value");
		api_reply_invalid(ar, "Binding", ar->name, &causes);
		api_causes_fini(&causes);
		json_object_put(b);
		api_req_free(ar);
		return;
	}
	obj = cache_obj_parse(cur);
	spec = sl_json_ensure_obj(obj, "spec");
	if (sl_json_get_str(spec, "nodeName") && sl_json_get_str(spec, "nodeName")[0]) {
		char msg[600];
		snprintf(msg, sizeof(msg),
			 "Operation cannot be fulfilled on pods/binding \"%s\": pod %s is already "
			 "assigned to node \"%s\"",
			 ar->name, ar->name, sl_json_get_str(spec, "nodeName"));
		api_reply_status(ar, 409, "Conflict", msg, details_new(ar->res, ar->name));
		json_object_put(obj);
		json_object_put(b);
		api_req_free(ar);
		return;
	}
	sl_json_set_str(spec, "nodeName", node);
	json_object_put(b);
	w = wop_new(ar->srv, ar, ar->res, W_UPDATE);
	if (!w) {
		json_object_put(obj);
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		api_req_free(ar);
		return;
	}
	w->obj = obj;
	w->old = cache_obj_ref(cur);
	w->explicit_rv = true; /* a lost race means someone else bound it */
	snprintf(w->key, sizeof(w->key), "%s", cur->key);
	json_object_object_del(sl_json_get(obj, "metadata"), "resourceVersion");
	w->binding = true; /* answers with a Success Status, not the pod */
	wop_submit(w);
}

/* --- bootstrap and store events ---------------------------------------------------------- */

void server_on_store_event(const struct store_event *ev, void *arg)
{
	struct server *srv = arg;

	cache_apply(srv->cache, ev);
}

struct boot {
	struct server *srv;
	unsigned pending;
	int phase; /* 0: namespaces, 1: the kubernetes Service, 2: its endpoints */
	bool failed;
};

static void boot_phase(struct boot *b);

static void boot_done(struct wop *w, int err)
{
	struct boot *b = w->done_arg;

	if (err && err != -SL_ERR_EXISTS) {
		b->failed = true;
		pr_err("control", "bootstrap '%s': create failed: %s", w->key, sl_strerror(err));
	}
	if (--b->pending == 0)
		boot_phase(b);
}

/* The port the advertised address is served on: a --listen-netns listener bound to that
 * address (the lab's), else the main listener's port. */
static int advertised_port(const struct server *srv)
{
	size_t alen = strlen(srv->cfg.advertise);

	for (int i = 0; i < srv->cfg.n_netns_listen; i++) {
		const char *eq = strrchr(srv->cfg.netns_listen[i], '=');
		if (eq && !strncmp(eq + 1, srv->cfg.advertise, alen) && eq[1 + alen] == ':')
			return atoi(eq + 2 + alen);
	}
	return srv->port;
}

/* Endpoints and EndpointSlice "kubernetes" point the Service at --advertise-address, as
 * kube-apiserver's endpoint reconciler does, so pods reach the API through its ClusterIP.
 * Created when missing; a changed address needs the objects deleted (a single API server
 * has no lease-based reconciler to arbitrate). */
static void boot_kubernetes_endpoints(struct boot *b)
{
	struct server *srv = b->srv;
	const struct api_resource *epr = api_resource_find("", "v1", "endpoints");
	const struct api_resource *esr =
		api_resource_find("discovery.k8s.io", "v1", "endpointslices");
	int port = advertised_port(srv);
	struct in_addr a;
	char js[768];
	struct json_object *o;

	if (inet_pton(AF_INET, srv->cfg.advertise, &a) != 1) {
		pr_warn("control",
			"--advertise-address '%s': not an IPv4 address; the kubernetes "
			"Service gets no endpoints",
			srv->cfg.advertise);
		return;
	}
	if (epr && !cache_get(srv->cache, epr, "default", "kubernetes")) {
		snprintf(js, sizeof(js),
			 "{\"metadata\":{\"name\":\"kubernetes\",\"namespace\":\"default\"},"
			 "\"subsets\":[{\"addresses\":[{\"ip\":\"%s\"}],\"ports\":[{\"name\":"
			 "\"https\",\"port\":%d,\"protocol\":\"TCP\"}]}]}",
			 srv->cfg.advertise, port);
		if ((o = sl_json_parse(js, strlen(js), NULL, 0))) {
			b->pending++;
			create_internal(srv, epr, "default", o, boot_done, b);
		}
	}
	if (esr && !cache_get(srv->cache, esr, "default", "kubernetes")) {
		snprintf(js, sizeof(js),
			 "{\"metadata\":{\"name\":\"kubernetes\",\"namespace\":\"default\","
			 "\"labels\":{\"kubernetes.io/service-name\":\"kubernetes\"}},"
			 "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"%s\"],"
			 "\"conditions\":{\"ready\":true}}],\"ports\":[{\"name\":\"https\","
			 "\"port\":%d,\"protocol\":\"TCP\"}]}",
			 srv->cfg.advertise, port);
		if ((o = sl_json_parse(js, strlen(js), NULL, 0))) {
			b->pending++;
			create_internal(srv, esr, "default", o, boot_done, b);
		}
	}
}

/* Namespaces first: the kubernetes Service needs "default" to exist. */
static void boot_phase(struct boot *b)
{
	static const char *const namespaces[] = {"default", "kube-system", "kube-public",
						 "kube-node-lease"};
	struct server *srv = b->srv;
	const struct api_resource *svc = api_resource_find("", "v1", "services");
	const struct api_resource *nsr = &api_resources[0];
	char ip[64];

	b->pending = 1; /* held while submitting */
	if (b->phase == 0) {
		for (size_t i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
			struct json_object *o;
			if (cache_get(srv->cache, nsr, NULL, namespaces[i]))
				continue;
			o = json_object_new_object();
			sl_json_set_str(sl_json_ensure_obj(o, "metadata"), "name", namespaces[i]);
			b->pending++;
			create_internal(srv, nsr, NULL, o, boot_done, b);
		}
	} else if (b->phase == 1 && !cache_get(srv->cache, svc, "default", "kubernetes") &&
		   !ipalloc_nth(srv->svc_ips, 1, ip, sizeof(ip))) {
		/* The first service IP is the API server's own Service. */
		char js[768];
		struct json_object *o;
		snprintf(
			js, sizeof(js),
			"{\"metadata\":{\"name\":\"kubernetes\",\"namespace\":\"default\","
			"\"labels\":{\"component\":\"apiserver\",\"provider\":\"kubernetes\"}},"
			"\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"%s\",\"sessionAffinity\":"
			"\"None\",\"ports\":[{\"name\":\"https\",\"port\":443,\"protocol\":\"TCP\","
			"\"targetPort\":%d}]}}",
			ip, srv->cfg.advertise ? advertised_port(srv) : srv->port);
		o = sl_json_parse(js, strlen(js), NULL, 0);
		if (o) {
			b->pending++;
			create_internal(srv, svc, "default", o, boot_done, b);
		}
	} else if (b->phase == 2 && srv->cfg.advertise) {
		boot_kubernetes_endpoints(b);
	}
	if (--b->pending)
		return;
	if (b->phase < 2 && !b->failed) {
		b->phase++;
		boot_phase(b);
		return;
	}
	srv->ready = !b->failed;
	pr_info("control", "bootstrap %s", b->failed ? "failed" : "complete; ready");
	free(b);
}

static int alloc_existing(struct cache_obj *o, void *arg)
{
	struct server *srv = arg;
	struct json_object *obj = cache_obj_parse(o);
	struct svc_alloc held;

	svc_held(obj, &held);
	if (held.ip[0] && ipalloc_take(srv->svc_ips, held.ip))
		pr_warn("control",
			"service '%s/%s': ClusterIP %s outside --service-cidr or "
			"duplicated; left as is",
			o->ns, o->name, held.ip);
	for (int i = 0; i < held.n_ports; i++)
		if (portalloc_take(srv->node_ports, held.ports[i]))
			pr_warn("control",
				"service '%s/%s': node port %d outside "
				"--node-port-range or duplicated; left as is",
				o->ns, o->name, held.ports[i]);
	json_object_put(obj);
	return 0;
}

static int resume_terminating(struct cache_obj *o, void *arg)
{
	if (ns_terminating(o))
		ns_finalize(arg, o->name);
	return 0;
}

int server_bootstrap(struct server *srv)
{
	const struct api_resource *svc = api_resource_find("", "v1", "services");
	struct cache_watcher f = {.res = svc};
	struct cache_watcher fns = {.res = &api_resources[0]};
	struct boot *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->srv = srv;
	/* The allocators are rebuilt from the Services themselves. */
	cache_list(srv->cache, &f, NULL, alloc_existing, srv);
	cache_list(srv->cache, &fns, NULL, resume_terminating, srv);
	boot_phase(b);
	return 0;
}
