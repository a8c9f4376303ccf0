// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes API client over libcurl: synchronous requests, CRUD helpers,
 * watch streams (with the newline-delimited event decoder), cancellation
 * tokens and back-off. See sluice/client.h for the contracts.
 *
 * Every request gets its own easy handle; DNS and TLS sessions are shared
 * between them through one CURLSH per client, whose locks make it safe to use
 * the client from several threads at once. Connections are not shared between
 * threads: libcurl documents a shared connection cache (CURL_LOCK_DATA_CONNECT)
 * as unsupported across concurrent threads, and with it sluice-control (some
 * 40 threads on one client) corrupted its heap about 3 runs in 100 of the
 * scheduler bench (curl issues 4544, 13347, 13840: two threads picking the
 * same cached connection, one freeing it under the other). Instead a request
 * runs on its cancel token's multi handle, whose connection cache persists
 * between requests; a request without a token runs on a per-thread token.
 * So keep-alive holds per thread, and a token must not run requests on two
 * threads at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"

#define CLIENT_SUBSYS "client"
/* Largest non-watch response we buffer; a list of every Pod in a big cluster
 * fits, a runaway server does not exhaust memory. */
#define CLIENT_MAX_BODY (512u << 20)
/* Error bodies are Status objects; keep only this much of anything else. */
#define CLIENT_MAX_ERR_BODY (64u << 10)

struct sl_client {
	char *server;	/* no trailing slash */
	char *auth_hdr; /* "Authorization: Bearer ..." or NULL */
	char *ca_file;
	char *cert_file;
	char *key_file;
	bool insecure;
	unsigned int timeout_ms;
	CURLSH *share; /* connection/DNS/TLS-session cache shared by all requests */
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST]; /* one per curl_lock_data */
};

struct sl_cancel {
	CURLM *multi;	   /* requests run here so curl_multi_wakeup can interrupt them */
	atomic_bool fired; /* sticky until reset */
};

static pthread_once_t client_once = PTHREAD_ONCE_INIT;
static CURLcode client_global_rc;
/* Requests without a cancel token run on this thread's own token (see the
 * top of the file); the key frees it when the thread exits. */
static pthread_key_t client_tls_key;
static __thread struct sl_cancel *client_tls_cancel;
static __thread bool client_tls_busy; /* a transfer runs on it (a callback may nest one) */

static void client_tls_free(void *k)
{
	sl_cancel_free(k);
}

static void client_global_init(void)
{
	client_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (pthread_key_create(&client_tls_key, client_tls_free))
		client_global_rc = CURLE_OUT_OF_MEMORY;
}

static void client_share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct sl_client *c = arg;

	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->locks[data]);
}

static void client_share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct sl_client *c = arg;

	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->locks[data]);
}

static char *client_strdup_opt(const char *s, bool *oom)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

struct sl_client *sl_client_new(const struct sl_client_opts *o, char *err, size_t errlen)
{
	struct sl_client *c;
	bool oom = false;
	size_t n;

	if (err && errlen)
		err[0] = '\0';
	pthread_once(&client_once, client_global_init);
	if (client_global_rc != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed: %s",
			 curl_easy_strerror(client_global_rc));
		errno = ENOMEM;
		return NULL;
	}
	if (!o || !o->server || !*o->server) {
		snprintf(err, errlen, "no API server URL given");
		errno = EINVAL;
		return NULL;
	}
	if (strncmp(o->server, "http://", 7) && strncmp(o->server, "https://", 8)) {
		snprintf(err, errlen, "API server URL \"%s\" must start with http:// or https://",
			 o->server);
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->locks[i], NULL);
	c->server = strdup(o->server);
	if (!c->server)
		oom = true;
	else
		for (n = strlen(c->server); n > 0 && c->server[n - 1] == '/'; n--)
			c->server[n - 1] = '\0';
	if (o->token && *o->token &&
	    asprintf(&c->auth_hdr, "Authorization: Bearer %s", o->token) < 0) {
		c->auth_hdr = NULL;
		oom = true;
	}
	c->ca_file = client_strdup_opt(o->ca_file, &oom);
	c->cert_file = client_strdup_opt(o->cert_file, &oom);
	c->key_file = client_strdup_opt(o->key_file, &oom);
	c->insecure = o->insecure;
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : 60000;
	c->share = curl_share_init();
	if (oom || !c->share) {
		sl_client_free(c);
		errno = ENOMEM;
		return NULL;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, client_share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, client_share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return c;
}

void sl_client_free(struct sl_client *c)
{
	if (!c)
		return;
	if (c->share)
		curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->locks[i]);
	free(c->server);
	free(c->auth_hdr);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c);
}

const char *sl_client_server(const struct sl_client *c)
{
	return c->server;
}

/* ---- cancellation ---------------------------------------------------- */

struct sl_cancel *sl_cancel_new(void)
{
	struct sl_cancel *k;

	pthread_once(&client_once, client_global_init);
	k = calloc(1, sizeof(*k));
	if (!k) {
		errno = ENOMEM;
		return NULL;
	}
	k->multi = curl_multi_init();
	if (!k->multi) {
		free(k);
		errno = ENOMEM;
		return NULL;
	}
	atomic_init(&k->fired, false);
	return k;
}

void sl_cancel_free(struct sl_cancel *k)
{
	if (!k)
		return;
	curl_multi_cleanup(k->multi);
	free(k);
}

void sl_cancel_fire(struct sl_cancel *k)
{
	atomic_store(&k->fired, true);
	curl_multi_wakeup(k->multi);
}

void sl_cancel_reset(struct sl_cancel *k)
{
	atomic_store(&k->fired, false);
}

bool sl_cancel_fired(const struct sl_cancel *k)
{
	return atomic_load(&k->fired);
}

static uint64_t client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int sl_cancel_sleep(struct sl_cancel *k, unsigned int ms)
{
	uint64_t end = client_now_ms() + ms, now;

	/* A fire between the check and the poll leaves the wakeup pending, so
	 * the poll returns at once: no lost wakeup. */
	while (!sl_cancel_fired(k) && (now = client_now_ms()) < end)
		curl_multi_poll(k->multi, NULL, 0, (int)(end - now), NULL);
	return sl_cancel_fired(k) ? -ECANCELED : 0;
}

/* snprintf without -Wformat-truncation noise: truncating a message is fine. */
static void client_errf(char *dst, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void client_errf(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!dst || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(dst, len, fmt, ap);
	va_end(ap);
}

/* ---- one transfer ---------------------------------------------------- */

struct client_xfer {
	CURL *h;
	struct sl_buf *body; /* whole body (requests) or error body (watches) */
	size_t max_body;
	struct sl_watch_decoder *dec; /* set for watches: 2xx bodies go here */
	int dec_rc;		      /* decoder/callback result that aborted the transfer */
	bool too_big;
	const char *upload;
	size_t upload_len;
	char curl_err[CURL_ERROR_SIZE];
};

static size_t client_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct client_xfer *x = arg;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (x->dec && status >= 200 && status < 300) {
		x->dec_rc = sl_watch_decoder_feed(x->dec, ptr, n);
		return x->dec_rc ? 0 : n;
	}
	if (x->body->len + n > x->max_body) {
		x->too_big = true;
		return 0;
	}
	if (!x->body->len) {
		/* The whole body at once when its length is known: a list page of
		 * megabytes otherwise grows through a dozen reallocs and copies. */
		curl_off_t cl = -1;

		if (curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
		    cl > 0 && (uint64_t)cl <= x->max_body)
			sl_buf_reserve(x->body, (size_t)cl);
	}
	sl_buf_append(x->body, ptr, n);
	return x->body->oom ? 0 : n;
}

static int client_xfer_setup(struct sl_client *c, struct client_xfer *x, const char *method,
			     const char *path, const char *content_type, struct curl_slist **hdrs)
{
	struct sl_buf url = SL_BUF_INIT;
	struct curl_slist *l = NULL, *t;
	char ct[160];
	int rc = 0;

	x->h = curl_easy_init();
	if (!x->h)
		return -ENOMEM;
	sl_buf_puts(&url, c->server);
	sl_buf_puts(&url, path);
	if (url.oom) {
		rc = -ENOMEM;
		goto out;
	}
	/* Easy handles copy string options, so url can go right away. */
	curl_easy_setopt(x->h, CURLOPT_URL, url.data);
	curl_easy_setopt(x->h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->curl_err);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, client_write_cb);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(x->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(x->h, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(x->h, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(x->h, CURLOPT_USERAGENT, "sluice/0.1");
	curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->ca_file)
		curl_easy_setopt(x->h, CURLOPT_CAINFO, c->ca_file);
	if (c->cert_file)
		curl_easy_setopt(x->h, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(x->h, CURLOPT_SSLKEY, c->key_file);
	if (c->insecure) {
		curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (!strcmp(method, "GET")) {
		curl_easy_setopt(x->h, CURLOPT_HTTPGET, 1L);
	} else {
		if (x->upload) {
			curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->upload);
			curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)x->upload_len);
		}
		curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
	}

	t = curl_slist_append(l, "Accept: application/json");
	l = t ? t : l;
	/* No "Expect: 100-continue" round trip before bodies over 1 KiB. */
	t = t ? curl_slist_append(l, "Expect:") : NULL;
	l = t ? t : l;
	if (t && x->upload) {
		snprintf(ct, sizeof(ct), "Content-Type: %s",
			 content_type ? content_type : "application/json");
		t = curl_slist_append(l, ct);
		l = t ? t : l;
	}
	if (t && c->auth_hdr) {
		t = curl_slist_append(l, c->auth_hdr);
		l = t ? t : l;
	}
	if (!t) {
		rc = -ENOMEM;
		goto out;
	}
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, l);
out:
	*hdrs = l;
	sl_buf_fini(&url);
	return rc;
}

static int client_curl_err(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -SL_ERR_HTTP;
	}
}

/* Runs x->h to completion, on the cancel token's multi handle when given. */
static CURLcode client_xfer_run(struct client_xfer *x, struct sl_cancel *cancel, bool *cancelled)
{
	CURLcode cc = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	*cancelled = false;
	if (!cancel) {
		/* Not curl_easy_perform(): its connection cache dies with the
		 * handle, and the client no longer shares one between threads.
		 * A request from a callback of a transfer already on this
		 * thread's multi cannot drive that multi again: it gets a
		 * handle of its own, as before. */
		if (client_tls_busy)
			return curl_easy_perform(x->h);
		if (!client_tls_cancel) {
			client_tls_cancel = sl_cancel_new();
			if (!client_tls_cancel)
				return CURLE_OUT_OF_MEMORY;
			pthread_setspecific(client_tls_key, client_tls_cancel);
		}
		client_tls_busy = true;
		cc = client_xfer_run(x, client_tls_cancel, cancelled);
		client_tls_busy = false;
		return cc;
	}
	if (curl_multi_add_handle(cancel->multi, x->h) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	for (;;) {
		if (sl_cancel_fired(cancel)) {
			*cancelled = true;
			break;
		}
		if (curl_multi_perform(cancel->multi, &running) != CURLM_OK) {
			cc = CURLE_OUT_OF_MEMORY;
			break;
		}
		if (!running) {
			cc = CURLE_RECV_ERROR;
			while ((msg = curl_multi_info_read(cancel->multi, &left)))
				if (msg->msg == CURLMSG_DONE && msg->easy_handle == x->h)
					cc = msg->data.result;
			break;
		}
		/* Wakes on socket activity, curl's own timers, or sl_cancel_fire(). */
		curl_multi_poll(cancel->multi, NULL, 0, 1000, NULL);
	}
	curl_multi_remove_handle(cancel->multi, x->h);
	return cc;
}

/* Fills resp->err from a Status body or, failing that, the status line. */
static void client_status_message(struct sl_client_resp *resp)
{
	const char *msg = NULL, *reason = NULL;

	if (resp->json && json_object_is_type(resp->json, json_type_object)) {
		msg = sl_json_get_str(resp->json, "message");
		reason = sl_json_get_str(resp->json, "reason");
	}
	if (msg && *msg)
		client_errf(resp->err, sizeof(resp->err), "%s", msg);
	else if (reason && *reason)
		client_errf(resp->err, sizeof(resp->err), "HTTP %ld %s", resp->status, reason);
	else
		client_errf(resp->err, sizeof(resp->err), "HTTP %ld: %.120s", resp->status,
			    resp->body.len ? resp->body.data : "(empty body)");
}

/* sl_client_request; parse_2xx false leaves a successful body as text. */
static int client_request(struct sl_client *c, const char *method, const char *path_and_query,
			  const void *body, size_t body_len, const char *content_type,
			  struct sl_cancel *cancel, struct sl_client_resp *resp, bool parse_2xx)
{
	struct client_xfer x = {.body = &resp->body, .max_body = CLIENT_MAX_BODY};
	struct curl_slist *hdrs = NULL;
	bool cancelled;
	CURLcode cc;
	int rc;

	memset(resp, 0, sizeof(*resp));
	if (!method || !path_and_query || path_and_query[0] != '/') {
		client_errf(resp->err, sizeof(resp->err), "request path must start with '/'");
		return -EINVAL;
	}
	x.upload = body;
	x.upload_len = body ? body_len : 0;
	if (body && !strcmp(method, "GET"))
		x.upload = NULL;
	rc = client_xfer_setup(c, &x, method, path_and_query, content_type, &hdrs);
	if (rc)
		goto out;
	curl_easy_setopt(x.h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	cc = client_xfer_run(&x, cancel, &cancelled);
	curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (cancelled) {
		client_errf(resp->err, sizeof(resp->err), "%s %s: cancelled", method,
			    path_and_query);
		rc = -ECANCELED;
	} else if (x.too_big) {
		client_errf(resp->err, sizeof(resp->err), "%s %s: response larger than %u bytes",
			    method, path_and_query, CLIENT_MAX_BODY);
		rc = -EFBIG;
	} else if (resp->body.oom) {
		rc = -ENOMEM;
	} else if (cc != CURLE_OK) {
		client_errf(resp->err, sizeof(resp->err), "%s %s%s: %s", method, c->server,
			    path_and_query, x.curl_err[0] ? x.curl_err : curl_easy_strerror(cc));
		rc = client_curl_err(cc);
	}
	if (rc)
		goto out;
	if (resp->body.len && (parse_2xx || resp->status < 200 || resp->status >= 300))
		resp->json = sl_json_parse(resp->body.data, resp->body.len, NULL, 0);
	else
		sl_buf_cstr(&resp->body);
	if (resp->status < 200 || resp->status >= 300)
		client_status_message(resp);
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(x.h);
	return rc;
}

int sl_client_request(struct sl_client *c, const char *method, const char *path_and_query,
		      const void *body, size_t body_len, const char *content_type,
		      struct sl_cancel *cancel, struct sl_client_resp *resp)
{
	return client_request(c, method, path_and_query, body, body_len, content_type, cancel, resp,
			      true);
}

int sl_client_request_text(struct sl_client *c, const char *method, const char *path_and_query,
			   struct sl_cancel *cancel, struct sl_client_resp *resp)
{
	return client_request(c, method, path_and_query, NULL, 0, NULL, cancel, resp, false);
}

void sl_client_resp_fini(struct sl_client_resp *resp)
{
	if (!resp)
		return;
	sl_buf_fini(&resp->body);
	json_object_put(resp->json);
	resp->json = NULL;
}

int sl_client_status_err(long status, const char *reason)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
	case 422:
		return -SL_ERR_INVALID;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -SL_ERR_NOTFOUND;
	case 409:
		return reason && !strcmp(reason, "AlreadyExists") ? -SL_ERR_EXISTS
								  : -SL_ERR_CONFLICT;
	case 410:
		return -SL_ERR_COMPACTED;
	default:
		return -SL_ERR_HTTP;
	}
}

/* ---- paths and helpers ----------------------------------------------- */

static void client_escape(struct sl_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			sl_buf_append(b, s, 1);
		} else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

			sl_buf_append(b, e, 3);
		}
	}
}

void sl_client_query_add(struct sl_buf *q, const char *key, const char *value)
{
	if (q->len)
		sl_buf_puts(q, "&");
	sl_buf_puts(q, key);
	sl_buf_puts(q, "=");
	client_escape(q, value);
}

char *sl_client_path(const struct sl_gvr *r, const char *ns, const char *name, const char *query)
{
	struct sl_buf b = SL_BUF_INIT;

	if (!r || !r->version || !r->resource || !*r->resource || (name && !*name) ||
	    (name && (!strcmp(name, ".") || !strcmp(name, "..")))) {
		errno = EINVAL;
		return NULL;
	}
	if (r->group && *r->group)
		sl_buf_printf(&b, "/apis/%s/%s", r->group, r->version);
	else
		sl_buf_printf(&b, "/api/%s", r->version);
	if (ns && *ns) {
		sl_buf_puts(&b, "/namespaces/");
		client_escape(&b, ns);
	}
	sl_buf_puts(&b, "/");
	sl_buf_puts(&b, r->resource);
	if (name) {
		sl_buf_puts(&b, "/");
		client_escape(&b, name);
	}
	if (query && *query) {
		sl_buf_puts(&b, "?");
		sl_buf_puts(&b, query);
	}
	if (b.oom) {
		sl_buf_fini(&b);
		errno = ENOMEM;
		return NULL;
	}
	return sl_buf_steal(&b, NULL);
}

/* One CRUD call: request, map the status, hand the body over. */
static int client_call(struct sl_client *c, const char *method, char *path, const char *body,
		       const char *ctype, struct json_object **out, char *err, size_t errlen)
{
	struct sl_client_resp resp;
	int rc;

	if (out)
		*out = NULL;
	if (!path) {
		client_errf(err, errlen, "%s: bad resource or name", method);
		return -EINVAL;
	}
	rc = sl_client_request(c, method, path, body, body ? strlen(body) : 0, ctype, NULL, &resp);
	if (!rc)
		rc = sl_client_status_err(resp.status,
					  resp.json ? sl_json_get_str(resp.json, "reason") : NULL);
	if (rc) {
		client_errf(err, errlen, "%s", resp.err[0] ? resp.err : sl_strerror(rc));
	} else if (out) {
		*out = resp.json;
		resp.json = NULL;
	}
	sl_client_resp_fini(&resp);
	free(path);
	return rc;
}

int sl_client_get(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *name,
		  struct json_object **out, char *err, size_t errlen)
{
	return client_call(c, "GET", name ? sl_client_path(r, ns, name, NULL) : NULL, NULL, NULL,
			   out, err, errlen);
}

int sl_client_list(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *query,
		   struct json_object **out, char *err, size_t errlen)
{
	return client_call(c, "GET", sl_client_path(r, ns, NULL, query), NULL, NULL, out, err,
			   errlen);
}

int sl_client_create(struct sl_client *c, const struct sl_gvr *r, const char *ns,
		     struct json_object *obj, struct json_object **out, char *err, size_t errlen)
{
	return client_call(c, "POST", sl_client_path(r, ns, NULL, NULL), sl_json_str(obj, NULL),
			   NULL, out, err, errlen);
}

int sl_client_update(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *name,
		     struct json_object *obj, struct json_object **out, char *err, size_t errlen)
{
	if (!name)
		name = json_object_get_string(sl_json_path(obj, "metadata", "name", (char *)NULL));
	return client_call(c, "PUT", name ? sl_client_path(r, ns, name, NULL) : NULL,
			   sl_json_str(obj, NULL), NULL, out, err, errlen);
}

int sl_client_patch(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *name,
		    const char *patch_type, const char *patch, struct json_object **out, char *err,
		    size_t errlen)
{
	return client_call(c, "PATCH", name ? sl_client_path(r, ns, name, NULL) : NULL, patch,
			   patch_type ? patch_type : "application/merge-patch+json", out, err,
			   errlen);
}

int sl_client_delete(struct sl_client *c, const struct sl_gvr *r, const char *ns, const char *name,
		     char *err, size_t errlen)
{
	return client_call(c, "DELETE", name ? sl_client_path(r, ns, name, NULL) : NULL, NULL, NULL,
			   NULL, err, errlen);
}

/* ---- watch decoder --------------------------------------------------- */

struct sl_watch_decoder {
	struct sl_buf line; /* bytes of the current, unfinished line */
	size_t max_line;    /* bytes; a longer line is an error */
	sl_watch_event_fn fn;
	void *arg;
	uint64_t events; /* events handed to fn */
	int err;	 /* sticky result once nonzero */
	char msg[192];	 /* reason for err */
};

static const char *const watch_type_names[] = {
	[SL_WATCH_ADDED] = "ADDED",	[SL_WATCH_MODIFIED] = "MODIFIED",
	[SL_WATCH_DELETED] = "DELETED", [SL_WATCH_BOOKMARK] = "BOOKMARK",
	[SL_WATCH_ERROR] = "ERROR",
};

const char *sl_watch_type_name(enum sl_watch_type t)
{
	return (unsigned)t <= SL_WATCH_ERROR ? watch_type_names[t] : "?";
}

struct sl_watch_decoder *sl_watch_decoder_new(size_t max_line, sl_watch_event_fn fn, void *arg)
{
	struct sl_watch_decoder *d = calloc(1, sizeof(*d));

	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	d->max_line = max_line ? max_line : SL_WATCH_MAX_LINE;
	d->fn = fn;
	d->arg = arg;
	return d;
}

void sl_watch_decoder_free(struct sl_watch_decoder *d)
{
	if (!d)
		return;
	sl_buf_fini(&d->line);
	free(d);
}

static int watch_fail(struct sl_watch_decoder *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int watch_fail(struct sl_watch_decoder *d, const char *fmt, ...)
{
	char m[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	client_errf(d->msg, sizeof(d->msg), "watch event %llu: %s",
		    (unsigned long long)d->events + 1, m);
	d->err = -SL_ERR_PARSE;
	return d->err;
}

static int watch_line(struct sl_watch_decoder *d, const char *p, size_t n)
{
	struct json_object *ev, *obj;
	struct sl_watch_event e;
	const char *type;
	char jerr[96];
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			break;
	if (i == n)
		return 0; /* blank line: keep-alive, not an event */
	ev = sl_json_parse(p, n, jerr, sizeof(jerr));
	if (!ev)
		return watch_fail(d, "bad JSON: %s", jerr);
	if (!json_object_is_type(ev, json_type_object)) {
		json_object_put(ev);
		return watch_fail(d, "not a JSON object");
	}
	type = sl_json_get_str(ev, "type");
	obj = sl_json_get(ev, "object");
	if (!type) {
		json_object_put(ev);
		return watch_fail(d, "missing \"type\"");
	}
	for (e.type = SL_WATCH_ADDED; e.type <= SL_WATCH_ERROR; e.type++)
		if (!strcmp(type, watch_type_names[e.type]))
			break;
	if (e.type > SL_WATCH_ERROR) {
		rc = watch_fail(d, "unknown type \"%.40s\"", type);
		json_object_put(ev);
		return rc;
	}
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(ev);
		return watch_fail(d, "\"object\" missing or not an object");
	}
	e.object = obj;
	d->events++;
	rc = d->fn ? d->fn(&e, d->arg) : 0;
	json_object_put(ev);
	if (rc) {
		d->err = rc;
		client_errf(d->msg, sizeof(d->msg), "stopped by the event handler (%d)", rc);
	}
	return rc;
}

int sl_watch_decoder_feed(struct sl_watch_decoder *d, const char *buf, size_t len)
{
	int rc;

	if (d->err)
		return d->err;
	if (memchr(buf, '\0', len))
		return watch_fail(d, "NUL byte in stream");
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t part = nl ? (size_t)(nl - buf) : len;

		if (d->line.len + part > d->max_line)
			return watch_fail(d, "line longer than %zu bytes", d->max_line);
		if (!nl) {
			sl_buf_append(&d->line, buf, part);
			break;
		}
		if (d->line.len) {
			/* The line started in an earlier chunk. */
			sl_buf_append(&d->line, buf, part);
			if (d->line.oom)
				break;
			rc = watch_line(d, d->line.data, d->line.len);
			sl_buf_reset(&d->line);
		} else {
			/* Whole line inside this chunk: parse in place, no copy. */
			rc = watch_line(d, buf, part);
		}
		if (rc)
			return rc;
		buf += part + 1;
		len -= part + 1;
	}
	if (d->line.oom) {
		client_errf(d->msg, sizeof(d->msg), "out of memory buffering a watch event");
		d->err = -ENOMEM;
	}
	return d->err;
}

int sl_watch_decoder_finish(struct sl_watch_decoder *d)
{
	int rc;

	if (d->err || !d->line.len)
		return d->err;
	rc = watch_line(d, d->line.data, d->line.len);
	sl_buf_reset(&d->line);
	return rc;
}

const char *sl_watch_decoder_error(const struct sl_watch_decoder *d)
{
	return d->msg;
}

uint64_t sl_watch_decoder_events(const struct sl_watch_decoder *d)
{
	return d->events;
}

/* ---- watch requests -------------------------------------------------- */

int sl_client_watch(struct sl_client *c, const char *path_and_query, unsigned int stall_s,
		    sl_watch_event_fn fn, void *arg, struct sl_cancel *cancel, long *status,
		    char *err, size_t errlen)
{
	struct sl_client_resp resp;
	struct client_xfer x = {.body = &resp.body, .max_body = CLIENT_MAX_ERR_BODY};
	struct curl_slist *hdrs = NULL;
	bool cancelled = false;
	CURLcode cc;
	int rc;

	memset(&resp, 0, sizeof(resp));
	*status = 0;
	if (err && errlen)
		err[0] = '\0';
	if (!path_and_query || path_and_query[0] != '/') {
		client_errf(err, errlen, "watch path must start with '/'");
		return -EINVAL;
	}
	x.dec = sl_watch_decoder_new(0, fn, arg);
	if (!x.dec)
		return -ENOMEM;
	rc = client_xfer_setup(c, &x, "GET", path_and_query, NULL, &hdrs);
	if (rc)
		goto out;
	/* Never CURLOPT_TIMEOUT on a watch: it would cut healthy long streams.
	 * A server that sends nothing for longer than the watch should live is
	 * hung; keepalive catches a vanished peer sooner. */
	curl_easy_setopt(x.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(x.h, CURLOPT_LOW_SPEED_TIME, (long)(stall_s ? stall_s : 660));
	cc = client_xfer_run(&x, cancel, &cancelled);
	curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, status);
	if (cancelled) {
		client_errf(err, errlen, "watch %s: cancelled", path_and_query);
		rc = -ECANCELED;
	} else if (x.dec_rc) {
		client_errf(err, errlen, "watch %s: %s", path_and_query,
			    sl_watch_decoder_error(x.dec));
		rc = x.dec_rc;
	} else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && x.too_big)) {
		client_errf(err, errlen, "watch %s%s: %s", c->server, path_and_query,
			    x.curl_err[0] ? x.curl_err : curl_easy_strerror(cc));
		rc = client_curl_err(cc);
	} else if (*status < 200 || *status >= 300) {
		resp.status = *status;
		if (resp.body.len)
			resp.json = sl_json_parse(resp.body.data, resp.body.len, NULL, 0);
		client_status_message(&resp);
		client_errf(err, errlen, "watch %s: %s", path_and_query, resp.err);
		rc = sl_client_status_err(*status,
					  resp.json ? sl_json_get_str(resp.json, "reason") : NULL);
	} else {
		rc = sl_watch_decoder_finish(x.dec);
		if (rc)
			client_errf(err, errlen, "watch %s: %s", path_and_query,
				    sl_watch_decoder_error(x.dec));
	}
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(x.h);
	sl_watch_decoder_free(x.dec);
	sl_client_resp_fini(&resp);
	return rc;
}

/* ---- back-off -------------------------------------------------------- */

void sl_backoff_init(struct sl_backoff *b, unsigned int initial_ms, unsigned int cap_ms,
		     uint64_t seed)
{
	b->initial_ms = initial_ms ? initial_ms : 1;
	b->cap_ms = cap_ms < b->initial_ms ? b->initial_ms : cap_ms;
	b->cur_ms = b->initial_ms;
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

unsigned int sl_backoff_rand(struct sl_backoff *b, unsigned int lo, unsigned int hi)
{
	uint64_t x = b->rng;

	/* xorshift64*: plenty for spreading retries, and reproducible in tests. */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	b->rng = x;
	x *= 0x2545f4914f6cdd1dull;
	if (hi <= lo)
		return lo;
	return lo + (unsigned int)((x >> 32) % ((uint64_t)hi - lo + 1));
}

unsigned int sl_backoff_next(struct sl_backoff *b)
{
	unsigned int d = b->cur_ms;

	b->cur_ms = d > b->cap_ms / 2 ? b->cap_ms : d * 2;
	return sl_backoff_rand(b, d - d / 2, d);
}

void sl_backoff_reset(struct sl_backoff *b)
{
	b->cur_ms = b->initial_ms;
}
