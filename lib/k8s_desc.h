/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to lib/k8s_*.c: the field descriptors that drive decode, encode,
 * equality and free for every typed Kubernetes struct. Each struct is described
 * once by a table of (JSON key, field type, offset); one generic walker in
 * k8s_meta.c does the rest, so all kinds get identical error messages, the
 * same round-trip rules and no hand-written free code to leak from.
 *
 * The F_* macros check at compile time that the C member has the type the
 * descriptor claims (a negative array size otherwise).
 */
#ifndef SLUICE_K8S_DESC_H
#define SLUICE_K8S_DESC_H

#include <stddef.h>

#include "sluice/k8s.h"

enum k8s_ftype {
	K8S_F_STR,     /* char * */
	K8S_F_I32,     /* int32_t */
	K8S_F_I64,     /* int64_t */
	K8S_F_BOOL,    /* bool */
	K8S_F_TRI,     /* enum k8s_tri */
	K8S_F_INTSTR,  /* struct k8s_intstr */
	K8S_F_TIME,    /* struct k8s_time, metav1.Time (seconds) */
	K8S_F_MTIME,   /* struct k8s_time, metav1.MicroTime */
	K8S_F_STRLIST, /* struct k8s_strlist */
	K8S_F_STRMAP,  /* struct k8s_strmap */
	K8S_F_RAWOBJ,  /* struct json_object *, any JSON object, ref held */
	K8S_F_OBJ,     /* nested struct described by `sub`, inline */
	K8S_F_LIST,    /* array of `sub` structs at off, size_t count at n_off */
};

struct k8s_type;

struct k8s_field {
	const char *key; /* JSON member name; NULL ends a table */
	enum k8s_ftype type;
	size_t off;		    /* offset of the member */
	size_t n_off;		    /* K8S_F_LIST: offset of the count */
	const struct k8s_type *sub; /* K8S_F_OBJ / K8S_F_LIST element */
};

struct k8s_type {
	const char *name; /* C struct name, for debugging */
	size_t size;	  /* sizeof the struct; `raw` is its first member */
	const struct k8s_field *fields;
};

#define K8S__CHECK(T, m, ctype) \
	(0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((T *)0)->m), ctype) ? 1 : -1]))

#define K8S__F(k, ft, T, m, ctype)                                       \
	{                                                                \
		k, ft, offsetof(T, m) + K8S__CHECK(T, m, ctype), 0, NULL \
	}

#define F_STR(k, T, m)	   K8S__F(k, K8S_F_STR, T, m, char *)
#define F_I32(k, T, m)	   K8S__F(k, K8S_F_I32, T, m, int32_t)
#define F_I64(k, T, m)	   K8S__F(k, K8S_F_I64, T, m, int64_t)
#define F_BOOL(k, T, m)	   K8S__F(k, K8S_F_BOOL, T, m, bool)
#define F_TRI(k, T, m)	   K8S__F(k, K8S_F_TRI, T, m, enum k8s_tri)
#define F_INTSTR(k, T, m)  K8S__F(k, K8S_F_INTSTR, T, m, struct k8s_intstr)
#define F_TIME(k, T, m)	   K8S__F(k, K8S_F_TIME, T, m, struct k8s_time)
#define F_MTIME(k, T, m)   K8S__F(k, K8S_F_MTIME, T, m, struct k8s_time)
#define F_STRLIST(k, T, m) K8S__F(k, K8S_F_STRLIST, T, m, struct k8s_strlist)
#define F_STRMAP(k, T, m)  K8S__F(k, K8S_F_STRMAP, T, m, struct k8s_strmap)
#define F_RAWOBJ(k, T, m)  K8S__F(k, K8S_F_RAWOBJ, T, m, struct json_object *)
#define F_OBJ(k, T, m, ST, sub)                                                     \
	{                                                                           \
		k, K8S_F_OBJ, offsetof(T, m) + K8S__CHECK(T, m, struct ST), 0, &sub \
	}
#define F_LIST(k, T, m, ST, sub)                                                \
	{                                                                       \
		k, K8S_F_LIST, offsetof(T, m) + K8S__CHECK(T, m, struct ST *),  \
			offsetof(T, n_##m) + K8S__CHECK(T, n_##m, size_t), &sub \
	}
#define F_END                       \
	{                           \
		NULL, 0, 0, 0, NULL \
	}

/*
 * Defines `static const struct k8s_type var` describing struct ST (checking
 * that raw comes first); K8S_TYPE_PUBLIC for the ones declared below.
 */
#define K8S__TYPE(storage, var, ST, ...)                                                     \
	_Static_assert(offsetof(struct ST, raw) == 0, #ST ": raw must be the first member"); \
	static const struct k8s_field var##_fields[] = {__VA_ARGS__, F_END};                 \
	storage const struct k8s_type var = {#ST, sizeof(struct ST), var##_fields}
#define K8S_TYPE(var, ST, ...)	      K8S__TYPE(static, var, ST, __VA_ARGS__)
#define K8S_TYPE_PUBLIC(var, ST, ...) K8S__TYPE(, var, ST, __VA_ARGS__)

/* Shared nested types (k8s_meta.c). */
extern const struct k8s_type k8s_meta_type;
extern const struct k8s_type k8s_objref_type;
extern const struct k8s_type k8s_condition_type;

/* Top-level kinds (k8s_core.c, k8s_service.c, k8s_netpol.c, k8s_lease.c). */
extern const struct k8s_type k8s_namespace_type;
extern const struct k8s_type k8s_pod_type;
extern const struct k8s_type k8s_node_type;
extern const struct k8s_type k8s_event_type;
extern const struct k8s_type k8s_configmap_type;
extern const struct k8s_type k8s_service_type;
extern const struct k8s_type k8s_endpoints_type;
extern const struct k8s_type k8s_endpointslice_type;
extern const struct k8s_type k8s_netpol_type;
extern const struct k8s_type k8s_lease_type;

/*
 * Generic walkers over a struct described by t (k8s_meta.c).
 * k8s_desc_decode: `out` is zeroed storage of t->size; on failure it is
 * left consistent for k8s_desc_fini, which the caller must call.
 * `path` is the field path of obj ("" at the top) for error messages.
 */
int k8s_desc_decode(const struct k8s_type *t, struct json_object *obj, void *out, const char *path,
		    char *err, size_t errlen);
struct json_object *k8s_desc_encode(const struct k8s_type *t, const void *s);
bool k8s_desc_equal(const struct k8s_type *t, const void *a, const void *b);
void k8s_desc_fini(const struct k8s_type *t, void *s);

/* Releases member f of the struct at s and zeroes it (absent again). */
void k8s_desc_member_fini(const struct k8s_field *f, void *s);
/* Zeroes a member (absent) without releasing what it held: for members whose
 * memory belongs to something else (k8s_obj_decode_text's arena). */
void k8s_desc_member_reset(const struct k8s_field *f, void *s);
/* Releases the blocks of a k8s_obj_decode_text object (meta.arena). */
void k8s_text_arena_free(void *arena);

/* The descriptor of a top-level kind and its apiVersion/kind strings; NULL
 * for K8S_KIND_UNKNOWN or out of range. */
const struct k8s_type *k8s_kind_desc(enum k8s_kind kind, const char **api_version,
				     const char **kind_name);

/* Field paths in messages; longer paths are cut (ending in "..."), never
 * overflowed. */
#define K8S_PATH_MAX 256

/* Defines the per-kind wrappers declared by K8S_DECLARE_KIND in sluice/k8s.h. */
#define K8S_DEFINE_KIND(p, t, K)                                                           \
	int p##_decode(struct json_object *json, struct t **out, char *err, size_t errlen) \
	{                                                                                  \
		void *o = NULL;                                                            \
		int rc = k8s_obj_decode(K, json, &o, err, errlen);                         \
		*out = o;                                                                  \
		return rc;                                                                 \
	}                                                                                  \
	struct json_object *p##_encode(const struct t *obj)                                \
	{                                                                                  \
		return k8s_obj_encode(K, obj);                                             \
	}                                                                                  \
	struct t *p##_new(void)                                                            \
	{                                                                                  \
		return k8s_obj_new(K);                                                     \
	}                                                                                  \
	struct t *p##_clone(const struct t *obj)                                           \
	{                                                                                  \
		return k8s_obj_clone(K, obj);                                              \
	}                                                                                  \
	bool p##_equal(const struct t *a, const struct t *b)                               \
	{                                                                                  \
		return k8s_obj_equal(K, a, b);                                             \
	}                                                                                  \
	void p##_free(struct t *obj)                                                       \
	{                                                                                  \
		k8s_obj_free(K, obj);                                                      \
	}

#endif
