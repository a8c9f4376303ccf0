/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DNS listeners and workers of sluice-dns. Each worker thread owns one
 * UDP and one TCP listening socket on the same address (SO_REUSEPORT, so the
 * kernel spreads clients across workers), an epoll set, its TCP client
 * connections, one UDP socket per address family towards the upstreams and
 * a table of forwarded queries in flight. Buffers are per worker: answering
 * from the zone or the cache allocates nothing.
 *
 * Per query: parse (dns_query_parse; FORMERR/NOTIMP/BADVERS answered, the
 * unparseable dropped) → the cluster zone (dns_zone_answer) → the cache →
 * an upstream (UDP, retried over TCP on TC by the forwarder's helper
 * threads, another upstream on timeout, SERVFAIL when all attempts fail).
 * An ExternalName CNAME to an outside name is followed through the same
 * path and the target's A/AAAA/CNAME records appended (best effort: on
 * failure the CNAME alone is answered).
 *
 * TCP: RFC 7766 length-prefixed frames, pipelining allowed, replies in
 * order of completion. A connection is closed when it stays idle or makes
 * no complete frame for tcp_idle_ms, when its peer stops reading our
 * replies for that long, or on a zero-length frame; at most tcp_max_conns
 * connections exist (extra ones are accepted and closed at once), so a slow
 * or hostile client costs one slot and never blocks a worker.
 */
#ifndef SLUICE_DNS_SERVER_H
#define SLUICE_DNS_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct dns_zone;
struct dns_fwd;

/* Query types counted separately in metrics; everything else is "other". */
enum dns_stat_type {
	DNS_ST_A,
	DNS_ST_AAAA,
	DNS_ST_SRV,
	DNS_ST_PTR,
	DNS_ST_TXT,
	DNS_ST_CNAME,
	DNS_ST_NS,
	DNS_ST_SOA,
	DNS_ST_MX,
	DNS_ST_ANY,
	DNS_ST_XFR,
	DNS_ST_OTHER,
	DNS_ST_NTYPES,
};
extern const char *const dns_stat_type_names[DNS_ST_NTYPES];

/* rcodes counted: 0..5 by value, BADVERS, other. */
#define DNS_ST_NRCODES 8
extern const char *const dns_stat_rcode_names[DNS_ST_NRCODES];

/* Latency buckets (upper bounds in microseconds), plus +Inf. */
#define DNS_ST_NLAT 10
extern const unsigned int dns_stat_lat_us[DNS_ST_NLAT];

struct dns_server_stats {
	uint64_t queries[DNS_ST_NTYPES];
	uint64_t rcodes[DNS_ST_NRCODES];
	uint64_t lat[DNS_ST_NLAT + 1]; /* non-cumulative counts per bucket */
	uint64_t lat_sum_us;
	uint64_t udp, tcp; /* queries by transport */
	uint64_t zone, forwarded, cache_hits, cache_misses;
	uint64_t truncated;			     /* UDP replies sent with TC */
	uint64_t dropped;			     /* unparseable packets */
	uint64_t upstream_timeouts, upstream_failed; /* attempts timed out; queries SERVFAILed */
	uint64_t pending_full;			     /* no slot for a forwarded query */
	uint64_t tcp_accepted, tcp_rejected, tcp_timeouts, tcp_open;
};

struct dns_server_opts {
	struct sockaddr_storage listen;
	unsigned int workers; /* 0 = online CPUs */
	unsigned int tcp_max_conns;
	unsigned int tcp_idle_ms;
	uint16_t bufsize;      /* EDNS payload ceiling for UDP replies */
	struct dns_zone *zone; /* borrowed; may be NULL (everything forwarded) */
	struct dns_fwd *fwd;   /* borrowed; may be NULL (non-zone names SERVFAIL) */
};

struct dns_server;

/*
 * Opens every socket (so a busy port is reported here, not in a thread).
 * Returns NULL with errno (EADDRINUSE, EACCES, ...); pr_err names the
 * address. Nothing runs until dns_server_start().
 */
struct dns_server *dns_server_new(const struct dns_server_opts *o);
/* Starts the worker threads. 0 or -errno. */
int dns_server_start(struct dns_server *s);
/* Stops and joins the workers (safe when not started). */
void dns_server_stop(struct dns_server *s);
/* Stops and frees. NULL is fine. The forwarder's helper threads post TCP
 * retry results into worker queues: free the forwarder after
 * dns_server_stop() and before this. */
void dns_server_free(struct dns_server *s);
/* Sums the workers' counters (read racily: each is monotonic). */
void dns_server_stats(struct dns_server *s, struct dns_server_stats *out);
/* The bound UDP address (the port when 0 was asked for). */
void dns_server_addr(const struct dns_server *s, struct sockaddr_storage *out);

#endif
