// SPDX-License-Identifier: Apache-2.0
/*
 * dns/zone.c: every answer kind of the cluster zone on a CoreDNS-like fixture
 * (research/dns.md §2.1), checked record by record through a small response
 * decoder that renders each RR as "owner TYPE rdata": ClusterIP, headless
 * (hostnames, dashed IPs, duplicates, not-ready), SRV (named ports, bare
 * name, weights, additional glue), ExternalName (in and out of zone), pods in
 * the three modes, PTR, apex SOA/NS, dns-version, the NXDOMAIN/NODATA table,
 * case preservation, ANY/AXFR, SERVFAIL before sync, truncation of a
 * 100-endpoint headless Service, updates, and readers racing commits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "sluice/json.h"
#include "wire.h"
#include "zone.h"

/* --- a tiny response decoder ---------------------------------------------------------------- */

#define RRLEN 960

struct resp {
	uint16_t id, flags;
	int rcode;
	bool aa, tc;
	uint16_t count[4];
	char rr[3][128][RRLEN]; /* per section: "owner TYPE rdata" */
	int n[3];
};

static bool rd_name(const uint8_t *m, size_t len, size_t *off, char *out, size_t cap)
{
	size_t o = *off, pos = 0;
	bool jumped = false;

	out[0] = 0;
	for (int hops = 0; hops < 64; hops++) {
		if (o >= len)
			return false;
		uint8_t n = m[o];

		if ((n & 0xc0) == 0xc0) {
			if (o + 1 >= len)
				return false;
			if (!jumped)
				*off = o + 2;
			jumped = true;
			o = (size_t)(n & 0x3f) << 8 | m[o + 1];
			continue;
		}
		if (n == 0) {
			if (!jumped)
				*off = o + 1;
			if (pos == 0 && cap > 1)
				out[pos++] = '.';
			out[pos] = 0;
			return true;
		}
		if (o + 1 + n > len || pos + n + 2 >= cap)
			return false;
		memcpy(out + pos, m + o + 1, n);
		pos += n;
		out[pos++] = '.';
		o += 1 + n;
	}
	return false;
}

static const char *type_name(uint16_t t)
{
	switch (t) {
	case DNS_T_A:
		return "A";
	case DNS_T_AAAA:
		return "AAAA";
	case DNS_T_CNAME:
		return "CNAME";
	case DNS_T_SOA:
		return "SOA";
	case DNS_T_PTR:
		return "PTR";
	case DNS_T_NS:
		return "NS";
	case DNS_T_SRV:
		return "SRV";
	case DNS_T_TXT:
		return "TXT";
	case DNS_T_HINFO:
		return "HINFO";
	case DNS_T_OPT:
		return "OPT";
	default:
		return "?";
	}
}

static bool resp_parse(const uint8_t *m, size_t len, struct resp *r)
{
	size_t off = 12;
	char name[300], t1[300], t2[300];

	memset(r, 0, sizeof(*r));
	if (len < 12)
		return false;
	r->id = (uint16_t)(m[0] << 8 | m[1]);
	r->flags = (uint16_t)(m[2] << 8 | m[3]);
	r->rcode = r->flags & 0xf;
	r->aa = r->flags & 0x0400;
	r->tc = r->flags & 0x0200;
	for (int i = 0; i < 4; i++)
		r->count[i] = (uint16_t)(m[4 + 2 * i] << 8 | m[5 + 2 * i]);
	for (int i = 0; i < r->count[0]; i++) {
		if (!rd_name(m, len, &off, name, sizeof(name)) || off + 4 > len)
			return false;
		off += 4;
	}
	for (int s = 0; s < 3; s++) {
		for (int i = 0; i < r->count[s + 1]; i++) {
			uint16_t type, rdlen;
			uint32_t ttl;
			char *out = r->rr[s][r->n[s] < 128 ? r->n[s] : 127];
			size_t rd;

			if (!rd_name(m, len, &off, name, sizeof(name)) || off + 10 > len)
				return false;
			type = (uint16_t)(m[off] << 8 | m[off + 1]);
			ttl = (uint32_t)m[off + 4] << 24 | (uint32_t)m[off + 5] << 16 |
			      (uint32_t)m[off + 6] << 8 | m[off + 7];
			rdlen = (uint16_t)(m[off + 8] << 8 | m[off + 9]);
			off += 10;
			rd = off;
			if (off + rdlen > len)
				return false;
			(void)ttl;
			switch (type) {
			case DNS_T_A:
				if (rdlen != 4)
					return false;
				inet_ntop(AF_INET, m + rd, t1, sizeof(t1));
				snprintf(out, RRLEN, "%s A %s", name, t1);
				break;
			case DNS_T_AAAA:
				if (rdlen != 16)
					return false;
				inet_ntop(AF_INET6, m + rd, t1, sizeof(t1));
				snprintf(out, RRLEN, "%s AAAA %s", name, t1);
				break;
			case DNS_T_CNAME:
			case DNS_T_PTR:
			case DNS_T_NS:
				if (!rd_name(m, len, &rd, t1, sizeof(t1)) || rd != off + rdlen)
					return false;
				snprintf(out, RRLEN, "%s %s %s", name, type_name(type), t1);
				break;
			case DNS_T_SRV:
				rd += 6;
				if (rdlen < 7 || !rd_name(m, len, &rd, t1, sizeof(t1)) ||
				    rd != off + rdlen)
					return false;
				snprintf(out, RRLEN, "%s SRV %u %u %u %s", name,
					 (unsigned int)(m[off] << 8 | m[off + 1]),
					 (unsigned int)(m[off + 2] << 8 | m[off + 3]),
					 (unsigned int)(m[off + 4] << 8 | m[off + 5]), t1);
				break;
			case DNS_T_SOA:
				if (!rd_name(m, len, &rd, t1, sizeof(t1)) ||
				    !rd_name(m, len, &rd, t2, sizeof(t2)) || rd + 20 != off + rdlen)
					return false;
				snprintf(out, RRLEN, "%s SOA %s %s %u min=%u ttl=%u", name, t1, t2,
					 (unsigned int)(m[rd] << 24 | m[rd + 1] << 16 |
							m[rd + 2] << 8 | m[rd + 3]),
					 (unsigned int)(m[rd + 16] << 24 | m[rd + 17] << 16 |
							m[rd + 18] << 8 | m[rd + 19]),
					 ttl);
				break;
			case DNS_T_TXT:
			case DNS_T_HINFO:
				if (rdlen < 1 || m[rd] + 1u > rdlen)
					return false;
				snprintf(out, RRLEN, "%s %s \"%.*s\"", name, type_name(type), m[rd],
					 (const char *)m + rd + 1);
				break;
			case DNS_T_OPT:
				snprintf(out, RRLEN, "OPT %u",
					 (unsigned int)(m[off - 8] << 8 | m[off - 7]));
				break;
			default:
				snprintf(out, RRLEN, "%s TYPE%u", name, type);
			}
			off += rdlen;
			r->n[s]++;
		}
	}
	return off == len;
}

/* True if section s holds exactly the given records, in any order (loadbalance-style). */
static bool has_set(const struct resp *r, int s, const char *const *want, int n)
{
	bool used[128] = {false};

	if (r->n[s] != n) {
		fprintf(stderr, "  section %d has %d records, want %d:\n", s + 1, r->n[s], n);
		for (int i = 0; i < r->n[s]; i++)
			fprintf(stderr, "    %s\n", r->rr[s][i]);
		return false;
	}
	for (int i = 0; i < n; i++) {
		int j;

		for (j = 0; j < r->n[s]; j++)
			if (!used[j] && !strcmp(r->rr[s][j], want[i]))
				break;
		if (j == r->n[s]) {
			fprintf(stderr, "  missing in section %d: %s\n", s + 1, want[i]);
			for (int k = 0; k < r->n[s]; k++)
				fprintf(stderr, "    have %s\n", r->rr[s][k]);
			return false;
		}
		used[j] = true;
	}
	return true;
}

#define SET(r, s, ...)                                                    \
	({                                                                \
		const char *const _w[] = {__VA_ARGS__};                   \
		has_set((r), (s), _w, (int)(sizeof(_w) / sizeof(_w[0]))); \
	})

/* --- fixture ---------------------------------------------------------------------------------- */

static size_t build_query(uint8_t *buf, const char *name, uint16_t type, uint16_t edns)
{
	int n;
	size_t o = 12;

	memset(buf, 0, 12);
	buf[0] = 0x12;
	buf[1] = 0x34;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;
	n = dns_name_to_wire(name, buf + o, 300);
	if (n < 0)
		return 0;
	o += (size_t)n;
	buf[o++] = (uint8_t)(type >> 8);
	buf[o++] = (uint8_t)type;
	buf[o++] = 0;
	buf[o++] = 1;
	if (edns) {
		buf[11] = 1;
		const uint8_t opt[11] = {0, 0, 41, (uint8_t)(edns >> 8), (uint8_t)edns, 0, 0, 0,
					 0, 0, 0};

		memcpy(buf + o, opt, 11);
		o += 11;
	}
	return o;
}

struct ask {
	struct dns_zone_result res;
	struct resp r;
	size_t len;
	bool parsed;
};

static uint8_t resp_buf[DNS_MAX_MSG];

/* Queries z; cap 0 = the UDP limit the query implies. */
static bool ask_cap(struct dns_zone *z, const char *name, uint16_t type, uint16_t edns, size_t cap,
		    struct ask *a)
{
	uint8_t qb[512];
	struct dns_query q = {0};
	struct dns_writer w;
	int rcode = 0;
	size_t ql = build_query(qb, name, type, edns);

	memset(a, 0, sizeof(*a));
	if (!ASSERT_TRUE(ql > 0, name) || !ASSERT_OK(dns_query_parse(qb, ql, &q, &rcode), name))
		return false;
	if (!ASSERT_OK(dns_writer_begin(&w, resp_buf, cap ? cap : dns_query_udp_limit(&q), &q,
					false, DNS_R_NOERROR),
		       "begin"))
		return false;
	if (!ASSERT_OK(dns_zone_answer(z, &q, &w, &a->res), "answer"))
		return false;
	dns_writer_opt(&w, DNS_EDNS_DEFAULT);
	a->len = dns_writer_end(&w);
	a->parsed = resp_parse(resp_buf, a->len, &a->r);
	return ASSERT_TRUE(a->parsed, "response parses");
}

static bool ask(struct dns_zone *z, const char *name, uint16_t type, struct ask *a)
{
	return ask_cap(z, name, type, 0, 0, a);
}

/* Asserts an authoritative answer with rcode and a given answer-section count. */
static bool ans_ok(const struct ask *a, int rc, int nans, const char *what)
{
	return ASSERT_TRUE(a->res.ours, what) && ASSERT_EQ(a->r.rcode, rc, what) &&
	       ASSERT_EQ(a->res.rcode, rc, what) && ASSERT_TRUE(a->r.aa, what) &&
	       ASSERT_EQ(a->r.n[0], nans, what);
}

/* NODATA or NXDOMAIN: empty answer, the zone SOA (owner soa_owner) in authority. */
static bool neg_ok(const struct ask *a, int rc, const char *soa_owner, const char *what)
{
	char prefix[128];

	snprintf(prefix, sizeof(prefix), "%s SOA ns.dns.", soa_owner);
	return ans_ok(a, rc, 0, what) && ASSERT_EQ(a->r.n[1], 1, what) &&
	       ASSERT_TRUE(!strncmp(a->r.rr[1][0], prefix, strlen(prefix)), what);
}

static int add_json(struct dns_zone *z, enum k8s_kind kind, const char *txt)
{
	char err[128];
	struct json_object *o = sl_json_parse(txt, strlen(txt), err, sizeof(err));
	int ret;

	if (!o) {
		fprintf(stderr, "  fixture JSON: %s\n", err);
		return -EINVAL;
	}
	ret = dns_zone_upsert(z, kind, o);
	json_object_put(o);
	return ret;
}

static int del_json(struct dns_zone *z, enum k8s_kind kind, const char *txt)
{
	struct json_object *o = sl_json_parse(txt, strlen(txt), NULL, 0);
	int ret = dns_zone_delete(z, kind, o);

	json_object_put(o);
	return ret;
}

#define NSJ(n) "{\"metadata\":{\"name\":\"" n "\"}}"

static const char *fixture[][2] = {
	{"ns", NSJ("testns")},
	{"ns", NSJ("podns")},
	{"svc",
	 "{\"metadata\":{\"name\":\"svc1\",\"namespace\":\"testns\"},\"spec\":{\"clusterIP\":"
	 "\"10.0.0.1\",\"clusterIPs\":[\"10.0.0.1\"],\"ports\":[{\"name\":\"http\","
	 "\"protocol\":\"TCP\",\"port\":80}]}}"},
	{"eps", "{\"metadata\":{\"name\":\"svc1-abc\",\"namespace\":\"testns\",\"labels\":"
		"{\"kubernetes.io/service-name\":\"svc1\"}},\"addressType\":\"IPv4\",\"endpoints\":"
		"[{\"addresses\":[\"172.0.0.1\"],\"hostname\":\"ep1a\",\"conditions\":{\"ready\":"
		"true}}],\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}"},
	{"svc",
	 "{\"metadata\":{\"name\":\"svc6\",\"namespace\":\"testns\"},\"spec\":{\"clusterIP\":"
	 "\"1234:abcd::1\",\"ports\":[{\"name\":\"http\",\"port\":80}]}}"},
	{"svc",
	 "{\"metadata\":{\"name\":\"dual\",\"namespace\":\"testns\"},\"spec\":{\"clusterIP\":"
	 "\"10.0.0.3\",\"clusterIPs\":[\"10.0.0.3\",\"10::3\"],\"ports\":[{\"name\":\"http\","
	 "\"port\":80},{\"port\":81}]}}"},
	{"svc",
	 "{\"metadata\":{\"name\":\"hdls1\",\"namespace\":\"testns\"},\"spec\":{\"clusterIP\":"
	 "\"None\",\"ports\":[{\"name\":\"http\",\"port\":80}]}}"},
	{"eps",
	 "{\"metadata\":{\"name\":\"hdls1-a\",\"namespace\":\"testns\",\"labels\":"
	 "{\"kubernetes.io/service-name\":\"hdls1\"}},\"addressType\":\"IPv4\",\"endpoints\":"
	 "[{\"addresses\":[\"172.0.0.2\"]},{\"addresses\":[\"172.0.0.3\"],\"conditions\":{"
	 "\"ready\":true}},{\"addresses\":[\"172.0.0.4\"],\"hostname\":\"dup-name\"},"
	 "{\"addresses\":[\"172.0.0.5\"],\"hostname\":\"dup-name\"},{\"addresses\":"
	 "[\"172.0.0.9\"],\"conditions\":{\"ready\":false}}],\"ports\":[{\"name\":\"http\","
	 "\"port\":80,\"protocol\":\"TCP\"}]}"},
	{"eps",
	 "{\"metadata\":{\"name\":\"hdls1-b\",\"namespace\":\"testns\",\"labels\":"
	 "{\"kubernetes.io/service-name\":\"hdls1\"}},\"addressType\":\"IPv6\",\"endpoints\":"
	 "[{\"addresses\":[\"5678:abcd::1\"]},{\"addresses\":[\"5678:abcd::2\"]}],\"ports\":"
	 "[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}]}"},
	/* the same address again in another slice: deduplicated */
	{"eps",
	 "{\"metadata\":{\"name\":\"hdls1-c\",\"namespace\":\"testns\",\"labels\":"
	 "{\"kubernetes.io/service-name\":\"hdls1\"}},\"addressType\":\"IPv4\",\"endpoints\":"
	 "[{\"addresses\":[\"172.0.0.2\"]}],\"ports\":[{\"name\":\"http\",\"port\":80}]}"},
	{"svc", "{\"metadata\":{\"name\":\"hdlsempty\",\"namespace\":\"testns\"},\"spec\":{"
		"\"clusterIP\":\"None\"}}"},
	{"eps",
	 "{\"metadata\":{\"name\":\"hdlsempty-a\",\"namespace\":\"testns\",\"labels\":"
	 "{\"kubernetes.io/service-name\":\"hdlsempty\"}},\"addressType\":\"IPv4\","
	 "\"endpoints\":[{\"addresses\":[\"172.0.0.30\"],\"conditions\":{\"ready\":false}}]}"},
	{"svc", "{\"metadata\":{\"name\":\"external\",\"namespace\":\"testns\"},\"spec\":{\"type\":"
		"\"ExternalName\",\"externalName\":\"ext.interwebs.test\"}}"},
	{"svc", "{\"metadata\":{\"name\":\"ext2svc\",\"namespace\":\"testns\"},\"spec\":{\"type\":"
		"\"ExternalName\",\"externalName\":\"svc1.testns.svc.cluster.local.\"}}"},
	{"svc", "{\"metadata\":{\"name\":\"extip\",\"namespace\":\"testns\"},\"spec\":{\"type\":"
		"\"ExternalName\",\"externalName\":\"1.2.3.4\"}}"},
	{"pod", "{\"metadata\":{\"name\":\"foo\",\"namespace\":\"podns\"},\"status\":{\"podIP\":"
		"\"10.240.0.1\",\"podIPs\":[{\"ip\":\"10.240.0.1\"}]}}"},
};

static enum k8s_kind kind_of(const char *k)
{
	return !strcmp(k, "ns")	   ? K8S_KIND_NAMESPACE
	       : !strcmp(k, "svc") ? K8S_KIND_SERVICE
	       : !strcmp(k, "eps") ? K8S_KIND_ENDPOINTSLICE
				   : K8S_KIND_POD;
}

static struct dns_zone *zone_fixture(enum dns_pod_mode pods)
{
	struct dns_zone_opts o = {.zone = "cluster.local", .ttl = 5, .pods = pods};
	struct dns_zone *z = dns_zone_new(&o);

	if (!ASSERT_NOT_NULL(z, "zone_new"))
		return NULL;
	for (size_t i = 0; i < sizeof(fixture) / sizeof(fixture[0]); i++)
		if (!ASSERT_OK(add_json(z, kind_of(fixture[i][0]), fixture[i][1]), fixture[i][1]))
			goto fail;
	if (!ASSERT_OK(dns_zone_commit(z), "commit"))
		goto fail;
	dns_zone_set_synced(z, true);
	return z;
fail:
	dns_zone_free(z);
	return NULL;
}

#define CL ".testns.svc.cluster.local"

/* --- tests -------------------------------------------------------------------------------------
 */

TEST(zone_new_rejects_bad_options)
{
	struct dns_zone_opts o = {.zone = "", .ttl = 5};

	ASSERT_NULL(dns_zone_new(&o), "empty zone");
	ASSERT_EQ(errno, EINVAL, "errno");
	o.zone = "a..b";
	ASSERT_NULL(dns_zone_new(&o), "empty label");
	o.zone = "cluster.local";
	o.ttl = 3601;
	ASSERT_NULL(dns_zone_new(&o), "ttl");
	o.ttl = 5;
	o.ns_addr = "not-an-ip";
	ASSERT_NULL(dns_zone_new(&o), "ns_addr");
	ASSERT_NULL(dns_zone_new(NULL), "NULL opts");
	dns_zone_free(NULL);
}

TEST(zone_upsert_rejects_bad_objects)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);

	if (!z)
		return;
	ASSERT_ERR(add_json(z, K8S_KIND_SERVICE, "{\"metadata\":{}}"), "no name");
	ASSERT_ERR(add_json(z, K8S_KIND_NODE, NSJ("n1")), "unsupported kind");
	ASSERT_ERR(add_json(z, K8S_KIND_SERVICE,
			    "{\"metadata\":{\"name\":\"x\",\"namespace\":\"testns\"},"
			    "\"spec\":{\"ports\":\"nope\"}}"),
		   "ports not a list");
	ASSERT_OK(del_json(z, K8S_KIND_SERVICE, "{\"metadata\":{\"name\":\"nothere\"}}"),
		  "delete unknown");
	dns_zone_free(z);
}

TEST(zone_dns_version)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	if (ask(z, "dns-version.cluster.local", DNS_T_TXT, &a) && ans_ok(&a, 0, 1, "txt"))
		SET(&a.r, 0, "dns-version.cluster.local. TXT \"1.1.0\"");
	if (ask(z, "dns-version.cluster.local", DNS_T_A, &a))
		neg_ok(&a, DNS_R_NOERROR, "cluster.local.", "A is NODATA (RFC 8020)");
	dns_zone_free(z);
}

TEST(zone_clusterip)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	if (ask(z, "svc1" CL, DNS_T_A, &a) && ans_ok(&a, 0, 1, "svc1 A")) {
		SET(&a.r, 0, "svc1" CL ". A 10.0.0.1");
		ASSERT_EQ(a.r.n[1], 0, "no authority on a positive answer");
		ASSERT_EQ(a.r.id, 0x1234, "id echoed");
		ASSERT_TRUE(a.r.flags & 0x0100, "RD copied");
		ASSERT_FALSE(a.r.flags & 0x0080, "RA clear");
	}
	if (ask(z, "svc1" CL, DNS_T_AAAA, &a))
		neg_ok(&a, 0, "cluster.local.", "svc1 AAAA NODATA");
	if (ask(z, "svc1" CL, DNS_T_TXT, &a))
		neg_ok(&a, 0, "cluster.local.", "svc1 TXT NODATA");
	if (ask(z, "svc6" CL, DNS_T_AAAA, &a) && ans_ok(&a, 0, 1, "svc6 AAAA"))
		SET(&a.r, 0, "svc6" CL ". AAAA 1234:abcd::1");
	if (ask(z, "dual" CL, DNS_T_A, &a) && ans_ok(&a, 0, 1, "dual A"))
		SET(&a.r, 0, "dual" CL ". A 10.0.0.3");
	if (ask(z, "dual" CL, DNS_T_AAAA, &a) && ans_ok(&a, 0, 1, "dual AAAA"))
		SET(&a.r, 0, "dual" CL ". AAAA 10::3");
	/* an endpoint name under a ClusterIP Service resolves to the endpoint */
	if (ask(z, "ep1a.svc1" CL, DNS_T_A, &a) && ans_ok(&a, 0, 1, "ep1a"))
		SET(&a.r, 0, "ep1a.svc1" CL ". A 172.0.0.1");
	dns_zone_free(z);
}

TEST(zone_srv)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	if (ask(z, "_http._tcp.svc1" CL, DNS_T_SRV, &a) && ans_ok(&a, 0, 1, "svc1 SRV")) {
		SET(&a.r, 0, "_http._tcp.svc1" CL ". SRV 0 100 80 svc1" CL ".");
		SET(&a.r, 2, "svc1" CL ". A 10.0.0.1");
	}
	if (ask(z, "_HTTP._TCP.svc1" CL, DNS_T_SRV, &a))
		ans_ok(&a, 0, 1, "port and proto match case-insensitively");
	if (ask(z, "_https._tcp.svc1" CL, DNS_T_SRV, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "unknown port NX");
	if (ask(z, "_http._udp.svc1" CL, DNS_T_SRV, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "wrong proto NX");
	if (ask(z, "_http._tcp.svc1" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_NOERROR, "cluster.local.", "port name A is NODATA");
	/* bare name: one SRV per port; both families as glue; weight 100/2 */
	if (ask(z, "dual" CL, DNS_T_SRV, &a) && ans_ok(&a, 0, 2, "dual SRV")) {
		SET(&a.r, 0, "dual" CL ". SRV 0 50 80 dual" CL ".",
		    "dual" CL ". SRV 0 50 81 dual" CL ".");
		SET(&a.r, 2, "dual" CL ". A 10.0.0.3", "dual" CL ". AAAA 10::3");
	}
	/* unnamed ports have no _port name */
	if (ask(z, "_81._tcp.dual" CL, DNS_T_SRV, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "unnamed port");
	if (ask(z, "_http._tcp.hdls1" CL, DNS_T_SRV, &a) && ans_ok(&a, 0, 5, "hdls1 SRV")) {
		SET(&a.r, 0, "_http._tcp.hdls1" CL ". SRV 0 20 80 172-0-0-2.hdls1" CL ".",
		    "_http._tcp.hdls1" CL ". SRV 0 20 80 172-0-0-3.hdls1" CL ".",
		    "_http._tcp.hdls1" CL ". SRV 0 20 80 dup-name.hdls1" CL ".",
		    "_http._tcp.hdls1" CL ". SRV 0 20 80 5678-abcd--1.hdls1" CL ".",
		    "_http._tcp.hdls1" CL ". SRV 0 20 80 5678-abcd--2.hdls1" CL ".");
		SET(&a.r, 2, "172-0-0-2.hdls1" CL ". A 172.0.0.2",
		    "172-0-0-3.hdls1" CL ". A 172.0.0.3", "dup-name.hdls1" CL ". A 172.0.0.4",
		    "dup-name.hdls1" CL ". A 172.0.0.5",
		    "5678-abcd--1.hdls1" CL ". AAAA 5678:abcd::1",
		    "5678-abcd--2.hdls1" CL ". AAAA 5678:abcd::2");
	}
	dns_zone_free(z);
}

TEST(zone_headless)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	/* 172.0.0.9 is not ready; 172.0.0.2 appears in two slices */
	if (ask(z, "hdls1" CL, DNS_T_A, &a) && ans_ok(&a, 0, 4, "hdls1 A"))
		SET(&a.r, 0, "hdls1" CL ". A 172.0.0.2", "hdls1" CL ". A 172.0.0.3",
		    "hdls1" CL ". A 172.0.0.4", "hdls1" CL ". A 172.0.0.5");
	if (ask(z, "hdls1" CL, DNS_T_AAAA, &a) && ans_ok(&a, 0, 2, "hdls1 AAAA"))
		SET(&a.r, 0, "hdls1" CL ". AAAA 5678:abcd::1", "hdls1" CL ". AAAA 5678:abcd::2");
	if (ask(z, "dup-name.hdls1" CL, DNS_T_A, &a) && ans_ok(&a, 0, 2, "dup-name"))
		SET(&a.r, 0, "dup-name.hdls1" CL ". A 172.0.0.4",
		    "dup-name.hdls1" CL ". A 172.0.0.5");
	if (ask(z, "172-0-0-2.hdls1" CL, DNS_T_A, &a) && ans_ok(&a, 0, 1, "dashed"))
		SET(&a.r, 0, "172-0-0-2.hdls1" CL ". A 172.0.0.2");
	if (ask(z, "5678-abcd--1.hdls1" CL, DNS_T_AAAA, &a) && ans_ok(&a, 0, 1, "dashed v6"))
		SET(&a.r, 0, "5678-abcd--1.hdls1" CL ". AAAA 5678:abcd::1");
	if (ask(z, "5678-abcd--1.hdls1" CL, DNS_T_A, &a))
		neg_ok(&a, 0, "cluster.local.", "v6 endpoint A is NODATA");
	if (ask(z, "172-0-0-9.hdls1" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "not-ready endpoint");
	if (ask(z, "hdlsempty" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "no ready endpoint: NX");
	if (ask(z, "hdlsempty" CL, DNS_T_AAAA, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "no ready endpoint: NX AAAA");
	dns_zone_free(z);
}

TEST(zone_external_name)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	if (ask(z, "external" CL, DNS_T_CNAME, &a) && ans_ok(&a, 0, 1, "CNAME")) {
		SET(&a.r, 0, "external" CL ". CNAME ext.interwebs.test.");
		ASSERT_FALSE(a.res.cname, "no chase for a CNAME query");
	}
	if (ask(z, "external" CL, DNS_T_A, &a) && ans_ok(&a, 0, 1, "A -> CNAME")) {
		SET(&a.r, 0, "external" CL ". CNAME ext.interwebs.test.");
		ASSERT_TRUE(a.res.cname, "server should chase");
		ASSERT_STREQ(a.res.cname_target, "ext.interwebs.test", "target");
	}
	if (ask(z, "ext2svc" CL, DNS_T_A, &a) && ans_ok(&a, 0, 2, "in-zone target followed")) {
		ASSERT_STREQ(a.r.rr[0][0], "ext2svc" CL ". CNAME svc1" CL ".", "CNAME first");
		ASSERT_STREQ(a.r.rr[0][1], "svc1" CL ". A 10.0.0.1", "then the target");
		ASSERT_FALSE(a.res.cname, "nothing left to chase");
	}
	if (ask(z, "external" CL, DNS_T_SRV, &a))
		neg_ok(&a, 0, "cluster.local.", "SRV on ExternalName NODATA");
	if (ask(z, "endpoint.external" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "below ExternalName NX");
	if (ask(z, "extip" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "IP literal not served");
	dns_zone_free(z);
}

TEST(zone_nxdomain_vs_nodata)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	static const struct {
		const char *name;
		uint16_t type;
		int rcode;
	} tbl[] = {
		{"cluster.local", DNS_T_A, DNS_R_NOERROR},
		{"svc.cluster.local", DNS_T_A, DNS_R_NOERROR},
		{"svc.cluster.local", DNS_T_NS, DNS_R_NOERROR},
		{"pod.cluster.local", DNS_T_A, DNS_R_NOERROR},
		{"testns.svc.cluster.local", DNS_T_A, DNS_R_NOERROR},
		{"testns.svc.cluster.local", DNS_T_NS, DNS_R_NOERROR},
		{"podns.pod.cluster.local", DNS_T_A, DNS_R_NOERROR},
		{"nsnoexist.svc.cluster.local", DNS_T_A, DNS_R_NXDOMAIN},
		{"svc1.nsnoexist.svc.cluster.local", DNS_T_A, DNS_R_NXDOMAIN},
		{"foo.cluster.local", DNS_T_NS, DNS_R_NXDOMAIN},
		{"foo.svc.cluster.local", DNS_T_NS, DNS_R_NXDOMAIN},
		{"svc0" CL, DNS_T_A, DNS_R_NXDOMAIN},
		{"svc0" CL, DNS_T_TXT, DNS_R_NXDOMAIN},
		{"bogusendpoint.hdls1" CL, DNS_T_A, DNS_R_NXDOMAIN},
		{"bogusendpoint.svc0" CL, DNS_T_A, DNS_R_NXDOMAIN},
		{"a.b._http._tcp.svc1" CL, DNS_T_A, DNS_R_NXDOMAIN},
		{"svc1" CL, DNS_T_MX, DNS_R_NOERROR},
		{"svc1" CL, DNS_T_SOA, DNS_R_NOERROR},
		{"blah.podns.pod.cluster.local", DNS_T_A, DNS_R_NXDOMAIN},
		{"1-2-3-4.pod-nons.pod.cluster.local", DNS_T_A, DNS_R_NXDOMAIN},
		{"dns.cluster.local", DNS_T_A, DNS_R_NOERROR},
		{"cluster.local", DNS_T_SRV, DNS_R_NOERROR},
	};
	struct ask a;

	if (!z)
		return;
	for (size_t i = 0; i < sizeof(tbl) / sizeof(tbl[0]); i++)
		if (ask(z, tbl[i].name, tbl[i].type, &a))
			neg_ok(&a, tbl[i].rcode, "cluster.local.", tbl[i].name);
	/* the SOA: TTL min(ttl, 300), minimum = ttl, serial = commit time */
	/* cppcheck-suppress invalidPrintfArgType_sint ; misreads the macro */
	if (ask(z, "svc0" CL, DNS_T_A, &a) && ASSERT_EQ(a.r.n[1], 1, "soa")) {
		char want[256] = "";
		struct dns_zone_stats st;

		dns_zone_stats(z, &st);
		/* cppcheck-suppress nullPointerRedundantCheck ; want is an array */
		snprintf(want, sizeof(want),
			 "cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. %u "
			 "min=5 ttl=5",
			 st.serial);
		ASSERT_STREQ(a.r.rr[1][0], want, "SOA contents");
		ASSERT_EQ(st.services, 8, "services counted");
		ASSERT_EQ(st.namespaces, 2, "namespaces");
		ASSERT_EQ(st.endpoints, 7, "ready endpoint addresses, deduplicated");
	}
	/* outside the zone: not ours, nothing written */
	if (ask(z, "example.com", DNS_T_A, &a)) {
		ASSERT_FALSE(a.res.ours, "example.com forwarded");
		ASSERT_EQ(a.r.n[0] + a.r.n[1] + a.r.n[2], 0, "nothing written");
	}
	if (ask(z, "xcluster.local", DNS_T_A, &a))
		ASSERT_FALSE(a.res.ours, "suffix on a label boundary only");
	dns_zone_free(z);
}

TEST(zone_case_preserved)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	if (ask(z, "SvC1.TeStNs.SvC.cLuStEr.LoCaL", DNS_T_A, &a) && ans_ok(&a, 0, 1, "mixed case"))
		SET(&a.r, 0, "SvC1.TeStNs.SvC.cLuStEr.LoCaL. A 10.0.0.1");
	if (ask(z, "_HtTp._TcP.sVc1.tEsTnS.SvC.cLuStEr.LoCaL", DNS_T_SRV, &a) &&
	    ans_ok(&a, 0, 1, "mixed SRV"))
		SET(&a.r, 0,
		    "_HtTp._TcP.sVc1.tEsTnS.SvC.cLuStEr.LoCaL. SRV 0 100 80 "
		    "svc1.testns.svc.cLuStEr.LoCaL.");
	if (ask(z, "NoPe.TeStNs.SvC.CLUSTER.local", DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "CLUSTER.local.", "SOA owner in query case");
	dns_zone_free(z);
}

TEST(zone_pods_modes)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	if (ask(z, "10-240-0-1.podns.pod.cluster.local", DNS_T_A, &a) &&
	    ans_ok(&a, 0, 1, "insecure"))
		SET(&a.r, 0, "10-240-0-1.podns.pod.cluster.local. A 10.240.0.1");
	if (ask(z, "172-0-0-2.podns.pod.cluster.local", DNS_T_A, &a))
		ans_ok(&a, 0, 1, "insecure echoes any IP");
	if (ask(z, "10-240-0-1.podns.pod.cluster.local", DNS_T_AAAA, &a))
		neg_ok(&a, 0, "cluster.local.", "wrong family NODATA");
	if (ask(z, "fd00--1.podns.pod.cluster.local", DNS_T_AAAA, &a) && ans_ok(&a, 0, 1, "v6 pod"))
		SET(&a.r, 0, "fd00--1.podns.pod.cluster.local. AAAA fd00::1");
	dns_zone_free(z);

	z = zone_fixture(DNS_PODS_VERIFIED);
	if (!z)
		return;
	if (ask(z, "10-240-0-1.podns.pod.cluster.local", DNS_T_A, &a))
		ans_ok(&a, 0, 1, "verified: existing pod");
	if (ask(z, "172-0-0-2.podns.pod.cluster.local", DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "verified: no such pod");
	if (ask(z, "10-240-0-1.testns.pod.cluster.local", DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "verified: other namespace");
	dns_zone_free(z);

	z = zone_fixture(DNS_PODS_DISABLED);
	if (!z)
		return;
	if (ask(z, "10-240-0-1.podns.pod.cluster.local", DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "disabled");
	dns_zone_free(z);
}

TEST(zone_ptr)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	if (ask(z, "1.0.0.10.in-addr.arpa", DNS_T_PTR, &a) && ans_ok(&a, 0, 1, "ClusterIP PTR"))
		SET(&a.r, 0, "1.0.0.10.in-addr.arpa. PTR svc1" CL ".");
	if (ask(z, "1.0.0.172.in-addr.arpa", DNS_T_PTR, &a) && ans_ok(&a, 0, 1, "endpoint PTR"))
		SET(&a.r, 0, "1.0.0.172.in-addr.arpa. PTR ep1a.svc1" CL ".");
	if (ask(z, "4.0.0.172.IN-ADDR.ARPA", DNS_T_PTR, &a) && ans_ok(&a, 0, 1, "hostname PTR"))
		SET(&a.r, 0, "4.0.0.172.IN-ADDR.ARPA. PTR dup-name.hdls1" CL ".");
	if (ask(z, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.8.7.6.5.ip6.arpa",
		DNS_T_PTR, &a) &&
	    ans_ok(&a, 0, 1, "v6 PTR"))
		SET(&a.r, 0,
		    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.8.7.6.5.ip6.arpa. PTR "
		    "5678-abcd--1.hdls1" CL ".");
	if (ask(z, "1.0.0.172.in-addr.arpa", DNS_T_A, &a))
		neg_ok(&a, 0, "in-addr.arpa.", "known IP, other type: NODATA");
	if (ask(z, "99.0.0.10.in-addr.arpa", DNS_T_PTR, &a))
		ASSERT_FALSE(a.res.ours, "unknown IP falls through");
	if (ask(z, "0.10.in-addr.arpa", DNS_T_PTR, &a))
		ASSERT_FALSE(a.res.ours, "partial reverse name falls through");
	if (ask(z, "9.0.0.172.in-addr.arpa", DNS_T_PTR, &a))
		ASSERT_FALSE(a.res.ours, "not-ready endpoint has no PTR");
	dns_zone_free(z);
}

TEST(zone_apex_any_axfr)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	if (ask(z, "cluster.local", DNS_T_SOA, &a) && ans_ok(&a, 0, 1, "apex SOA"))
		ASSERT_EQ(a.r.n[1], 0, "SOA only in the answer");
	if (ask(z, "cluster.local", DNS_T_NS, &a) && ans_ok(&a, 0, 1, "apex NS")) {
		SET(&a.r, 0, "cluster.local. NS ns.dns.cluster.local.");
		SET(&a.r, 2, "ns.dns.cluster.local. A 127.0.0.1");
	}
	if (ask(z, "ns.dns.cluster.local", DNS_T_A, &a) && ans_ok(&a, 0, 1, "ns.dns A"))
		SET(&a.r, 0, "ns.dns.cluster.local. A 127.0.0.1");
	if (ask(z, "svc1" CL, DNS_T_ANY, &a) && ans_ok(&a, 0, 1, "ANY"))
		SET(&a.r, 0, "svc1" CL ". HINFO \"RFC8482\"");
	if (ask(z, "svc0" CL, DNS_T_ANY, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "ANY on a missing name");
	if (ask(z, "cluster.local", DNS_T_AXFR, &a)) {
		ASSERT_TRUE(a.res.ours, "ours");
		ASSERT_EQ(a.r.rcode, DNS_R_REFUSED, "AXFR refused");
		ASSERT_EQ(a.r.n[0] + a.r.n[1], 0, "nothing else");
	}
	if (ask(z, "cluster.local", DNS_T_IXFR, &a))
		ASSERT_EQ(a.r.rcode, DNS_R_REFUSED, "IXFR refused");
	dns_zone_free(z);
}

TEST(zone_servfail_before_sync)
{
	struct dns_zone_opts o = {.zone = "cluster.local"};
	struct dns_zone *z = dns_zone_new(&o);
	struct ask a;

	if (!ASSERT_NOT_NULL(z, "new"))
		return;
	/* nothing committed at all */
	if (ask(z, "svc1" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_SERVFAIL, "cluster.local.", "no snapshot");
	if (ask(z, "example.com", DNS_T_A, &a))
		ASSERT_FALSE(a.res.ours, "forwarding works before sync");
	ASSERT_OK(add_json(z, K8S_KIND_NAMESPACE, NSJ("testns")), "ns");
	ASSERT_OK(dns_zone_commit(z), "commit");
	ASSERT_FALSE(dns_zone_synced(z), "not synced");
	if (ask(z, "svc1" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_SERVFAIL, "cluster.local.", "would-be NX is SERVFAIL");
	if (ask(z, "testns.svc.cluster.local", DNS_T_A, &a))
		neg_ok(&a, DNS_R_NOERROR, "cluster.local.", "NODATA stays NODATA");
	dns_zone_set_synced(z, true);
	if (ask(z, "svc1" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "NX after sync");
	dns_zone_free(z);
}

TEST(zone_updates_and_delete)
{
	struct dns_zone *z = zone_fixture(DNS_PODS_INSECURE);
	struct ask a;

	if (!z)
		return;
	ASSERT_OK(add_json(z, K8S_KIND_SERVICE,
			   "{\"metadata\":{\"name\":\"svc1\",\"namespace\":\"testns\"},\"spec\":"
			   "{\"clusterIP\":\"10.0.0.99\",\"ports\":[{\"name\":\"http\",\"port\":80}"
			   "]}}"),
		  "update");
	if (ask(z, "svc1" CL, DNS_T_A, &a))
		SET(&a.r, 0, "svc1" CL ". A 10.0.0.1"); /* not visible before commit */
	ASSERT_OK(dns_zone_commit(z), "commit");
	if (ask(z, "svc1" CL, DNS_T_A, &a))
		SET(&a.r, 0, "svc1" CL ". A 10.0.0.99");
	ASSERT_OK(del_json(z, K8S_KIND_SERVICE,
			   "{\"metadata\":{\"name\":\"svc1\",\"namespace\":\"testns\"}}"),
		  "delete");
	ASSERT_OK(dns_zone_commit(z), "commit");
	if (ask(z, "svc1" CL, DNS_T_A, &a))
		neg_ok(&a, DNS_R_NXDOMAIN, "cluster.local.", "deleted");
	if (ask(z, "1.0.0.172.in-addr.arpa", DNS_T_PTR, &a))
		ASSERT_FALSE(a.res.ours, "endpoint PTR gone with its Service");
	ASSERT_OK(del_json(z, K8S_KIND_ENDPOINTSLICE,
			   "{\"metadata\":{\"name\":\"hdls1-a\",\"namespace\":\"testns\"}}"),
		  "delete slice");
	ASSERT_OK(dns_zone_commit(z), "commit");
	if (ask(z, "hdls1" CL, DNS_T_A, &a) && ans_ok(&a, 0, 1, "slice removed"))
		SET(&a.r, 0, "hdls1" CL ". A 172.0.0.2"); /* still in hdls1-c */
	dns_zone_free(z);
}

static struct dns_zone *big_headless(int n)
{
	struct dns_zone_opts o = {.zone = "cluster.local", .ttl = 30};
	struct dns_zone *z = dns_zone_new(&o);
	char *js = malloc(64 * (size_t)n + 512);
	size_t p;

	if (!z || !js)
		goto fail;
	if (add_json(z, K8S_KIND_NAMESPACE, NSJ("big")) ||
	    add_json(z, K8S_KIND_SERVICE,
		     "{\"metadata\":{\"name\":\"many\",\"namespace\":\"big\"},\"spec\":{"
		     "\"clusterIP\":"
		     "\"None\",\"ports\":[{\"name\":\"http\",\"port\":80}]}}"))
		goto fail;
	p = (size_t)sprintf(js,
			    "{\"metadata\":{\"name\":\"many-1\",\"namespace\":\"big\",\"labels\":"
			    "{\"kubernetes.io/service-name\":\"many\"}},\"addressType\":\"IPv4\","
			    "\"ports\":[{\"name\":\"http\",\"port\":80}],\"endpoints\":[");
	for (int i = 0; i < n; i++)
		p += (size_t)sprintf(js + p, "%s{\"addresses\":[\"10.1.%d.%d\"]}", i ? "," : "",
				     i / 250, i % 250 + 1);
	strcpy(js + p, "]}");
	if (add_json(z, K8S_KIND_ENDPOINTSLICE, js) || dns_zone_commit(z))
		goto fail;
	dns_zone_set_synced(z, true);
	free(js);
	return z;
fail:
	free(js);
	dns_zone_free(z);
	return NULL;
}

TEST(zone_truncation_large_headless)
{
	struct dns_zone *z = big_headless(100);
	struct ask a;

	if (!ASSERT_NOT_NULL(z, "fixture"))
		return;
	if (ask(z, "many.big.svc.cluster.local", DNS_T_A, &a)) {
		ASSERT_TRUE(a.r.tc, "TC at 512");
		ASSERT_TRUE(a.len <= 512, "fits 512");
		ASSERT_TRUE(a.r.n[0] > 20 && a.r.n[0] < 100, "a prefix of the answer");
		ASSERT_EQ(a.r.n[1], 0, "no SOA in a truncated answer");
	}
	if (ask_cap(z, "many.big.svc.cluster.local", DNS_T_A, 1232, 0, &a)) {
		/* 16 bytes per compressed A: 1232 holds about 70 */
		ASSERT_TRUE(a.len <= 1232 && a.len > 1232 - 16, "filled to the EDNS size");
		ASSERT_TRUE(a.r.tc, "TC");
		ASSERT_TRUE(a.r.n[0] > 60, "most");
		ASSERT_STREQ(a.r.rr[2][a.r.n[2] - 1], "OPT 1232", "OPT last, our size");
	}
	if (ask_cap(z, "many.big.svc.cluster.local", DNS_T_A, 4096, 0, &a))
		ASSERT_TRUE(a.len <= 1232 && a.r.tc, "client's 4096 capped at 1232");
	if (ask_cap(z, "many.big.svc.cluster.local", DNS_T_A, 0, DNS_MAX_MSG, &a)) {
		ASSERT_FALSE(a.r.tc, "TCP: no TC");
		ASSERT_EQ(a.r.n[0], 100, "TCP: all 100");
		ASSERT_EQ(a.len, 12 + 32 + 100 * 16, "every owner compressed to the question");
	}
	if (ask_cap(z, "_http._tcp.many.big.svc.cluster.local", DNS_T_SRV, 1232, 0, &a)) {
		ASSERT_TRUE(a.r.tc, "100 SRV do not fit 1232");
		ASSERT_TRUE(a.len <= 1232, "limit held");
		ASSERT_STREQ(a.r.rr[2][a.r.n[2] - 1], "OPT 1232", "OPT kept when truncated");
	}
	/* TCP: everything, SRV weights 100/100 = 1, glue for every target */
	if (ask_cap(z, "_http._tcp.many.big.svc.cluster.local", DNS_T_SRV, 0, DNS_MAX_MSG, &a)) {
		ASSERT_FALSE(a.r.tc, "TCP holds all");
		ASSERT_EQ(a.r.n[0], 100, "100 SRV");
		ASSERT_EQ(a.r.n[2], 100, "100 glue A");
		ASSERT_STREQ(a.r.rr[0][0],
			     "_http._tcp.many.big.svc.cluster.local. SRV 0 1 80 "
			     "10-1-0-1.many.big.svc.cluster.local.",
			     "first SRV");
	}
	dns_zone_free(z);
}

/* Readers answering while the writer commits: ASan catches a snapshot freed under a reader. */
struct race {
	struct dns_zone *z;
	atomic_bool stop;
	atomic_int bad;
	atomic_long answers;
};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	uint8_t qb[512], out[1232];
	struct dns_query q = {0};
	struct dns_writer w;
	struct dns_zone_result res;
	int rcode = 0;
	size_t ql = build_query(qb, "many.big.svc.cluster.local", DNS_T_A, 1232);

	if (dns_query_parse(qb, ql, &q, &rcode))
		atomic_store(&r->bad, 1);
	while (!atomic_load(&r->stop)) {
		dns_writer_begin(&w, out, sizeof(out), &q, false, 0);
		if (dns_zone_answer(r->z, &q, &w, &res) || !res.ours || res.rcode != 0)
			atomic_store(&r->bad, 1);
		dns_writer_end(&w);
		atomic_fetch_add(&r->answers, 1);
	}
	return NULL;
}

TEST(zone_readers_race_commits)
{
	struct race r = {.z = big_headless(50)};
	pthread_t th[4];
	int started = 0;

	if (!ASSERT_NOT_NULL(r.z, "fixture"))
		return;
	for (; started < 4; started++)
		if (pthread_create(&th[started], NULL, race_reader, &r))
			break;
	ASSERT_EQ(started, 4, "threads");
	for (int i = 0; i < 300; i++)
		if (!ASSERT_OK(dns_zone_commit(r.z), "commit"))
			break;
	atomic_store(&r.stop, true);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(atomic_load(&r.bad), 0, "every answer good");
	ASSERT_TRUE(atomic_load(&r.answers) > 0, "readers ran");
	dns_zone_free(r.z);
}

/* --- incremental commits ---------------------------------------------------------------------- */

/* Moves one slice between Services, deletes a Service under its slice, shares an IP. */
TEST(zone_incremental_updates)
{
	struct dns_zone_opts o = {.zone = "cluster.local", .ttl = 30};
	struct dns_zone *z = dns_zone_new(&o);
	struct dns_zone_stats st;
	struct ask a;

	if (!ASSERT_NOT_NULL(z, "zone"))
		return;
	dns_zone_set_synced(z, true);
	if (!ASSERT_OK(add_json(z, K8S_KIND_SERVICE,
				"{\"metadata\":{\"name\":\"a\",\"namespace\":\"n1\"},\"spec\":{"
				"\"clusterIP\":\"None\"}}"),
		       "svc a") ||
	    !ASSERT_OK(add_json(z, K8S_KIND_SERVICE,
				"{\"metadata\":{\"name\":\"b\",\"namespace\":\"n1\"},\"spec\":{"
				"\"clusterIP\":\"None\"}}"),
		       "svc b") ||
	    !ASSERT_OK(add_json(z, K8S_KIND_ENDPOINTSLICE,
				"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n1\",\"labels\":{"
				"\"kubernetes.io/service-name\":\"a\"}},\"addressType\":\"IPv4\","
				"\"endpoints\":[{\"addresses\":[\"10.9.0.1\"]}]}"),
		       "slice for a") ||
	    !ASSERT_OK(dns_zone_commit(z), "commit 1"))
		goto out;
	if (ask(z, "a.n1.svc.cluster.local", DNS_T_A, &a) && ans_ok(&a, 0, 1, "a has the slice"))
		ASSERT_STREQ(a.r.rr[0][0], "a.n1.svc.cluster.local. A 10.9.0.1", "a's A");
	if (ask(z, "b.n1.svc.cluster.local", DNS_T_A, &a))
		neg_ok(&a, 3, "cluster.local.", "b: headless without endpoints");
	/* the slice's label moves it to b: a loses the address, b gains it, PTR follows */
	if (!ASSERT_OK(add_json(z, K8S_KIND_ENDPOINTSLICE,
				"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n1\",\"labels\":{"
				"\"kubernetes.io/service-name\":\"b\"}},\"addressType\":\"IPv4\","
				"\"endpoints\":[{\"addresses\":[\"10.9.0.1\"]}]}"),
		       "slice to b") ||
	    !ASSERT_OK(dns_zone_commit(z), "commit 2"))
		goto out;
	if (ask(z, "a.n1.svc.cluster.local", DNS_T_A, &a))
		neg_ok(&a, 3, "cluster.local.", "a lost its endpoint");
	if (ask(z, "b.n1.svc.cluster.local", DNS_T_A, &a) && ans_ok(&a, 0, 1, "b has the slice"))
		ASSERT_STREQ(a.r.rr[0][0], "b.n1.svc.cluster.local. A 10.9.0.1", "b's A");
	if (ask(z, "1.0.9.10.in-addr.arpa", DNS_T_PTR, &a) && ans_ok(&a, 0, 1, "PTR moved"))
		ASSERT_STREQ(a.r.rr[0][0],
			     "1.0.9.10.in-addr.arpa. PTR 10-9-0-1.b.n1.svc.cluster.local.",
			     "PTR names b");
	/* b deleted and re-added: its slice is still there and feeds it again */
	if (!ASSERT_OK(del_json(z, K8S_KIND_SERVICE,
				"{\"metadata\":{\"name\":\"b\",\"namespace\":\"n1\"}}"),
		       "delete b") ||
	    !ASSERT_OK(dns_zone_commit(z), "commit 3"))
		goto out;
	if (ask(z, "b.n1.svc.cluster.local", DNS_T_A, &a))
		neg_ok(&a, 3, "cluster.local.", "b gone");
	if (ask(z, "1.0.9.10.in-addr.arpa", DNS_T_PTR, &a))
		ASSERT_FALSE(a.res.ours, "PTR gone with b");
	if (!ASSERT_OK(add_json(z, K8S_KIND_SERVICE,
				"{\"metadata\":{\"name\":\"b\",\"namespace\":\"n1\"},\"spec\":{"
				"\"clusterIP\":\"None\"}}"),
		       "b again") ||
	    !ASSERT_OK(dns_zone_commit(z), "commit 4"))
		goto out;
	if (ask(z, "b.n1.svc.cluster.local", DNS_T_A, &a))
		ans_ok(&a, 0, 1, "b fed by the kept slice");
	/* the last Service of n1 gone (no Namespace object): n1 leaves the zone */
	if (!ASSERT_OK(del_json(z, K8S_KIND_SERVICE,
				"{\"metadata\":{\"name\":\"a\",\"namespace\":\"n1\"}}"),
		       "delete a") ||
	    !ASSERT_OK(del_json(z, K8S_KIND_SERVICE,
				"{\"metadata\":{\"name\":\"b\",\"namespace\":\"n1\"}}"),
		       "delete b") ||
	    !ASSERT_OK(dns_zone_commit(z), "commit 5"))
		goto out;
	dns_zone_stats(z, &st);
	ASSERT_EQ(st.services, 0, "no services");
	ASSERT_EQ(st.endpoints, 0, "no endpoints");
	ASSERT_EQ(st.namespaces, 0, "n1 gone with its last Service");
	if (ask(z, "n1.svc.cluster.local", DNS_T_A, &a))
		neg_ok(&a, 3, "cluster.local.", "n1 NXDOMAIN");
out:
	dns_zone_free(z);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * The benchmark's shape at unit scale: 10,000 Services in 100 namespaces,
 * 1,000 EndpointSlices of 100 endpoints. Prints the cost of the full first
 * commit and of a commit after one new Service (not asserted: timing), and
 * checks the zone is right after both.
 */
TEST(zone_commit_cost_large)
{
	struct dns_zone_opts o = {.zone = "cluster.local", .ttl = 30};
	struct dns_zone *z = dns_zone_new(&o);
	char *js = malloc(100 * 64 + 512);
	struct dns_zone_stats st;
	double t0, t_full, t_one = 0;
	struct ask a;
	size_t p;
	int i;

	if (!ASSERT_NOT_NULL(z, "zone") || !ASSERT_NOT_NULL(js, "buffer"))
		goto out;
	dns_zone_set_synced(z, true);
	for (i = 0; i < 10000; i++) {
		snprintf(js, 512,
			 "{\"metadata\":{\"name\":\"s%d\",\"namespace\":\"ns%d\"},\"spec\":{"
			 "\"clusterIP\":\"10.%d.%d.%d\",\"ports\":[{\"name\":\"http\",\"port\":80}]"
			 "}}",
			 i, i % 100, 96 + i / 65536, i / 256 % 256, i % 256);
		if (!ASSERT_OK(add_json(z, K8S_KIND_SERVICE, js), "service"))
			goto out;
	}
	for (i = 0; i < 1000; i++) {
		p = (size_t)sprintf(
			js,
			"{\"metadata\":{\"name\":\"s%d-x\",\"namespace\":\"ns%d\","
			"\"labels\":{\"kubernetes.io/service-name\":\"s%d\"}},"
			"\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":"
			"8080}],\"endpoints\":[",
			i, i % 100, i);
		for (int e = 0; e < 100; e++)
			p += (size_t)sprintf(js + p, "%s{\"addresses\":[\"100.%d.%d.%d\"]}",
					     e ? "," : "", i / 256, i % 256, e + 1);
		strcpy(js + p, "]}");
		if (!ASSERT_OK(add_json(z, K8S_KIND_ENDPOINTSLICE, js), "slice"))
			goto out;
	}
	t0 = now_ms();
	if (!ASSERT_OK(dns_zone_commit(z), "full commit"))
		goto out;
	t_full = now_ms() - t0;
	for (int r = 0; r < 5; r++) {
		snprintf(js, 512,
			 "{\"metadata\":{\"name\":\"new%d\",\"namespace\":\"ns7\"},\"spec\":{"
			 "\"clusterIP\":\"10.200.0.%d\"}}",
			 r, r + 1);
		if (!ASSERT_OK(add_json(z, K8S_KIND_SERVICE, js), "new service"))
			goto out;
		t0 = now_ms();
		if (!ASSERT_OK(dns_zone_commit(z), "one-service commit"))
			goto out;
		t_one += now_ms() - t0;
	}
	dns_zone_stats(z, &st);
	printf("# 10,000 services + 1,000 slices x 100 endpoints: full commit %.2f ms, "
	       "commit after one new service %.3f ms (mean of 5), snapshot %zu KiB\n",
	       t_full, t_one / 5, st.snapshot_bytes / 1024);
	ASSERT_EQ(st.services, 10005, "services");
	ASSERT_EQ(st.endpoints, 100000, "endpoints");
	ASSERT_EQ(st.namespaces, 100, "namespaces");
	if (ask(z, "new4.ns7.svc.cluster.local", DNS_T_A, &a) && ans_ok(&a, 0, 1, "new service"))
		ASSERT_STREQ(a.r.rr[0][0], "new4.ns7.svc.cluster.local. A 10.200.0.5", "its A");
	if (ask(z, "s999.ns99.svc.cluster.local", DNS_T_A, &a) && ans_ok(&a, 0, 1, "old service"))
		ASSERT_STREQ(a.r.rr[0][0], "s999.ns99.svc.cluster.local. A 10.96.3.231", "its A");
	if (ask(z, "100.231.3.100.in-addr.arpa", DNS_T_PTR, &a) && ans_ok(&a, 0, 1, "endpoint PTR"))
		ASSERT_STREQ(a.r.rr[0][0],
			     "100.231.3.100.in-addr.arpa. PTR "
			     "100-3-231-100.s999.ns99.svc.cluster.local.",
			     "PTR target");
out:
	free(js);
	dns_zone_free(z);
}
