// SPDX-License-Identifier: Apache-2.0
/*
 * The three Kubernetes patch formats on json-c trees: JSON merge patch
 * (RFC 7386), JSON patch (RFC 6902 with RFC 6901 pointers) and the subset of
 * strategic merge patch kubectl sends for built-in kinds.
 *
 * Every entry point is functional: it reads `doc` and `patch` (never takes a
 * reference, never serialises them, since json-c caches strings inside the
 * object) and builds a new tree out of fresh copies, so a failure half-way
 * leaves the inputs untouched and the caller sees either a whole result or
 * NULL. JSON patch gets atomicity the same way: the operations run on a private
 * copy that is thrown away on the first error.
 *
 * Inputs come from the network. Everything recursive carries a depth and stops
 * at SL_JSON_MAX_DEPTH nested containers, the same limit sl_json_parse()
 * applies, so a patched object can always be parsed back from storage. JSON
 * patch `copy` can double a document per operation; the nodes it copies are
 * capped (PATCH_MAX_COPY_NODES), like the accumulated-copy limit upstream
 * kube-apiserver sets on evanphx/json-patch.
 *
 * Strategic merge patch, what this implements and where it departs from
 * k8s.io/apimachinery/pkg/util/strategicpatch:
 *  - lists whose merge key function returns a key are merged element-wise by
 *    that key (lookup by hash, not O(n*m)); patch elements whose key is not in
 *    the list are appended in patch order (upstream interleaves them before
 *    unmatched server elements; kubectl apply always sends $setElementOrder,
 *    which fixes the order either way);
 *  - lists with key SL_SMP_SET_MERGE ("") are sets of primitives: union,
 *    duplicates dropped, original order then new values (finalizers);
 *  - every other list is atomic: replaced by the patch's list;
 *  - `$patch: delete` in a list element removes every element with that key,
 *    `$patch: replace` in a list element replaces the list by the patch's other
 *    elements, an element with `$patch: merge` is merged like any other
 *    (upstream rejects it);
 *  - `$patch: replace` in a map replaces the map, `$patch: delete` makes it {}
 *    (as upstream);
 *  - `$setElementOrder/<f>` orders the listed elements as given and keeps
 *    unlisted server elements at their original relative position (upstream's
 *    mergeSortedSlice); `$deleteFromPrimitiveList/<f>` drops those values
 *    before the merge; `$retainKeys` drops the original's unlisted members;
 *  - patch values with no original counterpart are cleaned: null members and
 *    directives dropped, so no directive and no patch null ever reaches the
 *    result (upstream relies on decoding into Go structs for that).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/json.h"
#include "sluice/patch.h"

/* Containers nested deeper than this are rejected (sl_json_parse accepts 64). */
#define PATCH_MAX_NEST SL_JSON_MAX_DEPTH
/* Values one JSON patch may create through `copy`. */
#define PATCH_MAX_COPY_NODES (1u << 18)
/* Bytes of a path or key quoted in an error message. */
#define PATCH_SHOW_LEN 128

/*
 * json-c's accessors are not const-qualified, but everything here only reads
 * through them: no json_object_get(), no json_object_to_json_string() (which
 * caches its output inside the object) on borrowed input.
 */
#define RO(o) ((struct json_object *)(uintptr_t)(o))

struct patch_ctx {
	char *err;		   /* caller's message buffer, may be NULL */
	size_t errlen;		   /* its size */
	bool failed;		   /* first (innermost) message wins */
	int op_idx;		   /* JSON patch operation being applied, -1 otherwise */
	const char *op_name;	   /* its "op" */
	size_t clone_budget;	   /* nodes patch_clone() may still create */
	sl_smp_merge_key_fn keyfn; /* strategic: merge keys, NULL = all lists atomic */
	void *keyarg;		   /* its argument */
	char *path;		   /* strategic: member names joined by '.', NUL-terminated */
	size_t path_len;	   /* bytes used in path */
	size_t path_cap;	   /* bytes allocated */
};

static void patch_ctx_init(struct patch_ctx *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->err = err;
	c->errlen = errlen;
	c->op_idx = -1;
	c->clone_budget = SIZE_MAX;
	if (err && errlen)
		err[0] = '\0';
}

__attribute__((format(printf, 3, 4))) static int patch_fail(struct patch_ctx *c, int errnum,
							    const char *fmt, ...)
{
	va_list ap;
	size_t off = 0;
	int n;

	if (c->failed)
		return -errnum;
	c->failed = true;
	if (!c->err || !c->errlen)
		return -errnum;
	if (c->op_idx >= 0) {
		n = snprintf(c->err, c->errlen, "op %d (%s): ", c->op_idx, c->op_name);
		if (n > 0)
			off = (size_t)n < c->errlen ? (size_t)n : c->errlen - 1;
	}
	va_start(ap, fmt);
	vsnprintf(c->err + off, c->errlen - off, fmt, ap);
	va_end(ap);
	return -errnum;
}

static int patch_oom(struct patch_ctx *c)
{
	return patch_fail(c, ENOMEM, "out of memory");
}

static int patch_too_deep(struct patch_ctx *c)
{
	return patch_fail(c, EINVAL, "result nests deeper than %d levels", PATCH_MAX_NEST);
}

/* Copies s for an error message: bounded, control bytes shown as '?'. */
static const char *patch_show(char out[PATCH_SHOW_LEN], const char *s)
{
	size_t i;

	for (i = 0; i < PATCH_SHOW_LEN - 4 && s[i]; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

static bool is_obj(const struct json_object *o)
{
	return json_object_get_type(o) == json_type_object;
}

static bool is_arr(const struct json_object *o)
{
	return json_object_get_type(o) == json_type_array;
}

static bool is_container(const struct json_object *o)
{
	return is_obj(o) || is_arr(o);
}

/* Member lookup that tells "absent" from "null" (*v == NULL). */
static bool member(const struct json_object *o, const char *key, struct json_object **v)
{
	/*
	 * Absent leaves *v NULL here rather than trusting json-c to clear it
	 * on a miss: callers (smp_merge_map's $retainKeys) test *v alone.
	 */
	if (is_obj(o) && json_object_object_get_ex(RO(o), key, v))
		return true;
	*v = NULL;
	return false;
}

/*
 * Deep copy of src whose top sits below `depth` containers. NULL src is the
 * JSON null and copies to NULL. Returns 0 or a negative errno.
 */
static int patch_clone(struct patch_ctx *c, const struct json_object *src, int depth,
		       struct json_object **out)
{
	struct json_object *dst = NULL, *cv;
	int rc;

	*out = NULL;
	if (!src)
		return 0;
	if (c->clone_budget == 0)
		return patch_fail(c, E2BIG, "copies more than %u values", PATCH_MAX_COPY_NODES);
	c->clone_budget--;
	switch (json_object_get_type(src)) {
	case json_type_object:
		if (depth >= PATCH_MAX_NEST)
			return patch_too_deep(c);
		dst = json_object_new_object();
		if (!dst)
			return patch_oom(c);
		json_object_object_foreach(RO(src), k, v)
		{
			rc = patch_clone(c, v, depth + 1, &cv);
			if (rc)
				goto fail;
			if (json_object_object_add(dst, k, cv)) {
				json_object_put(cv);
				rc = patch_oom(c);
				goto fail;
			}
		}
		break;
	case json_type_array: {
		size_t n = json_object_array_length(src);

		if (depth >= PATCH_MAX_NEST)
			return patch_too_deep(c);
		dst = json_object_new_array_ext(n ? (int)(n < INT_MAX ? n : INT_MAX) : 1);
		if (!dst)
			return patch_oom(c);
		for (size_t i = 0; i < n; i++) {
			rc = patch_clone(c, json_object_array_get_idx(src, i), depth + 1, &cv);
			if (rc)
				goto fail;
			if (json_object_array_add(dst, cv)) {
				json_object_put(cv);
				rc = patch_oom(c);
				goto fail;
			}
		}
		break;
	}
	default:
		/* Scalars: json-c's copy keeps int/uint64 and a double's original text. */
		if (json_object_deep_copy(RO(src), &dst, NULL))
			return patch_oom(c);
		break;
	}
	*out = dst;
	return 0;
fail:
	json_object_put(dst);
	return rc;
}

/* Container nesting of o (scalar 0, [] 1, [[]] 2), at most cap + 1. */
static int patch_nest(const struct json_object *o, int cap)
{
	int best = 0, n;

	if (!is_container(o))
		return 0;
	if (cap <= 0)
		return 1;
	if (is_obj(o)) {
		json_object_object_foreach(RO(o), k, v)
		{
			(void)k;
			n = patch_nest(v, cap - 1);
			if (n > best)
				best = n;
			if (best >= cap)
				break;
		}
	} else {
		size_t len = json_object_array_length(o);

		for (size_t i = 0; i < len && best < cap; i++) {
			n = patch_nest(json_object_array_get_idx(o, i), cap - 1);
			if (n > best)
				best = n;
		}
	}
	return best + 1;
}

static bool is_number(enum json_type t)
{
	return t == json_type_int || t == json_type_double;
}

/*
 * Structural equality for JSON patch `test` and merge keys: member order is
 * ignored, numbers compare by value (1 equals 1.0, as RFC 6902 §4.6 asks).
 */
static bool patch_equal(const struct json_object *a, const struct json_object *b, int depth)
{
	enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);

	if (depth > PATCH_MAX_NEST)
		return false;
	if (is_number(ta) && is_number(tb)) {
		if (ta == json_type_int && tb == json_type_int)
			return json_object_equal(RO(a), RO(b));
		return json_object_get_double(a) == json_object_get_double(b);
	}
	if (ta != tb)
		return false;
	switch (ta) {
	case json_type_null:
		return true;
	case json_type_boolean:
		return !json_object_get_boolean(a) == !json_object_get_boolean(b);
	case json_type_string:
		return json_object_get_string_len(a) == json_object_get_string_len(b) &&
		       !memcmp(json_object_get_string(RO(a)), json_object_get_string(RO(b)),
			       (size_t)json_object_get_string_len(a));
	case json_type_object:
		if (json_object_object_length(a) != json_object_object_length(b))
			return false;
		json_object_object_foreach(RO(a), k, va)
		{
			struct json_object *vb;

			if (!json_object_object_get_ex(RO(b), k, &vb) ||
			    !patch_equal(va, vb, depth + 1))
				return false;
		}
		return true;
	case json_type_array: {
		size_t n = json_object_array_length(a);

		if (n != json_object_array_length(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!patch_equal(json_object_array_get_idx(a, i),
					 json_object_array_get_idx(b, i), depth + 1))
				return false;
		return true;
	}
	default:
		return false;
	}
}

/* ---- JSON merge patch (RFC 7386) ----------------------------------------- */

/* MergePatch(target, patch) of RFC 7386 §2; the result sits below `depth`. */
static int mp_merge(struct patch_ctx *c, const struct json_object *target,
		    const struct json_object *patch, int depth, struct json_object **out)
{
	struct json_object *res, *pv, *v;
	int rc;

	*out = NULL;
	if (!is_obj(patch))
		return patch_clone(c, patch, depth, out);
	if (depth >= PATCH_MAX_NEST)
		return patch_too_deep(c);
	res = json_object_new_object();
	if (!res)
		return patch_oom(c);
	if (is_obj(target)) {
		/* Keep the target's member order; patched members stay in place. */
		json_object_object_foreach(RO(target), k, tv)
		{
			if (member(patch, k, &pv)) {
				if (!pv)
					continue;
				rc = mp_merge(c, tv, pv, depth + 1, &v);
			} else {
				rc = patch_clone(c, tv, depth + 1, &v);
			}
			if (rc)
				goto fail;
			if (json_object_object_add(res, k, v)) {
				json_object_put(v);
				rc = patch_oom(c);
				goto fail;
			}
		}
	}
	json_object_object_foreach(RO(patch), k, pv2)
	{
		if (!pv2 || member(target, k, &v))
			continue;
		/* New members still go through MergePatch({}, v): nulls vanish. */
		rc = mp_merge(c, NULL, pv2, depth + 1, &v);
		if (rc)
			goto fail;
		if (json_object_object_add(res, k, v)) {
			json_object_put(v);
			rc = patch_oom(c);
			goto fail;
		}
	}
	*out = res;
	return 0;
fail:
	json_object_put(res);
	return rc;
}

int sl_patch_merge_ex(const struct json_object *doc, const struct json_object *patch,
		      struct json_object **out, char *err, size_t errlen)
{
	struct patch_ctx c;

	patch_ctx_init(&c, err, errlen);
	return mp_merge(&c, doc, patch, 0, out);
}

static struct json_object *patch_not_null(struct json_object *res, int rc, const char *what,
					  char *err, size_t errlen)
{
	if (rc) {
		errno = -rc;
		return NULL;
	}
	if (!res) {
		if (err && errlen)
			snprintf(err, errlen, "%s: result is null, not a JSON document", what);
		errno = EINVAL;
	}
	return res;
}

struct json_object *sl_patch_merge(const struct json_object *doc, const struct json_object *patch,
				   char *err, size_t errlen)
{
	struct json_object *res = NULL;
	int rc = sl_patch_merge_ex(doc, patch, &res, err, errlen);

	return patch_not_null(res, rc, "merge patch", err, errlen);
}

/* ---- JSON patch (RFC 6902) and JSON pointer (RFC 6901) ------------------- */

struct jp_ptr {
	char **tok;		    /* decoded reference tokens */
	int n;			    /* how many; 0 = the whole document */
	char shown[PATCH_SHOW_LEN]; /* the pointer as written, for messages */
};

static void jp_ptr_free(struct jp_ptr *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->tok[i]);
	free(p->tok);
	p->tok = NULL;
	p->n = 0;
}

/* Parses op[member] as an RFC 6901 pointer. */
static int jp_ptr_parse(struct patch_ctx *c, const struct json_object *op, const char *member_name,
			struct jp_ptr *p)
{
	struct json_object *v;
	const char *s, *seg;
	size_t len;
	int n;

	memset(p, 0, sizeof(*p));
	if (!member(op, member_name, &v))
		return patch_fail(c, EINVAL, "missing \"%s\"", member_name);
	if (!json_object_is_type(v, json_type_string))
		return patch_fail(c, EINVAL, "\"%s\" must be a string", member_name);
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (memchr(s, '\0', len))
		return patch_fail(c, EINVAL, "\"%s\" contains a NUL character", member_name);
	patch_show(p->shown, s);
	if (len == 0)
		return 0;
	if (s[0] != '/')
		return patch_fail(c, EINVAL,
				  "%s \"%s\": a JSON pointer must be empty or start with '/'",
				  member_name, p->shown);
	/* s[0] is a '/', so there is at least one reference token. */
	n = 1;
	for (size_t i = 1; i < len; i++)
		n += s[i] == '/';
	if (n > PATCH_MAX_NEST)
		return patch_fail(c, EINVAL, "%s %s: more than %d levels", member_name, p->shown,
				  PATCH_MAX_NEST);
	p->tok = calloc((size_t)n, sizeof(*p->tok));
	if (!p->tok)
		return patch_oom(c);
	seg = s + 1;
	for (int i = 0; i < n; i++) {
		const char *end = strchr(seg, '/');
		size_t slen = end ? (size_t)(end - seg) : strlen(seg), o = 0;
		char *t = malloc(slen + 1);

		if (!t) {
			jp_ptr_free(p);
			return patch_oom(c);
		}
		p->tok[p->n++] = t;
		for (size_t j = 0; j < slen; j++) {
			if (seg[j] != '~') {
				t[o++] = seg[j];
				continue;
			}
			if (j + 1 < slen && (seg[j + 1] == '0' || seg[j + 1] == '1')) {
				t[o++] = seg[j + 1] == '0' ? '~' : '/';
				j++;
				continue;
			}
			jp_ptr_free(p);
			return patch_fail(c, EINVAL, "%s %s: '~' must be followed by '0' or '1'",
					  member_name, p->shown);
		}
		t[o] = '\0';
		seg += slen + 1;
	}
	return 0;
}

enum jp_index_kind {
	JP_INDEX,  /* a valid index in *idx */
	JP_APPEND, /* "-": one past the end */
	JP_BAD,	   /* not an array index (leading zero, sign, letters, empty) */
	JP_HUGE,   /* digits, but beyond any array */
};

static enum jp_index_kind jp_index(const char *t, size_t *idx)
{
	size_t v = 0;

	if (!strcmp(t, "-"))
		return JP_APPEND;
	if (!t[0] || (t[0] == '0' && t[1]))
		return JP_BAD;
	for (const char *q = t; *q; q++) {
		if (*q < '0' || *q > '9')
			return JP_BAD;
		if (v > (size_t)INT_MAX)
			return JP_HUGE;
		v = v * 10 + (size_t)(*q - '0');
	}
	if (v > (size_t)INT_MAX)
		return JP_HUGE;
	*idx = v;
	return JP_INDEX;
}

/*
 * Resolves the first n tokens of p from root. Returns 0 with the (borrowed)
 * value, or an error naming `what` (the pointer's member, "path" or "from").
 */
static int jp_walk(struct patch_ctx *c, struct json_object *root, const struct jp_ptr *p, int n,
		   const char *what, struct json_object **out)
{
	struct json_object *cur = root;
	char tok[PATCH_SHOW_LEN];

	*out = NULL;
	for (int i = 0; i < n; i++) {
		const char *t = p->tok[i];

		if (is_obj(cur)) {
			if (!json_object_object_get_ex(cur, t, &cur))
				goto missing;
		} else if (is_arr(cur)) {
			size_t idx = 0, len = json_object_array_length(cur);

			switch (jp_index(t, &idx)) {
			case JP_BAD:
				return patch_fail(c, EINVAL, "%s %s: \"%s\" is not an array index",
						  what, p->shown, patch_show(tok, t));
			case JP_APPEND:
			case JP_HUGE:
				idx = SIZE_MAX;
				break;
			case JP_INDEX:
				break;
			}
			if (idx >= len)
				return patch_fail(c, EINVAL,
						  "%s %s: index %s out of bounds (array has %zu "
						  "elements)",
						  what, p->shown, patch_show(tok, t), len);
			cur = json_object_array_get_idx(cur, idx);
		} else {
			goto missing;
		}
	}
	*out = cur;
	return 0;
missing:
	if (n < p->n)
		return patch_fail(c, EINVAL, "%s %s: parent does not exist", what, p->shown);
	return patch_fail(c, EINVAL, "%s %s does not exist", what, p->shown);
}

/*
 * Inserts v at idx <= length. json-c 0.16 has no insert, and shifting with
 * put_idx costs a refcount round trip per element, so grow the array by one
 * slot and move the tail's pointers (ownership moves with them) in the
 * array_list json-c exposes through json_object_get_array().
 */
static int jp_array_insert(struct json_object *arr, size_t idx, struct json_object *v)
{
	size_t n = json_object_array_length(arr);
	struct array_list *al;

	if (json_object_array_add(arr, NULL))
		return -ENOMEM;
	if (idx == n) {
		al = json_object_get_array(arr);
		al->array[idx] = v;
		return 0;
	}
	al = json_object_get_array(arr);
	memmove(&al->array[idx + 1], &al->array[idx], (n - idx) * sizeof(al->array[0]));
	al->array[idx] = v;
	return 0;
}

/* RFC 6902 §4.1 add; takes ownership of v in every case. */
static int jp_add(struct patch_ctx *c, struct json_object **root, const struct jp_ptr *p,
		  struct json_object *v)
{
	struct json_object *parent;
	const char *last;
	char tok[PATCH_SHOW_LEN];
	size_t idx = 0, len;
	int rc;

	if (p->n == 0) {
		json_object_put(*root);
		*root = v;
		return 0;
	}
	rc = jp_walk(c, *root, p, p->n - 1, "path", &parent);
	if (rc)
		goto fail;
	last = p->tok[p->n - 1];
	if (is_obj(parent)) {
		if (json_object_object_add(parent, last, v))
			goto oom;
		return 0;
	}
	if (!is_arr(parent)) {
		rc = patch_fail(c, EINVAL, "path %s: parent is not an object or array", p->shown);
		goto fail;
	}
	len = json_object_array_length(parent);
	switch (jp_index(last, &idx)) {
	case JP_BAD:
		rc = patch_fail(c, EINVAL, "path %s: \"%s\" is not an array index", p->shown,
				patch_show(tok, last));
		goto fail;
	case JP_APPEND:
		idx = len;
		break;
	case JP_HUGE:
		idx = SIZE_MAX;
		break;
	case JP_INDEX:
		break;
	}
	if (idx > len) {
		rc = patch_fail(c, EINVAL,
				"path %s: index %s out of bounds (array has %zu elements)",
				p->shown, patch_show(tok, last), len);
		goto fail;
	}
	if (jp_array_insert(parent, idx, v))
		goto oom;
	return 0;
oom:
	rc = patch_oom(c);
fail:
	json_object_put(v);
	return rc;
}

/*
 * RFC 6902 §4.2 remove. With `taken`, the removed value is handed over (a
 * reference the caller owns) instead of freed: that is `move`.
 */
static int jp_remove(struct patch_ctx *c, struct json_object **root, const struct jp_ptr *p,
		     const char *what, struct json_object **taken)
{
	struct json_object *parent, *v;
	const char *last;
	size_t idx = 0;
	int rc;

	if (taken)
		*taken = NULL;
	if (p->n == 0) {
		if (!taken)
			return patch_fail(c, EINVAL, "%s \"\": cannot remove the whole document",
					  what);
		*taken = *root;
		*root = NULL;
		return 0;
	}
	rc = jp_walk(c, *root, p, p->n, what, &v);
	if (rc)
		return rc;
	/* The walk above proved the parent and the member or index exist. */
	jp_walk(c, *root, p, p->n - 1, what, &parent);
	last = p->tok[p->n - 1];
	if (taken)
		*taken = json_object_get(v);
	if (is_obj(parent)) {
		json_object_object_del(parent, last);
	} else {
		jp_index(last, &idx);
		json_object_array_del_idx(parent, idx, 1);
	}
	return 0;
}

/* RFC 6902 §4.3 replace; takes ownership of v. */
static int jp_replace(struct patch_ctx *c, struct json_object **root, const struct jp_ptr *p,
		      struct json_object *v)
{
	struct json_object *parent, *old;
	size_t idx = 0;
	int rc;

	if (p->n == 0) {
		json_object_put(*root);
		*root = v;
		return 0;
	}
	rc = jp_walk(c, *root, p, p->n, "path", &old);
	if (rc) {
		json_object_put(v);
		return rc;
	}
	jp_walk(c, *root, p, p->n - 1, "path", &parent);
	if (is_obj(parent)) {
		if (json_object_object_add(parent, p->tok[p->n - 1], v)) {
			json_object_put(v);
			return patch_oom(c);
		}
		return 0;
	}
	jp_index(p->tok[p->n - 1], &idx);
	if (json_object_array_put_idx(parent, idx, v)) {
		json_object_put(v);
		return patch_oom(c);
	}
	return 0;
}

static bool jp_is_prefix(const struct jp_ptr *a, const struct jp_ptr *b)
{
	if (a->n > b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->tok[i], b->tok[i]))
			return false;
	return true;
}

/*
 * A value of nesting `nest` placed `ntok` members deep must fit the limit;
 * *bound is an upper bound on the document's nesting, kept so that `move`
 * rarely needs to measure what it moves.
 */
static int jp_check_nest(struct patch_ctx *c, int ntok, int nest, int *bound)
{
	if (ntok + nest > PATCH_MAX_NEST)
		return patch_too_deep(c);
	if (ntok + nest > *bound)
		*bound = ntok + nest;
	return 0;
}

static int jp_apply_op(struct patch_ctx *c, struct json_object **root, const struct json_object *op,
		       size_t *copied, int *bound)
{
	struct jp_ptr path = {0}, from = {0};
	struct json_object *value = NULL, *v = NULL, *opv;
	const char *name;
	bool has_value;
	int rc;

	c->op_name = "?";
	if (!is_obj(op))
		return patch_fail(c, EINVAL, "operation must be a JSON object");
	if (!member(op, "op", &opv) || !json_object_is_type(opv, json_type_string))
		return patch_fail(c, EINVAL, "missing \"op\" string");
	name = json_object_get_string(opv);
	if (strcmp(name, "add") && strcmp(name, "remove") && strcmp(name, "replace") &&
	    strcmp(name, "move") && strcmp(name, "copy") && strcmp(name, "test")) {
		char shown[PATCH_SHOW_LEN];

		return patch_fail(c, EINVAL,
				  "unknown op \"%s\" (expected add, remove, replace, move, copy "
				  "or test)",
				  patch_show(shown, name));
	}
	c->op_name = name;
	rc = jp_ptr_parse(c, op, "path", &path);
	if (rc)
		return rc;
	has_value = member(op, "value", &value);
	if (!strcmp(name, "add") || !strcmp(name, "replace") || !strcmp(name, "test")) {
		if (!has_value) {
			rc = patch_fail(c, EINVAL, "path %s: missing \"value\"", path.shown);
			goto out;
		}
	}
	if (!strcmp(name, "move") || !strcmp(name, "copy")) {
		rc = jp_ptr_parse(c, op, "from", &from);
		if (rc)
			goto out;
	}

	if (!strcmp(name, "add") || !strcmp(name, "replace")) {
		rc = jp_check_nest(c, path.n, patch_nest(value, PATCH_MAX_NEST), bound);
		if (!rc)
			rc = patch_clone(c, value, path.n, &v);
		if (!rc)
			rc = name[0] == 'a' ? jp_add(c, root, &path, v)
					    : jp_replace(c, root, &path, v);
	} else if (!strcmp(name, "remove")) {
		rc = jp_remove(c, root, &path, "path", NULL);
	} else if (!strcmp(name, "test")) {
		rc = path.n ? jp_walk(c, *root, &path, path.n, "path", &v) : (v = *root, 0);
		if (!rc && !patch_equal(v, value, 0))
			rc = patch_fail(c, EINVAL, "path %s: test failed: value differs",
					path.shown);
	} else if (!strcmp(name, "copy")) {
		struct json_object *src;

		rc = from.n ? jp_walk(c, *root, &from, from.n, "from", &src) : (src = *root, 0);
		if (rc)
			goto out;
		c->clone_budget = PATCH_MAX_COPY_NODES - *copied;
		rc = patch_clone(c, src, path.n, &v);
		*copied = PATCH_MAX_COPY_NODES - c->clone_budget;
		c->clone_budget = SIZE_MAX;
		if (!rc)
			rc = jp_check_nest(c, path.n, patch_nest(v, PATCH_MAX_NEST), bound);
		if (!rc)
			rc = jp_add(c, root, &path, v);
		else
			json_object_put(v);
	} else { /* move */
		int nest;

		if (jp_is_prefix(&from, &path) && from.n < path.n) {
			rc = patch_fail(c, EINVAL,
					"from %s: cannot move a value into its own child %s",
					from.shown, path.shown);
			goto out;
		}
		if (jp_is_prefix(&from, &path)) {
			/* from == path: RFC 6902 requires only that it exists. */
			rc = from.n ? jp_walk(c, *root, &from, from.n, "from", &v) : 0;
			goto out;
		}
		rc = jp_remove(c, root, &from, "from", &v);
		if (rc)
			goto out;
		/* Moving up or sideways cannot deepen the document; measure only when needed. */
		nest = *bound - from.n;
		if (path.n + nest > PATCH_MAX_NEST)
			nest = patch_nest(v, PATCH_MAX_NEST);
		rc = jp_check_nest(c, path.n, nest, bound);
		if (!rc)
			rc = jp_add(c, root, &path, v);
		else
			json_object_put(v);
	}
out:
	jp_ptr_free(&path);
	jp_ptr_free(&from);
	return rc;
}

int sl_patch_json_ex(const struct json_object *doc, const struct json_object *patch,
		     struct json_object **out, char *err, size_t errlen)
{
	struct patch_ctx c;
	struct json_object *work = NULL;
	size_t copied = 0, n;
	int rc, bound;

	patch_ctx_init(&c, err, errlen);
	*out = NULL;
	if (!is_arr(patch))
		return patch_fail(&c, EINVAL, "JSON patch must be an array of operations");
	rc = patch_clone(&c, doc, 0, &work);
	if (rc)
		return rc;
	bound = patch_nest(work, PATCH_MAX_NEST);
	n = json_object_array_length(patch);
	for (size_t i = 0; i < n; i++) {
		c.op_idx = i < INT_MAX ? (int)i : INT_MAX;
		rc = jp_apply_op(&c, &work, json_object_array_get_idx(patch, i), &copied, &bound);
		if (rc) {
			json_object_put(work);
			return rc;
		}
	}
	*out = work;
	return 0;
}

struct json_object *sl_patch_json(const struct json_object *doc, const struct json_object *patch,
				  char *err, size_t errlen)
{
	struct json_object *res = NULL;
	int rc = sl_patch_json_ex(doc, patch, &res, err, errlen);

	return patch_not_null(res, rc, "JSON patch", err, errlen);
}

/* ---- Strategic merge patch ------------------------------------------------ */

#define SMP_ORDER_PREFIX  "$setElementOrder/"
#define SMP_DELETE_PREFIX "$deleteFromPrimitiveList/"

static bool smp_is_directive(const char *k)
{
	return !strcmp(k, "$patch") || !strcmp(k, "$retainKeys") ||
	       !strncmp(k, SMP_ORDER_PREFIX, strlen(SMP_ORDER_PREFIX)) ||
	       !strncmp(k, SMP_DELETE_PREFIX, strlen(SMP_DELETE_PREFIX));
}

/* Appends ".name" (or "name" at the top) to the path; returns the old length. */
static int smp_path_push(struct patch_ctx *c, const char *name, size_t *old)
{
	size_t n = strlen(name), need = c->path_len + n + 2;

	*old = c->path_len;
	if (need > c->path_cap) {
		size_t cap = c->path_cap ? c->path_cap : 64;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->path, cap);
		if (!p)
			return patch_oom(c);
		c->path = p;
		c->path_cap = cap;
	}
	if (c->path_len)
		c->path[c->path_len++] = '.';
	memcpy(c->path + c->path_len, name, n);
	c->path_len += n;
	c->path[c->path_len] = '\0';
	return 0;
}

static void smp_path_pop(struct patch_ctx *c, size_t old)
{
	c->path_len = old;
	if (c->path)
		c->path[old] = '\0';
}

static const char *smp_path_show(struct patch_ctx *c, char out[PATCH_SHOW_LEN])
{
	return patch_show(out, c->path_len ? c->path : "(top)");
}

/*
 * A hash index over scalar JSON values (merge keys, set members, order
 * positions) so merging two lists costs O(n + m), not O(n * m): list sizes are
 * the client's choice.
 */
struct smp_slot {
	const struct json_object *key; /* borrowed */
	uint64_t h;		       /* smp_hash(key) */
	int item;		       /* what the key maps to */
	bool used;
};

struct smp_index {
	struct smp_slot *slot;
	size_t mask; /* slots - 1, a power of two minus one */
};

static uint64_t smp_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* Consistent with patch_equal for scalars: 1 and 1.0 hash alike. */
static uint64_t smp_hash(const struct json_object *o)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	switch (json_object_get_type(o)) {
	case json_type_boolean:
		return smp_mix(json_object_get_boolean(o) ? 2 : 1);
	case json_type_int:
		return smp_mix((uint64_t)json_object_get_int64(o) ^ 0x1234);
	case json_type_double: {
		double d = json_object_get_double(o);
		uint64_t bits;

		if (d >= -9.2e18 && d <= 9.2e18 && (double)(int64_t)d == d)
			return smp_mix((uint64_t)(int64_t)d ^ 0x1234);
		memcpy(&bits, &d, sizeof(bits));
		return smp_mix(bits);
	}
	case json_type_string: {
		const unsigned char *s = (const unsigned char *)json_object_get_string(RO(o));
		int n = json_object_get_string_len(o);

		for (int i = 0; i < n; i++)
			h = (h ^ s[i]) * 0x100000001b3ULL;
		return smp_mix(h);
	}
	default:
		/* null, and containers (never indexed, only looked up: they never match). */
		return smp_mix(7);
	}
}

static int smp_index_init(struct patch_ctx *c, struct smp_index *x, size_t entries)
{
	size_t n = 16;

	while (n < 2 * entries + 2)
		n *= 2;
	x->slot = calloc(n, sizeof(*x->slot));
	x->mask = n - 1;
	return x->slot ? 0 : patch_oom(c);
}

static void smp_index_put(struct smp_index *x, const struct json_object *key, int item)
{
	uint64_t h = smp_hash(key);
	size_t i = h & x->mask;

	while (x->slot[i].used)
		i = (i + 1) & x->mask;
	x->slot[i] = (struct smp_slot){.key = key, .h = h, .item = item, .used = true};
}

/*
 * Iterates the entries equal to key in insertion order: start with *pos =
 * SIZE_MAX; returns the item or -1 at the end.
 */
static int smp_index_next(const struct smp_index *x, const struct json_object *key, uint64_t h,
			  size_t *pos)
{
	size_t i = *pos == SIZE_MAX ? (h & x->mask) : ((*pos + 1) & x->mask);

	for (; x->slot[i].used; i = (i + 1) & x->mask) {
		if (x->slot[i].h == h && patch_equal(x->slot[i].key, key, 0)) {
			*pos = i;
			return x->slot[i].item;
		}
	}
	return -1;
}

static int smp_index_first(const struct smp_index *x, const struct json_object *key)
{
	size_t pos = SIZE_MAX;

	return smp_index_next(x, key, smp_hash(key), &pos);
}

static void smp_index_fini(struct smp_index *x)
{
	free(x->slot);
	x->slot = NULL;
}

struct smp_item {
	const struct json_object *src; /* element as given (original or patch), borrowed */
	struct json_object *val;       /* merged value we own when has_val */
	bool has_val;
	const struct json_object *key; /* merge key value, or the element in a set (borrowed) */
	bool keyed;		       /* key is meaningful */
	int orig_idx;		       /* position in the original list, -1 if new */
	int opos;		       /* position in $setElementOrder, -1 if not listed */
	bool dead;		       /* deleted by a directive */
};

enum smp_list_mode {
	SMP_ATOMIC, /* no merge key: the original, minus $deleteFromPrimitiveList */
	SMP_SET,    /* primitives merged as a set */
	SMP_KEYED,  /* maps merged by a key */
};

static int smp_merge_map(struct patch_ctx *c, const struct json_object *orig,
			 const struct json_object *patch, int depth, struct json_object **out);
static int smp_merge_value(struct patch_ctx *c, const struct json_object *ov,
			   const struct json_object *pv, const struct json_object *del,
			   const struct json_object *order, int depth, struct json_object **out);

/* The merge key value of a list element, if it has a scalar one. */
static bool smp_elem_key(const struct json_object *e, const char *key,
			 const struct json_object **kv)
{
	struct json_object *v;

	if (!member(e, key, &v) || is_container(v))
		return false;
	*kv = v;
	return true;
}

/*
 * If e is a list element carrying a `$patch` directive, returns it ("" if not
 * a string). `$patch: merge` is the default, so such an element is an ordinary
 * one (its map merge drops the directive) and NULL is returned.
 */
static const char *smp_elem_directive(const struct json_object *e)
{
	struct json_object *d;
	const char *s;

	if (!member(e, "$patch", &d))
		return NULL;
	s = json_object_is_type(d, json_type_string) ? json_object_get_string(d) : "";
	return strcmp(s, "merge") ? s : NULL;
}

/* An atomic list from the patch: its elements cleaned, directive markers dropped. */
static int smp_atomic_list(struct patch_ctx *c, const struct json_object *pv, int depth,
			   struct json_object **out)
{
	size_t n = json_object_array_length(pv);
	struct json_object *res, *v;
	char shown[PATCH_SHOW_LEN];
	int rc;

	res = json_object_new_array();
	if (!res)
		return patch_oom(c);
	for (size_t i = 0; i < n; i++) {
		const struct json_object *e = json_object_array_get_idx(pv, i);
		const char *d = smp_elem_directive(e);

		if (d && !strcmp(d, "replace"))
			continue;
		if (d) {
			rc = patch_fail(
				c, EINVAL,
				"list %s: element %zu: \"$patch\": \"%s\" needs a list with "
				"a merge key",
				smp_path_show(c, shown), i, d);
			goto fail;
		}
		rc = smp_merge_value(c, NULL, e, NULL, NULL, depth + 1, &v);
		if (rc)
			goto fail;
		if (json_object_array_add(res, v)) {
			json_object_put(v);
			rc = patch_oom(c);
			goto fail;
		}
	}
	*out = res;
	return 0;
fail:
	json_object_put(res);
	return rc;
}

/* Applies $setElementOrder to the live items (see the file comment). */
static int smp_list_order(struct patch_ctx *c, struct smp_item *items, size_t nitems,
			  enum smp_list_mode mode, const char *key, const struct json_object *order,
			  size_t **perm_out)
{
	size_t n = json_object_array_length(order), nl = 0, nr = 0, *left, *right, *perm;
	struct smp_index x = {0};
	char shown[PATCH_SHOW_LEN];
	int rc;

	rc = smp_index_init(c, &x, n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const struct json_object *e = json_object_array_get_idx(order, i), *kv = e;

		if (mode == SMP_KEYED && !smp_elem_key(e, key, &kv)) {
			smp_index_fini(&x);
			return patch_fail(
				c, EINVAL,
				"$setElementOrder/%s: element %zu has no merge key \"%s\"",
				smp_path_show(c, shown), i, key);
		}
		if (is_container(kv)) {
			smp_index_fini(&x);
			return patch_fail(
				c, EINVAL,
				"$setElementOrder/%s: element %zu is not a primitive value",
				smp_path_show(c, shown), i);
		}
		if (smp_index_first(&x, kv) < 0)
			smp_index_put(&x, kv, (int)i);
	}
	/* perm: nitems + terminator, then left and right scratch. */
	perm = calloc(nitems * 3 + 1, sizeof(*perm));
	if (!perm) {
		smp_index_fini(&x);
		return patch_oom(c);
	}
	left = perm + nitems + 1;
	right = left + nitems;
	for (size_t i = 0; i < nitems; i++) {
		if (items[i].dead)
			continue;
		items[i].opos = items[i].keyed ? smp_index_first(&x, items[i].key) : -1;
		if (items[i].opos >= 0)
			right[nr++] = i;
		else
			left[nl++] = i;
	}
	smp_index_fini(&x);
	/* Listed items in listed order: a counting pass keeps it O(n) and stable. */
	{
		size_t *cnt = calloc(n + 1, sizeof(*cnt)), *tmp;

		tmp = malloc((nr + 1) * sizeof(*tmp));
		if (!cnt || !tmp) {
			free(cnt);
			free(tmp);
			free(perm);
			return patch_oom(c);
		}
		for (size_t i = 0; i < nr; i++)
			cnt[items[right[i]].opos + 1]++;
		for (size_t i = 1; i <= n; i++)
			cnt[i] += cnt[i - 1];
		for (size_t i = 0; i < nr; i++)
			tmp[cnt[items[right[i]].opos]++] = right[i];
		memcpy(right, tmp, nr * sizeof(*tmp));
		free(cnt);
		free(tmp);
	}
	/*
	 * Interleave: an unlisted server element goes before the next listed
	 * one when both come from the server and it came first there.
	 */
	{
		size_t i = 0, j = 0, k = 0;

		while (i < nl || j < nr) {
			if (j >= nr || (i < nl && items[left[i]].orig_idx >= 0 &&
					items[right[j]].orig_idx >= 0 &&
					items[left[i]].orig_idx < items[right[j]].orig_idx))
				perm[k++] = left[i++];
			else
				perm[k++] = right[j++];
		}
		perm[k] = SIZE_MAX;
	}
	*perm_out = perm;
	return 0;
}

/*
 * Merges list pv into list ov (either may be NULL) under the field's merge key.
 * del is $deleteFromPrimitiveList/<field>, order $setElementOrder/<field>.
 */
static int smp_merge_list(struct patch_ctx *c, const struct json_object *ov,
			  const struct json_object *pv, const struct json_object *del,
			  const struct json_object *order, int depth, struct json_object **out)
{
	size_t nov = ov ? json_object_array_length(ov) : 0,
	       npv = pv ? json_object_array_length(pv) : 0;
	const char *key = c->keyfn ? c->keyfn(c->path ? c->path : "", c->keyarg) : NULL;
	struct smp_index idx = {0}, delx = {0};
	struct smp_item *items = NULL;
	size_t nitems = 0, *perm = NULL, norig;
	enum smp_list_mode mode;
	char shown[PATCH_SHOW_LEN];
	struct json_object *res = NULL, *v;
	bool replace = false, any_scalar = false, any_container = false;
	int rc;

	*out = NULL;
	if (depth >= PATCH_MAX_NEST)
		return patch_too_deep(c);
	if (!key && pv)
		return smp_atomic_list(c, pv, depth, out);

	/*
	 * A list with a merge key holding primitives is merged as a set, as
	 * upstream does; an empty one (or only directives) stays keyed so a
	 * `$patch: delete` on a missing list is a no-op, not an error.
	 */
	for (size_t i = 0; i < nov + npv; i++) {
		const struct json_object *e = i < nov ? json_object_array_get_idx(ov, i)
						      : json_object_array_get_idx(pv, i - nov);

		if (!is_container(e))
			any_scalar = true;
		else if (i < nov || !smp_elem_directive(e))
			any_container = true;
	}
	if (!key)
		mode = SMP_ATOMIC;
	else if (!*key || (any_scalar && !any_container))
		mode = SMP_SET;
	else
		mode = SMP_KEYED;
	if (mode == SMP_SET && any_container)
		return patch_fail(c, EINVAL,
				  "list %s: a merged list of primitive values holds an object or a "
				  "list",
				  smp_path_show(c, shown));

	items = calloc(nov + npv + 1, sizeof(*items));
	if (!items)
		return patch_oom(c);
	rc = smp_index_init(c, &idx, nov + npv);
	if (rc)
		goto out;
	if (del) {
		size_t nd = json_object_array_length(del);

		rc = smp_index_init(c, &delx, nd);
		if (rc)
			goto out;
		for (size_t i = 0; i < nd; i++) {
			const struct json_object *e = json_object_array_get_idx(del, i);

			if (is_container(e)) {
				rc = patch_fail(c, EINVAL,
						"$deleteFromPrimitiveList/%s: element %zu is not a "
						"primitive value",
						smp_path_show(c, shown), i);
				goto out;
			}
			smp_index_put(&delx, e, (int)i);
		}
	}

	/* The original, minus deleted primitives (and duplicates, for a set). */
	for (size_t i = 0; i < nov; i++) {
		const struct json_object *e = json_object_array_get_idx(ov, i);
		struct smp_item *it = &items[nitems];

		if (del && smp_index_first(&delx, e) >= 0)
			continue;
		it->src = e;
		it->orig_idx = i < INT_MAX ? (int)i : INT_MAX;
		if (mode == SMP_SET) {
			if (smp_index_first(&idx, e) >= 0)
				continue;
			it->key = e;
			it->keyed = true;
		} else if (mode == SMP_KEYED) {
			it->keyed = smp_elem_key(e, key, &it->key);
		}
		if (it->keyed)
			smp_index_put(&idx, it->key, (int)nitems);
		nitems++;
	}
	norig = nitems;

	/* Directive elements first, as upstream: deletions see the original only. */
	for (size_t i = 0; i < npv; i++) {
		const struct json_object *e = json_object_array_get_idx(pv, i), *kv;
		const char *d = smp_elem_directive(e);
		size_t pos = SIZE_MAX;
		uint64_t h;
		int it;

		if (!d)
			continue;
		if (!strcmp(d, "replace")) {
			replace = true;
		} else if (!strcmp(d, "delete")) {
			if (mode != SMP_KEYED) {
				rc = patch_fail(
					c, EINVAL,
					"list %s: element %zu: \"$patch\": \"delete\" needs "
					"a list with a merge key",
					smp_path_show(c, shown), i);
				goto out;
			}
			if (!smp_elem_key(e, key, &kv)) {
				rc = patch_fail(
					c, EINVAL,
					"list %s: element %zu: \"$patch\": \"delete\" without "
					"merge key \"%s\"",
					smp_path_show(c, shown), i, key);
				goto out;
			}
			h = smp_hash(kv);
			while ((it = smp_index_next(&idx, kv, h, &pos)) >= 0)
				items[it].dead = true;
		} else {
			char dshown[PATCH_SHOW_LEN];

			rc = patch_fail(c, EINVAL,
					"list %s: element %zu: unknown \"$patch\" directive \"%s\" "
					"(expected replace, delete or merge)",
					smp_path_show(c, shown), i, patch_show(dshown, d));
			goto out;
		}
	}
	if (replace)
		for (size_t i = 0; i < norig; i++)
			items[i].dead = true;

	for (size_t i = 0; i < npv; i++) {
		const struct json_object *e = json_object_array_get_idx(pv, i), *kv = e;
		struct smp_item *it;
		size_t pos = SIZE_MAX;
		int found = -1;

		if (smp_elem_directive(e))
			continue;
		if (mode == SMP_KEYED) {
			if (!is_obj(e) || !smp_elem_key(e, key, &kv)) {
				rc = patch_fail(
					c, EINVAL,
					"list %s: element %zu has no merge key \"%s\" (or it "
					"is not a primitive value)",
					smp_path_show(c, shown), i, key);
				goto out;
			}
		}
		if (mode != SMP_ATOMIC) {
			uint64_t h = smp_hash(kv);

			while ((found = smp_index_next(&idx, kv, h, &pos)) >= 0 &&
			       items[found].dead)
				;
		}
		if (found >= 0) {
			if (mode == SMP_SET)
				continue;
			it = &items[found];
			rc = smp_merge_map(c, it->has_val ? it->val : it->src, e, depth + 1, &v);
			if (rc)
				goto out;
			json_object_put(it->val);
			it->val = v;
			it->has_val = true;
			continue;
		}
		it = &items[nitems];
		it->src = e;
		it->orig_idx = -1;
		it->key = kv;
		it->keyed = mode != SMP_ATOMIC;
		if (mode == SMP_KEYED) {
			rc = smp_merge_map(c, NULL, e, depth + 1, &it->val);
			if (rc)
				goto out;
			it->has_val = true;
		}
		if (it->keyed)
			smp_index_put(&idx, kv, (int)nitems);
		nitems++;
	}

	if (order && mode != SMP_ATOMIC) {
		rc = smp_list_order(c, items, nitems, mode, key, order, &perm);
		if (rc)
			goto out;
	}

	res = json_object_new_array();
	if (!res) {
		rc = patch_oom(c);
		goto out;
	}
	for (size_t k = 0; perm ? perm[k] != SIZE_MAX : k < nitems; k++) {
		struct smp_item *it = &items[perm ? perm[k] : k];

		if (it->dead)
			continue;
		if (it->has_val) {
			v = it->val;
			it->val = NULL;
			it->has_val = false;
		} else {
			rc = patch_clone(c, it->src, depth + 1, &v);
			if (rc)
				goto out;
		}
		if (json_object_array_add(res, v)) {
			json_object_put(v);
			rc = patch_oom(c);
			goto out;
		}
	}
	*out = res;
	res = NULL;
	rc = 0;
out:
	json_object_put(res);
	for (size_t i = 0; i < nitems; i++)
		json_object_put(items[i].val);
	free(items);
	free(perm);
	smp_index_fini(&idx);
	smp_index_fini(&delx);
	return rc;
}

/* Merges patch value pv (may be NULL = absent) into ov for the current path. */
static int smp_merge_value(struct patch_ctx *c, const struct json_object *ov,
			   const struct json_object *pv, const struct json_object *del,
			   const struct json_object *order, int depth, struct json_object **out)
{
	if (is_obj(pv))
		return smp_merge_map(c, is_obj(ov) ? ov : NULL, pv, depth, out);
	if (is_arr(pv))
		return smp_merge_list(c, is_arr(ov) ? ov : NULL, pv, del, order, depth, out);
	if (!pv && is_arr(ov) && (del || order))
		return smp_merge_list(c, ov, NULL, del, order, depth, out);
	return patch_clone(c, pv ? pv : ov, depth, out);
}

/* patch["<prefix><field>"], which must be a list when present. */
static int smp_field_directive(struct patch_ctx *c, const struct json_object *patch,
			       const char *prefix, const char *field,
			       const struct json_object **out)
{
	char *name, shown[PATCH_SHOW_LEN];
	struct json_object *v;
	bool found;

	*out = NULL;
	if (asprintf(&name, "%s%s", prefix, field) < 0)
		return patch_oom(c);
	found = member(patch, name, &v);
	free(name);
	if (!found)
		return 0;
	if (!is_arr(v))
		return patch_fail(c, EINVAL, "%s%s must be a list", prefix,
				  patch_show(shown, field));
	*out = v;
	return 0;
}

static int smp_add_field(struct patch_ctx *c, struct json_object *res, const char *k,
			 const struct json_object *ov, const struct json_object *pv,
			 const struct json_object *patch, bool has_list_dirs, int depth)
{
	const struct json_object *del = NULL, *order = NULL;
	struct json_object *v;
	size_t old;
	int rc;

	if (has_list_dirs) {
		rc = smp_field_directive(c, patch, SMP_DELETE_PREFIX, k, &del);
		if (!rc)
			rc = smp_field_directive(c, patch, SMP_ORDER_PREFIX, k, &order);
		if (rc)
			return rc;
	}
	rc = smp_path_push(c, k, &old);
	if (rc)
		return rc;
	rc = smp_merge_value(c, ov, pv, del, order, depth + 1, &v);
	smp_path_pop(c, old);
	if (rc)
		return rc;
	if (json_object_object_add(res, k, v)) {
		json_object_put(v);
		return patch_oom(c);
	}
	return 0;
}

/*
 * Merges map patch into orig (NULL or not a map: nothing to merge into, the
 * patch is only cleaned). The result sits below `depth` containers.
 */
static int smp_merge_map(struct patch_ctx *c, const struct json_object *orig,
			 const struct json_object *patch, int depth, struct json_object **out)
{
	struct json_object *d, *res, *retain = NULL, *pv;
	struct smp_index keep = {0};
	bool has_list_dirs = false;
	char shown[PATCH_SHOW_LEN];
	int rc = 0;

	*out = NULL;
	if (depth >= PATCH_MAX_NEST)
		return patch_too_deep(c);
	if (!is_obj(orig))
		orig = NULL;
	if (member(patch, "$patch", &d)) {
		const char *s =
			json_object_is_type(d, json_type_string) ? json_object_get_string(d) : "";

		if (!strcmp(s, "replace")) {
			orig = NULL;
		} else if (!strcmp(s, "delete")) {
			*out = json_object_new_object();
			return *out ? 0 : patch_oom(c);
		} else if (strcmp(s, "merge")) {
			char dshown[PATCH_SHOW_LEN];

			return patch_fail(c, EINVAL,
					  "map %s: unknown \"$patch\" directive \"%s\" (expected "
					  "replace, delete or merge)",
					  smp_path_show(c, shown), patch_show(dshown, s));
		}
	}
	if (member(patch, "$retainKeys", &retain)) {
		size_t n = is_arr(retain) ? json_object_array_length(retain) : 0;

		if (!is_arr(retain))
			return patch_fail(c, EINVAL, "map %s: $retainKeys must be a list",
					  smp_path_show(c, shown));
		rc = smp_index_init(c, &keep, n);
		if (rc)
			return rc;
		for (size_t i = 0; i < n; i++) {
			const struct json_object *e = json_object_array_get_idx(retain, i);

			if (!json_object_is_type(e, json_type_string)) {
				smp_index_fini(&keep);
				return patch_fail(c, EINVAL,
						  "map %s: $retainKeys element %zu is not a string",
						  smp_path_show(c, shown), i);
			}
			smp_index_put(&keep, e, (int)i);
		}
	}
	json_object_object_foreach(RO(patch), pk, pval)
	{
		(void)pval;
		if (!strncmp(pk, SMP_ORDER_PREFIX, strlen(SMP_ORDER_PREFIX)) ||
		    !strncmp(pk, SMP_DELETE_PREFIX, strlen(SMP_DELETE_PREFIX)))
			has_list_dirs = true;
	}

	res = json_object_new_object();
	if (!res) {
		smp_index_fini(&keep);
		return patch_oom(c);
	}
	if (orig) {
		json_object_object_foreach(RO(orig), k, ov)
		{
			bool in_patch = !smp_is_directive(k) && member(patch, k, &pv);

			if (retain) {
				/* A throwaway string to look the member name up by value. */
				struct json_object *ks = json_object_new_string(k);
				bool kept;

				if (!ks) {
					rc = patch_oom(c);
					goto fail;
				}
				kept = smp_index_first(&keep, ks) >= 0;
				json_object_put(ks);
				if (!kept)
					continue;
			}
			if (in_patch && !pv)
				continue; /* null deletes */
			rc = smp_add_field(c, res, k, ov, in_patch ? pv : NULL, patch,
					   has_list_dirs, depth);
			if (rc)
				goto fail;
		}
	}
	json_object_object_foreach(RO(patch), k, pv2)
	{
		struct json_object *ov;

		if (!pv2 || smp_is_directive(k) || member(orig, k, &ov))
			continue;
		rc = smp_add_field(c, res, k, NULL, pv2, patch, has_list_dirs, depth);
		if (rc)
			goto fail;
	}
	smp_index_fini(&keep);
	*out = res;
	return 0;
fail:
	smp_index_fini(&keep);
	json_object_put(res);
	return rc;
}

struct json_object *sl_patch_strategic(const struct json_object *doc,
				       const struct json_object *patch, sl_smp_merge_key_fn keyfn,
				       void *arg, char *err, size_t errlen)
{
	struct patch_ctx c;
	struct json_object *res = NULL;
	int rc;

	patch_ctx_init(&c, err, errlen);
	c.keyfn = keyfn;
	c.keyarg = arg;
	if (doc && !is_obj(doc))
		rc = patch_fail(&c, EINVAL, "strategic merge patch: the document is not an object");
	else if (!is_obj(patch))
		rc = patch_fail(&c, EINVAL, "strategic merge patch must be a JSON object");
	else
		rc = smp_merge_map(&c, doc, patch, 0, &res);
	free(c.path);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	return res;
}

/* ---- Merge keys of the built-in kinds ------------------------------------ */

/*
 * Path suffixes, matched on member-name boundaries, so "spec.containers"
 * covers a Pod and "spec.template.spec.containers" a Deployment, ReplicaSet,
 * DaemonSet, StatefulSet or Job (and a CronJob's jobTemplate, for free).
 * key NULL documents a list that is atomic upstream; anything not listed is
 * atomic too. Exact entries match the whole path only (EndpointSlice's
 * top-level lists).
 */
struct smp_key_rule {
	const char *suffix;
	const char *key;
	bool exact;
};

#define POD_CONTAINER_RULES(c)                                                    \
	{"spec." c, "name", false}, {"spec." c ".ports", "containerPort", false}, \
		{"spec." c ".env", "name", false},                                \
		{"spec." c ".volumeMounts", "mountPath", false},                  \
		{"spec." c ".volumeDevices", "devicePath", false},                \
		{"spec." c ".resizePolicy", "resourceName", false},               \
	{                                                                         \
		"spec." c ".envFrom", NULL, false                                 \
	}

static const struct smp_key_rule smp_builtin_rules[] = {
	/* ObjectMeta, wherever it appears (pod templates included). */
	{"metadata.ownerReferences", "uid", false},
	{"metadata.finalizers", SL_SMP_SET_MERGE, false},
	{"metadata.managedFields", NULL, false},
	/* PodSpec: Pod spec.*, workload spec.template.spec.* */
	POD_CONTAINER_RULES("containers"),
	POD_CONTAINER_RULES("initContainers"),
	POD_CONTAINER_RULES("ephemeralContainers"),
	{"spec.volumes", "name", false},
	{"spec.imagePullSecrets", "name", false},
	{"spec.hostAliases", "ip", false},
	{"spec.topologySpreadConstraints", "topologyKey", false},
	{"spec.schedulingGates", "name", false},
	{"spec.resourceClaims", "name", false},
	{"spec.tolerations", NULL, false},
	/* Service (PodSpec has no spec.ports, so the suffix is unambiguous). */
	{"spec.ports", "port", false},
	/* Node */
	{"spec.podCIDRs", SL_SMP_SET_MERGE, false},
	{"spec.taints", NULL, false},
	{"status.addresses", "type", false},
	/* Pod, Node, Service, workloads */
	{"status.conditions", "type", false},
	{"status.podIPs", "ip", false},
	{"status.hostIPs", "ip", false},
	/* NetworkPolicy: atomic upstream. */
	{"spec.ingress", NULL, false},
	{"spec.egress", NULL, false},
	{"spec.policyTypes", NULL, false},
	/* EndpointSlice: atomic upstream. */
	{"endpoints", NULL, true},
	{"ports", NULL, true},
};

const char *sl_smp_builtin_merge_key(const char *path, void *arg)
{
	size_t plen;

	(void)arg;
	if (!path)
		return NULL;
	plen = strlen(path);
	for (size_t i = 0; i < sizeof(smp_builtin_rules) / sizeof(smp_builtin_rules[0]); i++) {
		const struct smp_key_rule *r = &smp_builtin_rules[i];
		size_t sl = strlen(r->suffix);

		if (plen == sl && !strcmp(path, r->suffix))
			return r->key;
		if (!r->exact && plen > sl && path[plen - sl - 1] == '.' &&
		    !strcmp(path + plen - sl, r->suffix))
			return r->key;
	}
	return NULL;
}
