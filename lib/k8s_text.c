// SPDX-License-Identifier: Apache-2.0
/*
 * k8s_obj_decode_text(): the typed decode of lib/k8s_meta.c, from JSON text
 * straight into the struct, with no json-c tree in between. The descriptors
 * (lib/k8s_desc.h) drive both; this one walks the text in document order
 * with the scanner of lib/jtext.h.
 *
 * Why: a node agent's first LIST is every Service and EndpointSlice in the
 * cluster. Parsing it into json-c (a malloc per value, a hash table per
 * object) and then walking the tree into the typed structs was most of the
 * agent's start at 10,000 Services; this path allocates only the strings and
 * arrays the typed struct keeps, and for the kinds the agent lists (nothing
 * free-form in them) carves even those out of a few blocks: an EndpointSlice
 * of 10 endpoints was ~70 mallocs to decode and ~70 frees on the agent's
 * loop, now two or three of each.
 *
 * Same results as k8s_obj_decode() on the same text, with two differences:
 * `raw` members stay NULL (there is no tree to refer to), so the object is
 * for reading — encoding it drops the fields that have no typed member; and
 * when an object has several problems, the first one *in the text* is the
 * one reported. Duplicate member names: the last one wins, as in json-c,
 * except that a bad value is refused where it stands even when a good one
 * follows under the same name (json-c never looks at the first).
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jtext.h"
#include "k8s_desc.h"
#include "sluice/err.h"
#include "sluice/json.h"

/* The path of the value being decoded, kept as frames and only rendered
 * into a message when something is wrong (formatting a path per member was
 * a visible share of the tree walker's time). */
struct kt {
	struct jt j;
	const char *key[SL_JSON_MAX_DEPTH + 2];
	size_t idx[SL_JSON_MAX_DEPTH + 2];
	int n;
	char *err;
	size_t errlen;
	const char *want_api, *want_kind; /* the kind's apiVersion and kind */
	/* Arena mode (kt_arena_ok kinds): every allocation comes from these
	 * blocks; first is the object's meta.arena. NULL: malloc, as the tree
	 * decoder does, and members are freed one by one. */
	struct kt_block *first, *cur;
};

/* --- arena ------------------------------------------------------------------------------- */

/* An object's blocks: the first of a k8s_text_run's object may be carved out
 * of a shared slab; every other block is a malloc of its own. */
struct kt_block {
	struct kt_block *next;
	struct kt_slab *slab; /* the slab this block is carved out of, or NULL */
	size_t used, cap;
	alignas(max_align_t) char data[];
};

/*
 * A slab of a run: first blocks of consecutive objects, one after the other,
 * each trimmed to what its object used. Freed when the run has moved on to
 * another slab (or ended) and the last object in it is freed, on whichever
 * thread that happens: refs is the only member touched by more than one.
 */
struct kt_slab {
	atomic_size_t refs; /* the run's, while it is current, + one per object */
	size_t used, cap;
	alignas(max_align_t) char data[];
};

struct k8s_text_run {
	struct kt_slab *cur;
};

/* 256 KiB: ~100-150 EndpointSlices of 10 endpoints, a few slabs per list page;
 * an object whose block would take more than an eighth of one gets a block of
 * its own (a slab is released only with the last object in it). */
#define KT_SLAB_SIZE (256 * 1024)

static struct kt_block *kt_block_new(size_t cap)
{
	struct kt_block *b = malloc(sizeof(*b) + cap);

	if (b) {
		b->next = NULL;
		b->slab = NULL;
		b->used = 0;
		b->cap = cap;
	}
	return b;
}

static void kt_slab_put(struct kt_slab *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		free(s);
}

static size_t kt_align(size_t n)
{
	return (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
}

/* A first block of cap bytes from run's current slab (a new slab when it has
 * no room left); NULL for a block too large for a slab, or out of memory. */
static struct kt_block *kt_run_block(struct k8s_text_run *run, size_t cap)
{
	size_t need = kt_align(sizeof(struct kt_block) + cap);
	struct kt_slab *s = run->cur;
	struct kt_block *b;

	if (need > KT_SLAB_SIZE / 8)
		return NULL;
	if (!s || s->cap - s->used < need) {
		struct kt_slab *ns = malloc(sizeof(*ns) + KT_SLAB_SIZE);

		if (!ns)
			return NULL;
		atomic_init(&ns->refs, 1);
		ns->used = 0;
		ns->cap = KT_SLAB_SIZE;
		if (s)
			kt_slab_put(s);
		run->cur = s = ns;
	}
	b = (struct kt_block *)(void *)(s->data + s->used);
	s->used += need;
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	b->next = NULL;
	b->slab = s;
	b->used = 0;
	b->cap = cap;
	return b;
}

struct k8s_text_run *k8s_text_run_new(void)
{
	return calloc(1, sizeof(struct k8s_text_run));
}

void k8s_text_run_end(struct k8s_text_run *run)
{
	if (!run)
		return;
	if (run->cur)
		kt_slab_put(run->cur);
	free(run);
}

void k8s_text_arena_free(void *arena)
{
	for (struct kt_block *b = arena, *next; b; b = next) {
		next = b->next;
		if (b->slab)
			kt_slab_put(b->slab); /* b is in it: next is read first */
		else
			free(b);
	}
}

/* n bytes from the arena (zeroed if zero), or from malloc outside it. */
static void *kt_alloc(struct kt *k, size_t n, bool zero)
{
	struct kt_block *b;
	size_t at;
	void *p;

	if (!k->first)
		return zero ? calloc(1, n ? n : 1) : malloc(n ? n : 1);
	b = k->cur;
	at = (b->used + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	if (at > b->cap || n > b->cap - at) {
		/* Blocks at least as large as the last: a big object takes a
		 * few, not one per member. */
		struct kt_block *nb = kt_block_new(n > b->cap ? n : b->cap);

		if (!nb)
			return NULL;
		b->next = nb;
		k->cur = b = nb;
		at = 0;
	}
	p = b->data + at;
	b->used = at + n;
	if (zero)
		memset(p, 0, n);
	return p;
}

static void *kt_jt_alloc(void *ctx, size_t n)
{
	return kt_alloc(ctx, n, false);
}

/* free() for what kt_alloc returned: a no-op in the arena. */
static void kt_free(struct kt *k, void *p)
{
	if (!k->first)
		free(p);
}

/*
 * Whether objects of this type can live in an arena: not if any member,
 * however deep, is free-form JSON (K8S_F_RAWOBJ holds json-c references,
 * which k8s_obj_free must put one by one). Deeper than the scanner's nesting
 * limit: no (a recursive type; none of the arena kinds is one).
 */
static bool kt_arena_ok(const struct k8s_type *t, int depth)
{
	if (depth > SL_JSON_MAX_DEPTH)
		return false;
	for (const struct k8s_field *f = t->fields; f->key; f++) {
		if (f->type == K8S_F_RAWOBJ)
			return false;
		if ((f->type == K8S_F_OBJ || f->type == K8S_F_LIST) &&
		    !kt_arena_ok(f->sub, depth + 1))
			return false;
	}
	return true;
}

static void kt_push_key(struct kt *k, const char *key)
{
	k->key[k->n] = key;
	k->n++;
}

static void kt_push_idx(struct kt *k, size_t i)
{
	k->key[k->n] = NULL;
	k->idx[k->n] = i;
	k->n++;
}

static int kt_bad(struct kt *k, const char *what)
{
	char path[K8S_PATH_MAX];
	size_t o = 0;
	int n = 0;

	path[0] = '\0';
	for (int i = 0; i < k->n && o < sizeof(path); i++) {
		if (k->key[i])
			n = snprintf(path + o, sizeof(path) - o, "%s%s", o ? "." : "", k->key[i]);
		else
			n = snprintf(path + o, sizeof(path) - o, "[%zu]", k->idx[i]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	/* Cut paths end in "..." so a message never pretends to name a shorter field. */
	if (o >= sizeof(path))
		memcpy(path + sizeof(path) - 4, "...", 4);
	if (k->err && k->errlen) {
		if (path[0])
			snprintf(k->err, k->errlen, "%s: %s", path, what);
		else
			snprintf(k->err, k->errlen, "%s", what);
	}
	return -SL_ERR_INVALID;
}

/* A syntax error: the text is not JSON at all. */
static int kt_syntax(struct kt *k, int rc)
{
	if (rc == -SL_ERR_PARSE) {
		if (k->err && k->errlen)
			snprintf(k->err, k->errlen, "invalid JSON: %s", k->j.err);
		return -SL_ERR_INVALID;
	}
	return rc;
}

static int kt_str(struct kt *k, char **out)
{
	size_t len;
	bool nul;
	int rc;

	if (jt_peek(&k->j) != JT_STRING)
		return kt_bad(k, "expected string");
	rc = jt_string(&k->j, out, &len, &nul);
	if (rc)
		return kt_syntax(k, rc);
	if (nul) {
		/* A \u0000 escape would be silently cut by a C string: refuse it. */
		kt_free(k, *out);
		*out = NULL;
		return kt_bad(k, "string contains a NUL character");
	}
	return 0;
}

static int kt_int(struct kt *k, int64_t lo, int64_t hi, int64_t *out, const char *not_int)
{
	bool is_int, in_range;
	int64_t v;
	int rc;

	if (jt_peek(&k->j) != JT_NUMBER)
		return kt_bad(k, not_int);
	rc = jt_number(&k->j, &is_int, &v, &in_range);
	if (rc)
		return kt_syntax(k, rc);
	if (!is_int)
		return kt_bad(k, not_int);
	if (!in_range || v < lo || v > hi)
		return kt_bad(k, "integer out of range");
	*out = v;
	return 0;
}

static int kt_bool(struct kt *k, bool *out)
{
	enum jt_type t = jt_peek(&k->j);
	int rc;

	if (t != JT_TRUE && t != JT_FALSE)
		return kt_bad(k, "expected boolean");
	rc = jt_literal(&k->j, t);
	if (rc)
		return kt_syntax(k, rc);
	*out = t == JT_TRUE;
	return 0;
}

/* Grows a zeroed array of `size`-byte elements to hold one more. */
static int kt_grow(struct kt *k, void *arrp, size_t n, size_t *cap, size_t size)
{
	char *arr;

	memcpy(&arr, arrp, sizeof(arr));
	if (n < *cap)
		return 0;
	{
		size_t nc = *cap ? *cap * 2 : 4;
		char *v;

		if (k->first) { /* the old array stays in the arena */
			v = kt_alloc(k, nc * size, false);
			if (v && *cap)
				memcpy(v, arr, *cap * size);
		} else {
			v = realloc(arr, nc * size);
		}
		if (!v)
			return -ENOMEM;
		memset(v + *cap * size, 0, (nc - *cap) * size);
		/* The member owns v now (cppcheck cannot follow the memcpy). */
		memcpy(arrp, &v, sizeof(v));
		*cap = nc;
	}
	return 0; // cppcheck-suppress memleak
}

static int kt_strlist(struct kt *k, struct k8s_strlist *l)
{
	size_t cap = 0;
	int rc;

	if (jt_peek(&k->j) != JT_ARRAY)
		return kt_bad(k, "expected array of strings");
	if ((rc = jt_arr_begin(&k->j)))
		return kt_syntax(k, rc);
	while ((rc = jt_arr_next(&k->j)) > 0) {
		if ((rc = kt_grow(k, &l->v, l->n, &cap, sizeof(*l->v))))
			return rc;
		kt_push_idx(k, l->n);
		rc = kt_str(k, &l->v[l->n]);
		k->n--;
		if (rc)
			return rc;
		l->n++;
	}
	return kt_syntax(k, rc);
}

static int kt_strmap(struct kt *k, struct k8s_strmap *m)
{
	const char *key;
	size_t kl, cap = 0;
	int rc;

	if (jt_peek(&k->j) != JT_OBJECT)
		return kt_bad(k, "expected object of strings");
	if ((rc = jt_obj_begin(&k->j)))
		return kt_syntax(k, rc);
	while ((rc = jt_obj_next(&k->j, &key, &kl)) > 0) {
		struct k8s_kv *kv = NULL;
		char *name, *val = NULL;

		if (memchr(key, '\0', kl))
			return kt_bad(k, "member name contains a NUL character");
		name = kt_alloc(k, kl + 1, false);
		if (!name)
			return -ENOMEM;
		memcpy(name, key, kl);
		name[kl] = '\0';
		kt_push_key(k, name);
		rc = kt_str(k, &val);
		k->n--;
		if (rc) {
			kt_free(k, name);
			return rc;
		}
		/* A repeated key keeps its first place and its last value (json-c). */
		for (size_t i = 0; i < m->n && !kv; i++)
			if (!strcmp(m->v[i].key, name))
				kv = &m->v[i];
		if (kv) {
			kt_free(k, name);
			kt_free(k, kv->value);
			kv->value = val;
			continue;
		}
		if ((rc = kt_grow(k, &m->v, m->n, &cap, sizeof(*m->v)))) {
			kt_free(k, name);
			kt_free(k, val);
			return rc;
		}
		m->v[m->n].key = name;
		m->v[m->n].value = val;
		m->n++;
	}
	return kt_syntax(k, rc);
}

static int kt_rawobj(struct kt *k, struct json_object **out)
{
	const char *start;
	char jerr[128];
	int rc;

	if (jt_peek(&k->j) != JT_OBJECT)
		return kt_bad(k, "expected object");
	start = k->j.p;
	if ((rc = jt_skip(&k->j)))
		return kt_syntax(k, rc);
	*out = sl_json_parse(start, (size_t)(k->j.p - start), jerr, sizeof(jerr));
	if (!*out)
		return errno == ENOMEM ? -ENOMEM : kt_bad(k, "invalid JSON object");
	return 0;
}

static int kt_struct(struct kt *k, const struct k8s_type *t, void *out, bool top);

/*
 * The elements of the array the scanner has just opened, counted by skipping
 * them on a copy of the cursor; 0 if the text is bad (the decode then grows
 * the array as it goes and reports the error where it is). Lists of structs
 * are allocated once at their size: growing the endpoints of every
 * EndpointSlice by doubling (4, 8, 16 elements of a few hundred bytes) was a
 * third of a list's decode time, most of it in the allocator.
 */
static size_t kt_count(const struct jt *j)
{
	struct jt c = {.p = j->p, .end = j->end, .base = j->base, .depth = j->depth};
	size_t n = 0;
	int rc;

	while ((rc = jt_arr_next(&c)) > 0) {
		if (jt_skip(&c))
			return 0;
		n++;
	}
	return rc ? 0 : n;
}

static int kt_list(struct kt *k, const struct k8s_field *f, void *s)
{
	size_t *n = (size_t *)((char *)s + f->n_off), cap = 0;
	void *arrp = (char *)s + f->off;
	int rc;

	if (jt_peek(&k->j) != JT_ARRAY)
		return kt_bad(k, "expected array");
	if ((rc = jt_arr_begin(&k->j)))
		return kt_syntax(k, rc);
	cap = kt_count(&k->j);
	if (cap) {
		void *v = cap > SIZE_MAX / f->sub->size ? NULL
							: kt_alloc(k, cap * f->sub->size, true);

		if (!v)
			return -ENOMEM;
		memcpy(arrp, &v, sizeof(v));
	}
	while ((rc = jt_arr_next(&k->j)) > 0) {
		char *arr;

		if ((rc = kt_grow(k, arrp, *n, &cap, f->sub->size)))
			return rc;
		memcpy(&arr, arrp, sizeof(arr));
		/* Counted before it is filled: a zeroed element is valid for fini. */
		(*n)++;
		kt_push_idx(k, *n - 1);
		rc = kt_struct(k, f->sub, arr + (*n - 1) * f->sub->size, false);
		k->n--;
		if (rc)
			return rc;
	}
	return kt_syntax(k, rc);
}

static int kt_member(struct kt *k, const struct k8s_field *f, void *s)
{
	void *p = (char *)s + f->off;
	int64_t i = 0;
	bool b = false;
	int rc;

	switch (f->type) {
	case K8S_F_STR:
		return kt_str(k, (char **)p);
	case K8S_F_I32:
		rc = kt_int(k, INT32_MIN, INT32_MAX, &i, "expected integer");
		if (!rc)
			*(int32_t *)p = (int32_t)i;
		return rc;
	case K8S_F_I64:
		return kt_int(k, INT64_MIN, INT64_MAX, (int64_t *)p, "expected integer");
	case K8S_F_BOOL:
		return kt_bool(k, (bool *)p);
	case K8S_F_TRI:
		rc = kt_bool(k, &b);
		if (!rc)
			*(enum k8s_tri *)p = b ? K8S_TRI_TRUE : K8S_TRI_FALSE;
		return rc;
	case K8S_F_INTSTR: {
		struct k8s_intstr *is = p;

		if (jt_peek(&k->j) == JT_STRING) {
			is->type = K8S_INTSTR_STR;
			return kt_str(k, &is->sval);
		}
		rc = kt_int(k, INT32_MIN, INT32_MAX, &i, "expected integer or string");
		if (!rc) {
			is->type = K8S_INTSTR_INT;
			is->ival = (int32_t)i;
		}
		return rc;
	}
	case K8S_F_TIME:
	case K8S_F_MTIME: {
		char *str = NULL;

		if (jt_peek(&k->j) != JT_STRING)
			return kt_bad(k, "expected string (RFC 3339 time)");
		rc = kt_str(k, &str);
		if (!rc && k8s_time_parse(str, p))
			rc = kt_bad(k, "invalid RFC 3339 time");
		kt_free(k, str);
		return rc;
	}
	case K8S_F_STRLIST:
		return kt_strlist(k, p);
	case K8S_F_STRMAP:
		return kt_strmap(k, p);
	case K8S_F_RAWOBJ:
		return kt_rawobj(k, p);
	case K8S_F_OBJ:
		return kt_struct(k, f->sub, p, false);
	case K8S_F_LIST:
		return kt_list(k, f, s);
	}
	return kt_bad(k, "internal: unknown member type");
}

static const struct k8s_field *kt_field(const struct k8s_type *t, const char *key, size_t kl)
{
	for (const struct k8s_field *f = t->fields; f->key; f++)
		if (f->key[0] == key[0] && !strncmp(f->key, key, kl) && !f->key[kl])
			return f;
	return NULL;
}

/* apiVersion / kind, when present at the top, must name this kind. */
static int kt_typemeta(struct kt *k, const char *want)
{
	char *got = NULL, msg[160];
	int rc = kt_str(k, &got);

	if (rc || !got)
		return rc;
	if (strcmp(got, want)) {
		snprintf(msg, sizeof(msg), "expected \"%s\", got \"%.100s\"", want, got);
		rc = kt_bad(k, msg);
	}
	kt_free(k, got);
	return rc;
}

static int kt_struct(struct kt *k, const struct k8s_type *t, void *out, bool top)
{
	const char *key;
	size_t kl;
	int rc;

	if (jt_peek(&k->j) != JT_OBJECT)
		return kt_bad(k, k->n ? "expected object" : "expected a JSON object");
	if ((rc = jt_obj_begin(&k->j)))
		return kt_syntax(k, rc);
	while ((rc = jt_obj_next(&k->j, &key, &kl)) > 0) {
		const struct k8s_field *f = kl ? kt_field(t, key, kl) : NULL;

		if (!f && top && jt_peek(&k->j) != JT_NULL &&
		    ((kl == 10 && !memcmp(key, "apiVersion", 10)) ||
		     (kl == 4 && !memcmp(key, "kind", 4)))) {
			bool api = kl == 10;

			kt_push_key(k, api ? "apiVersion" : "kind");
			rc = kt_typemeta(k, api ? k->want_api : k->want_kind);
			k->n--;
			if (rc)
				return rc;
			continue;
		}
		if (!f) {
			if ((rc = jt_skip(&k->j)))
				return kt_syntax(k, rc);
			continue;
		}
		/* A repeated member replaces the earlier one; null is absent. */
		/* (In the arena the earlier value stays where it is, released
		 * with the rest.) */
		if (k->first)
			k8s_desc_member_reset(f, out);
		else
			k8s_desc_member_fini(f, out);
		if (jt_peek(&k->j) == JT_NULL) {
			if ((rc = jt_literal(&k->j, JT_NULL)))
				return kt_syntax(k, rc);
			continue;
		}
		kt_push_key(k, f->key);
		rc = kt_member(k, f, out);
		k->n--;
		if (rc)
			return rc;
	}
	return kt_syntax(k, rc);
}

/* Releases the blocks of an object that failed to decode; one carved out of
 * the run's slab (always the last carved) gives its room back. */
static void kt_unwind(struct k8s_text_run *run, struct kt_block *first)
{
	if (run && first && first->slab && first->slab == run->cur)
		run->cur->used = (size_t)((char *)first - run->cur->data);
	k8s_text_arena_free(first); /* accepts NULL */
}

int k8s_obj_decode_text_run(struct k8s_text_run *run, enum k8s_kind kind, const char *text,
			    size_t len, void **out, char *err, size_t errlen)
{
	const struct k8s_type *t;
	struct kt k = {.err = err, .errlen = errlen};
	struct kt_block *first;
	void *o;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	t = k8s_kind_desc(kind, &k.want_api, &k.want_kind);
	if (!t) {
		if (err && errlen)
			snprintf(err, errlen, "unknown kind %d", (int)kind);
		return -EINVAL;
	}
	if (memchr(text, '\0', len)) {
		if (err && errlen)
			snprintf(err, errlen, "invalid JSON: NUL byte in JSON text");
		return -SL_ERR_INVALID;
	}
	jt_init(&k.j, text, len);
	if (kt_arena_ok(t, 0)) {
		/* Room for the struct and about twice the text: most objects fit
		 * in this one block (strings are shorter than their JSON; arrays
		 * of structs can be larger). */
		size_t cap = t->size + 2 * len + 512;

		k.first = k.cur = cap > len && run ? kt_run_block(run, cap) : NULL;
		if (!k.first)
			k.first = k.cur = cap > len ? kt_block_new(cap) : NULL;
		if (!k.first)
			return -ENOMEM;
		k.j.alloc = kt_jt_alloc;
		k.j.alloc_ctx = &k;
	}
	/* The blocks as they stand before the walk (the analyzer cannot see
	 * that it keeps k.first). */
	first = k.first;
	o = first ? kt_alloc(&k, t->size, true) : calloc(1, t->size);
	if (!o) {
		kt_unwind(run, first);
		return -ENOMEM;
	}
	rc = kt_struct(&k, t, o, true);
	if (!rc)
		rc = kt_syntax(&k, jt_finish(&k.j));
	if (rc) {
		if (rc == -ENOMEM && err && errlen)
			snprintf(err, errlen, "out of memory");
		if (first) {
			kt_unwind(run, first);
		} else {
			k8s_desc_fini(t, o);
			free(o);
		}
		return rc;
	}
	if (first) {
		((struct k8s_meta *)k8s_obj_meta(kind, o))->arena = first;
		if (first->slab) {
			/* The slab's next object starts where this one ended:
			 * the block was sized for the worst case. */
			first->cap = kt_align(first->used);
			first->slab->used = (size_t)(first->data - first->slab->data) + first->cap;
		}
	}
	*out = o;
	return 0;
}

int k8s_obj_decode_text(enum k8s_kind kind, const char *text, size_t len, void **out, char *err,
			size_t errlen)
{
	return k8s_obj_decode_text_run(NULL, kind, text, len, out, err, errlen);
}
