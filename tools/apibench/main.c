// SPDX-License-Identifier: Apache-2.0
/*
 * apibench: the control-plane load generator behind `make bench`. It speaks
 * to sluice-control (Kubernetes JSON API) and to etcd's v3 JSON gateway with
 * the same code path, so the two are measured the same way: plain sockets,
 * HTTP/1.1 keep-alive, one connection per client, epoll, every latency sample
 * kept (no histogram bucketing), every HTTP status checked. Any error makes
 * the run fail (exit 1): a benchmark with errors measures the wrong thing.
 *
 *   apibench freeport
 *       Prints a free loopback TCP port.
 *   apibench write --api sluice|etcd --url URL --clients N --seconds S
 *                  [--warmup S] [--tag T]
 *       Closed-loop creates of small ConfigMaps (sluice: POST, 201) or puts of
 *       the same JSON bytes (etcd: /v3/kv/put, 200) under unique names.
 *   apibench load --api sluice --url URL [--services 10000] [--namespaces 10]
 *                 [--slices 1000] [--endpoints 100] [--clients 16]
 *   apibench load --api etcd --url URL --from SLUICE_URL [--clients 16]
 *       Fills sluice with Services and EndpointSlices; or copies exactly the
 *       objects sluice holds (as its list returns them) into etcd under
 *       kube-apiserver's key layout, so both hold the same bytes.
 *   apibench list --api sluice|etcd --url URL --expect N [--count 20]
 *                 [--serializable] [--limit N]
 *       Sequential full lists of the Services (sluice: GET /api/v1/services;
 *       etcd: /v3/kv/range over /registry/services/specs/), timed to the last
 *       byte; each reply is then parsed (untimed) and its item count checked.
 *       --limit (sluice): each list in pages of N on the one keep-alive
 *       connection, as an informer lists, with each page's time reported too
 *       (a server whose replies wait on Nagle shows as pages at ~40 ms).
 *   apibench watch --api sluice|etcd --url URL [--watchers 1000]
 *                  [--updates 200] [--rate 50] [--cdf FILE]
 *       N watch streams on one object, one writer updating it at a fixed
 *       rate from a schedule (intended send times, so a slow server cannot
 *       hide latency by slowing the writer: no coordinated omission). Every
 *       event is matched to its update by a sequence number in the payload;
 *       delivery latency is reported from the intended send time and from
 *       the writer's acknowledgement (the server answered, i.e. committed).
 *
 * Output: one line of key=value pairs on stdout, first word = subcommand.
 * Addresses: only loopback (127/8) and 198.18.0.0/15 are accepted as targets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "sluice/buf.h"
#include "sluice/client.h"

#define MS(ns) ((double)(ns) / 1e6)

/* ---- time and samples --------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until_ns(int64_t t)
{
	struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "apibench: out of memory\n");
		exit(2);
	}
	return p;
}

/* Every sample kept: the largest run here is 200k watch deliveries. */
struct samples {
	int64_t *v; /* nanoseconds; may be negative (event before the writer's ack) */
	size_t n, cap;
};

static void samples_add(struct samples *s, int64_t v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void samples_sort(struct samples *s)
{
	if (s->n) /* v may still be NULL when nothing was sampled */
		qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
}

/* Nearest-rank percentile of sorted samples, in ms; NaN when empty. */
static double samples_pct(const struct samples *s, double p)
{
	size_t i;

	if (!s->n)
		return 0.0 / 0.0;
	i = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (i > 0)
		i--;
	if (i >= s->n)
		i = s->n - 1;
	return MS(s->v[i]);
}

/* ---- base64 (etcd's gateway encodes keys and values) -------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_append(struct sl_buf *b, const char *s, size_t n)
{
	char q[4];

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (unsigned char)s[i + 1] << 8;
		if (left > 2)
			v |= (unsigned char)s[i + 2];
		q[0] = b64chars[(v >> 18) & 63];
		q[1] = b64chars[(v >> 12) & 63];
		q[2] = left > 1 ? b64chars[(v >> 6) & 63] : '=';
		q[3] = left > 2 ? b64chars[v & 63] : '=';
		sl_buf_append(b, q, 4);
	}
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;

	return p ? (int)(p - b64chars) : -1;
}

/* Decodes up to outlen bytes; returns the decoded length or -1. */
static ssize_t b64_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n && s[i] != '='; i++) {
		int v = b64_val(s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (ssize_t)o;
}

/* ---- target ------------------------------------------------------------- */

enum api { API_SLUICE, API_ETCD };

struct target {
	enum api api;
	struct sockaddr_in addr;
	char hostport[64]; /* for the Host header */
};

/* Accepts http://A.B.C.D:PORT with A.B.C.D in 127/8 or 198.18.0.0/15. */
static int target_parse(struct target *t, const char *api, const char *url)
{
	char host[32];
	unsigned port;
	uint32_t a;

	if (!api || !strcmp(api, "sluice"))
		t->api = API_SLUICE;
	else if (!strcmp(api, "etcd"))
		t->api = API_ETCD;
	else {
		fprintf(stderr, "apibench: --api '%s': accepted values are sluice, etcd\n", api);
		return -1;
	}
	if (!url || sscanf(url, "http://%31[0-9.]:%u", host, &port) != 2 || !port || port > 65535) {
		fprintf(stderr, "apibench: --url '%s': expected http://IPV4:PORT\n",
			url ? url : "");
		return -1;
	}
	memset(&t->addr, 0, sizeof(t->addr));
	t->addr.sin_family = AF_INET;
	t->addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &t->addr.sin_addr) != 1) {
		fprintf(stderr, "apibench: --url '%s': '%s' is not an IPv4 address\n", url, host);
		return -1;
	}
	a = ntohl(t->addr.sin_addr.s_addr);
	if ((a >> 24) != 127 && (a >> 17) != (0xC612u >> 1)) {
		fprintf(stderr,
			"apibench: --url '%s': only loopback and 198.18.0.0/15 may be targets\n",
			url);
		return -1;
	}
	snprintf(t->hostport, sizeof(t->hostport), "%s:%u", host, port);
	return 0;
}

static int target_connect(const struct target *t)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&t->addr, sizeof(t->addr))) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static void request_build(struct sl_buf *out, const struct target *t, const char *method,
			  const char *path, const char *body, size_t blen)
{
	sl_buf_printf(out,
		      "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
		      "User-Agent: apibench\r\n",
		      method, path, t->hostport);
	if (body)
		sl_buf_printf(out, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
			      blen);
	sl_buf_puts(out, "\r\n");
	if (body)
		sl_buf_append(out, body, blen);
}

/* ---- HTTP/1.1 response parser ------------------------------------------ */

enum hp_state {
	HP_HEAD,
	HP_BODY,
	HP_CHUNK_SIZE,
	HP_CHUNK_DATA,
	HP_CHUNK_CRLF,
	HP_TRAILER,
	HP_DONE
};

struct hparser {
	enum hp_state st;
	int status;
	bool close;    /* server said Connection: close */
	size_t remain; /* body or chunk bytes still to come */
};

static void hp_reset(struct hparser *p)
{
	memset(p, 0, sizeof(*p));
}

static const char *find_crlf(const char *s, size_t n)
{
	const char *p = memchr(s, '\r', n);

	while (p && (size_t)(p - s) + 1 < n) {
		if (p[1] == '\n')
			return p;
		p = memchr(p + 1, '\r', n - (size_t)(p + 1 - s));
	}
	return NULL;
}

static int hp_head(struct hparser *p, const char *s, size_t n)
{
	bool chunked = false, has_cl = false;
	size_t cl = 0;
	const char *line = s, *end = s + n;

	if (n < 12 || strncmp(s, "HTTP/1.", 7) || sscanf(s + 9, "%3d", &p->status) != 1)
		return -1;
	while (line < end) {
		const char *eol = find_crlf(line, (size_t)(end - line));
		size_t ll = eol ? (size_t)(eol - line) : (size_t)(end - line);

		if (ll > 15 && !strncasecmp(line, "content-length:", 15)) {
			cl = strtoull(line + 15, NULL, 10);
			has_cl = true;
		} else if (ll > 18 && !strncasecmp(line, "transfer-encoding:", 18)) {
			chunked = memmem(line, ll, "chunked", 7) != NULL;
		} else if (ll > 11 && !strncasecmp(line, "connection:", 11)) {
			p->close = memmem(line, ll, "close", 5) != NULL;
		}
		line += ll + 2;
	}
	if (chunked)
		p->st = HP_CHUNK_SIZE;
	else if (has_cl) {
		p->remain = cl;
		p->st = cl ? HP_BODY : HP_DONE;
	} else if (p->status == 204 || p->status == 304 || p->status / 100 == 1) {
		p->st = HP_DONE;
	} else {
		return -1; /* read-until-close bodies: neither server sends them */
	}
	return 0;
}

typedef void (*body_sink)(void *arg, const char *s, size_t n);

/*
 * Feeds s[0..n) to the parser; body bytes go to sink. *used = bytes
 * consumed (0 on a protocol error, which the caller may still consult).
 * Returns 1 when the response is complete, 0 when more input is needed, -1 on
 * a protocol error.
 */
static int hp_feed(struct hparser *p, const char *s, size_t n, size_t *used, body_sink sink,
		   void *arg)
{
	size_t off = 0;

	*used = 0;

	while (p->st != HP_DONE) {
		const char *rest = s + off, *e;
		size_t avail = n - off, k;

		switch (p->st) {
		case HP_HEAD:
			e = memmem(rest, avail, "\r\n\r\n", 4);
			if (!e) {
				if (avail > 65536)
					return -1;
				goto more;
			}
			if (hp_head(p, rest, (size_t)(e - rest) + 2))
				return -1;
			off += (size_t)(e - rest) + 4;
			break;
		case HP_BODY:
		case HP_CHUNK_DATA:
			if (!avail)
				goto more;
			k = avail < p->remain ? avail : p->remain;
			sink(arg, rest, k);
			off += k;
			p->remain -= k;
			if (!p->remain)
				p->st = p->st == HP_BODY ? HP_DONE : HP_CHUNK_CRLF;
			break;
		case HP_CHUNK_SIZE:
			e = find_crlf(rest, avail);
			if (!e) {
				if (avail > 1024)
					return -1;
				goto more;
			}
			{
				char *end;

				p->remain = strtoul(rest, &end, 16);
				if (end == rest)
					return -1;
			}
			off += (size_t)(e - rest) + 2;
			p->st = p->remain ? HP_CHUNK_DATA : HP_TRAILER;
			break;
		case HP_CHUNK_CRLF:
			if (avail < 2)
				goto more;
			if (rest[0] != '\r' || rest[1] != '\n')
				return -1;
			off += 2;
			p->st = HP_CHUNK_SIZE;
			break;
		case HP_TRAILER:
			e = find_crlf(rest, avail);
			if (!e)
				goto more;
			off += (size_t)(e - rest) + 2;
			if (e == rest)
				p->st = HP_DONE;
			break;
		case HP_DONE:
			break;
		}
	}
	*used = off;
	return 1;
more:
	*used = off;
	return 0;
}

/* ---- connection --------------------------------------------------------- */

struct conn {
	int fd;
	int id;
	struct sl_buf out; /* request bytes */
	size_t out_off;	   /* bytes of out already written */
	struct sl_buf in;  /* received, not yet parsed */
	struct sl_buf body;
	struct hparser hp;
	bool busy;	  /* a request is outstanding */
	bool want_out;	  /* EPOLLOUT registered */
	bool established; /* watch: stream confirmed */
	int64_t t_send;	  /* ns, when the request was handed to the socket */
	int64_t t_recv;	  /* ns, when the bytes being parsed were read */
	size_t scan;	  /* watch: body bytes already scanned for newlines */
	long seq;	  /* per-connection request counter */
};

static void body_append(void *arg, const char *s, size_t n)
{
	sl_buf_append(arg, s, n);
}

static void conn_fini(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sl_buf_fini(&c->out);
	sl_buf_fini(&c->in);
	sl_buf_fini(&c->body);
}

/*
 * Blocking round trip on c (which must be a blocking socket): sends the
 * request in c->out, reads until one response is complete. The body is in
 * c->body. Returns the HTTP status or a negative errno.
 */
static int conn_roundtrip(struct conn *c)
{
	char rb[65536];
	size_t off = 0;

	while (off < c->out.len) {
		ssize_t w = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)w;
	}
	sl_buf_reset(&c->out);
	sl_buf_reset(&c->body);
	hp_reset(&c->hp);
	for (;;) {
		size_t used = 0;
		int r;

		if (c->in.len) {
			r = hp_feed(&c->hp, c->in.data, c->in.len, &used, body_append, &c->body);
			if (r < 0)
				return -EPROTO;
			memmove(c->in.data, c->in.data + used, c->in.len - used);
			c->in.len -= used;
			if (r == 1)
				break;
		}
		ssize_t n = recv(c->fd, rb, sizeof(rb), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		c->t_recv = now_ns();
		sl_buf_append(&c->in, rb, (size_t)n);
	}
	if (c->body.oom || c->in.oom)
		return -ENOMEM;
	sl_buf_cstr(&c->body);
	return c->hp.status;
}

static int roundtrip(struct conn *c, const struct target *t, const char *method, const char *path,
		     const char *body)
{
	request_build(&c->out, t, method, path, body, body ? strlen(body) : 0);
	return conn_roundtrip(c);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- epoll runner: N keep-alive connections, one request each in flight - */

struct runner;

struct runner_ops {
	/* Fills c->out with the next request; returns false when there is no more work. */
	bool (*next)(struct runner *r, struct conn *c);
	/* A response is complete in c->hp / c->body; returns 0 or -1 (counted as error). */
	int (*done)(struct runner *r, struct conn *c);
	/* Watch mode: body bytes arrived on a stream that never completes. */
	void (*stream)(struct runner *r, struct conn *c);
};

struct runner {
	const struct target *t;
	const struct runner_ops *ops;
	void *ctx;
	int epfd;
	struct conn *conns;
	int n;
	int active;	      /* connections still open */
	int64_t stop_ns;      /* no new requests after this (0 = never) */
	int64_t measure_from; /* latency samples only for requests sent after this */
	struct samples lat;
	long ok, errors;
	long ok_in_window;
	int64_t window_end;
	bool quiet;
};

static void runner_err(struct runner *r, struct conn *c, const char *what, int e)
{
	r->errors++;
	if (r->errors <= 10)
		fprintf(stderr, "apibench: conn %d: %s: %s\n", c->id, what,
			e > 0	? strerror(e)
			: e < 0 ? strerror(-e)
				: "error");
}

static void conn_close(struct runner *r, struct conn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	r->active--;
}

static void conn_want_out(struct runner *r, struct conn *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

	if (c->want_out == on)
		return;
	c->want_out = on;
	epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_flush(struct runner *r, struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EAGAIN) {
				conn_want_out(r, c, true);
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->out_off += (size_t)w;
	}
	sl_buf_reset(&c->out);
	c->out_off = 0;
	conn_want_out(r, c, false);
	return 0;
}

/* Starts the next request on c, or closes c when there is none. */
static void conn_next(struct runner *r, struct conn *c)
{
	int e;

	if ((r->stop_ns && now_ns() >= r->stop_ns) || !r->ops->next(r, c)) {
		conn_close(r, c);
		return;
	}
	sl_buf_reset(&c->body);
	hp_reset(&c->hp);
	c->busy = true;
	c->seq++;
	c->t_send = now_ns();
	e = conn_flush(r, c);
	if (e) {
		runner_err(r, c, "send", e);
		conn_close(r, c);
	}
}

static int runner_open(struct runner *r, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	int fd = target_connect(r->t);

	if (fd < 0) {
		runner_err(r, c, "connect", fd);
		return fd;
	}
	set_nonblock(fd);
	c->fd = fd;
	c->want_out = false;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		c->fd = -1;
		return -errno;
	}
	r->active++;
	return 0;
}

static void runner_read(struct runner *r, struct conn *c)
{
	char rb[65536];

	for (;;) {
		ssize_t n = recv(c->fd, rb, sizeof(rb), 0);
		size_t used;
		int ret;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			runner_err(r, c,
				   c->busy ? "connection lost mid-request" : "connection closed",
				   n == 0 ? ECONNRESET : errno);
			conn_close(r, c);
			return;
		}
		c->t_recv = now_ns();
		if (!c->busy) {
			runner_err(r, c, "unsolicited bytes", EPROTO);
			conn_close(r, c);
			return;
		}
		sl_buf_append(&c->in, rb, (size_t)n);
		ret = hp_feed(&c->hp, c->in.data, c->in.len, &used, body_append, &c->body);
		memmove(c->in.data, c->in.data + used, c->in.len - used);
		c->in.len -= used;
		if (ret < 0 || c->in.oom || c->body.oom) {
			runner_err(r, c, "bad HTTP response", EPROTO);
			conn_close(r, c);
			return;
		}
		if (ret == 0) {
			if (r->ops->stream && c->hp.st != HP_HEAD)
				r->ops->stream(r, c);
			if (c->fd < 0)
				return;
			continue;
		}
		c->busy = false;
		sl_buf_cstr(&c->body);
		if (r->ops->done(r, c)) {
			r->errors++;
		} else {
			r->ok++;
			if (c->t_send >= r->measure_from)
				samples_add(&r->lat, c->t_recv - c->t_send);
			if (c->t_recv >= r->measure_from && c->t_recv <= r->window_end)
				r->ok_in_window++;
		}
		if (c->hp.close) {
			conn_close(r, c);
			return;
		}
		conn_next(r, c);
		if (c->fd < 0)
			return;
	}
}

/* Runs until every connection closed or hard_deadline (then in-flight = errors). */
static void runner_loop(struct runner *r, int64_t hard_deadline, bool (*until)(struct runner *))
{
	struct epoll_event evs[256];

	while (r->active > 0) {
		int n = epoll_wait(r->epfd, evs, 256, 20);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT) {
				int e = conn_flush(r, c);

				if (e) {
					runner_err(r, c, "send", e);
					conn_close(r, c);
					continue;
				}
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				runner_read(r, c);
		}
		if (until && until(r))
			return;
		if (hard_deadline && now_ns() > hard_deadline) {
			for (int i = 0; i < r->n; i++) {
				if (r->conns[i].fd >= 0) {
					if (r->conns[i].busy)
						runner_err(r, &r->conns[i], "no answer in time",
							   ETIMEDOUT);
					conn_close(r, &r->conns[i]);
				}
			}
		}
	}
}

static int runner_init(struct runner *r, const struct target *t, const struct runner_ops *ops,
		       void *ctx, int n)
{
	memset(r, 0, sizeof(*r));
	r->t = t;
	r->ops = ops;
	r->ctx = ctx;
	r->n = n;
	r->conns = calloc((size_t)n, sizeof(*r->conns));
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->window_end = INT64_MAX;
	if (!r->conns || r->epfd < 0) {
		/* Callers do not runner_fini() a runner that failed to init. */
		free(r->conns);
		r->conns = NULL;
		r->n = 0;
		if (r->epfd >= 0)
			close(r->epfd);
		r->epfd = -1;
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		r->conns[i].fd = -1;
		r->conns[i].id = i;
	}
	return 0;
}

static void runner_fini(struct runner *r)
{
	for (int i = 0; i < r->n; i++)
		conn_fini(&r->conns[i]);
	free(r->conns);
	free(r->lat.v);
	if (r->epfd >= 0)
		close(r->epfd);
}

/* Opens every connection, then starts one request on each. */
static int runner_start_all(struct runner *r)
{
	for (int i = 0; i < r->n; i++)
		if (runner_open(r, &r->conns[i]))
			return -1;
	for (int i = 0; i < r->n; i++)
		conn_next(r, &r->conns[i]);
	return 0;
}

/* ---- shared helpers ----------------------------------------------------- */

/* Status check of a finished request; prints the first few failures. */
static int expect_status(struct runner *r, struct conn *c, int want)
{
	if (c->hp.status == want)
		return 0;
	if (r->errors < 10)
		fprintf(stderr, "apibench: conn %d: HTTP %d (want %d): %.300s\n", c->id,
			c->hp.status, want, c->body.data ? c->body.data : "");
	return -1;
}

/* etcd answers 200 with a header; anything else (or an "error" field) fails. */
static int expect_etcd_ok(struct runner *r, struct conn *c)
{
	if (expect_status(r, c, 200))
		return -1;
	if (!c->body.data || !strstr(c->body.data, "\"header\"") ||
	    strstr(c->body.data, "\"error\"")) {
		if (r->errors < 10)
			fprintf(stderr, "apibench: conn %d: etcd reply without header: %.300s\n",
				c->id, c->body.data ? c->body.data : "");
		return -1;
	}
	return 0;
}

static void etcd_put_body(struct sl_buf *b, const char *key, const char *val, size_t vlen)
{
	sl_buf_puts(b, "{\"key\":\"");
	b64_append(b, key, strlen(key));
	sl_buf_puts(b, "\",\"value\":\"");
	b64_append(b, val, vlen);
	sl_buf_puts(b, "\"}");
}

/* Ensures namespace ns exists on a sluice server (201 or 409 are fine). */
static int sluice_namespace(const struct target *t, const char *ns)
{
	struct conn c = {.fd = target_connect(t)};
	char body[256], path[64];
	int st;

	if (c.fd < 0) {
		fprintf(stderr, "apibench: connect: %s\n", strerror(-c.fd));
		return -1;
	}
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}",
		 ns);
	snprintf(path, sizeof(path), "/api/v1/namespaces");
	st = roundtrip(&c, t, "POST", path, body);
	if (st != 201 && st != 409) {
		fprintf(stderr, "apibench: create namespace %s: HTTP %d: %.300s\n", ns, st,
			c.body.data ? c.body.data : "");
		conn_fini(&c);
		return -1;
	}
	conn_fini(&c);
	return 0;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	/* 1,000 watch streams need more descriptors than a default shell allows. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- write -------------------------------------------------------------- */

struct write_ctx {
	const char *tag;
};

/* The object both servers get: a small ConfigMap (sluice stores it with
 * metadata added; etcd gets these exact bytes as the value). */
static void configmap_json(struct sl_buf *b, const char *ns, const char *name)
{
	sl_buf_printf(
		b,
		"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
		"\"namespace\":\"%s\",\"labels\":{\"app\":\"apibench\",\"tier\":\"backend\"}},"
		"\"data\":{\"listen\":\"0.0.0.0:8080\",\"upstream\":\"http://198.18.0.10:80\","
		"\"timeout\":\"30s\",\"retries\":\"3\",\"log-level\":\"info\","
		"\"payload\":\"%s\"}}",
		name, ns,
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef");
}

static bool write_next(struct runner *r, struct conn *c)
{
	struct write_ctx *w = r->ctx;
	struct sl_buf obj = SL_BUF_INIT, b = SL_BUF_INIT;
	char name[128], key[192];

	snprintf(name, sizeof(name), "w-%s-%d-%ld", w->tag, c->id, c->seq);
	configmap_json(&obj, "bench", name);
	if (r->t->api == API_SLUICE) {
		request_build(&c->out, r->t, "POST", "/api/v1/namespaces/bench/configmaps",
			      obj.data, obj.len);
	} else {
		snprintf(key, sizeof(key), "/registry/configmaps/bench/%s", name);
		etcd_put_body(&b, key, obj.data, obj.len);
		request_build(&c->out, r->t, "POST", "/v3/kv/put", b.data, b.len);
	}
	sl_buf_fini(&obj);
	sl_buf_fini(&b);
	return true;
}

static int write_done(struct runner *r, struct conn *c)
{
	return r->t->api == API_SLUICE ? expect_status(r, c, 201) : expect_etcd_ok(r, c);
}

static const struct runner_ops write_ops = {.next = write_next, .done = write_done};

static int cmd_write(const struct target *t, int clients, double seconds, double warmup,
		     const char *tag)
{
	struct write_ctx w = {.tag = tag};
	struct sl_buf obj = SL_BUF_INIT;
	struct runner r;
	int64_t t0, t1;
	double p50, p99, p999, mx;

	if (t->api == API_SLUICE && sluice_namespace(t, "bench"))
		return 1;
	if (runner_init(&r, t, &write_ops, &w, clients))
		return 2;
	t0 = now_ns();
	r.measure_from = t0 + (int64_t)(warmup * 1e9);
	r.window_end = r.measure_from + (int64_t)(seconds * 1e9);
	r.stop_ns = r.window_end;
	if (runner_start_all(&r) == 0)
		runner_loop(&r, r.window_end + 10000000000LL, NULL);
	t1 = now_ns();
	samples_sort(&r.lat);
	p50 = samples_pct(&r.lat, 50);
	p99 = samples_pct(&r.lat, 99);
	p999 = samples_pct(&r.lat, 99.9);
	mx = samples_pct(&r.lat, 100);
	configmap_json(&obj, "bench", "w-xxxxxxxx-0-0000");
	printf("write api=%s clients=%d seconds=%.2f ops=%ld errors=%ld rate=%.1f p50_ms=%.3f "
	       "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f object_bytes=%zu wall_s=%.2f\n",
	       t->api == API_SLUICE ? "sluice" : "etcd", clients, seconds, r.ok_in_window, r.errors,
	       (double)r.ok_in_window / seconds, p50, p99, p999, mx, obj.len, (t1 - t0) / 1e9);
	sl_buf_fini(&obj);
	runner_fini(&r);
	return r.errors ? 1 : 0;
}

/* ---- load --------------------------------------------------------------- */

struct load_item {
	char *path; /* sluice: POST path; etcd: key */
	char *body; /* JSON object */
	size_t len;
};

struct load_ctx {
	struct load_item *items;
	size_t n, next;
	size_t bytes;
};

static void load_add(struct load_ctx *l, const char *path, struct sl_buf *body)
{
	if ((l->n & 1023) == 0)
		l->items = xrealloc(l->items, (l->n + 1024) * sizeof(*l->items));
	l->items[l->n].path = strdup(path);
	l->items[l->n].len = body->len;
	l->items[l->n].body = sl_buf_steal(body, NULL);
	if (!l->items[l->n].path || !l->items[l->n].body) {
		fprintf(stderr, "apibench: out of memory\n");
		exit(2);
	}
	l->bytes += l->items[l->n].len;
	l->n++;
}

static void service_json(struct sl_buf *b, const char *ns, int i)
{
	sl_buf_printf(
		b,
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-%05d\","
		"\"namespace\":\"%s\",\"labels\":{\"app\":\"app-%05d\",\"tier\":\"backend\"}},"
		"\"spec\":{\"type\":\"ClusterIP\",\"selector\":{\"app\":\"app-%05d\"},"
		"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,"
		"\"targetPort\":8080},{\"name\":\"https\",\"protocol\":\"TCP\",\"port\":443,"
		"\"targetPort\":8443}]}}",
		i, ns, i, i);
}

/* One slice of `eps` endpoints for service i. Addresses are consecutive from
 * 198.18.1.0 (100,000 fit well inside 198.18.0.0/15). */
static void slice_json(struct sl_buf *b, const char *ns, int i, int eps)
{
	sl_buf_printf(
		b,
		"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
		"\"metadata\":{\"name\":\"svc-%05d-x7k2p\",\"namespace\":\"%s\",\"labels\":{"
		"\"kubernetes.io/service-name\":\"svc-%05d\","
		"\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-controller.k8s.io\"}},"
		"\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\","
		"\"port\":8080},{\"name\":\"https\",\"protocol\":\"TCP\",\"port\":8443}],"
		"\"endpoints\":[",
		i, ns, i);
	for (int e = 0; e < eps; e++) {
		uint32_t a = 0xC6120100u + (uint32_t)(i * eps + e);

		sl_buf_printf(b,
			      "%s{\"addresses\":[\"%u.%u.%u.%u\"],\"conditions\":{\"ready\":%s,"
			      "\"serving\":true,\"terminating\":false},\"nodeName\":\"node-%03d\","
			      "\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"%s\",\"name\":"
			      "\"app-%05d-%05d\"}}",
			      e ? "," : "", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255,
			      e % 50 == 49 ? "false" : "true", (i * eps + e) % 500, ns, i, e);
	}
	sl_buf_puts(b, "]}");
}

static bool load_next(struct runner *r, struct conn *c)
{
	struct load_ctx *l = r->ctx;
	struct load_item *it;
	struct sl_buf b = SL_BUF_INIT;

	if (l->next >= l->n)
		return false;
	it = &l->items[l->next++];
	if (r->t->api == API_SLUICE) {
		request_build(&c->out, r->t, "POST", it->path, it->body, it->len);
	} else {
		etcd_put_body(&b, it->path, it->body, it->len);
		request_build(&c->out, r->t, "POST", "/v3/kv/put", b.data, b.len);
		sl_buf_fini(&b);
	}
	return true;
}

static const struct runner_ops load_ops = {.next = load_next, .done = write_done};

/* Copies every item of a sluice list at `path` into l under etcd keys
 * prefix/NS/NAME, as the list returned them (json-c's plain encoding). */
static int load_from_sluice(struct load_ctx *l, const struct target *src, const char *path,
			    const char *prefix)
{
	struct conn c = {.fd = target_connect(src)};
	struct json_object *root = NULL, *items;
	int st, rc = -1;

	if (c.fd < 0) {
		fprintf(stderr, "apibench: connect to --from: %s\n", strerror(-c.fd));
		return -1;
	}
	st = roundtrip(&c, src, "GET", path, NULL);
	if (st != 200) {
		fprintf(stderr, "apibench: GET %s: HTTP %d\n", path, st);
		goto out;
	}
	root = json_tokener_parse(c.body.data);
	if (!root || !json_object_object_get_ex(root, "items", &items) ||
	    !json_object_is_type(items, json_type_array)) {
		fprintf(stderr, "apibench: GET %s: not a list\n", path);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *it = json_object_array_get_idx(items, i), *md, *ns, *name;
		struct sl_buf b = SL_BUF_INIT;
		char key[256];

		if (!json_object_object_get_ex(it, "metadata", &md) ||
		    !json_object_object_get_ex(md, "namespace", &ns) ||
		    !json_object_object_get_ex(md, "name", &name)) {
			fprintf(stderr, "apibench: GET %s: item without namespace/name\n", path);
			goto out;
		}
		snprintf(key, sizeof(key), "%s%s/%s", prefix, json_object_get_string(ns),
			 json_object_get_string(name));
		sl_buf_puts(&b, json_object_to_json_string_ext(it, JSON_C_TO_STRING_PLAIN));
		load_add(l, key, &b);
	}
	rc = 0;
out:
	json_object_put(root);
	conn_fini(&c);
	return rc;
}

static int cmd_load(const struct target *t, const char *from, int services, int nss, int slices,
		    int eps, int clients)
{
	struct load_ctx l = {0};
	struct runner r;
	int64_t t0;
	int rc = 1;

	if (t->api == API_SLUICE) {
		for (int n = 0; n < nss; n++) {
			char ns[32];

			snprintf(ns, sizeof(ns), "ns-%02d", n);
			if (sluice_namespace(t, ns))
				return 1;
		}
		for (int i = 0; i < services; i++) {
			struct sl_buf b = SL_BUF_INIT;
			char ns[32], path[128];

			snprintf(ns, sizeof(ns), "ns-%02d", i % nss);
			snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", ns);
			service_json(&b, ns, i);
			load_add(&l, path, &b);
		}
		for (int i = 0; i < slices; i++) {
			struct sl_buf b = SL_BUF_INIT;
			char ns[32], path[128];

			snprintf(ns, sizeof(ns), "ns-%02d", i % nss);
			snprintf(path, sizeof(path),
				 "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices", ns);
			slice_json(&b, ns, i, eps);
			load_add(&l, path, &b);
		}
	} else {
		struct target src;

		if (!from) {
			fprintf(stderr, "apibench: load --api etcd needs --from SLUICE_URL\n");
			return 2;
		}
		if (target_parse(&src, "sluice", from))
			return 2;
		if (load_from_sluice(&l, &src, "/api/v1/services", "/registry/services/specs/") ||
		    load_from_sluice(&l, &src, "/apis/discovery.k8s.io/v1/endpointslices",
				     "/registry/endpointslices/"))
			goto out;
	}
	if (runner_init(&r, t, &load_ops, &l, clients))
		goto out;
	t0 = now_ns();
	if (runner_start_all(&r) == 0)
		runner_loop(&r, t0 + 300000000000LL, NULL);
	printf("load api=%s objects=%zu ok=%ld errors=%ld value_bytes=%zu seconds=%.2f\n",
	       t->api == API_SLUICE ? "sluice" : "etcd", l.n, r.ok, r.errors, l.bytes,
	       (now_ns() - t0) / 1e9);
	rc = r.errors || (size_t)r.ok != l.n ? 1 : 0;
	runner_fini(&r);
out:
	for (size_t i = 0; i < l.n; i++) {
		free(l.items[i].path);
		free(l.items[i].body);
	}
	free(l.items);
	return rc;
}

/* ---- list --------------------------------------------------------------- */

/*
 * Counts the items of a reply (untimed); -1 when it is not the expected shape.
 * cont (sluice, may be NULL) receives a copy of metadata.continue, or NULL.
 */
static long list_count(enum api api, const char *body, char **cont)
{
	struct json_object *root = json_tokener_parse(body), *v, *m;
	long n = -1;

	if (cont)
		*cont = NULL;
	if (!root)
		return -1;
	if (api == API_SLUICE) {
		if (json_object_object_get_ex(root, "items", &v) &&
		    json_object_is_type(v, json_type_array))
			n = (long)json_object_array_length(v);
		if (cont && json_object_object_get_ex(root, "metadata", &m) &&
		    json_object_object_get_ex(m, "continue", &v) && json_object_get_string_len(v))
			*cont = strdup(json_object_get_string(v));
	} else if (json_object_object_get_ex(root, "kvs", &v) &&
		   json_object_is_type(v, json_type_array)) {
		n = (long)json_object_array_length(v);
	} else if (!json_object_object_get_ex(root, "count", &v)) {
		n = 0;
	}
	json_object_put(root);
	return n;
}

static int cmd_list(const struct target *t, int count, long expect, bool serializable, long limit)
{
	struct conn c = {.fd = target_connect(t)};
	struct samples lat = {0}, pages = {0};
	struct sl_buf req = SL_BUF_INIT;
	size_t bytes = 0;
	long errors = 0;

	if (c.fd < 0) {
		fprintf(stderr, "apibench: connect: %s\n", strerror(-c.fd));
		return 1;
	}
	if (t->api == API_ETCD) {
		const char *k = "/registry/services/specs/", *e = "/registry/services/specs0";

		sl_buf_puts(&req, "{\"key\":\"");
		b64_append(&req, k, strlen(k));
		sl_buf_puts(&req, "\",\"range_end\":\"");
		b64_append(&req, e, strlen(e));
		sl_buf_printf(&req, "\"%s}", serializable ? ",\"serializable\":true" : "");
	}
	for (int i = 0; i < count; i++) {
		int64_t spent = 0, tp; /* the requests' time, the parsing between pages excluded */
		char *cont = NULL;
		bool failed = false;
		long n = 0;

		do {
			struct sl_buf q = SL_BUF_INIT;
			char lim[24], *path = NULL, *next = NULL;
			long got;
			int st;

			if (t->api == API_ETCD) {
				request_build(&c.out, t, "POST", "/v3/kv/range", req.data, req.len);
			} else {
				if (limit) {
					snprintf(lim, sizeof(lim), "%ld", limit);
					sl_client_query_add(&q, "limit", lim);
				}
				if (cont)
					sl_client_query_add(&q, "continue", cont);
				path = sl_client_path(&SL_GVR_SERVICES, NULL, NULL,
						      q.len ? q.data : NULL);
				request_build(&c.out, t, "GET", path ? path : "/api/v1/services",
					      NULL, 0);
				free(path);
				sl_buf_fini(&q);
			}
			tp = now_ns();
			st = conn_roundtrip(&c);
			free(cont);
			cont = NULL;
			if (st != 200) {
				fprintf(stderr, "apibench: list: HTTP %d\n", st);
				failed = true;
				break;
			}
			spent += c.t_recv - tp;
			if (limit)
				samples_add(&pages, c.t_recv - tp);
			bytes = c.body.len;
			got = list_count(t->api, c.body.data, limit ? &next : NULL);
			n = got < 0 ? -1 : n + got;
			cont = next;
		} while (cont && n >= 0);
		free(cont);
		if (failed) {
			errors++;
			break;
		}
		samples_add(&lat, spent);
		if (n != expect) {
			fprintf(stderr, "apibench: list %d: %ld items, want %ld\n", i, n, expect);
			errors++;
		}
	}
	samples_sort(&lat);
	printf("list api=%s%s lists=%zu items=%ld errors=%ld bytes=%zu p50_ms=%.3f p99_ms=%.3f "
	       "max_ms=%.3f\n",
	       t->api == API_SLUICE ? "sluice" : "etcd",
	       t->api == API_ETCD ? (serializable ? " read=serializable" : " read=linearizable")
				  : "",
	       lat.n, expect, errors, bytes, samples_pct(&lat, 50), samples_pct(&lat, 99),
	       samples_pct(&lat, 100));
	if (limit) {
		samples_sort(&pages);
		printf("pages limit=%ld pages=%zu p50_ms=%.3f p80_ms=%.3f p99_ms=%.3f "
		       "max_ms=%.3f\n",
		       limit, pages.n, samples_pct(&pages, 50), samples_pct(&pages, 80),
		       samples_pct(&pages, 99), samples_pct(&pages, 100));
	}
	free(pages.v);
	free(lat.v);
	sl_buf_fini(&req);
	conn_fini(&c);
	return errors ? 1 : 0;
}

/* ---- watch -------------------------------------------------------------- */

struct watch_ctx {
	int watchers, updates;
	double rate;
	int64_t t0;		 /* writer's schedule origin (ns) */
	int64_t period;		 /* ns between intended sends */
	int64_t *recv;		 /* [watcher * updates + seq] receive time, 0 = not yet */
	int64_t *ack;		 /* [seq] writer got its answer */
	int64_t *sent;		 /* [seq] writer handed it to the socket */
	long events, dups, bad;	 /* received events; duplicates; unparseable */
	int established, opened; /* watch streams confirmed; connections opened */
	long watch_rev;		 /* revision the watches start after */
	atomic_int writer_done;
	int updates_ok;	      /* writer: updates answered 200 (read after writer_done) */
	int64_t done_seen_ns; /* when the event loop first saw writer_done */
	long writer_errors;
	const struct target *t;
	char path[256]; /* sluice watch path */
	char body[512]; /* etcd watch create request */
};

static void watch_record(struct runner *r, struct conn *c, long seq)
{
	struct watch_ctx *w = r->ctx;
	int64_t *slot;

	if (seq < 0 || seq >= w->updates) {
		w->bad++;
		return;
	}
	slot = &w->recv[(size_t)c->id * (size_t)w->updates + (size_t)seq];
	if (*slot) {
		w->dups++;
		return;
	}
	*slot = c->t_recv;
	w->events++;
}

static long seq_in(const char *s, size_t n)
{
	const char *p = memmem(s, n, "\"abseq\":\"", 9);

	return p ? strtol(p + 9, NULL, 10) : -1;
}

static void watch_line(struct runner *r, struct conn *c, const char *line, size_t n)
{
	struct watch_ctx *w = r->ctx;

	if (r->t->api == API_SLUICE) {
		if (memmem(line, n, "\"type\":\"ERROR\"", 14)) {
			runner_err(r, c, "watch ERROR event", EPROTO);
			fprintf(stderr, "apibench: %.*s\n", (int)(n > 300 ? 300 : n), line);
			return;
		}
		if (memmem(line, n, "\"type\":\"BOOKMARK\"", 17))
			return;
		watch_record(r, c, seq_in(line, n));
		return;
	}
	/* etcd: {"result":{... "created":true}} first, then events with base64 values;
	 * one line may carry several events. */
	if (memmem(line, n, "\"canceled\":true", 15)) {
		runner_err(r, c, "etcd watch canceled", EPROTO);
		return;
	}
	if (!c->established && memmem(line, n, "\"created\":true", 14)) {
		c->established = true;
		w->established++;
	}
	for (const char *p = line, *end = line + n;;) {
		char dec[2048];
		const char *v = memmem(p, (size_t)(end - p), "\"value\":\"", 9), *q;
		ssize_t dn;

		if (!v)
			break;
		v += 9;
		q = memchr(v, '"', (size_t)(end - v));
		if (!q)
			break;
		dn = b64_decode(v, (size_t)(q - v), dec, sizeof(dec));
		if (dn < 0)
			w->bad++;
		else
			watch_record(r, c, seq_in(dec, (size_t)dn));
		p = q + 1;
	}
}

static void watch_stream(struct runner *r, struct conn *c)
{
	struct watch_ctx *w = r->ctx;
	size_t start = 0;

	if (r->t->api == API_SLUICE && !c->established) {
		if (c->hp.status != 200) {
			/* Body of an error reply is complete only at done(); wait. */
		} else {
			c->established = true;
			w->established++;
		}
	}
	for (size_t i = c->scan; i < c->body.len; i++) {
		if (c->body.data[i] != '\n')
			continue;
		watch_line(r, c, c->body.data + start, i - start);
		start = i + 1;
	}
	if (start) {
		memmove(c->body.data, c->body.data + start, c->body.len - start);
		c->body.len -= start;
	}
	c->scan = c->body.len;
}

static int watch_done(struct runner *r, struct conn *c)
{
	/* A watch reply that completes is a failure: the stream ended. */
	if (r->errors < 10)
		fprintf(stderr, "apibench: watcher %d: stream ended: HTTP %d %.300s\n", c->id,
			c->hp.status, c->body.data ? c->body.data : "");
	return -1;
}

static bool watch_next(struct runner *r, struct conn *c)
{
	struct watch_ctx *w = r->ctx;

	if (c->seq > 0)
		return false; /* a watcher opens one stream only */
	if (r->t->api == API_SLUICE)
		request_build(&c->out, r->t, "GET", w->path, NULL, 0);
	else
		request_build(&c->out, r->t, "POST", "/v3/watch", w->body, strlen(w->body));
	return true;
}

static const struct runner_ops watch_ops = {
	.next = watch_next, .done = watch_done, .stream = watch_stream};

#define WATCH_NS   "bench-watch"
#define WATCH_NAME "watched"
#define WATCH_KEY  "/registry/configmaps/" WATCH_NS "/" WATCH_NAME

static void watch_object(struct sl_buf *b, long seq, int64_t sent)
{
	sl_buf_printf(b,
		      "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
		      "\"namespace\":\"%s\"},\"data\":{\"abseq\":\"%ld\",\"sent_ns\":\"%" PRId64
		      "\",\"payload\":\"%s\"}}",
		      WATCH_NAME, WATCH_NS, seq, sent,
		      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

/* Writes the object once (seq -1) and returns the revision it got, or -1. */
static long watch_setup(const struct target *t)
{
	struct conn c = {.fd = target_connect(t)};
	struct sl_buf obj = SL_BUF_INIT, b = SL_BUF_INIT;
	struct json_object *root = NULL, *v;
	long rev = -1;
	int st;

	if (c.fd < 0) {
		fprintf(stderr, "apibench: connect: %s\n", strerror(-c.fd));
		return -1;
	}
	watch_object(&obj, -1, 0);
	if (t->api == API_SLUICE) {
		if (sluice_namespace(t, WATCH_NS))
			goto out;
		st = roundtrip(&c, t, "POST", "/api/v1/namespaces/" WATCH_NS "/configmaps",
			       obj.data);
		if (st == 409) /* left from an earlier run against the same server */
			st = roundtrip(&c, t, "PUT",
				       "/api/v1/namespaces/" WATCH_NS "/configmaps/" WATCH_NAME,
				       obj.data) == 200
				     ? 201
				     : st;
		if (st != 201) {
			fprintf(stderr, "apibench: create %s: HTTP %d: %.300s\n", WATCH_NAME, st,
				c.body.data ? c.body.data : "");
			goto out;
		}
		root = json_tokener_parse(c.body.data);
		if (root && json_object_object_get_ex(root, "metadata", &v) &&
		    json_object_object_get_ex(v, "resourceVersion", &v))
			rev = strtol(json_object_get_string(v), NULL, 10);
	} else {
		etcd_put_body(&b, WATCH_KEY, obj.data, obj.len);
		st = roundtrip(&c, t, "POST", "/v3/kv/put", b.data);
		if (st != 200) {
			fprintf(stderr, "apibench: etcd put: HTTP %d\n", st);
			goto out;
		}
		root = json_tokener_parse(c.body.data);
		if (root && json_object_object_get_ex(root, "header", &v) &&
		    json_object_object_get_ex(v, "revision", &v))
			rev = strtol(json_object_get_string(v), NULL, 10);
	}
	if (rev <= 0)
		fprintf(stderr, "apibench: no revision in %.300s\n", c.body.data);
out:
	json_object_put(root);
	sl_buf_fini(&obj);
	sl_buf_fini(&b);
	conn_fini(&c);
	return rev;
}

/* Updates the watched object on a fixed schedule over one keep-alive connection. */
static void *watch_writer(void *arg)
{
	struct watch_ctx *w = arg;
	const struct target *t = w->t;
	struct conn c = {.fd = target_connect(t)};
	struct sl_buf obj = SL_BUF_INIT, b = SL_BUF_INIT;

	if (c.fd < 0) {
		fprintf(stderr, "apibench: writer connect: %s\n", strerror(-c.fd));
		w->writer_errors++;
		goto out;
	}
	for (int i = 0; i < w->updates; i++) {
		int64_t intended = w->t0 + (int64_t)i * w->period;
		int st;

		sleep_until_ns(intended);
		sl_buf_reset(&obj);
		watch_object(&obj, i, intended);
		if (t->api == API_SLUICE) {
			request_build(&c.out, t, "PUT",
				      "/api/v1/namespaces/" WATCH_NS "/configmaps/" WATCH_NAME,
				      obj.data, obj.len);
		} else {
			sl_buf_reset(&b);
			etcd_put_body(&b, WATCH_KEY, obj.data, obj.len);
			request_build(&c.out, t, "POST", "/v3/kv/put", b.data, b.len);
		}
		w->sent[i] = now_ns();
		st = conn_roundtrip(&c);
		w->ack[i] = c.t_recv;
		if (st != 200) {
			fprintf(stderr, "apibench: writer update %d: HTTP %d %.300s\n", i, st,
				c.body.data ? c.body.data : "");
			w->writer_errors++;
			break;
		}
		w->updates_ok++;
	}
out:
	sl_buf_fini(&obj);
	sl_buf_fini(&b);
	conn_fini(&c);
	atomic_store(&w->writer_done, 1);
	return NULL;
}

/* Ramp-up: return to open more streams while fewer than 64 are unconfirmed. */
static bool watch_ramp_until(struct runner *r)
{
	struct watch_ctx *w = r->ctx;

	return r->errors > 0 || w->established >= w->watchers ||
	       (w->opened < w->watchers && w->opened - w->established < 64);
}

/* Measurement ends when every watcher has every update, or 5 s after the
 * writer finished (what is missing then is counted as missing). */
static bool watch_finished(struct runner *r)
{
	struct watch_ctx *w = r->ctx;

	if (r->errors > 0)
		return true;
	if (!atomic_load(&w->writer_done))
		return false;
	if (!w->done_seen_ns)
		w->done_seen_ns = now_ns();
	return w->events >= (long)w->watchers * w->updates_ok ||
	       now_ns() - w->done_seen_ns > 5000000000LL;
}

static void print_dist(const char *name, struct samples *s)
{
	samples_sort(s);
	printf(" %s_p50_ms=%.3f %s_p90_ms=%.3f %s_p99_ms=%.3f %s_p999_ms=%.3f %s_max_ms=%.3f", name,
	       samples_pct(s, 50), name, samples_pct(s, 90), name, samples_pct(s, 99), name,
	       samples_pct(s, 99.9), name, samples_pct(s, 100));
}

static int cmd_watch(const struct target *t, int watchers, int updates, double rate,
		     const char *cdf)
{
	struct watch_ctx w = {.watchers = watchers, .updates = updates, .rate = rate, .t = t};
	struct samples from_send = {0}, from_ack = {0}, write_lat = {0};
	struct runner r;
	pthread_t th;
	long missing = 0, errors;
	int64_t setup0, setup_ns = 0;
	bool writer_started = false;
	int rc = 1;

	raise_fd_limit();
	w.watch_rev = watch_setup(t);
	if (w.watch_rev <= 0)
		return 1;
	if (t->api == API_SLUICE) {
		snprintf(w.path, sizeof(w.path),
			 "/api/v1/namespaces/" WATCH_NS "/configmaps?watch=true&resourceVersion=%ld"
			 "&fieldSelector=metadata.name%%3D" WATCH_NAME,
			 w.watch_rev);
	} else {
		struct sl_buf b = SL_BUF_INIT;

		sl_buf_puts(&b, "{\"create_request\":{\"key\":\"");
		b64_append(&b, WATCH_KEY, strlen(WATCH_KEY));
		sl_buf_printf(&b, "\",\"start_revision\":\"%ld\"}}", w.watch_rev + 1);
		snprintf(w.body, sizeof(w.body), "%s", sl_buf_cstr(&b));
		sl_buf_fini(&b);
	}
	w.period = (int64_t)(1e9 / rate);
	w.recv = calloc((size_t)watchers * (size_t)updates, sizeof(*w.recv));
	w.ack = calloc((size_t)updates, sizeof(*w.ack));
	w.sent = calloc((size_t)updates, sizeof(*w.sent));
	if (!w.recv || !w.ack || !w.sent || runner_init(&r, t, &watch_ops, &w, watchers)) {
		fprintf(stderr, "apibench: out of memory\n");
		free(w.recv);
		free(w.ack);
		free(w.sent);
		return 2;
	}

	/* Open the streams at most 64 unconfirmed at a time, so the server's
	 * accept queue never overflows (a dropped SYN costs a 1 s retransmit). */
	setup0 = now_ns();
	while (w.established < watchers && !r.errors) {
		while (w.opened < watchers && w.opened - w.established < 64) {
			struct conn *c = &r.conns[w.opened++];

			if (runner_open(&r, c))
				goto report;
			conn_next(&r, c);
		}
		runner_loop(&r, setup0 + 60000000000LL, watch_ramp_until);
		if (now_ns() > setup0 + 60000000000LL) {
			fprintf(stderr, "apibench: only %d of %d watches established in 60 s\n",
				w.established, watchers);
			r.errors++;
		}
	}
	if (r.errors)
		goto report;
	setup_ns = now_ns() - setup0;

	/* Give the server a moment to finish registering the last watchers. */
	w.t0 = now_ns() + 200000000LL;
	if (pthread_create(&th, NULL, watch_writer, &w)) {
		fprintf(stderr, "apibench: cannot start the writer thread\n");
		goto report;
	}
	writer_started = true;
	runner_loop(&r, w.t0 + (int64_t)updates * w.period + 60000000000LL, watch_finished);
	pthread_join(th, NULL);

report:
	if (!writer_started)
		atomic_store(&w.writer_done, 1);
	for (int i = 0; writer_started && i < w.updates_ok; i++) {
		int64_t intended = w.t0 + (int64_t)i * w.period;

		samples_add(&write_lat, w.ack[i] - intended);
		for (int k = 0; k < watchers; k++) {
			int64_t rt = w.recv[(size_t)k * (size_t)updates + (size_t)i];

			if (!rt) {
				missing++;
				continue;
			}
			samples_add(&from_send, rt - intended);
			samples_add(&from_ack, rt - w.ack[i]);
		}
	}
	errors = r.errors + w.writer_errors + missing + w.dups + w.bad +
		 (writer_started && w.updates_ok < updates ? 1 : 0);
	printf("watch api=%s watchers=%d established=%d updates=%d rate=%.1f setup_s=%.2f "
	       "events=%ld missing=%ld dups=%ld errors=%ld",
	       t->api == API_SLUICE ? "sluice" : "etcd", watchers, w.established, w.updates_ok,
	       rate, setup_ns / 1e9, w.events, missing, w.dups, errors);
	print_dist("send", &from_send);
	print_dist("ack", &from_ack);
	print_dist("write", &write_lat);
	printf("\n");
	if (cdf && from_send.n) {
		FILE *f = fopen(cdf, "w");
		static const double ps[] = {1,	5,  10, 20, 30, 40,   50,   60,	   70, 80,
					    90, 95, 97, 98, 99, 99.5, 99.9, 99.99, 100};

		if (!f) {
			fprintf(stderr, "apibench: --cdf '%s': %s\n", cdf, strerror(errno));
			errors++;
		} else {
			fprintf(f, "# percentile from_send_ms from_ack_ms\n");
			for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
				fprintf(f, "%g %.3f %.3f\n", ps[i], samples_pct(&from_send, ps[i]),
					samples_pct(&from_ack, ps[i]));
			fclose(f);
		}
	}
	rc = errors ? 1 : 0;
	free(from_send.v);
	free(from_ack.v);
	free(write_lat.v);
	free(w.recv);
	free(w.ack);
	free(w.sent);
	runner_fini(&r);
	return rc;
}

/* ---- main --------------------------------------------------------------- */

static int cmd_freeport(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		fprintf(stderr, "apibench: freeport: %s\n", strerror(errno));
		return 1;
	}
	printf("%u\n", ntohs(a.sin_port));
	close(fd);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: apibench freeport\n"
		   "       apibench write --api sluice|etcd --url URL [--clients 1] [--seconds 5]\n"
		   "                      [--warmup 0.5] [--tag T]\n"
		   "       apibench load  --api sluice --url URL [--services 10000] [--namespaces "
		   "10]\n"
		   "                      [--slices 1000] [--endpoints 100] [--clients 16]\n"
		   "       apibench load  --api etcd --url URL --from SLUICE_URL [--clients 16]\n"
		   "       apibench list  --api sluice|etcd --url URL --expect N [--count 20]\n"
		   "                      [--serializable] [--limit N]\n"
		   "       apibench watch --api sluice|etcd --url URL [--watchers 1000] [--updates "
		   "200]\n"
		   "                      [--rate 50] [--cdf FILE]\n"
		   "URL is http://IPV4:PORT on loopback or 198.18.0.0/15.\n");
}

static int parse_int(const char *flag, const char *v, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(v, &end, 10);
	if (errno || *end || end == v || *out < lo || *out > hi) {
		fprintf(stderr, "apibench: %s '%s': expected an integer in [%ld, %ld]\n", flag, v,
			lo, hi);
		return -1;
	}
	return 0;
}

static int parse_dbl(const char *flag, const char *v, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	if (errno || *end || end == v || *out < lo || *out > hi) {
		fprintf(stderr, "apibench: %s '%s': expected a number in [%g, %g]\n", flag, v, lo,
			hi);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"api", required_argument, NULL, 'a'},
		{"url", required_argument, NULL, 'u'},
		{"clients", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},
		{"warmup", required_argument, NULL, 'W'},
		{"tag", required_argument, NULL, 'T'},
		{"services", required_argument, NULL, 'S'},
		{"namespaces", required_argument, NULL, 'N'},
		{"slices", required_argument, NULL, 'L'},
		{"endpoints", required_argument, NULL, 'E'},
		{"from", required_argument, NULL, 'f'},
		{"expect", required_argument, NULL, 'x'},
		{"count", required_argument, NULL, 'n'},
		{"serializable", no_argument, NULL, 'z'},
		{"limit", required_argument, NULL, 'l'},
		{"watchers", required_argument, NULL, 'w'},
		{"updates", required_argument, NULL, 'U'},
		{"rate", required_argument, NULL, 'r'},
		{"cdf", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *api = NULL, *url = NULL, *tag = "0", *from = NULL, *cdf = NULL, *cmd;
	long clients = 0, services = 10000, nss = 10, slices = 1000, eps = 100, expect = -1,
	     count = 20, watchers = 1000, updates = 200, limit = 0;
	double seconds = 5, warmup = 0.5, rate = 50;
	bool serializable = false;
	struct target t;
	int c, bad = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "freeport"))
		return cmd_freeport();
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			api = optarg;
			break;
		case 'u':
			url = optarg;
			break;
		case 'c':
			bad |= parse_int("--clients", optarg, 1, 1024, &clients);
			break;
		case 's':
			bad |= parse_dbl("--seconds", optarg, 0.1, 600, &seconds);
			break;
		case 'W':
			bad |= parse_dbl("--warmup", optarg, 0, 60, &warmup);
			break;
		case 'T':
			tag = optarg;
			break;
		case 'S':
			bad |= parse_int("--services", optarg, 0, 1000000, &services);
			break;
		case 'N':
			bad |= parse_int("--namespaces", optarg, 1, 100, &nss);
			break;
		case 'L':
			bad |= parse_int("--slices", optarg, 0, 100000, &slices);
			break;
		case 'E':
			bad |= parse_int("--endpoints", optarg, 1, 1000, &eps);
			break;
		case 'f':
			from = optarg;
			break;
		case 'x':
			bad |= parse_int("--expect", optarg, 0, 10000000, &expect);
			break;
		case 'n':
			bad |= parse_int("--count", optarg, 1, 100000, &count);
			break;
		case 'z':
			serializable = true;
			break;
		case 'l':
			bad |= parse_int("--limit", optarg, 1, 10000000, &limit);
			break;
		case 'w':
			bad |= parse_int("--watchers", optarg, 1, 10000, &watchers);
			break;
		case 'U':
			bad |= parse_int("--updates", optarg, 1, 100000, &updates);
			break;
		case 'r':
			bad |= parse_dbl("--rate", optarg, 0.1, 10000, &rate);
			break;
		case 'C':
			cdf = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (bad || optind < argc || target_parse(&t, api, url)) {
		if (optind < argc)
			fprintf(stderr, "apibench: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!strcmp(cmd, "write"))
		return cmd_write(&t, clients ? (int)clients : 1, seconds, warmup, tag);
	if (!strcmp(cmd, "load"))
		return cmd_load(&t, from, (int)services, (int)nss, (int)slices, (int)eps,
				clients ? (int)clients : 16);
	if (!strcmp(cmd, "list")) {
		if (expect < 0) {
			fprintf(stderr,
				"apibench: list needs --expect N (items each list must hold)\n");
			return 2;
		}
		if (limit && t.api != API_SLUICE) {
			fprintf(stderr, "apibench: list --limit pages sluice's lists only\n");
			return 2;
		}
		return cmd_list(&t, (int)count, expect, serializable, limit);
	}
	if (!strcmp(cmd, "watch"))
		return cmd_watch(&t, (int)watchers, (int)updates, rate, cdf);
	fprintf(stderr, "apibench: unknown command '%s' (freeport, write, load, list, watch)\n",
		cmd);
	return 2;
}
