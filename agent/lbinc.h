/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Incremental service model: the node agent's inputs (Services,
 * EndpointSlices, this node) kept in a compact form, indexed by Service, and
 * turned into datapath writes for only the Services an event touched.
 *
 * Why. agent/model.c builds the whole node's state from every object; at
 * 10,000 Services that costs ~0.1 s per sync (the endpoint-change latency
 * floor) and the decoded objects with their json-c trees cost ~1 GiB. Here
 * each Service is built on its own by the same lbm_state_build() (a
 * *fragment*: that Service's frontends, backends and problems), so an event
 * costs one Service's rebuild and diff, and the inputs are kept as compact
 * copies of only the fields the model reads (endpoints: address, node name,
 * conditions), materialised into k8s structs for the length of a build.
 *
 * What crosses Services is merged here, with the semantics of the full build:
 *  - backends: one per {addr, port, proto}, ACTIVE when any use is ready,
 *    local when any use is local (use counts per backend);
 *  - frontends on the same {addr, port, proto, scope}: the older Service
 *    (creationTimestamp, then namespace, then name) owns it, the others get a
 *    FrontendConflict problem; when the owner goes away the next one takes
 *    over. Unlike the full build, the backends of a frontend that lost a
 *    conflict stay programmed, unreferenced, and their uses still count
 *    toward the state of a backend another Service shares (a conflict is
 *    an error reported on the Service; everything it does not touch is
 *    exactly the full build's);
 *  - this node's addresses (externalIPs are programmed only for local ones):
 *    a change rebuilds every Service.
 * Slices are attached to the Service named by their kubernetes.io/service-name
 * label; slices labelled service.kubernetes.io/headless or
 * .../service-proxy-name, non-IPv4 slices and slices without that label are
 * kept out (as the full build ignores them; the last two are logged once).
 *
 * Output: a plan of writes in a safe order (backend creates/updates; frontend
 * upserts, INT scope first; frontend deletes, EXT first; backend removals),
 * which the agent applies with agent/datapath.c. The bookkeeping assumes the
 * plan is applied; if a write fails, the agent asks for a full plan (every
 * wanted entry) and reconciles the maps against lbi_want_frontend() and
 * lbi_want_backend().
 *
 * Not thread-safe: one event loop owns a struct lbi.
 */
#ifndef SLUICE_AGENT_LBINC_H
#define SLUICE_AGENT_LBINC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "sluice/k8s.h"

struct lbi;

/* A frontend to write: st->frontends[idx] of a Service's fragment. */
struct lbi_fe {
	const struct lbm_state *st;
	uint32_t idx;
};

struct lbi_plan {
	struct lbm_backend *be_put; /* create or update (merged state), before any frontend */
	size_t n_be_put;
	struct lbi_fe *fe_put; /* upserts, SCOPE_INT first */
	size_t n_fe_put;
	struct sl_svc_key *fe_del; /* deletes, SCOPE_EXT first */
	size_t n_fe_del;
	struct lbm_backend *be_del; /* no longer used by any Service: remove last */
	size_t n_be_del;
	struct lbm_problem *problems; /* of the rebuilt Services, conflicts included (owned) */
	size_t n_problems;
	size_t services_built;	  /* fragments rebuilt */
	size_t services_prebuilt; /* of those, built ahead by lbi_prebuild */
	bool hc_changed;	  /* some healthCheckNodePort appeared, moved or went away */
	bool full;		  /* a full plan: the caller reconciles the maps afterwards */
};

/* node_name is copied; NULL = no local endpoints. NULL with errno ENOMEM. */
struct lbi *lbi_new(const char *node_name);
void lbi_free(struct lbi *l);

/*
 * Inputs, by key "namespace/name". The object is borrowed (a compact copy
 * is kept); NULL deletes. Each marks the Services it touches dirty: a
 * Service, the Service a slice belongs to now and the one it belonged to.
 * Returns 0 or -ENOMEM (the previous state is then kept).
 */
int lbi_service_set(struct lbi *l, const char *key, const struct k8s_service *svc);
int lbi_slice_set(struct lbi *l, const char *key, const struct k8s_endpointslice *es);
/* This node's object (NULL = not known): only its addresses are used. */
int lbi_node_set(struct lbi *l, const struct k8s_node *node);

/*
 * Backends per frontend of the dataplane the plans feed (lbm_input.max_backends:
 * 0 = LBM_MAX_BACKENDS_BPF, the default; the netfilter and IPVS dataplanes pass
 * LBM_MAX_BACKENDS). Set it before the first plan; a change rebuilds every Service.
 */
void lbi_max_backends_set(struct lbi *l, uint32_t n);

/* This node's IPv4 InternalIP/ExternalIP addresses, sorted (borrowed). */
const __be32 *lbi_node_addrs(const struct lbi *l, size_t *n);

bool lbi_dirty(const struct lbi *l);

/*
 * Rebuilds the dirty Services and returns the writes that take the datapath
 * from the last plan's state to the new one. With full, the plan instead
 * holds every wanted backend and frontend (after a restart or a failed
 * write). Returns 0 or -ENOMEM (nothing changed; the Services stay dirty).
 * The plan borrows fragments owned by l: apply it before the next call.
 */
int lbi_plan(struct lbi *l, bool full, struct lbi_plan *out);

/*
 * Before the first plan only (a start): builds the fragments of up to max
 * Services whose inputs have not changed since the previous call, so the
 * first plan finds most of them built while the lists are still arriving. A
 * Service whose inputs change afterwards, or a node change, only wastes the
 * build: the plan checks each prebuilt fragment against its inputs'
 * generation. Returns 1 when more Services are ready to build, 2 when only
 * Services that changed during this call wait (ready at the next call: call
 * again after a short pause), 0 when none is queued, or -ENOMEM (those
 * Services are then built by the plan).
 */
int lbi_prebuild(struct lbi *l, size_t max);
void lbi_plan_fini(struct lbi_plan *p);

/* What the last plan wants in the maps (for reconciliation). */
bool lbi_want_frontend(const struct lbi *l, const struct sl_svc_key *key);
bool lbi_want_backend(const struct lbi *l, __be32 addr, __be16 port, __u8 proto);

/* Frontends and backends wanted now. */
void lbi_counts(const struct lbi *l, size_t *frontends, size_t *backends);

/* Calls fn for every built Service (with its fragment); stops on non-zero. */
int lbi_foreach_service(const struct lbi *l, int (*fn)(const struct lbm_service *s, void *arg),
			void *arg);

/*
 * Calls fn for every built Service's fragment after a plan: frag->services[0]
 * is the Service (with its port names), frag->frontends its entries (EXT and
 * INT scope; lbm_frontend.port_idx names the service port) over
 * frag->backends, as the model built them for this Service alone. owned[k]
 * says whether frontend k won its {addr, port, proto, scope} (false: a
 * FrontendConflict lost it to an older Service). gen is unique to this
 * fragment over the lbi's lifetime: equal gen, same content, so a datapath
 * that renders per Service (agent/proxier.h) re-renders only what changed.
 * Stops on non-zero and returns it; -ENOMEM.
 */
typedef int (*lbi_fragment_fn)(const struct lbm_state *frag, const bool *owned, uint64_t gen,
			       void *arg);
int lbi_foreach_fragment(const struct lbi *l, lbi_fragment_fn fn, void *arg);

#endif
