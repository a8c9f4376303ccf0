// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-control's HTTP plumbing: libevent's evhttp on one event loop thread,
 * request routing onto the resource table, authentication with static bearer
 * tokens, Kubernetes Status error bodies, and the process lifecycle (store
 * open, cache load, bootstrap, clean SIGTERM shutdown).
 *
 * One thread runs the loop. Durable writes leave it for the store's writer
 * thread and come back through the store's notify fd, so a slow fsync never
 * stalls reads, lists or watch fan-out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/random.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <sys/queue.h>

#include "ctl.h"
#include "server.h"
#include "sluice/err.h"
#include "sluice/hostport.h"
#include "sluice/json.h"
#include "sluice/log.h"

void control_config_defaults(struct control_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:6443";
	cfg->data_dir = "/var/lib/sluice/control";
	cfg->store = "sqlite";
	cfg->service_cidr = "10.96.0.0/12";
	cfg->node_port_range = "30000-32767";
	cfg->retain_revisions = 10000;
	cfg->compact_interval_s = 60;
	cfg->idle_timeout_s = 120;
	cfg->min_request_timeout_s = 1800;
	cfg->watch_buffer_bytes = 16u << 20;
	cfg->sync_full = true;
	cfg->controllers = "all";
	cfg->cluster_cidr = "10.244.0.0/16";
	cfg->node_cidr_mask = 24;
	cfg->node_grace_s = 40;
}

double api_elapsed(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

const char *api_verb_name(enum api_verb v)
{
	static const char *const names[] = {"GET",    "LIST",  "WATCH",	 "CREATE",
					    "UPDATE", "PATCH", "DELETE", "DELETECOLLECTION",
					    "OTHER"};
	return v < VERB_N ? names[v] : "OTHER";
}

/* --- replies ------------------------------------------------------------------ */

const char *api_query(struct api_req *ar, const char *key)
{
	if (!ar->query_parsed)
		return NULL;
	return evhttp_find_header(&ar->query, key);
}

static const char *reason_phrase(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 413:
		return "Request Entity Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

void api_reply_json(struct api_req *ar, int code, const char *body, size_t len)
{
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(ar->req);

	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-cache, private");
	if (out)
		evbuffer_add(out, body, len);
	evhttp_send_reply(ar->req, code, reason_phrase(code), out);
	if (out)
		evbuffer_free(out);
	ar->req = NULL;
	metrics_request(ar->srv->metrics, ar->verb, ar->res, code, api_elapsed(&ar->start));
}

void api_reply_evbuf(struct api_req *ar, int code, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(ar->req);

	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-cache, private");
	evhttp_send_reply(ar->req, code, reason_phrase(code), body);
	evbuffer_free(body);
	ar->req = NULL;
	metrics_request(ar->srv->metrics, ar->verb, ar->res, code, api_elapsed(&ar->start));
}

void api_reply_obj(struct api_req *ar, int code, struct json_object *obj)
{
	size_t len;
	const char *s;

	if (!obj) {
		api_reply_status(ar, 500, "InternalError", "out of memory building the response",
				 NULL);
		return;
	}
	s = sl_json_str(obj, &len);
	api_reply_json(ar, code, s, len);
	json_object_put(obj);
}

void api_reply_status(struct api_req *ar, int code, const char *reason, const char *msg,
		      struct json_object *details)
{
	struct json_object *st = json_object_new_object();

	if (!st) {
		json_object_put(details);
		api_reply_json(ar, 500, "{}", 2);
		return;
	}
	json_object_object_add(st, "kind", json_object_new_string("Status"));
	json_object_object_add(st, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(st, "metadata", json_object_new_object());
	json_object_object_add(st, "status",
			       json_object_new_string(code < 300 ? "Success" : "Failure"));
	if (msg)
		json_object_object_add(st, "message", json_object_new_string(msg));
	if (reason)
		json_object_object_add(st, "reason", json_object_new_string(reason));
	if (details)
		json_object_object_add(st, "details", details);
	json_object_object_add(st, "code", json_object_new_int(code));
	if (code == 429 || code == 503)
		evhttp_add_header(evhttp_request_get_output_headers(ar->req), "Retry-After", "1");
	api_reply_obj(ar, code, st);
}

void api_reply_invalid(struct api_req *ar, const char *kind, const char *name,
		       const struct api_causes *causes)
{
	struct json_object *details = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	struct sl_buf msg = SL_BUF_INIT;

	sl_buf_printf(&msg, "%s \"%s\" is invalid: ", kind, name && name[0] ? name : "");
	if (causes->n > 1)
		sl_buf_puts(&msg, "[");
	for (size_t i = 0; i < causes->n; i++) {
		const struct api_cause *c = &causes->v[i];
		struct json_object *jc = json_object_new_object();
		json_object_object_add(jc, "reason", json_object_new_string(c->reason));
		json_object_object_add(jc, "message", json_object_new_string(c->message));
		json_object_object_add(jc, "field", json_object_new_string(c->field));
		json_object_array_add(arr, jc);
		sl_buf_printf(&msg, "%s%s%s%s", i ? ", " : "", c->field, c->field[0] ? ": " : "",
			      c->message);
	}
	if (causes->n > 1)
		sl_buf_puts(&msg, "]");
	if (name && name[0])
		json_object_object_add(details, "name", json_object_new_string(name));
	if (ar->res && ar->res->group[0])
		json_object_object_add(details, "group", json_object_new_string(ar->res->group));
	json_object_object_add(details, "kind", json_object_new_string(kind));
	json_object_object_add(details, "causes", arr);
	api_reply_status(ar, 422, "Invalid", sl_buf_cstr(&msg), details);
	sl_buf_fini(&msg);
}

void api_req_free(struct api_req *ar)
{
	if (!ar)
		return;
	if (ar->query_parsed)
		evhttp_clear_headers(&ar->query);
	free(ar);
}

bool api_auth_required(const struct server *srv)
{
	return srv->n_tokens > 0;
}

/* --- routing ------------------------------------------------------------------ */

static bool seg_ok(const char *s)
{
	/* Path segments are names; refuse anything that could confuse store keys. */
	if (!s[0] || strlen(s) > 253)
		return false;
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x21 || *p == 0x7f)
			return false;
	return true;
}

/* Splits path into at most max segments (in place). Returns count or -1. */
static int split_path(char *path, char **segs, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == max)
			return -1;
		segs[n++] = t;
	}
	return n;
}

static void parse_accept(struct api_req *ar)
{
	const char *accept =
		evhttp_find_header(evhttp_request_get_input_headers(ar->req), "Accept");
	const char *inc;

	if (accept && strstr(accept, "as=Table"))
		ar->table = true;
	ar->partial_meta = true;
	inc = api_query(ar, "includeObject");
	if (inc && !strcmp(inc, "Object"))
		ar->include_object = true;
	else if (inc && !strcmp(inc, "None"))
		ar->include_none = true;
}

static void route_resource(struct api_req *ar, const char *group, const char *version, char **segs,
			   int n, const char *body, size_t len)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(ar->req);
	const struct api_resource *r;
	bool watch_path = false;
	const char *plural, *name = NULL, *sub = NULL, *w;
	int i = 0;

	if (n > 0 && !strcmp(segs[0], "watch")) {
		watch_path = true;
		i = 1;
	}
	if (n - i >= 2 && !strcmp(segs[i], "namespaces") && !strcmp(group, "")) {
		/* /api/v1/namespaces/NS[/status] is the Namespace itself; with a
		 * resource after NS it is a namespaced path. */
		if (n - i == 2 || (n - i == 3 && (!strcmp(segs[i + 2], "status") ||
						  !strcmp(segs[i + 2], "finalize")))) {
			plural = "namespaces";
			name = segs[i + 1];
			sub = n - i == 3 ? segs[i + 2] : NULL;
			goto resolved;
		}
	}
	if (n - i >= 3 && !strcmp(segs[i], "namespaces")) {
		if (!seg_ok(segs[i + 1]))
			goto notfound;
		snprintf(ar->ns, sizeof(ar->ns), "%s", segs[i + 1]);
		i += 2;
	}
	if (n - i < 1 || n - i > 3)
		goto notfound;
	plural = segs[i];
	name = n - i >= 2 ? segs[i + 1] : NULL;
	sub = n - i == 3 ? segs[i + 2] : NULL;
resolved:
	r = api_resource_find(group, version, plural);
	if (!r)
		goto notfound;
	ar->res = r;
	if (r->namespaced == false && ar->ns[0])
		goto notfound;
	if (name) {
		if (!seg_ok(name))
			goto notfound;
		snprintf(ar->name, sizeof(ar->name), "%s", name);
	}
	if (sub) {
		if (!((r->has_status && !strcmp(sub, "status")) ||
		      (r->has_binding && !strcmp(sub, "binding")) ||
		      (r->has_scale && !strcmp(sub, "scale"))))
			goto notfound;
		snprintf(ar->sub, sizeof(ar->sub), "%s", sub);
	}

	w = api_query(ar, "watch");
	if (watch_path || (w && (!strcmp(w, "true") || !strcmp(w, "1")))) {
		if (m != EVHTTP_REQ_GET)
			goto method;
		ar->verb = VERB_WATCH;
		handle_watch(ar);
		return;
	}
	switch (m) {
	case EVHTTP_REQ_GET:
		ar->verb = name ? VERB_GET : VERB_LIST;
		if (name)
			handle_get(ar);
		else
			handle_list(ar);
		return;
	case EVHTTP_REQ_POST:
		ar->verb = VERB_CREATE;
		if (name && !strcmp(ar->sub, "binding")) {
			handle_binding(ar, body, len);
			return;
		}
		if (name)
			goto method;
		handle_create(ar, body, len);
		return;
	case EVHTTP_REQ_PUT:
		ar->verb = VERB_UPDATE;
		if (!name || !strcmp(ar->sub, "binding"))
			goto method;
		handle_update(ar, body, len);
		return;
	case EVHTTP_REQ_PATCH:
		ar->verb = VERB_PATCH;
		if (!name || !strcmp(ar->sub, "binding"))
			goto method;
		handle_patch(ar, body, len);
		return;
	case EVHTTP_REQ_DELETE:
		if (!name) {
			ar->verb = VERB_DELETECOLLECTION;
			handle_deletecollection(ar);
			return;
		}
		ar->verb = VERB_DELETE;
		if (ar->sub[0])
			goto method;
		handle_delete(ar, body, len);
		return;
	default:
		goto method;
	}
method:
	api_reply_status(ar, 405, "MethodNotAllowed",
			 "the server does not allow this method on the requested resource", NULL);
	api_req_free(ar);
	return;
notfound:
	api_reply_status(ar, 404, "NotFound", "the server could not find the requested resource",
			 NULL);
	api_req_free(ar);
}

/* Whether the request's connection was accepted on a 127/8 address. */
static bool req_to_loopback(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
	struct sockaddr_in sin = {0};
	socklen_t len = sizeof(sin);

	if (!bev || getsockname(bufferevent_getfd(bev), (struct sockaddr *)&sin, &len) ||
	    sin.sin_family != AF_INET)
		return false;
	return (ntohl(sin.sin_addr.s_addr) >> 24) == 127;
}

static bool check_auth(struct server *srv, struct evhttp_request *req)
{
	const char *h;

	if (!api_auth_required(srv))
		return true;
	if (srv->cfg.anonymous_loopback && req_to_loopback(req))
		return true;
	h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	h += 7;
	for (size_t i = 0; i < srv->n_tokens; i++) {
		/* Constant-time compare: tokens are secrets. */
		const char *t = srv->tokens[i].token;
		size_t lt = strlen(t), lh = strlen(h);
		unsigned char diff = lt != lh;
		for (size_t j = 0; j < lt && j < lh; j++)
			diff |= (unsigned char)(t[j] ^ h[j]);
		if (!diff)
			return true;
	}
	return false;
}

static void gencb(struct evhttp_request *req, void *arg)
{
	struct server *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct api_req *ar;
	struct evbuffer *in;
	char *path = NULL, *segs[12], *body = NULL;
	const char *rawpath, *q;
	size_t len;
	int n;

	if (!uri) {
		/* evhttp calls back with a stripped request when it failed on the
		 * connection (buffer error); just finish it. */
		evhttp_send_error(req, 400, "Bad Request");
		return;
	}
	ar = calloc(1, sizeof(*ar));
	if (!ar) {
		evhttp_send_error(req, 503, "Service Unavailable");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ar->start);
	ar->srv = srv;
	ar->req = req;
	ar->verb = VERB_OTHER;
	TAILQ_INIT(&ar->query);
	q = evhttp_uri_get_query(uri);
	if (q) {
		if (evhttp_parse_query_str(q, &ar->query) < 0) {
			evhttp_clear_headers(&ar->query);
			TAILQ_INIT(&ar->query);
			ar->query_parsed = true;
			api_reply_status(ar, 400, "BadRequest", "malformed query string", NULL);
			goto out;
		}
	}
	ar->query_parsed = true;

	rawpath = evhttp_uri_get_path(uri);
	path = evhttp_uridecode(rawpath ? rawpath : "/", 0, NULL);
	if (!path) {
		api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
		goto out;
	}

	/* Health endpoints answer without credentials, like kube-apiserver's
	 * anonymous health checks. */
	if (!strcmp(path, "/healthz") || !strcmp(path, "/livez") || !strcmp(path, "/readyz")) {
		bool ok = strcmp(path, "/readyz") || (srv->ready && !srv->shutting_down);
		struct evbuffer *out = evbuffer_new();
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "text/plain; charset=utf-8");
		evbuffer_add_printf(out, ok ? "ok" : "not ready");
		evhttp_send_reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", out);
		evbuffer_free(out);
		metrics_request(srv->metrics, VERB_OTHER, NULL, ok ? 200 : 503,
				api_elapsed(&ar->start));
		goto out;
	}
	if (!check_auth(srv, req)) {
		api_reply_status(ar, 401, "Unauthorized", "Unauthorized", NULL);
		goto out;
	}
	if (!strcmp(path, "/metrics")) {
		struct sl_buf b = SL_BUF_INIT;
		struct evbuffer *out = evbuffer_new();
		metrics_render(srv->metrics, srv, &b);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "text/plain; version=0.0.4; charset=utf-8");
		evbuffer_add(out, b.data ? b.data : "", b.len);
		evhttp_send_reply(req, 200, "OK", out);
		evbuffer_free(out);
		sl_buf_fini(&b);
		metrics_request(srv->metrics, VERB_OTHER, NULL, 200, api_elapsed(&ar->start));
		goto out;
	}
	if (srv->shutting_down) {
		api_reply_status(ar, 503, "ServiceUnavailable", "the server is shutting down",
				 NULL);
		goto out;
	}

	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	if (len > API_MAX_BODY) {
		api_reply_status(ar, 413, "RequestEntityTooLarge",
				 "Request entity too large: limit is 3145728", NULL);
		goto out;
	}
	if (len) {
		body = malloc(len + 1);
		if (!body) {
			api_reply_status(ar, 500, "InternalError", "out of memory", NULL);
			goto out;
		}
		evbuffer_copyout(in, body, len);
		body[len] = '\0';
	}
	parse_accept(ar);

	if (discovery_handle(ar, path))
		goto out;

	n = split_path(path, segs, 12);
	if (n >= 2 && !strcmp(segs[0], "api") && !strcmp(segs[1], "v1")) {
		route_resource(ar, "", "v1", segs + 2, n - 2, body, len);
		ar = NULL; /* handlers own it */
	} else if (n >= 3 && !strcmp(segs[0], "apis")) {
		route_resource(ar, segs[1], segs[2], segs + 3, n - 3, body, len);
		ar = NULL;
	} else {
		api_reply_status(ar, 404, "NotFound",
				 "the server could not find the requested resource", NULL);
	}
out:
	free(body);
	free(path);
	api_req_free(ar);
}

/* --- lifecycle ---------------------------------------------------------------- */

static void store_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	store_dispatch(srv->store);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	watch_tick(arg);
}

static void finish_shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	if (srv->pending_writes && time(NULL) < srv->shutdown_deadline) {
		/* In-flight writes finish before we go; dispatch keeps running. */
		struct timeval tv = {0, 20000};
		event_base_once(srv->base, -1, EV_TIMEOUT, finish_shutdown_cb, srv, &tv);
		return;
	}
	if (srv->pending_writes)
		pr_warn("control",
			"shutdown: %u writes still in flight after the grace period; "
			"their clients get no answer (the store finishes them on close)",
			srv->pending_writes);
	event_base_loopexit(srv->base, NULL);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {0, 100000};

	if (srv->shutting_down)
		return;
	pr_info("control", "signal %d: shutting down (%u writes in flight, %zu watches)", (int)sig,
		srv->pending_writes, watch_count(srv));
	srv->shutting_down = true;
	srv->shutdown_deadline = time(NULL) + 10;
	/* Controllers first: their requests in flight are cancelled (not awaited,
	 * so this cannot wait on this loop), and they write nothing during the
	 * shutdown nor retry the watches closed below. */
	ctl_stop(srv->ctl);
	srv->ctl = NULL;
	watch_close_all(srv);
	/* Give replies and closing chunks a moment to flush. */
	event_base_once(srv->base, -1, EV_TIMEOUT, finish_shutdown_cb, srv, &tv);
}

static int load_tokens(struct server *srv, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	unsigned lineno = 0;

	if (!f) {
		pr_err("control", "token file '%s': open failed: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		char *tok, *user, *save = NULL;
		struct token *v;
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		tok = strtok_r(line, ",", &save);
		user = strtok_r(NULL, ",", &save);
		if (!tok || !user || strlen(tok) < 8) {
			pr_err("control",
			       "token file '%s': line %u: expected 'token,user,uid[,groups]' with "
			       "a "
			       "token of at least 8 characters",
			       path, lineno);
			fclose(f);
			return -EINVAL;
		}
		v = realloc(srv->tokens, (srv->n_tokens + 1) * sizeof(*v));
		if (!v) {
			fclose(f);
			return -ENOMEM;
		}
		srv->tokens = v;
		v[srv->n_tokens].token = strdup(tok);
		v[srv->n_tokens].user = strdup(user);
		srv->n_tokens++;
	}
	fclose(f);
	if (!srv->n_tokens) {
		pr_err("control", "token file '%s': no tokens", path);
		return -EINVAL;
	}
	return 0;
}

static bool host_is_loopback(const char *host)
{
	struct in_addr a;

	if (!strcmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return !strcmp(host, "::1");
}

struct netns_bind {
	const char *netns;
	struct sockaddr_in sin;
	int fd; /* out: listening socket, or -errno */
};

/* setns() moves only the calling thread, so the socket is made in a short-lived thread: the
 * socket keeps the namespace it was created in, and the server thread never leaves its own. */
static void *netns_bind_thread(void *arg)
{
	struct netns_bind *b = arg;
	int nsfd = open(b->netns, O_RDONLY | O_CLOEXEC), fd, one = 1;

	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET)) {
		b->fd = -errno;
		if (nsfd >= 0)
			close(nsfd);
		return NULL;
	}
	close(nsfd);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		b->fd = -errno;
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&b->sin, sizeof(b->sin)) || listen(fd, 1024)) {
		b->fd = -errno;
		close(fd);
		return NULL;
	}
	sl_listener_nodelay(fd); /* one list page in five waited ~40 ms under Nagle */
	b->fd = fd;
	return NULL;
}

/* "NETNS=HOST:PORT" -> a listening socket in that namespace, handed to evhttp. */
static int listen_in_netns(struct server *srv, const char *spec)
{
	char path[256], host[256];
	const char *eq = strrchr(spec, '=');
	struct netns_bind b = {0};
	pthread_t t;
	int port;

	if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof(path) ||
	    sl_hostport_parse(eq + 1, host, sizeof(host), &port) ||
	    inet_pton(AF_INET, host, &b.sin.sin_addr) != 1) {
		pr_err("control",
		       "--listen-netns '%s': expected NETNS=IPV4:PORT, e.g. "
		       "/run/netns/lab-cp=198.18.0.2:6443",
		       spec);
		return -EINVAL;
	}
	memcpy(path, spec, (size_t)(eq - spec));
	path[eq - spec] = 0;
	if (!host_is_loopback(host) && !srv->cfg.token_file) {
		pr_err("control",
		       "--listen-netns '%s': listening beyond loopback requires --token-file",
		       spec);
		return -EINVAL;
	}
	b.netns = path;
	b.sin.sin_family = AF_INET;
	b.sin.sin_port = htons((uint16_t)port);
	if (pthread_create(&t, NULL, netns_bind_thread, &b))
		return -EAGAIN;
	pthread_join(t, NULL);
	if (b.fd < 0) {
		pr_err("control", "--listen-netns '%s': %s", spec, strerror(-b.fd));
		return b.fd;
	}
	if (!evhttp_accept_socket_with_handle(srv->http, b.fd)) {
		close(b.fd);
		return -ENOMEM;
	}
	pr_info("control", "also serving on %s in %s", eq + 1, path);
	return 0;
}

static void server_free(struct server *srv)
{
	if (srv->tick)
		event_free(srv->tick);
	if (srv->sig_term)
		event_free(srv->sig_term);
	if (srv->sig_int)
		event_free(srv->sig_int);
	if (srv->store_ev)
		event_free(srv->store_ev);
	if (srv->http)
		evhttp_free(srv->http);
	/* Closing the store completes queued writes; their callbacks need the
	 * cache, so the cache goes after. */
	store_close(srv->store);
	cache_free(srv->cache);
	ipalloc_free(srv->svc_ips);
	portalloc_free(srv->node_ports);
	for (size_t i = 0; i < srv->n_tokens; i++) {
		free(srv->tokens[i].token);
		free(srv->tokens[i].user);
	}
	free(srv->tokens);
	metrics_free(srv->metrics);
	if (srv->base)
		event_base_free(srv->base);
}

/* The controllers' own credentials when the server requires tokens: a random
 * token that exists only in this process (kube-controller-manager gets its
 * own identity too), so no user token has to be shared with them. */
static int add_internal_token(struct server *srv, char *out, size_t outlen)
{
	unsigned char b[24];
	struct token *v;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	for (size_t i = 0; i < sizeof(b) && 2 * i + 2 < outlen; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	v = realloc(srv->tokens, (srv->n_tokens + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	srv->tokens = v;
	v[srv->n_tokens].token = strdup(out);
	v[srv->n_tokens].user = strdup("system:kube-controller-manager");
	if (!v[srv->n_tokens].token || !v[srv->n_tokens].user) {
		free(v[srv->n_tokens].token);
		free(v[srv->n_tokens].user);
		return -ENOMEM;
	}
	srv->n_tokens++;
	return 0;
}

static struct ctl *start_controllers(struct server *srv, const char *host)
{
	struct ctl_config cc = {
		.controllers = srv->cfg.controllers,
		.cluster_cidr = srv->cfg.cluster_cidr,
		.node_cidr_mask = srv->cfg.node_cidr_mask,
		.grace_s = srv->cfg.node_grace_s,
	};
	char url[300], token[64] = "", err[512];
	struct ctl *c;

	/* The controllers are clients of this server's own listener; a wildcard
	 * bind is reached on loopback. */
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, ""))
		host = "127.0.0.1";
	if (strchr(host, ':'))
		snprintf(url, sizeof(url), "http://[%s]:%d", host, srv->port);
	else
		snprintf(url, sizeof(url), "http://%s:%d", host, srv->port);
	if (api_auth_required(srv) && add_internal_token(srv, token, sizeof(token))) {
		pr_err("control", "controllers: cannot create their token");
		return NULL;
	}
	c = ctl_start(&cc, url, token[0] ? token : NULL, err, sizeof(err));
	if (!c)
		pr_err("control", "controllers: start failed: %s", err);
	return c;
}

int control_run(const struct control_config *cfg)
{
	struct server srv = {0};
	struct store_opts so = {0};
	char host[256], err[512];
	int port, rc = 0;
	struct timeval tick = {1, 0};
	unsigned which;

	srv.cfg = *cfg;
	srv.started = time(NULL);
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();

	if (sl_hostport_parse(cfg->listen, host, sizeof(host), &port)) {
		pr_err("control", "--listen '%s': expected HOST:PORT, e.g. 127.0.0.1:6443",
		       cfg->listen);
		return -EINVAL;
	}
	if (!host_is_loopback(host) && !cfg->token_file) {
		pr_err("control",
		       "--listen '%s': listening beyond loopback requires --token-file (static "
		       "bearer tokens)",
		       cfg->listen);
		return -EINVAL;
	}
	{
		struct ctl_config cc = {
			.controllers = cfg->controllers,
			.cluster_cidr = cfg->cluster_cidr,
			.node_cidr_mask = cfg->node_cidr_mask,
			.grace_s = cfg->node_grace_s,
		};
		if (ctl_config_check(&cc, &which, err, sizeof(err))) {
			pr_err("control", "%s", err);
			return -EINVAL;
		}
	}
	if (cfg->token_file && (rc = load_tokens(&srv, cfg->token_file)))
		goto out;
	srv.svc_ips = ipalloc_new(cfg->service_cidr, err, sizeof(err));
	if (!srv.svc_ips) {
		pr_err("control", "--service-cidr '%s': %s", cfg->service_cidr, err);
		rc = -EINVAL;
		goto out;
	}
	srv.node_ports = portalloc_new(cfg->node_port_range, err, sizeof(err));
	if (!srv.node_ports) {
		pr_err("control", "--node-port-range '%s': %s", cfg->node_port_range, err);
		rc = -EINVAL;
		goto out;
	}
	srv.metrics = metrics_new();
	srv.cache = cache_new((size_t)cfg->retain_revisions);
	srv.base = event_base_new();
	if (!srv.metrics || !srv.cache || !srv.base) {
		rc = -ENOMEM;
		goto out;
	}

	so.backend = cfg->store;
	so.data_dir = cfg->data_dir;
	so.retain_revisions = cfg->retain_revisions;
	so.compact_interval_s = cfg->compact_interval_s;
	so.sync_full = cfg->sync_full;
	so.on_event = server_on_store_event;
	so.on_event_arg = &srv;
	srv.store = store_open(&so, err, sizeof(err));
	if (!srv.store) {
		pr_err("control", "store '%s': open failed: %s", cfg->store, err);
		rc = -EIO;
		goto out;
	}
	rc = cache_load(srv.cache, srv.store);
	if (rc) {
		pr_err("control", "store '%s': loading objects failed: %s", cfg->store,
		       sl_strerror(rc));
		goto out;
	}
	pr_info("control", "store '%s': revision %lld loaded", cfg->store,
		(long long)cache_rev(srv.cache));

	srv.store_ev = event_new(srv.base, store_notify_fd(srv.store), EV_READ | EV_PERSIST,
				 store_ready_cb, &srv);
	srv.sig_term = evsignal_new(srv.base, SIGTERM, signal_cb, &srv);
	srv.sig_int = evsignal_new(srv.base, SIGINT, signal_cb, &srv);
	srv.tick = event_new(srv.base, -1, EV_PERSIST, tick_cb, &srv);
	srv.http = evhttp_new(srv.base);
	if (!srv.store_ev || !srv.sig_term || !srv.sig_int || !srv.tick || !srv.http) {
		rc = -ENOMEM;
		goto out;
	}
	event_add(srv.store_ev, NULL);
	event_add(srv.sig_term, NULL);
	event_add(srv.sig_int, NULL);
	event_add(srv.tick, &tick);

	/* Bodies above the API limit get our own 413 Status (checked in gencb);
	 * evhttp's hard cap only guards memory against absurd uploads. */
	evhttp_set_max_body_size(srv.http, (ev_ssize_t)API_MAX_BODY * 4);
	evhttp_set_max_headers_size(srv.http, 64 * 1024);
	evhttp_set_timeout(srv.http, cfg->idle_timeout_s);
	evhttp_set_allowed_methods(srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						     EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
						     EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_default_content_type(srv.http, "application/json");
	evhttp_set_gencb(srv.http, gencb, &srv);
	srv.sock = evhttp_bind_socket_with_handle(srv.http, host, (ev_uint16_t)port);
	if (!srv.sock) {
		pr_err("control", "--listen '%s': bind failed: %s", cfg->listen, strerror(errno));
		rc = -EADDRINUSE;
		goto out;
	}
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		evutil_socket_t fd = evhttp_bound_socket_get_fd(srv.sock);

		sl_listener_nodelay(fd);
		memset(&ss, 0, sizeof(ss));
		if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
			srv.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	for (int i = 0; i < cfg->n_netns_listen; i++)
		if ((rc = listen_in_netns(&srv, cfg->netns_listen[i])))
			goto out;
	rc = server_bootstrap(&srv);
	if (rc) {
		pr_err("control", "bootstrap failed: %s", sl_strerror(rc));
		goto out;
	}
	pr_info("control", "serving on %s:%d (store %s, service CIDR %s, node ports %s)", host,
		srv.port, cfg->store, cfg->service_cidr, cfg->node_port_range);
	if (cfg->ready_file) {
		FILE *f = fopen(cfg->ready_file, "we");
		if (f) {
			fprintf(f, "%d\n", srv.port);
			fclose(f);
		}
	}
	if (which) {
		srv.ctl = start_controllers(&srv, host);
		if (!srv.ctl) {
			rc = -EINVAL;
			goto out;
		}
	}
	event_base_dispatch(srv.base);
	pr_info("control", "stopped");
	rc = 0;
out:
	/* Normally stopped by the signal; here for early exits. */
	ctl_stop(srv.ctl);
	srv.ctl = NULL;
	server_free(&srv);
	return rc;
}
