// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes label selectors and field selectors (see sluice/selector.h).
 *
 * The string parser is a transcription of k8s.io/apimachinery/pkg/labels
 * (Lexer + Parser): the whole input is lexed into a token array first, then a
 * recursive-descent parser walks it with one token of lookahead. Keeping that
 * shape is what makes the odd corners behave like kube-apiserver: "in" and
 * "notin" are keywords only where an operator is expected, "a in ()" is the
 * set {""}, "!a=b" fails at the '=', and the error text is upstream's, with
 * the byte position of the offending token in front.
 *
 * Every selector is stored canonically: values sorted and deduplicated,
 * requirements sorted by (key, op, values). So two selectors with the same
 * meaning compare equal field by field, and sl_labelsel_string() is stable:
 * parse(string(sel)) == sel, which the fuzzer checks.
 *
 * Field selectors follow k8s.io/apimachinery/pkg/fields: terms split at
 * unescaped commas, each term split at the first "!=", "==" or "=", and the
 * value unescaped (\\ \, \=). The field name is taken verbatim.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/selector.h"

/* ---- label syntax ------------------------------------------------------ */

#define LABEL_NAME_MAX	  63
#define DNS_SUBDOMAIN_MAX 253

/* Upstream texts (k8s.io/apimachinery/pkg/util/validation), including the
 * double space that RegexError puts between examples. */
#define QNAME_RX "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
#define QNAME_MSG                                                                                 \
	"must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "  \
	"an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for " \
	"validation is '" QNAME_RX "')"

static const char msg_name_empty[] = "name part must be non-empty";
static const char msg_name_long[] = "name part must be no more than 63 characters";
static const char msg_name_regex[] = "name part " QNAME_MSG;
static const char msg_prefix_empty[] = "prefix part must be non-empty";
static const char msg_prefix_long[] = "prefix part must be no more than 253 characters";
static const char msg_prefix_regex[] =
	"prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
	"characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
	"'example.com', regex used for validation is "
	"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
static const char msg_qualified[] =
	"a qualified name " QNAME_MSG " with an optional DNS subdomain prefix and '/' (e.g. "
	"'example.com/MyName')";
static const char msg_value_long[] = "must be no more than 63 characters";
static const char msg_value_regex[] =
	"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
	"or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
	"'my_value',  or '12345', regex used for validation is "
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/* Locale-independent classes: label syntax is ASCII only. */
static bool ch_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool ch_lower_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

/* ^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$ on s[0..n) */
static bool qname_ok(const char *s, size_t n)
{
	if (!n || !ch_alnum(s[0]) || !ch_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++) {
		unsigned char c = s[i];

		if (!ch_alnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

/* RFC 1123 subdomain: dot-separated labels of [a-z0-9-], each starting and
 * ending with [a-z0-9]. Like upstream, only the total length is limited. */
static bool dns_subdomain_ok(const char *s, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!ch_lower_alnum(s[i]) && s[i] != '-')
				return false;
			continue;
		}
		if (i == start || !ch_lower_alnum(s[start]) || !ch_lower_alnum(s[i - 1]))
			return false;
		start = i + 1;
	}
	return true;
}

/*
 * Upstream IsQualifiedName returns a list; we return its first entry, which
 * is the most specific complaint (prefix problems come before name ones).
 */
static const char *label_key_check_n(const char *k, size_t n)
{
	const char *slash = memchr(k, '/', n);
	const char *name = k;
	size_t name_len = n;

	if (slash) {
		size_t plen = (size_t)(slash - k);

		if (memchr(slash + 1, '/', n - plen - 1))
			return msg_qualified;
		if (!plen)
			return msg_prefix_empty;
		if (plen > DNS_SUBDOMAIN_MAX)
			return msg_prefix_long;
		if (!dns_subdomain_ok(k, plen))
			return msg_prefix_regex;
		name = slash + 1;
		name_len = n - plen - 1;
	}
	if (!name_len)
		return msg_name_empty;
	if (name_len > LABEL_NAME_MAX)
		return msg_name_long;
	if (!qname_ok(name, name_len))
		return msg_name_regex;
	return NULL;
}

static const char *label_value_check_n(const char *v, size_t n)
{
	if (n > LABEL_NAME_MAX)
		return msg_value_long;
	if (n && !qname_ok(v, n))
		return msg_value_regex;
	return NULL;
}

const char *sl_label_key_check(const char *key)
{
	return label_key_check_n(key ? key : "", key ? strlen(key) : 0);
}

const char *sl_label_value_check(const char *value)
{
	return label_value_check_n(value ? value : "", value ? strlen(value) : 0);
}

/* strconv.ParseInt(s, 10, 64): optional sign, at least one digit, no overflow. */
static bool parse_int64(const char *s, size_t n, int64_t *out)
{
	bool neg = false;
	uint64_t v = 0, lim;
	size_t i = 0;

	if (n && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return false;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (lim - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (!neg)
		*out = (int64_t)v;
	else
		*out = v == lim ? INT64_MIN : -(int64_t)v;
	return true;
}

/* ---- error messages ---------------------------------------------------- */

/*
 * Appends s[0..n) to an error message. Bytes outside printable ASCII become
 * \xNN so a message stays one line whatever the input was; with `quoted`,
 * '"' and '\' are escaped too, like Go's %q in field.Invalid.
 */
static void err_put(struct sl_buf *b, const char *s, size_t n, bool quoted)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c < 0x20 || c >= 0x7f)
			sl_buf_printf(b, "\\x%02x", c);
		else if (quoted && (c == '"' || c == '\\'))
			sl_buf_printf(b, "\\%c", c);
		else
			sl_buf_append(b, &s[i], 1);
	}
}

static void err_quote(struct sl_buf *b, const char *s, size_t n)
{
	sl_buf_append(b, "\"", 1);
	err_put(b, s, n, true);
	sl_buf_append(b, "\"", 1);
}

/* Copies the message into the caller's buffer and releases b; returns -EINVAL. */
static int err_done(struct sl_buf *b, char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", b->oom ? "out of memory" : sl_buf_cstr(b));
	sl_buf_fini(b);
	return -EINVAL;
}

static int err_nomem(char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* ---- selector building ------------------------------------------------- */

/* A value while parsing: borrowed bytes plus where it came from, so an
 * error can point at it after the values have been sorted. */
struct sel_val {
	const char *p;
	size_t len;
	size_t pos; /* byte offset in the string form, index in a JSON array */
};

struct sel_vals {
	struct sel_val *v;
	size_t n, cap;
};

static int vals_push(struct sel_vals *vs, const char *p, size_t len, size_t pos)
{
	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 4;
		struct sel_val *v = realloc(vs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		vs->v = v;
		vs->cap = cap;
	}
	vs->v[vs->n++] = (struct sel_val){p, len, pos};
	return 0;
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static int val_cmp(const void *x, const void *y)
{
	const struct sel_val *a = x, *b = y;
	int c = bytes_cmp(a->p, a->len, b->p, b->len);

	if (c)
		return c;
	/* Ties by position so the error for a duplicate names the first one. */
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Sorts and deduplicates (Go's sets.String.List()). */
static void vals_normalize(struct sel_vals *vs)
{
	size_t w = 0;

	if (vs->n > 1)
		qsort(vs->v, vs->n, sizeof(vs->v[0]), val_cmp);
	for (size_t i = 0; i < vs->n; i++) {
		if (w && !bytes_cmp(vs->v[w - 1].p, vs->v[w - 1].len, vs->v[i].p, vs->v[i].len))
			continue;
		vs->v[w++] = vs->v[i];
	}
	vs->n = w;
}

static void req_fini(struct sl_sel_req *r)
{
	free(r->key);
	for (size_t i = 0; i < r->n_values; i++)
		free(r->values[i]);
	free(r->values);
}

void sl_labelsel_free(struct sl_labelsel *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->n_reqs; i++)
		req_fini(&sel->reqs[i]);
	free(sel->reqs);
	free(sel);
}

/* Appends a requirement with copies of key and the (normalized) values. */
static int sel_add(struct sl_labelsel *sel, size_t *cap, const char *key, size_t key_len,
		   enum sl_sel_op op, const struct sel_vals *vs)
{
	struct sl_sel_req r = {.op = op};

	if (sel->n_reqs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct sl_sel_req *reqs = realloc(sel->reqs, ncap * sizeof(*reqs));

		if (!reqs)
			return -ENOMEM;
		sel->reqs = reqs;
		*cap = ncap;
	}
	r.key = strndup(key, key_len);
	if (!r.key)
		return -ENOMEM;
	if (vs && vs->n) {
		r.values = calloc(vs->n, sizeof(*r.values));
		if (!r.values)
			goto nomem;
		for (; r.n_values < vs->n; r.n_values++) {
			r.values[r.n_values] = strndup(vs->v[r.n_values].p, vs->v[r.n_values].len);
			if (!r.values[r.n_values])
				goto nomem;
		}
	}
	sel->reqs[sel->n_reqs++] = r;
	return 0;
nomem:
	req_fini(&r);
	return -ENOMEM;
}

static int req_cmp(const void *x, const void *y)
{
	const struct sl_sel_req *a = x, *b = y;
	int c = strcmp(a->key, b->key);

	if (c)
		return c;
	if (a->op != b->op)
		return a->op < b->op ? -1 : 1;
	for (size_t i = 0; i < a->n_values && i < b->n_values; i++) {
		c = strcmp(a->values[i], b->values[i]);
		if (c)
			return c;
	}
	return a->n_values < b->n_values ? -1 : a->n_values > b->n_values;
}

static void sel_sort(struct sl_labelsel *sel)
{
	if (sel->n_reqs > 1)
		qsort(sel->reqs, sel->n_reqs, sizeof(sel->reqs[0]), req_cmp);
}

/* ---- string form: lexer ------------------------------------------------- */

enum sel_tok {
	TOK_EOS,
	TOK_CLOSEPAR,
	TOK_COMMA,
	TOK_NOT, /* "!" (DoesNotExistToken) */
	TOK_DEQ,
	TOK_EQ,
	TOK_GT,
	TOK_IDENT,
	TOK_IN,
	TOK_LT,
	TOK_NEQ,
	TOK_NOTIN,
	TOK_OPENPAR,
};

struct sel_token {
	enum sel_tok tok;
	size_t pos; /* byte offset of the first character */
	size_t len; /* 0 for TOK_EOS */
};

static bool lex_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool lex_special(unsigned char c)
{
	return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

/*
 * Upstream scanSpecialSymbol is a longest match over the operator table;
 * every special character is a token by itself and only "!=" and "==" are
 * longer, so one character of lookahead reproduces it.
 */
static struct sel_token lex_one(const char *s, size_t i)
{
	struct sel_token t = {TOK_EOS, i, 1};

	while (lex_space(s[i]))
		i++;
	t.pos = i;
	if (!s[i]) {
		t.len = 0;
		return t;
	}
	if (lex_special(s[i])) {
		if ((s[i] == '!' || s[i] == '=') && s[i + 1] == '=') {
			t.tok = s[i] == '!' ? TOK_NEQ : TOK_DEQ;
			t.len = 2;
			return t;
		}
		switch (s[i]) {
		case '=':
			t.tok = TOK_EQ;
			break;
		case '!':
			t.tok = TOK_NOT;
			break;
		case '(':
			t.tok = TOK_OPENPAR;
			break;
		case ')':
			t.tok = TOK_CLOSEPAR;
			break;
		case ',':
			t.tok = TOK_COMMA;
			break;
		case '>':
			t.tok = TOK_GT;
			break;
		default:
			t.tok = TOK_LT;
			break;
		}
		return t;
	}
	t.len = 0;
	while (s[i + t.len] && !lex_special(s[i + t.len]) && !lex_space(s[i + t.len]))
		t.len++;
	if (t.len == 2 && !memcmp(s + i, "in", 2))
		t.tok = TOK_IN;
	else if (t.len == 5 && !memcmp(s + i, "notin", 5))
		t.tok = TOK_NOTIN;
	else
		t.tok = TOK_IDENT;
	return t;
}

/* ---- string form: parser ------------------------------------------------ */

struct sel_parser {
	const char *s;
	struct sel_token *toks;
	size_t n_toks;
	size_t cur; /* next token to consume */
	char *err;
	size_t errlen;
};

/* Parser contexts: in "values" context the keywords are plain identifiers. */
#define CTX_VALUES true
#define CTX_OP	   false

static enum sel_tok p_kind(const struct sel_token *t, bool values)
{
	if (values && (t->tok == TOK_IN || t->tok == TOK_NOTIN))
		return TOK_IDENT;
	return t->tok;
}

/* The token array always ends with TOK_EOS; reading past it stays there. */
static const struct sel_token *p_peek(const struct sel_parser *p)
{
	return &p->toks[p->cur < p->n_toks ? p->cur : p->n_toks - 1];
}

static const struct sel_token *p_next(struct sel_parser *p)
{
	const struct sel_token *t = p_peek(p);

	p->cur++;
	return t;
}

/* "at position N: [unable to parse requirement: ]found '<tok>'<expect>" */
static int p_found(struct sel_parser *p, const struct sel_token *t, bool in_req, const char *expect)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_printf(&b, "at position %zu: %sfound '", t->pos,
		      in_req ? "unable to parse requirement: " : "");
	err_put(&b, p->s + t->pos, t->len, false);
	sl_buf_printf(&b, "'%s", expect);
	return err_done(&b, p->err, p->errlen);
}

/* `a in (x,y)`: upstream parseValues + parseIdentifiersList, quirks kept. */
static int p_values(struct sel_parser *p, struct sel_vals *vs)
{
	const struct sel_token *t = p_next(p), *look;
	int ret;

	if (p_kind(t, CTX_VALUES) != TOK_OPENPAR)
		return p_found(p, t, true, " expected: '('");
	look = p_peek(p);
	switch (p_kind(look, CTX_VALUES)) {
	case TOK_CLOSEPAR: /* "()" is the set {""} */
		p_next(p);
		return vals_push(vs, "", 0, look->pos);
	case TOK_IDENT:
	case TOK_COMMA:
		break;
	default:
		return p_found(p, look, true, ", expected: ',', ')' or identifier");
	}
	for (;;) {
		t = p_next(p);
		switch (p_kind(t, CTX_VALUES)) {
		case TOK_IDENT:
			ret = vals_push(vs, p->s + t->pos, t->len, t->pos);
			if (ret)
				return ret;
			look = p_peek(p);
			if (p_kind(look, CTX_VALUES) == TOK_COMMA)
				continue;
			if (p_kind(look, CTX_VALUES) == TOK_CLOSEPAR) {
				p_next(p);
				return 0;
			}
			return p_found(p, look, true, ", expected: ',' or ')'");
		case TOK_COMMA:
			/* Empty items around commas are "" ("(,x)", "(x,)", "(x,,y)"). */
			look = p_peek(p);
			if (!vs->n || p_kind(look, CTX_VALUES) == TOK_CLOSEPAR ||
			    p_kind(look, CTX_VALUES) == TOK_COMMA) {
				ret = vals_push(vs, "", 0, t->pos);
				if (ret)
					return ret;
			}
			if (p_kind(look, CTX_VALUES) == TOK_CLOSEPAR) {
				p_next(p);
				return 0;
			}
			break;
		default:
			return p_found(p, t, true, ", expected: ',', or identifier");
		}
	}
}

/* `a=v`: a missing value (end or ',') is "". */
static int p_exact_value(struct sel_parser *p, struct sel_vals *vs)
{
	const struct sel_token *t = p_peek(p);
	enum sel_tok k = p_kind(t, CTX_VALUES);

	if (k == TOK_EOS || k == TOK_COMMA)
		return vals_push(vs, "", 0, t->pos);
	p_next(p);
	if (k != TOK_IDENT)
		return p_found(p, t, true, ", expected: identifier");
	return vals_push(vs, p->s + t->pos, t->len, t->pos);
}

/*
 * Upstream NewRequirement checks, after the syntax is complete: Gt/Lt need
 * an integer, and every value must be a label value. Values are sorted at
 * this point, so the index in "values[i]" is the sorted one, as upstream.
 */
static int p_check_values(struct sel_parser *p, const struct sel_token *key, enum sl_sel_op op,
			  const struct sel_vals *vs)
{
	struct sl_buf b = SL_BUF_INIT;
	const struct sel_val *v;
	const char *msg = NULL;
	int64_t dummy;
	size_t i;

	if (op == SL_SEL_GT || op == SL_SEL_LT) {
		for (i = 0; i < vs->n; i++) {
			if (!parse_int64(vs->v[i].p, vs->v[i].len, &dummy)) {
				v = &vs->v[i];
				sl_buf_printf(&b,
					      "at position %zu: unable to parse requirement: "
					      "values[%zu]: Invalid value: ",
					      v->pos, i);
				err_quote(&b, v->p, v->len);
				sl_buf_puts(&b, ": for 'Gt', 'Lt' operators, the value must be an "
						"integer");
				return err_done(&b, p->err, p->errlen);
			}
		}
	}
	for (i = 0; i < vs->n; i++) {
		msg = label_value_check_n(vs->v[i].p, vs->v[i].len);
		if (msg)
			break;
	}
	if (!msg)
		return 0;
	v = &vs->v[i];
	sl_buf_printf(&b, "at position %zu: unable to parse requirement: values[%zu][", v->pos, i);
	err_put(&b, p->s + key->pos, key->len, false);
	sl_buf_puts(&b, "]: Invalid value: ");
	err_quote(&b, v->p, v->len);
	sl_buf_printf(&b, ": %s", msg);
	return err_done(&b, p->err, p->errlen);
}

static int p_requirement(struct sel_parser *p, struct sl_labelsel *sel, size_t *cap)
{
	struct sel_vals vs = {0};
	const struct sel_token *t = p_next(p), *key;
	enum sl_sel_op op;
	const char *msg;
	bool negated = false;
	int ret;

	/* parseKeyAndInferOperator */
	if (p_kind(t, CTX_VALUES) == TOK_NOT) {
		negated = true;
		t = p_next(p);
	}
	if (p_kind(t, CTX_VALUES) != TOK_IDENT)
		return p_found(p, t, true, ", expected: identifier");
	key = t;
	msg = label_key_check_n(p->s + key->pos, key->len);
	if (msg) {
		struct sl_buf b = SL_BUF_INIT;

		sl_buf_printf(&b, "at position %zu: unable to parse requirement: Invalid value: ",
			      key->pos);
		err_quote(&b, p->s + key->pos, key->len);
		sl_buf_printf(&b, ": %s", msg);
		return err_done(&b, p->err, p->errlen);
	}
	/* "!key" ends the requirement whatever follows; the caller then
	 * complains about anything but ',' or the end ("!a=b"). */
	if (negated)
		return sel_add(sel, cap, p->s + key->pos, key->len, SL_SEL_NOTEXISTS, NULL);
	t = p_peek(p);
	if (p_kind(t, CTX_VALUES) == TOK_EOS || p_kind(t, CTX_VALUES) == TOK_COMMA)
		return sel_add(sel, cap, p->s + key->pos, key->len, SL_SEL_EXISTS, NULL);

	/* parseOperator */
	t = p_next(p);
	switch (p_kind(t, CTX_OP)) {
	case TOK_IN:
		op = SL_SEL_IN;
		break;
	case TOK_NOTIN:
		op = SL_SEL_NOTIN;
		break;
	case TOK_EQ:
	case TOK_DEQ:
		op = SL_SEL_EQ;
		break;
	case TOK_NEQ:
		op = SL_SEL_NEQ;
		break;
	case TOK_GT:
		op = SL_SEL_GT;
		break;
	case TOK_LT:
		op = SL_SEL_LT;
		break;
	default:
		return p_found(p, t, true, ", expected: in, notin, =, ==, !=, gt, lt");
	}
	if (op == SL_SEL_IN || op == SL_SEL_NOTIN)
		ret = p_values(p, &vs);
	else
		ret = p_exact_value(p, &vs);
	if (!ret) {
		vals_normalize(&vs);
		ret = p_check_values(p, key, op, &vs);
	}
	if (!ret)
		ret = sel_add(sel, cap, p->s + key->pos, key->len, op, &vs);
	free(vs.v);
	return ret;
}

static int p_selector(struct sel_parser *p, struct sl_labelsel *sel)
{
	const struct sel_token *t;
	size_t cap = 0;
	int ret;

	for (;;) {
		t = p_peek(p);
		switch (p_kind(t, CTX_VALUES)) {
		case TOK_EOS:
			return 0;
		case TOK_IDENT:
		case TOK_NOT:
			break;
		default:
			return p_found(p, t, false,
				       ", expected: !, identifier, or 'end of string'");
		}
		ret = p_requirement(p, sel, &cap);
		if (ret)
			return ret;
		t = p_next(p);
		switch (p_kind(t, CTX_VALUES)) {
		case TOK_EOS:
			return 0;
		case TOK_COMMA:
			t = p_peek(p);
			if (p_kind(t, CTX_VALUES) != TOK_IDENT && p_kind(t, CTX_VALUES) != TOK_NOT)
				return p_found(p, t, false, ", expected: identifier after ','");
			break;
		default:
			return p_found(p, t, false, ", expected: ',' or 'end of string'");
		}
	}
}

struct sl_labelsel *sl_labelsel_parse(const char *s, char *err, size_t errlen)
{
	struct sel_parser p = {.s = s ? s : "", .err = err, .errlen = errlen};
	struct sl_labelsel *sel = calloc(1, sizeof(*sel));
	size_t cap = 0, pos = 0;
	int ret = -ENOMEM;

	if (!sel)
		goto fail;
	/* Lex everything first (upstream Parser.scan); every token consumes
	 * at least one byte, so there are at most strlen+1 of them. */
	for (;;) {
		struct sel_token t = lex_one(p.s, pos);

		if (p.n_toks == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct sel_token *toks = realloc(p.toks, ncap * sizeof(*toks));

			if (!toks)
				goto fail;
			p.toks = toks;
			cap = ncap;
		}
		p.toks[p.n_toks++] = t;
		if (t.tok == TOK_EOS)
			break;
		pos = t.pos + t.len;
	}
	ret = p_selector(&p, sel);
	if (ret)
		goto fail;
	free(p.toks);
	sel_sort(sel);
	return sel;
fail:
	if (ret == -ENOMEM)
		err_nomem(err, errlen);
	free(p.toks);
	sl_labelsel_free(sel);
	errno = -ret;
	return NULL;
}

/* ---- JSON forms --------------------------------------------------------- */

static const char *js_type(const struct json_object *o)
{
	return o ? json_type_to_name(json_object_get_type(o)) : "null";
}

/* "<path>.<field>" or just "<field>" when path is empty. */
static void js_path(struct sl_buf *b, const char *path, const char *field)
{
	if (!(path && *path) && !field)
		sl_buf_puts(b, "selector"); /* never start a message with ':' */
	if (path && *path) {
		sl_buf_puts(b, path);
		if (field)
			sl_buf_append(b, ".", 1);
	}
	if (field)
		sl_buf_puts(b, field);
}

static int js_invalid(const char *path, const char *field, const char *bad, size_t bad_len,
		      const char *msg, char *err, size_t errlen)
{
	struct sl_buf b = SL_BUF_INIT;

	js_path(&b, path, field);
	sl_buf_puts(&b, ": Invalid value: ");
	err_quote(&b, bad, bad_len);
	sl_buf_printf(&b, ": %s", msg);
	return err_done(&b, err, errlen);
}

static int js_type_err(const char *path, const char *field, const struct json_object *o,
		       const char *want, char *err, size_t errlen)
{
	struct sl_buf b = SL_BUF_INIT;

	js_path(&b, path, field);
	sl_buf_printf(&b, ": Invalid value: %s: must be %s", js_type(o), want);
	return err_done(&b, err, errlen);
}

/* matchLabels-style map: each pair becomes key=value. */
static int js_add_map(struct sl_labelsel *sel, size_t *cap, const struct json_object *map,
		      const char *path, const char *field, char *err, size_t errlen)
{
	if (!map)
		return 0;
	if (!json_object_is_type(map, json_type_object))
		return js_type_err(path, field, map, "an object of string values", err, errlen);
	json_object_object_foreach((struct json_object *)map, k, v)
	{
		struct sel_vals vs = {0};
		struct sel_val one;
		const char *msg;
		int ret;

		if (!json_object_is_type(v, json_type_string)) {
			struct sl_buf b = SL_BUF_INIT;

			js_path(&b, path, field);
			sl_buf_append(&b, "[", 1);
			err_put(&b, k, strlen(k), false);
			sl_buf_printf(&b, "]: Invalid value: %s: must be a string", js_type(v));
			return err_done(&b, err, errlen);
		}
		one.p = json_object_get_string(v);
		one.len = (size_t)json_object_get_string_len(v);
		one.pos = 0;
		/* Upstream ValidateLabels reports both at the map's path. */
		msg = label_key_check_n(k, strlen(k));
		if (msg)
			return js_invalid(path, field, k, strlen(k), msg, err, errlen);
		msg = label_value_check_n(one.p, one.len);
		if (msg)
			return js_invalid(path, field, one.p, one.len, msg, err, errlen);
		vs.v = &one;
		vs.n = 1;
		ret = sel_add(sel, cap, k, strlen(k), SL_SEL_EQ, &vs);
		if (ret)
			return err_nomem(err, errlen);
	}
	return 0;
}

static int js_op(const char *s, enum sl_sel_op *op)
{
	static const struct {
		const char *name;
		enum sl_sel_op op;
	} ops[] = {
		{"In", SL_SEL_IN},
		{"NotIn", SL_SEL_NOTIN},
		{"Exists", SL_SEL_EXISTS},
		{"DoesNotExist", SL_SEL_NOTEXISTS},
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!strcmp(s, ops[i].name)) {
			*op = ops[i].op;
			return 0;
		}
	}
	return -EINVAL;
}

/* One matchExpressions[i] entry; `path` is ".../matchExpressions[i]". */
static int js_add_expr(struct sl_labelsel *sel, size_t *cap, const struct json_object *e,
		       const char *path, char *err, size_t errlen)
{
	struct json_object *jk = NULL, *jop = NULL, *jvals = NULL;
	struct sel_vals vs = {0};
	const char *key = "", *ops = "", *msg;
	size_t key_len = 0, n = 0;
	enum sl_sel_op op;
	int ret;

	if (!json_object_is_type(e, json_type_object))
		return js_type_err(path, NULL, e, "an object", err, errlen);
	json_object_object_get_ex(e, "key", &jk);
	json_object_object_get_ex(e, "operator", &jop);
	json_object_object_get_ex(e, "values", &jvals);
	if (jk && !json_object_is_type(jk, json_type_string))
		return js_type_err(path, "key", jk, "a string", err, errlen);
	if (jop && !json_object_is_type(jop, json_type_string))
		return js_type_err(path, "operator", jop, "a string", err, errlen);
	if (jvals && !json_object_is_type(jvals, json_type_array))
		return js_type_err(path, "values", jvals, "an array of strings", err, errlen);
	if (jk) {
		key = json_object_get_string(jk);
		key_len = (size_t)json_object_get_string_len(jk);
	}
	if (jop)
		ops = json_object_get_string(jop);
	if (jvals)
		n = json_object_array_length(jvals);

	/* Same order as upstream ValidateLabelSelectorRequirement. */
	if (js_op(ops, &op)) {
		struct sl_buf b = SL_BUF_INIT;

		js_path(&b, path, "operator");
		sl_buf_puts(&b, ": Unsupported value: ");
		err_quote(&b, ops, strlen(ops));
		sl_buf_puts(&b,
			    ": supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\"");
		return err_done(&b, err, errlen);
	}
	if ((op == SL_SEL_IN || op == SL_SEL_NOTIN) && !n) {
		struct sl_buf b = SL_BUF_INIT;

		js_path(&b, path, "values");
		sl_buf_puts(&b, ": Required value: must be specified when `operator` is 'In' or "
				"'NotIn'");
		return err_done(&b, err, errlen);
	}
	if ((op == SL_SEL_EXISTS || op == SL_SEL_NOTEXISTS) && n) {
		struct sl_buf b = SL_BUF_INIT;

		js_path(&b, path, "values");
		sl_buf_puts(&b, ": Forbidden: may not be specified when `operator` is 'Exists' or "
				"'DoesNotExist'");
		return err_done(&b, err, errlen);
	}
	msg = label_key_check_n(key, key_len);
	if (msg)
		return js_invalid(path, "key", key, key_len, msg, err, errlen);
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(jvals, i);
		char field[48];

		snprintf(field, sizeof(field), "values[%zu]", i);
		if (!json_object_is_type(v, json_type_string)) {
			ret = js_type_err(path, field, v, "a string", err, errlen);
			goto out;
		}
		msg = label_value_check_n(json_object_get_string(v),
					  (size_t)json_object_get_string_len(v));
		if (msg) {
			ret = js_invalid(path, field, json_object_get_string(v),
					 (size_t)json_object_get_string_len(v), msg, err, errlen);
			goto out;
		}
		if (vals_push(&vs, json_object_get_string(v), (size_t)json_object_get_string_len(v),
			      i)) {
			ret = err_nomem(err, errlen);
			goto out;
		}
	}
	vals_normalize(&vs);
	ret = sel_add(sel, cap, key, key_len, op, &vs);
	if (ret)
		err_nomem(err, errlen);
out:
	free(vs.v);
	return ret;
}

struct sl_labelsel *sl_labelsel_from_json(const struct json_object *obj, const char *path,
					  char *err, size_t errlen)
{
	struct sl_labelsel *sel = calloc(1, sizeof(*sel));
	struct json_object *ml = NULL, *me = NULL;
	struct sl_buf pb = SL_BUF_INIT;
	size_t cap = 0;
	int ret = 0;

	if (!sel) {
		ret = err_nomem(err, errlen);
		goto fail;
	}
	if (!obj)
		return sel;
	if (!json_object_is_type(obj, json_type_object)) {
		ret = js_type_err(path, NULL, obj, "a LabelSelector object", err, errlen);
		goto fail;
	}
	json_object_object_get_ex(obj, "matchLabels", &ml);
	json_object_object_get_ex(obj, "matchExpressions", &me);
	ret = js_add_map(sel, &cap, ml, path, "matchLabels", err, errlen);
	if (ret)
		goto fail;
	if (me && !json_object_is_type(me, json_type_array)) {
		ret = js_type_err(path, "matchExpressions", me, "an array", err, errlen);
		goto fail;
	}
	for (size_t i = 0; me && i < json_object_array_length(me); i++) {
		sl_buf_reset(&pb);
		js_path(&pb, path, "matchExpressions");
		sl_buf_printf(&pb, "[%zu]", i);
		if (pb.oom) {
			ret = err_nomem(err, errlen);
			goto fail;
		}
		ret = js_add_expr(sel, &cap, json_object_array_get_idx(me, i), sl_buf_cstr(&pb),
				  err, errlen);
		if (ret)
			goto fail;
	}
	sl_buf_fini(&pb);
	sel_sort(sel);
	return sel;
fail:
	sl_buf_fini(&pb);
	sl_labelsel_free(sel);
	errno = ret == -ENOMEM ? ENOMEM : EINVAL;
	return NULL;
}

struct sl_labelsel *sl_labelsel_from_set_json(const struct json_object *map, const char *path,
					      char *err, size_t errlen)
{
	struct sl_labelsel *sel = calloc(1, sizeof(*sel));
	size_t cap = 0;
	int ret;

	if (!sel) {
		err_nomem(err, errlen);
		errno = ENOMEM;
		return NULL;
	}
	ret = js_add_map(sel, &cap, map, path, NULL, err, errlen);
	if (ret) {
		sl_labelsel_free(sel);
		errno = -ret;
		return NULL;
	}
	sel_sort(sel);
	return sel;
}

struct sl_labelsel *sl_labelsel_nothing(void)
{
	struct sl_labelsel *sel = calloc(1, sizeof(*sel));

	if (sel)
		sel->nothing = true;
	return sel;
}

/* ---- matching and printing ---------------------------------------------- */

bool sl_labelsel_empty(const struct sl_labelsel *sel)
{
	return !sel || (!sel->nothing && !sel->n_reqs);
}

static bool req_has(const struct sl_sel_req *r, const char *v)
{
	size_t lo = 0, hi = r->n_values;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v, r->values[mid]);

		if (!c)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/* val is the object's value for r->key, NULL when it has no such label. */
static bool req_match(const struct sl_sel_req *r, const char *val)
{
	int64_t have, want;

	switch (r->op) {
	case SL_SEL_EQ:
	case SL_SEL_IN:
		return val && req_has(r, val);
	case SL_SEL_NEQ:
	case SL_SEL_NOTIN:
		return !val || !req_has(r, val);
	case SL_SEL_EXISTS:
		return val != NULL;
	case SL_SEL_NOTEXISTS:
		return val == NULL;
	case SL_SEL_GT:
	case SL_SEL_LT:
		if (!val || r->n_values != 1 || !parse_int64(val, strlen(val), &have) ||
		    !parse_int64(r->values[0], strlen(r->values[0]), &want))
			return false;
		return r->op == SL_SEL_GT ? have > want : have < want;
	}
	return false;
}

bool sl_labelsel_match(const struct sl_labelsel *sel, const struct sl_label *labels, size_t n)
{
	if (!sel)
		return true;
	if (sel->nothing)
		return false;
	for (size_t i = 0; i < sel->n_reqs; i++) {
		const char *val = NULL;

		for (size_t j = 0; j < n; j++) {
			if (labels[j].key && !strcmp(labels[j].key, sel->reqs[i].key)) {
				val = labels[j].value ? labels[j].value : "";
				break;
			}
		}
		if (!req_match(&sel->reqs[i], val))
			return false;
	}
	return true;
}

bool sl_labelsel_match_json(const struct sl_labelsel *sel, const struct json_object *labels)
{
	if (!sel)
		return true;
	if (sel->nothing)
		return false;
	for (size_t i = 0; i < sel->n_reqs; i++) {
		struct json_object *v = NULL;
		const char *val = NULL;

		/* A non-string value cannot pass label validation; treat the
		 * label as absent rather than guess a string form. */
		if (labels && json_object_is_type(labels, json_type_object) &&
		    json_object_object_get_ex(labels, sel->reqs[i].key, &v) &&
		    json_object_is_type(v, json_type_string))
			val = json_object_get_string(v);
		if (!req_match(&sel->reqs[i], val))
			return false;
	}
	return true;
}

char *sl_labelsel_string(const struct sl_labelsel *sel)
{
	static const char *const op_str[] = {
		[SL_SEL_EQ] = "=",	     [SL_SEL_NEQ] = "!=", [SL_SEL_IN] = " in (",
		[SL_SEL_NOTIN] = " notin (", [SL_SEL_GT] = ">",	  [SL_SEL_LT] = "<",
	};
	struct sl_buf b = SL_BUF_INIT;
	char *out;

	sl_buf_append(&b, "", 0); /* "" for the empty selector, not NULL */
	for (size_t i = 0; sel && i < sel->n_reqs; i++) {
		const struct sl_sel_req *r = &sel->reqs[i];

		if (i)
			sl_buf_append(&b, ",", 1);
		if (r->op == SL_SEL_NOTEXISTS)
			sl_buf_append(&b, "!", 1);
		sl_buf_puts(&b, r->key);
		if (r->op == SL_SEL_EXISTS || r->op == SL_SEL_NOTEXISTS)
			continue;
		sl_buf_puts(&b, op_str[r->op]);
		for (size_t j = 0; j < r->n_values; j++) {
			if (j)
				sl_buf_append(&b, ",", 1);
			sl_buf_puts(&b, r->values[j]);
		}
		if (r->op == SL_SEL_IN || r->op == SL_SEL_NOTIN)
			sl_buf_append(&b, ")", 1);
	}
	if (b.oom) {
		sl_buf_fini(&b);
		errno = ENOMEM;
		return NULL;
	}
	out = sl_buf_steal(&b, NULL);
	if (!out)
		errno = ENOMEM;
	return out;
}

bool sl_labelsel_equal(const struct sl_labelsel *a, const struct sl_labelsel *b)
{
	if (!a || !b)
		return a == b;
	if (a->nothing != b->nothing || a->n_reqs != b->n_reqs)
		return false;
	for (size_t i = 0; i < a->n_reqs; i++) {
		if (req_cmp(&a->reqs[i], &b->reqs[i]))
			return false;
	}
	return true;
}

/* ---- field selectors ---------------------------------------------------- */

void sl_fieldsel_free(struct sl_fieldsel *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->n_reqs; i++) {
		free(sel->reqs[i].field);
		free(sel->reqs[i].value);
	}
	free(sel->reqs);
	free(sel);
}

struct fs_term {
	const char *p;
	size_t len;
	size_t pos;
};

static int fs_term_cmp(const void *x, const void *y)
{
	const struct fs_term *a = x, *b = y;

	return bytes_cmp(a->p, a->len, b->p, b->len);
}

static int fs_req_cmp(const void *x, const void *y)
{
	const struct sl_fieldsel_req *a = x, *b = y;
	int c = strcmp(a->field, b->field);

	if (c)
		return c;
	if (a->negate != b->negate)
		return a->negate ? 1 : -1;
	return strcmp(a->value, b->value);
}

/*
 * upstream UnescapeValue into a fresh string. `at` is the byte offset of raw
 * in the whole selector, for the error message.
 */
static int fs_unescape(const char *raw, size_t n, size_t at, char **out, char *err, size_t errlen)
{
	struct sl_buf b = SL_BUF_INIT;
	char *s = malloc(n + 1);
	size_t w = 0;

	if (!s)
		return err_nomem(err, errlen);
	for (size_t i = 0; i < n; i++) {
		if (raw[i] == '\\') {
			if (i + 1 < n &&
			    (raw[i + 1] == '\\' || raw[i + 1] == ',' || raw[i + 1] == '=')) {
				s[w++] = raw[++i];
				continue;
			}
			sl_buf_printf(&b,
				      "at position %zu: invalid field selector: invalid escape "
				      "sequence: ",
				      at + i);
			err_put(&b, raw + i, i + 1 < n ? 2 : 1, false);
			goto fail;
		}
		if (raw[i] == ',' || raw[i] == '=') {
			sl_buf_printf(
				&b,
				"at position %zu: invalid field selector: unescaped character "
				"in value: '%c'",
				at + i, raw[i]);
			goto fail;
		}
		s[w++] = raw[i];
	}
	s[w] = '\0';
	*out = s;
	return 0;
fail:
	free(s);
	return err_done(&b, err, errlen);
}

/* Splits one term at the first "!=", "==" or "=" (upstream splitTerm). */
static bool fs_split(const char *t, size_t n, size_t *lhs_len, size_t *op_len, bool *negate)
{
	for (size_t i = 0; i < n; i++) {
		if (t[i] == '!' && i + 1 < n && t[i + 1] == '=') {
			*negate = true;
			*op_len = 2;
		} else if (t[i] == '=') {
			*negate = false;
			*op_len = i + 1 < n && t[i + 1] == '=' ? 2 : 1;
		} else {
			continue;
		}
		*lhs_len = i;
		return true;
	}
	return false;
}

struct sl_fieldsel *sl_fieldsel_parse(const char *s, char *err, size_t errlen)
{
	struct sl_fieldsel *sel = calloc(1, sizeof(*sel));
	struct fs_term *terms = NULL;
	size_t n_terms = 0, len, start = 0;
	bool in_slash = false;
	int ret = -ENOMEM;

	s = s ? s : "";
	len = strlen(s);
	if (!sel)
		goto fail;
	/* Terms are at most one per comma plus one. */
	terms = calloc(len + 1, sizeof(*terms));
	if (!terms)
		goto fail;
	for (size_t i = 0; len && i <= len; i++) {
		if (i < len && in_slash) {
			in_slash = false;
		} else if (i < len && s[i] == '\\') {
			in_slash = true;
		} else if (i == len || s[i] == ',') {
			terms[n_terms++] = (struct fs_term){s + start, i - start, start};
			start = i + 1;
		}
	}
	/* Upstream checks terms in sorted order: keep its choice of which
	 * error wins when several terms are bad. */
	if (n_terms > 1)
		qsort(terms, n_terms, sizeof(*terms), fs_term_cmp);
	sel->reqs = calloc(n_terms ? n_terms : 1, sizeof(*sel->reqs));
	if (!sel->reqs)
		goto fail;
	for (size_t i = 0; i < n_terms; i++) {
		const struct fs_term *t = &terms[i];
		struct sl_fieldsel_req *r = &sel->reqs[sel->n_reqs];
		size_t lhs_len, op_len;
		bool negate;

		if (!t->len)
			continue;
		if (!fs_split(t->p, t->len, &lhs_len, &op_len, &negate)) {
			struct sl_buf b = SL_BUF_INIT;

			sl_buf_printf(&b, "at position %zu: invalid selector: '", t->pos);
			err_put(&b, s, len, false);
			sl_buf_puts(&b, "'; can't understand '");
			err_put(&b, t->p, t->len, false);
			sl_buf_puts(&b, "'");
			ret = err_done(&b, err, errlen);
			goto fail;
		}
		ret = fs_unescape(t->p + lhs_len + op_len, t->len - lhs_len - op_len,
				  t->pos + lhs_len + op_len, &r->value, err, errlen);
		if (ret)
			goto fail;
		r->field = strndup(t->p, lhs_len);
		r->negate = negate;
		sel->n_reqs++; /* owns value now, field freed with it */
		if (!r->field) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	free(terms);
	if (sel->n_reqs > 1)
		qsort(sel->reqs, sel->n_reqs, sizeof(*sel->reqs), fs_req_cmp);
	return sel;
fail:
	if (ret == -ENOMEM)
		err_nomem(err, errlen);
	free(terms);
	sl_fieldsel_free(sel);
	errno = -ret;
	return NULL;
}

bool sl_fieldsel_match(const struct sl_fieldsel *sel, sl_field_get_fn get, void *arg)
{
	for (size_t i = 0; sel && i < sel->n_reqs; i++) {
		const struct sl_fieldsel_req *r = &sel->reqs[i];
		const char *v = get ? get(r->field, arg) : NULL;

		if (!strcmp(v ? v : "", r->value) == r->negate)
			return false;
	}
	return true;
}

const char *sl_fieldsel_unsupported(const struct sl_fieldsel *sel, const char *const *supported)
{
	for (size_t i = 0; sel && i < sel->n_reqs; i++) {
		const char *const *s = supported;

		while (s && *s && strcmp(*s, sel->reqs[i].field))
			s++;
		if (!s || !*s)
			return sel->reqs[i].field;
	}
	return NULL;
}

char *sl_fieldsel_string(const struct sl_fieldsel *sel)
{
	struct sl_buf b = SL_BUF_INIT;
	char *out;

	sl_buf_append(&b, "", 0);
	for (size_t i = 0; sel && i < sel->n_reqs; i++) {
		const struct sl_fieldsel_req *r = &sel->reqs[i];

		if (i)
			sl_buf_append(&b, ",", 1);
		sl_buf_puts(&b, r->field);
		sl_buf_puts(&b, r->negate ? "!=" : "=");
		for (const char *v = r->value; *v; v++) {
			if (*v == '\\' || *v == ',' || *v == '=')
				sl_buf_append(&b, "\\", 1);
			sl_buf_append(&b, v, 1);
		}
	}
	if (b.oom) {
		sl_buf_fini(&b);
		errno = ENOMEM;
		return NULL;
	}
	out = sl_buf_steal(&b, NULL);
	if (!out)
		errno = ENOMEM;
	return out;
}

bool sl_fieldsel_equal(const struct sl_fieldsel *a, const struct sl_fieldsel *b)
{
	if (!a || !b)
		return a == b;
	if (a->n_reqs != b->n_reqs)
		return false;
	for (size_t i = 0; i < a->n_reqs; i++) {
		if (fs_req_cmp(&a->reqs[i], &b->reqs[i]))
			return false;
	}
	return true;
}
