/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Controllers of sluice-control, the part of kube-controller-manager a
 * networking stack needs: EndpointSlice and Endpoints (Service selector x
 * Pods), node IPAM (podCIDR from --cluster-cidr) and node lifecycle (Lease
 * heartbeats -> Ready Unknown, unreachable taints, pods not ready).
 *
 * They run as threads inside sluice-control but talk to the API over HTTP
 * (lib/ client and informers against the server's own loopback listener),
 * exactly as an external controller manager would, so every write goes
 * through validation, defaulting, resourceVersion checks and watch.
 *
 * The pure parts (target port resolution, slice and Endpoints building, the
 * CIDR set) are exposed here for unit tests; ctl_start()/ctl_stop() are the
 * lifecycle used by control_run().
 */
#ifndef SLUICE_CONTROL_CTL_H
#define SLUICE_CONTROL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sluice/k8s.h"

/* --- configuration and lifecycle --------------------------------------------------------- */

enum ctl_which {
	CTL_ENDPOINTSLICE = 1u << 0,
	CTL_ENDPOINTS = 1u << 1,
	CTL_NODEIPAM = 1u << 2,
	CTL_NODELIFECYCLE = 1u << 3,
	CTL_SCHEDULER = 1u << 4, /* control/sched.h */
	CTL_REPLICASET = 1u << 5,
	CTL_DEPLOYMENT = 1u << 6,
	CTL_DAEMONSET = 1u << 7,
	CTL_GC = 1u << 8,
	CTL_ALL = 0x1ff,
};

struct ctl_config {
	const char *controllers;  /* "all", "none" or a comma list (docs/lab.md) */
	const char *cluster_cidr; /* pod address space, "10.244.0.0/16" */
	int node_cidr_mask;	  /* prefix length of each node's podCIDR */
	int grace_s;		  /* --node-monitor-grace-period, seconds */
};

/*
 * Checks the flags without starting anything: the controller list, the
 * cluster CIDR and mask size. Returns 0 and the enabled set in *which, or
 * -EINVAL with a message naming the flag and what is accepted.
 */
int ctl_config_check(const struct ctl_config *cfg, unsigned *which, char *err, size_t errlen);

struct ctl;
/*
 * Starts the enabled controllers against `server` (an http:// URL) with an
 * optional bearer token. Returns NULL with errno and err on failure; a
 * config that enables nothing returns a valid handle that runs nothing.
 */
struct ctl *ctl_start(const struct ctl_config *cfg, const char *server, const char *token,
		      char *err, size_t errlen);
/*
 * Stops every thread (requests in flight are cancelled, so this never waits on
 * the API server) and frees. NULL is fine. Must not be called from the API
 * server's event loop while it still has to answer the controllers: it does
 * not wait for answers, so it is safe either way.
 */
void ctl_stop(struct ctl *c);

struct sl_client;
struct sl_informer;
struct sl_informer_handlers;
struct sl_gvr;
/*
 * The informer every controller of sluice-control uses (endpoints, nodes, scheduler,
 * workloads): thread delivery, a short reconnect backoff (50 ms doubling to 2 s, the server is
 * local), started at once. ns NULL = all namespaces; h.arg is passed through. NULL with err on
 * failure.
 */
struct sl_informer *ctl_informer_start(struct sl_client *client, const struct sl_gvr *gvr,
				       const char *ns, const struct sl_informer_handlers *h,
				       char *err, size_t errlen);

/* --- endpoints: pure parts ----------------------------------------------------------------- */

#define CTL_MAX_ENDPOINTS_PER_SLICE 100
#define CTL_MANAGED_BY_LABEL	    "endpointslice.kubernetes.io/managed-by"
#define CTL_MANAGED_BY		    "endpointslice-controller.k8s.io"
#define CTL_HEADLESS_LABEL	    "service.kubernetes.io/headless"
#define CTL_ENDPOINTS_MAX	    1000 /* addresses in one legacy Endpoints object */
#define CTL_OVER_CAPACITY	    "endpoints.kubernetes.io/over-capacity"

/*
 * podutil.FindPort: the container port a Service port targets on this pod.
 * Integer targetPort (or none: the Service port) is used as is; a named
 * targetPort is looked up among the pod's containers' ports by name and
 * protocol. Returns the port (> 0) or -ENOENT when the name does not resolve.
 */
int ctl_target_port(const struct k8s_service_port *sp, const struct k8s_pod *pod);

/* Pod labels match the Service's (non-empty) selector. */
bool ctl_selector_matches(const struct k8s_service *svc, const struct k8s_pod *pod);

/*
 * What the controller wants done to one Service's EndpointSlices. create[]
 * are full objects with generateName, update[] full objects carrying the
 * existing name and resourceVersion, del[] names. Caller releases with
 * ctl_slice_plan_fini().
 */
struct ctl_slice_plan {
	struct json_object **create;
	size_t n_create;
	struct json_object **update;
	size_t n_update;
	char **del;
	size_t n_del;
	size_t n_unchanged;
};

/*
 * Plans the slices of `svc` from its namespace's pods (every pod of the
 * namespace; the selector is applied here) and the slices that exist now
 * (managed by this controller for this Service; borrowed JSON). Keeps
 * existing slices and the position of endpoints in them where it can, so an
 * unchanged pod never causes a write. max_per_slice 0 means 100.
 * Returns 0 or -ENOMEM.
 */
int ctl_slices_plan(const struct k8s_service *svc, struct k8s_pod *const *pods, size_t n_pods,
		    struct json_object *const *existing, size_t n_existing, size_t max_per_slice,
		    struct ctl_slice_plan *out);
void ctl_slice_plan_fini(struct ctl_slice_plan *p);

/*
 * The legacy Endpoints object for svc, at most CTL_ENDPOINTS_MAX addresses
 * (ready ones first; annotated CTL_OVER_CAPACITY: truncated beyond that, as
 * upstream): `existing` (borrowed, may be NULL)
 * supplies metadata (resourceVersion, unknown fields). Returns a new object
 * and sets *changed when it differs from existing in subsets or labels; NULL
 * with errno ENOMEM.
 */
struct json_object *ctl_endpoints_build(const struct k8s_service *svc, struct k8s_pod *const *pods,
					size_t n_pods, struct json_object *existing, bool *changed);

/* --- node IPAM: the CIDR set ---------------------------------------------------------------- */

struct ctl_cidrset;
/*
 * IPv4 cluster CIDR cut into /mask blocks. NULL with err for a malformed
 * CIDR, IPv6, mask not longer than the cluster prefix or above 30, or more
 * than 2^16 blocks (kube's limit).
 */
struct ctl_cidrset *ctl_cidrset_new(const char *cidr, int mask, char *err, size_t errlen);
void ctl_cidrset_free(struct ctl_cidrset *s);
/* Next free block as "a.b.c.d/m", scanning from after the last allocation.
 * 0 or -SL_ERR_EXHAUSTED. */
int ctl_cidrset_next(struct ctl_cidrset *s, char *out, size_t outlen);
/* Marks a block in use: 0, -EEXIST (already), -ERANGE (not a block of this
 * set: outside it or another size), -EINVAL (not a CIDR). */
int ctl_cidrset_occupy(struct ctl_cidrset *s, const char *cidr);
/* Frees a block; anything else is ignored. */
void ctl_cidrset_release(struct ctl_cidrset *s, const char *cidr);
uint32_t ctl_cidrset_used(const struct ctl_cidrset *s);
uint32_t ctl_cidrset_size(const struct ctl_cidrset *s);

#endif
