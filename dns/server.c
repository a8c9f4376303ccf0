// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-dns listeners and workers: one thread per core, each with its own
 * SO_REUSEPORT UDP and TCP sockets, epoll set, TCP connections, upstream
 * sockets and table of forwarded queries (see server.h for the model).
 * Everything a worker touches per query lives in its own struct, so workers
 * share nothing on the hot path but the zone snapshot (lock-free) and the
 * cache shards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "forward.h"
#include "server.h"
#include "sluice/err.h"
#include "sluice/hostport.h"
#include "sluice/log.h"
#include "wire.h"
#include "zone.h"

#define SV "dns-server"

#define UDP_BATCH   32
#define UDP_BUF	    4096	/* >= the largest bufsize accepted (config: 4096) */
#define PEND_SLOTS  1024	/* forwarded queries in flight per worker */
#define TCP_OUT_MAX (256 << 10) /* unsent reply bytes before we stop reading */
#define SCAN_MS	    20		/* timer granularity for timeouts */

const char *const dns_stat_type_names[DNS_ST_NTYPES] = {
	"A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "NS", "SOA", "MX", "ANY", "XFR", "other",
};
const char *const dns_stat_rcode_names[DNS_ST_NRCODES] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
};
const unsigned int dns_stat_lat_us[DNS_ST_NLAT] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000,
};

enum ep_kind { K_UDP = 1, K_TCPL, K_CONN, K_UP4, K_UP6, K_EV };

struct tcp_conn {
	int fd;	      /* -1 when the slot is free */
	uint32_t gen; /* bumped on close: late forwarded replies are dropped */
	uint8_t *in;  /* frame being read (2-byte length + message) */
	size_t in_len, in_cap;
	uint8_t *out; /* reply bytes not yet accepted by the socket */
	size_t out_len, out_off, out_cap;
	uint64_t deadline_ms; /* close when reached: idle, slow sender or slow reader */
	bool want_out;	      /* EPOLLOUT registered */
	bool paused;	      /* EPOLLIN removed (too much unsent output) */
};

enum pend_state { P_FREE = 0, P_UDP, P_TCP };

struct pending {
	uint8_t state; /* enum pend_state */
	bool chase;    /* resolving an ExternalName target for q */
	bool client_tcp;
	uint8_t attempts;
	uint16_t up_id;		      /* id of the query we sent upstream */
	int up_idx;		      /* upstream it went to */
	uint32_t gen;		      /* bumped when freed: stale TCP completions are dropped */
	uint64_t deadline_ms;	      /* CLOCK_MONOTONIC */
	uint64_t t0_ns;		      /* client query arrival, for latency */
	size_t limit;		      /* client's reply size limit */
	struct sockaddr_storage peer; /* UDP client */
	socklen_t peer_len;
	uint32_t conn, conn_gen; /* TCP client */
	struct dns_query uq;	 /* the upstream question (name/type/class/DO) */
	struct dns_query q;	 /* the client's query */
	int next_free;
};

struct completion {
	struct completion *next;
	uint32_t slot, gen;
	int rc;
	size_t len;
	uint8_t msg[];
};

struct worker;

struct tcp_ticket {
	struct worker *w;
	uint32_t slot, gen;
};

struct worker {
	struct dns_server *s;
	unsigned int idx;
	pthread_t thr;
	bool started;
	int ep, udp_fd, tcp_fd, up_fd[2], ev_fd; /* up_fd: [0] IPv4, [1] IPv6 */
	struct tcp_conn *conns;
	unsigned int n_conns; /* slots */
	struct pending *pend;
	int free_head;	  /* free list of pend[] */
	uint16_t *id_map; /* upstream id -> pending slot + 1 */
	uint64_t rng;
	uint64_t last_scan_ms;

	/* UDP batch buffers */
	struct mmsghdr rmsg[UDP_BATCH], smsg[UDP_BATCH];
	struct iovec riov[UDP_BATCH], siov[UDP_BATCH];
	struct sockaddr_storage raddr[UDP_BATCH];
	uint8_t (*rbuf)[UDP_BUF];
	uint8_t (*sbuf)[UDP_BUF];
	uint8_t *scratch;  /* DNS_MAX_MSG + 2: TCP replies, forwarded replies */
	uint8_t *scratch2; /* DNS_MAX_MSG: chase cache lookups */

	pthread_mutex_t done_lock; /* guards done (filled by forwarder helper threads) */
	struct completion *done;

	struct dns_server_stats st; /* written by this worker only */
};

struct dns_server {
	struct dns_server_opts o;
	struct sockaddr_storage bound;
	unsigned int n_workers;
	struct worker *w;
	atomic_bool stop;
	atomic_uint tcp_open;
};

#define ST_INC(w, f)	__atomic_fetch_add(&(w)->st.f, 1, __ATOMIC_RELAXED)
#define ST_ADD(w, f, v) __atomic_fetch_add(&(w)->st.f, (v), __ATOMIC_RELAXED)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
	return now_ns() / 1000000;
}

static uint64_t rng_next(struct worker *w)
{
	uint64_t x = w->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	w->rng = x;
	return x;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static socklen_t sa_len(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static bool sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	/* Both are fully initialised sockaddr_storage (recvfrom's is zeroed
	 * first); the analyzer loses track through the cast. */
	// NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
	bool same_port = x->sin6_port == y->sin6_port;

	return same_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

static int ep_add(int ep, int fd, uint32_t events, enum ep_kind k, uint32_t idx)
{
	struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)k << 32 | idx};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int ep_mod(int ep, int fd, uint32_t events, enum ep_kind k, uint32_t idx)
{
	struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)k << 32 | idx};

	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
}

/* ---- stats ---------------------------------------------------------------------------------- */

static enum dns_stat_type stat_type(uint16_t t)
{
	switch (t) {
	case DNS_T_A:
		return DNS_ST_A;
	case DNS_T_AAAA:
		return DNS_ST_AAAA;
	case DNS_T_SRV:
		return DNS_ST_SRV;
	case DNS_T_PTR:
		return DNS_ST_PTR;
	case DNS_T_TXT:
		return DNS_ST_TXT;
	case DNS_T_CNAME:
		return DNS_ST_CNAME;
	case DNS_T_NS:
		return DNS_ST_NS;
	case DNS_T_SOA:
		return DNS_ST_SOA;
	case DNS_T_MX:
		return DNS_ST_MX;
	case DNS_T_ANY:
		return DNS_ST_ANY;
	case DNS_T_AXFR:
	case DNS_T_IXFR:
		return DNS_ST_XFR;
	default:
		return DNS_ST_OTHER;
	}
}

/* Counts a reply being sent: its rcode (header only; BADVERS is counted
 * where it is produced) and the latency since the query arrived. */
static void stat_reply(struct worker *w, const uint8_t *msg, size_t len, uint64_t t0_ns,
		       bool badvers)
{
	uint64_t us = (now_ns() - t0_ns) / 1000;
	int rc = len >= 4 ? msg[3] & 0x0f : 7;
	int b = 0;

	if (badvers)
		rc = 6;
	else if (rc > 5)
		rc = 7;
	ST_INC(w, rcodes[rc]);
	while (b < DNS_ST_NLAT && us > dns_stat_lat_us[b])
		b++;
	ST_INC(w, lat[b]);
	ST_ADD(w, lat_sum_us, us);
}

/* ---- replies -------------------------------------------------------------------------------- */

static void tcp_close(struct worker *w, uint32_t i);

/* Queues a framed reply on a TCP connection, writing what the socket takes now. */
static void tcp_send(struct worker *w, uint32_t i, const uint8_t *msg, size_t len)
{
	struct tcp_conn *c = &w->conns[i];
	uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};

	if (c->out_len == c->out_off) {
		/* Nothing queued: try to write directly. */
		struct iovec iov[2] = {{hdr, 2}, {(void *)msg, len}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)(len + 2))
			return;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			tcp_close(w, i);
			return;
		}
		if (n < 0)
			n = 0;
		c->out_len = c->out_off = 0;
		/* Queue the rest below. */
		size_t skip = (size_t)n;
		size_t rest = len + 2 - skip;
		if (c->out_cap < rest) {
			uint8_t *nb = realloc(c->out, rest);
			if (!nb) {
				tcp_close(w, i);
				return;
			}
			c->out = nb;
			c->out_cap = rest;
		}
		if (skip < 2) {
			memcpy(c->out, hdr + skip, 2 - skip);
			memcpy(c->out + 2 - skip, msg, len);
		} else {
			memcpy(c->out, msg + skip - 2, rest);
		}
		c->out_len = rest;
	} else {
		size_t used = c->out_len - c->out_off;
		size_t need = used + len + 2;
		if (need > (size_t)TCP_OUT_MAX * 2) {
			/* The peer reads nothing and keeps asking: cut it off. */
			tcp_close(w, i);
			return;
		}
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, used);
			c->out_off = 0;
			c->out_len = used;
		}
		if (c->out_cap < need) {
			uint8_t *nb = realloc(c->out, need);
			if (!nb) {
				tcp_close(w, i);
				return;
			}
			c->out = nb;
			c->out_cap = need;
		}
		memcpy(c->out + c->out_len, hdr, 2);
		memcpy(c->out + c->out_len + 2, msg, len);
		c->out_len += len + 2;
	}
	if (!c->want_out) {
		c->want_out = true;
		c->paused = c->out_len - c->out_off > TCP_OUT_MAX;
		ep_mod(w->ep, c->fd, (c->paused ? 0 : EPOLLIN) | EPOLLOUT, K_CONN, i);
	}
}

/* A reply to a client recorded in a pending slot (forwarded or chased). */
static void pend_reply(struct worker *w, struct pending *p, const uint8_t *msg, size_t len)
{
	stat_reply(w, msg, len, p->t0_ns, false);
	if (p->client_tcp) {
		if (p->conn < w->n_conns && w->conns[p->conn].fd >= 0 &&
		    w->conns[p->conn].gen == p->conn_gen)
			tcp_send(w, p->conn, msg, len);
		return;
	}
	if (len >= 3 && (msg[2] & 0x02))
		ST_INC(w, truncated);
	sendto(w->udp_fd, msg, len, MSG_DONTWAIT, (const struct sockaddr *)&p->peer, p->peer_len);
}

/* Header + question + (OPT) with an rcode. Returns the length (0 on failure). */
static size_t reply_rcode(struct worker *w, const struct dns_query *q, int rcode, uint8_t *out,
			  size_t cap)
{
	struct dns_writer wr;

	if (dns_writer_begin(&wr, out, cap, q, false, rcode))
		return 0;
	dns_writer_opt(&wr, w->s->o.bufsize);
	return dns_writer_end(&wr);
}

/* ---- forwarding ----------------------------------------------------------------------------- */

static void pend_free(struct worker *w, int slot)
{
	struct pending *p = &w->pend[slot];

	if (p->state == P_UDP || p->state == P_TCP)
		if (w->id_map[p->up_id] == slot + 1)
			w->id_map[p->up_id] = 0;
	p->state = P_FREE;
	p->gen++;
	p->next_free = w->free_head;
	w->free_head = slot;
}

static int pend_alloc(struct worker *w)
{
	int slot = w->free_head;

	if (slot < 0)
		return -1;
	w->free_head = w->pend[slot].next_free;
	return slot;
}

/* Sends (or resends) slot's upstream query over UDP to a fresh upstream. */
static int pend_send(struct worker *w, int slot, int avoid)
{
	struct pending *p = &w->pend[slot];
	struct dns_fwd *f = w->s->o.fwd;
	uint8_t q[DNS_MAX_NAME + 64];
	const struct sockaddr_storage *to;
	int idx = dns_fwd_pick(f, avoid), n, fd;
	uint16_t id;

	if (idx < 0)
		return -ENOENT;
	/* A random id not in use by this worker (RFC 5452). */
	do {
		id = (uint16_t)rng_next(w);
	} while (w->id_map[id]);
	if (w->id_map[p->up_id] == slot + 1)
		w->id_map[p->up_id] = 0;
	p->up_id = id;
	p->up_idx = idx;
	w->id_map[id] = (uint16_t)(slot + 1);
	n = dns_fwd_query_build(q, sizeof(q), id, p->uq.qname_wire, p->uq.qname_wire_len,
				p->uq.qtype, p->uq.qclass, p->uq.do_bit, dns_fwd_bufsize(f));
	if (n < 0)
		return n;
	to = dns_fwd_upstream_addr(f, (unsigned int)idx);
	fd = w->up_fd[to->ss_family == AF_INET6];
	p->attempts++;
	p->state = P_UDP;
	p->deadline_ms = now_ms() + dns_fwd_timeout_ms(f);
	dns_fwd_count_query(f, idx, false);
	if (fd < 0 ||
	    sendto(fd, q, (size_t)n, MSG_DONTWAIT, (const struct sockaddr *)to, sa_len(to)) != n) {
		/* Treated like a timeout at the next scan. */
		p->deadline_ms = 0;
	}
	return 0;
}

struct chase_ctx {
	struct dns_writer *wr;
	int added;
};

static int chase_add(const struct dns_rr *rr, void *arg)
{
	struct chase_ctx *c = arg;

	if (dns_writer_rr(c->wr, 1, rr) == 0)
		c->added++;
	return c->wr->truncated;
}

/* Builds the zone's answer to q again (the CNAME) and appends the target's
 * records from msg (may be NULL: the CNAME alone). Returns the length. */
static size_t chase_reply(struct worker *w, const struct dns_query *q, size_t limit,
			  const uint8_t *msg, size_t mlen, uint8_t *out)
{
	struct dns_zone_result res;
	struct dns_writer wr;
	struct chase_ctx cc = {.wr = &wr};

	if (dns_writer_begin(&wr, out, limit, q, false, DNS_R_NOERROR))
		return 0;
	if (dns_zone_answer(w->s->o.zone, q, &wr, &res) || !res.ours)
		return reply_rcode(w, q, DNS_R_SERVFAIL, out, limit);
	if (msg && mlen >= 12 && dns_msg_rcode(msg) == DNS_R_NOERROR)
		dns_fwd_answers(msg, mlen, chase_add, &cc);
	if (msg && mlen >= 12 && dns_msg_tc(msg))
		wr.truncated = true;
	dns_writer_opt(&wr, w->s->o.bufsize);
	return dns_writer_end(&wr);
}

/* An upstream reply (UDP or TCP) for slot: cache it, answer the client, free the slot. */
static void pend_complete(struct worker *w, int slot, const uint8_t *msg, size_t len)
{
	struct pending *p = &w->pend[slot];
	struct dns_fwd *f = w->s->o.fwd;
	size_t n;
	int r;

	dns_cache_put(dns_fwd_cache(f), &p->uq, msg, len, now_ms());
	if (p->chase) {
		n = chase_reply(w, &p->q, p->limit, msg, len, w->scratch);
	} else {
		r = dns_fwd_render(msg, len, 0, &p->q, w->scratch, DNS_MAX_MSG, p->limit,
				   dns_fwd_bufsize(f));
		n = r > 0 ? (size_t)r : reply_rcode(w, &p->q, DNS_R_SERVFAIL, w->scratch, p->limit);
	}
	if (n)
		pend_reply(w, p, w->scratch, n);
	pend_free(w, slot);
}

/* All attempts failed: SERVFAIL (or, for a chase, the CNAME alone). */
static void pend_fail(struct worker *w, int slot)
{
	struct pending *p = &w->pend[slot];
	size_t n;

	ST_INC(w, upstream_failed);
	if (p->chase)
		n = chase_reply(w, &p->q, p->limit, NULL, 0, w->scratch);
	else
		n = reply_rcode(w, &p->q, DNS_R_SERVFAIL, w->scratch, p->limit);
	if (n)
		pend_reply(w, p, w->scratch, n);
	pend_free(w, slot);
}

static void tcp_done(int rc, const uint8_t *reply, size_t len, void *arg)
{
	struct tcp_ticket *t = arg;
	struct worker *w = t->w;
	struct completion *c = malloc(sizeof(*c) + (rc > 0 ? len : 0));
	uint64_t one = 1;

	if (c) {
		c->slot = t->slot;
		c->gen = t->gen;
		c->rc = rc;
		c->len = rc > 0 ? len : 0;
		if (rc > 0)
			memcpy(c->msg, reply, len);
		pthread_mutex_lock(&w->done_lock);
		c->next = w->done;
		w->done = c;
		pthread_mutex_unlock(&w->done_lock);
		if (write(w->ev_fd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow in practice; the next scan drains. */
		}
	}
	free(t);
}

/* An upstream answered with TC: retry over TCP on a helper thread. */
static void pend_tcp_retry(struct worker *w, int slot)
{
	struct pending *p = &w->pend[slot];
	struct dns_fwd *f = w->s->o.fwd;
	struct tcp_ticket *t = malloc(sizeof(*t));
	uint8_t q[DNS_MAX_NAME + 64];
	int n;

	n = dns_fwd_query_build(q, sizeof(q), p->up_id, p->uq.qname_wire, p->uq.qname_wire_len,
				p->uq.qtype, p->uq.qclass, p->uq.do_bit, dns_fwd_bufsize(f));
	if (!t || n < 0) {
		free(t);
		pend_fail(w, slot);
		return;
	}
	t->w = w;
	t->slot = (uint32_t)slot;
	t->gen = p->gen;
	dns_fwd_count_query(f, p->up_idx, true);
	if (dns_fwd_tcp_submit(f, p->up_idx, q, (size_t)n, tcp_done, t)) {
		free(t);
		pend_fail(w, slot);
		return;
	}
	p->state = P_TCP;
	/* The helper has its own timeout; this is a backstop. */
	p->deadline_ms = now_ms() + 2ull * dns_fwd_timeout_ms(f) + 100;
}

static void drain_completions(struct worker *w)
{
	struct completion *c, *next;
	uint64_t v;

	if (read(w->ev_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled; the list may still hold entries. */
	}
	pthread_mutex_lock(&w->done_lock);
	c = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->done_lock);
	for (; c; c = next) {
		struct pending *p = &w->pend[c->slot];
		next = c->next;
		if (c->slot < PEND_SLOTS && p->state == P_TCP && p->gen == c->gen) {
			if (c->rc > 0 &&
			    !dns_fwd_reply_check(c->msg, c->len, p->up_id, p->uq.qname_wire,
						 p->uq.qname_wire_len, p->uq.qtype, p->uq.qclass)) {
				dns_fwd_report(w->s->o.fwd, p->up_idx, true);
				pend_complete(w, (int)c->slot, c->msg, c->len);
			} else {
				dns_fwd_report(w->s->o.fwd, p->up_idx, false);
				pend_fail(w, (int)c->slot);
			}
		}
		free(c);
	}
}

static void upstream_read(struct worker *w, int fd)
{
	struct dns_fwd *f = w->s->o.fwd;

	for (;;) {
		struct sockaddr_storage from = {0};
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, w->scratch2, DNS_MAX_MSG, MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
		struct pending *p;
		int slot;

		if (n < 0)
			return;
		if (n < 12)
			continue;
		slot = w->id_map[dns_msg_id(w->scratch2)] - 1;
		if (slot < 0)
			continue;
		p = &w->pend[slot];
		/* Only the upstream we asked, only the question we asked (RFC 5452). */
		if (p->state != P_UDP ||
		    !sa_equal(&from, dns_fwd_upstream_addr(f, (unsigned int)p->up_idx)) ||
		    dns_fwd_reply_check(w->scratch2, (size_t)n, p->up_id, p->uq.qname_wire,
					p->uq.qname_wire_len, p->uq.qtype, p->uq.qclass))
			continue;
		dns_fwd_report(f, p->up_idx, true);
		if (dns_msg_tc(w->scratch2))
			pend_tcp_retry(w, slot);
		else
			pend_complete(w, slot, w->scratch2, (size_t)n);
	}
}

static void pend_scan(struct worker *w, uint64_t now)
{
	struct dns_fwd *f = w->s->o.fwd;
	unsigned int max_attempts;

	if (!f)
		return;
	max_attempts = dns_fwd_n_upstreams(f) > 1 ? 3 : 2;
	for (int i = 0; i < PEND_SLOTS; i++) {
		struct pending *p = &w->pend[i];
		if (p->state == P_FREE || p->deadline_ms > now)
			continue;
		if (p->state == P_UDP) {
			ST_INC(w, upstream_timeouts);
			dns_fwd_report(f, p->up_idx, false);
			if (p->attempts < max_attempts && !pend_send(w, i, p->up_idx))
				continue;
		}
		pend_fail(w, i);
	}
}

/*
 * Starts forwarding uq on behalf of q. Returns 0 when a slot took it, or
 * -1 when the caller must answer SERVFAIL now.
 */
static int forward_start(struct worker *w, const struct dns_query *q, const struct dns_query *uq,
			 bool chase, size_t limit, uint64_t t0, const struct sockaddr_storage *peer,
			 socklen_t peer_len, int conn)
{
	int slot = pend_alloc(w);
	struct pending *p;

	if (slot < 0) {
		ST_INC(w, pending_full);
		return -1;
	}
	p = &w->pend[slot];
	p->chase = chase;
	p->client_tcp = conn >= 0;
	p->attempts = 0;
	p->t0_ns = t0;
	p->limit = limit;
	if (conn >= 0) {
		p->conn = (uint32_t)conn;
		p->conn_gen = w->conns[conn].gen;
	} else {
		memcpy(&p->peer, peer, peer_len);
		p->peer_len = peer_len;
	}
	p->q = *q;
	p->uq = *uq;
	p->up_id = 0;
	if (pend_send(w, slot, -1)) {
		pend_free(w, slot);
		return -1;
	}
	ST_INC(w, forwarded);
	return 0;
}

/* ---- the query path ------------------------------------------------------------------------- */

/*
 * Answers one query. Returns the reply length in out, or 0 when there is
 * nothing to send now (dropped, or forwarded: the reply comes later).
 */
static size_t handle_query(struct worker *w, const uint8_t *pkt, size_t len, uint8_t *out,
			   size_t cap, uint64_t t0, const struct sockaddr_storage *peer,
			   socklen_t peer_len, int conn)
{
	struct dns_server_opts *o = &w->s->o;
	struct dns_query q;
	struct dns_writer wr;
	struct dns_zone_result res;
	size_t limit, n;
	int rcode = 0, rc;

	rc = dns_query_parse(pkt, len, &q, &rcode);
	if (rc && rcode < 0) {
		ST_INC(w, dropped);
		return 0;
	}
	if (conn >= 0) {
		limit = DNS_MAX_MSG;
	} else {
		limit = q.edns ? q.edns_udp : DNS_MAX_UDP;
		if (limit > o->bufsize)
			limit = o->bufsize;
		if (limit < DNS_MAX_UDP)
			limit = DNS_MAX_UDP;
	}
	if (limit > cap)
		limit = cap;
	if (rc) {
		if (dns_writer_begin(&wr, out, limit, &q, false, rcode))
			return 0;
		dns_writer_opt(&wr, o->bufsize);
		n = dns_writer_end(&wr);
		stat_reply(w, out, n, t0, rcode == DNS_R_BADVERS);
		return n;
	}
	ST_INC(w, queries[stat_type(q.qtype)]);
	if (o->zone) {
		if (dns_writer_begin(&wr, out, limit, &q, false, DNS_R_NOERROR))
			return 0;
		if (!dns_zone_answer(o->zone, &q, &wr, &res) && res.ours) {
			ST_INC(w, zone);
			if (res.cname && o->fwd && dns_fwd_n_upstreams(o->fwd) &&
			    (q.qtype == DNS_T_A || q.qtype == DNS_T_AAAA)) {
				struct dns_query uq = q;
				int wl = dns_name_to_wire(res.cname_target, uq.qname_wire,
							  sizeof(uq.qname_wire));
				if (wl > 0) {
					uq.qname_wire_len = (uint8_t)wl;
					uq.edns = false;
					/* The target may be cached already. */
					rc = dns_cache_get(dns_fwd_cache(o->fwd), &uq, w->scratch2,
							   DNS_MAX_MSG, DNS_MAX_MSG, o->bufsize,
							   now_ms());
					if (rc > 0) {
						ST_INC(w, cache_hits);
						n = chase_reply(w, &q, limit, w->scratch2,
								(size_t)rc, out);
						if (n)
							stat_reply(w, out, n, t0, false);
						return n;
					}
					ST_INC(w, cache_misses);
					if (!forward_start(w, &q, &uq, true, limit, t0, peer,
							   peer_len, conn))
						return 0;
				}
			}
			dns_writer_opt(&wr, o->bufsize);
			n = dns_writer_end(&wr);
			stat_reply(w, out, n, t0, false);
			return n;
		}
	}
	if (!o->fwd || !dns_fwd_n_upstreams(o->fwd)) {
		n = reply_rcode(w, &q, DNS_R_SERVFAIL, out, limit);
		stat_reply(w, out, n, t0, false);
		return n;
	}
	rc = dns_cache_get(dns_fwd_cache(o->fwd), &q, out, cap, limit, o->bufsize, now_ms());
	if (rc > 0) {
		ST_INC(w, cache_hits);
		stat_reply(w, out, (size_t)rc, t0, false);
		return (size_t)rc;
	}
	ST_INC(w, cache_misses);
	if (!forward_start(w, &q, &q, false, limit, t0, peer, peer_len, conn))
		return 0;
	n = reply_rcode(w, &q, DNS_R_SERVFAIL, out, limit);
	stat_reply(w, out, n, t0, false);
	return n;
}

/* ---- UDP ------------------------------------------------------------------------------------ */

static void udp_read(struct worker *w)
{
	for (int rounds = 0; rounds < 8; rounds++) {
		int n, ns = 0;

		for (int i = 0; i < UDP_BATCH; i++) {
			w->riov[i].iov_base = w->rbuf[i];
			w->riov[i].iov_len = UDP_BUF;
			memset(&w->rmsg[i].msg_hdr, 0, sizeof(w->rmsg[i].msg_hdr));
			w->rmsg[i].msg_hdr.msg_iov = &w->riov[i];
			w->rmsg[i].msg_hdr.msg_iovlen = 1;
			w->rmsg[i].msg_hdr.msg_name = &w->raddr[i];
			w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->raddr[i]);
		}
		n = recvmmsg(w->udp_fd, w->rmsg, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			uint64_t t0 = now_ns();
			size_t len;

			ST_INC(w, udp);
			len = handle_query(w, w->rbuf[i], w->rmsg[i].msg_len, w->sbuf[ns], UDP_BUF,
					   t0, &w->raddr[i], w->rmsg[i].msg_hdr.msg_namelen, -1);
			if (!len)
				continue;
			if (w->sbuf[ns][2] & 0x02)
				ST_INC(w, truncated);
			w->siov[ns].iov_base = w->sbuf[ns];
			w->siov[ns].iov_len = len;
			memset(&w->smsg[ns].msg_hdr, 0, sizeof(w->smsg[ns].msg_hdr));
			w->smsg[ns].msg_hdr.msg_iov = &w->siov[ns];
			w->smsg[ns].msg_hdr.msg_iovlen = 1;
			w->smsg[ns].msg_hdr.msg_name = &w->raddr[i];
			w->smsg[ns].msg_hdr.msg_namelen = w->rmsg[i].msg_hdr.msg_namelen;
			ns++;
		}
		for (int off = 0; off < ns;) {
			int s = sendmmsg(w->udp_fd, w->smsg + off, (unsigned int)(ns - off),
					 MSG_DONTWAIT);
			if (s <= 0)
				break; /* socket buffer full: UDP may drop, clients retry */
			off += s;
		}
		if (n < UDP_BATCH)
			return;
	}
}

/* ---- TCP ------------------------------------------------------------------------------------ */

static void tcp_close(struct worker *w, uint32_t i)
{
	struct tcp_conn *c = &w->conns[i];

	if (c->fd < 0)
		return;
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close_fd(&c->fd);
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->in_len = c->in_cap = c->out_len = c->out_off = c->out_cap = 0;
	c->want_out = c->paused = false;
	c->gen++;
	atomic_fetch_sub(&w->s->tcp_open, 1);
}

static void tcp_accept(struct worker *w)
{
	for (;;) {
		int fd = accept4(w->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		uint32_t i;

		if (fd < 0)
			return;
		if (atomic_fetch_add(&w->s->tcp_open, 1) >= w->s->o.tcp_max_conns) {
			atomic_fetch_sub(&w->s->tcp_open, 1);
			ST_INC(w, tcp_rejected);
			close(fd);
			continue;
		}
		for (i = 0; i < w->n_conns && w->conns[i].fd >= 0; i++)
			;
		if (i == w->n_conns) {
			atomic_fetch_sub(&w->s->tcp_open, 1);
			ST_INC(w, tcp_rejected);
			close(fd);
			continue;
		}
		struct tcp_conn *c = &w->conns[i];
		c->in_cap = 514; /* grows to the frame size when a bigger one is announced */
		c->in = malloc(c->in_cap);
		if (!c->in) {
			atomic_fetch_sub(&w->s->tcp_open, 1);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in_len = 0;
		c->deadline_ms = now_ms() + w->s->o.tcp_idle_ms;
		if (ep_add(w->ep, fd, EPOLLIN, K_CONN, i)) {
			tcp_close(w, i);
			continue;
		}
		ST_INC(w, tcp_accepted);
	}
}

static void tcp_flush(struct worker *w, uint32_t i)
{
	struct tcp_conn *c = &w->conns[i];

	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		tcp_close(w, i);
		return;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->want_out) {
			c->want_out = c->paused = false;
			ep_mod(w->ep, c->fd, EPOLLIN, K_CONN, i);
		}
	} else if (c->paused != (c->out_len - c->out_off > TCP_OUT_MAX)) {
		c->paused = !c->paused;
		ep_mod(w->ep, c->fd, (c->paused ? 0 : EPOLLIN) | EPOLLOUT, K_CONN, i);
	}
}

static void tcp_read(struct worker *w, uint32_t i)
{
	struct tcp_conn *c = &w->conns[i];
	uint32_t gen = c->gen;

	for (int rounds = 0; rounds < 16 && c->fd >= 0 && c->gen == gen && !c->paused; rounds++) {
		size_t want = c->in_len < 2 ? 2 : 2 + (size_t)(c->in[0] << 8 | c->in[1]);
		ssize_t n;

		if (c->in_len >= 2 && want == 2) {
			/* A zero-length frame is not a DNS message: close. */
			tcp_close(w, i);
			return;
		}
		if (want > c->in_cap) {
			uint8_t *nb = realloc(c->in, want);
			if (!nb) {
				tcp_close(w, i);
				return;
			}
			c->in = nb;
			c->in_cap = want;
		}
		n = recv(c->fd, c->in + c->in_len, want - c->in_len, MSG_DONTWAIT);
		if (n == 0) {
			/* Peer closed; replies still queued or in flight are dropped. */
			tcp_close(w, i);
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tcp_close(w, i);
			return;
		}
		c->in_len += (size_t)n;
		if (c->in_len < want || want == 2)
			continue;
		/* A whole frame. */
		{
			uint64_t t0 = now_ns();
			size_t len;

			ST_INC(w, tcp);
			len = handle_query(w, c->in + 2, want - 2, w->scratch, DNS_MAX_MSG, t0,
					   NULL, 0, (int)i);
			c->in_len = 0;
			if (c->fd < 0 || c->gen != gen)
				return;
			c->deadline_ms = now_ms() + w->s->o.tcp_idle_ms;
			if (len)
				tcp_send(w, i, w->scratch, len);
		}
	}
}

static void tcp_scan(struct worker *w, uint64_t now)
{
	for (uint32_t i = 0; i < w->n_conns; i++) {
		if (w->conns[i].fd >= 0 && w->conns[i].deadline_ms <= now) {
			ST_INC(w, tcp_timeouts);
			tcp_close(w, i);
		}
	}
}

/* ---- worker --------------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];

	while (!atomic_load_explicit(&w->s->stop, memory_order_relaxed)) {
		int n = epoll_wait(w->ep, evs, 64, SCAN_MS);
		uint64_t now;

		for (int i = 0; i < n; i++) {
			enum ep_kind k = (enum ep_kind)(evs[i].data.u64 >> 32);
			uint32_t idx = (uint32_t)evs[i].data.u64;

			switch (k) {
			case K_UDP:
				udp_read(w);
				break;
			case K_TCPL:
				tcp_accept(w);
				break;
			case K_CONN:
				if (w->conns[idx].fd < 0)
					break;
				if (evs[i].events & (EPOLLERR | EPOLLHUP) &&
				    !(evs[i].events & EPOLLIN)) {
					tcp_close(w, idx);
					break;
				}
				if (evs[i].events & EPOLLOUT)
					tcp_flush(w, idx);
				if (w->conns[idx].fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP)))
					tcp_read(w, idx);
				break;
			case K_UP4:
				upstream_read(w, w->up_fd[0]);
				break;
			case K_UP6:
				upstream_read(w, w->up_fd[1]);
				break;
			case K_EV:
				drain_completions(w);
				break;
			}
		}
		now = now_ms();
		if (now - w->last_scan_ms >= SCAN_MS) {
			w->last_scan_ms = now;
			pend_scan(w, now);
			tcp_scan(w, now);
		}
	}
	return NULL;
}

static int listen_socket(const struct sockaddr_storage *a, int type)
{
	int one = 1, fd = socket(a->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)a, sa_len(a)) ||
	    (type == SOCK_STREAM && listen(fd, 1024))) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (type == SOCK_DGRAM) {
		int sz = 4 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	} else {
		/* Pipelined queries (glibc sends A and AAAA on one connection) get
		 * their replies back to back: with Nagle on, the second waited for
		 * the client's delayed ACK of the first. */
		sl_listener_nodelay(fd);
	}
	return fd;
}

static int upstream_socket(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

static void worker_fini(struct worker *w)
{
	struct completion *c, *n;

	if (w->conns)
		for (uint32_t i = 0; i < w->n_conns; i++)
			tcp_close(w, i);
	close_fd(&w->udp_fd);
	close_fd(&w->tcp_fd);
	close_fd(&w->up_fd[0]);
	close_fd(&w->up_fd[1]);
	close_fd(&w->ev_fd);
	close_fd(&w->ep);
	for (c = w->done; c; c = n) {
		n = c->next;
		free(c);
	}
	w->done = NULL;
	pthread_mutex_destroy(&w->done_lock);
	free(w->conns);
	free(w->pend);
	free(w->id_map);
	free(w->rbuf);
	free(w->sbuf);
	free(w->scratch);
	free(w->scratch2);
}

static int worker_init(struct dns_server *s, struct worker *w, unsigned int idx,
		       const struct sockaddr_storage *addr)
{
	int rc;

	w->s = s;
	w->idx = idx;
	w->ep = w->udp_fd = w->tcp_fd = w->up_fd[0] = w->up_fd[1] = w->ev_fd = -1;
	w->free_head = -1;
	pthread_mutex_init(&w->done_lock, NULL);
	if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || !w->rng)
		w->rng = now_ns() | 1;
	w->n_conns = s->o.tcp_max_conns;
	w->conns = calloc(w->n_conns, sizeof(*w->conns));
	w->pend = calloc(PEND_SLOTS, sizeof(*w->pend));
	w->id_map = calloc(65536, sizeof(*w->id_map));
	w->rbuf = malloc(UDP_BATCH * sizeof(*w->rbuf));
	w->sbuf = malloc(UDP_BATCH * sizeof(*w->sbuf));
	w->scratch = malloc(DNS_MAX_MSG + 2);
	w->scratch2 = malloc(DNS_MAX_MSG);
	if (!w->conns || !w->pend || !w->id_map || !w->rbuf || !w->sbuf || !w->scratch ||
	    !w->scratch2)
		return -ENOMEM;
	for (uint32_t i = 0; i < w->n_conns; i++)
		w->conns[i].fd = -1;
	for (int i = PEND_SLOTS - 1; i >= 0; i--) {
		w->pend[i].next_free = w->free_head;
		w->free_head = i;
	}
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->ev_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->ep < 0 || w->ev_fd < 0)
		return -errno;
	rc = listen_socket(addr, SOCK_DGRAM);
	if (rc < 0)
		return rc;
	w->udp_fd = rc;
	rc = listen_socket(addr, SOCK_STREAM);
	if (rc < 0)
		return rc;
	w->tcp_fd = rc;
	if (s->o.fwd) {
		for (unsigned int i = 0; i < dns_fwd_n_upstreams(s->o.fwd); i++) {
			int fam = dns_fwd_upstream_addr(s->o.fwd, i)->ss_family == AF_INET6;
			if (w->up_fd[fam] >= 0)
				continue;
			rc = upstream_socket(fam ? AF_INET6 : AF_INET);
			if (rc < 0)
				return rc;
			w->up_fd[fam] = rc;
			rc = ep_add(w->ep, w->up_fd[fam], EPOLLIN, fam ? K_UP6 : K_UP4, 0);
			if (rc)
				return rc;
		}
	}
	if ((rc = ep_add(w->ep, w->udp_fd, EPOLLIN, K_UDP, 0)) ||
	    (rc = ep_add(w->ep, w->tcp_fd, EPOLLIN, K_TCPL, 0)) ||
	    (rc = ep_add(w->ep, w->ev_fd, EPOLLIN, K_EV, 0)))
		return rc;
	return 0;
}

struct dns_server *dns_server_new(const struct dns_server_opts *o)
{
	struct dns_server *s = calloc(1, sizeof(*s));
	char abuf[80];
	long ncpu;
	int rc = 0;

	if (!s)
		return NULL;
	s->o = *o;
	if (!s->o.tcp_max_conns)
		s->o.tcp_max_conns = 1024;
	if (!s->o.tcp_idle_ms)
		s->o.tcp_idle_ms = 10000;
	if (s->o.bufsize < DNS_MAX_UDP)
		s->o.bufsize = DNS_EDNS_DEFAULT;
	if (s->o.bufsize > UDP_BUF)
		s->o.bufsize = UDP_BUF;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	s->n_workers = o->workers ? o->workers : (ncpu > 0 ? (unsigned int)ncpu : 1);
	s->w = calloc(s->n_workers, sizeof(*s->w));
	if (!s->w) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->bound = o->listen;
	for (unsigned int i = 0; i < s->n_workers; i++) {
		rc = worker_init(s, &s->w[i], i, &s->bound);
		if (rc) {
			/* Workers before i are initialised; i is partially. */
			s->n_workers = i + 1;
			break;
		}
		if (i == 0) {
			/* Port 0 asked: every other socket joins the port the first got. */
			socklen_t l = sizeof(s->bound);
			getsockname(s->w[0].udp_fd, (struct sockaddr *)&s->bound, &l);
		}
	}
	if (rc) {
		pr_err(SV, "listen '%s': opening sockets failed: %s",
		       dns_config_addr_str(&o->listen, abuf, sizeof(abuf)), sl_strerror(rc));
		dns_server_free(s);
		errno = -rc;
		return NULL;
	}
	return s;
}

int dns_server_start(struct dns_server *s)
{
	for (unsigned int i = 0; i < s->n_workers; i++) {
		int rc = pthread_create(&s->w[i].thr, NULL, worker_main, &s->w[i]);
		if (rc) {
			dns_server_stop(s);
			return -rc;
		}
		s->w[i].started = true;
	}
	return 0;
}

void dns_server_stop(struct dns_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	for (unsigned int i = 0; i < s->n_workers; i++) {
		uint64_t one = 1;
		if (!s->w[i].started)
			continue;
		if (write(s->w[i].ev_fd, &one, sizeof(one)) < 0) {
			/* The worker also wakes every SCAN_MS. */
		}
		pthread_join(s->w[i].thr, NULL);
		s->w[i].started = false;
	}
}

void dns_server_free(struct dns_server *s)
{
	if (!s)
		return;
	dns_server_stop(s);
	for (unsigned int i = 0; i < s->n_workers; i++)
		worker_fini(&s->w[i]);
	free(s->w);
	free(s);
}

void dns_server_stats(struct dns_server *s, struct dns_server_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < s->n_workers; i++) {
		const uint64_t *src = (const uint64_t *)&s->w[i].st;
		uint64_t *dst = (uint64_t *)out;
		for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
			dst[k] += __atomic_load_n(&src[k], __ATOMIC_RELAXED);
	}
	out->tcp_open = atomic_load(&s->tcp_open);
}

void dns_server_addr(const struct dns_server *s, struct sockaddr_storage *out)
{
	*out = s->bound;
}
