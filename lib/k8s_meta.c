// SPDX-License-Identifier: Apache-2.0
/*
 * The engine behind the typed Kubernetes objects (sluice/k8s.h): one
 * descriptor-driven walker that decodes, encodes, compares and frees any
 * struct described in lib/k8s_desc.h, plus ObjectMeta and the other shared
 * nested types, and the kind table behind k8s_obj_*().
 *
 * Round-trip rules, applied per typed member when encoding:
 *   1. raw has the member and it decodes to the typed value: copy raw verbatim
 *      (keeps "+01:00", explicit null, "nodePort": 0, [] and {});
 *   2. else the typed value is the default (NULL, 0, unset): leave it out;
 *   3. else write the typed value in canonical form.
 * Members of raw without a typed counterpart are deep-copied as they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_desc.h"
#include "sluice/err.h"
#include "sluice/json.h"

/* --- shared nested types ------------------------------------------------------------------ */

K8S_TYPE(k8s_owner_ref_type, k8s_owner_ref, F_STR("apiVersion", struct k8s_owner_ref, api_version),
	 F_STR("kind", struct k8s_owner_ref, kind), F_STR("name", struct k8s_owner_ref, name),
	 F_STR("uid", struct k8s_owner_ref, uid),
	 F_TRI("controller", struct k8s_owner_ref, controller),
	 F_TRI("blockOwnerDeletion", struct k8s_owner_ref, block_owner_deletion));

K8S_TYPE_PUBLIC(k8s_meta_type, k8s_meta, F_STR("name", struct k8s_meta, name),
		F_STR("generateName", struct k8s_meta, generate_name),
		F_STR("namespace", struct k8s_meta, namespace), F_STR("uid", struct k8s_meta, uid),
		F_STR("resourceVersion", struct k8s_meta, resource_version),
		F_I64("generation", struct k8s_meta, generation),
		F_TIME("creationTimestamp", struct k8s_meta, creation_timestamp),
		F_TIME("deletionTimestamp", struct k8s_meta, deletion_timestamp),
		F_I64("deletionGracePeriodSeconds", struct k8s_meta, deletion_grace_period_seconds),
		F_STRMAP("labels", struct k8s_meta, labels),
		F_STRMAP("annotations", struct k8s_meta, annotations),
		F_LIST("ownerReferences", struct k8s_meta, owner_references, k8s_owner_ref,
		       k8s_owner_ref_type),
		F_STRLIST("finalizers", struct k8s_meta, finalizers));

K8S_TYPE_PUBLIC(k8s_objref_type, k8s_objref, F_STR("apiVersion", struct k8s_objref, api_version),
		F_STR("kind", struct k8s_objref, kind),
		F_STR("namespace", struct k8s_objref, namespace),
		F_STR("name", struct k8s_objref, name), F_STR("uid", struct k8s_objref, uid),
		F_STR("resourceVersion", struct k8s_objref, resource_version),
		F_STR("fieldPath", struct k8s_objref, field_path));

K8S_TYPE_PUBLIC(k8s_condition_type, k8s_condition, F_STR("type", struct k8s_condition, type),
		F_STR("status", struct k8s_condition, status),
		F_STR("reason", struct k8s_condition, reason),
		F_STR("message", struct k8s_condition, message),
		F_TIME("lastTransitionTime", struct k8s_condition, last_transition_time));

/* --- helpers ----------------------------------------------------------------------------- */

static int k8s_bad(char *err, size_t errlen, const char *path, const char *what)
{
	if (err && errlen) {
		if (path && *path)
			snprintf(err, errlen, "%s: %s", path, what);
		else
			snprintf(err, errlen, "%s", what);
	}
	return -SL_ERR_INVALID;
}

/* Cut paths end in "..." so a message never pretends to name a shorter field. */
static void k8s_path_cut(char *dst, int n)
{
	if (n < 0 || n >= K8S_PATH_MAX)
		memcpy(dst + K8S_PATH_MAX - 4, "...", 4);
}

static void k8s_path_key(char *dst, const char *path, const char *key)
{
	k8s_path_cut(dst, snprintf(dst, K8S_PATH_MAX, "%s%s%s", path, *path ? "." : "", key));
}

static void k8s_path_idx(char *dst, const char *path, size_t i)
{
	k8s_path_cut(dst, snprintf(dst, K8S_PATH_MAX, "%s[%zu]", path, i));
}

static struct json_object **k8s_rawp(const void *s)
{
	return (struct json_object **)s;
}

static void *k8s_memb(const void *s, size_t off)
{
	return (char *)s + off;
}

static char *k8s_get_strp(const void *p)
{
	char *s;

	memcpy(&s, p, sizeof(s));
	return s;
}

static bool k8s_str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool k8s_is_known(const struct k8s_type *t, const char *key)
{
	for (const struct k8s_field *f = t->fields; f->key; f++)
		if (!strcmp(f->key, key))
			return true;
	return false;
}

/* Adds val (ownership taken, NULL = JSON null) to obj. */
static int k8s_add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (json_object_object_add(obj, key, val)) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

/* Deep copy that maps JSON null to JSON null (NULL) and reports failure separately. */
static int k8s_copy(struct json_object *v, struct json_object **out)
{
	*out = NULL;
	if (!v)
		return 0;
	*out = sl_json_clone(v);
	return *out ? 0 : -ENOMEM;
}

/* --- scalar members ----------------------------------------------------------------------- */

/* Big enough for any scalar member (decoded into it when comparing with raw). */
union k8s_scalar {
	char *s;
	int32_t i32;
	int64_t i64;
	bool b;
	enum k8s_tri tri;
	struct k8s_intstr is;
	struct k8s_time tm;
	struct k8s_strlist sl;
	struct k8s_strmap sm;
	struct json_object *obj;
};

static int k8s_dec_str(struct json_object *v, char **out, const char *path, char *err,
		       size_t errlen)
{
	const char *s;
	int len;

	if (!json_object_is_type(v, json_type_string))
		return k8s_bad(err, errlen, path, "expected string");
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	/* A \u0000 escape would be silently cut by a C string: refuse it. */
	if (strlen(s) != (size_t)len)
		return k8s_bad(err, errlen, path, "string contains a NUL character");
	*out = strndup(s, (size_t)len);
	return *out ? 0 : -ENOMEM;
}

static int k8s_dec_int(struct json_object *v, int64_t lo, int64_t hi, int64_t *out,
		       const char *path, char *err, size_t errlen)
{
	int64_t i;

	if (!json_object_is_type(v, json_type_int))
		return k8s_bad(err, errlen, path, "expected integer");
	i = json_object_get_int64(v);
	/* json-c clamps unsigned values above INT64_MAX; see through the clamp. */
	if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return k8s_bad(err, errlen, path, "integer out of range");
	if (i < lo || i > hi)
		return k8s_bad(err, errlen, path, "integer out of range");
	*out = i;
	return 0;
}

static void k8s_scalar_fini(enum k8s_ftype type, void *p)
{
	switch (type) {
	case K8S_F_STR:
		free(k8s_get_strp(p));
		memset(p, 0, sizeof(char *));
		break;
	case K8S_F_INTSTR: {
		struct k8s_intstr *is = p;

		free(is->sval);
		memset(is, 0, sizeof(*is));
		break;
	}
	case K8S_F_STRLIST:
		k8s_strlist_fini(p);
		break;
	case K8S_F_STRMAP:
		k8s_strmap_fini(p);
		break;
	case K8S_F_RAWOBJ: {
		struct json_object **o = p;

		json_object_put(*o);
		*o = NULL;
		break;
	}
	default:
		break;
	}
}

/* Decodes a non-null JSON value into the member at p (zeroed on entry). */
static int k8s_scalar_decode(enum k8s_ftype type, struct json_object *v, void *p, const char *path,
			     char *err, size_t errlen)
{
	char child[K8S_PATH_MAX];
	int64_t i;
	int rc;

	switch (type) {
	case K8S_F_STR: {
		char *s = NULL;

		rc = k8s_dec_str(v, &s, path, err, errlen);
		memcpy(p, &s, sizeof(s));
		return rc;
	}
	case K8S_F_I32:
		rc = k8s_dec_int(v, INT32_MIN, INT32_MAX, &i, path, err, errlen);
		if (!rc)
			*(int32_t *)p = (int32_t)i;
		return rc;
	case K8S_F_I64:
		return k8s_dec_int(v, INT64_MIN, INT64_MAX, (int64_t *)p, path, err, errlen);
	case K8S_F_BOOL:
	case K8S_F_TRI:
		if (!json_object_is_type(v, json_type_boolean))
			return k8s_bad(err, errlen, path, "expected boolean");
		if (type == K8S_F_BOOL)
			*(bool *)p = json_object_get_boolean(v);
		else
			*(enum k8s_tri *)p =
				json_object_get_boolean(v) ? K8S_TRI_TRUE : K8S_TRI_FALSE;
		return 0;
	case K8S_F_INTSTR: {
		struct k8s_intstr *is = p;

		if (json_object_is_type(v, json_type_string)) {
			is->type = K8S_INTSTR_STR;
			return k8s_dec_str(v, &is->sval, path, err, errlen);
		}
		if (!json_object_is_type(v, json_type_int))
			return k8s_bad(err, errlen, path, "expected integer or string");
		rc = k8s_dec_int(v, INT32_MIN, INT32_MAX, &i, path, err, errlen);
		if (!rc) {
			is->type = K8S_INTSTR_INT;
			is->ival = (int32_t)i;
		}
		return rc;
	}
	case K8S_F_TIME:
	case K8S_F_MTIME:
		if (!json_object_is_type(v, json_type_string))
			return k8s_bad(err, errlen, path, "expected string (RFC 3339 time)");
		if (k8s_time_parse(json_object_get_string(v), p))
			return k8s_bad(err, errlen, path, "invalid RFC 3339 time");
		return 0;
	case K8S_F_STRLIST: {
		struct k8s_strlist *l = p;
		size_t n;

		if (!json_object_is_type(v, json_type_array))
			return k8s_bad(err, errlen, path, "expected array of strings");
		n = json_object_array_length(v);
		if (!n)
			return 0;
		l->v = calloc(n, sizeof(*l->v));
		if (!l->v)
			return -ENOMEM;
		for (size_t k = 0; k < n; k++) {
			struct json_object *e = json_object_array_get_idx(v, k);

			k8s_path_idx(child, path, k);
			if (!e)
				return k8s_bad(err, errlen, child, "expected string");
			rc = k8s_dec_str(e, &l->v[k], child, err, errlen);
			if (rc)
				return rc;
			l->n = k + 1;
		}
		return 0;
	}
	case K8S_F_STRMAP: {
		struct k8s_strmap *m = p;
		size_t n, k = 0;

		if (!json_object_is_type(v, json_type_object))
			return k8s_bad(err, errlen, path, "expected object of strings");
		n = (size_t)json_object_object_length(v);
		if (!n)
			return 0;
		m->v = calloc(n, sizeof(*m->v));
		if (!m->v)
			return -ENOMEM;
		json_object_object_foreach(v, key, val)
		{
			k8s_path_key(child, path, key);
			if (!val)
				return k8s_bad(err, errlen, child, "expected string");
			rc = k8s_dec_str(val, &m->v[k].value, child, err, errlen);
			if (rc)
				return rc;
			m->v[k].key = strdup(key);
			m->n = ++k;
			if (!m->v[k - 1].key)
				return -ENOMEM;
		}
		return 0;
	}
	case K8S_F_RAWOBJ:
		if (!json_object_is_type(v, json_type_object))
			return k8s_bad(err, errlen, path, "expected object");
		*(struct json_object **)p = json_object_get(v);
		return 0;
	default:
		return k8s_bad(err, errlen, path, "internal: not a scalar member");
	}
}

static bool k8s_scalar_is_default(enum k8s_ftype type, const void *p)
{
	switch (type) {
	case K8S_F_STR:
		return k8s_get_strp(p) == NULL;
	case K8S_F_I32:
		return *(const int32_t *)p == 0;
	case K8S_F_I64:
		return *(const int64_t *)p == 0;
	case K8S_F_BOOL:
		return !*(const bool *)p;
	case K8S_F_TRI:
		return *(const enum k8s_tri *)p == K8S_TRI_UNSET;
	case K8S_F_INTSTR: {
		const struct k8s_intstr *is = p;

		return is->type == K8S_INTSTR_NONE || (is->type == K8S_INTSTR_STR && !is->sval);
	}
	case K8S_F_TIME: /* at the precision each is written with */
		return ((const struct k8s_time *)p)->sec == 0;
	case K8S_F_MTIME:
		return ((const struct k8s_time *)p)->sec == 0 &&
		       ((const struct k8s_time *)p)->nsec / 1000 == 0;
	case K8S_F_STRLIST:
		return ((const struct k8s_strlist *)p)->n == 0;
	case K8S_F_STRMAP:
		return ((const struct k8s_strmap *)p)->n == 0;
	case K8S_F_RAWOBJ:
		return *(struct json_object *const *)p == NULL;
	default:
		return true;
	}
}

static bool k8s_strmap_equal(const struct k8s_strmap *a, const struct k8s_strmap *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const char *bv = k8s_strmap_get(b, a->v[i].key);

		if (!bv || !k8s_str_eq(a->v[i].value, bv))
			return false;
	}
	return true;
}

static bool k8s_scalar_equal(enum k8s_ftype type, const void *a, const void *b)
{
	bool da = k8s_scalar_is_default(type, a), db = k8s_scalar_is_default(type, b);

	/* Absent and explicit default are the same value (as in the Go types). */
	if (da || db)
		return da && db;
	switch (type) {
	case K8S_F_STR:
		return k8s_str_eq(k8s_get_strp(a), k8s_get_strp(b));
	case K8S_F_I32:
		return *(const int32_t *)a == *(const int32_t *)b;
	case K8S_F_I64:
		return *(const int64_t *)a == *(const int64_t *)b;
	case K8S_F_BOOL:
		return *(const bool *)a == *(const bool *)b;
	case K8S_F_TRI:
		return *(const enum k8s_tri *)a == *(const enum k8s_tri *)b;
	case K8S_F_INTSTR: {
		const struct k8s_intstr *x = a, *y = b;

		if (x->type != y->type)
			return false;
		return x->type == K8S_INTSTR_INT ? x->ival == y->ival
						 : k8s_str_eq(x->sval, y->sval);
	}
	case K8S_F_TIME: {
		/* metav1.Time is serialised with second precision. */
		const struct k8s_time *x = a, *y = b;

		return x->sec == y->sec;
	}
	case K8S_F_MTIME: {
		const struct k8s_time *x = a, *y = b;

		return x->sec == y->sec && x->nsec / 1000 == y->nsec / 1000;
	}
	case K8S_F_STRLIST: {
		const struct k8s_strlist *x = a, *y = b;

		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (!k8s_str_eq(x->v[i], y->v[i]))
				return false;
		return true;
	}
	case K8S_F_STRMAP:
		return k8s_strmap_equal(a, b);
	case K8S_F_RAWOBJ:
		return sl_json_equal(*(struct json_object *const *)a,
				     *(struct json_object *const *)b);
	default:
		return false;
	}
}

/* Canonical JSON for a non-default scalar; NULL with errno on failure. */
static struct json_object *k8s_scalar_encode(enum k8s_ftype type, const void *p)
{
	struct json_object *o = NULL;

	switch (type) {
	case K8S_F_STR:
		o = json_object_new_string(k8s_get_strp(p));
		break;
	case K8S_F_I32:
		o = json_object_new_int64(*(const int32_t *)p);
		break;
	case K8S_F_I64:
		o = json_object_new_int64(*(const int64_t *)p);
		break;
	case K8S_F_BOOL:
		o = json_object_new_boolean(*(const bool *)p);
		break;
	case K8S_F_TRI:
		o = json_object_new_boolean(*(const enum k8s_tri *)p == K8S_TRI_TRUE);
		break;
	case K8S_F_INTSTR: {
		const struct k8s_intstr *is = p;

		o = is->type == K8S_INTSTR_INT ? json_object_new_int64(is->ival)
					       : json_object_new_string(is->sval);
		break;
	}
	case K8S_F_TIME:
	case K8S_F_MTIME: {
		char buf[K8S_TIME_BUFSZ];
		int rc = k8s_time_format(p, type == K8S_F_MTIME, buf, sizeof(buf));

		if (rc < 0) {
			errno = -rc;
			return NULL;
		}
		o = json_object_new_string(buf);
		break;
	}
	case K8S_F_STRLIST: {
		const struct k8s_strlist *l = p;

		o = json_object_new_array_ext((int)l->n);
		for (size_t i = 0; o && i < l->n; i++) {
			struct json_object *e = json_object_new_string(l->v[i] ? l->v[i] : "");

			if (!e || json_object_array_add(o, e)) {
				json_object_put(e);
				json_object_put(o);
				o = NULL;
			}
		}
		break;
	}
	case K8S_F_STRMAP: {
		const struct k8s_strmap *m = p;

		o = json_object_new_object();
		for (size_t i = 0; o && i < m->n; i++) {
			if (!m->v[i].key)
				continue;
			if (sl_json_set_str(o, m->v[i].key, m->v[i].value ? m->v[i].value : "")) {
				json_object_put(o);
				o = NULL;
			}
		}
		break;
	}
	case K8S_F_RAWOBJ:
		o = sl_json_clone(*(struct json_object *const *)p);
		break;
	default:
		errno = EINVAL;
		return NULL;
	}
	if (!o)
		errno = ENOMEM;
	return o;
}

/* --- struct walker ------------------------------------------------------------------------ */

static int k8s_list_decode(const struct k8s_field *f, struct json_object *v, void *s,
			   const char *path, char *err, size_t errlen)
{
	const struct k8s_type *sub = f->sub;
	char child[K8S_PATH_MAX];
	size_t n;
	char *arr;
	int rc;

	if (!json_object_is_type(v, json_type_array))
		return k8s_bad(err, errlen, path, "expected array");
	n = json_object_array_length(v);
	if (!n)
		return 0;
	arr = calloc(n, sub->size);
	if (!arr)
		return -ENOMEM;
	/* Publish at once: zeroed elements are valid for k8s_desc_fini on failure. */
	memcpy(k8s_memb(s, f->off), &arr, sizeof(arr));
	*(size_t *)k8s_memb(s, f->n_off) = n;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);

		k8s_path_idx(child, path, i);
		rc = k8s_desc_decode(sub, e, arr + i * sub->size, child, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

int k8s_desc_decode(const struct k8s_type *t, struct json_object *obj, void *out, const char *path,
		    char *err, size_t errlen)
{
	char child[K8S_PATH_MAX];
	int rc = 0;

	if (!obj || !json_object_is_type(obj, json_type_object))
		return k8s_bad(err, errlen, path,
			       *path ? "expected object" : "expected a JSON object");
	*k8s_rawp(out) = json_object_get(obj);
	for (const struct k8s_field *f = t->fields; f->key && !rc; f++) {
		struct json_object *v = NULL;

		/* null is how Go clients write an unset pointer: same as absent. */
		if (!json_object_object_get_ex(obj, f->key, &v) || !v)
			continue;
		k8s_path_key(child, path, f->key);
		if (f->type == K8S_F_OBJ)
			rc = k8s_desc_decode(f->sub, v, k8s_memb(out, f->off), child, err, errlen);
		else if (f->type == K8S_F_LIST)
			rc = k8s_list_decode(f, v, out, child, err, errlen);
		else
			rc = k8s_scalar_decode(f->type, v, k8s_memb(out, f->off), child, err,
					       errlen);
	}
	return rc;
}

static bool k8s_desc_is_empty(const struct k8s_type *t, const void *s)
{
	if (*k8s_rawp(s))
		return false;
	for (const struct k8s_field *f = t->fields; f->key; f++) {
		const void *p = k8s_memb(s, f->off);

		if (f->type == K8S_F_OBJ) {
			if (!k8s_desc_is_empty(f->sub, p))
				return false;
		} else if (f->type == K8S_F_LIST) {
			if (*(const size_t *)k8s_memb(s, f->n_off))
				return false;
		} else if (!k8s_scalar_is_default(f->type, p)) {
			return false;
		}
	}
	return true;
}

/* Encodes one typed member into out following the rules at the top of the file. */
static int k8s_field_encode(const struct k8s_field *f, const void *s, struct json_object *raw,
			    struct json_object *out)
{
	const void *p = k8s_memb(s, f->off);
	struct json_object *rv = NULL, *j;
	bool present = raw && json_object_object_get_ex(raw, f->key, &rv);

	if (f->type == K8S_F_OBJ) {
		if (*k8s_rawp(p) || !k8s_desc_is_empty(f->sub, p)) {
			j = k8s_desc_encode(f->sub, p);
			return j ? k8s_add(out, f->key, j) : -ENOMEM;
		}
		return present && !rv ? k8s_add(out, f->key, NULL) : 0;
	}
	if (f->type == K8S_F_LIST) {
		size_t n = *(const size_t *)k8s_memb(s, f->n_off);
		const char *arr = k8s_get_strp(p);

		/* Same rules as scalars: keep null and [] spellings of "empty", drop a
		 * list the caller emptied. */
		if (!n) {
			if (!present)
				return 0;
			if (!rv)
				return k8s_add(out, f->key, NULL);
			if (!json_object_is_type(rv, json_type_array) ||
			    json_object_array_length(rv))
				return 0;
			j = json_object_new_array();
			return j ? k8s_add(out, f->key, j) : -ENOMEM;
		}
		j = json_object_new_array_ext((int)n);
		if (!j || k8s_add(out, f->key, j))
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = k8s_desc_encode(f->sub, arr + i * f->sub->size);

			if (!e || json_object_array_add(j, e)) {
				json_object_put(e);
				return -ENOMEM;
			}
		}
		return 0;
	}
	if (present) {
		union k8s_scalar tmp;
		bool same;

		if (!rv) {
			if (k8s_scalar_is_default(f->type, p))
				return k8s_add(out, f->key, NULL);
		} else {
			if (f->type == K8S_F_STR) {
				/* The common case, compared without a temporary copy. */
				const char *cur = k8s_get_strp(p);
				size_t len = (size_t)json_object_get_string_len(rv);

				same = cur && json_object_is_type(rv, json_type_string) &&
				       strlen(cur) == len &&
				       !memcmp(cur, json_object_get_string(rv), len);
			} else {
				memset(&tmp, 0, sizeof(tmp));
				same = !k8s_scalar_decode(f->type, rv, &tmp, "", NULL, 0) &&
				       k8s_scalar_equal(f->type, &tmp, p);
				k8s_scalar_fini(f->type, &tmp);
			}
			if (same) {
				if (k8s_copy(rv, &j))
					return -ENOMEM;
				return k8s_add(out, f->key, j);
			}
		}
	}
	if (k8s_scalar_is_default(f->type, p))
		return 0;
	j = k8s_scalar_encode(f->type, p);
	return j ? k8s_add(out, f->key, j) : -errno;
}

struct json_object *k8s_desc_encode(const struct k8s_type *t, const void *s)
{
	struct json_object *raw = *k8s_rawp(s), *out, *copy;
	int rc = 0;

	if (raw && !json_object_is_type(raw, json_type_object))
		raw = NULL;
	out = json_object_new_object();
	if (!out) {
		errno = ENOMEM;
		return NULL;
	}
	if (raw) {
		json_object_object_foreach(raw, key, val)
		{
			if (k8s_is_known(t, key))
				continue;
			rc = k8s_copy(val, &copy);
			if (!rc)
				rc = k8s_add(out, key, copy);
			if (rc)
				break;
		}
	}
	for (const struct k8s_field *f = t->fields; f->key && !rc; f++)
		rc = k8s_field_encode(f, s, raw, out);
	if (rc) {
		json_object_put(out);
		errno = -rc;
		return NULL;
	}
	return out;
}

/* Counts raw members without a typed counterpart. */
static size_t k8s_unknown_count(const struct k8s_type *t, struct json_object *raw)
{
	size_t n = 0;

	if (!raw || !json_object_is_type(raw, json_type_object))
		return 0;
	json_object_object_foreach(raw, key, val)
	{
		(void)val;
		n += !k8s_is_known(t, key);
	}
	return n;
}

/* typed_only: compare the typed members and ignore raw (unknown members). */
static bool k8s_desc_equal_ex(const struct k8s_type *t, const void *a, const void *b,
			      bool typed_only)
{
	struct json_object *ra = *k8s_rawp(a), *rb = *k8s_rawp(b);

	for (const struct k8s_field *f = t->fields; f->key; f++) {
		const void *pa = k8s_memb(a, f->off), *pb = k8s_memb(b, f->off);

		if (f->type == K8S_F_OBJ) {
			if (!k8s_desc_equal_ex(f->sub, pa, pb, typed_only))
				return false;
		} else if (f->type == K8S_F_LIST) {
			size_t n = *(const size_t *)k8s_memb(a, f->n_off);
			const char *xa = k8s_get_strp(pa), *xb = k8s_get_strp(pb);

			if (n != *(const size_t *)k8s_memb(b, f->n_off))
				return false;
			for (size_t i = 0; i < n; i++)
				if (!k8s_desc_equal_ex(f->sub, xa + i * f->sub->size,
						       xb + i * f->sub->size, typed_only))
					return false;
		} else if (!k8s_scalar_equal(f->type, pa, pb)) {
			return false;
		}
	}
	if (typed_only)
		return true;
	if (k8s_unknown_count(t, ra) != k8s_unknown_count(t, rb))
		return false;
	if (!k8s_unknown_count(t, ra))
		return true;
	json_object_object_foreach(ra, key, va)
	{
		struct json_object *vb;

		if (k8s_is_known(t, key))
			continue;
		if (!json_object_object_get_ex(rb, key, &vb) || !sl_json_equal(va, vb))
			return false;
	}
	return true;
}

bool k8s_desc_equal(const struct k8s_type *t, const void *a, const void *b)
{
	return k8s_desc_equal_ex(t, a, b, false);
}

void k8s_desc_member_reset(const struct k8s_field *f, void *s)
{
	void *p = k8s_memb(s, f->off);

	switch (f->type) {
	case K8S_F_STR:
	case K8S_F_RAWOBJ:
		memset(p, 0, sizeof(void *));
		break;
	case K8S_F_I32:
		*(int32_t *)p = 0;
		break;
	case K8S_F_I64:
		*(int64_t *)p = 0;
		break;
	case K8S_F_BOOL:
		*(bool *)p = false;
		break;
	case K8S_F_TRI:
		*(enum k8s_tri *)p = K8S_TRI_UNSET;
		break;
	case K8S_F_INTSTR:
		memset(p, 0, sizeof(struct k8s_intstr));
		break;
	case K8S_F_TIME:
	case K8S_F_MTIME:
		memset(p, 0, sizeof(struct k8s_time));
		break;
	case K8S_F_STRLIST:
		memset(p, 0, sizeof(struct k8s_strlist));
		break;
	case K8S_F_STRMAP:
		memset(p, 0, sizeof(struct k8s_strmap));
		break;
	case K8S_F_OBJ:
		memset(p, 0, f->sub->size);
		break;
	case K8S_F_LIST:
		memset(p, 0, sizeof(void *));
		*(size_t *)k8s_memb(s, f->n_off) = 0;
		break;
	}
}

void k8s_desc_member_fini(const struct k8s_field *f, void *s)
{
	void *p = k8s_memb(s, f->off);

	if (f->type == K8S_F_OBJ) {
		k8s_desc_fini(f->sub, p);
	} else if (f->type == K8S_F_LIST) {
		size_t n = *(size_t *)k8s_memb(s, f->n_off);
		char *arr = k8s_get_strp(p);

		for (size_t i = 0; i < n; i++)
			k8s_desc_fini(f->sub, arr + i * f->sub->size);
		free(arr);
	} else {
		k8s_scalar_fini(f->type, p);
	}
	/* Plain scalars too: a repeated member decoded as null is absent. */
	k8s_desc_member_reset(f, s);
}

void k8s_desc_fini(const struct k8s_type *t, void *s)
{
	if (!s)
		return;
	for (const struct k8s_field *f = t->fields; f->key; f++)
		k8s_desc_member_fini(f, s);
	json_object_put(*k8s_rawp(s));
	memset(s, 0, t->size);
}

/* --- kinds -------------------------------------------------------------------------------- */

struct k8s_kind_info {
	const char *api_version;
	const char *kind;
	const struct k8s_type *type;
	size_t meta_off;
};

/* st is a struct tag and cannot take parentheses (the check knows that). */
#define K8S_KIND(av, k, ty, st)                             \
	{                                                   \
		(av), (k), &(ty), offsetof(struct st, meta) \
	}

static const struct k8s_kind_info k8s_kinds[K8S_KIND_MAX] = {
	[K8S_KIND_NAMESPACE] = K8S_KIND("v1", "Namespace", k8s_namespace_type, k8s_namespace),
	[K8S_KIND_POD] = K8S_KIND("v1", "Pod", k8s_pod_type, k8s_pod),
	[K8S_KIND_SERVICE] = K8S_KIND("v1", "Service", k8s_service_type, k8s_service),
	[K8S_KIND_ENDPOINTS] = K8S_KIND("v1", "Endpoints", k8s_endpoints_type, k8s_endpoints),
	[K8S_KIND_ENDPOINTSLICE] = K8S_KIND("discovery.k8s.io/v1", "EndpointSlice",
					    k8s_endpointslice_type, k8s_endpointslice),
	[K8S_KIND_NODE] = K8S_KIND("v1", "Node", k8s_node_type, k8s_node),
	[K8S_KIND_NETWORKPOLICY] =
		K8S_KIND("networking.k8s.io/v1", "NetworkPolicy", k8s_netpol_type, k8s_netpol),
	[K8S_KIND_EVENT] = K8S_KIND("v1", "Event", k8s_event_type, k8s_event),
	[K8S_KIND_LEASE] = K8S_KIND("coordination.k8s.io/v1", "Lease", k8s_lease_type, k8s_lease),
	[K8S_KIND_CONFIGMAP] = K8S_KIND("v1", "ConfigMap", k8s_configmap_type, k8s_configmap),
};

static const struct k8s_kind_info *k8s_kind_info(enum k8s_kind kind)
{
	if (kind <= K8S_KIND_UNKNOWN || kind >= K8S_KIND_MAX)
		return NULL;
	return &k8s_kinds[kind];
}

const struct k8s_type *k8s_kind_desc(enum k8s_kind kind, const char **api_version,
				     const char **kind_name)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);

	if (!ki)
		return NULL;
	*api_version = ki->api_version;
	*kind_name = ki->kind;
	return ki->type;
}

enum k8s_kind k8s_kind_from_json(const struct json_object *obj)
{
	const char *av = sl_json_get_str(obj, "apiVersion");
	const char *k = sl_json_get_str(obj, "kind");

	if (!av || !k)
		return K8S_KIND_UNKNOWN;
	for (int i = K8S_KIND_UNKNOWN + 1; i < K8S_KIND_MAX; i++)
		if (!strcmp(av, k8s_kinds[i].api_version) && !strcmp(k, k8s_kinds[i].kind))
			return (enum k8s_kind)i;
	return K8S_KIND_UNKNOWN;
}

const char *k8s_kind_name(enum k8s_kind kind)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);

	return ki ? ki->kind : NULL;
}

const char *k8s_kind_api_version(enum k8s_kind kind)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);

	return ki ? ki->api_version : NULL;
}

/* apiVersion / kind, when present, must name this kind: a Pod is not a Service. */
static int k8s_check_typemeta(const struct k8s_kind_info *ki, struct json_object *json, char *err,
			      size_t errlen)
{
	static const char *const keys[2] = {"apiVersion", "kind"};
	const char *want[2] = {ki->api_version, ki->kind};

	for (int i = 0; i < 2; i++) {
		struct json_object *v;
		char msg[160];

		if (!json_object_object_get_ex(json, keys[i], &v) || !v)
			continue;
		if (!json_object_is_type(v, json_type_string))
			return k8s_bad(err, errlen, keys[i], "expected string");
		if (strcmp(json_object_get_string(v), want[i])) {
			snprintf(msg, sizeof(msg), "expected \"%s\", got \"%.100s\"", want[i],
				 json_object_get_string(v));
			return k8s_bad(err, errlen, keys[i], msg);
		}
	}
	return 0;
}

int k8s_obj_decode(enum k8s_kind kind, struct json_object *json, void **out, char *err,
		   size_t errlen)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);
	void *o;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!ki) {
		if (err && errlen)
			snprintf(err, errlen, "unknown kind %d", (int)kind);
		return -EINVAL;
	}
	if (!json || !json_object_is_type(json, json_type_object))
		return k8s_bad(err, errlen, "", "expected a JSON object");
	rc = k8s_check_typemeta(ki, json, err, errlen);
	if (rc)
		return rc;
	o = calloc(1, ki->type->size);
	if (!o)
		return -ENOMEM;
	rc = k8s_desc_decode(ki->type, json, o, "", err, errlen);
	if (rc) {
		if (rc == -ENOMEM && err && errlen)
			snprintf(err, errlen, "out of memory");
		k8s_desc_fini(ki->type, o);
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}

struct json_object *k8s_obj_encode(enum k8s_kind kind, const void *obj)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);

	if (!ki || !obj) {
		errno = EINVAL;
		return NULL;
	}
	return k8s_desc_encode(ki->type, obj);
}

void *k8s_obj_new(enum k8s_kind kind)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);
	struct json_object *raw;
	void *o;

	if (!ki) {
		errno = EINVAL;
		return NULL;
	}
	o = calloc(1, ki->type->size);
	raw = json_object_new_object();
	if (!o || !raw || sl_json_set_str(raw, "apiVersion", ki->api_version) ||
	    sl_json_set_str(raw, "kind", ki->kind)) {
		json_object_put(raw);
		free(o);
		errno = ENOMEM;
		return NULL;
	}
	*k8s_rawp(o) = raw;
	return o;
}

void *k8s_obj_clone(enum k8s_kind kind, const void *obj)
{
	struct json_object *j = k8s_obj_encode(kind, obj);
	void *o = NULL;
	int rc;

	if (!j)
		return NULL;
	rc = k8s_obj_decode(kind, j, &o, NULL, 0);
	json_object_put(j); /* o holds its own references */
	if (rc) {
		errno = rc == -ENOMEM ? ENOMEM : EINVAL;
		return NULL;
	}
	return o;
}

bool k8s_obj_equal(enum k8s_kind kind, const void *a, const void *b)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);

	if (a == b)
		return true;
	if (!ki || !a || !b)
		return false;
	return k8s_desc_equal(ki->type, a, b);
}

bool k8s_obj_equal_typed(enum k8s_kind kind, const void *a, const void *b)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);

	if (a == b)
		return true;
	if (!ki || !a || !b)
		return false;
	return k8s_desc_equal_ex(ki->type, a, b, true);
}

void k8s_obj_free(enum k8s_kind kind, void *obj)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);

	void *arena;

	if (!ki || !obj)
		return;
	arena = ((struct k8s_meta *)((char *)obj + ki->meta_off))->arena;
	if (arena) {
		k8s_text_arena_free(arena); /* the object and all it holds */
		return;
	}
	k8s_desc_fini(ki->type, obj);
	free(obj);
}

const struct k8s_meta *k8s_obj_meta(enum k8s_kind kind, const void *obj)
{
	const struct k8s_kind_info *ki = k8s_kind_info(kind);

	if (!ki || !obj)
		return NULL;
	return (const struct k8s_meta *)((const char *)obj + ki->meta_off);
}

const struct k8s_owner_ref *k8s_meta_controller(const struct k8s_meta *meta)
{
	for (size_t i = 0; meta && i < meta->n_owner_references; i++)
		if (meta->owner_references[i].controller == K8S_TRI_TRUE)
			return &meta->owner_references[i];
	return NULL;
}
