// SPDX-License-Identifier: Apache-2.0
/*
 * connbench: the datapath load generator behind tools/bench/datapath.sh and
 * tools/bench/modes.sh. It
 * measures what the socket-level service load balancer (bpf/cgroup_sock_lb)
 * costs a client and how fast the agent turns API writes into map entries:
 *
 *   connbench serve --addrs A,B,... [--port 8080] [--ready-file F]
 *       One process, one thread, epoll: listens on every address, reads a
 *       fixed-size request, writes a fixed-size response and closes first
 *       (HTTP/1.0 style), so TIME_WAIT stays on the server side and the
 *       client never runs out of ephemeral ports.
 *   connbench closed --targets A:P,... --conns N [--seconds S] [--warmup S]
 *       Closed loop: N connections in flight; each one is connect + request
 *       + response + close and is replaced by a new one the moment it ends.
 *       Targets are used round-robin.
 *   connbench open --targets A:P,... --rate R [--seconds S] [--warmup S]
 *                  [--max-inflight M]
 *       Open loop at a fixed rate from a schedule; latency is measured from
 *       each connection's intended start, so a slow datapath cannot hide
 *       behind a slowed-down client (no coordinated omission).
 *   connbench mapwait --url URL --pin DIR [--timeout S] [--pidfile F]
 *                     [--child-log F] -- CMD...
 *       Lists the Services, computes every ClusterIP frontend key, starts CMD
 *       (the agent) and waits until each key is in DIR/sl_svc4_v1; prints
 *       the times from CMD's start.
 *   connbench change --url URL --pin DIR --slice NS/NAME --service SVC
 *                    --vip IP:PORT --backends A,B,... [--samples 200] [--budget S]
 *       Rewrites one EndpointSlice (alternately with all backends and without
 *       the last one), timestamps each PUT just before it is sent and polls
 *       the pinned svc4 entry of the VIP until the new backend count is there;
 *       a watch on the slice times when the API server delivered each change.
 *
 *   connbench load --url URL --svc-base IP --be-base IP [--services N] ...
 *       Creates Services s-NNNNN (ClusterIP svc-base + i, one TCP port, E
 *       endpoints from a shared span, in EndpointSlices of at most 100 as the
 *       EndpointSlice controller writes them) for tools/bench/modes.sh.
 *   connbench update ... --first I --netns PATH
 *       Adds Service I and times the first successful connection through its
 *       ClusterIP from PATH (one new probe every 1 ms).
 *   connbench wait --targets A:P,... --netns PATH [--url URL --pin DIR] -- CMD...
 *       Starts CMD (an agent) and times until each target answers from PATH;
 *       with --url/--pin also until every ClusterIP frontend of the API's
 *       Services is in the service map (as mapwait, on a thread of its own).
 *
 * closed and open take --proto crr (connect, request, response, close; the
 * default), rr (keepalive) or udp (a fresh socket, so a fresh source port, per
 * request) and --sources (bind round-robin to a pool of addresses); latency is
 * kept in log-bucket histograms (within 1.6%), with the TCP connect time
 * apart. serve --any listens on 0.0.0.0 and --udp answers UDP too.
 *
 * Output: one line of key=value pairs on stdout, first word = subcommand.
 * Every error counts and makes the run fail (exit 1): a benchmark with errors
 * measures the wrong thing. Only loopback (127/8) and 198.18.0.0/15 are
 * accepted as addresses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <json-c/json.h>

#include "abi/lb.h"

#define REQ_LEN	  32 /* bytes the client sends */
#define RESP_LEN  64 /* bytes the server answers */
#define MAX_ADDRS 256

static const char req_bytes[REQ_LEN] = "GET /connbench HTTP/1.0\r\n\r\n....";
static const char resp_bytes[RESP_LEN] =
	"HTTP/1.0 200 OK\r\nContent-Length: 23\r\n\r\nconnbench backend reply";

/* ---- time and samples --------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q) {
		fprintf(stderr, "connbench: out of memory\n");
		exit(2);
	}
	return q;
}

/* Every sample kept (no bucketing), in ms; sorted once when read. */
struct samples {
	double *v;
	size_t n, cap;
	bool sorted;
};

static void samples_add(struct samples *s, double ms)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = ms;
	s->sorted = false;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile; NAN when empty. */
static double samples_pct(struct samples *s, double p)
{
	size_t i;

	if (!s->n)
		return __builtin_nan("");
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_double);
		s->sorted = true;
	}
	i = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > s->n)
		i = s->n;
	return s->v[i - 1];
}

static void samples_fini(struct samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/*
 * Latency histogram, HDR style: values in ns, exact below 128 ns, then 64
 * linear sub-buckets per power of two, so every recorded value is known to
 * within 1/64 (1.6%) whatever the range (ns to hours), in fixed memory and
 * O(1) per sample: a client doing 100k requests/s for minutes keeps no
 * per-sample array. Percentiles are nearest-rank over the buckets and report
 * the bucket's midpoint (the exact maximum is kept aside).
 */
#define HIST_SUB_BITS 6
#define HIST_SUB      (1 << HIST_SUB_BITS)
#define HIST_LINEAR   (2 * HIST_SUB) /* values below this have their own bucket */
#define HIST_BUCKETS  (HIST_LINEAR + (63 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t b[HIST_BUCKETS];
	uint64_t n;
	int64_t max;
};

static int hist_index(int64_t v)
{
	int e;

	if (v < HIST_LINEAR)
		return v < 0 ? 0 : (int)v;
	e = 63 - __builtin_clzll((unsigned long long)v); /* >= HIST_SUB_BITS + 1 */
	return HIST_LINEAR + (e - HIST_SUB_BITS - 1) * HIST_SUB +
	       (int)((v >> (e - HIST_SUB_BITS)) - HIST_SUB);
}

/* The midpoint of bucket i. */
static double hist_value(int i)
{
	int e, sub;
	double lo, width;

	if (i < HIST_LINEAR)
		return i;
	e = (i - HIST_LINEAR) / HIST_SUB + HIST_SUB_BITS + 1;
	sub = (i - HIST_LINEAR) % HIST_SUB;
	width = (double)(1ULL << (e - HIST_SUB_BITS));
	lo = (double)(HIST_SUB + sub) * width;
	return lo + width / 2;
}

static void hist_add(struct hist *h, int64_t ns)
{
	h->b[hist_index(ns)]++;
	h->n++;
	if (ns > h->max)
		h->max = ns;
}

/* Percentile p (0-100] in ms; NAN when empty; p = 100 is the exact maximum. */
static double hist_pct_ms(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (!h->n)
		return __builtin_nan("");
	if (p >= 100)
		return (double)h->max / 1e6;
	rank = (uint64_t)(p / 100.0 * (double)h->n + 0.999999);
	if (rank < 1)
		rank = 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			double v = hist_value(i);

			return (v > (double)h->max ? (double)h->max : v) / 1e6;
		}
	}
	return (double)h->max / 1e6;
}

/* ---- addresses ---------------------------------------------------------- */

static bool addr_allowed(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return (h >> 24) == 127 || (h & 0xfffe0000u) == 0xc6120000u;
}

/* Parses "A[:P],B[:P],..." into out (at most MAX_ADDRS); a missing port is
 * def_port (0 = required). Returns the count or -1 with a message. */
static int addrs_parse(const char *flag, const char *s, uint16_t def_port, struct sockaddr_in *out)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int n = 0;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		long port = def_port;

		if (n == MAX_ADDRS) {
			fprintf(stderr, "connbench: %s: more than %d addresses\n", flag, MAX_ADDRS);
			goto bad;
		}
		if (colon) {
			char *end;

			*colon = '\0';
			port = strtol(colon + 1, &end, 10);
			if (*end || port < 1 || port > 65535) {
				fprintf(stderr, "connbench: %s: bad port '%s' (expected 1-65535)\n",
					flag, colon + 1);
				goto bad;
			}
		}
		if (!port) {
			fprintf(stderr, "connbench: %s: '%s' needs a port (ADDR:PORT)\n", flag,
				tok);
			goto bad;
		}
		memset(&out[n], 0, sizeof(out[n]));
		out[n].sin_family = AF_INET;
		out[n].sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, tok, &out[n].sin_addr) != 1) {
			fprintf(stderr, "connbench: %s: '%s' is not an IPv4 address\n", flag, tok);
			goto bad;
		}
		if (!addr_allowed(out[n].sin_addr)) {
			fprintf(stderr,
				"connbench: %s: '%s' is outside 127.0.0.0/8 and 198.18.0.0/15 "
				"(benchmarks stay on loopback and the benchmarking range)\n",
				flag, tok);
			goto bad;
		}
		n++;
	}
	free(copy);
	if (!n)
		fprintf(stderr, "connbench: %s: no address given\n", flag);
	return n ? n : -1;
bad:
	free(copy);
	return -1;
}

static void nofile_raise(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void fd_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* ---- serve -------------------------------------------------------------- */

/* Per accepted connection: bytes of the request read so far. Indexed by fd;
 * listeners are marked so one epoll set serves both. */
struct srv_fd {
	uint8_t listener; /* a listening socket */
	uint8_t got;	  /* request bytes read so far */
	uint8_t served;	  /* scratch: the last srv_handle() answered */
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	stop_flag = 1;
}

/* Reads what has arrived; once the whole request is in, answers. A request
 * whose last byte is 'K' (keepalive) leaves the connection open for the next
 * one; any other closes it, the server first. Returns true when fd was closed. */
static bool srv_handle(int fd, struct srv_fd *st)
{
	char buf[256];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		bool keep;

		if (r > 0) {
			size_t need = REQ_LEN - st->got;

			if ((size_t)r < need) {
				st->got = (uint8_t)(st->got + r);
				continue;
			}
			keep = buf[need - 1] == 'K';
			st->got = 0;
			/* A request is answered before the next is sent, so the
			 * socket has room for 64 bytes. */
			if (write(fd, resp_bytes, RESP_LEN) == RESP_LEN)
				st->served++;
			else
				break;
			if (keep)
				continue;
			break;
		}
		if (r < 0 && errno == EAGAIN)
			return false; /* wait for the rest or the next request */
		break;		      /* EOF or error */
	}
	st->got = 0;
	close(fd);
	return true;
}

/* One datagram in, one out, from the address it was sent to (IP_PKTINFO): with
 * --any the backend addresses are local only through a route, and a reply from
 * another address would not match the client's flow. */
static unsigned srv_udp(int fd)
{
	unsigned served = 0;

	for (;;) {
		char buf[256], cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct sockaddr_in peer;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr m = {.msg_name = &peer,
				   .msg_namelen = sizeof(peer),
				   .msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = cbuf,
				   .msg_controllen = sizeof(cbuf)};
		struct in_pktinfo pi = {0};
		struct cmsghdr *cm;
		ssize_t r = recvmsg(fd, &m, MSG_DONTWAIT);

		if (r < 0)
			return served;
		if (r != REQ_LEN)
			continue; /* not ours: the client counts the loss */
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
		iov.iov_base = (void *)resp_bytes;
		iov.iov_len = RESP_LEN;
		m.msg_namelen = sizeof(peer);
		m.msg_controllen = 0;
		m.msg_control = NULL;
		if (pi.ipi_addr.s_addr) {
			cm = (struct cmsghdr *)cbuf;
			memset(cbuf, 0, sizeof(cbuf));
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			pi.ipi_spec_dst = pi.ipi_addr;
			pi.ipi_ifindex = 0;
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
			m.msg_control = cbuf;
			m.msg_controllen = sizeof(cbuf);
		}
		if (sendmsg(fd, &m, MSG_DONTWAIT) == RESP_LEN)
			served++;
	}
}

static int srv_listen(int type, const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &sa->sin_addr, a, sizeof(a));
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (type == SOCK_DGRAM && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one))) ||
	    bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) ||
	    (type == SOCK_STREAM && listen(fd, 4096))) {
		fprintf(stderr, "connbench serve: %s on %s:%u failed: %s\n",
			type == SOCK_STREAM ? "listen" : "UDP bind", a, ntohs(sa->sin_port),
			strerror(errno));
		fd_close(fd);
		return -1;
	}
	return fd;
}

/* addrs NULL = --any: 0.0.0.0 (the caller routes the backend range to lo). */
static int cmd_serve(const char *addrs, uint16_t port, const char *ready_file, bool udp)
{
	struct sockaddr_in sa[MAX_ADDRS];
	struct epoll_event evs[256];
	struct srv_fd *fds = NULL;
	size_t nfds_cap;
	struct rlimit rl;
	int n, epfd;
	unsigned long long served = 0, served_udp = 0;

	if (addrs) {
		n = addrs_parse("--addrs", addrs, port, sa);
		if (n < 0)
			return 2;
	} else {
		n = 1;
		memset(sa, 0, sizeof(sa[0]));
		sa[0].sin_family = AF_INET;
		sa[0].sin_port = htons(port);
	}
	nofile_raise();
	getrlimit(RLIMIT_NOFILE, &rl);
	nfds_cap = rl.rlim_cur > 1 << 20 ? 1 << 20 : rl.rlim_cur;
	fds = calloc(nfds_cap, sizeof(*fds));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!fds || epfd < 0) {
		fprintf(stderr, "connbench serve: setup failed: %s\n", strerror(errno));
		free(fds);
		fd_close(epfd);
		return 1;
	}
	for (int i = 0; i < n * (udp ? 2 : 1); i++) {
		int type = i < n ? SOCK_STREAM : SOCK_DGRAM;
		int fd = srv_listen(type, &sa[i % n]);
		struct epoll_event ev = {.events = EPOLLIN};

		if (fd < 0 || (size_t)fd >= nfds_cap) {
			fd_close(fd);
			free(fds);
			close(epfd);
			return 1;
		}
		fds[fd].listener = type == SOCK_STREAM ? 1 : 2;
		ev.data.fd = fd;
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	}
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	signal(SIGPIPE, SIG_IGN);
	if (ready_file) {
		FILE *f = fopen(ready_file, "we");

		if (f) {
			fprintf(f, "%d\n", n);
			fclose(f);
		}
	}
	while (!stop_flag) {
		int k = epoll_wait(epfd, evs, 256, 200);

		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;

			if (fds[fd].listener == 2) {
				served_udp += srv_udp(fd);
				continue;
			}
			if (!fds[fd].listener) {
				fds[fd].served = 0;
				srv_handle(fd, &fds[fd]);
				served += fds[fd].served;
				continue;
			}
			for (;;) {
				int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				struct epoll_event ev = {.events = EPOLLIN};

				if (c < 0)
					break;
				if ((size_t)c >= nfds_cap) {
					close(c);
					continue;
				}
				fds[c].got = 0;
				fds[c].listener = 0;
				fds[c].served = 0;
				/* The request usually arrived with the handshake. */
				if (srv_handle(c, &fds[c])) {
					served += fds[c].served;
					continue;
				}
				served += fds[c].served;
				ev.data.fd = c;
				if (epoll_ctl(epfd, EPOLL_CTL_ADD, c, &ev))
					close(c);
			}
		}
	}
	fprintf(stderr, "connbench serve: %llu TCP requests and %llu UDP requests answered\n",
		served, served_udp);
	free(fds);
	close(epfd);
	return 0;
}

/* ---- closed / open loop client ------------------------------------------ */

/*
 * Three kinds of request, each counted as one "connection" in the output:
 *   crr: TCP connect + request + response + close (the server closes first),
 *        a new flow per request: what a service datapath's first packet costs;
 *   rr:  TCP keepalive: request + response on connections kept open (opened
 *        once per slot, at the first use), so only conntrack's steady state
 *        runs; the control case where every mode converges;
 *   udp: a fresh UDP socket per request (a new source port, so a new flow):
 *        connect + one datagram each way + close, DNS style.
 * With --sources the sockets bind round-robin to those addresses (port chosen
 * at connect, IP_BIND_ADDRESS_NO_PORT), so one client can open far more than
 * one address's 64k flows to a target without reusing a 4-tuple.
 */
enum cproto { P_CRR, P_RR, P_UDP };
enum cstate { C_FREE, C_CONNECTING, C_READING, C_IDLE };

static const char req_ka_bytes[REQ_LEN] = "GET /connbench HTTP/1.1\r\n\r\n....K"; /* no NUL */

struct cconn {
	int fd;
	enum cstate state;
	int64_t t_intended; /* CLOCK_MONOTONIC ns: latency is measured from here */
	int64_t t_start;    /* when connect() (or the keepalive request) began */
	uint32_t got;	    /* response bytes read */
	int next_free;
};

struct client {
	struct sockaddr_in targets[MAX_ADDRS], sources[MAX_ADDRS];
	int n_targets, next_target, n_sources, next_source;
	enum cproto proto;
	int epfd;
	struct cconn *c;
	int n_slots, free_head, inflight;
	int64_t t_measure, t_end; /* recorded: connections intended in [t_measure, t_end) */
	int64_t timeout_ns;	  /* a request not answered by then failed (lost UDP) */
	int64_t last_sweep;
	struct hist lat;  /* request: from the intended start to the last byte */
	struct hist conn; /* TCP handshake: from the intended start to connected */
	unsigned long long done_in_window, errors, started, reconnects;
	unsigned long long err_by_errno[160];
	bool closed_loop;
};

static const char *const proto_names[] = {"crr", "rr", "udp"};

static void client_error(struct client *cl, int err)
{
	cl->errors++;
	cl->err_by_errno[err > 0 && err < 160 ? err : 0]++;
}

static void slot_free(struct client *cl, int i)
{
	cl->c[i].next_free = cl->free_head;
	cl->free_head = i;
	cl->inflight--;
}

static void client_release(struct client *cl, int i)
{
	struct cconn *c = &cl->c[i];

	fd_close(c->fd);
	c->fd = -1;
	c->state = C_FREE;
	slot_free(cl, i);
}

/* Every failure counts, warm-up included: a benchmark with errors is void. */
static void client_fail(struct client *cl, int i, int err)
{
	client_error(cl, err);
	client_release(cl, i);
}

static bool in_window(const struct client *cl, int64_t t_done, int64_t t_intended)
{
	/* Closed loop: what completes inside the window counts. Open loop: what
	 * was scheduled inside it (each of those must complete). */
	int64_t when = cl->closed_loop ? t_done : t_intended;

	return when >= cl->t_measure && when < cl->t_end;
}

static void client_send(struct client *cl, int i, bool mod)
{
	struct cconn *c = &cl->c[i];
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
	ssize_t w = write(c->fd, cl->proto == P_RR ? req_ka_bytes : req_bytes, REQ_LEN);

	if (w != REQ_LEN) {
		client_fail(cl, i, w < 0 ? errno : EIO);
		return;
	}
	c->state = C_READING;
	if (mod && epoll_ctl(cl->epfd, EPOLL_CTL_MOD, c->fd, &ev))
		client_fail(cl, i, errno);
}

static void client_connected(struct client *cl, int i)
{
	struct cconn *c = &cl->c[i];
	int64_t t = now_ns();

	if (cl->proto != P_UDP && in_window(cl, t, c->t_intended))
		hist_add(&cl->conn, t - c->t_intended);
}

/* Starts a request intended at t. Returns the slot or -1 (none free). */
static int client_start(struct client *cl, int64_t t)
{
	int i = cl->free_head, one = 1;
	struct cconn *c;
	struct epoll_event ev;
	const struct sockaddr_in *sa;

	if (i < 0)
		return -1;
	c = &cl->c[i];
	cl->free_head = c->next_free;
	cl->inflight++;
	cl->started++;
	c->t_intended = t;
	c->t_start = now_ns();
	c->got = 0;
	if (c->state == C_IDLE) { /* keepalive: the connection is open */
		client_send(cl, i, false);
		return i;
	}
	if (cl->proto == P_RR && cl->started > (unsigned long long)cl->n_slots)
		cl->reconnects++;
	c->state = C_CONNECTING;
	sa = &cl->targets[cl->next_target];
	cl->next_target = (cl->next_target + 1) % cl->n_targets;
	c->fd = socket(
		AF_INET,
		(cl->proto == P_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		client_fail(cl, i, errno);
		return i;
	}
	if (cl->n_sources) {
		const struct sockaddr_in *src = &cl->sources[cl->next_source];

		cl->next_source = (cl->next_source + 1) % cl->n_sources;
		if ((cl->proto != P_UDP &&
		     setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one))) ||
		    bind(c->fd, (const struct sockaddr *)src, sizeof(*src))) {
			client_fail(cl, i, errno);
			return i;
		}
	}
	if (cl->proto == P_RR)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.events = EPOLLOUT;
	ev.data.u32 = (uint32_t)i;
	if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
		ev.events = EPOLLIN;
		if (epoll_ctl(cl->epfd, EPOLL_CTL_ADD, c->fd, &ev)) {
			client_fail(cl, i, errno);
			return i;
		}
		client_connected(cl, i);
		client_send(cl, i, false);
		return i;
	}
	if (errno != EINPROGRESS) {
		client_fail(cl, i, errno);
		return i;
	}
	if (epoll_ctl(cl->epfd, EPOLL_CTL_ADD, c->fd, &ev))
		client_fail(cl, i, errno);
	return i;
}

static void client_done(struct client *cl, int i)
{
	struct cconn *c = &cl->c[i];
	int64_t t = now_ns();

	if (in_window(cl, t, c->t_intended)) {
		hist_add(&cl->lat, t - c->t_intended);
		cl->done_in_window++;
	}
	if (cl->proto == P_RR) {
		c->state = C_IDLE; /* keep the connection for the next request */
		slot_free(cl, i);
		return;
	}
	client_release(cl, i);
}

static void client_event(struct client *cl, int i, uint32_t events)
{
	struct cconn *c = &cl->c[i];
	char buf[512];

	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			client_fail(cl, i, err ? err : errno);
			return;
		}
		client_connected(cl, i);
		client_send(cl, i, true);
		return;
	}
	if (c->state == C_IDLE) {
		/* The server closed a kept-alive connection: it never should. */
		int err = (events & EPOLLERR) ? ECONNRESET : EPIPE;

		fd_close(c->fd);
		c->fd = -1;
		c->state = C_FREE;
		client_error(cl, err);
		return;
	}
	if (c->state != C_READING)
		return;
	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof(buf));

		if (r > 0) {
			c->got += (uint32_t)r;
			if (cl->proto == P_CRR)
				continue;
			break; /* a datagram, or the keepalive reply (checked below) */
		}
		if (r < 0 && errno == EAGAIN)
			return; /* the rest is on its way */
		if (r < 0) {
			client_fail(cl, i, errno);
			return;
		}
		if (cl->proto == P_RR) {
			client_fail(cl, i, EPIPE); /* closed mid-request */
			return;
		}
		break; /* EOF: the server closed after its answer */
	}
	if (cl->proto == P_RR && c->got < RESP_LEN)
		return; /* the rest is on its way */
	if (c->got != RESP_LEN) {
		client_fail(cl, i, EPROTO);
		return;
	}
	client_done(cl, i);
}

/* Fails requests older than the timeout (a lost datagram never answers),
 * at most every 20 ms. */
static void client_sweep(struct client *cl, int64_t t)
{
	if (t - cl->last_sweep < 20000000)
		return;
	cl->last_sweep = t;
	for (int i = 0; i < cl->n_slots; i++) {
		struct cconn *c = &cl->c[i];

		if ((c->state == C_CONNECTING || c->state == C_READING) &&
		    t - c->t_start > cl->timeout_ns)
			client_fail(cl, i, ETIMEDOUT);
	}
}

/* "A.B.C.D-E.F.G.H" (a range, at most MAX_ADDRS) or "A,B,...". */
static int sources_parse(const char *s, struct sockaddr_in *out)
{
	char lo[INET_ADDRSTRLEN], hi[INET_ADDRSTRLEN];
	struct in_addr a, b;
	int n = 0;

	if (sscanf(s, "%15[0-9.]-%15[0-9.]", lo, hi) != 2)
		return addrs_parse("--sources", s, 1, out); /* port 1: overwritten below */
	if (inet_pton(AF_INET, lo, &a) != 1 || inet_pton(AF_INET, hi, &b) != 1 ||
	    ntohl(b.s_addr) < ntohl(a.s_addr) || ntohl(b.s_addr) - ntohl(a.s_addr) >= MAX_ADDRS ||
	    !addr_allowed(a) || !addr_allowed(b)) {
		fprintf(stderr,
			"connbench: --sources '%s': expected A-B with at most %d addresses in "
			"127/8 or 198.18.0.0/15\n",
			s, MAX_ADDRS);
		return -1;
	}
	for (uint32_t h = ntohl(a.s_addr); h <= ntohl(b.s_addr); h++) {
		memset(&out[n], 0, sizeof(out[n]));
		out[n].sin_family = AF_INET;
		out[n++].sin_addr.s_addr = htonl(h);
	}
	return n;
}

struct client_opts {
	const char *targets, *sources, *tag;
	enum cproto proto;
	double secs, warmup, timeout_s;
};

static int client_init(struct client *cl, const struct client_opts *o, int slots)
{
	memset(cl, 0, sizeof(*cl));
	cl->proto = o->proto;
	cl->timeout_ns = (int64_t)(o->timeout_s * 1e9);
	cl->n_targets = addrs_parse("--targets", o->targets, 0, cl->targets);
	if (cl->n_targets < 0)
		return -1;
	if (o->sources) {
		cl->n_sources = sources_parse(o->sources, cl->sources);
		if (cl->n_sources < 0)
			return -1;
		for (int i = 0; i < cl->n_sources; i++)
			cl->sources[i].sin_port = 0;
	}
	nofile_raise();
	signal(SIGPIPE, SIG_IGN);
	cl->epfd = epoll_create1(EPOLL_CLOEXEC);
	cl->c = calloc((size_t)slots, sizeof(*cl->c));
	if (cl->epfd < 0 || !cl->c) {
		fprintf(stderr, "connbench: setup failed: %s\n", strerror(errno));
		/* Callers do not client_fini() a client that failed to init. */
		free(cl->c);
		cl->c = NULL;
		fd_close(cl->epfd);
		cl->epfd = -1;
		return -1;
	}
	cl->n_slots = slots;
	for (int i = 0; i < slots; i++) {
		cl->c[i].fd = -1;
		cl->c[i].next_free = i + 1 < slots ? i + 1 : -1;
	}
	cl->free_head = 0;
	return 0;
}

static void client_fini(struct client *cl)
{
	for (int i = 0; cl->c && i < cl->n_slots; i++)
		fd_close(cl->c[i].fd);
	free(cl->c);
	fd_close(cl->epfd);
}

static void client_report_errors(const struct client *cl)
{
	for (int e = 0; e < 160; e++)
		if (cl->err_by_errno[e])
			fprintf(stderr, "connbench: %llu requests failed: %s\n",
				cl->err_by_errno[e], e ? strerror(e) : "other");
}

static void client_print(const char *mode, struct client *cl, double secs, const char *tag,
			 const char *extra)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	printf("%s cpu_s=%.3f proto=%s tag=%s targets=%d sources=%d %s rate=%.1f p50_ms=%.3f "
	       "p90_ms=%.3f "
	       "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f conn_p50_ms=%.3f conn_p99_ms=%.3f "
	       "conn_p999_ms=%.3f samples=%llu errors=%llu\n",
	       mode,
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
	       proto_names[cl->proto], tag, cl->n_targets, cl->n_sources, extra,
	       (double)cl->done_in_window / secs, hist_pct_ms(&cl->lat, 50),
	       hist_pct_ms(&cl->lat, 90), hist_pct_ms(&cl->lat, 99), hist_pct_ms(&cl->lat, 99.9),
	       hist_pct_ms(&cl->lat, 100), hist_pct_ms(&cl->conn, 50), hist_pct_ms(&cl->conn, 99),
	       hist_pct_ms(&cl->conn, 99.9), (unsigned long long)cl->lat.n, cl->errors);
}

static int cmd_closed(const struct client_opts *o, int conns)
{
	struct client cl;
	struct epoll_event evs[512];
	char extra[64];
	int64_t t0;
	int rc;

	if (client_init(&cl, o, conns))
		return 2;
	cl.closed_loop = true;
	t0 = now_ns();
	cl.t_measure = t0 + (int64_t)(o->warmup * 1e9);
	cl.t_end = cl.t_measure + (int64_t)(o->secs * 1e9);
	for (int i = 0; i < conns; i++)
		client_start(&cl, now_ns());
	for (;;) {
		int64_t t = now_ns();
		int k;

		if (t >= cl.t_end)
			break;
		k = epoll_wait(cl.epfd, evs, 512, 20);
		for (int i = 0; i < k; i++)
			client_event(&cl, (int)evs[i].data.u32, evs[i].events);
		client_sweep(&cl, now_ns());
		/* Closed loop: keep exactly conns in flight. Requests started
		 * after t_end are not measured, so stop refilling then. */
		while (cl.inflight < conns && (t = now_ns()) < cl.t_end && cl.errors < 100)
			client_start(&cl, t);
		if (cl.errors >= 100)
			break; /* failing fast (e.g. no route): stop, the run is void */
	}
	snprintf(extra, sizeof(extra), "conns=%d seconds=%.1f", conns, o->secs);
	/* In a closed loop the latency is from connect() (crr, udp) or from the
	 * request (rr); the rate is what completed inside the window. */
	client_print("closed", &cl, o->secs, o->tag, extra);
	client_report_errors(&cl);
	rc = cl.errors ? 1 : 0;
	client_fini(&cl);
	return rc;
}

static int cmd_open(const struct client_opts *o, double rate, int max_inflight)
{
	struct client cl;
	struct epoll_event evs[512];
	char extra[96];
	int64_t t0, interval, next, drain_end;
	unsigned long long late = 0, scheduled = 0;
	int rc;

	if (client_init(&cl, o, max_inflight))
		return 2;
	interval = (int64_t)(1e9 / rate);
	t0 = now_ns() + 1000000;
	cl.t_measure = t0 + (int64_t)(o->warmup * 1e9);
	cl.t_end = cl.t_measure + (int64_t)(o->secs * 1e9);
	next = t0;
	while (next < cl.t_end) {
		int64_t t = now_ns(), wait;
		struct timespec ts;
		int k;

		/* Start everything that is due; if no slot is free, the backlog
		 * waits and is charged from its intended time. */
		while (next <= t && next < cl.t_end) {
			if (client_start(&cl, next) < 0) {
				late++;
				break;
			}
			if (next >= cl.t_measure)
				scheduled++;
			next += interval;
		}
		wait = next - now_ns();
		if (wait < 0 || cl.free_head < 0)
			wait = cl.free_head < 0 ? 1000000 : 0;
		ts.tv_sec = wait / 1000000000LL;
		ts.tv_nsec = wait % 1000000000LL;
		k = epoll_pwait2(cl.epfd, evs, 512, &ts, NULL);
		for (int i = 0; i < k; i++)
			client_event(&cl, (int)evs[i].data.u32, evs[i].events);
		client_sweep(&cl, now_ns());
	}
	/* Drain: everything scheduled in the window must finish in time. */
	drain_end = now_ns() + cl.timeout_ns;
	while (cl.inflight > 0 && now_ns() < drain_end) {
		int k = epoll_wait(cl.epfd, evs, 512, 20);

		for (int i = 0; i < k; i++)
			client_event(&cl, (int)evs[i].data.u32, evs[i].events);
	}
	for (int i = 0; i < cl.n_slots; i++)
		if (cl.c[i].state == C_CONNECTING || cl.c[i].state == C_READING)
			client_fail(&cl, i, ETIMEDOUT);
	snprintf(extra, sizeof(extra), "target_rate=%.0f seconds=%.1f scheduled=%llu stalls=%llu",
		 rate, o->secs, scheduled, late);
	client_print("open", &cl, o->secs, o->tag, extra);
	client_report_errors(&cl);
	if (cl.lat.n != scheduled) {
		fprintf(stderr, "connbench open: %llu of %llu scheduled requests completed\n",
			(unsigned long long)cl.lat.n, scheduled);
		cl.errors++;
	}
	rc = cl.errors ? 1 : 0;
	client_fini(&cl);
	return rc;
}

/* ---- a small blocking HTTP/1.1 client (Content-Length replies) ----------- */

struct http {
	int fd;
	struct sockaddr_in sa;
	char host[80]; /* "ADDR:PORT" for Host: and messages */
	char *buf;     /* response: headers + body */
	size_t len, cap;
	size_t body_off, body_len;
};

static int http_parse_url(struct http *h, const char *url)
{
	char host[64];
	unsigned port;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	if (sscanf(url, "http://%63[0-9.]:%u", host, &port) != 2 || port < 1 || port > 65535) {
		fprintf(stderr, "connbench: --url '%s': expected http://IPV4:PORT\n", url);
		return -1;
	}
	h->sa.sin_family = AF_INET;
	h->sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &h->sa.sin_addr) != 1 || !addr_allowed(h->sa.sin_addr)) {
		fprintf(stderr, "connbench: --url '%s': not a loopback or 198.18.0.0/15 address\n",
			url);
		return -1;
	}
	snprintf(h->host, sizeof(h->host), "%s:%u", host, port);
	return 0;
}

static int http_connect(struct http *h)
{
	int one = 1;

	fd_close(h->fd);
	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&h->sa, sizeof(h->sa))) {
		fprintf(stderr, "connbench: connect to %s failed: %s\n", h->host, strerror(errno));
		return -1;
	}
	setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int http_send(struct http *h, const char *method, const char *path, const char *body,
		     size_t blen)
{
	char head[512];
	int n;

	if (h->fd < 0 && http_connect(h))
		return -1;
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		     method, path, h->host, blen);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (write(h->fd, head, (size_t)n) != n)
		goto fail;
	for (size_t off = 0; off < blen;) {
		ssize_t w = write(h->fd, body + off, blen - off);

		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	return 0;
fail:
	fprintf(stderr, "connbench: %s %s: write failed: %s\n", method, path, strerror(errno));
	return -1;
}

/* Reads one response. Returns the HTTP status (body at h->buf + h->body_off,
 * NUL-terminated) or -1. */
static int http_recv(struct http *h)
{
	char *hdr_end = NULL;
	long clen = -1;
	int status = -1;

	h->len = 0;
	for (;;) {
		ssize_t r;

		if (h->len + 65536 + 1 > h->cap) {
			h->cap = (h->len + 65536 + 1) * 2;
			h->buf = xrealloc(h->buf, h->cap);
		}
		if (hdr_end && clen >= 0 && h->len >= h->body_off + (size_t)clen)
			break;
		r = read(h->fd, h->buf + h->len, h->cap - h->len - 1);
		if (r <= 0) {
			fprintf(stderr, "connbench: reading a reply from %s failed: %s\n", h->host,
				r ? strerror(errno) : "connection closed");
			fd_close(h->fd);
			h->fd = -1;
			return -1;
		}
		h->len += (size_t)r;
		h->buf[h->len] = '\0';
		if (!hdr_end && (hdr_end = strstr(h->buf, "\r\n\r\n"))) {
			const char *cl = strcasestr(h->buf, "\r\ncontent-length:");

			h->body_off = (size_t)(hdr_end + 4 - h->buf);
			if (sscanf(h->buf, "HTTP/1.%*d %d", &status) != 1 || !cl || cl > hdr_end) {
				fprintf(stderr,
					"connbench: reply without status or length: %.200s\n",
					h->buf);
				fd_close(h->fd);
				h->fd = -1;
				return -1;
			}
			clen = strtol(cl + 17, NULL, 10);
		}
	}
	h->body_len = (size_t)clen;
	h->buf[h->body_off + h->body_len] = '\0';
	return status;
}

static void http_fini(struct http *h)
{
	fd_close(h->fd);
	free(h->buf);
}

/* ---- pinned map access -------------------------------------------------- */

static int svc4_open(const char *pin_dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/sl_svc4_v1", pin_dir);
	return bpf_obj_get(path);
}

/* Frontend keys of every ClusterIP Service port in a /api/v1/services list. */
static int svc_keys_from_list(const char *json, struct sl_svc_key **out, size_t *n_out)
{
	struct json_object *root = json_tokener_parse(json), *items;
	struct sl_svc_key *keys = NULL;
	size_t n = 0;

	if (!root || !json_object_object_get_ex(root, "items", &items) ||
	    !json_object_is_type(items, json_type_array)) {
		fprintf(stderr, "connbench: the Service list is not a list\n");
		json_object_put(root);
		return -1;
	}
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *it = json_object_array_get_idx(items, i), *spec, *ip, *ports;
		struct in_addr a;

		if (!json_object_object_get_ex(it, "spec", &spec) ||
		    !json_object_object_get_ex(spec, "clusterIP", &ip) ||
		    inet_pton(AF_INET, json_object_get_string(ip), &a) != 1 ||
		    !json_object_object_get_ex(spec, "ports", &ports))
			continue; /* headless or no ports: nothing to program */
		for (size_t p = 0; p < json_object_array_length(ports); p++) {
			struct json_object *po = json_object_array_get_idx(ports, p), *v;
			const char *proto = "TCP";

			if (json_object_object_get_ex(po, "protocol", &v))
				proto = json_object_get_string(v);
			if (!json_object_object_get_ex(po, "port", &v))
				continue;
			keys = xrealloc(keys, (n + 1) * sizeof(*keys));
			memset(&keys[n], 0, sizeof(keys[n]));
			keys[n].addr = a.s_addr;
			keys[n].port = htons((uint16_t)json_object_get_int(v));
			keys[n].proto = !strcmp(proto, "UDP")	 ? IPPROTO_UDP
					: !strcmp(proto, "SCTP") ? IPPROTO_SCTP
								 : IPPROTO_TCP;
			keys[n].scope = SL_SCOPE_EXT;
			n++;
		}
	}
	json_object_put(root);
	*out = keys;
	*n_out = n;
	return 0;
}

/* ---- mapwait ------------------------------------------------------------- */

/* Watching the service map fill: every ClusterIP port of the API's Service
 * list, looked up in list order until present. */
struct mapwatch {
	const char *pin_dir;
	struct sl_svc_key *keys;
	size_t n_keys, next;
	int fd;
	int64_t t_pin, t_first, t_all;
	unsigned long long polls, lookups;
};

/* Lists the Services (before the agent starts: the time is not the
 * agent's). 0, or 1 with a message naming what failed (cmd: the caller). */
static int mapwatch_init(struct mapwatch *w, const char *cmd, const char *url, const char *pin_dir)
{
	struct http h;
	int st;

	memset(w, 0, sizeof(*w));
	w->pin_dir = pin_dir;
	w->fd = -1;
	if (http_parse_url(&h, url))
		return 1;
	st = http_send(&h, "GET", "/api/v1/services", NULL, 0) ? -1 : http_recv(&h);
	if (st != 200) {
		fprintf(stderr, "connbench %s: listing Services failed (%s %d)\n", cmd,
			st < 0 ? "error" : "HTTP", st);
		http_fini(&h);
		return 1;
	}
	if (svc_keys_from_list(h.buf + h.body_off, &w->keys, &w->n_keys)) {
		http_fini(&h);
		return 1;
	}
	http_fini(&h);
	if (!w->n_keys) {
		fprintf(stderr, "connbench %s: no ClusterIP Service ports to wait for\n", cmd);
		return 1;
	}
	/* The parsed list (json-c: a million small chunks at 10,000 Services)
	 * is freed but still in the heap. Without this the first malloc after
	 * the fork consolidated it, a copy-on-write fault per page: this
	 * process then took 0.3-1 s to make its first poll, and a start whose
	 * frontends were all in the map after 0.85 s was measured at 1.03 s. */
	malloc_trim(0);
	return 0;
}

/* One poll: each key is looked up until one is missing, in list order, so
 * a whole wait costs about one lookup per key plus one per poll. The agent
 * writes a frontend once, with its final backend list (count 0 = a Service
 * without endpoints, e.g. the built-in kubernetes): present is programmed.
 * True once every key was seen. */
static bool mapwatch_poll(struct mapwatch *w)
{
	if (w->fd < 0) {
		w->fd = svc4_open(w->pin_dir);
		if (w->fd < 0)
			return false;
		w->t_pin = now_ns();
	}
	w->polls++;
	while (w->next < w->n_keys) {
		struct sl_svc_val v;

		w->lookups++;
		if (bpf_map_lookup_elem(w->fd, &w->keys[w->next], &v))
			return false;
		if (!w->t_first)
			w->t_first = now_ns();
		w->next++;
	}
	w->t_all = now_ns();
	return true;
}

static void mapwatch_fini(struct mapwatch *w)
{
	fd_close(w->fd);
	free(w->keys);
}

static int cmd_mapwait(const char *url, const char *pin_dir, double timeout, const char *pidfile,
		       const char *child_log, char **argv)
{
	struct mapwatch w;
	int64_t t0, deadline;
	int st, rc = 1;
	pid_t pid;

	if (mapwatch_init(&w, "mapwait", url, pin_dir))
		return 1;
	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "connbench mapwait: fork failed: %s\n", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* The child must not hold our stdout: the caller reads it to EOF. */
		int lfd = open(child_log ? child_log : "/dev/null",
			       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (lfd < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0) {
			fprintf(stderr, "connbench mapwait: --child-log: %s\n", strerror(errno));
			_exit(127);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "connbench mapwait: exec %s failed: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "we");

		if (f) {
			fprintf(f, "%d\n", (int)pid);
			fclose(f);
		}
	}
	deadline = t0 + (int64_t)(timeout * 1e9);
	/* Every 0.5 ms. The agent applies everything in one sync, so the last
	 * key seen is the end of that sync to within one poll interval. */
	while (now_ns() < deadline) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "connbench mapwait: the agent exited (status %d)\n", st);
			goto out;
		}
		if (mapwatch_poll(&w))
			break;
		sleep_ns(500000);
	}
	if (!w.t_all) {
		fprintf(stderr,
			"connbench mapwait: %zu of %zu frontends programmed after %.1f s "
			"(pin %s)\n",
			w.next, w.n_keys, timeout, w.fd >= 0 ? "present" : "missing");
		goto out;
	}
	printf("mapwait frontends=%zu pin_s=%.4f first_s=%.4f all_s=%.4f polls=%llu "
	       "lookups=%llu\n",
	       w.n_keys, (double)(w.t_pin - t0) / 1e9, (double)(w.t_first - t0) / 1e9,
	       (double)(w.t_all - t0) / 1e9, w.polls, w.lookups);
	rc = 0;
out:
	mapwatch_fini(&w);
	return rc;
}

/* ---- change -------------------------------------------------------------- */

struct change_opts {
	const char *url, *pin_dir, *slice, *service, *vip, *backends, *node, *cdf;
	uint16_t be_port;
	int samples;
	double gap_ms;
	double budget_s; /* stop after this long with the samples taken (0 = none) */
};

static char *slice_body(const char *ns, const char *name, const char *service,
			const struct sockaddr_in *be, int n, uint16_t port, const char *node)
{
	size_t cap = 1024 + (size_t)n * 160, len;
	char *b = xrealloc(NULL, cap);

	len = (size_t)snprintf(b, cap,
			       "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
			       "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"labels\":{"
			       "\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
			       "\"ports\":[{\"name\":\"http\",\"port\":%u,\"protocol\":\"TCP\"}],"
			       "\"endpoints\":[",
			       name, ns, service, port);
	for (int i = 0; i < n; i++) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &be[i].sin_addr, a, sizeof(a));
		len += (size_t)snprintf(b + len, cap - len,
					"%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":true},"
					"\"nodeName\":\"%s\"}",
					i ? "," : "", a, node);
	}
	snprintf(b + len, cap - len, "]}");
	return b;
}

/* A watch on the one EndpointSlice, read raw: only the arrival time of each
 * event's first bytes matters (when the API server delivered the change to a
 * watcher, as it does to the agent). Returns a non-blocking fd or -1. */
static int change_watch_open(struct http *h, const char *ns, const char *name)
{
	char req[512];
	int fd, n;

	if (http_connect(h))
		return -1;
	n = snprintf(req, sizeof(req),
		     "GET /apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?watch=true&"
		     "fieldSelector=metadata.name%%3D%s HTTP/1.1\r\nHost: %s\r\n\r\n",
		     ns, name, h->host);
	fd = h->fd;
	h->fd = -1;
	if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n ||
	    fcntl(fd, F_SETFL, O_NONBLOCK)) {
		fprintf(stderr, "connbench change: watch request failed: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads what is there; returns true if anything was. */
static bool watch_drain(int fd)
{
	char buf[4096];
	bool any = false;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		any = true;
	return any;
}

static int cmd_change(const struct change_opts *o)
{
	struct sockaddr_in vip, be[MAX_ADDRS];
	struct sl_svc_key key = {0};
	struct sl_svc_val cur, v;
	struct samples vis = {0}, ack = {0}, wat = {0};
	char ns[128], name[128], path[512], *bodies[2] = {NULL, NULL};
	int n_be, fd = -1, wfd = -1, rc = 1, errors = 0;
	unsigned long long polls = 0;
	struct http h;
	FILE *cdf = NULL;
	int64_t t_begin;
	bool cut = false;

	if (sscanf(o->slice, "%127[^/]/%127s", ns, name) != 2) {
		fprintf(stderr, "connbench change: --slice '%s': expected NAMESPACE/NAME\n",
			o->slice);
		return 2;
	}
	if (addrs_parse("--vip", o->vip, 0, &vip) != 1)
		return 2;
	n_be = addrs_parse("--backends", o->backends, o->be_port, be);
	if (n_be < 2) {
		if (n_be > 0)
			fprintf(stderr, "connbench change: --backends: need at least 2\n");
		return 2;
	}
	if (http_parse_url(&h, o->url))
		return 2;
	key.addr = vip.sin_addr.s_addr;
	key.port = vip.sin_port;
	key.proto = IPPROTO_TCP;
	key.scope = SL_SCOPE_EXT;
	fd = svc4_open(o->pin_dir);
	if (fd < 0) {
		fprintf(stderr, "connbench change: %s/sl_svc4_v1: %s\n", o->pin_dir,
			strerror(errno));
		goto out;
	}
	if (bpf_map_lookup_elem(fd, &key, &cur)) {
		fprintf(stderr, "connbench change: VIP %s has no svc4 entry (not programmed)\n",
			o->vip);
		goto out;
	}
	/* bodies[0]: every backend; bodies[1]: without the last one. */
	bodies[0] = slice_body(ns, name, o->service, be, n_be, o->be_port, o->node);
	bodies[1] = slice_body(ns, name, o->service, be, n_be - 1, o->be_port, o->node);
	snprintf(path, sizeof(path), "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices/%s",
		 ns, name);
	wfd = change_watch_open(&h, ns, name);
	if (wfd < 0)
		goto out;
	sleep_ns(300000000); /* the initial ADDED event and headers */
	watch_drain(wfd);
	if (o->cdf && !(cdf = fopen(o->cdf, "we"))) {
		fprintf(stderr, "connbench change: --cdf '%s': %s\n", o->cdf, strerror(errno));
		goto out;
	}
	srand48((long)now_ns());
	t_begin = now_ns();
	for (int i = 0; i < o->samples; i++) {
		/* Alternate so every write is a real change from the current state. */
		int which = cur.count == n_be ? 1 : 0;
		int want = which ? n_be - 1 : n_be;
		int64_t t_send, t_ack = 0, t_vis = 0, t_watch = 0, deadline;
		const char *body = bodies[which];
		bool got_ack = false;
		int st;

		if (h.fd < 0 && http_connect(&h))
			goto out;
		watch_drain(wfd);
		t_send = now_ns();
		if (http_send(&h, "PUT", path, body, strlen(body)))
			goto out;
		deadline = t_send + 5000000000LL;
		/* Poll the map until the new entry is there; the reply is read as
		 * soon as it has arrived (MSG_PEEK), without blocking the poll. */
		while (now_ns() < deadline) {
			char c;

			if (!got_ack && recv(h.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
				st = http_recv(&h);
				t_ack = now_ns();
				got_ack = true;
				if (st != 200) {
					fprintf(stderr,
						"connbench change: PUT %s: HTTP %d: %.300s\n", path,
						st, st > 0 ? h.buf + h.body_off : "");
					errors++;
					break;
				}
			}
			if (!t_watch && watch_drain(wfd))
				t_watch = now_ns();
			polls++;
			if (!bpf_map_lookup_elem(fd, &key, &v) && v.count == want &&
			    (v.slot_base != cur.slot_base || v.count != cur.count)) {
				t_vis = now_ns();
				break;
			}
			sleep_ns(20000);
		}
		if (!got_ack) {
			st = http_recv(&h);
			t_ack = now_ns();
			if (st != 200) {
				fprintf(stderr, "connbench change: PUT %s: HTTP %d\n", path, st);
				errors++;
			}
		}
		if (!t_vis) {
			fprintf(stderr, "connbench change: sample %d: change not visible in 5 s\n",
				i);
			errors++;
			if (bpf_map_lookup_elem(fd, &key, &cur))
				goto out;
			continue;
		}
		cur = v;
		samples_add(&vis, (double)(t_vis - t_send) / 1e6);
		samples_add(&ack, (double)(t_ack - t_send) / 1e6);
		if (t_watch)
			samples_add(&wat, (double)(t_watch - t_send) / 1e6);
		if (cdf)
			fprintf(cdf, "%d %.4f %.4f %.4f\n", i, (double)(t_vis - t_send) / 1e6,
				(double)(t_ack - t_send) / 1e6,
				t_watch ? (double)(t_watch - t_send) / 1e6 : -1.0);
		if (o->budget_s > 0 && now_ns() - t_begin > (int64_t)(o->budget_s * 1e9)) {
			cut = true;
			break;
		}
		/* A gap with jitter, so writes do not fall into lockstep with
		 * the agent's debounce timer. */
		sleep_ns((int64_t)((o->gap_ms + drand48() * o->gap_ms) * 1e6));
	}
	printf("change samples=%zu wanted=%d cut_by_budget=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
	       "max_ms=%.3f ack_p50_ms=%.3f ack_p99_ms=%.3f watch_samples=%zu watch_p50_ms=%.3f "
	       "watch_p99_ms=%.3f polls=%llu errors=%d\n",
	       vis.n, o->samples, cut, samples_pct(&vis, 50), samples_pct(&vis, 90),
	       samples_pct(&vis, 99), samples_pct(&vis, 100), samples_pct(&ack, 50),
	       samples_pct(&ack, 99), wat.n, samples_pct(&wat, 50), samples_pct(&wat, 99), polls,
	       errors);
	rc = errors ? 1 : 0;
out:
	if (cdf)
		fclose(cdf);
	free(bodies[0]);
	free(bodies[1]);
	fd_close(fd);
	fd_close(wfd);
	http_fini(&h);
	samples_fini(&vis);
	samples_fini(&ack);
	samples_fini(&wat);
	return rc;
}

/* ---- load / update: Services for the mode comparison --------------------- */

/*
 * tools/bench/modes.sh needs Services whose ClusterIPs, backends and order it
 * knows, with one port each (so "N Services" means N frontends in every
 * dataplane), backends from a fixed address span that the server netns
 * answers for, and a UDP port only on the few Services the client targets.
 * Service i is default/s-NNNNN with ClusterIP svc_base + i and endpoints
 * be_base + (i * E + e) % be_span: Services share pods, as Services selecting
 * overlapping pods do.
 */
struct load_opts {
	const char *url, *node, *udp_list;
	struct in_addr svc_base, be_base;
	int services, first, endpoints, be_span, clients;
	bool affinity;
};

static bool udp_listed(const char *list, int i)
{
	const char *p = list;

	while (p && *p) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p)
			return false;
		if (v == i)
			return true;
		p = *end == ',' ? end + 1 : end;
	}
	return false;
}

static void ip_at(struct in_addr base, uint32_t off, char out[INET_ADDRSTRLEN])
{
	struct in_addr a = {.s_addr = htonl(ntohl(base.s_addr) + off)};

	inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

static char *load_service_body(const struct load_opts *o, int i)
{
	char ip[INET_ADDRSTRLEN], *b = xrealloc(NULL, 1024);

	ip_at(o->svc_base, (uint32_t)i, ip);
	snprintf(b, 1024,
		 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s-%05d\","
		 "\"namespace\":\"default\"},\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"%s\","
		 "\"sessionAffinity\":\"%s\",\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\","
		 "\"port\":80,\"targetPort\":8080}%s]}}",
		 i, ip, o->affinity ? "ClientIP" : "None",
		 udp_listed(o->udp_list, i) ? ",{\"name\":\"dns\",\"protocol\":\"UDP\",\"port\":53,"
					      "\"targetPort\":8080}"
					    : "");
	return b;
}

/*
 * The EndpointSlice controller's split: at most SLICE_MAX endpoints per slice
 * (its --max-endpoints-per-slice default; the API server refuses more than
 * 1000), slices named <service>-<n> with the kubernetes.io/service-name label.
 * A Service with E endpoints (E >= 1: --endpoints) gets ceil(E / SLICE_MAX)
 * slices, s-NNNNN-1 onwards.
 */
#define SLICE_MAX 100

static int load_slices(const struct load_opts *o)
{
	return (o->endpoints + SLICE_MAX - 1) / SLICE_MAX;
}

/* Slice `part` (0-based) of Service i: endpoints part * SLICE_MAX onwards. */
static char *load_slice_body(const struct load_opts *o, int i, int part)
{
	int e0 = part * SLICE_MAX,
	    e1 = e0 + SLICE_MAX < o->endpoints ? e0 + SLICE_MAX : o->endpoints;
	size_t cap = 1024 + (size_t)(e1 > e0 ? e1 - e0 : 0) * 128, len;
	char *b = xrealloc(NULL, cap);
	bool udp = udp_listed(o->udp_list, i);

	len = (size_t)snprintf(
		b, cap,
		"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{"
		"\"name\":\"s-%05d-%d\",\"namespace\":\"default\",\"labels\":{"
		"\"kubernetes.io/service-name\":\"s-%05d\"}},\"addressType\":\"IPv4\",\"ports\":[{"
		"\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}%s],\"endpoints\":[",
		i, part + 1, i,
		udp ? ",{\"name\":\"dns\",\"protocol\":\"UDP\",\"port\":8080}" : "");
	for (int e = e0; e < e1; e++) {
		char ip[INET_ADDRSTRLEN];

		ip_at(o->be_base, (uint32_t)(((long)i * o->endpoints + e) % o->be_span), ip);
		len += (size_t)snprintf(b + len, cap - len,
					"%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":true},"
					"\"nodeName\":\"%s\"}",
					e > e0 ? "," : "", ip, o->node);
	}
	snprintf(b + len, cap - len, "]}");
	return b;
}

static int post(struct http *h, const char *path, char *body)
{
	int st = http_send(h, "POST", path, body, strlen(body)) ? -1 : http_recv(h);

	if (st != 201 && st != 200) {
		fprintf(stderr, "connbench: POST %s: %s %.300s\n", path,
			st < 0 ? "failed" : "HTTP error", st < 0 ? "" : h->buf + h->body_off);
		free(body);
		return -1;
	}
	free(body);
	return 0;
}

/* Slices first, then the Service: the Service arrives with its endpoints. */
static int load_one(struct http *h, const struct load_opts *o, int i)
{
	for (int part = 0; part < load_slices(o); part++)
		if (post(h, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
			 load_slice_body(o, i, part)))
			return -1;
	return post(h, "/api/v1/namespaces/default/services", load_service_body(o, i));
}

static int cmd_load(const struct load_opts *o)
{
	pid_t pids[64];
	int64_t t0 = now_ns();
	int failed = 0;

	for (int k = 0; k < o->clients; k++) {
		pids[k] = fork();
		if (pids[k] < 0) {
			fprintf(stderr, "connbench load: fork: %s\n", strerror(errno));
			return 1;
		}
		if (!pids[k]) {
			struct http h;
			int rc = 0;

			if (http_parse_url(&h, o->url))
				_exit(2);
			for (int i = o->first + k; i < o->first + o->services && !rc;
			     i += o->clients)
				rc = load_one(&h, o, i);
			http_fini(&h);
			_exit(rc ? 1 : 0);
		}
	}
	for (int k = 0; k < o->clients; k++) {
		int st;

		if (waitpid(pids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			failed++;
	}
	printf("load services=%d first=%d endpoints=%d affinity=%d seconds=%.3f errors=%d\n",
	       o->services, o->first, o->endpoints, o->affinity, (double)(now_ns() - t0) / 1e9,
	       failed);
	return failed ? 1 : 0;
}

/* One CRR exchange with a 50 ms cap on each step; 0 on success, else the
 * errno of the step that failed (EPROTO: a short answer). */
static int probe_once(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;
	struct timeval tv = {0, 50000};
	char buf[256];
	size_t got = 0;

	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ||
	    write(fd, req_bytes, REQ_LEN) != REQ_LEN) {
		rc = errno ? errno : EIO;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0)
			rc = errno;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got == RESP_LEN)
		rc = 0;
	else if (rc <= 0)
		rc = EPROTO;
out:
	close(fd);
	return rc;
}

/*
 * Probes sa until one whole exchange succeeds or the deadline passes: a new
 * non-blocking connection every interval_ns, each left pending for up to
 * 200 ms, the first to finish wins. A probe of a ClusterIP that is not yet
 * programmed may neither succeed nor fail fast (the ICMP error can reach the
 * socket while connect() holds it and only count as a soft error), so one
 * probe at a time would add its timeout to the figure; with a probe started
 * every interval the answer is late by at most one interval. Returns the
 * time of the success or 0.
 */
#define PROBE_SLOTS 256

static int64_t probe_until(const struct sockaddr_in *sa, int64_t deadline, int64_t interval_ns,
			   unsigned long long *probes)
{
	struct {
		int fd;
		int64_t t;
		uint32_t got;
		bool sent;
	} p[PROBE_SLOTS];
	int epfd = epoll_create1(EPOLL_CLOEXEC), next = 0;
	int64_t next_start = now_ns(), t_ok = 0;

	if (epfd < 0)
		return 0;
	for (int i = 0; i < PROBE_SLOTS; i++)
		p[i].fd = -1;
	while (!t_ok) {
		struct epoll_event evs[64];
		int64_t t = now_ns(), wait_ns;
		struct timespec ts;
		int k;

		if (t >= deadline)
			break;
		if (t >= next_start) {
			int i = next, fd;

			next = (next + 1) % PROBE_SLOTS;
			fd_close(p[i].fd); /* 256 intervals old: given up */
			p[i].fd = -1;
			fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd >= 0) {
				struct epoll_event ev = {.events = EPOLLOUT,
							 .data.u32 = (uint32_t)i};

				(*probes)++;
				if ((connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) &&
				     errno != EINPROGRESS) ||
				    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
					close(fd);
				} else {
					p[i] = (typeof(p[i])){.fd = fd, .t = t};
				}
			}
			next_start += interval_ns;
			if (next_start < t)
				next_start = t + interval_ns;
		}
		for (int i = 0; i < PROBE_SLOTS; i++)
			if (p[i].fd >= 0 && t - p[i].t > 200000000) {
				close(p[i].fd);
				p[i].fd = -1;
			}
		wait_ns = next_start - now_ns();
		if (wait_ns < 0)
			wait_ns = 0;
		ts.tv_sec = wait_ns / 1000000000LL;
		ts.tv_nsec = wait_ns % 1000000000LL;
		k = epoll_pwait2(epfd, evs, 64, &ts, NULL);
		for (int e = 0; e < k && !t_ok; e++) {
			int i = (int)evs[e].data.u32, err = 0;
			socklen_t len = sizeof(err);
			char buf[256];
			ssize_t r;

			if (p[i].fd < 0)
				continue;
			if (!p[i].sent) {
				struct epoll_event ev = {.events = EPOLLIN,
							 .data.u32 = (uint32_t)i};

				if (getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) || err ||
				    write(p[i].fd, req_bytes, REQ_LEN) != REQ_LEN ||
				    epoll_ctl(epfd, EPOLL_CTL_MOD, p[i].fd, &ev)) {
					close(p[i].fd);
					p[i].fd = -1;
					continue;
				}
				p[i].sent = true;
				continue;
			}
			while ((r = read(p[i].fd, buf, sizeof(buf))) > 0)
				p[i].got += (uint32_t)r;
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r == 0 && p[i].got == RESP_LEN)
				t_ok = now_ns();
			close(p[i].fd);
			p[i].fd = -1;
		}
	}
	for (int i = 0; i < PROBE_SLOTS; i++)
		fd_close(p[i].fd);
	close(epfd);
	return t_ok;
}

/*
 * One Service added with `services` already present: the clock starts before
 * the first POST; "api" is when the API server had accepted both objects,
 * "e2e" when the first connection through the new ClusterIP succeeded
 * (probed every 1 ms from netns_path, where the client lives; the API
 * connection is made before entering it).
 */
static int cmd_update(const struct load_opts *o, const char *netns_path, double timeout)
{
	struct sockaddr_in vip = {.sin_family = AF_INET, .sin_port = htons(80)};
	int64_t t0, t_api, t_ok;
	unsigned long long probes = 0;
	struct http h;
	int nsfd;

	if (http_parse_url(&h, o->url) || http_connect(&h))
		return 2;
	nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		fprintf(stderr, "connbench update: --netns '%s': %s\n", netns_path,
			strerror(errno));
		http_fini(&h);
		return 2;
	}
	vip.sin_addr.s_addr = htonl(ntohl(o->svc_base.s_addr) + (uint32_t)o->first);
	/* Before the clock: a probe must fail now, or the address is taken. */
	if (setns(nsfd, CLONE_NEWNET)) {
		fprintf(stderr, "connbench update: setns '%s': %s\n", netns_path, strerror(errno));
		close(nsfd);
		http_fini(&h);
		return 2;
	}
	close(nsfd);
	if (!probe_once(&vip)) {
		fprintf(stderr, "connbench update: the new ClusterIP answers before it exists\n");
		http_fini(&h);
		return 1;
	}
	t0 = now_ns();
	if (load_one(&h, o, o->first)) {
		http_fini(&h);
		return 1;
	}
	t_api = now_ns();
	t_ok = probe_until(&vip, t0 + (int64_t)(timeout * 1e9), 1000000, &probes);
	printf("update index=%d api_ms=%.3f e2e_ms=%.3f probes=%llu timeout=%d errors=%d\n",
	       o->first, (double)(t_api - t0) / 1e6, t_ok ? (double)(t_ok - t0) / 1e6 : -1.0,
	       probes, !t_ok, !t_ok);
	http_fini(&h);
	return t_ok ? 0 : 1;
}

/*
 * Programming from empty, the same way for every dataplane: starts CMD (the
 * agent, with the Services already in the API) and probes each target in
 * order from netns_path every 2 ms until a whole exchange succeeds; prints
 * the times from CMD's start to the first and to the last target answering.
 * The child moves itself to child_cgroup first, so the agent does not run in
 * the client's cgroup (where the socket LB applies).
 */
/* wait --url --pin: the service map watched on a thread of its own while
 * the main thread probes connections (its 100 ms probe rounds would make
 * the map's time as coarse). */
struct mapthread {
	struct mapwatch w;
	int64_t deadline;
	volatile bool stop;
};

static void *mapthread_run(void *arg)
{
	struct mapthread *m = arg;

	while (!m->stop && now_ns() < m->deadline && !mapwatch_poll(&m->w))
		sleep_ns(500000);
	return NULL;
}

static int cmd_wait(const char *targets, const char *netns_path, double timeout,
		    const char *pidfile, const char *child_log, const char *child_cgroup,
		    const char *url, const char *pin_dir, char **argv)
{
	struct sockaddr_in t[MAX_ADDRS];
	int n = addrs_parse("--targets", targets, 0, t), nsfd, st, next = 0, rc = 1;
	int64_t t0, t_first = 0, t_all = 0, deadline;
	unsigned long long probes = 0;
	struct mapthread mt = {.w.fd = -1};
	bool watching = false;
	pthread_t th;
	pid_t pid;

	if (n < 0)
		return 2;
	if (!url != !pin_dir) {
		fprintf(stderr, "connbench wait: --url and --pin go together\n");
		return 2;
	}
	nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		fprintf(stderr, "connbench wait: --netns '%s': %s\n", netns_path, strerror(errno));
		return 2;
	}
	if (url && mapwatch_init(&mt.w, "wait", url, pin_dir)) {
		close(nsfd);
		return 1;
	}
	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "connbench wait: fork failed: %s\n", strerror(errno));
		close(nsfd);
		if (url)
			mapwatch_fini(&mt.w);
		return 1;
	}
	if (pid == 0) {
		int lfd = open(child_log ? child_log : "/dev/null",
			       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (child_cgroup) {
			char path[PATH_MAX];
			FILE *f;

			snprintf(path, sizeof(path), "%s/cgroup.procs", child_cgroup);
			f = fopen(path, "we");
			if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
				fprintf(stderr, "connbench wait: joining %s failed\n", path);
				_exit(127);
			}
		}
		if (lfd < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "connbench wait: exec %s failed: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "we");

		if (f) {
			fprintf(f, "%d\n", (int)pid);
			fclose(f);
		}
	}
	deadline = t0 + (int64_t)(timeout * 1e9);
	mt.deadline = deadline;
	/* Before setns: the thread stays in this netns (it needs only bpffs). */
	if (url) {
		errno = pthread_create(&th, NULL, mapthread_run, &mt);
		if (errno) {
			fprintf(stderr, "connbench wait: thread: %s\n", strerror(errno));
			close(nsfd);
			goto out;
		}
		watching = true;
	}
	if (setns(nsfd, CLONE_NEWNET)) {
		fprintf(stderr, "connbench wait: setns '%s': %s\n", netns_path, strerror(errno));
		close(nsfd);
		goto out;
	}
	close(nsfd);
	/* Probe for 100 ms at a time so that an agent that exits is noticed. */
	while (next < n && now_ns() < deadline) {
		int64_t until = now_ns() + 100000000, ok;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "connbench wait: %s exited (status %d)\n", argv[0], st);
			goto out;
		}
		ok = probe_until(&t[next], until < deadline ? until : deadline, 2000000, &probes);
		if (ok) {
			if (!t_first)
				t_first = ok;
			next++;
		}
	}
	if (next == n)
		t_all = now_ns();
	else
		mt.stop = true; /* a timeout: no verdict on the map either */
	if (watching) {
		/* The map may fill after the probed Services answer: it has
		 * until the deadline. */
		pthread_join(th, NULL);
		watching = false;
	}
	printf("wait targets=%d first_ok_s=%.3f all_ok_s=%.3f probes=%llu timeout=%d errors=%d", n,
	       t_first ? (double)(t_first - t0) / 1e9 : -1.0,
	       t_all ? (double)(t_all - t0) / 1e9 : -1.0, probes, next < n, next < n);
	if (url)
		printf(" frontends=%zu map_first_s=%.4f map_all_s=%.4f", mt.w.n_keys,
		       mt.w.t_first ? (double)(mt.w.t_first - t0) / 1e9 : -1.0,
		       mt.w.t_all ? (double)(mt.w.t_all - t0) / 1e9 : -1.0);
	printf("\n");
	rc = next == n ? 0 : 1;
out:
	if (watching) {
		mt.stop = true;
		pthread_join(th, NULL);
	}
	if (url)
		mapwatch_fini(&mt.w);
	return rc;
}

/* ---- main ---------------------------------------------------------------- */

/*
 * One request on a Unix stream socket (the agent's endpoint socket, agent/endpoint.c): the
 * first line of stdin is sent, the reply line printed; connecting is retried until the
 * timeout while the socket does not exist yet. The bench registers its client netns
 * as a pod with it, as the CNI plugin does after creating the veth; a C client instead of an
 * interpreter, whose start (~0.4 s of CPU here) would count against the mode it measures.
 */
static int cmd_unixreq(const char *path, double timeout)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = (time_t)timeout,
			     .tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
	char req[4096], rep[4096];
	int64_t deadline;
	size_t len;
	ssize_t n, got = 0;
	int fd, err;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "connbench unixreq: --socket '%s': path too long\n", path);
		return 2;
	}
	if (!fgets(req, sizeof(req), stdin) || !(len = strlen(req)) || req[len - 1] != '\n') {
		fprintf(stderr,
			"connbench unixreq: expected one request line (< %zu bytes) on "
			"stdin\n",
			sizeof(req));
		return 2;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	/* The socket may not exist yet (the agent opens it after its first sync): retried every
	 * 2 ms until the timeout, in this process rather than by a shell loop of sleeps. */
	deadline = now_ns() + (int64_t)(timeout * 1e9);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
			fprintf(stderr, "connbench unixreq: socket: %s\n", strerror(errno));
			if (fd >= 0)
				close(fd);
			return 1;
		}
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
			break;
		err = errno;
		close(fd);
		if ((err != ENOENT && err != ECONNREFUSED) || now_ns() >= deadline) {
			fprintf(stderr, "connbench unixreq: '%s': %s\n", path, strerror(err));
			return 1;
		}
		nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
	}
	for (size_t off = 0; off < len; off += (size_t)n) {
		n = write(fd, req + off, len - off);
		if (n <= 0) {
			fprintf(stderr, "connbench unixreq: send: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
	}
	/* The reply is one line; the agent may keep the connection open after it. */
	while (got < (ssize_t)sizeof(rep) - 1 && !memchr(rep, '\n', (size_t)got)) {
		n = read(fd, rep + got, sizeof(rep) - 1 - (size_t)got);
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	if (!got) {
		fprintf(stderr, "connbench unixreq: no reply from '%s'%s%s\n", path,
			n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
		return 1;
	}
	rep[got] = 0;
	fputs(rep, stdout);
	if (rep[got - 1] != '\n')
		fputc('\n', stdout);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: connbench serve   --addrs A,B,... [--port 8080] [--ready-file F]\n"
		"       connbench closed  --targets A:P,... --conns N [--seconds 2] [--warmup "
		"0.5]\n"
		"                         [--tag T]\n"
		"       connbench open    --targets A:P,... --rate R [--seconds 2] [--warmup 0.5]\n"
		"                         [--max-inflight 20000] [--tag T]\n"
		"       connbench mapwait --url URL --pin DIR [--timeout 60] [--pidfile F]\n"
		"                         [--child-log F] -- CMD...\n"
		"       connbench change  --url URL --pin DIR --slice NS/NAME --service SVC\n"
		"                         --vip IP:PORT --backends A,B,... [--backend-port 8080]\n"
		"                         [--node NAME] [--samples 200] [--gap-ms 10] [--cdf F]\n"
		"                         [--budget SECONDS]\n"
		"       connbench load    --url URL --svc-base IP --be-base IP [--services N]\n"
		"                         [--first I] [--endpoints 10] [--be-span K] [--affinity]\n"
		"                         [--udp-services I,J,...] [--node NAME] [--clients 4]\n"
		"       connbench update  --url URL --svc-base IP --be-base IP --first I\n"
		"                         --netns PATH [--endpoints 10] [--be-span K] [--timeout "
		"S]\n"
		"       connbench unixreq --socket PATH [--timeout 5] < one request line\n"
		"       connbench wait    --targets A:P,... --netns PATH [--timeout 60] [--pidfile "
		"F]\n"
		"                         [--child-log F] [--child-cgroup DIR]\n"
		"                         [--url URL --pin DIR (also: every frontend in the map)]\n"
		"                         -- CMD...\n"
		"closed and open also take [--proto crr|rr|udp] [--sources A-B|A,B,...]\n"
		"[--req-timeout 2]; serve takes --any (0.0.0.0) and --udp (UDP on the same port).\n"
		"\n"
		"Datapath load generator (tools/bench/datapath.sh). One line of key=value\n"
		"results on stdout; any error fails the run (exit 1).\n");
}

static int num(const char *flag, const char *v, double lo, double hi, double *out)
{
	char *end;
	double d = strtod(v, &end);

	if (*end || end == v || d < lo || d > hi) {
		fprintf(stderr, "connbench: %s '%s': expected a number in [%g, %g]\n", flag, v, lo,
			hi);
		return -1;
	}
	*out = d;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"addrs", required_argument, NULL, 'a'},
		{"port", required_argument, NULL, 'p'},
		{"ready-file", required_argument, NULL, 'R'},
		{"targets", required_argument, NULL, 't'},
		{"conns", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},
		{"warmup", required_argument, NULL, 'w'},
		{"rate", required_argument, NULL, 'r'},
		{"max-inflight", required_argument, NULL, 'm'},
		{"tag", required_argument, NULL, 'T'},
		{"url", required_argument, NULL, 'u'},
		{"pin", required_argument, NULL, 'P'},
		{"timeout", required_argument, NULL, 'o'},
		{"pidfile", required_argument, NULL, 'f'},
		{"slice", required_argument, NULL, 'S'},
		{"service", required_argument, NULL, 'V'},
		{"vip", required_argument, NULL, 'v'},
		{"backends", required_argument, NULL, 'b'},
		{"backend-port", required_argument, NULL, 'B'},
		{"node", required_argument, NULL, 'n'},
		{"samples", required_argument, NULL, 'N'},
		{"gap-ms", required_argument, NULL, 'g'},
		{"cdf", required_argument, NULL, 'C'},
		{"child-log", required_argument, NULL, 'L'},
		{"budget", required_argument, NULL, 'G'},
		{"proto", required_argument, NULL, 'x'},
		{"sources", required_argument, NULL, 'X'},
		{"req-timeout", required_argument, NULL, 'q'},
		{"any", no_argument, NULL, 'A'},
		{"udp", no_argument, NULL, 'U'},
		{"services", required_argument, NULL, 1000},
		{"first", required_argument, NULL, 1001},
		{"endpoints", required_argument, NULL, 1002},
		{"svc-base", required_argument, NULL, 1003},
		{"be-base", required_argument, NULL, 1004},
		{"be-span", required_argument, NULL, 1005},
		{"clients", required_argument, NULL, 1006},
		{"affinity", no_argument, NULL, 1007},
		{"udp-services", required_argument, NULL, 1008},
		{"netns", required_argument, NULL, 1009},
		{"child-cgroup", required_argument, NULL, 1010},
		{"socket", required_argument, NULL, 1011},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *addrs = NULL, *ready = NULL, *targets = NULL, *tag = "-", *pidfile = NULL;
	const char *child_log = NULL;
	struct change_opts co = {.node = "node-a", .be_port = 8080, .samples = 200, .gap_ms = 10};
	double port = 8080, conns = 64, secs = 2, warmup = 0.5, rate = 0, inflight = 20000;
	double timeout = 60, d;
	const char *cmd, *netns = NULL, *child_cg = NULL, *sock = NULL;
	struct client_opts clo = {.tag = "-", .proto = P_CRR, .timeout_s = 2};
	struct load_opts lo = {.node = "node-a", .endpoints = 10, .be_span = 1, .clients = 4};
	bool any = false, udp = false, have_svc = false, have_be = false, have_timeout = false;
	int c;

	if (argc < 2 || argv[1][0] == '-') {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			addrs = optarg;
			break;
		case 'p':
			if (num("--port", optarg, 1, 65535, &port))
				return 2;
			break;
		case 'R':
			ready = optarg;
			break;
		case 't':
			targets = optarg;
			break;
		case 'c':
			if (num("--conns", optarg, 1, 100000, &conns))
				return 2;
			break;
		case 's':
			if (num("--seconds", optarg, 0.1, 3600, &secs))
				return 2;
			break;
		case 'w':
			if (num("--warmup", optarg, 0, 60, &warmup))
				return 2;
			break;
		case 'r':
			if (num("--rate", optarg, 1, 10000000, &rate))
				return 2;
			break;
		case 'm':
			if (num("--max-inflight", optarg, 1, 1000000, &inflight))
				return 2;
			break;
		case 'T':
			tag = optarg;
			break;
		case 'u':
			co.url = optarg;
			break;
		case 'P':
			co.pin_dir = optarg;
			break;
		case 'o':
			if (num("--timeout", optarg, 0.1, 3600, &timeout))
				return 2;
			have_timeout = true;
			break;
		case 'f':
			pidfile = optarg;
			break;
		case 'S':
			co.slice = optarg;
			break;
		case 'V':
			co.service = optarg;
			break;
		case 'v':
			co.vip = optarg;
			break;
		case 'b':
			co.backends = optarg;
			break;
		case 'B':
			if (num("--backend-port", optarg, 1, 65535, &d))
				return 2;
			co.be_port = (uint16_t)d;
			break;
		case 'n':
			co.node = optarg;
			break;
		case 'N':
			if (num("--samples", optarg, 1, 1000000, &d))
				return 2;
			co.samples = (int)d;
			break;
		case 'g':
			if (num("--gap-ms", optarg, 0, 10000, &co.gap_ms))
				return 2;
			break;
		case 'C':
			co.cdf = optarg;
			break;
		case 'L':
			child_log = optarg;
			break;
		case 'G':
			if (num("--budget", optarg, 0, 3600, &co.budget_s))
				return 2;
			break;
		case 'x':
			if (!strcmp(optarg, "crr"))
				clo.proto = P_CRR;
			else if (!strcmp(optarg, "rr"))
				clo.proto = P_RR;
			else if (!strcmp(optarg, "udp"))
				clo.proto = P_UDP;
			else {
				fprintf(stderr, "connbench: --proto '%s': crr, rr or udp\n",
					optarg);
				return 2;
			}
			break;
		case 'X':
			clo.sources = optarg;
			break;
		case 'q':
			if (num("--req-timeout", optarg, 0.01, 60, &clo.timeout_s))
				return 2;
			break;
		case 'A':
			any = true;
			break;
		case 'U':
			udp = true;
			break;
		case 1000:
		case 1001:
		case 1002:
		case 1005:
		case 1006:
			if (num("a count", optarg, c == 1002 || c == 1005 || c == 1006 ? 1 : 0,
				c == 1006 ? 64 : 10000000, &d))
				return 2;
			*(c == 1000   ? &lo.services
			  : c == 1001 ? &lo.first
			  : c == 1002 ? &lo.endpoints
			  : c == 1005 ? &lo.be_span
				      : &lo.clients) = (int)d;
			break;
		case 1003:
		case 1004: {
			struct in_addr *a = c == 1003 ? &lo.svc_base : &lo.be_base;

			if (inet_pton(AF_INET, optarg, a) != 1 || !addr_allowed(*a)) {
				fprintf(stderr,
					"connbench: '%s' is not an IPv4 address in 198.18.0.0/15\n",
					optarg);
				return 2;
			}
			*(c == 1003 ? &have_svc : &have_be) = true;
			break;
		}
		case 1007:
			lo.affinity = true;
			break;
		case 1008:
			lo.udp_list = optarg;
			break;
		case 1009:
			netns = optarg;
			break;
		case 1010:
			child_cg = optarg;
			break;
		case 1011:
			sock = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!strcmp(cmd, "serve")) {
		if (!addrs == !any) {
			fprintf(stderr, "connbench serve: --addrs or --any is required\n");
			return 2;
		}
		return cmd_serve(addrs, (uint16_t)port, ready, udp);
	}
	if (!strcmp(cmd, "closed") || !strcmp(cmd, "open")) {
		if (!targets) {
			fprintf(stderr, "connbench %s: --targets is required\n", cmd);
			return 2;
		}
		clo.targets = targets;
		clo.tag = tag;
		clo.secs = secs;
		clo.warmup = warmup;
		if (!strcmp(cmd, "closed"))
			return cmd_closed(&clo, (int)conns);
		if (!rate) {
			fprintf(stderr, "connbench open: --rate is required\n");
			return 2;
		}
		return cmd_open(&clo, rate, (int)inflight);
	}
	if (!strcmp(cmd, "wait")) {
		if (!targets || !netns || optind >= argc) {
			fprintf(stderr,
				"connbench wait: --targets, --netns and -- CMD are required\n");
			return 2;
		}
		return cmd_wait(targets, netns, timeout, pidfile, child_log, child_cg, co.url,
				co.pin_dir, argv + optind);
	}
	if (!strcmp(cmd, "load") || !strcmp(cmd, "update")) {
		lo.url = co.url;
		lo.node = co.node;
		if (!lo.url || !have_svc || !have_be) {
			fprintf(stderr,
				"connbench %s: --url, --svc-base and --be-base are required\n",
				cmd);
			return 2;
		}
		if (!strcmp(cmd, "load"))
			return cmd_load(&lo);
		if (!netns) {
			fprintf(stderr, "connbench update: --netns is required\n");
			return 2;
		}
		return cmd_update(&lo, netns, timeout);
	}
	if (!strcmp(cmd, "unixreq")) {
		if (!sock) {
			fprintf(stderr, "connbench unixreq: --socket is required\n");
			return 2;
		}
		return cmd_unixreq(sock, have_timeout ? timeout : 5);
	}
	if (!strcmp(cmd, "mapwait")) {
		if (!co.url || !co.pin_dir || optind >= argc) {
			fprintf(stderr,
				"connbench mapwait: --url, --pin and -- CMD are required\n");
			return 2;
		}
		return cmd_mapwait(co.url, co.pin_dir, timeout, pidfile, child_log, argv + optind);
	}
	if (!strcmp(cmd, "change")) {
		if (!co.url || !co.pin_dir || !co.slice || !co.service || !co.vip || !co.backends) {
			fprintf(stderr, "connbench change: --url, --pin, --slice, --service, --vip "
					"and --backends are required\n");
			return 2;
		}
		return cmd_change(&co);
	}
	fprintf(stderr,
		"connbench: unknown command '%s' (serve, closed, open, mapwait, change, "
		"load, update, wait, unixreq)\n",
		cmd);
	return 2;
}
