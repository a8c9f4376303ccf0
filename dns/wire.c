// SPDX-License-Identifier: Apache-2.0
/*
 * DNS wire format: the query parser and the response encoder declared in
 * wire.h. Every read goes through sl_cursor, so a malformed packet is an
 * error and never an overread; every write checks the writer's limit first,
 * so a record that does not fit is rolled back whole and the message is
 * marked truncated. Nothing here allocates: the server keeps one query
 * struct and one response buffer per worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sluice/cursor.h"
#include "wire.h"

#define DNS_HDR_LEN 12
#define DNS_OPT_LEN 11 /* root owner, type, class, ttl, rdlen = 0 */

#define DNS_F_QR 0x8000
#define DNS_F_AA 0x0400
#define DNS_F_TC 0x0200
#define DNS_F_RD 0x0100
#define DNS_F_CD 0x0010

/* --- names ------------------------------------------------------------------------------- */

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* Appends label bytes in presentation form; false when out does not have room. */
static bool label_to_text(const uint8_t *lab, size_t n, char *out, size_t cap, size_t *pos)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = lab[i];
		char tmp[5];
		size_t k;

		if (b == '.' || b == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)b;
			k = 2;
		} else if (b < 0x21 || b > 0x7e) {
			snprintf(tmp, sizeof(tmp), "\\%03u", b);
			k = 4;
		} else {
			tmp[0] = (char)b;
			k = 1;
		}
		if (*pos + k >= cap)
			return false;
		memcpy(out + *pos, tmp, k);
		*pos += k;
	}
	return true;
}

int dns_name_to_wire(const char *name, uint8_t *out, size_t cap)
{
	size_t o = 0, lab = 0;
	const char *p = name;

	if (!name || !out || cap < 1)
		return -EINVAL;
	/* The root: "" or ".". */
	if (!*p || (p[0] == '.' && !p[1])) {
		out[0] = 0;
		return 1;
	}
	if (cap < 2)
		return -EINVAL;
	out[0] = 0;
	o = 1;
	for (;;) {
		uint8_t b;

		if (!*p || *p == '.') {
			size_t n = o - lab - 1;

			if (n == 0 || n > DNS_MAX_LABEL)
				return -EINVAL;
			out[lab] = (uint8_t)n;
			if (!*p || !p[1]) {
				if (o + 1 > cap || o + 1 > DNS_MAX_NAME)
					return -EINVAL;
				out[o++] = 0;
				return (int)o;
			}
			p++;
			lab = o;
			if (o + 1 > cap)
				return -EINVAL;
			out[o++] = 0;
			continue;
		}
		if (*p == '\\') {
			p++;
			if (p[0] >= '0' && p[0] <= '9') {
				if (!(p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9'))
					return -EINVAL;
				unsigned int v = (unsigned int)(p[0] - '0') * 100 +
						 (unsigned int)(p[1] - '0') * 10 +
						 (unsigned int)(p[2] - '0');
				if (v > 255)
					return -EINVAL;
				b = (uint8_t)v;
				p += 3;
			} else if (*p) {
				b = (uint8_t)*p++;
			} else {
				return -EINVAL;
			}
		} else {
			b = (uint8_t)*p++;
		}
		if (o + 1 > cap || o + 1 >= DNS_MAX_NAME)
			return -EINVAL;
		out[o++] = b;
	}
}

/* Strips one trailing unescaped dot from a presentation name's length. */
static size_t pname_len(const char *s)
{
	size_t n = strlen(s);

	if (n && s[n - 1] == '.' && !(n >= 2 && s[n - 2] == '\\'))
		n--;
	return n;
}

bool dns_name_eq(const char *a, const char *b)
{
	size_t na, nb;

	if (!a || !b)
		return false;
	na = pname_len(a);
	nb = pname_len(b);
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

bool dns_name_in(const char *name, const char *zone)
{
	size_t nn, nz;

	if (!name || !zone)
		return false;
	nn = pname_len(name);
	nz = pname_len(zone);
	if (nz == 0)
		return true; /* everything is under the root */
	if (nn < nz)
		return false;
	for (size_t i = 0; i < nz; i++)
		if (lower(name[nn - nz + i]) != lower(zone[i]))
			return false;
	if (nn == nz)
		return true;
	/* A label boundary, and not an escaped dot. */
	return name[nn - nz - 1] == '.' && !(nn - nz >= 2 && name[nn - nz - 2] == '\\');
}

/*
 * Reads the question name: no compression pointers (the question is the
 * first name in the message; a pointer could only aim at the header), label
 * types 0x40/0x80 reserved. Fills wire and presentation forms.
 */
static int parse_qname(struct sl_cursor *c, struct dns_query *q)
{
	size_t wl = 0, pl = 0;
	uint8_t labels = 0;

	for (;;) {
		uint8_t n = sl_cursor_u8(c);

		if (c->err)
			return -EBADMSG;
		if (n & 0xc0)
			return -EBADMSG;
		if (wl + 1 + n > DNS_MAX_NAME)
			return -EBADMSG;
		q->qname_wire[wl++] = n;
		if (n == 0)
			break;
		if (!sl_cursor_bytes(c, q->qname_wire + wl, n))
			return -EBADMSG;
		if (labels && pl + 1 < sizeof(q->qname))
			q->qname[pl++] = '.';
		if (!label_to_text(q->qname_wire + wl, n, q->qname, sizeof(q->qname), &pl))
			return -EBADMSG; /* cannot happen: DNS_MAX_PNAME covers 4x */
		wl += n;
		labels++;
	}
	q->qname[pl] = 0;
	q->qname_wire_len = (uint8_t)wl;
	q->qlabels = labels;
	return 0;
}

/*
 * Skips a name in the additional section. Pointers must aim strictly before
 * the label that holds them, so following them always moves backwards and
 * a loop is impossible; the expanded name must stay within 255 bytes.
 */
static int skip_name(struct sl_cursor *c)
{
	size_t total = 0, end = 0;
	bool jumped = false;
	struct sl_cursor r = *c;

	for (;;) {
		size_t here = r.off;
		uint8_t n = sl_cursor_u8(&r);

		if (r.err)
			return -EBADMSG;
		if ((n & 0xc0) == 0xc0) {
			uint8_t lo = sl_cursor_u8(&r);
			size_t ptr = (size_t)(n & 0x3f) << 8 | lo;

			if (r.err || ptr >= here || ptr < DNS_HDR_LEN)
				return -EBADMSG;
			if (!jumped) {
				end = r.off;
				jumped = true;
			}
			if (!sl_cursor_seek(&r, ptr))
				return -EBADMSG;
			continue;
		}
		if (n & 0xc0)
			return -EBADMSG;
		total += 1 + n;
		if (total > DNS_MAX_NAME)
			return -EBADMSG;
		if (n == 0)
			break;
		if (!sl_cursor_bytes(&r, NULL, n))
			return -EBADMSG;
	}
	if (!jumped)
		end = r.off;
	return sl_cursor_seek(c, end) ? 0 : -EBADMSG;
}

int dns_query_parse(const uint8_t *pkt, size_t len, struct dns_query *q, int *rcode)
{
	struct sl_cursor c;
	int dummy, err;
	bool seen_opt = false;

	if (!rcode)
		rcode = &dummy;
	*rcode = -1;
	if (!pkt || !q)
		return -EINVAL;
	memset(q, 0, sizeof(*q));

	sl_cursor_init(&c, pkt, len);
	q->id = sl_cursor_be16(&c);
	q->flags = sl_cursor_be16(&c);
	q->qdcount = sl_cursor_be16(&c);
	q->ancount = sl_cursor_be16(&c);
	q->nscount = sl_cursor_be16(&c);
	q->arcount = sl_cursor_be16(&c);
	if (c.err || (q->flags & DNS_F_QR))
		return -EBADMSG; /* too short to answer, or a response: drop */
	q->opcode = (uint8_t)((q->flags >> 11) & 0xf);
	if (q->opcode != 0) {
		*rcode = DNS_R_NOTIMP;
		return -EOPNOTSUPP;
	}
	*rcode = DNS_R_FORMERR;
	if (q->qdcount != 1)
		return -EBADMSG;
	err = parse_qname(&c, q);
	if (err)
		return err;
	q->qtype = sl_cursor_be16(&c);
	q->qclass = sl_cursor_be16(&c);
	if (c.err)
		return -EBADMSG;
	q->question_end = c.off;
	if (q->ancount || q->nscount)
		return -EBADMSG;

	for (unsigned int i = 0; i < q->arcount; i++) {
		size_t owner = c.off;
		uint16_t type, cls, rdlen;
		uint32_t ttl;

		if (skip_name(&c))
			return -EBADMSG;
		bool root_owner = c.off == owner + 1 && pkt[owner] == 0;

		type = sl_cursor_be16(&c);
		cls = sl_cursor_be16(&c);
		ttl = sl_cursor_be32(&c);
		rdlen = sl_cursor_be16(&c);
		if (c.err || !sl_cursor_bytes(&c, NULL, rdlen))
			return -EBADMSG;
		if (type != DNS_T_OPT)
			continue; /* TSIG, SIG(0): not supported, ignored */
		if (seen_opt || !root_owner)
			return -EBADMSG; /* RFC 6891 §6.1.1 */
		seen_opt = true;
		q->edns = true;
		q->edns_udp = cls < DNS_MAX_UDP ? DNS_MAX_UDP : cls;
		q->edns_version = (uint8_t)(ttl >> 16);
		q->do_bit = (ttl & 0x8000) != 0;
		q->edns_opt_len = rdlen;
	}
	if (q->edns && q->edns_version != 0) {
		*rcode = DNS_R_BADVERS;
		return -EPROTO;
	}
	*rcode = DNS_R_NOERROR;
	return 0;
}

size_t dns_query_udp_limit(const struct dns_query *q)
{
	size_t n;

	if (!q || !q->edns)
		return DNS_MAX_UDP;
	n = q->edns_udp < DNS_MAX_UDP ? DNS_MAX_UDP : q->edns_udp;
	return n > DNS_EDNS_DEFAULT ? DNS_EDNS_DEFAULT : n;
}

/* --- encoder -------------------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static bool room(const struct dns_writer *w, size_t n)
{
	return w->len + n + w->reserve <= w->cap;
}

static bool emit(struct dns_writer *w, const void *p, size_t n)
{
	if (!room(w, n))
		return false;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return true;
}

static bool emit16(struct dns_writer *w, uint16_t v)
{
	uint8_t b[2];

	put16(b, v);
	return emit(w, b, 2);
}

static bool emit32(struct dns_writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	return emit(w, b, 4);
}

/*
 * True if the name stored in the message at off equals the wire suffix s
 * exactly (same case: compressing against a differently cased name would
 * change what the client sees). Names in the message were written by us, but
 * the walk is bounded anyway.
 */
static bool msg_name_equals(const struct dns_writer *w, size_t off, const uint8_t *s)
{
	for (int hops = 0; hops < 128; hops++) {
		if (off >= w->len)
			return false;
		uint8_t n = w->buf[off];

		if ((n & 0xc0) == 0xc0) {
			if (off + 1 >= w->len)
				return false;
			off = (size_t)(n & 0x3f) << 8 | w->buf[off + 1];
			continue;
		}
		if (n != *s)
			return false;
		if (n == 0)
			return true;
		if (off + 1 + n > w->len || memcmp(w->buf + off + 1, s + 1, n) != 0)
			return false;
		off += 1 + n;
		s += 1 + n;
	}
	return false;
}

static void remember(struct dns_writer *w, size_t off)
{
	if (off < 0x3fff && w->n_names < sizeof(w->name_off) / sizeof(w->name_off[0]))
		w->name_off[w->n_names++] = (uint16_t)off;
}

/* Writes a wire name, compressed against earlier names when allowed. */
static bool emit_wire_name(struct dns_writer *w, const uint8_t *wire, bool compress)
{
	size_t i = 0;

	while (wire[i]) {
		if (compress) {
			for (unsigned int k = 0; k < w->n_names; k++) {
				if (msg_name_equals(w, w->name_off[k], wire + i)) {
					uint16_t ptr = (uint16_t)(0xc000 | w->name_off[k]);

					return emit16(w, ptr);
				}
			}
		}
		size_t at = w->len;

		if (!emit(w, wire + i, 1u + wire[i]))
			return false;
		remember(w, at);
		i += 1u + wire[i];
	}
	return emit(w, "", 1);
}

static int emit_name(struct dns_writer *w, const char *name, bool compress)
{
	uint8_t wire[DNS_MAX_NAME];

	if (!name || dns_name_to_wire(name, wire, sizeof(wire)) < 0)
		return -EINVAL;
	return emit_wire_name(w, wire, compress) ? 0 : -ENOSPC;
}

static bool emit_cstr(struct dns_writer *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	uint8_t b = (uint8_t)n;

	return emit(w, &b, 1) && emit(w, s ? s : "", n);
}

int dns_writer_begin(struct dns_writer *w, uint8_t *buf, size_t cap, const struct dns_query *q,
		     bool aa, int rcode)
{
	bool question;

	if (!w || !buf || !q)
		return -EINVAL;
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap > DNS_MAX_MSG ? DNS_MAX_MSG : cap;
	w->edns = q->edns;
	w->do_bit = q->do_bit;
	question = q->question_end != 0 && q->qname_wire_len > 0;
	if (w->cap < DNS_HDR_LEN + (question ? q->qname_wire_len + 4u : 0u))
		return -ENOSPC;
	memset(buf, 0, DNS_HDR_LEN);
	put16(buf, q->id);
	put16(buf + 2, (uint16_t)(DNS_F_QR | (q->opcode & 0xf) << 11 | (aa ? DNS_F_AA : 0) |
				  (q->flags & (DNS_F_RD | DNS_F_CD))));
	w->len = DNS_HDR_LEN;
	dns_writer_set_rcode(w, rcode);
	if (question) {
		remember(w, w->len);
		/* Every label start of the question name is a compression target. */
		for (size_t i = 0; i < q->qname_wire_len && q->qname_wire[i];
		     i += 1u + q->qname_wire[i])
			if (i)
				remember(w, DNS_HDR_LEN + i);
		emit(w, q->qname_wire, q->qname_wire_len);
		emit16(w, q->qtype);
		emit16(w, q->qclass);
		w->count[0] = 1;
	}
	/* Reserve the OPT only now so the question always fits. */
	if (w->edns)
		w->reserve = w->cap - w->len >= DNS_OPT_LEN ? DNS_OPT_LEN : w->cap - w->len;
	return 0;
}

void dns_writer_set_rcode(struct dns_writer *w, int rcode)
{
	if (!w || !w->buf || rcode < 0)
		return;
	w->buf[3] = (uint8_t)((w->buf[3] & 0xf0) | (rcode & 0xf));
	w->ext_rcode = (uint8_t)((rcode >> 4) & 0xff);
}

void dns_writer_set_aa(struct dns_writer *w, bool aa)
{
	if (!w || !w->buf)
		return;
	if (aa)
		w->buf[2] |= DNS_F_AA >> 8;
	else
		w->buf[2] &= (uint8_t) ~(DNS_F_AA >> 8);
}

static int emit_rdata(struct dns_writer *w, const struct dns_rr *rr)
{
	int err = 0;

	switch (rr->type) {
	case DNS_T_A:
		return emit(w, rr->rd.a, 4) ? 0 : -ENOSPC;
	case DNS_T_AAAA:
		return emit(w, rr->rd.aaaa, 16) ? 0 : -ENOSPC;
	case DNS_T_CNAME:
	case DNS_T_PTR:
	case DNS_T_NS:
		return emit_name(w, rr->rd.target, true);
	case DNS_T_SRV:
		if (!emit16(w, rr->rd.srv.prio) || !emit16(w, rr->rd.srv.weight) ||
		    !emit16(w, rr->rd.srv.port))
			return -ENOSPC;
		/* RFC 2782: the target is not compressed. */
		return emit_name(w, rr->rd.srv.target, false);
	case DNS_T_SOA:
		err = emit_name(w, rr->rd.soa.mname, true);
		if (!err)
			err = emit_name(w, rr->rd.soa.rname, true);
		if (err)
			return err;
		return emit32(w, rr->rd.soa.serial) && emit32(w, rr->rd.soa.refresh) &&
				       emit32(w, rr->rd.soa.retry) &&
				       emit32(w, rr->rd.soa.expire) && emit32(w, rr->rd.soa.minimum)
			       ? 0
			       : -ENOSPC;
	case DNS_T_TXT:
		if (rr->rd.txt.text && strlen(rr->rd.txt.text) > 255)
			return -EINVAL;
		return emit_cstr(w, rr->rd.txt.text) ? 0 : -ENOSPC;
	case DNS_T_HINFO:
		if ((rr->rd.hinfo.cpu && strlen(rr->rd.hinfo.cpu) > 255) ||
		    (rr->rd.hinfo.os && strlen(rr->rd.hinfo.os) > 255))
			return -EINVAL;
		return emit_cstr(w, rr->rd.hinfo.cpu) && emit_cstr(w, rr->rd.hinfo.os) ? 0
										       : -ENOSPC;
	default:
		return -EINVAL;
	}
}

int dns_writer_rr(struct dns_writer *w, int section, const struct dns_rr *rr)
{
	size_t save_len;
	uint8_t save_names;
	size_t rdstart;
	int err;

	if (!w || !w->buf || !rr || section < 1 || section > 3)
		return -EINVAL;
	if (w->truncated)
		return -ENOSPC;
	save_len = w->len;
	save_names = w->n_names;
	err = emit_name(w, rr->name, true);
	if (!err && !(emit16(w, rr->type) && emit16(w, rr->class ? rr->class : DNS_CLASS_IN) &&
		      emit32(w, rr->ttl) && emit16(w, 0)))
		err = -ENOSPC;
	rdstart = w->len;
	if (!err)
		err = emit_rdata(w, rr);
	if (err) {
		w->len = save_len;
		w->n_names = save_names;
		if (err == -ENOSPC)
			w->truncated = true;
		return err;
	}
	put16(w->buf + rdstart - 2, (uint16_t)(w->len - rdstart));
	w->count[section]++;
	return 0;
}

int dns_writer_opt(struct dns_writer *w, uint16_t udp_size)
{
	if (!w || !w->buf)
		return -EINVAL;
	if (!w->edns)
		return 0;
	w->reserve = 0;
	if (!(emit(w, "", 1) && emit16(w, DNS_T_OPT) && emit16(w, udp_size) &&
	      emit32(w, (uint32_t)w->ext_rcode << 24 | (w->do_bit ? 0x8000u : 0)) && emit16(w, 0)))
		return -ENOSPC;
	w->count[3]++;
	w->edns = false; /* one OPT only */
	return 0;
}

size_t dns_writer_end(struct dns_writer *w)
{
	if (!w || !w->buf || w->len < DNS_HDR_LEN)
		return 0;
	if (w->truncated)
		w->buf[2] |= DNS_F_TC >> 8;
	for (int i = 0; i < 4; i++)
		put16(w->buf + 4 + 2 * (size_t)i, w->count[i]);
	return w->len;
}
