// SPDX-License-Identifier: Apache-2.0
/*
 * dns/wire.c: the query parser's RFC edge cases (short headers, responses,
 * opcodes, QDCOUNT, label and name limits, pointers in the question, loops in
 * the additional section, EDNS rules, trailing bytes, escapes) and the
 * encoder: round trips of every RR type through a small decoder, exact-case
 * compression, all-or-nothing truncation with TC, the OPT reserve, BADVERS.
 */
#include <arpa/inet.h>
#include <errno.h>

#include "harness.h"
#include "wire.h"

static size_t hdr(uint8_t *b, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
		  uint16_t ar)
{
	uint16_t v[6] = {id, flags, qd, an, ns, ar};

	for (size_t i = 0; i < 6; i++) {
		b[2 * i] = (uint8_t)(v[i] >> 8);
		b[2 * i + 1] = (uint8_t)v[i];
	}
	return 12;
}

static size_t put_q(uint8_t *b, size_t o, const char *name, uint16_t type)
{
	int n = dns_name_to_wire(name, b + o, 256);

	if (n < 0)
		return 0;
	o += (size_t)n;
	b[o++] = (uint8_t)(type >> 8);
	b[o++] = (uint8_t)type;
	b[o++] = 0;
	b[o++] = 1;
	return o;
}

static size_t put_opt(uint8_t *b, size_t o, uint16_t size, uint8_t version, bool dobit)
{
	const uint8_t opt[11] = {
		0, 0, 41, (uint8_t)(size >> 8), (uint8_t)size, 0, version, dobit ? 0x80 : 0,
		0, 0, 0};

	memcpy(b + o, opt, 11);
	return o + 11;
}

TEST(parse_plain_query)
{
	uint8_t b[512];
	struct dns_query q = {0};
	int rc = 0;
	size_t n = hdr(b, 0xbeef, 0x0110, 1, 0, 0, 0);

	n = put_q(b, n, "Web.Default.svc.cluster.local", DNS_T_AAAA);
	if (!ASSERT_OK(dns_query_parse(b, n, &q, &rc), "parse"))
		return;
	ASSERT_EQ(rc, DNS_R_NOERROR, "rcode");
	ASSERT_EQ(q.id, 0xbeef, "id");
	ASSERT_EQ(q.opcode, 0, "opcode");
	ASSERT_STREQ(q.qname, "Web.Default.svc.cluster.local", "qname case kept");
	ASSERT_EQ(q.qtype, DNS_T_AAAA, "qtype");
	ASSERT_EQ(q.qclass, 1, "qclass");
	ASSERT_EQ(q.qlabels, 5, "labels");
	ASSERT_EQ(q.qname_wire_len, 31, "wire length");
	ASSERT_EQ(q.question_end, n, "question end");
	ASSERT_FALSE(q.edns, "no EDNS");
	ASSERT_EQ(dns_query_udp_limit(&q), 512, "limit without EDNS");
}

TEST(parse_edns)
{
	uint8_t b[512];
	struct dns_query q = {0};
	int rc = 0;
	size_t n = put_q(b, hdr(b, 1, 0x0100, 1, 0, 0, 1), "a.b", DNS_T_A);
	size_t base = n;

	n = put_opt(b, base, 4096, 0, true);
	if (ASSERT_OK(dns_query_parse(b, n, &q, &rc), "edns")) {
		ASSERT_TRUE(q.edns && q.do_bit, "EDNS + DO");
		ASSERT_EQ(q.edns_udp, 4096, "size");
		ASSERT_EQ(dns_query_udp_limit(&q), DNS_EDNS_DEFAULT, "capped at ours");
	}
	n = put_opt(b, base, 100, 0, false);
	if (ASSERT_OK(dns_query_parse(b, n, &q, &rc), "small payload"))
		ASSERT_EQ(q.edns_udp, 512, "below 512 reads as 512");
	n = put_opt(b, base, 1232, 1, false);
	ASSERT_EQ(dns_query_parse(b, n, &q, &rc), -EPROTO, "version 1");
	ASSERT_EQ(rc, DNS_R_BADVERS, "BADVERS");
	ASSERT_STREQ(q.qname, "a.b", "question still filled for the reply");
	/* two OPTs */
	hdr(b, 1, 0x0100, 1, 0, 0, 2);
	n = put_opt(b, put_opt(b, base, 1232, 0, false), 1232, 0, false);
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "two OPT");
	ASSERT_EQ(rc, DNS_R_FORMERR, "FORMERR");
	/* OPT with a non-root owner */
	hdr(b, 1, 0x0100, 1, 0, 0, 1);
	n = base;
	b[n++] = 1;
	b[n++] = 'x';
	n = put_opt(b, n, 1232, 0, false);
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "OPT owner not root");
	/* a non-OPT additional record (owner compressed back to the question) is skipped */
	n = base;
	const uint8_t tsig[] = {0xc0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 2, 0xaa, 0xbb};

	memcpy(b + n, tsig, sizeof(tsig));
	n += sizeof(tsig);
	ASSERT_OK(dns_query_parse(b, n, &q, &rc), "other additional RR ignored");
}

TEST(parse_rejects)
{
	uint8_t b[600];
	struct dns_query q = {0};
	int rc = 0;
	size_t n;

	ASSERT_EQ(dns_query_parse(b, hdr(b, 1, 0x0100, 1, 0, 0, 0) - 1, &q, &rc), -EBADMSG,
		  "short header");
	ASSERT_EQ(rc, -1, "dropped");
	n = put_q(b, hdr(b, 1, 0x8100, 1, 0, 0, 0), "a", DNS_T_A);
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "response");
	ASSERT_EQ(rc, -1, "responses are dropped");
	n = put_q(b, hdr(b, 7, 2 << 11, 1, 0, 0, 0), "a", DNS_T_A);
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "opcode STATUS");
	ASSERT_EQ(rc, DNS_R_NOTIMP, "NOTIMP");
	ASSERT_EQ(q.id, 7, "id kept for the reply");
	n = hdr(b, 1, 0x0100, 0, 0, 0, 0);
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "qdcount 0");
	ASSERT_EQ(rc, DNS_R_FORMERR, "FORMERR");
	n = put_q(b, hdr(b, 1, 0x0100, 2, 0, 0, 0), "a", DNS_T_A);
	n = put_q(b, n, "b", DNS_T_A);
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "qdcount 2");
	ASSERT_EQ(rc, DNS_R_FORMERR, "FORMERR");
	n = put_q(b, hdr(b, 1, 0x0100, 1, 1, 0, 0), "a", DNS_T_A);
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "answer in a query");
	/* label of 64 (0x40 is a reserved label type too) */
	n = hdr(b, 1, 0x0100, 1, 0, 0, 0);
	b[n++] = 64;
	memset(b + n, 'a', 64);
	n += 64;
	b[n++] = 0;
	ASSERT_ERR(dns_query_parse(b, n + 4, &q, &rc), "label 64");
	ASSERT_EQ(rc, DNS_R_FORMERR, "FORMERR");
	/* name of 257 bytes: four 63-byte labels + one of 1 */
	n = hdr(b, 1, 0x0100, 1, 0, 0, 0);
	for (int i = 0; i < 4; i++) {
		b[n++] = 63;
		memset(b + n, 'a', 63);
		n += 63;
	}
	b[n++] = 1;
	b[n++] = 'b';
	b[n++] = 0;
	memset(b + n, 0, 4);
	b[n + 1] = 1;
	b[n + 3] = 1;
	ASSERT_ERR(dns_query_parse(b, n + 4, &q, &rc), "name > 255");
	/* exactly 255 is fine: four 62-byte labels + 3 + root = 4*63 + 2 + 1 */
	n = hdr(b, 1, 0x0100, 1, 0, 0, 0);
	for (int i = 0; i < 4; i++) {
		b[n++] = 62;
		memset(b + n, 'a', 62);
		n += 62;
	}
	b[n++] = 1;
	b[n++] = 'b';
	b[n++] = 0;
	memset(b + n, 0, 4);
	b[n + 1] = 1;
	b[n + 3] = 1;
	if (ASSERT_OK(dns_query_parse(b, n + 4, &q, &rc), "name of 255"))
		ASSERT_EQ(q.qname_wire_len, 255, "255");
	/* compression pointer in the question */
	n = hdr(b, 1, 0x0100, 1, 0, 0, 0);
	b[n++] = 0xc0;
	b[n++] = 12;
	ASSERT_ERR(dns_query_parse(b, n + 4, &q, &rc), "pointer in question");
	ASSERT_EQ(rc, DNS_R_FORMERR, "FORMERR");
	/* truncated question */
	n = put_q(b, hdr(b, 1, 0x0100, 1, 0, 0, 0), "abc.def", DNS_T_A);
	for (size_t cut = 13; cut < n; cut++)
		if (!ASSERT_ERR(dns_query_parse(b, cut, &q, &rc), "truncated question"))
			break;
	/* additional record whose name points forward to itself: a loop */
	n = put_q(b, hdr(b, 1, 0x0100, 1, 0, 0, 1), "a", DNS_T_A);
	b[n] = 0xc0;
	b[n + 1] = (uint8_t)n;
	ASSERT_ERR(dns_query_parse(b, n + 2 + 10, &q, &rc), "self pointer");
	ASSERT_EQ(rc, DNS_R_FORMERR, "FORMERR");
	/* additional record running past the end */
	n = put_opt(b, put_q(b, hdr(b, 1, 0x0100, 1, 0, 0, 1), "a", DNS_T_A), 1232, 0, false);
	b[n - 1] = 8; /* rdlen 8, no rdata */
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "rdata past the end");
	ASSERT_EQ(dns_query_parse(NULL, 0, &q, &rc), -EINVAL, "NULL");
}

TEST(parse_trailing_bytes_and_escapes)
{
	uint8_t b[512];
	struct dns_query q = {0};
	int rc = 0;
	size_t n = put_q(b, hdr(b, 1, 0x0100, 1, 0, 0, 0), "a.b", DNS_T_A);
	uint8_t wire[256];

	const uint8_t junk[4] = {'j', 'u', 'n', 'k'};

	memcpy(b + n, junk, sizeof(junk));
	ASSERT_OK(dns_query_parse(b, n + 4, &q, &rc), "trailing bytes ignored");
	/* a label holding '.', '\\', a space and 0xff */
	n = hdr(b, 1, 0x0100, 1, 0, 0, 0);
	const uint8_t lab[] = {5, 'a', '.', '\\', ' ', 0xff, 1, 'z', 0, 0, 1, 0, 1};

	memcpy(b + n, lab, sizeof(lab));
	if (ASSERT_OK(dns_query_parse(b, n + sizeof(lab), &q, &rc), "binary label")) {
		ASSERT_STREQ(q.qname, "a\\.\\\\\\032\\255.z", "escaped");
		ASSERT_EQ(q.qlabels, 2, "a dot inside a label is not a separator");
		ASSERT_EQ(dns_name_to_wire(q.qname, wire, sizeof(wire)), 9, "back to wire");
		ASSERT_TRUE(!memcmp(wire, lab, 9), "round trip");
	}
	/* root */
	n = put_q(b, hdr(b, 1, 0x0100, 1, 0, 0, 0), "", DNS_T_NS);
	if (ASSERT_OK(dns_query_parse(b, n, &q, &rc), "root"))
		ASSERT_STREQ(q.qname, "", "root is empty");
}

TEST(name_helpers)
{
	uint8_t w[300];
	char big[300];

	ASSERT_EQ(dns_name_to_wire("a.bc.", w, sizeof(w)), 6, "trailing dot");
	ASSERT_EQ(dns_name_to_wire(".", w, sizeof(w)), 1, "root");
	ASSERT_ERR(dns_name_to_wire("a..b", w, sizeof(w)), "empty label");
	ASSERT_ERR(dns_name_to_wire("a\\", w, sizeof(w)), "dangling escape");
	ASSERT_ERR(dns_name_to_wire("a\\256", w, sizeof(w)), "escape > 255");
	memset(big, 'a', 64);
	big[64] = 0;
	ASSERT_ERR(dns_name_to_wire(big, w, sizeof(w)), "label 64");
	for (int i = 0; i < 260; i++)
		big[i] = i % 2 ? '.' : 'a';
	big[259] = 0;
	ASSERT_ERR(dns_name_to_wire(big, w, sizeof(w)), "name > 255");
	ASSERT_TRUE(dns_name_eq("Foo.Bar.", "foo.bar"), "eq");
	ASSERT_FALSE(dns_name_eq("foo.bar", "foo.baz"), "neq");
	ASSERT_TRUE(dns_name_in("x.Cluster.Local", "cluster.local."), "in");
	ASSERT_TRUE(dns_name_in("cluster.local", "cluster.local"), "apex in");
	ASSERT_FALSE(dns_name_in("xcluster.local", "cluster.local"), "label boundary");
	ASSERT_FALSE(dns_name_in("a\\.cluster.local", "cluster.local"), "escaped dot");
	ASSERT_TRUE(dns_name_in("anything", ""), "root holds all");
}

/* --- encoder ---------------------------------------------------------------------------------- */

static bool make_query(struct dns_query *q, const char *name, uint16_t type, uint16_t edns)
{
	uint8_t b[512];
	int rc = 0;
	size_t n = put_q(b, hdr(b, 0x4242, 0x0110, 1, 0, 0, edns ? 1 : 0), name, type);

	if (edns)
		n = put_opt(b, n, edns, 0, true);
	return ASSERT_OK(dns_query_parse(b, n, q, &rc), "query");
}

/* Reads a (possibly compressed) name into text; false on a bad pointer. */
static bool rd_name(const uint8_t *m, size_t len, size_t *off, char *out)
{
	size_t o = *off, p = 0;
	bool jumped = false;

	for (int hops = 0; hops < 64; hops++) {
		if (o >= len)
			return false;
		if ((m[o] & 0xc0) == 0xc0) {
			if (!jumped)
				*off = o + 2;
			jumped = true;
			o = (size_t)(m[o] & 0x3f) << 8 | m[o + 1];
			continue;
		}
		if (!m[o]) {
			if (!jumped)
				*off = o + 1;
			out[p] = 0;
			return true;
		}
		if (p)
			out[p++] = '.';
		memcpy(out + p, m + o + 1, m[o]);
		p += m[o];
		o += 1u + m[o];
	}
	return false;
}

TEST(writer_round_trip_every_type)
{
	struct dns_query q = {0};
	uint8_t buf[1232];
	struct dns_writer w;
	char name[300];
	size_t off, n;
	struct dns_rr rr[8] = {
		{.name = "Svc.NS.svc.cluster.local",
		 .type = DNS_T_A,
		 .ttl = 5,
		 .rd.a = {10, 0, 0, 1}},
		{.name = "Svc.NS.svc.cluster.local", .type = DNS_T_AAAA, .ttl = 5},
		{.name = "x.NS.svc.cluster.local",
		 .type = DNS_T_CNAME,
		 .ttl = 5,
		 .rd.target = "Svc.NS.svc.cluster.local"},
		{.name = "1.0.0.10.in-addr.arpa",
		 .type = DNS_T_PTR,
		 .ttl = 5,
		 .rd.target = "svc.ns.svc.cluster.local"},
		{.name = "_http._tcp.Svc.NS.svc.cluster.local",
		 .type = DNS_T_SRV,
		 .ttl = 5,
		 .rd.srv = {0, 50, 80, "Svc.NS.svc.cluster.local"}},
		{.name = "cluster.local",
		 .type = DNS_T_SOA,
		 .ttl = 5,
		 .rd.soa = {"ns.dns.cluster.local", "hostmaster.cluster.local", 7, 7200, 1800,
			    86400, 30}},
		{.name = "dns-version.cluster.local",
		 .type = DNS_T_TXT,
		 .ttl = 28800,
		 .rd.txt.text = "1.1.0"},
		{.name = "Svc.NS.svc.cluster.local",
		 .type = DNS_T_HINFO,
		 .ttl = 5,
		 .rd.hinfo = {"RFC8482", ""}},
	};

	rr[1].rd.aaaa[15] = 1;
	if (!make_query(&q, "Svc.NS.svc.cluster.local", DNS_T_A, 1232) ||
	    !ASSERT_OK(dns_writer_begin(&w, buf, sizeof(buf), &q, true, DNS_R_NOERROR), "begin"))
		return;
	for (int i = 0; i < 8; i++)
		if (!ASSERT_OK(dns_writer_rr(&w, i < 5 ? 1 : i == 5 ? 2 : 3, &rr[i]), "rr"))
			return;
	ASSERT_OK(dns_writer_opt(&w, 1232), "opt");
	n = dns_writer_end(&w);
	ASSERT_EQ((int)buf[0] << 8 | buf[1], 0x4242, "id");
	ASSERT_EQ((int)buf[2], 0x85, "QR AA RD");
	ASSERT_EQ((int)buf[3], 0x10, "CD copied, RA clear, rcode 0");
	ASSERT_EQ((int)buf[7], 5, "ancount");
	ASSERT_EQ((int)buf[9], 1, "nscount");
	ASSERT_EQ((int)buf[11], 3, "arcount incl. OPT");
	/* walk and check every owner and the rdata names */
	off = 12;
	if (!ASSERT_TRUE(rd_name(buf, n, &off, name), "qname"))
		return;
	ASSERT_STREQ(name, "Svc.NS.svc.cluster.local", "question verbatim");
	off += 4;
	for (int i = 0; i < 8; i++) {
		size_t rd;
		uint16_t rdlen;

		if (!ASSERT_TRUE(rd_name(buf, n, &off, name), "owner"))
			return;
		ASSERT_STREQ(name, rr[i].name, "owner round trip, case kept");
		ASSERT_EQ((int)buf[off] << 8 | buf[off + 1], rr[i].type, "type");
		rdlen = (uint16_t)(buf[off + 8] << 8 | buf[off + 9]);
		off += 10;
		rd = off;
		switch (rr[i].type) {
		case DNS_T_A:
			ASSERT_TRUE(rdlen == 4 && !memcmp(buf + rd, rr[i].rd.a, 4), "A");
			break;
		case DNS_T_AAAA:
			ASSERT_TRUE(rdlen == 16 && !memcmp(buf + rd, rr[i].rd.aaaa, 16), "AAAA");
			break;
		case DNS_T_CNAME:
		case DNS_T_PTR:
			ASSERT_TRUE(rd_name(buf, n, &rd, name), "target");
			ASSERT_STREQ(name, rr[i].rd.target, "target round trip");
			break;
		case DNS_T_SRV:
			/* cppcheck-suppress invalidPrintfArgType_sint ; misreads the macro */
			ASSERT_EQ((int)buf[rd + 3], 50, "weight");
			ASSERT_EQ((int)buf[rd + 5], 80, "port");
			rd += 6;
			ASSERT_TRUE((buf[rd] & 0xc0) == 0, "SRV target not compressed (RFC 2782)");
			ASSERT_TRUE(rd_name(buf, n, &rd, name), "srv target");
			ASSERT_STREQ(name, "Svc.NS.svc.cluster.local", "srv target");
			break;
		case DNS_T_SOA:
			ASSERT_TRUE(rd_name(buf, n, &rd, name), "mname");
			ASSERT_STREQ(name, "ns.dns.cluster.local", "mname");
			ASSERT_TRUE(rd_name(buf, n, &rd, name), "rname");
			ASSERT_EQ(rd + 20, off + rdlen, "five u32");
			ASSERT_EQ((int)buf[rd + 19], 30, "minimum");
			break;
		case DNS_T_TXT:
			ASSERT_TRUE(rdlen == 6 && buf[rd] == 5 && !memcmp(buf + rd + 1, "1.1.0", 5),
				    "TXT");
			break;
		case DNS_T_HINFO:
			ASSERT_TRUE(rdlen == 9 && buf[rd] == 7 && buf[rd + 8] == 0, "HINFO");
			break;
		}
		off += rdlen;
	}
	ASSERT_EQ(n - off, 11, "OPT last");
	ASSERT_EQ((int)buf[off + 5], 0, "ext rcode 0");
	ASSERT_EQ((int)buf[off + 7], 0x80, "DO copied");
	/* owners equal to the qname are a pointer to offset 12 */
	ASSERT_EQ((int)buf[12 + q.qname_wire_len + 4], 0xc0, "compressed owner");
	ASSERT_EQ((int)buf[12 + q.qname_wire_len + 5], 12, "to the question");
}

TEST(writer_compression_keeps_case)
{
	struct dns_query q = {0};
	uint8_t buf[512] = {0};
	struct dns_writer w;
	char name[300];
	size_t off;
	struct dns_rr a = {.name = "svc.ns.svc.cluster.local", .type = DNS_T_A, .ttl = 5};

	if (!make_query(&q, "SVC.NS.svc.cluster.local", DNS_T_A, 0) ||
	    !ASSERT_OK(dns_writer_begin(&w, buf, sizeof(buf), &q, true, 0), "begin"))
		return;
	ASSERT_OK(dns_writer_rr(&w, 1, &a), "rr");
	size_t n = dns_writer_end(&w);

	off = 12 + q.qname_wire_len + 4;
	ASSERT_TRUE(rd_name(buf, n, &off, name), "owner");
	ASSERT_STREQ(name, "svc.ns.svc.cluster.local",
		     "lower-case owner not folded into the question");
	/* only the common exact suffix ".NS..." differs; "ns.svc.cluster.local" matched */
	ASSERT_EQ((int)buf[12 + q.qname_wire_len + 4], 3, "first label literal");
}

TEST(writer_truncation)
{
	struct dns_query q = {0};
	uint8_t buf[512] = {0};
	struct dns_writer w;
	struct dns_rr a = {.name = "x.example", .type = DNS_T_A, .ttl = 5, .rd.a = {1, 2, 3, 4}};
	int i, err = 0;
	size_t n, before;

	if (!make_query(&q, "x.example", DNS_T_A, 0) ||
	    !ASSERT_OK(dns_writer_begin(&w, buf, 100, &q, false, 0), "begin"))
		return;
	for (i = 0; i < 100 && !err; i++)
		err = dns_writer_rr(&w, 1, &a);
	ASSERT_EQ(err, -ENOSPC, "ENOSPC");
	ASSERT_TRUE(w.truncated, "truncated");
	before = w.len;
	ASSERT_EQ(dns_writer_rr(&w, 3, &a), -ENOSPC, "later RRs refused");
	ASSERT_EQ(w.len, before, "nothing partial written");
	n = dns_writer_end(&w);
	ASSERT_TRUE(n <= 100, "within cap");
	ASSERT_EQ((size_t)(12 + 15 + 16 * (i - 1)), n, "whole RRs only");
	ASSERT_TRUE(buf[2] & 0x02, "TC");
	ASSERT_EQ((int)buf[7], i - 1, "ancount counts what fit");
	/* with EDNS the OPT still fits after truncation */
	if (!make_query(&q, "x.example", DNS_T_A, 512) ||
	    !ASSERT_OK(dns_writer_begin(&w, buf, 100, &q, false, 0), "begin"))
		return;
	while (!dns_writer_rr(&w, 1, &a))
		;
	ASSERT_OK(dns_writer_opt(&w, 1232), "opt fits");
	n = dns_writer_end(&w);
	ASSERT_TRUE(n <= 100, "within cap with OPT");
	ASSERT_EQ((int)buf[11], 1, "arcount");
	/* cap smaller than the question */
	ASSERT_EQ(dns_writer_begin(&w, buf, 20, &q, false, 0), -ENOSPC, "no room for question");
	/* bad input */
	ASSERT_EQ(dns_writer_rr(NULL, 1, &a), -EINVAL, "NULL");
	if (ASSERT_OK(dns_writer_begin(&w, buf, 512, &q, false, 0), "begin")) {
		struct dns_rr bad = a;

		bad.name = "a..b";
		ASSERT_EQ(dns_writer_rr(&w, 1, &bad), -EINVAL, "bad owner");
		ASSERT_EQ(dns_writer_rr(&w, 4, &a), -EINVAL, "bad section");
		bad = a;
		bad.type = DNS_T_MX;
		ASSERT_EQ(dns_writer_rr(&w, 1, &bad), -EINVAL, "unsupported type");
		ASSERT_FALSE(w.truncated, "errors are not truncation");
	}
}

TEST(writer_error_replies)
{
	struct dns_query q = {0};
	uint8_t b[512] = {0}, buf[512] = {0};
	struct dns_writer w;
	int rc = 0;
	size_t n =
		put_opt(b, put_q(b, hdr(b, 9, 0x0100, 1, 0, 0, 1), "a.b", DNS_T_A), 1232, 3, false);

	ASSERT_EQ(dns_query_parse(b, n, &q, &rc), -EPROTO, "badvers");
	if (!ASSERT_OK(dns_writer_begin(&w, buf, sizeof(buf), &q, false, rc), "begin"))
		return;
	ASSERT_OK(dns_writer_opt(&w, 1232), "opt");
	n = dns_writer_end(&w);
	ASSERT_EQ((int)buf[3] & 0xf, 0, "header rcode 0");
	ASSERT_EQ((int)buf[n - 11 + 5], 1, "OPT ext rcode 1 = BADVERS 16");
	/* FORMERR for QDCOUNT 2: no question echoed */
	n = put_q(b, hdr(b, 9, 0x0100, 2, 0, 0, 0), "a", DNS_T_A);
	ASSERT_ERR(dns_query_parse(b, n, &q, &rc), "qd2");
	if (ASSERT_OK(dns_writer_begin(&w, buf, sizeof(buf), &q, false, rc), "begin")) {
		ASSERT_OK(dns_writer_opt(&w, 1232), "no OPT to a non-EDNS client");
		n = dns_writer_end(&w);
		ASSERT_EQ(n, 12, "header only");
		ASSERT_EQ((int)buf[3] & 0xf, DNS_R_FORMERR, "FORMERR");
		ASSERT_EQ((int)buf[5], 0, "qdcount 0");
	}
}
