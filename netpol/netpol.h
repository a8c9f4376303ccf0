/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnetpol: the NetworkPolicy compiler. Pure (no kernel, no I/O) and
 * deterministic: namespaces, pods and networking.k8s.io/v1 NetworkPolicies
 * go in as events; the maps of bpf/include/abi/policy.h come out, either as
 * a full sorted dump or as the diff since the previous compile.
 *
 *   np_ns_set / np_pod_set / np_policy_set (and _del)   record a change and
 *        mark what it can affect dirty (nothing is computed yet)
 *   np_compile                                         recompute only the dirty
 *        identities' rule sets, intern them, return the diff
 *   np_dump / np_check / np_stats                      read the result
 *
 * Identities. One per distinct {namespace, pod labels, named container
 * ports}. The named ports are part of it because named ports resolve per
 * pod: two pods with equal labels but a different "http" port must not
 * share rules (that would open one pod's port on the other). Pods of one
 * workload share all three, so in practice this is one identity per
 * {namespace, label set}. Ids are a hash of that key (linear probing on a
 * collision), so they do not change when other objects change and a fresh
 * compile of the same objects gives the same ids.
 *
 * Rule sets. Per identity and direction the compiler computes the allowed
 * {peer, protocol, port prefix} entries and the ipBlock LPM entries, then
 * interns them by content: identities with equal rules share one rule-set
 * id, and a rule set's entries never change while it is in use. Semantics:
 * ../shared/research/netpol.md §1 (summarised in netpol/README.md).
 *
 * Failing closed. A policy that cannot be compiled (unknown protocol, bad
 * CIDR, a peer with no selector, ...) still isolates the pods it selects
 * in the directions it names (both when policyTypes itself is bad) and
 * allows nothing, so those pods get SL_NP_RS_FAILED; a rule set over a
 * capacity limit becomes SL_NP_RS_FAILED too. Access never widens.
 *
 * Not thread-safe: one context is used by one thread (the agent's loop).
 * Functions return 0 or a negative errno (-SL_ERR_INVALID for a bad
 * object, with a message naming the field in err).
 */
#ifndef SLUICE_NETPOL_H
#define SLUICE_NETPOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/policy.h"
#include "sluice/k8s.h"
#include "sluice/selector.h"

struct np_ctx;

/* Capacity limits; np_limits_default() gives the ABI map sizes. */
struct np_limits {
	size_t max_rules;	/* rule-map entries in use at once (SL_NP_MAX_RULES) */
	size_t max_cidrs;	/* cidr-map entries (SL_NP_MAX_CIDRS) */
	size_t max_endpoints;	/* endpoint-map entries (SL_NP_MAX_ENDPOINTS) */
	size_t max_set_entries; /* rule + cidr entries of one rule set */
	size_t max_identities;	/* live identities */
};

void np_limits_default(struct np_limits *lim);

/* New empty context; lim NULL = defaults. NULL with errno = ENOMEM. */
struct np_ctx *np_new(const struct np_limits *lim);
void np_free(struct np_ctx *ctx);

/* A named container port (only named ports matter to policy). */
struct np_port {
	const char *name;
	uint8_t proto; /* IPPROTO_TCP / IPPROTO_UDP / IPPROTO_SCTP */
	uint16_t port;
};

/* A pod as the compiler needs it; every pointer is borrowed (copied). */
struct np_pod_spec {
	const char *ns;
	const char *name;
	const char *node; /* may be NULL (not scheduled) */
	const struct sl_label *labels;
	size_t n_labels;
	const char *const *ips; /* status.podIPs; none = no endpoint entries yet */
	size_t n_ips;
	const struct np_port *ports;
	size_t n_ports;
	bool host_network; /* not an endpoint: node traffic, never isolated */
};

/*
 * Adds or replaces a pod (keyed by ns/name). -SL_ERR_INVALID for a missing
 * namespace/name or an address that does not parse (message in err);
 * -ENOSPC when a new identity would exceed max_identities (the pod is then
 * not recorded and a previous version of it is removed, so it has no
 * endpoint entry: the agent must keep it from running).
 */
int np_pod_set(struct np_ctx *ctx, const struct np_pod_spec *pod, char *err, size_t errlen);
/* The same from a decoded Pod: labels, spec.nodeName, spec.hostNetwork,
 * status.podIPs (podIP when empty; none for Succeeded/Failed pods, whose
 * addresses may already belong to another pod) and containers' named ports. */
int np_pod_set_k8s(struct np_ctx *ctx, const struct k8s_pod *pod, char *err, size_t errlen);
/* Removes a pod; -SL_ERR_NOTFOUND when unknown. */
int np_pod_del(struct np_ctx *ctx, const char *ns, const char *name);

/* Adds or replaces a namespace's labels. kubernetes.io/metadata.name is
 * always set to the name (as the API server does). A namespace that was
 * never set has only that label. */
int np_ns_set(struct np_ctx *ctx, const char *name, const struct sl_label *labels, size_t n);
int np_ns_set_k8s(struct np_ctx *ctx, const struct k8s_namespace *ns);
int np_ns_del(struct np_ctx *ctx, const char *name);

/*
 * Adds or replaces a policy (keyed by metadata namespace/name; borrowed).
 * Applies the API's policyTypes defaulting. Returns 0, -ENOMEM, or
 * -SL_ERR_INVALID with err naming the field: the policy is still recorded,
 * failing closed (see above), and np_policy_error() keeps the message.
 */
int np_policy_set(struct np_ctx *ctx, const struct k8s_netpol *pol, char *err, size_t errlen);
int np_policy_del(struct np_ctx *ctx, const char *ns, const char *name);
/* The compile error of a recorded policy, or NULL. Borrowed. */
const char *np_policy_error(const struct np_ctx *ctx, const char *ns, const char *name);
/* The policy's id as it appears in rule values, 0 when unknown. */
uint32_t np_policy_id(const struct np_ctx *ctx, const char *ns, const char *name);

/* Map entries, in the ABI's layouts. */
struct np_ep_entry {
	struct sl_np_ep_key key;
	struct sl_np_ep_val val;
};
struct np_rule_entry {
	struct sl_np_rule_key key;
	struct sl_np_rule_val val;
};
struct np_cidr_entry {
	struct sl_np_cidr_key key;
	struct sl_np_cidr_val val;
};

/* Arrays sorted by key (endpoints by family/address, rules and cidrs by
 * ruleset, then the key's fields in order, then prefixlen). */
struct np_entries {
	struct np_ep_entry *ep;
	size_t n_ep;
	struct np_rule_entry *rules;
	size_t n_rules;
	struct np_cidr_entry *cidrs;
	size_t n_cidrs;
};
void np_entries_fini(struct np_entries *e);

/*
 * What changed between two compiles. Apply in this order so no packet sees
 * a half-written rule set: `add.rules` and `add.cidrs` (new rule sets),
 * then `add.ep` (upserts: endpoints now point at the new sets), then
 * `del.ep`, then `del.rules` and `del.cidrs` (sets no endpoint uses).
 */
struct np_diff {
	struct np_entries add;
	struct np_entries del;
};
void np_diff_fini(struct np_diff *d);

/*
 * Recomputes what the recorded changes made dirty. diff (may be NULL)
 * receives the changes since the previous np_compile (caller finis it).
 * Returns 0; -ENOSPC when a capacity limit made some rule sets fail closed
 * (the output is still complete and consistent; err says which and why;
 * they are retried on every later compile); -ENOMEM (the context must then
 * be rebuilt: np_free, re-add everything).
 */
int np_compile(struct np_ctx *ctx, struct np_diff *diff, char *err, size_t errlen);
/*
 * Node view: with a node name, only rule sets that a pod on this node uses
 * are in the output (dump and diff), and other nodes' endpoint entries
 * carry only their identity (rule sets 0), because each node enforces its
 * own pods' ingress and egress. NULL (the default) = every pod. Applies
 * from the next np_compile; 0 or -ENOMEM. Capacity checks still count
 * every node's rule sets (conservative).
 */
int np_set_node(struct np_ctx *ctx, const char *node);

/* Marks everything dirty, so the next np_compile recomputes it all. */
void np_invalidate(struct np_ctx *ctx);

/* The complete current output (sorted; caller finis it). 0 or -ENOMEM. */
int np_dump(const struct np_ctx *ctx, struct np_entries *out);

struct np_stats {
	size_t pods, identities, policies;
	size_t rulesets;     /* rule sets in the maps (used by a local endpoint) */
	size_t rulesets_all; /* interned rule sets of every node's pods */
	size_t ep_entries, rule_entries, cidr_entries; /* in the maps */
	size_t map_bytes;  /* keys + values of all entries in the maps */
	size_t recomputed; /* identity x direction rule sets computed by the last compile */
};
void np_stats_get(const struct np_ctx *ctx, struct np_stats *st);

/*
 * The datapath's decision, evaluated on the compiled entries exactly as
 * the BPF side will (abi/policy.h): may `from` open a connection to `to`
 * on (proto, port)? Both sides are checked; addresses are text. Returns 1
 * allowed, 0 denied, -EINVAL for an address that does not parse. *reason
 * (may be NULL) gets 0 or SL_R_POLICY_*.
 */
int np_check(const struct np_ctx *ctx, const char *from, const char *to, uint8_t proto,
	     uint16_t port, int *reason);

/* Identity and rule-set ids of a recorded pod (after np_compile), 0 when unknown. */
uint32_t np_pod_identity(const struct np_ctx *ctx, const char *ns, const char *name);
uint32_t np_pod_ruleset(const struct np_ctx *ctx, const char *ns, const char *name,
			enum sl_np_dir dir);

/* "TCP"/"UDP"/"SCTP" (NULL = TCP) to IPPROTO_*; 0 for anything else. */
uint8_t np_proto_parse(const char *s);

#endif
