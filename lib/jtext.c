// SPDX-License-Identifier: Apache-2.0
/*
 * The pull scanner of lib/jtext.h. Every value is read in one forward pass
 * with no allocation except the strings a caller asks for: at 30 MB of list
 * text this is what decides how fast a node agent starts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jtext.h"
#include "sluice/err.h"
#include "sluice/json.h"

static int jt_bad(struct jt *j, const char *what)
{
	snprintf(j->err, sizeof(j->err), "%s at byte %zu", what, (size_t)(j->p - j->base));
	return -SL_ERR_PARSE;
}

void jt_init(struct jt *j, const char *text, size_t len)
{
	j->p = j->base = text;
	j->end = text + len;
	j->depth = 0;
	j->err[0] = '\0';
	j->alloc = NULL;
	j->alloc_ctx = NULL;
}

static char *jt_alloc(struct jt *j, size_t n)
{
	return j->alloc ? j->alloc(j->alloc_ctx, n) : malloc(n);
}

static void jt_ws(struct jt *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

enum jt_type jt_peek(struct jt *j)
{
	jt_ws(j);
	if (j->p == j->end)
		return JT_END;
	switch (*j->p) {
	case '{':
		return JT_OBJECT;
	case '[':
		return JT_ARRAY;
	case '"':
		return JT_STRING;
	case 't':
		return JT_TRUE;
	case 'f':
		return JT_FALSE;
	case 'n':
		return JT_NULL;
	case '-':
		return JT_NUMBER;
	default:
		return *j->p >= '0' && *j->p <= '9' ? JT_NUMBER : JT_BAD;
	}
}

int jt_literal(struct jt *j, enum jt_type t)
{
	static const char *const words[] = {
		[JT_TRUE] = "true", [JT_FALSE] = "false", [JT_NULL] = "null"};
	const char *w = t == JT_TRUE || t == JT_FALSE || t == JT_NULL ? words[t] : NULL;
	size_t n = w ? strlen(w) : 0;

	jt_ws(j);
	if (!w)
		return jt_bad(j, "expected a literal");
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n))
		return jt_bad(j, "invalid literal");
	j->p += n;
	return 0;
}

static bool jt_digit(const struct jt *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

int jt_number(struct jt *j, bool *is_int, int64_t *v, bool *in_range)
{
	bool neg = false, ok = true;
	uint64_t mag = 0;

	jt_ws(j);
	*is_int = true;
	if (j->p < j->end && *j->p == '-') {
		neg = true;
		j->p++;
	}
	if (!jt_digit(j))
		return jt_bad(j, "invalid number");
	if (*j->p == '0') {
		j->p++;
		if (jt_digit(j))
			return jt_bad(j, "leading zero in a number");
	} else {
		while (jt_digit(j)) {
			unsigned d = (unsigned)(*j->p++ - '0');

			if (mag > (UINT64_MAX - d) / 10)
				ok = false;
			else
				mag = mag * 10 + d;
		}
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		*is_int = false;
		if (!jt_digit(j))
			return jt_bad(j, "invalid number");
		while (jt_digit(j))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		*is_int = false;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!jt_digit(j))
			return jt_bad(j, "invalid number");
		while (jt_digit(j))
			j->p++;
	}
	if (neg)
		ok = ok && mag <= (uint64_t)INT64_MAX + 1;
	else
		ok = ok && mag <= (uint64_t)INT64_MAX;
	*in_range = ok;
	*v = !ok ? 0 : neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}

static int jt_hex4(struct jt *j, unsigned *out)
{
	unsigned v = 0;

	if (j->end - j->p < 4)
		return jt_bad(j, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = *j->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return jt_bad(j, "invalid \\u escape");
	}
	*out = v;
	return 0;
}

static size_t jt_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Scans the string at the cursor (on its opening quote). Without `out` it
 * only checks and skips; with it, the unescaped bytes go to out and their
 * count to *out_len (room for the text's length is enough: no escape
 * unescapes to more bytes than it is written with).
 */
static int jt_str_scan(struct jt *j, char *out, size_t *out_len, bool *has_nul)
{
	size_t o = 0;

	j->p++; /* the opening quote */
	*has_nul = false;
	for (;;) {
		const char *s = j->p;
		unsigned cp, lo;

		/* The run of plain bytes, copied at once. */
		while (j->p < j->end && *j->p != '"' && *j->p != '\\')
			j->p++;
		if (out && j->p > s) {
			memcpy(out + o, s, (size_t)(j->p - s));
			o += (size_t)(j->p - s);
		}
		if (j->p == j->end)
			return jt_bad(j, "unterminated string");
		if (*j->p == '"') {
			j->p++;
			break;
		}
		j->p++; /* the backslash */
		if (j->p == j->end)
			return jt_bad(j, "unterminated string");
		switch (*j->p++) {
		case '"':
			cp = '"';
			break;
		case '\\':
			cp = '\\';
			break;
		case '/':
			cp = '/';
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u':
			if (jt_hex4(j, &cp))
				return -SL_ERR_PARSE;
			if (cp >= 0xd800 && cp < 0xdc00) {
				/* A high surrogate wants a low one right after. */
				if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
					const char *save = j->p;

					j->p += 2;
					if (jt_hex4(j, &lo))
						return -SL_ERR_PARSE;
					if (lo >= 0xdc00 && lo < 0xe000)
						cp = 0x10000 + ((cp - 0xd800) << 10) +
						     (lo - 0xdc00);
					else {
						j->p = save;
						cp = 0xfffd;
					}
				} else {
					cp = 0xfffd;
				}
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				cp = 0xfffd;
			}
			if (!cp)
				*has_nul = true;
			break;
		default:
			j->p--;
			return jt_bad(j, "invalid escape in a string");
		}
		if (out)
			o += jt_utf8(out + o, cp);
	}
	if (out_len)
		*out_len = o;
	return 0;
}

int jt_string(struct jt *j, char **out, size_t *len, bool *has_nul)
{
	const char *start;
	size_t raw, n;
	char *buf;
	bool nul;

	*out = NULL;
	if (jt_peek(j) != JT_STRING)
		return jt_bad(j, "expected a string");
	start = j->p;
	/* Plain strings (almost all) are copied straight from the text. */
	raw = 0;
	while (start + 1 + raw < j->end && start[1 + raw] != '"' && start[1 + raw] != '\\')
		raw++;
	if (start + 1 + raw < j->end && start[1 + raw] == '"') {
		buf = jt_alloc(j, raw + 1);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, start + 1, raw);
		buf[raw] = '\0';
		j->p = start + raw + 2;
		*out = buf;
		*len = raw;
		if (has_nul)
			*has_nul = false;
		return 0;
	}
	/* Escapes: scan once to check and measure, then unescape. */
	if (jt_str_scan(j, NULL, NULL, &nul))
		return -SL_ERR_PARSE;
	raw = (size_t)(j->p - start);
	buf = jt_alloc(j, raw + 1);
	if (!buf)
		return -ENOMEM;
	j->p = start;
	n = 0;
	if (jt_str_scan(j, buf, &n, &nul)) { /* cannot fail: it passed once */
		if (!j->alloc)
			free(buf);
		return -SL_ERR_PARSE;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	if (has_nul)
		*has_nul = nul;
	return 0;
}

static int jt_open(struct jt *j, char c)
{
	jt_ws(j);
	if (j->p == j->end || *j->p != c)
		return jt_bad(j, c == '{' ? "expected an object" : "expected an array");
	if (++j->depth > SL_JSON_MAX_DEPTH)
		return jt_bad(j, "nesting too deep");
	j->p++;
	return 0;
}

int jt_obj_begin(struct jt *j)
{
	return jt_open(j, '{');
}

int jt_arr_begin(struct jt *j)
{
	return jt_open(j, '[');
}

/*
 * Before a member or element: the closer (0), or 1 with the cursor on the
 * next one; first is true right after the opener, where no ',' comes.
 */
static int jt_sep(struct jt *j, char closer, bool first)
{
	jt_ws(j);
	if (j->p == j->end)
		return jt_bad(j, "unexpected end of text");
	if (*j->p == closer) {
		j->p++;
		j->depth--;
		return 0;
	}
	if (!first) {
		if (*j->p != ',')
			return jt_bad(j, closer == '}' ? "expected ',' or '}'"
						       : "expected ',' or ']'");
		j->p++;
		jt_ws(j);
		if (j->p < j->end && *j->p == closer)
			return jt_bad(j, "trailing comma");
	}
	return 1;
}

/* Whether the cursor is right after the opener (whitespace aside): no value
 * ends with '{' or '[', so the byte before tells the first member from the
 * others without the caller keeping count. */
static bool jt_after_open(const struct jt *j, char opener)
{
	const char *q = j->p - 1;

	while (q > j->base && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
		q--;
	return *q == opener;
}

int jt_obj_next(struct jt *j, const char **key, size_t *keylen)
{
	int rc = jt_sep(j, '}', jt_after_open(j, '{'));
	bool nul;

	if (rc <= 0)
		return rc;
	if (j->p == j->end || *j->p != '"')
		return jt_bad(j, "expected a member name");
	{
		const char *s = j->p + 1, *q = s;

		while (q < j->end && *q != '"' && *q != '\\')
			q++;
		if (q < j->end && *q == '"') {
			*key = s;
			*keylen = (size_t)(q - s);
			j->p = q + 1;
		} else {
			const char *start = j->p;
			size_t n = 0;

			if (jt_str_scan(j, NULL, NULL, &nul))
				return -SL_ERR_PARSE;
			if ((size_t)(j->p - start) >= sizeof(j->key))
				return jt_bad(j, "member name too long");
			j->p = start;
			if (jt_str_scan(j, j->key, &n, &nul))
				return -SL_ERR_PARSE;
			j->key[n] = '\0';
			*key = j->key;
			*keylen = n;
		}
	}
	jt_ws(j);
	if (j->p == j->end || *j->p != ':')
		return jt_bad(j, "expected ':'");
	j->p++;
	return 1;
}

int jt_arr_next(struct jt *j)
{
	return jt_sep(j, ']', jt_after_open(j, '['));
}

int jt_skip(struct jt *j)
{
	const char *k;
	size_t kl;
	bool b, nul;
	int64_t v;
	int rc;

	switch (jt_peek(j)) {
	case JT_OBJECT:
		if ((rc = jt_obj_begin(j)))
			return rc;
		while ((rc = jt_obj_next(j, &k, &kl)) > 0)
			if ((rc = jt_skip(j)))
				return rc;
		return rc;
	case JT_ARRAY:
		if ((rc = jt_arr_begin(j)))
			return rc;
		while ((rc = jt_arr_next(j)) > 0)
			if ((rc = jt_skip(j)))
				return rc;
		return rc;
	case JT_STRING:
		return jt_str_scan(j, NULL, NULL, &nul);
	case JT_NUMBER:
		return jt_number(j, &b, &v, &b);
	case JT_TRUE:
	case JT_FALSE:
	case JT_NULL:
		return jt_literal(j, jt_peek(j));
	case JT_END:
		return jt_bad(j, "unexpected end of text");
	default:
		return jt_bad(j, "unexpected character");
	}
}

int jt_finish(struct jt *j)
{
	jt_ws(j);
	return j->p == j->end ? 0 : jt_bad(j, "text after the value");
}
