/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS wire format (RFC 1035, 3596, 2782, 6891, 8482): a bounds-checked parser
 * for queries (and, for the forwarder, responses) and an encoder with name
 * compression and truncation. Every read goes through sl_cursor; a malformed
 * packet is an error, never an overread. No allocation per packet: the
 * caller provides the buffers (per-worker arenas).
 */
#ifndef SLUICE_DNS_WIRE_H
#define SLUICE_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_NAME	 255  /* wire length of a name, RFC 1035 §3.1 */
#define DNS_MAX_UDP	 512  /* without EDNS */
#define DNS_EDNS_DEFAULT 1232 /* our advertised/used EDNS UDP payload (DNS flag day 2020) */
#define DNS_MAX_MSG	 65535
#define DNS_MAX_LABEL	 63
/* Presentation form of the longest name: every byte may need a \DDD escape. */
#define DNS_MAX_PNAME (4 * DNS_MAX_NAME + 1)

enum dns_type {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_SOA = 6,
	DNS_T_PTR = 12,
	DNS_T_HINFO = 13,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
	DNS_T_SRV = 33,
	DNS_T_OPT = 41,
	DNS_T_AXFR = 252,
	DNS_T_IXFR = 251,
	DNS_T_ANY = 255,
};

enum dns_rcode {
	DNS_R_NOERROR = 0,
	DNS_R_FORMERR = 1,
	DNS_R_SERVFAIL = 2,
	DNS_R_NXDOMAIN = 3,
	DNS_R_NOTIMP = 4,
	DNS_R_REFUSED = 5,
	DNS_R_BADVERS = 16, /* extended rcode (RFC 6891): needs an OPT in the reply */
};

#define DNS_CLASS_IN 1

/* A parsed query: the header fields we answer from and the one question. */
struct dns_query {
	uint16_t id;
	uint16_t flags; /* raw header flags (opcode, RD, CD, ...) */
	uint8_t opcode;
	uint16_t qdcount, ancount, nscount, arcount;
	char qname[DNS_MAX_PNAME];	  /* presentation form, original case, no trailing dot
					     ("" for the root); '.', '\\' and bytes outside
					     0x21..0x7e inside a label are escaped (\. \\ \DDD) */
	uint8_t qname_wire[DNS_MAX_NAME]; /* the same name in wire form (uncompressed) */
	uint8_t qname_wire_len;		  /* includes the root label's zero byte */
	uint8_t qlabels;		  /* number of labels (0 for the root) */
	uint16_t qtype;
	uint16_t qclass;
	bool edns;	   /* an OPT record was present */
	uint16_t edns_udp; /* its payload size (>= 512 when present) */
	uint8_t edns_version;
	bool do_bit;
	uint16_t edns_opt_len; /* bytes of OPT rdata (options, e.g. COOKIE; not echoed) */
	size_t question_end;   /* offset after the question (for copying it back) */
};

/*
 * Parses a query. Returns 0, or a negative error with the rcode to answer in
 * *rcode (FORMERR for malformed, NOTIMP for unknown opcodes) when a reply is
 * possible; -EBADMSG with *rcode = -1 when the packet is too broken to even
 * echo an id (drop it).
 *
 * Rules (tested in tests/unit/test_dns_wire.c):
 *   - shorter than the 12-byte header, or QR set (a response): drop (-1);
 *   - opcode other than QUERY (0): NOTIMP (the question is not looked at);
 *   - QDCOUNT != 1, a bad name (label > 63, name > 255 bytes, compression
 *     pointer in the question, reserved label types 0x40/0x80), the
 *     question or a record running past the end: FORMERR;
 *   - ANCOUNT/NSCOUNT must be 0 (FORMERR otherwise); ARCOUNT records are
 *     walked (names there may use pointers to earlier offsets only, so loops
 *     are impossible); at most one OPT, owner root: otherwise FORMERR;
 *   - EDNS version != 0: -EPROTO with *rcode = DNS_R_BADVERS (the reply must
 *     then carry an OPT: dns_writer_opt() encodes the extended rcode);
 *   - payload size below 512 is read as 512;
 *   - trailing bytes after the last record are ignored (RFC 1035 does not
 *     forbid them and real stubs pad; BIND and CoreDNS also accept them).
 * On any error other than the drop case, q->id, flags, opcode and (if it
 * parsed) the question are filled so the reply can echo them;
 * q->question_end is 0 when the question did not parse.
 */
int dns_query_parse(const uint8_t *pkt, size_t len, struct dns_query *q, int *rcode);

/* --- encoding --------------------------------------------------------------- */

struct dns_rr {
	const char *name; /* presentation form, case as it should appear */
	uint16_t type;
	uint16_t class; /* 1 = IN */
	uint32_t ttl;
	/* rdata by type */
	union {
		uint8_t a[4];
		uint8_t aaaa[16];
		const char *target; /* CNAME, PTR, NS */
		struct {
			uint16_t prio, weight, port;
			const char *target;
		} srv;
		struct {
			const char *mname, *rname;
			uint32_t serial, refresh, retry, expire, minimum;
		} soa;
		struct {
			const char *text;
		} txt; /* one character-string (<= 255 bytes) */
		struct {
			const char *cpu, *os;
		} hinfo; /* two character-strings */
	} rd;
};

/* An encoder writing into a caller buffer with a size limit (the client's UDP
 * payload or 65535 for TCP). Compression pointers for names already written. */
struct dns_writer {
	uint8_t *buf;
	size_t cap; /* hard limit for this response */
	size_t len;
	bool truncated; /* a record did not fit: set TC, keep what fit */
	/* compression table: offsets of names written (up to 64 suffixes) */
	uint16_t name_off[64];
	uint8_t n_names;
	size_t reserve;	   /* bytes kept free for the OPT RR (11 when the query had EDNS) */
	bool edns;	   /* the query had EDNS: an OPT may be appended */
	bool do_bit;	   /* the query's DO bit, copied into the OPT (RFC 3225) */
	uint8_t ext_rcode; /* upper 8 bits of a 12-bit rcode, written in the OPT TTL */
	uint16_t count[4]; /* RRs per section: [0] question, [1] answer, [2] ns, [3] additional */
};

/*
 * Starts a response to q: header (id, QR, opcode, RD and CD copied, AA as
 * given, rcode; RA clear), the question copied verbatim from q->qname_wire
 * (case preserved) when q->question_end != 0. cap is clamped to 65535; with
 * q->edns, 11 bytes are reserved for the OPT. rcode may be DNS_R_BADVERS
 * (header rcode 0, upper bits go into the OPT). Returns 0, -EINVAL, or
 * -ENOSPC when not even the header and question fit (cap < 12 + question).
 */
int dns_writer_begin(struct dns_writer *w, uint8_t *buf, size_t cap, const struct dns_query *q,
		     bool aa, int rcode);
/* Sets the header's rcode (0..4095 with EDNS, 0..15 without) and AA bit. */
void dns_writer_set_rcode(struct dns_writer *w, int rcode);
void dns_writer_set_aa(struct dns_writer *w, bool aa);
/* Appends one RR to section 1 = answer, 2 = authority, 3 = additional.
 * Names are compressed against names already written (exact-case suffix
 * match, so compression never changes the case a client sees).
 * Returns 0, -EINVAL (bad name/section/type, text > 255), or -ENOSPC (and
 * sets truncated) when it does not fit; once truncated, every later RR is
 * refused too, so a truncated message is a prefix of the full one. */
int dns_writer_rr(struct dns_writer *w, int section, const struct dns_rr *rr);
/* Appends an OPT RR advertising udp_size (only if the query had EDNS; 0
 * otherwise, writing nothing). Uses the reserved bytes, so it always fits. */
int dns_writer_opt(struct dns_writer *w, uint16_t udp_size);
/* Sets TC if truncated, finalises counts. Returns the message length. */
size_t dns_writer_end(struct dns_writer *w);

/* The response size limit for q over UDP: 512 without EDNS, otherwise the
 * client's payload (>= 512) capped at DNS_EDNS_DEFAULT. TCP uses DNS_MAX_MSG. */
size_t dns_query_udp_limit(const struct dns_query *q);

/*
 * Presentation name -> wire form (uncompressed, with the root byte), handling
 * \. \\ and \DDD escapes; a trailing dot is optional. Returns the wire
 * length or -EINVAL (empty label, label > 63, name > 255, bad escape).
 */
int dns_name_to_wire(const char *name, uint8_t *out, size_t cap);

/* Case-insensitive comparison of presentation names (ASCII only, RFC 4343). */
bool dns_name_eq(const char *a, const char *b);
/* True if name equals zone or ends with "." zone (case-insensitive). */
bool dns_name_in(const char *name, const char *zone);

#endif
