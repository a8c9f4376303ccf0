// SPDX-License-Identifier: Apache-2.0
/*
 * Kubeconfig files without a YAML library: a reader for the block-YAML subset
 * kubectl writes (and JSON, which is valid YAML), and the lookup
 * current-context → context → cluster + user that turns one into client
 * options. Everything the reader does not understand is an error naming the
 * line, never a silent misread: a kubeconfig decides where credentials go.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/client.h"
#include "sluice/json.h"

/* Largest kubeconfig / token file we read. */
#define KUBECONFIG_MAX (4u << 20)

/* One logical line: indentation and content with comments stripped. */
struct yaml_line {
	int no;	    /* 1-based line number, for messages */
	int indent; /* columns of leading spaces */
	char *text; /* content (points into the reader's copy), NUL-terminated */
};

struct yaml_reader {
	struct yaml_line *lines;
	int n;
	int i; /* next line to consume */
	char *err;
	size_t errlen;
	bool failed;
};

static void yaml_fail(struct yaml_reader *r, int line, const char *what)
{
	if (r->failed)
		return;
	r->failed = true;
	snprintf(r->err, r->errlen, "line %d: %s", line, what);
}

/* Removes a comment ('#' at the start or after a blank, outside quotes) and
 * trailing blanks. */
static void yaml_strip(char *s)
{
	char q = 0;
	char *p, *end;

	for (p = s; *p; p++) {
		if (q) {
			if (*p == '\\' && q == '"' && p[1])
				p++;
			else if (*p == q)
				q = 0;
		} else if (*p == '"' || *p == '\'') {
			/* A quote only opens a string at the start of a scalar. */
			if (p == s || p[-1] == ' ' || p[-1] == ':' || p[-1] == '-' ||
			    p[-1] == '[' || p[-1] == '{' || p[-1] == ',')
				q = *p;
		} else if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
}

static bool yaml_is_seq_item(const char *t)
{
	return t[0] == '-' && (t[1] == '\0' || t[1] == ' ');
}

static struct json_object *yaml_node(struct yaml_reader *r, int indent);

/* A scalar or a flow collection written as JSON. */
static struct json_object *yaml_scalar(struct yaml_reader *r, int line, const char *s)
{
	char jerr[96];
	struct json_object *o;

	if (s[0] == '{' || s[0] == '[' || s[0] == '"') {
		o = sl_json_parse(s, strlen(s), jerr, sizeof(jerr));
		if (!o)
			yaml_fail(r, line,
				  s[0] == '"' ? "bad double-quoted string"
					      : "flow collection is not valid JSON");
		return o;
	}
	if (s[0] == '\'') {
		struct sl_buf b = SL_BUF_INIT;
		const char *p;

		for (p = s + 1; *p; p++) {
			if (*p == '\'' && p[1] == '\'') {
				sl_buf_append(&b, "'", 1);
				p++;
			} else if (*p == '\'') {
				break;
			} else {
				sl_buf_append(&b, p, 1);
			}
		}
		if (*p != '\'' || p[1]) {
			yaml_fail(r, line, "bad single-quoted string");
			sl_buf_fini(&b);
			return NULL;
		}
		o = json_object_new_string(sl_buf_cstr(&b) ? b.data : "");
		sl_buf_fini(&b);
		return o;
	}
	if (s[0] == '&' || s[0] == '*' || s[0] == '!' || s[0] == '|' || s[0] == '>') {
		yaml_fail(r, line, "anchors, aliases, tags and block scalars are not supported");
		return NULL;
	}
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_object_new_boolean(1);
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_object_new_boolean(0);
	if (!strcmp(s, "null") || !strcmp(s, "~") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return NULL;
	return json_object_new_string(s);
}

/* The value after "key:" or "- ": inline scalar, or a nested block below. */
static struct json_object *yaml_value(struct yaml_reader *r, int line, const char *rest, int indent,
				      bool allow_same_indent_seq)
{
	if (*rest)
		return yaml_scalar(r, line, rest);
	if (r->i < r->n) {
		struct yaml_line *nx = &r->lines[r->i];

		if (nx->indent > indent)
			return yaml_node(r, nx->indent);
		/* kubectl writes "clusters:\n- cluster:" with the list at the key's
		 * own indentation. */
		if (allow_same_indent_seq && nx->indent == indent && yaml_is_seq_item(nx->text))
			return yaml_node(r, indent);
	}
	return NULL; /* "key:" with nothing below is null */
}

static struct json_object *yaml_seq(struct yaml_reader *r, int indent)
{
	struct json_object *arr = json_object_new_array();

	while (!r->failed && r->i < r->n && r->lines[r->i].indent == indent &&
	       yaml_is_seq_item(r->lines[r->i].text)) {
		struct yaml_line *l = &r->lines[r->i];
		char *rest = l->text + 1;
		int off = 1;

		while (*rest == ' ') {
			rest++;
			off++;
		}
		if (!*rest) {
			r->i++;
			json_object_array_add(arr, yaml_value(r, l->no, "", indent, false));
			continue;
		}
		/* "- key: v" opens a mapping whose keys line up with "key": re-read
		 * this line as if it were indented to that column. */
		l->indent += off;
		l->text = rest;
		json_object_array_add(arr, yaml_node(r, l->indent));
	}
	return arr;
}

/* Splits "key: value" in place; returns the value ("" if none) or NULL. */
static char *yaml_split_key(struct yaml_reader *r, struct yaml_line *l, struct json_object **key)
{
	char *t = l->text, *p;

	*key = NULL;
	if (t[0] == '"' || t[0] == '\'') {
		char q = t[0];

		for (p = t + 1; *p && *p != q; p++)
			if (*p == '\\' && q == '"' && p[1])
				p++;
		if (*p != q || p[1] != ':' || (p[2] && p[2] != ' ')) {
			yaml_fail(r, l->no, "expected \"key: value\"");
			return NULL;
		}
		p[1] = '\0';
		*key = yaml_scalar(r, l->no, t);
		if (!*key || !json_object_is_type(*key, json_type_string)) {
			json_object_put(*key);
			*key = NULL;
			yaml_fail(r, l->no, "bad key");
			return NULL;
		}
		p += 2;
	} else {
		for (p = t; *p; p++)
			if (*p == ':' && (p[1] == ' ' || p[1] == '\0'))
				break;
		if (!*p || p == t) {
			yaml_fail(r, l->no, "expected \"key: value\"");
			return NULL;
		}
		*p++ = '\0';
		*key = json_object_new_string(t);
	}
	while (*p == ' ')
		p++;
	return p;
}

static struct json_object *yaml_map(struct yaml_reader *r, int indent)
{
	struct json_object *obj = json_object_new_object();

	while (!r->failed && r->i < r->n && r->lines[r->i].indent == indent &&
	       !yaml_is_seq_item(r->lines[r->i].text)) {
		struct yaml_line *l = &r->lines[r->i++];
		struct json_object *key, *val;
		char *rest = yaml_split_key(r, l, &key);

		if (!rest)
			break;
		val = yaml_value(r, l->no, rest, indent, true);
		json_object_object_add(obj, json_object_get_string(key), val);
		json_object_put(key);
	}
	return obj;
}

static struct json_object *yaml_node(struct yaml_reader *r, int indent)
{
	struct yaml_line *l = &r->lines[r->i];
	struct json_object *o;

	if (yaml_is_seq_item(l->text))
		return yaml_seq(r, indent);
	if (r->i + 1 == r->n || r->lines[r->i + 1].indent < indent) {
		/* A lone line: a mapping entry or a bare scalar document. */
		char *t = l->text;
		bool is_map = false;

		if (t[0] != '{' && t[0] != '[' && t[0] != '"' && t[0] != '\'')
			is_map = strstr(t, ": ") || (strlen(t) && t[strlen(t) - 1] == ':');
		else if (t[0] == '"' || t[0] == '\'')
			is_map = strstr(t, "\": ") || strstr(t, "': ");
		if (!is_map) {
			r->i++;
			return yaml_scalar(r, l->no, t);
		}
	}
	o = yaml_map(r, indent);
	return o;
}

struct json_object *sl_yaml_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct yaml_reader r = {.err = err, .errlen = errlen};
	struct json_object *root = NULL;
	char *copy, *p, *save = NULL;
	size_t i;
	int no = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!text) {
		/* Empty text may come as NULL; memchr and strndup must not see it. */
		if (len) {
			if (err)
				snprintf(err, errlen, "NULL text of %zu bytes", len);
			errno = EINVAL;
			return NULL;
		}
		text = "";
	}
	for (i = 0;
	     i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t');
	     i++)
		;
	if (i < len && text[i] == '{')
		return sl_json_parse(text, len, err, errlen);
	if (memchr(text, '\0', len)) {
		if (err)
			snprintf(err, errlen, "NUL byte in text");
		errno = EINVAL;
		return NULL;
	}
	copy = strndup(text, len);
	r.lines = calloc(len / 2 + 2, sizeof(*r.lines));
	if (!copy || !r.lines) {
		free(copy);
		free(r.lines);
		errno = ENOMEM;
		return NULL;
	}
	/* strsep, not strtok: blank lines must still count for line numbers. */
	save = copy;
	while ((p = strsep(&save, "\n"))) {
		int ind = 0;

		no++;
		while (p[ind] == ' ')
			ind++;
		if (p[ind] == '\t') {
			yaml_fail(&r, no, "tab in indentation");
			break;
		}
		yaml_strip(p + ind);
		if (!p[ind] || (no == 1 && !strncmp(p, "%YAML", 5)))
			continue;
		if (!strcmp(p, "---")) {
			if (r.n) {
				yaml_fail(&r, no, "more than one document");
				break;
			}
			continue;
		}
		if (!strcmp(p, "..."))
			break;
		r.lines[r.n++] = (struct yaml_line){.no = no, .indent = ind, .text = p + ind};
	}
	if (!r.failed && r.n) {
		root = yaml_node(&r, r.lines[0].indent);
		if (!r.failed && r.i < r.n)
			yaml_fail(&r, r.lines[r.i].no, "bad indentation");
		/* NULL without a failure is a document that is just null ("~",
		 * "null"): callers expect a value, and NULL means an error. */
		if (!r.failed && !root)
			yaml_fail(&r, r.lines[0].no, "the document is null; expected a mapping");
	} else if (!r.failed) {
		root = json_object_new_object(); /* an empty file is an empty document */
	}
	if (r.failed) {
		json_object_put(root);
		root = NULL;
		errno = EINVAL;
	}
	free(r.lines);
	free(copy);
	return root;
}

/* ---- kubeconfig ------------------------------------------------------ */

/* Finds the entry named `name` in a kubeconfig list ("clusters", ...) and
 * returns its `field` member ("cluster", ...). */
static struct json_object *kc_find(struct json_object *root, const char *list, const char *field,
				   const char *name)
{
	struct json_object *arr = sl_json_get(root, list);
	size_t n;

	if (!arr || !json_object_is_type(arr, json_type_array))
		return NULL;
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		const char *en = sl_json_get_str(e, "name");
		struct json_object *f;

		if (!en || strcmp(en, name))
			continue;
		f = sl_json_get(e, field);
		if (!f || !json_object_is_type(f, json_type_object)) {
			/* Present but empty: later checks name the missing field. */
			f = json_object_new_object();
			json_object_object_add(e, field, f);
		}
		return f;
	}
	return NULL;
}

/* A file path from the kubeconfig, made absolute relative to its directory.
 * The result lives in `store` (under a private key) so it shares its lifetime. */
static const char *kc_path(const char *kcpath, const char *p, struct json_object *store,
			   const char *slot)
{
	char *dup, *full;
	const char *dir;
	struct json_object *s;

	if (!p || !*p || p[0] == '/')
		return p;
	dup = strdup(kcpath);
	if (!dup)
		return NULL;
	dir = dirname(dup);
	if (asprintf(&full, "%s/%s", dir, p) < 0) {
		free(dup);
		return NULL;
	}
	free(dup);
	s = json_object_new_string(full);
	free(full);
	json_object_object_add(store, slot, s);
	return json_object_get_string(s);
}

static int kc_read_file(const char *path, char **out, size_t *len, char *err, size_t errlen,
			const char *what)
{
	FILE *f = fopen(path, "re");
	struct sl_buf b = SL_BUF_INIT;
	char chunk[4096];
	size_t n;
	int e;

	*out = NULL;
	if (!f) {
		e = errno;
		snprintf(err, errlen, "%s %s: cannot open: %s", what, path, strerror(e));
		return -e;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + n > KUBECONFIG_MAX) {
			snprintf(err, errlen, "%s %s: larger than %u bytes", what, path,
				 KUBECONFIG_MAX);
			fclose(f);
			sl_buf_fini(&b);
			return -EFBIG;
		}
		sl_buf_append(&b, chunk, n);
	}
	e = ferror(f) ? EIO : 0;
	fclose(f);
	if (e || b.oom || !sl_buf_cstr(&b)) {
		snprintf(err, errlen, "%s %s: read failed", what, path);
		sl_buf_fini(&b);
		return e ? -e : -ENOMEM;
	}
	*out = sl_buf_steal(&b, len);
	return 0;
}

/* Writes "kubeconfig <path>: <message>"; truncation is acceptable. */
static void kc_errf(char *err, size_t errlen, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void kc_errf(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	char m[256];
	va_list ap;
	int n;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	n = snprintf(err, errlen, "kubeconfig %s: ", path);
	if (n >= 0 && (size_t)n < errlen)
		strncat(err, m, errlen - (size_t)n - 1);
}

#define KC_FAIL(...)                                     \
	do {                                             \
		kc_errf(err, errlen, path, __VA_ARGS__); \
		goto fail;                               \
	} while (0)

int sl_kubeconfig_parse(const char *path, const char *text, size_t len, const char *context,
			struct sl_client_opts *o, struct json_object **store, char *err,
			size_t errlen)
{
	struct json_object *root, *ctx, *cluster, *user = NULL, *v;
	const char *ctxname, *clname, *uname;
	char yerr[160];

	memset(o, 0, sizeof(*o));
	*store = NULL;
	root = sl_yaml_parse(text, len, yerr, sizeof(yerr));
	if (!root) {
		kc_errf(err, errlen, path, "%s", yerr[0] ? yerr : "parse failed");
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	}
	if (!json_object_is_type(root, json_type_object))
		KC_FAIL("top level is not a mapping");
	ctxname = context && *context ? context : sl_json_get_str(root, "current-context");
	if (!ctxname || !*ctxname)
		KC_FAIL("no current-context set and no context given");
	ctx = kc_find(root, "contexts", "context", ctxname);
	if (!ctx)
		KC_FAIL("context \"%s\" not found", ctxname);
	clname = sl_json_get_str(ctx, "cluster");
	if (!clname || !*clname)
		KC_FAIL("context \"%s\" names no cluster", ctxname);
	cluster = kc_find(root, "clusters", "cluster", clname);
	if (!cluster)
		KC_FAIL("cluster \"%s\" (from context \"%s\") not found", clname, ctxname);
	o->server = sl_json_get_str(cluster, "server");
	if (!o->server || !*o->server)
		KC_FAIL("cluster \"%s\" has no server", clname);
	if (sl_json_get(cluster, "certificate-authority-data"))
		KC_FAIL("cluster \"%s\": certificate-authority-data is not supported; "
			"write the CA to a file and set certificate-authority",
			clname);
	o->ca_file =
		kc_path(path, sl_json_get_str(cluster, "certificate-authority"), root, "\001ca");
	v = sl_json_get(cluster, "insecure-skip-tls-verify");
	o->insecure = v && (json_object_is_type(v, json_type_boolean)
				    ? json_object_get_boolean(v)
				    : !strcmp(json_object_get_string(v), "true"));

	uname = sl_json_get_str(ctx, "user");
	if (uname && *uname) {
		user = kc_find(root, "users", "user", uname);
		if (!user)
			KC_FAIL("user \"%s\" (from context \"%s\") not found", uname, ctxname);
	}
	if (user) {
		if (sl_json_get(user, "exec") || sl_json_get(user, "auth-provider"))
			KC_FAIL("user \"%s\": exec and auth-provider credentials are not "
				"supported; use token, tokenFile or a client certificate",
				uname);
		if (sl_json_get(user, "client-certificate-data") ||
		    sl_json_get(user, "client-key-data"))
			KC_FAIL("user \"%s\": client-certificate-data/client-key-data are not "
				"supported; use client-certificate and client-key files",
				uname);
		o->token = sl_json_get_str(user, "token");
		o->cert_file = kc_path(path, sl_json_get_str(user, "client-certificate"), root,
				       "\001cert");
		o->key_file = kc_path(path, sl_json_get_str(user, "client-key"), root, "\001key");
		if ((!o->cert_file) != (!o->key_file))
			KC_FAIL("user \"%s\": client-certificate and client-key go together",
				uname);
		if (!o->token && sl_json_get_str(user, "tokenFile")) {
			const char *tf = kc_path(path, sl_json_get_str(user, "tokenFile"), root,
						 "\001tokenfile");
			char *tok = NULL, ferr[200];
			size_t tlen = 0;

			if (!tf || kc_read_file(tf, &tok, &tlen, ferr, sizeof(ferr), "token file"))
				KC_FAIL("user \"%s\": %s", uname, tf ? ferr : "out of memory");
			while (tlen && (tok[tlen - 1] == '\n' || tok[tlen - 1] == '\r' ||
					tok[tlen - 1] == ' '))
				tok[--tlen] = '\0';
			json_object_object_add(root, "\001token", json_object_new_string(tok));
			free(tok);
			o->token = sl_json_get_str(root, "\001token");
			if (!o->token || !*o->token)
				KC_FAIL("user \"%s\": token file %s is empty", uname, tf);
		}
	}
	*store = root;
	return 0;
fail:
	json_object_put(root);
	memset(o, 0, sizeof(*o));
	return -EINVAL;
}

struct sl_client *sl_client_from_kubeconfig(const char *path, const char *context, char *err,
					    size_t errlen)
{
	struct sl_client_opts o = {0};
	struct json_object *store = NULL;
	struct sl_client *c;
	char *text = NULL, cerr[200];
	size_t len = 0;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	rc = kc_read_file(path, &text, &len, err, errlen, "kubeconfig");
	if (rc) {
		errno = -rc;
		return NULL;
	}
	rc = sl_kubeconfig_parse(path, text, len, context, &o, &store, err, errlen);
	free(text);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	c = sl_client_new(&o, cerr, sizeof(cerr));
	if (!c) {
		rc = errno;
		kc_errf(err, errlen, path, "%s", cerr);
		errno = rc;
	}
	json_object_put(store);
	return c;
}
