// SPDX-License-Identifier: Apache-2.0
/*
 * echo-server: the workload of the lab's tests and `make demo`. One process
 * serves TCP echo, UDP echo and a small HTTP server; every reply names the
 * pod (--name, else $POD_NAME, else the hostname) and the client address the
 * server saw, so a test can tell which backend answered and whether the
 * source address was preserved or SNATed on the way.
 *
 *   TCP   each line "X" comes back as "pod=NAME client=IP:PORT X"
 *   UDP   each datagram "X" comes back as "pod=NAME client=IP:PORT X"
 *   HTTP  GET /          "pod=NAME client=IP:PORT path=/"
 *         GET /healthz   200 "ok"
 *         GET /ready     200 "ready" or 503 "not ready"
 *         POST /ready/fail, POST /ready/ok   flip what /ready answers, so a
 *         test can make a readiness probe fail and recover
 *
 * Single-threaded libevent loop; SIGTERM/SIGINT stop it cleanly (exit 0).
 * With --shutdown-delay N, SIGTERM first makes /ready answer 503 and keeps
 * serving for N seconds, as a well-behaved Kubernetes server does: the pod's
 * endpoint is marked terminating at the same time as the SIGTERM is sent, and
 * clients on other nodes keep picking it until that reaches their datapath.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

/* Longest line or datagram echoed back; longer TCP lines are cut there. */
#define ECHO_MAX 4096

struct echo {
	struct event_base *base;
	const char *name;   /* pod name put in every reply */
	bool ready;	    /* what GET /ready answers; flipped by POST /ready/{ok,fail} */
	bool draining;	    /* SIGTERM seen, serving until shutdown_delay has passed */
	int shutdown_delay; /* seconds to keep serving after SIGTERM */
	struct sockaddr_in bind;
	struct evhttp *http;
	struct evconnlistener *tcp;
	int udp_fd; /* -1 when UDP is off */
	struct event *udp_ev;
	struct event *sig_term, *sig_int;
	unsigned long n_requests; /* HTTP requests + TCP lines + UDP datagrams */
	struct echo_conn *conns;  /* open TCP connections, freed at shutdown */
};

/* One accepted TCP echo connection. */
struct echo_conn {
	struct echo *e;
	struct bufferevent *bev;
	struct echo_conn *prev, *next;	 /* in e->conns */
	char peer[INET6_ADDRSTRLEN + 8]; /* "IP:PORT" as accepted */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: echo-server [flags]\n"
		"\n"
		"TCP/UDP echo and a small HTTP server whose replies name the pod and the\n"
		"client address it saw (the workload of the Sluice lab and make demo).\n"
		"\n"
		"  --name NAME       name in replies (default $POD_NAME, else the hostname)\n"
		"  --bind ADDR       IPv4 address to listen on (default 0.0.0.0)\n"
		"  --http PORT       HTTP port (default 8080; 0 = off)\n"
		"  --tcp PORT        TCP echo port (default 9000; 0 = off)\n"
		"  --udp PORT        UDP echo port (default 9000; 0 = off)\n"
		"  --not-ready       start with GET /ready answering 503\n"
		"  --shutdown-delay N  on SIGTERM, answer 503 on /ready and keep serving\n"
		"                    for N seconds (0-3600, default 0) before stopping\n"
		"\n"
		"HTTP: GET / (echo), GET /healthz, GET /ready, POST /ready/fail, POST /ready/ok\n");
}

static int parse_port(const char *flag, const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 0 || v > 65535) {
		fprintf(stderr, "echo-server: --%s '%s': expected a port 0-65535 (0 = off)\n", flag,
			s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static void fmt_peer(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	}
	snprintf(out, len, "%s:%u", ip, port);
}

/* --- HTTP ------------------------------------------------------------------ */

static void http_reply(struct evhttp_request *req, int code, const char *reason, const char *name,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void http_reply(struct evhttp_request *req, int code, const char *reason, const char *name,
		       const char *fmt, ...)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	va_list ap;

	if (!b) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	va_start(ap, fmt);
	evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	evhttp_add_header(h, "X-Pod-Name", name);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void http_cb(struct evhttp_request *req, void *arg)
{
	struct echo *e = arg;
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *uri = evhttp_request_get_uri(req);
	const char *path = uri;
	char *ip = NULL, peer[INET6_ADDRSTRLEN + 8];
	ev_uint16_t port = 0;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);

	e->n_requests++;
	if (u && evhttp_uri_get_path(u))
		path = evhttp_uri_get_path(u);
	evhttp_connection_get_peer(conn, &ip, &port);
	snprintf(peer, sizeof(peer), "%s:%u", ip ? ip : "?", port);

	if (!strcmp(path, "/healthz")) {
		http_reply(req, 200, "OK", e->name, "ok\n");
	} else if (!strcmp(path, "/ready") && cmd != EVHTTP_REQ_POST) {
		if (e->ready)
			http_reply(req, 200, "OK", e->name, "ready\n");
		else
			http_reply(req, 503, "Service Unavailable", e->name, "not ready\n");
	} else if (!strcmp(path, "/ready/fail") || !strcmp(path, "/ready/ok")) {
		/* POST only: a GET from a probe or a crawler must not flip state. */
		if (cmd != EVHTTP_REQ_POST) {
			http_reply(req, 405, "Method Not Allowed", e->name,
				   "%s: use POST to change readiness\n", path);
			return;
		}
		/* A draining server stays not ready: it is on its way out. */
		e->ready = !strcmp(path, "/ready/ok") && !e->draining;
		fprintf(stderr, "echo-server %s: readiness set to %s by %s\n", e->name,
			e->ready ? "ready" : "not ready", peer);
		http_reply(req, 200, "OK", e->name, "pod=%s ready=%s\n", e->name,
			   e->ready ? "true" : "false");
	} else if (cmd == EVHTTP_REQ_POST) {
		http_reply(req, 404, "Not Found", e->name,
			   "%s: POST is accepted on /ready/fail and /ready/ok only\n", path);
	} else {
		http_reply(req, 200, "OK", e->name, "pod=%s client=%s path=%s\n", e->name, peer,
			   path);
	}
}

/* --- TCP ------------------------------------------------------------------- */

static void tcp_close(struct bufferevent *bev, struct echo_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->e->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	bufferevent_free(bev);
	free(c);
}

static void tcp_reply(struct bufferevent *bev, struct echo_conn *c, const char *line, size_t len)
{
	c->e->n_requests++;
	bufferevent_write(bev, "pod=", 4);
	bufferevent_write(bev, c->e->name, strlen(c->e->name));
	bufferevent_write(bev, " client=", 8);
	bufferevent_write(bev, c->peer, strlen(c->peer));
	bufferevent_write(bev, " ", 1);
	bufferevent_write(bev, line, len);
	bufferevent_write(bev, "\n", 1);
}

static void tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct echo_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF))) {
		tcp_reply(bev, c, line, len < ECHO_MAX ? len : ECHO_MAX);
		free(line);
	}
	/* A client that never sends a newline still gets bounded memory. */
	if (evbuffer_get_length(in) > ECHO_MAX) {
		char buf[ECHO_MAX];
		size_t n = evbuffer_remove(in, buf, sizeof(buf));
		tcp_reply(bev, c, buf, n);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
}

static void tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct echo_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (what & BEV_EVENT_EOF) {
		/* Echo an unterminated last line, then close once it is sent. */
		size_t n = evbuffer_get_length(in);
		if (n) {
			char buf[ECHO_MAX];
			n = evbuffer_remove(in, buf, n < sizeof(buf) ? n : sizeof(buf));
			tcp_reply(bev, c, buf, n);
		}
		if (evbuffer_get_length(bufferevent_get_output(bev))) {
			bufferevent_disable(bev, EV_READ);
			return; /* tcp_write_cb closes once flushed */
		}
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		tcp_close(bev, c);
}

static void tcp_write_cb(struct bufferevent *bev, void *arg)
{
	/* Only a connection whose reading side is done waits on this. */
	if (!(bufferevent_get_enabled(bev) & EV_READ))
		tcp_close(bev, arg);
}

static void tcp_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			  int salen, void *arg)
{
	struct echo *e = arg;
	struct bufferevent *bev;
	struct echo_conn *c = calloc(1, sizeof(*c));

	(void)l;
	(void)salen;
	if (!c) {
		close(fd);
		return;
	}
	c->e = e;
	fmt_peer(sa, c->peer, sizeof(c->peer));
	bev = bufferevent_socket_new(e->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		free(c);
		return;
	}
	c->bev = bev;
	c->next = e->conns;
	if (c->next)
		c->next->prev = c;
	e->conns = c;
	bufferevent_setcb(bev, tcp_read_cb, tcp_write_cb, tcp_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* --- UDP ------------------------------------------------------------------- */

static void udp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct echo *e = arg;
	char in[ECHO_MAX], out[ECHO_MAX + 256], peer[INET6_ADDRSTRLEN + 8];
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof(ss);
	ssize_t n;
	int len;

	(void)what;
	n = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
	if (n < 0)
		return;
	e->n_requests++;
	/* Datagrams usually end in a newline from `echo`; keep one, not two. */
	while (n > 0 && (in[n - 1] == '\n' || in[n - 1] == '\r'))
		n--;
	fmt_peer((struct sockaddr *)&ss, peer, sizeof(peer));
	len = snprintf(out, sizeof(out), "pod=%s client=%s %.*s\n", e->name, peer, (int)n, in);
	if (len > (int)sizeof(out))
		len = sizeof(out);
	/* Best effort, like any UDP echo: a full socket buffer drops the reply. */
	if (sendto(fd, out, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) < 0)
		fprintf(stderr, "echo-server: udp reply to %s failed: %s\n", peer, strerror(errno));
}

static int udp_open(struct echo *e, int port)
{
	struct sockaddr_in a = e->bind;
	int one = 1;

	a.sin_port = htons((uint16_t)port);
	e->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (e->udp_fd < 0)
		return -errno;
	setsockopt(e->udp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(e->udp_fd, (struct sockaddr *)&a, sizeof(a)))
		return -errno;
	e->udp_ev = event_new(e->base, e->udp_fd, EV_READ | EV_PERSIST, udp_cb, e);
	if (!e->udp_ev || event_add(e->udp_ev, NULL))
		return -ENOMEM;
	return 0;
}

/* --- lifecycle --------------------------------------------------------------- */

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct echo *e = arg;

	(void)what;
	if (sig == SIGTERM && e->shutdown_delay > 0 && !e->draining) {
		struct timeval tv = {.tv_sec = e->shutdown_delay};

		fprintf(stderr,
			"echo-server %s: SIGTERM, not ready, serving %d s more (%lu requests so "
			"far)\n",
			e->name, e->shutdown_delay, e->n_requests);
		e->draining = true;
		e->ready = false;
		event_base_loopexit(e->base, &tv);
		return;
	}
	fprintf(stderr, "echo-server %s: %s, stopping after %lu requests\n", e->name,
		sig == SIGTERM ? "SIGTERM" : "SIGINT", e->n_requests);
	event_base_loopexit(e->base, NULL);
}

static void echo_fini(struct echo *e)
{
	for (struct echo_conn *c = e->conns, *next; c; c = next) {
		next = c->next;
		bufferevent_free(c->bev);
		free(c);
	}
	e->conns = NULL;
	if (e->http)
		evhttp_free(e->http);
	if (e->tcp)
		evconnlistener_free(e->tcp);
	if (e->udp_ev)
		event_free(e->udp_ev);
	if (e->udp_fd >= 0)
		close(e->udp_fd);
	if (e->sig_term)
		event_free(e->sig_term);
	if (e->sig_int)
		event_free(e->sig_int);
	if (e->base)
		event_base_free(e->base);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"bind", required_argument, NULL, 'b'},
		{"http", required_argument, NULL, 'H'},
		{"tcp", required_argument, NULL, 'T'},
		{"udp", required_argument, NULL, 'U'},
		{"not-ready", no_argument, NULL, 'r'},
		{"shutdown-delay", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct echo e = {.ready = true, .udp_fd = -1};
	int http_port = 8080, tcp_port = 9000, udp_port = 9000, c, rc = 1;
	const char *bind_addr = "0.0.0.0";
	char host[256];

	e.name = getenv("POD_NAME");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			e.name = optarg;
			break;
		case 'b':
			bind_addr = optarg;
			break;
		case 'H':
			if (parse_port("http", optarg, &http_port))
				return 2;
			break;
		case 'T':
			if (parse_port("tcp", optarg, &tcp_port))
				return 2;
			break;
		case 'U':
			if (parse_port("udp", optarg, &udp_port))
				return 2;
			break;
		case 'r':
			e.ready = false;
			break;
		case 'D': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (!*optarg || *end || errno || v < 0 || v > 3600) {
				fprintf(stderr,
					"echo-server: --shutdown-delay '%s': expected seconds "
					"0-3600\n",
					optarg);
				return 2;
			}
			e.shutdown_delay = (int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "echo-server: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	if (!e.name || !*e.name) {
		if (gethostname(host, sizeof(host)))
			snprintf(host, sizeof(host), "unknown");
		host[sizeof(host) - 1] = '\0';
		e.name = host;
	}
	if (strpbrk(e.name, "\r\n")) {
		fprintf(stderr, "echo-server: --name: must not contain line breaks\n");
		return 2;
	}
	e.bind.sin_family = AF_INET;
	if (inet_pton(AF_INET, bind_addr, &e.bind.sin_addr) != 1) {
		fprintf(stderr, "echo-server: --bind '%s': expected an IPv4 address\n", bind_addr);
		return 2;
	}
	if (!http_port && !tcp_port && !udp_port) {
		fprintf(stderr,
			"echo-server: --http, --tcp and --udp are all 0: nothing to serve\n");
		return 2;
	}
	/* A client that resets mid-reply must not kill the server. */
	signal(SIGPIPE, SIG_IGN);

	e.base = event_base_new();
	if (!e.base)
		goto out;
	e.sig_term = evsignal_new(e.base, SIGTERM, signal_cb, &e);
	e.sig_int = evsignal_new(e.base, SIGINT, signal_cb, &e);
	if (!e.sig_term || !e.sig_int || evsignal_add(e.sig_term, NULL) ||
	    evsignal_add(e.sig_int, NULL))
		goto out;

	if (http_port) {
		e.http = evhttp_new(e.base);
		if (!e.http)
			goto out;
		evhttp_set_allowed_methods(e.http,
					   EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
		evhttp_set_gencb(e.http, http_cb, &e);
		if (evhttp_bind_socket(e.http, bind_addr, (ev_uint16_t)http_port)) {
			fprintf(stderr, "echo-server: --http %s:%d: bind failed: %s\n", bind_addr,
				http_port, strerror(errno));
			goto out;
		}
	}
	if (tcp_port) {
		struct sockaddr_in a = e.bind;

		a.sin_port = htons((uint16_t)tcp_port);
		e.tcp = evconnlistener_new_bind(e.base, tcp_accept_cb, &e,
						LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
							LEV_OPT_CLOSE_ON_EXEC,
						128, (struct sockaddr *)&a, sizeof(a));
		if (!e.tcp) {
			fprintf(stderr, "echo-server: --tcp %s:%d: bind failed: %s\n", bind_addr,
				tcp_port, strerror(errno));
			goto out;
		}
	}
	if (udp_port && (rc = udp_open(&e, udp_port))) {
		fprintf(stderr, "echo-server: --udp %s:%d: bind failed: %s\n", bind_addr, udp_port,
			strerror(-rc));
		rc = 1;
		goto out;
	}
	fprintf(stderr, "echo-server %s: serving on %s (http %d, tcp %d, udp %d; 0 = off)%s\n",
		e.name, bind_addr, http_port, tcp_port, udp_port, e.ready ? "" : ", not ready");
	rc = event_base_dispatch(e.base) < 0 ? 1 : 0;
out:
	if (rc && !e.base)
		fprintf(stderr, "echo-server: event loop setup failed\n");
	echo_fini(&e);
	return rc;
}
