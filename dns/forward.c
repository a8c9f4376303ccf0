// SPDX-License-Identifier: Apache-2.0
/*
 * Forwarding support for sluice-dns: the shared upstream set (health,
 * failover, probe thread, TCP helper threads), the cache of forwarded
 * answers, and the message helpers the workers use to build upstream
 * queries and to render upstream or cached replies for their clients.
 * See forward.h for the contract; the hot-path socket work lives in
 * server.c so that a cache miss costs one sendto() and no thread hop.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "forward.h"
#include "sluice/log.h"

#define FW "dns-forward"

/* ---- message walking ---------------------------------------------------------------------- */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Skips a possibly compressed name starting at *off (the pointer target is
 * not followed: only the bytes at this position are consumed). */
static int name_skip(const uint8_t *m, size_t len, size_t *off)
{
	size_t o = *off, total = 0;

	for (;;) {
		if (o >= len)
			return -EBADMSG;
		uint8_t l = m[o];
		if ((l & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return -EBADMSG;
			*off = o + 2;
			return 0;
		}
		if (l & 0xc0)
			return -EBADMSG;
		o += 1u + l;
		total += 1u + l;
		if (total > DNS_MAX_NAME)
			return -EBADMSG;
		if (l == 0) {
			*off = o;
			return 0;
		}
	}
}

/* Decompresses the name at off into presentation form (no trailing dot,
 * "" for the root), escaping '.', '\\' and non-printable bytes. Pointers
 * must point backwards, which bounds the walk. */
static int name_read(const uint8_t *m, size_t len, size_t off, char *out, size_t cap)
{
	size_t o = off, n = 0, wire = 0;
	size_t limit = off; /* pointers must go strictly below this */

	if (cap == 0)
		return -ENOSPC;
	for (;;) {
		if (o >= len)
			return -EBADMSG;
		uint8_t l = m[o];
		if ((l & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return -EBADMSG;
			size_t t = (size_t)(l & 0x3f) << 8 | m[o + 1];
			if (t >= limit)
				return -EBADMSG;
			limit = t;
			o = t;
			continue;
		}
		if (l & 0xc0)
			return -EBADMSG;
		if (l == 0)
			break;
		if (o + 1 + l > len || (wire += 1u + l) > DNS_MAX_NAME)
			return -EBADMSG;
		if (n) {
			if (n + 1 >= cap)
				return -ENOSPC;
			out[n++] = '.';
		}
		for (size_t i = 0; i < l; i++) {
			uint8_t ch = m[o + 1 + i];
			if (ch == '.' || ch == '\\') {
				if (n + 2 >= cap)
					return -ENOSPC;
				out[n++] = '\\';
				out[n++] = (char)ch;
			} else if (ch <= 0x20 || ch >= 0x7f) {
				if (n + 4 >= cap)
					return -ENOSPC;
				out[n++] = '\\';
				out[n++] = (char)('0' + ch / 100);
				out[n++] = (char)('0' + ch / 10 % 10);
				out[n++] = (char)('0' + ch % 10);
			} else {
				if (n + 1 >= cap)
					return -ENOSPC;
				out[n++] = (char)ch;
			}
		}
		o += 1u + l;
	}
	out[n] = '\0';
	return 0;
}

/* Where things are in a reply: end of the (single) question and each RR. */
struct msg_rr {
	uint16_t off; /* owner */
	uint16_t type;
	uint16_t ttl_off;
	uint16_t rdata_off, rdlen;
	uint8_t section; /* 1 answer, 2 authority, 3 additional */
};

/* The most RRs a 65535-byte message can hold (11 bytes each at least). */
#define MSG_MAX_RR (DNS_MAX_MSG / 11 + 1)

struct msg_layout {
	size_t qend;	  /* offset after the question */
	size_t qname_len; /* wire length of the question name (must be uncompressed) */
	unsigned int n_rr;
	size_t end; /* offset after the last RR parsed */
	struct msg_rr rr[MSG_MAX_RR];
};

static int msg_walk(const uint8_t *m, size_t len, struct msg_layout *L)
{
	size_t off = 12;
	unsigned int counts[3];

	if (len < 12 || len > DNS_MAX_MSG || rd16(m + 4) != 1)
		return -EBADMSG;
	counts[0] = rd16(m + 6);
	counts[1] = rd16(m + 8);
	counts[2] = rd16(m + 10);
	/* The question name must be uncompressed so that the client's spelling
	 * (same length) can be written over it without moving anything. */
	for (;;) {
		if (off >= len || (m[off] & 0xc0))
			return -EBADMSG;
		if (m[off] == 0) {
			off++;
			break;
		}
		off += 1u + m[off];
		if (off - 12 > DNS_MAX_NAME)
			return -EBADMSG;
	}
	L->qname_len = off - 12;
	if (off + 4 > len)
		return -EBADMSG;
	off += 4;
	L->qend = off;
	L->n_rr = 0;
	for (int s = 0; s < 3; s++) {
		for (unsigned int i = 0; i < counts[s]; i++) {
			size_t owner = off;
			if (name_skip(m, len, &off) || off + 10 > len)
				return -EBADMSG;
			uint16_t type = rd16(m + off), rdlen = rd16(m + off + 8);
			if (off + 10 + rdlen > len)
				return -EBADMSG;
			if (L->n_rr >= MSG_MAX_RR)
				return -EBADMSG;
			struct msg_rr *r = &L->rr[L->n_rr++];
			r->off = (uint16_t)owner;
			r->type = type;
			r->ttl_off = (uint16_t)(off + 4);
			r->rdata_off = (uint16_t)(off + 10);
			r->rdlen = rdlen;
			r->section = (uint8_t)(s + 1);
			off += 10u + rdlen;
		}
	}
	L->end = off;
	return 0;
}

int dns_fwd_query_build(uint8_t *out, size_t cap, uint16_t id, const uint8_t *qname_wire,
			size_t qname_len, uint16_t qtype, uint16_t qclass, bool do_bit,
			uint16_t bufsize)
{
	size_t need = 12 + qname_len + 4 + 11;

	if (need > cap || qname_len == 0 || qname_len > DNS_MAX_NAME)
		return -ENOSPC;
	memset(out, 0, 12);
	wr16(out, id);
	out[2] = 0x01; /* RD */
	wr16(out + 4, 1);
	wr16(out + 10, 1);
	memcpy(out + 12, qname_wire, qname_len);
	wr16(out + 12 + qname_len, qtype);
	wr16(out + 14 + qname_len, qclass);
	uint8_t *o = out + 16 + qname_len;
	o[0] = 0;
	wr16(o + 1, DNS_T_OPT);
	wr16(o + 3, bufsize);
	wr32(o + 5, do_bit ? 0x8000u : 0);
	wr16(o + 9, 0);
	return (int)need;
}

static bool wire_name_eq_ci(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (tolower(a[i]) != tolower(b[i]))
			return false;
	return true;
}

int dns_fwd_reply_check(const uint8_t *msg, size_t len, uint16_t id, const uint8_t *qname_wire,
			size_t qname_len, uint16_t qtype, uint16_t qclass)
{
	if (len < 12 || !(msg[2] & 0x80) || dns_msg_id(msg) != id)
		return -EBADMSG;
	if (rd16(msg + 4) != 1 || len < 12 + qname_len + 4)
		return -EBADMSG;
	/* Label lengths are compared too (they are below 0x40, unaffected by
	 * tolower), so equal bytes mean the same uncompressed name. */
	if (!wire_name_eq_ci(msg + 12, qname_wire, qname_len) ||
	    rd16(msg + 12 + qname_len) != qtype || rd16(msg + 14 + qname_len) != qclass)
		return -ESRCH;
	return 0;
}

int dns_fwd_render(const uint8_t *msg, size_t len, uint32_t elapsed_s, const struct dns_query *q,
		   uint8_t *out, size_t cap, size_t limit, uint16_t bufsize)
{
	static _Thread_local struct msg_layout L;
	unsigned int keep = 0, counts[3] = {0, 0, 0};
	size_t body_end, total;
	int rc = msg_walk(msg, len, &L);

	if (rc)
		return rc;
	if (L.qname_len != q->qname_wire_len)
		return -EBADMSG;
	/* Keep every RR up to the first OPT; compression pointers only point
	 * backwards, so cutting the tail never breaks what stays. */
	body_end = L.end;
	for (keep = 0; keep < L.n_rr; keep++) {
		if (L.rr[keep].type == DNS_T_OPT) {
			body_end = L.rr[keep].off;
			break;
		}
	}
	for (unsigned int i = 0; i < keep; i++)
		counts[L.rr[i].section - 1]++;
	total = body_end + (q->edns ? 11 : 0);
	if (total > limit) {
		/* Header and question only, TC set: the client retries over TCP. */
		body_end = L.qend;
		keep = 0;
		counts[0] = counts[1] = counts[2] = 0;
		total = body_end + (q->edns ? 11 : 0);
	}
	if (total > cap)
		return -ENOSPC;
	memcpy(out, msg, body_end);
	wr16(out, q->id);
	/* RD and CD as the client sent them; QR, AA, TC, RA and rcode as the
	 * upstream answered. */
	out[2] = (uint8_t)((out[2] & ~0x01) | ((q->flags >> 8) & 0x01));
	out[3] = (uint8_t)((out[3] & ~0x10) | (q->flags & 0x10));
	if (keep == 0 && body_end == L.qend && L.end > L.qend)
		out[2] |= 0x02; /* TC */
	memcpy(out + 12, q->qname_wire, q->qname_wire_len);
	wr16(out + 6, (uint16_t)counts[0]);
	wr16(out + 8, (uint16_t)counts[1]);
	wr16(out + 10, (uint16_t)counts[2]);
	for (unsigned int i = 0; i < keep; i++) {
		uint32_t ttl = rd32(msg + L.rr[i].ttl_off);
		/* A TTL with the top bit set is read as 0 (RFC 2181 §8). */
		if (ttl & 0x80000000u)
			ttl = 0;
		wr32(out + L.rr[i].ttl_off, ttl > elapsed_s ? ttl - elapsed_s : 0);
	}
	if (q->edns) {
		uint8_t *o = out + body_end;
		o[0] = 0;
		wr16(o + 1, DNS_T_OPT);
		wr16(o + 3, bufsize);
		wr32(o + 5, q->do_bit ? 0x8000u : 0);
		wr16(o + 9, 0);
		wr16(out + 10, (uint16_t)(counts[2] + 1));
	}
	return (int)total;
}

int dns_fwd_answers(const uint8_t *msg, size_t len, int (*fn)(const struct dns_rr *rr, void *arg),
		    void *arg)
{
	static _Thread_local struct msg_layout L;
	char owner[DNS_MAX_PNAME], target[DNS_MAX_PNAME];
	int n = 0;

	if (msg_walk(msg, len, &L))
		return -EBADMSG;
	for (unsigned int i = 0; i < L.n_rr && L.rr[i].section == 1; i++) {
		const struct msg_rr *r = &L.rr[i];
		struct dns_rr rr = {.name = owner,
				    .type = r->type,
				    .class = rd16(msg + r->ttl_off - 2),
				    .ttl = rd32(msg + r->ttl_off)};

		if (r->type != DNS_T_A && r->type != DNS_T_AAAA && r->type != DNS_T_CNAME)
			continue;
		if (name_read(msg, len, r->off, owner, sizeof(owner)))
			return -EBADMSG;
		if (r->type == DNS_T_A) {
			if (r->rdlen != 4)
				return -EBADMSG;
			memcpy(rr.rd.a, msg + r->rdata_off, 4);
		} else if (r->type == DNS_T_AAAA) {
			if (r->rdlen != 16)
				return -EBADMSG;
			memcpy(rr.rd.aaaa, msg + r->rdata_off, 16);
		} else {
			if (name_read(msg, len, r->rdata_off, target, sizeof(target)))
				return -EBADMSG;
			rr.rd.target = target;
		}
		n++;
		if (fn(&rr, arg))
			break;
	}
	return n;
}

/* ---- cache -------------------------------------------------------------------------------- */

#define CACHE_SHARDS 16

struct cache_ent {
	struct cache_ent *hnext;       /* hash chain */
	struct cache_ent *prev, *next; /* LRU list, head = most recent */
	uint64_t hash;
	uint64_t inserted_ms; /* CLOCK_MONOTONIC */
	uint64_t expires_ms;  /* CLOCK_MONOTONIC */
	uint16_t qtype, qclass;
	bool do_bit;
	uint8_t name_len;	    /* wire length of name */
	uint8_t name[DNS_MAX_NAME]; /* lower-cased wire form */
	uint16_t len;		    /* bytes in msg */
	uint8_t msg[];		    /* the upstream reply as received */
};

struct cache_shard {
	pthread_mutex_t lock;
	struct cache_ent **buckets;
	size_t n_buckets; /* power of two */
	size_t n, max;
	struct cache_ent *head, *tail;
	uint64_t hits, misses, inserts, evictions, expired;
	char pad[64]; /* keep shard locks on separate cache lines */
};

struct dns_cache {
	uint32_t min_ttl, max_ttl; /* seconds */
	size_t max_entries;
	struct cache_shard shard[CACHE_SHARDS];
};

struct dns_cache *dns_cache_new(size_t max_entries, uint32_t min_ttl, uint32_t max_ttl)
{
	struct dns_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->min_ttl = min_ttl;
	c->max_ttl = max_ttl < min_ttl ? min_ttl : max_ttl;
	c->max_entries = max_entries;
	for (int i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shard[i];
		size_t per = max_entries ? (max_entries + CACHE_SHARDS - 1) / CACHE_SHARDS : 0;
		size_t nb = 16;

		while (nb < per)
			nb <<= 1;
		pthread_mutex_init(&s->lock, NULL);
		s->max = per;
		s->n_buckets = nb;
		s->buckets = calloc(nb, sizeof(struct cache_ent *));
		if (!s->buckets) {
			for (int j = 0; j <= i; j++) {
				free(c->shard[j].buckets);
				pthread_mutex_destroy(&c->shard[j].lock);
			}
			free(c);
			errno = ENOMEM;
			return NULL;
		}
	}
	return c;
}

void dns_cache_free(struct dns_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shard[i];
		struct cache_ent *e = s->head, *n;
		for (; e; e = n) {
			n = e->next;
			free(e);
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(c);
}

/* FNV-1a over the lower-cased name and the rest of the key. */
static uint64_t cache_key(const struct dns_query *q, uint8_t *lname)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < q->qname_wire_len; i++) {
		lname[i] = (uint8_t)tolower(q->qname_wire[i]);
		h = (h ^ lname[i]) * 0x100000001b3ull;
	}
	h = (h ^ q->qtype) * 0x100000001b3ull;
	h = (h ^ q->qclass) * 0x100000001b3ull;
	h = (h ^ (q->do_bit ? 1u : 0u)) * 0x100000001b3ull;
	return h;
}

static struct cache_ent **cache_find(struct cache_shard *s, uint64_t h, const struct dns_query *q,
				     const uint8_t *lname)
{
	struct cache_ent **pp = &s->buckets[(h >> 8) & (s->n_buckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		struct cache_ent *e = *pp;
		if (e->hash == h && e->qtype == q->qtype && e->qclass == q->qclass &&
		    e->do_bit == q->do_bit && e->name_len == q->qname_wire_len &&
		    !memcmp(e->name, lname, e->name_len))
			return pp;
	}
	return pp;
}

static void lru_unlink(struct cache_shard *s, struct cache_ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct cache_shard *s, struct cache_ent *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	s->head = e;
	if (!s->tail)
		s->tail = e;
}

/* Removes e from the hash chain and the LRU list and frees it. */
static void cache_drop(struct cache_shard *s, struct cache_ent *e)
{
	struct cache_ent **pp = &s->buckets[(e->hash >> 8) & (s->n_buckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	lru_unlink(s, e);
	s->n--;
	free(e);
}

/* The lifetime of a reply in seconds, or -EAGAIN if it must not be cached. */
static int cache_ttl(const uint8_t *msg, size_t len, const struct msg_layout *L)
{
	int rcode = dns_msg_rcode(msg);
	uint32_t ttl = UINT32_MAX;
	bool any = false;

	if (dns_msg_tc(msg))
		return -EAGAIN;
	if (rcode != DNS_R_NOERROR && rcode != DNS_R_NXDOMAIN)
		return -EAGAIN;
	if (rcode == DNS_R_NOERROR && rd16(msg + 6) > 0) {
		for (unsigned int i = 0; i < L->n_rr; i++) {
			const struct msg_rr *r = &L->rr[i];
			if (r->type == DNS_T_OPT || r->section == 3)
				continue;
			uint32_t t = rd32(msg + r->ttl_off);
			if (t & 0x80000000u)
				t = 0;
			if (t < ttl)
				ttl = t;
			any = true;
		}
		return any ? (int)(ttl > INT32_MAX ? INT32_MAX : ttl) : -EAGAIN;
	}
	/* Negative (NXDOMAIN or NODATA): RFC 2308 §5, min(SOA TTL, MINIMUM). */
	for (unsigned int i = 0; i < L->n_rr; i++) {
		const struct msg_rr *r = &L->rr[i];
		if (r->section != 2 || r->type != DNS_T_SOA || r->rdlen < 22)
			continue;
		uint32_t t = rd32(msg + r->ttl_off), min = rd32(msg + r->rdata_off + r->rdlen - 4);
		if (t & 0x80000000u)
			t = 0;
		ttl = t < min ? t : min;
		return (int)(ttl > INT32_MAX ? INT32_MAX : ttl);
	}
	return -EAGAIN;
}

int dns_cache_put(struct dns_cache *c, const struct dns_query *q, const uint8_t *msg, size_t len,
		  uint64_t now_ms)
{
	static _Thread_local struct msg_layout L;
	uint8_t lname[DNS_MAX_NAME];
	struct cache_shard *s;
	struct cache_ent *e, **pp;
	uint64_t h;
	int ttl;

	if (msg_walk(msg, len, &L) || L.qname_len != q->qname_wire_len)
		return -EBADMSG;
	ttl = cache_ttl(msg, len, &L);
	if (ttl < 0)
		return ttl;
	if ((uint32_t)ttl < c->min_ttl)
		ttl = (int)c->min_ttl;
	if ((uint32_t)ttl > c->max_ttl)
		ttl = (int)c->max_ttl;
	if (ttl == 0 || !c->max_entries)
		return -EAGAIN;
	h = cache_key(q, lname);
	s = &c->shard[h & (CACHE_SHARDS - 1)];
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->inserted_ms = now_ms;
	e->expires_ms = now_ms + (uint64_t)ttl * 1000;
	e->qtype = q->qtype;
	e->qclass = q->qclass;
	e->do_bit = q->do_bit;
	e->name_len = q->qname_wire_len;
	memcpy(e->name, lname, e->name_len);
	e->len = (uint16_t)len;
	memcpy(e->msg, msg, len);

	pthread_mutex_lock(&s->lock);
	pp = cache_find(s, h, q, lname);
	if (*pp)
		cache_drop(s, *pp);
	while (s->n >= s->max && s->tail) {
		cache_drop(s, s->tail);
		s->evictions++;
	}
	pp = &s->buckets[(h >> 8) & (s->n_buckets - 1)];
	e->hnext = *pp;
	*pp = e;
	lru_push(s, e);
	s->n++;
	s->inserts++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int dns_cache_get(struct dns_cache *c, const struct dns_query *q, uint8_t *out, size_t cap,
		  size_t limit, uint16_t bufsize, uint64_t now_ms)
{
	uint8_t lname[DNS_MAX_NAME];
	uint64_t h = cache_key(q, lname);
	struct cache_shard *s = &c->shard[h & (CACHE_SHARDS - 1)];
	struct cache_ent *e;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	e = *cache_find(s, h, q, lname);
	if (e && now_ms >= e->expires_ms) {
		cache_drop(s, e);
		s->expired++;
		e = NULL;
	}
	if (!e) {
		s->misses++;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	lru_unlink(s, e);
	lru_push(s, e);
	s->hits++;
	rc = dns_fwd_render(e->msg, e->len, (uint32_t)((now_ms - e->inserted_ms) / 1000), q, out,
			    cap, limit, bufsize);
	pthread_mutex_unlock(&s->lock);
	return rc == 0 ? -EBADMSG : rc;
}

void dns_cache_stats(struct dns_cache *c, struct dns_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	for (int i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shard[i];
		pthread_mutex_lock(&s->lock);
		out->hits += s->hits;
		out->misses += s->misses;
		out->inserts += s->inserts;
		out->evictions += s->evictions;
		out->expired += s->expired;
		out->entries += s->n;
		pthread_mutex_unlock(&s->lock);
	}
}

/* ---- upstreams ---------------------------------------------------------------------------- */

struct upstream {
	struct sockaddr_storage addr;
	char str[64];
	atomic_uint fails; /* consecutive failures */
	atomic_bool down;
	atomic_uint_fast64_t queries, failures, tcp_retries;
};

struct tcp_job {
	struct tcp_job *next;
	int idx;
	size_t qlen;
	void (*done)(int rc, const uint8_t *reply, size_t len, void *arg);
	void *arg;
	uint8_t query[];
};

#define FWD_TCP_THREADS 2

struct dns_fwd {
	struct upstream *up;
	unsigned int n_up;
	unsigned int timeout_ms, max_fails, probe_ms;
	uint16_t bufsize;
	atomic_uint rr; /* round-robin cursor */
	struct dns_cache *cache;

	pthread_mutex_t lock; /* guards stop, jobs; with cond */
	pthread_cond_t cond;
	bool stop;
	struct tcp_job *jobs, *jobs_tail;
	pthread_t probe_thr, tcp_thr[FWD_TCP_THREADS];
	bool probe_started;
	unsigned int n_tcp_started;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned int dns_fwd_n_upstreams(const struct dns_fwd *f)
{
	return f->n_up;
}

const struct sockaddr_storage *dns_fwd_upstream_addr(const struct dns_fwd *f, unsigned int i)
{
	return &f->up[i].addr;
}

struct dns_cache *dns_fwd_cache(struct dns_fwd *f)
{
	return f->cache;
}

uint16_t dns_fwd_bufsize(const struct dns_fwd *f)
{
	return f->bufsize;
}

unsigned int dns_fwd_timeout_ms(const struct dns_fwd *f)
{
	return f->timeout_ms;
}

int dns_fwd_pick(struct dns_fwd *f, int avoid)
{
	const unsigned int n = f->n_up;
	unsigned int start;

	if (n == 0)
		return -1;
	start = atomic_fetch_add_explicit(&f->rr, 1, memory_order_relaxed);
	for (unsigned int i = 0; i < n; i++) {
		unsigned int k = (start + i) % n;
		if ((int)k == avoid && n > 1)
			continue;
		if (!atomic_load_explicit(&f->up[k].down, memory_order_relaxed))
			return (int)k;
	}
	/* All down (or only the avoided one is up): try something anyway. */
	if (n > 1 && avoid >= 0)
		return (int)((unsigned int)(avoid + 1) % n);
	return (int)(start % n);
}

void dns_fwd_report(struct dns_fwd *f, int idx, bool ok)
{
	struct upstream *u;

	if (idx < 0 || (unsigned int)idx >= f->n_up)
		return;
	u = &f->up[idx];
	if (ok) {
		atomic_store_explicit(&u->fails, 0, memory_order_relaxed);
		if (atomic_exchange(&u->down, false))
			pr_info(FW, "upstream '%s': answering again, marked up", u->str);
		return;
	}
	atomic_fetch_add_explicit(&u->failures, 1, memory_order_relaxed);
	if (atomic_fetch_add(&u->fails, 1) + 1 >= f->max_fails && !atomic_exchange(&u->down, true))
		pr_warn(FW,
			"upstream '%s': %u consecutive failures, marked down (probing every "
			"%u ms)",
			u->str, f->max_fails, f->probe_ms);
}

void dns_fwd_count_query(struct dns_fwd *f, int idx, bool tcp)
{
	if (idx < 0 || (unsigned int)idx >= f->n_up)
		return;
	atomic_fetch_add_explicit(&f->up[idx].queries, 1, memory_order_relaxed);
	if (tcp)
		atomic_fetch_add_explicit(&f->up[idx].tcp_retries, 1, memory_order_relaxed);
}

void dns_fwd_upstream_stats(struct dns_fwd *f, unsigned int i, struct dns_fwd_upstream_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= f->n_up)
		return;
	snprintf(out->addr, sizeof(out->addr), "%s", f->up[i].str);
	out->up = !atomic_load(&f->up[i].down);
	out->queries = atomic_load(&f->up[i].queries);
	out->failures = atomic_load(&f->up[i].failures);
	out->tcp_retries = atomic_load(&f->up[i].tcp_retries);
}

static socklen_t sa_len(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Waits for fd to become ready for events before deadline (CLOCK_MONOTONIC ms). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = mono_ms();
		struct pollfd p = {.fd = fd, .events = events};
		int n;

		if (now >= deadline)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int dns_fwd_tcp_exchange(struct dns_fwd *f, int idx, const uint8_t *query, size_t qlen,
			 uint8_t *out, size_t cap, unsigned int timeout_ms)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	uint8_t hdr[2];
	size_t got = 0, want;
	int fd, rc;

	if (idx < 0 || (unsigned int)idx >= f->n_up || qlen > DNS_MAX_MSG)
		return -EINVAL;
	fd = socket(f->up[idx].addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&f->up[idx].addr, sa_len(&f->up[idx].addr)) &&
	    errno != EINPROGRESS) {
		rc = -errno;
		goto out;
	}
	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc)
		goto out;
	{
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			rc = -soerr;
			goto out;
		}
	}
	{
		uint8_t buf[2 + DNS_MAX_MSG];
		size_t sent = 0, total = qlen + 2;
		wr16(buf, (uint16_t)qlen);
		memcpy(buf + 2, query, qlen);
		while (sent < total) {
			ssize_t n = send(fd, buf + sent, total - sent, MSG_NOSIGNAL);
			if (n > 0) {
				sent += (size_t)n;
				continue;
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				rc = -errno;
				goto out;
			}
			rc = wait_fd(fd, POLLOUT, deadline);
			if (rc)
				goto out;
		}
	}
	want = 2;
	while (got < want) {
		ssize_t n;
		if (got < 2)
			n = recv(fd, hdr + got, 2 - got, 0);
		else
			n = recv(fd, out + got - 2, want - got, 0);
		if (n > 0) {
			got += (size_t)n;
			if (got == 2) {
				want = 2 + (size_t)rd16(hdr);
				if (want - 2 > cap || want == 2) {
					rc = -EMSGSIZE;
					goto out;
				}
			}
			continue;
		}
		if (n == 0) {
			rc = -ECONNRESET;
			goto out;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc)
			goto out;
	}
	rc = (int)(want - 2);
out:
	close(fd);
	return rc;
}

static void *tcp_thread(void *arg)
{
	struct dns_fwd *f = arg;
	uint8_t *buf = malloc(DNS_MAX_MSG);

	for (;;) {
		struct tcp_job *j;
		int rc;

		pthread_mutex_lock(&f->lock);
		while (!f->stop && !f->jobs)
			pthread_cond_wait(&f->cond, &f->lock);
		j = f->jobs;
		if (j) {
			f->jobs = j->next;
			if (!f->jobs)
				f->jobs_tail = NULL;
		}
		bool stop = f->stop;
		pthread_mutex_unlock(&f->lock);
		if (!j)
			break;
		if (stop || !buf)
			rc = stop ? -ECANCELED : -ENOMEM;
		else
			rc = dns_fwd_tcp_exchange(f, j->idx, j->query, j->qlen, buf, DNS_MAX_MSG,
						  f->timeout_ms);
		j->done(rc, buf, rc > 0 ? (size_t)rc : 0, j->arg);
		free(j);
	}
	free(buf);
	return NULL;
}

int dns_fwd_tcp_submit(struct dns_fwd *f, int idx, const uint8_t *query, size_t qlen,
		       void (*done)(int rc, const uint8_t *reply, size_t len, void *arg), void *arg)
{
	struct tcp_job *j = malloc(sizeof(*j) + qlen);

	if (!j)
		return -ENOMEM;
	j->next = NULL;
	j->idx = idx;
	j->qlen = qlen;
	j->done = done;
	j->arg = arg;
	memcpy(j->query, query, qlen);
	pthread_mutex_lock(&f->lock);
	if (f->stop || !f->n_tcp_started) {
		pthread_mutex_unlock(&f->lock);
		free(j);
		return -ECANCELED;
	}
	if (f->jobs_tail)
		f->jobs_tail->next = j;
	else
		f->jobs = j;
	f->jobs_tail = j;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* One ". NS" query over UDP; true when any well-formed reply with our id comes back. */
static bool probe_one(struct dns_fwd *f, unsigned int i)
{
	static const uint8_t root[1] = {0};
	uint8_t q[64], r[1500];
	uint16_t id;
	bool ok = false;
	int n, fd;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)mono_ms();
	n = dns_fwd_query_build(q, sizeof(q), id, root, 1, DNS_T_NS, DNS_CLASS_IN, false,
				f->bufsize);
	fd = socket(f->up[i].addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || n < 0)
		goto out;
	if (connect(fd, (const struct sockaddr *)&f->up[i].addr, sa_len(&f->up[i].addr)) ||
	    send(fd, q, (size_t)n, 0) != n)
		goto out;
	if (wait_fd(fd, POLLIN, mono_ms() + f->timeout_ms))
		goto out;
	n = (int)recv(fd, r, sizeof(r), MSG_DONTWAIT);
	ok = n >= 12 && dns_msg_id(r) == id && (r[2] & 0x80);
out:
	if (fd >= 0)
		close(fd);
	return ok;
}

static void *probe_thread(void *arg)
{
	struct dns_fwd *f = arg;

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(f->probe_ms % 1000) * 1000000;
		ts.tv_sec += f->probe_ms / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
		if (f->stop)
			break;
		pthread_mutex_unlock(&f->lock);
		for (unsigned int i = 0; i < f->n_up; i++)
			if (atomic_load(&f->up[i].down) && probe_one(f, i))
				dns_fwd_report(f, (int)i, true);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

struct dns_fwd *dns_fwd_new(const struct dns_fwd_opts *o)
{
	struct dns_fwd *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->n_up = o->n_upstream;
	f->timeout_ms = o->timeout_ms ? o->timeout_ms : 2000;
	f->max_fails = o->max_fails ? o->max_fails : 2;
	f->probe_ms = o->probe_ms ? o->probe_ms : 500;
	f->bufsize = o->bufsize ? o->bufsize : DNS_EDNS_DEFAULT;
	f->up = calloc(f->n_up ? f->n_up : 1, sizeof(*f->up));
	f->cache = dns_cache_new(o->cache_size, o->cache_min_ttl, o->cache_max_ttl);
	if (!f->up || !f->cache)
		goto fail;
	for (unsigned int i = 0; i < f->n_up; i++) {
		f->up[i].addr = o->upstream[i];
		dns_config_addr_str(&o->upstream[i], f->up[i].str, sizeof(f->up[i].str));
	}
	if (pthread_create(&f->probe_thr, NULL, probe_thread, f))
		goto fail;
	f->probe_started = true;
	for (int i = 0; i < FWD_TCP_THREADS; i++) {
		if (pthread_create(&f->tcp_thr[i], NULL, tcp_thread, f))
			goto fail;
		f->n_tcp_started++;
	}
	return f;
fail:
	dns_fwd_free(f);
	errno = ENOMEM;
	return NULL;
}

void dns_fwd_free(struct dns_fwd *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (f->probe_started)
		pthread_join(f->probe_thr, NULL);
	for (unsigned int i = 0; i < f->n_tcp_started; i++)
		pthread_join(f->tcp_thr[i], NULL);
	/* Jobs queued after the threads left (none: submit refuses once stop
	 * is set, and the threads drain the queue before exiting). */
	dns_cache_free(f->cache);
	free(f->up);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
