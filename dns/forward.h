/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Forwarding for names outside the cluster zone: the upstream set with
 * health checking and failover, the cache of forwarded answers, and the
 * wire helpers the server's workers need to talk to upstreams without
 * allocating per query.
 *
 * Division of labour. The worker threads (server.c) own the sockets on the
 * hot path: each sends upstream queries over its own UDP socket from its
 * epoll loop and matches replies to pending client queries. This module
 * holds what the workers share:
 *   - struct dns_fwd: upstream addresses, health (consecutive failures,
 *     down/up; a probe thread sends ". NS" to down upstreams every 500 ms and
 *     brings them back on any answer), counters; a small pool of threads for
 *     the rare blocking work (TCP retries after a truncated UDP answer);
 *   - struct dns_cache: forwarded answers keyed by (qname lower-cased,
 *     qtype, qclass, DO bit); positive TTL = smallest RR TTL, negative TTL
 *     = min(SOA TTL, SOA MINIMUM) (RFC 2308), both clamped to [min, max];
 *     answers without an SOA, SERVFAIL and others are not cached. Bounded,
 *     LRU per shard, 16 shards each under its own mutex.
 *   - message helpers: build an upstream query, check an upstream reply
 *     against the question we asked, and render a stored or fresh reply for
 *     a client (its id, its question's case, remaining TTLs, OPT only if
 *     the client sent EDNS, TC when it exceeds the client's limit).
 */
#ifndef SLUICE_DNS_FORWARD_H
#define SLUICE_DNS_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wire.h"

/* ---- cache ----------------------------------------------------------------- */

struct dns_cache;

struct dns_cache_stats {
	uint64_t hits, misses, inserts, evictions, expired;
	uint64_t entries;
};

/* max_entries 0 gives a cache that never stores anything. NULL + errno ENOMEM. */
struct dns_cache *dns_cache_new(size_t max_entries, uint32_t min_ttl, uint32_t max_ttl);
void dns_cache_free(struct dns_cache *c);

/*
 * Stores an upstream reply to question q (only qname_wire, qtype, qclass and
 * do_bit are used). Copies what it keeps. Returns 0 when stored, -EAGAIN
 * when the reply is valid but not cacheable (rcode other than NOERROR/
 * NXDOMAIN, negative answer without SOA, TC set, TTL 0 after clamping with
 * min 0), -EBADMSG when it does not parse, -ENOMEM. Thread-safe.
 */
int dns_cache_put(struct dns_cache *c, const struct dns_query *q, const uint8_t *msg, size_t len,
		  uint64_t now_ms);

/*
 * Looks q up and renders the reply for it into out (see dns_fwd_render).
 * Returns the length, 0 on a miss (or an expired entry, which is dropped),
 * or a negative error. Thread-safe.
 */
int dns_cache_get(struct dns_cache *c, const struct dns_query *q, uint8_t *out, size_t cap,
		  size_t limit, uint16_t bufsize, uint64_t now_ms);

void dns_cache_stats(struct dns_cache *c, struct dns_cache_stats *out);

/* ---- messages -------------------------------------------------------------- */

/*
 * Builds a recursive query (RD=1) for name (wire form) / qtype / qclass with
 * id, and an OPT advertising bufsize with the DO bit as given. Returns the
 * length or -ENOSPC.
 */
int dns_fwd_query_build(uint8_t *out, size_t cap, uint16_t id, const uint8_t *qname_wire,
			size_t qname_len, uint16_t qtype, uint16_t qclass, bool do_bit,
			uint16_t bufsize);

/*
 * Checks that msg is a reply (QR=1) with the given id and exactly the
 * question (name compared case-insensitively). Returns 0, -EBADMSG or
 * -ESRCH (valid reply to some other question).
 */
int dns_fwd_reply_check(const uint8_t *msg, size_t len, uint16_t id, const uint8_t *qname_wire,
			size_t qname_len, uint16_t qtype, uint16_t qclass);

/*
 * Renders an upstream reply msg (answering q's question) for the client of
 * q: the client's id and RD, the client's spelling of the question, TTLs
 * lowered by elapsed_s (not below 0), the upstream's OPT dropped and ours
 * (bufsize, DO copied) appended if the client sent EDNS. When the result
 * exceeds limit, only the header and question are sent, with TC set.
 * Returns the length or -EBADMSG / -ENOSPC (out too small).
 */
int dns_fwd_render(const uint8_t *msg, size_t len, uint32_t elapsed_s, const struct dns_query *q,
		   uint8_t *out, size_t cap, size_t limit, uint16_t bufsize);

/* Header fields of a reply (no validation beyond length). */
static inline int dns_msg_rcode(const uint8_t *msg)
{
	return msg[3] & 0x0f;
}
static inline bool dns_msg_tc(const uint8_t *msg)
{
	return msg[2] & 0x02;
}
static inline uint16_t dns_msg_id(const uint8_t *msg)
{
	return (uint16_t)(msg[0] << 8 | msg[1]);
}

/*
 * Calls fn for each answer-section record of type A, AAAA or CNAME in msg,
 * with owner and CNAME target decompressed into presentation form. Used to
 * append an ExternalName target's records. Returns the number of records
 * visited or -EBADMSG. fn returning nonzero stops the walk.
 */
int dns_fwd_answers(const uint8_t *msg, size_t len, int (*fn)(const struct dns_rr *rr, void *arg),
		    void *arg);

/* ---- upstreams ------------------------------------------------------------- */

struct dns_fwd;

struct dns_fwd_opts {
	const struct sockaddr_storage *upstream; /* copied */
	unsigned int n_upstream;
	unsigned int timeout_ms; /* per attempt */
	unsigned int max_fails;	 /* consecutive failures before down */
	size_t cache_size;
	uint32_t cache_min_ttl, cache_max_ttl;
	uint16_t bufsize;      /* EDNS payload we advertise upstream */
	unsigned int probe_ms; /* health probe period for down upstreams; 0 = 500 */
};

struct dns_fwd_upstream_stats {
	char addr[64];
	bool up;
	uint64_t queries, failures, tcp_retries;
};

/* Creates the forwarder and starts its probe and TCP helper threads. NULL + errno. */
struct dns_fwd *dns_fwd_new(const struct dns_fwd_opts *o);
/* Stops the threads (pending TCP jobs get their callback with -ECANCELED). NULL ok. */
void dns_fwd_free(struct dns_fwd *f);

unsigned int dns_fwd_n_upstreams(const struct dns_fwd *f);
const struct sockaddr_storage *dns_fwd_upstream_addr(const struct dns_fwd *f, unsigned int i);
struct dns_cache *dns_fwd_cache(struct dns_fwd *f);
uint16_t dns_fwd_bufsize(const struct dns_fwd *f);
unsigned int dns_fwd_timeout_ms(const struct dns_fwd *f);

/*
 * Picks an upstream for a new attempt: round robin over the healthy ones,
 * skipping `avoid` (the one that just failed, or -1); if every upstream is
 * down, any one (so a total outage still gets tried). -1 when there are none.
 */
int dns_fwd_pick(struct dns_fwd *f, int avoid);
/* Records the outcome of an attempt (a reply of any rcode is a success). */
void dns_fwd_report(struct dns_fwd *f, int idx, bool ok);
void dns_fwd_count_query(struct dns_fwd *f, int idx, bool tcp);

void dns_fwd_upstream_stats(struct dns_fwd *f, unsigned int i, struct dns_fwd_upstream_stats *out);

/*
 * Blocking TCP exchange with upstream idx (timeout for connect + send +
 * receive). Returns the reply length in out or a negative error.
 */
int dns_fwd_tcp_exchange(struct dns_fwd *f, int idx, const uint8_t *query, size_t qlen,
			 uint8_t *out, size_t cap, unsigned int timeout_ms);

/*
 * Queues a TCP exchange on the helper pool. `query` is copied; done() runs
 * on a helper thread with the reply (borrowed, valid during the call) or a
 * negative error. Returns 0 or -ENOMEM / -ECANCELED (shutting down).
 */
int dns_fwd_tcp_submit(struct dns_fwd *f, int idx, const uint8_t *query, size_t qlen,
		       void (*done)(int rc, const uint8_t *reply, size_t len, void *arg),
		       void *arg);

#endif
