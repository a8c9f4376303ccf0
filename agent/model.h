/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service model: the node agent's pure translation of Services,
 * EndpointSlices and Nodes into the load-balancing state one node's datapath
 * must hold, with kube-proxy's semantics, plus a diff of two such states into
 * a short, safely ordered list of map operations. No kernel, no network, no
 * libbpf: the output maps one-to-one onto bpf/include/abi/lb.h (frontend key
 * {addr, port, proto, scope}, value {count, flags, affinity_s}, backends
 * {addr, port, proto, state, node_id == 0 when local}); the datapath writer
 * assigns svc ids, slot blocks and backend ids.
 *
 * What is programmed, per Service port (TCP, UDP, SCTP), mirroring
 * kubernetes/kubernetes:pkg/proxy (servicechangetracker.go, endpointslicecache.go,
 * topology.go, iptables/proxier.go):
 *
 *  - Services skipped entirely (as kube-proxy's ShouldSkipService plus its
 *    informer label selector): clusterIP "None" (headless) or unset, type
 *    ExternalName, no IPv4 cluster IP (IPv6-only; this is the IPv4 model),
 *    label service.kubernetes.io/service-proxy-name (another proxy owns it).
 *  - Frontends: the IPv4 ClusterIP (CLUSTERIP); for type NodePort and
 *    LoadBalancer one wildcard entry {addr 0, nodePort} (NODEPORT: "any local
 *    address", the datapath checks locality); for type LoadBalancer each IPv4
 *    status.loadBalancer.ingress[].ip whose ipMode is unset or "VIP"
 *    (LOADBALANCER; "Proxy" means the LB delivers to nodes itself, KEP-1860);
 *    spec.externalIPs only when the address is one of this node's
 *    InternalIP/ExternalIP addresses (EXTERNALIP). kube-proxy captures every
 *    externalIP, which lets anyone who can create a Service intercept traffic
 *    to any address (CVE-2020-8554); like Cilium we translate only addresses
 *    the node owns, so traffic *to this node* on that address is served and
 *    nothing in transit is hijacked.
 *  - Endpoints: EndpointSlices labelled kubernetes.io/service-name (slices
 *    labelled service.kubernetes.io/headless or .../service-proxy-name are
 *    ignored, as kube-proxy's informer does), addressType IPv4 only (IPv6 and
 *    FQDN slices are counted and ignored). A Service port takes the endpoints
 *    of every slice port with the same NAME and PROTOCOL (unset name = "",
 *    unset protocol = TCP, the API server's defaults); the backend port is the
 *    slice port's number. targetPort is never read: the EndpointSlice
 *    controller already resolved it, per pod for a named targetPort, so pods
 *    whose container ports differ land in different slices with different
 *    numbers. Slice ports with port 0/unset are ignored (kube-proxy does). An
 *    endpoint uses addresses[0]; duplicates (same ip:port from several
 *    slices) collapse to one, the first in slice-name order unless a later
 *    one is node-local.
 *  - Conditions (KEP-1669): ready unset = ready, serving unset = serving,
 *    terminating unset = false. Cluster-wide set = ready endpoints; if there
 *    are none, the serving && terminating ones, and the frontend carries
 *    SL_SVC_F_TERMINATING. Local set (nodeName == this node) likewise, on its
 *    own. Terminating endpoints that are not serving are never picked. Node
 *    readiness is not consulted (kube-proxy does not either).
 *  - Traffic policies. internalTrafficPolicy Local: ClusterIP frontends use
 *    the local set for every client. externalTrafficPolicy Local: NodePort,
 *    LoadBalancer and externalIP frontends use the local set for clients
 *    outside the node, but clients on the node (its pods and the host) get the
 *    cluster-wide set, kube-proxy's "short circuit" that behaves as if the
 *    traffic went out to the LB and came back. With two scopes (see the ABI):
 *
 *      frontend kind / policy          EXT entry (flags)          INT entry
 *      ClusterIP, iTP Cluster          cluster set                none
 *      ClusterIP, iTP Local            local set (LOCAL_INT)      local set (LOCAL_INT)
 *      external, eTP Cluster           cluster set                none
 *      external, eTP Local             local set (LOCAL_EXT)      cluster set (LOCAL_EXT)
 *
 *    so the datapath rule is: a client on this node that hits an EXT entry
 *    with LOCAL_INT or LOCAL_EXT set looks the INT entry up and uses it.
 *  - count 0 means refuse. kube-proxy REJECTs when the service has no usable
 *    endpoint anywhere and silently DROPs when a Local policy finds none on
 *    this node; `drop` in the frontend carries that distinction (the ABI has
 *    no bit for it yet).
 *  - sessionAffinity ClientIP: SL_SVC_F_AFFINITY and affinity_s =
 *    timeoutSeconds, 10800 when unset.
 *  - healthCheckNodePort (type LoadBalancer with eTP Local): the number of
 *    endpoints that are local AND ready, summed over the service's ports like
 *    kube-proxy's LocalReadyEndpoints (which sums over the slices' ports; the
 *    two agree whenever every slice port belongs to a service port, as the
 *    EndpointSlice controller writes them). 0 (none, or only terminating
 *    ones) means the HC server answers 503: the LB drains the node while the
 *    local terminating endpoints still finish what reaches them.
 *  - Not read, on purpose: spec.targetPort (see above), publishNotReadyAddresses
 *    (the EndpointSlice controller already marks such endpoints ready),
 *    spec.loadBalancerIP (only status counts). Not modelled yet:
 *    loadBalancerSourceRanges and topology hints / trafficDistribution (the
 *    ABI has no place for them).
 *
 * Backends are the union of every frontend's slots plus every terminating
 * endpoint (still in the map so existing flows drain, never in new slots).
 * state is ACTIVE when any use of the backend is a ready endpoint, else
 * TERMINATING. Identity is {addr, port, proto}: the same triple is the same
 * logical backend in every state, so the agent keeps its id.
 *
 * Problems the datapath cannot express are reported per service (the agent
 * turns them into Events) while everything else stays correct: more backends
 * per frontend than the dataplane the state feeds holds (lbm_input.max_backends:
 * the list is cut to the first ones in address order, TooManyEndpoints), and
 * two frontends on the same {addr, port, proto} (the older service by
 * creationTimestamp, then namespace/name, keeps it). Malformed
 * objects (bad IPs, ports, protocols, unknown enum values, missing names) are
 * skipped with a warning naming them; the build never fails on bad input.
 *
 * Output order is deterministic: frontends by (addr, port, proto, scope) in
 * host byte order, backends by (addr, port, proto), services by
 * namespace/name. Everything is plain data owned by the state.
 *
 * Threads: a state is immutable after build and may be read from any thread.
 */
#ifndef SLUICE_AGENT_MODEL_H
#define SLUICE_AGENT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "abi/lb.h"
#include "sluice/buf.h"
#include "sluice/k8s.h"

#define LBM_AFFINITY_DEFAULT_S 10800 /* sessionAffinityConfig.clientIP.timeoutSeconds default */

/*
 * Backends per frontend, by the dataplane the state feeds (lbm_input.max_backends).
 * The bound belongs to the dataplane, not to kube-proxy's semantics:
 *  - bpf: a frontend's slots are one slot block of the service maps, at most
 *    SL_MAX_SLOTS_PER_SVC (bpf/include/abi/lb.h);
 *  - iptables, nftables, ipvs: kube-proxy programs every endpoint (a KUBE-SEP
 *    chain, a numgen vmap element, a real server each) and has no bound; the
 *    model's own limit is lbm_frontend.count, 16 bits like the ABI's
 *    sl_svc_val.count, so these dataplanes hold up to 65,535 endpoints per
 *    Service port. (The EndpointSlice controller writes 100 per slice; a
 *    Service port with more than 65,535 ready endpoints is reported as
 *    TooManyEndpoints like a bpf one with more than a slot block.)
 */
#define LBM_MAX_BACKENDS_BPF SL_MAX_SLOTS_PER_SVC
#define LBM_MAX_BACKENDS     UINT16_MAX

/* One backend: the value of backends4[id], minus the id. */
struct lbm_backend {
	__be32 addr; /* network order */
	__be16 port; /* network order */
	__u8 proto;  /* IPPROTO_TCP / UDP / SCTP */
	__u8 state;  /* enum sl_backend_state: ACTIVE or TERMINATING */
	bool local;  /* endpoint's nodeName is this node: node_id 0 in the ABI */
};

/* One frontend: a svc4 map entry plus its slot list. */
struct lbm_frontend {
	struct sl_svc_key key; /* exactly the map key */
	__u16 flags;	       /* enum sl_svc_flags */
	__u16 count;	       /* slots (== sl_svc_val.count), <= the build's max_backends;
				* 0 = refuse */
	__u32 affinity_s;      /* seconds, when SL_SVC_F_AFFINITY */
	bool drop;	       /* count 0 because a Local policy has no local endpoint while
				* the service has endpoints elsewhere: kube-proxy drops
				* silently instead of rejecting */
	uint32_t svc;	       /* index into lbm_state.services */
	uint32_t port_idx;     /* index in the Service's spec.ports (lbm_service.port_names) */
	const uint32_t *be;    /* count indices into lbm_state.backends, in backend order */
};

struct lbm_service {
	char *ns;
	char *name;
	uint16_t hc_node_port;	     /* spec.healthCheckNodePort, 0 = no HC server */
	uint32_t hc_local_endpoints; /* local ready endpoints (all ports); 0 = answer 503 */
	uint32_t n_frontends;	     /* EXT and INT entries this service owns */
	/* spec.ports[i].name ("" when unset), for datapaths that name things per
	 * service port like kube-proxy ("ns/name:port"): the iptables and
	 * nftables backends (agent/proxier.h) */
	char **port_names;
	uint32_t n_ports;
};

/* Why a service is not fully programmed; reason is a static CamelCase Event reason. */
struct lbm_problem {
	char *ns;
	char *name;
	const char *reason; /* "TooManyEndpoints", "FrontendConflict" */
	char *message;
};

/* What the build skipped or ignored (for /metrics and tests). */
struct lbm_stats {
	uint32_t bad_objects;	       /* malformed objects skipped (each logged) */
	uint32_t bad_endpoints;	       /* endpoints or slice ports with unusable values (logged) */
	uint32_t skipped_services;     /* headless, ExternalName, no IPv4 cluster IP, other proxy */
	uint32_t ignored_slices;       /* IPv6 / FQDN slices, or slices of no known service */
	uint32_t foreign_external_ips; /* externalIPs not local to this node (not programmed) */
};

struct lbm_state {
	struct lbm_frontend *frontends;
	size_t n_frontends;
	struct lbm_backend *backends;
	size_t n_backends;
	struct lbm_service *services;
	size_t n_services;
	struct lbm_problem *problems;
	size_t n_problems;
	__be32 *node_addrs; /* this node's IPv4 InternalIP/ExternalIP addresses, sorted */
	size_t n_node_addrs;
	struct lbm_stats stats;
	uint32_t *slots; /* storage behind lbm_frontend.be (internal; unreferenced
			  * entries may be LBM_NO_IDX) */
	size_t n_slots;
};

/* Inputs, all borrowed for the duration of the build. */
struct lbm_input {
	const char *node_name; /* this node's metadata.name; NULL = no local endpoints */
	const struct k8s_service *const *services;
	size_t n_services;
	const struct k8s_endpointslice *const *slices;
	size_t n_slices;
	const struct k8s_node *const *nodes; /* only this node's entry is read */
	size_t n_nodes;
	/* backends per frontend the dataplane holds: 0 = LBM_MAX_BACKENDS_BPF (the
	 * default, so every caller that feeds the eBPF maps gets their bound);
	 * larger than LBM_MAX_BACKENDS counts as LBM_MAX_BACKENDS */
	uint32_t max_backends;
};

/*
 * Builds the desired state from typed objects. Malformed objects are skipped
 * (logged, counted in stats); services the datapath cannot express are
 * reported in problems. Returns 0 with a new state in *out (caller frees with
 * lbm_state_free), -EINVAL for a NULL argument, -ENOMEM.
 */
int lbm_state_build(const struct lbm_input *in, struct lbm_state **out);

/*
 * Same from JSON arrays of objects (as sl_informer_list() returns them; any
 * may be NULL = empty). Elements that do not decode are skipped with a
 * warning naming them. Returns 0, -EINVAL (NULL out, or an argument that is
 * not an array) or -ENOMEM.
 */
int lbm_state_build_json(const char *node_name, struct json_object *services,
			 struct json_object *slices, struct json_object *nodes,
			 struct lbm_state **out);

/* Accepts NULL. */
void lbm_state_free(struct lbm_state *st);

/* Index of the frontend with this key, or -1. O(log n). */
ssize_t lbm_state_find_frontend(const struct lbm_state *st, const struct sl_svc_key *key);

/*
 * Appends a line-per-item text form of the state to b (frontends, backends,
 * health checks, problems), e.g.
 *   fe 198.18.128.10:80/TCP ext CLUSTERIP count=2 [198.18.64.1:8080 198.18.64.2:8080]
 * Used by tests and sluicectl; stable across versions of this file.
 */
void lbm_state_dump(const struct lbm_state *st, struct sl_buf *b);

/* --- diff -------------------------------------------------------------------------------- */

enum lbm_op_kind {
	LBM_OP_BACKEND_ADD,	/* next->backends[next_idx] is new */
	LBM_OP_BACKEND_UPDATE,	/* state or locality changed: prev_idx -> next_idx */
	LBM_OP_FRONTEND_UPSERT, /* next->frontends[next_idx]; prev_idx set when it replaces */
	LBM_OP_FRONTEND_DELETE, /* prev->frontends[prev_idx] is gone */
	LBM_OP_BACKEND_REMOVE,	/* prev->backends[prev_idx] is no longer referenced */
};

#define LBM_NO_IDX UINT32_MAX

struct lbm_op {
	enum lbm_op_kind kind;
	uint32_t prev_idx; /* LBM_NO_IDX when not in prev */
	uint32_t next_idx; /* LBM_NO_IDX when not in next */
};

struct lbm_ops {
	struct lbm_op *v;
	size_t n;
};

/*
 * Operations turning prev into next (prev NULL = empty, as on the first
 * sync). Order, so that no map entry ever points at something missing:
 * backend adds and updates; frontend upserts, SCOPE_INT entries before EXT
 * ones (an EXT entry that starts sending in-node clients to INT finds it);
 * frontend deletes, EXT before INT; backend removes last (every frontend that
 * referenced them was rewritten or deleted before). Within each group, key
 * order. Equal states give zero ops. ops index into prev/next, which must
 * outlive them. Returns 0, -EINVAL, -ENOMEM (out is then empty).
 */
int lbm_diff(const struct lbm_state *prev, const struct lbm_state *next, struct lbm_ops *out);

/* Frees the array; accepts NULL and an empty set. */
void lbm_ops_fini(struct lbm_ops *ops);

#endif
