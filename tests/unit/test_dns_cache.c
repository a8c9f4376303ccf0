// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-dns forwarder pieces without sockets: the forward cache (key with
 * case folding and the DO bit, positive TTL = smallest RR TTL, negative TTL
 * from the SOA per RFC 2308, min/max clamps, expiry, LRU bound, what is not
 * cached), reply rendering for a client (id, question case, remaining TTLs,
 * OPT only for EDNS clients, TC when over the limit), upstream reply
 * checking, answer extraction for ExternalName chasing, upstream health and
 * failover, and the config parser the forwarder is configured from.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns/config.h"
#include "dns/forward.h"
#include "dns/wire.h"
#include "harness.h"

/* ---- message building -------------------------------------------------------------------- */

struct mb {
	uint8_t b[4096];
	size_t n;
};

static void put8(struct mb *m, uint8_t v)
{
	m->b[m->n++] = v;
}

static void put16(struct mb *m, uint16_t v)
{
	put8(m, (uint8_t)(v >> 8));
	put8(m, (uint8_t)v);
}

static void put32(struct mb *m, uint32_t v)
{
	put16(m, (uint16_t)(v >> 16));
	put16(m, (uint16_t)v);
}

static void put_name(struct mb *m, const char *name)
{
	const char *p = name;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		put8(m, (uint8_t)l);
		memcpy(m->b + m->n, p, l);
		m->n += l;
		p += l + (dot ? 1 : 0);
	}
	put8(m, 0);
}

/* Header + question; flags e.g. 0x8180 (QR RD RA) | rcode. */
static void mb_start(struct mb *m, uint16_t id, uint16_t flags, const char *qname, uint16_t qtype,
		     uint16_t an, uint16_t ns, uint16_t ar)
{
	m->n = 0;
	put16(m, id);
	put16(m, flags);
	put16(m, 1);
	put16(m, an);
	put16(m, ns);
	put16(m, ar);
	put_name(m, qname);
	put16(m, qtype);
	put16(m, 1);
}

/* An A record whose owner is a pointer to the question name. */
static void mb_a_ptr(struct mb *m, uint32_t ttl, const char *ip)
{
	struct in_addr a;

	inet_pton(AF_INET, ip, &a);
	put16(m, 0xc00c);
	put16(m, DNS_T_A);
	put16(m, 1);
	put32(m, ttl);
	put16(m, 4);
	memcpy(m->b + m->n, &a, 4);
	m->n += 4;
}

static void mb_soa(struct mb *m, const char *owner, uint32_t ttl, uint32_t minimum)
{
	size_t rdlen_at;

	put_name(m, owner);
	put16(m, DNS_T_SOA);
	put16(m, 1);
	put32(m, ttl);
	rdlen_at = m->n;
	put16(m, 0);
	put_name(m, "ns.example.test");
	put_name(m, "admin.example.test");
	put32(m, 1);
	put32(m, 3600);
	put32(m, 600);
	put32(m, 86400);
	put32(m, minimum);
	m->b[rdlen_at] = (uint8_t)((m->n - rdlen_at - 2) >> 8);
	m->b[rdlen_at + 1] = (uint8_t)(m->n - rdlen_at - 2);
}

static void mb_opt(struct mb *m, uint16_t size)
{
	put8(m, 0);
	put16(m, DNS_T_OPT);
	put16(m, size);
	put32(m, 0);
	put16(m, 0);
}

/* A client query parsed the way the server does it. */
static int client_query(struct dns_query *q, uint16_t id, const char *name, uint16_t qtype,
			bool edns, bool do_bit)
{
	uint8_t wire[DNS_MAX_NAME], pkt[512];
	int rcode = 0, wl, n;

	memset(q, 0, sizeof(*q));
	wl = dns_name_to_wire(name, wire, sizeof(wire));
	if (wl < 0)
		return wl;
	n = dns_fwd_query_build(pkt, sizeof(pkt), id, wire, (size_t)wl, qtype, 1, do_bit, 1232);
	if (n < 0)
		return n;
	if (!edns) {
		n -= 11;
		pkt[11] = 0; /* ARCOUNT */
	}
	return dns_query_parse(pkt, (size_t)n, q, &rcode);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- cache -------------------------------------------------------------------------------- */

TEST(cache_positive_rewrites_id_case_and_ttl)
{
	struct dns_cache *c = dns_cache_new(100, 5, 3600);
	struct dns_query q, q2;
	struct mb m;
	uint8_t out[1024];
	size_t qlen = strlen("www.example.test") + 2;
	int n;

	if (!ASSERT_NOT_NULL(c, "new"))
		return;
	if (!ASSERT_OK(client_query(&q, 1, "www.example.test", DNS_T_A, true, false), "q"))
		goto out;
	mb_start(&m, 1, 0x8180, "www.example.test", DNS_T_A, 1, 0, 1);
	mb_a_ptr(&m, 300, "192.0.2.10");
	mb_opt(&m, 4096);
	if (!ASSERT_OK(dns_cache_put(c, &q, m.b, m.n, 1000), "put"))
		goto out;
	/* Another client, other case, no EDNS, 3 s later. */
	if (!ASSERT_OK(client_query(&q2, 0x4242, "WwW.ExAmple.TEST", DNS_T_A, false, false), "q2"))
		goto out;
	n = dns_cache_get(c, &q2, out, sizeof(out), 512, 1232, 4000);
	if (!ASSERT_TRUE(n > 0, "hit"))
		goto out;
	ASSERT_EQ(rd16(out), 0x4242, "client id");
	ASSERT_TRUE(!memcmp(out + 12, q2.qname_wire, q2.qname_wire_len), "client case");
	ASSERT_EQ(rd16(out + 6), 1, "one answer");
	ASSERT_EQ(rd16(out + 10), 0, "no OPT to a non-EDNS client");
	/* answer: ptr(2) type(2) class(2) ttl(4) */
	ASSERT_EQ(rd32(out + 12 + qlen + 4 + 6), 297, "ttl lowered by 3 s");
	ASSERT_EQ(n, (int)(m.n - 11), "length without OPT");
	/* An EDNS client gets our OPT with our size. */
	n = dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 4000);
	ASSERT_EQ(n, (int)m.n, "same length with OPT");
	ASSERT_EQ(rd16(out + 10), 1, "OPT for EDNS client");
	ASSERT_EQ(rd16(out + n - 8), 1232, "our payload size");
out:
	dns_cache_free(c);
}

TEST(cache_key_has_type_and_do_bit)
{
	struct dns_cache *c = dns_cache_new(100, 5, 3600);
	struct dns_query q, qdo, qaaaa;
	struct mb m;
	uint8_t out[1024];

	if (!ASSERT_NOT_NULL(c, "new"))
		return;
	client_query(&q, 1, "a.example.test", DNS_T_A, true, false);
	client_query(&qdo, 1, "a.example.test", DNS_T_A, true, true);
	client_query(&qaaaa, 1, "a.example.test", DNS_T_AAAA, true, false);
	mb_start(&m, 1, 0x8180, "a.example.test", DNS_T_A, 1, 0, 0);
	mb_a_ptr(&m, 60, "192.0.2.1");
	if (!ASSERT_OK(dns_cache_put(c, &q, m.b, m.n, 0), "put"))
		goto out;
	ASSERT_EQ(dns_cache_get(c, &qdo, out, sizeof(out), 1232, 1232, 0), 0, "DO bit misses");
	ASSERT_EQ(dns_cache_get(c, &qaaaa, out, sizeof(out), 1232, 1232, 0), 0, "AAAA misses");
	ASSERT_TRUE(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 0) > 0, "A hits");
out:
	dns_cache_free(c);
}

TEST(cache_negative_ttl_from_soa_minimum)
{
	struct dns_cache *c = dns_cache_new(100, 5, 3600);
	struct dns_query q;
	struct mb m;
	uint8_t out[1024];
	int n;

	if (!ASSERT_NOT_NULL(c, "new"))
		return;
	client_query(&q, 1, "nope.example.test", DNS_T_A, true, false);
	/* NXDOMAIN, SOA TTL 300, MINIMUM 60: cached for min(300, 60) = 60 s. */
	mb_start(&m, 1, 0x8183, "nope.example.test", DNS_T_A, 0, 1, 0);
	mb_soa(&m, "example.test", 300, 60);
	if (!ASSERT_OK(dns_cache_put(c, &q, m.b, m.n, 0), "put"))
		goto out;
	n = dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 59000);
	ASSERT_TRUE(n > 0, "hit at 59 s");
	ASSERT_EQ(out[3] & 0x0f, DNS_R_NXDOMAIN, "rcode kept");
	ASSERT_EQ(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 60001), 0, "expired at 60 s");
	/* NODATA with SOA MINIMUM above the SOA TTL: the TTL wins. */
	mb_start(&m, 1, 0x8180, "nope.example.test", DNS_T_A, 0, 1, 0);
	mb_soa(&m, "example.test", 20, 600);
	ASSERT_OK(dns_cache_put(c, &q, m.b, m.n, 0), "put nodata");
	ASSERT_TRUE(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 19000) > 0, "hit at 19 s");
	ASSERT_EQ(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 20001), 0, "expired at 20 s");
out:
	dns_cache_free(c);
}

TEST(cache_ttl_clamped_and_uncacheable_refused)
{
	struct dns_cache *c = dns_cache_new(100, 5, 3600);
	struct dns_query q;
	struct mb m;
	uint8_t out[1024];

	if (!ASSERT_NOT_NULL(c, "new"))
		return;
	client_query(&q, 1, "x.example.test", DNS_T_A, true, false);
	mb_start(&m, 1, 0x8180, "x.example.test", DNS_T_A, 1, 0, 0);
	mb_a_ptr(&m, 86400, "192.0.2.1");
	ASSERT_OK(dns_cache_put(c, &q, m.b, m.n, 0), "put long ttl");
	ASSERT_TRUE(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 3599000) > 0, "hit < max");
	ASSERT_EQ(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 3600001), 0, "capped at max");
	mb_start(&m, 1, 0x8180, "x.example.test", DNS_T_A, 1, 0, 0);
	mb_a_ptr(&m, 1, "192.0.2.1");
	ASSERT_OK(dns_cache_put(c, &q, m.b, m.n, 0), "put ttl 1");
	ASSERT_TRUE(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 4000) > 0, "min 5 s");
	/* The rendered TTL never goes below 0 even though the entry lives longer. */
	ASSERT_EQ(rd32(out + 12 + q.qname_wire_len + 4 + 6), 0, "ttl floor 0");

	mb_start(&m, 1, 0x8182, "x.example.test", DNS_T_A, 0, 0, 0);
	ASSERT_EQ(dns_cache_put(c, &q, m.b, m.n, 0), -EAGAIN, "SERVFAIL not cached");
	mb_start(&m, 1, 0x8180, "x.example.test", DNS_T_A, 0, 0, 0);
	ASSERT_EQ(dns_cache_put(c, &q, m.b, m.n, 0), -EAGAIN, "NODATA without SOA not cached");
	mb_start(&m, 1, 0x8380, "x.example.test", DNS_T_A, 1, 0, 0);
	mb_a_ptr(&m, 60, "192.0.2.1");
	ASSERT_EQ(dns_cache_put(c, &q, m.b, m.n, 0), -EAGAIN, "TC not cached");
	ASSERT_EQ(dns_cache_put(c, &q, m.b, 11, 0), -EBADMSG, "short");
	mb_start(&m, 1, 0x8180, "x.example.test", DNS_T_A, 2, 0, 0); /* claims 2 RRs, has 1 */
	mb_a_ptr(&m, 60, "192.0.2.1");
	ASSERT_EQ(dns_cache_put(c, &q, m.b, m.n, 0), -EBADMSG, "count past the end");
	dns_cache_free(c);
}

TEST(cache_bounded_lru)
{
	struct dns_cache *c = dns_cache_new(64, 5, 3600);
	struct dns_cache_stats st;
	struct dns_query q;
	struct mb m;
	uint8_t out[1024];
	char name[64];

	if (!ASSERT_NOT_NULL(c, "new"))
		return;
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "n%d.example.test", i);
		client_query(&q, 1, name, DNS_T_A, true, false);
		mb_start(&m, 1, 0x8180, name, DNS_T_A, 1, 0, 0);
		mb_a_ptr(&m, 60, "192.0.2.1");
		if (!ASSERT_OK(dns_cache_put(c, &q, m.b, m.n, 0), "put"))
			goto out;
		/* Keep n0 hot: LRU must not evict it. */
		client_query(&q, 1, "n0.example.test", DNS_T_A, true, false);
		if (!ASSERT_TRUE(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 0) > 0, "n0"))
			goto out;
	}
	dns_cache_stats(c, &st);
	ASSERT_TRUE(st.entries <= 64, "bounded");
	ASSERT_TRUE(st.evictions >= 1000 - 64, "evicted");
	ASSERT_EQ(st.hits, 1000, "hits counted");
	snprintf(name, sizeof(name), "n%d.example.test", 999);
	client_query(&q, 1, name, DNS_T_A, true, false);
	ASSERT_TRUE(dns_cache_get(c, &q, out, sizeof(out), 1232, 1232, 0) > 0, "newest kept");
out:
	dns_cache_free(c);
}

TEST(render_truncates_over_limit)
{
	struct dns_query q;
	struct mb m;
	uint8_t out[4096];
	int n;

	client_query(&q, 77, "big.example.test", DNS_T_A, false, false);
	mb_start(&m, 5, 0x8180, "big.example.test", DNS_T_A, 40, 0, 0);
	for (int i = 0; i < 40; i++)
		mb_a_ptr(&m, 60, "192.0.2.1");
	n = dns_fwd_render(m.b, m.n, 0, &q, out, sizeof(out), 512, 1232);
	if (!ASSERT_TRUE(n > 0, "render"))
		return;
	ASSERT_EQ(n, (int)(12 + q.qname_wire_len + 4), "header and question only");
	ASSERT_TRUE(out[2] & 0x02, "TC");
	ASSERT_EQ(rd16(out + 6), 0, "no answers");
	ASSERT_EQ(rd16(out), 77, "id");
	n = dns_fwd_render(m.b, m.n, 0, &q, out, sizeof(out), 65535, 1232);
	ASSERT_EQ(n, (int)m.n, "whole over TCP");
	ASSERT_FALSE(out[2] & 0x02, "no TC");
	ASSERT_EQ(dns_fwd_render(m.b, m.n, 0, &q, out, 100, 65535, 1232), -ENOSPC, "small out");
}

TEST(reply_check_matches_question)
{
	struct dns_query q;
	struct mb m;

	client_query(&q, 9, "www.example.test", DNS_T_A, true, false);
	mb_start(&m, 9, 0x8180, "WWW.example.TEST", DNS_T_A, 0, 0, 0);
	ASSERT_OK(dns_fwd_reply_check(m.b, m.n, 9, q.qname_wire, q.qname_wire_len, DNS_T_A, 1),
		  "case-insensitive match");
	ASSERT_EQ(dns_fwd_reply_check(m.b, m.n, 10, q.qname_wire, q.qname_wire_len, DNS_T_A, 1),
		  -EBADMSG, "other id");
	ASSERT_EQ(dns_fwd_reply_check(m.b, m.n, 9, q.qname_wire, q.qname_wire_len, DNS_T_AAAA, 1),
		  -ESRCH, "other type");
	mb_start(&m, 9, 0x0100, "www.example.test", DNS_T_A, 0, 0, 0);
	ASSERT_EQ(dns_fwd_reply_check(m.b, m.n, 9, q.qname_wire, q.qname_wire_len, DNS_T_A, 1),
		  -EBADMSG, "a query, not a reply");
	mb_start(&m, 9, 0x8180, "wxw.example.test", DNS_T_A, 0, 0, 0);
	ASSERT_EQ(dns_fwd_reply_check(m.b, m.n, 9, q.qname_wire, q.qname_wire_len, DNS_T_A, 1),
		  -ESRCH, "other name");
}

struct collected {
	int n;
	char names[4][64];
	uint16_t types[4];
};

static int collect(const struct dns_rr *rr, void *arg)
{
	struct collected *c = arg;

	if (c->n < 4) {
		snprintf(c->names[c->n], sizeof(c->names[0]), "%s>%s", rr->name,
			 rr->type == DNS_T_CNAME ? rr->rd.target : "addr");
		c->types[c->n] = rr->type;
	}
	c->n++;
	return 0;
}

TEST(answers_decompress_for_chasing)
{
	struct collected col = {0};
	struct mb m;
	size_t target_at;

	mb_start(&m, 1, 0x8180, "alias.example.test", DNS_T_A, 3, 0, 0);
	/* alias CNAME www.<ptr to example.test> */
	put16(&m, 0xc00c);
	put16(&m, DNS_T_CNAME);
	put16(&m, 1);
	put32(&m, 300);
	put16(&m, 6);
	target_at = m.n;
	put8(&m, 3);
	memcpy(m.b + m.n, "www", 3);
	m.n += 3;
	put16(&m, 0xc000 | (12 + 6)); /* "example.test" inside the question */
	/* www.example.test A, owner a pointer to the CNAME target */
	put16(&m, (uint16_t)(0xc000 | target_at));
	put16(&m, DNS_T_A);
	put16(&m, 1);
	put32(&m, 300);
	put16(&m, 4);
	put32(&m, 0xc000020a);
	/* an MX record is skipped */
	put16(&m, 0xc00c);
	put16(&m, DNS_T_MX);
	put16(&m, 1);
	put32(&m, 300);
	put16(&m, 4);
	put16(&m, 10);
	put16(&m, 0xc00c);
	ASSERT_EQ(dns_fwd_answers(m.b, m.n, collect, &col), 2, "two records");
	ASSERT_STREQ(col.names[0], "alias.example.test>www.example.test", "cname");
	ASSERT_STREQ(col.names[1], "www.example.test>addr", "a owner");
	/* An owner pointing at itself (a loop) is refused. */
	mb_start(&m, 1, 0x8180, "a.b", DNS_T_A, 1, 0, 0);
	put16(&m, (uint16_t)(0xc000 | (m.n + 0)));
	put16(&m, DNS_T_A);
	put16(&m, 1);
	put32(&m, 1);
	put16(&m, 4);
	put32(&m, 1);
	col.n = 0;
	ASSERT_EQ(dns_fwd_answers(m.b, m.n, collect, &col), -EBADMSG, "self pointer");
}

/* ---- upstream health ---------------------------------------------------------------------- */

TEST(upstream_failover_and_recovery)
{
	struct sockaddr_storage up[2];
	struct dns_fwd_opts o = {.upstream = up,
				 .n_upstream = 2,
				 .timeout_ms = 100,
				 .max_fails = 2,
				 .cache_size = 10,
				 .cache_min_ttl = 5,
				 .cache_max_ttl = 60,
				 .probe_ms = 60000};
	struct dns_fwd_upstream_stats st;
	struct dns_fwd *f;
	int seen0 = 0;

	dns_config_addr_parse("127.0.0.1:1", 53, &up[0]);
	dns_config_addr_parse("127.0.0.1:2", 53, &up[1]);
	f = dns_fwd_new(&o);
	if (!ASSERT_NOT_NULL(f, "new"))
		return;
	dns_fwd_report(f, 0, false);
	dns_fwd_upstream_stats(f, 0, &st);
	ASSERT_TRUE(st.up, "one failure: still up");
	dns_fwd_report(f, 0, false);
	dns_fwd_upstream_stats(f, 0, &st);
	ASSERT_FALSE(st.up, "two failures: down");
	ASSERT_EQ(st.failures, 2, "failures counted");
	ASSERT_STREQ(st.addr, "127.0.0.1:1", "addr");
	for (int i = 0; i < 10; i++)
		seen0 += dns_fwd_pick(f, -1) == 0;
	ASSERT_EQ(seen0, 0, "down upstream skipped");
	ASSERT_EQ(dns_fwd_pick(f, 1), 0, "all else down: still tried");
	dns_fwd_report(f, 0, true);
	for (int i = 0; i < 10; i++)
		seen0 += dns_fwd_pick(f, -1) == 0;
	ASSERT_EQ(seen0, 5, "back in round robin");
	ASSERT_EQ(dns_fwd_pick(f, 0), 1, "avoid the one that failed");
	dns_fwd_free(f);
}

/* Member-wise equality (padding bytes are not part of a config's value). */
static bool cfg_equal(const struct dns_config *a, const struct dns_config *b)
{
	char x[80], y[80];

	if (strcmp(a->zone, b->zone) != 0 || a->ttl != b->ttl || a->pods != b->pods ||
	    a->n_upstream != b->n_upstream || strcmp(a->metrics, b->metrics) != 0 ||
	    a->workers != b->workers || a->cache_size != b->cache_size ||
	    a->cache_max_ttl != b->cache_max_ttl || a->cache_min_ttl != b->cache_min_ttl ||
	    a->upstream_timeout_ms != b->upstream_timeout_ms || a->max_fails != b->max_fails ||
	    a->tcp_max_conns != b->tcp_max_conns || a->tcp_idle_ms != b->tcp_idle_ms ||
	    a->bufsize != b->bufsize)
		return false;
	if (strcmp(dns_config_addr_str(&a->listen, x, sizeof(x)),
		   dns_config_addr_str(&b->listen, y, sizeof(y))) != 0)
		return false;
	for (unsigned int i = 0; i < a->n_upstream; i++)
		if (strcmp(dns_config_addr_str(&a->upstream[i], x, sizeof(x)),
			   dns_config_addr_str(&b->upstream[i], y, sizeof(y))) != 0)
			return false;
	return true;
}

/* ---- config ------------------------------------------------------------------------------- */

TEST(config_file_and_errors)
{
	struct dns_config c;
	char err[256] = "", a[64];
	const char *good = "# comment\n"
			   "zone Cluster.Example.\n"
			   "ttl 5\n"
			   "pods verified\n"
			   "forward 198.18.5.53:5353 [2001:db8::1]:53 198.18.5.54\n"
			   "  listen 127.0.0.1:5353   # trailing comment\n"
			   "metrics 127.0.0.1:9153\n"
			   "cache 500 60 1\n";

	dns_config_defaults(&c);
	if (!ASSERT_OK(dns_config_parse(&c, "t.conf", good, strlen(good), err, sizeof(err)), err))
		return;
	ASSERT_STREQ(c.zone, "cluster.example", "zone lower-cased, dot cut");
	ASSERT_EQ(c.ttl, 5, "ttl");
	ASSERT_EQ(c.pods, DNS_CFG_PODS_VERIFIED, "pods");
	ASSERT_EQ(c.n_upstream, 3, "upstreams");
	ASSERT_STREQ(dns_config_addr_str(&c.upstream[1], a, sizeof(a)), "[2001:db8::1]:53", "v6");
	ASSERT_STREQ(dns_config_addr_str(&c.upstream[2], a, sizeof(a)), "198.18.5.54:53", "port");
	ASSERT_STREQ(dns_config_addr_str(&c.listen, a, sizeof(a)), "127.0.0.1:5353", "listen");
	ASSERT_STREQ(c.metrics, "127.0.0.1:9153", "metrics");
	ASSERT_EQ(c.cache_size, 500, "cache size");
	ASSERT_EQ(c.cache_min_ttl, 1, "cache min");

	static const struct {
		const char *text, *want;
	} bad[] = {
		{"zone cluster.local\nttl 99999\n", "t.conf:2: ttl: '99999' is not a number"},
		{"pods sometimes\n", "t.conf:1: pods: 'sometimes' is not a mode"},
		{"forward 1.2.3.4:99999\n", "t.conf:1: forward: '1.2.3.4:99999' is not an address"},
		{"listen\n", "t.conf:1: listen: expected one address"},
		{"kubernetes cluster.local {\n", "t.conf:1: blocks"},
		{"\n\nfrobnicate 1\n", "t.conf:3: unknown directive 'frobnicate'"},
		{"zone a..b\n", "t.conf:1: zone: 'a..b' is not a domain name"},
		{"cache 10 5 60\n", "t.conf:1: cache: min TTL 60 is above max TTL 5"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dns_config before = c;
		err[0] = '\0';
		ASSERT_EQ(dns_config_parse(&c, "t.conf", bad[i].text, strlen(bad[i].text), err,
					   sizeof(err)),
			  -EINVAL, bad[i].text);
		if (!ASSERT_TRUE(strstr(err, bad[i].want) != NULL, bad[i].want))
			fprintf(stderr, "    got: %s\n", err);
		ASSERT_TRUE(cfg_equal(&before, &c), "unchanged on error");
	}
}

TEST(config_resolv_conf_skips_self)
{
	struct dns_config c;
	char path[] = "/tmp/test_dns_resolv.XXXXXX", err[256], a[64];
	const char *text = "search svc.cluster.local\n"
			   "nameserver 127.0.0.1\n"
			   "nameserver 198.18.5.53\n"
			   "nameserver fe80::1%eth0\n"
			   "nameserver 2001:db8::53\n"
			   "options ndots:5\n";
	int fd = mkstemp(path);

	if (!ASSERT_TRUE(fd >= 0, "mkstemp"))
		return;
	ssize_t wn = write(fd, text, strlen(text));
	close(fd);
	if (!ASSERT_EQ(wn, (ssize_t)strlen(text), "write")) {
		unlink(path);
		return;
	}
	dns_config_defaults(&c); /* listens on 0.0.0.0:53: 127.0.0.1:53 would be us */
	ASSERT_EQ(dns_config_resolv_conf(&c, path, err, sizeof(err)), 2, "two taken");
	ASSERT_STREQ(dns_config_addr_str(&c.upstream[0], a, sizeof(a)), "198.18.5.53:53", "v4");
	ASSERT_STREQ(dns_config_addr_str(&c.upstream[1], a, sizeof(a)), "[2001:db8::53]:53", "v6");
	unlink(path);
	ASSERT_EQ(dns_config_resolv_conf(&c, path, err, sizeof(err)), 2, "configured: kept");
	c.n_upstream = 0;
	ASSERT_EQ(dns_config_resolv_conf(&c, path, err, sizeof(err)), -ENOENT, "missing file");
}
