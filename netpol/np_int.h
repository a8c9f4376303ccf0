/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnetpol internals shared by np_model.c (objects, events, dirty
 * tracking), np_compile.c (rule sets, interning, output) and np_map.c (the
 * byte-keyed hash table both use). Not included outside netpol/.
 */
#ifndef SLUICE_NP_INT_H
#define SLUICE_NP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netpol.h"

/* --- hash table keyed by bytes ------------------------------------------------------------ */

struct np_map_ent {
	struct np_map_ent *next;
	uint64_t hash;
	void *key; /* owned copy */
	size_t klen;
	void *val; /* borrowed; owners free values themselves */
};

struct np_map {
	struct np_map_ent **b;
	size_t nb; /* power of two (0 before the first put) */
	size_t n;
};

uint64_t np_hash(const void *p, size_t n, uint64_t seed);
void *np_map_get(const struct np_map *m, const void *key, size_t klen);
/* Inserts or replaces. 0 or -ENOMEM. */
int np_map_put(struct np_map *m, const void *key, size_t klen, void *val);
/* Removes; returns the value that was there or NULL. */
void *np_map_del(struct np_map *m, const void *key, size_t klen);
void np_map_fini(struct np_map *m);
/* Iteration: for (e = NULL; (e = np_map_next(m, &i, e));). */
struct np_map_ent *np_map_next(const struct np_map *m, size_t *bucket, struct np_map_ent *prev);

/* --- objects ----------------------------------------------------------------------------- */

struct np_kv {
	char *key;
	char *value;
};

struct np_addr {
	uint8_t family; /* SL_NP_AF_INET / SL_NP_AF_INET6 */
	uint8_t plen;	/* prefix length (32/128 for a host address) */
	uint8_t a[16];
};

struct np_cport {
	char *name;
	uint8_t proto;
	uint16_t port;
};

struct np_ns {
	char *name;
	struct np_kv *labels; /* sorted by key, includes kubernetes.io/metadata.name */
	struct sl_label *lv;  /* the same as sl_label views, for the selectors */
	size_t n_labels;
	bool set; /* recorded by np_ns_set (not only implied by a pod) */
};

struct np_ident {
	uint32_t id;
	char *key; /* canonical {ns, labels, ports} bytes (map key) */
	size_t klen;
	char *ns;
	struct np_kv *labels; /* sorted by key */
	struct sl_label *lv;  /* the same as sl_label views, for the selectors */
	size_t n_labels;
	struct np_cport *ports; /* named ports, sorted by name then proto */
	size_t n_ports;
	uint32_t ns_peer;	  /* SL_NP_PEER_NS_BASE + namespace number */
	size_t refs;		  /* pods */
	uint32_t rs[SL_NP_NDIRS]; /* current rule sets */
	bool dirty;
	bool failed_capacity; /* retried on every compile */
};

struct np_pod {
	char *key; /* "ns/name" */
	char *ns, *name, *node;
	struct np_ident *ident; /* NULL for hostNetwork pods */
	struct np_addr *addrs;
	size_t n_addrs;
	bool host_network;
};

enum np_peer_kind {
	NP_PEER_SEL,
	NP_PEER_CIDR,
};

struct np_peer {
	enum np_peer_kind kind;
	struct sl_labelsel *pod; /* NULL = absent */
	struct sl_labelsel *ns;	 /* NULL = absent (the policy's own namespace) */
	struct np_addr cidr;
	struct np_addr *except;
	size_t n_except;
	/* Matching identities (by id), cached until the identity set or a
	 * namespace's labels change (ctx->gen). */
	struct np_ident **match;
	size_t n_match;
	uint64_t gen;
};

struct np_portsel {
	uint8_t proto;
	char *name;	 /* named port, resolved per destination pod; NULL = numeric */
	uint16_t lo, hi; /* inclusive; 0..65535 when the entry has no port */
};

struct np_rule {
	struct np_peer *peers;
	size_t n_peers; /* 0 = any peer */
	struct np_portsel *ports;
	size_t n_ports; /* 0 = every port of every protocol */
	bool named;	/* some port is named */
};

struct np_policy {
	char *key; /* "ns/name" */
	char *ns, *name;
	uint32_t id;
	struct sl_labelsel *target;
	bool iso[SL_NP_NDIRS];
	struct np_rule *rules[SL_NP_NDIRS];
	size_t n_rules[SL_NP_NDIRS];
	char *error; /* non-NULL: fails closed (isolates, allows nothing) */
};

struct np_ruleset {
	uint32_t id;
	uint8_t dir;
	void *content; /* map key: dir + rule entries + cidr entries with ruleset 0 */
	size_t clen;
	struct np_rule_entry *rules; /* sorted, key.ruleset == id */
	size_t n_rules;
	struct np_cidr_entry *cidrs;
	size_t n_cidrs;
	size_t refs; /* identity x direction references */
	bool loaded; /* in the maps (the last diff added it) */
	bool want;   /* scratch: a local endpoint uses it */
};

struct np_nsgroup {
	const char *ns;	   /* borrowed from the first identity */
	uint32_t ns_peer;  /* its SL_NP_PEER_NS_BASE id */
	size_t start, end; /* [start, end) of ctx->ix_idents */
};

struct np_ctx {
	struct np_limits lim;
	struct np_map nss;	   /* name -> np_ns */
	struct np_map pods;	   /* "ns/name" -> np_pod */
	struct np_map idents;	   /* canonical key -> np_ident */
	struct np_map ident_ids;   /* u32 id -> np_ident */
	struct np_map policies;	   /* "ns/name" -> np_policy */
	struct np_map pol_ids;	   /* u32 id -> np_policy */
	struct np_map rulesets;	   /* content -> np_ruleset */
	struct np_map rs_ids;	   /* u32 id -> np_ruleset */
	struct np_map ns_nums;	   /* namespace name -> ns peer id (uint32_t *), kept */
	struct np_map ns_num_used; /* u32 ns peer id -> the same uint32_t * */
	uint64_t gen;		   /* bumped when peer matches may change */
	bool all_dirty;
	/* Compile-time indexes (np_compile rebuilds them): identities sorted
	 * by namespace then id, grouped per namespace (valid while ix_gen ==
	 * gen + 1), and policies sorted by namespace. */
	struct np_ident **ix_idents;
	struct np_nsgroup *ix_groups;
	size_t n_ix_groups;
	uint64_t ix_gen;
	struct np_policy **ix_pols;
	size_t n_ix_pols;
	/* Output of the last compile. */
	struct np_ep_entry *ep;
	size_t n_ep;
	size_t n_rule_entries, n_cidr_entries; /* in live rule sets (capacity checks) */
	size_t n_loaded_sets, n_loaded_rules, n_loaded_cidrs; /* in the maps */
	char *node; /* np_set_node: only this node's pods get rule sets; NULL = all */
	size_t recomputed;
};

/* np_model.c */
const struct np_ns *np_ns_lookup(const struct np_ctx *ctx, const char *name);
void np_ns_labels(const struct np_ctx *ctx, const char *name, struct sl_label *out, size_t max,
		  size_t *n);
void np_ident_mark_all(struct np_ctx *ctx);
bool np_peer_matches(const struct np_ctx *ctx, const struct np_policy *pol,
		     const struct np_peer *peer, const struct np_ident *id);
/* namespaceSelector {} with no or an empty podSelector: SL_NP_PEER_ANY_POD. */
bool np_peer_all_pods(const struct np_peer *peer);
/* Every pod of the matching namespaces (no podSelector or an empty one, and
 * not all namespaces): one SL_NP_PEER_NS_BASE entry per namespace. */
bool np_peer_ns_level(const struct np_peer *peer);
bool np_ns_sel_match(const struct np_ctx *ctx, const struct sl_labelsel *sel, const char *ns);
bool np_policy_selects(const struct np_policy *pol, const struct np_ident *id);
int np_addr_parse(const char *s, bool prefix, struct np_addr *out);
bool np_addr_contains(const struct np_addr *outer, const struct np_addr *inner);

/* np_compile.c */
void np_ruleset_release(struct np_ctx *ctx, uint32_t id);

#endif
