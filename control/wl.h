/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workload controllers of sluice-control (apps/v1): ReplicaSet, Deployment,
 * DaemonSet, and the garbage collector of ownerReferences. They run as one
 * thread inside the controller manager (ctl.c) and, like the other
 * controllers, only talk to the API over HTTP.
 *
 * The decisions are pure functions declared here so unit tests can check
 * them without a server: which pods a ReplicaSet deletes first, the rolling
 * update arithmetic (maxSurge/maxUnavailable), the pod-template hash, pod
 * readiness/availability and DaemonSet node eligibility.
 */
#ifndef SLUICE_CONTROL_WL_H
#define SLUICE_CONTROL_WL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#define WL_HASH_LABEL	  "pod-template-hash"
#define WL_REVISION_ANNOT "deployment.kubernetes.io/revision"
#define WL_DESIRED_ANNOT  "deployment.kubernetes.io/desired-replicas"
#define WL_MAX_ANNOT	  "deployment.kubernetes.io/max-replicas"
#define WL_CHANGE_CAUSE	  "kubernetes.io/change-cause"
#define WL_HASH_BUFSZ	  16

/*
 * The pod-template-hash of a template (and the Deployment's collisionCount,
 * < 0 for none): FNV-1a 32 over the template's canonical JSON (keys sorted),
 * printed in decimal and encoded with rand.SafeEncodeString's alphabet, so it
 * looks like upstream's and is stable across writes that only reorder keys.
 * The value differs from kube's (which hashes Go's spew dump of the struct).
 */
void wl_template_hash(const struct json_object *tmpl, int64_t collision, char out[WL_HASH_BUFSZ]);

/*
 * intstr.GetScaledValueFromIntOrPercent: an integer as is, "N%" of total
 * rounded up or down. Absent (NULL) is 0. Returns 0 or -EINVAL.
 */
int wl_int_or_percent(const struct json_object *v, int32_t total, bool round_up, int32_t *out);

/*
 * deploymentutil.ResolveFenceposts: maxSurge rounds up, maxUnavailable down;
 * both 0 makes maxUnavailable 1 so a rollout can progress.
 */
int wl_fenceposts(const struct json_object *surge, const struct json_object *unavail,
		  int32_t desired, int32_t *max_surge, int32_t *max_unavail);

/* One ReplicaSet as the rolling update sees it. */
struct wl_rs_count {
	int32_t replicas;  /* spec.replicas */
	int32_t available; /* status.availableReplicas */
};

/*
 * NewRSNewReplicas for RollingUpdate: how many replicas the new ReplicaSet
 * should have now, given the sum of spec.replicas over all ReplicaSets of
 * the Deployment (new included).
 */
int32_t wl_new_rs_replicas(int32_t desired, int32_t max_surge, int32_t total_replicas,
			   int32_t new_replicas);

/*
 * reconcileOldReplicaSets: new spec.replicas for each old ReplicaSet (oldest
 * first in `old`, results in `out`). Unhealthy old pods go first, then
 * available ones down to desired - maxUnavailable available pods. Returns the
 * total scaled down.
 */
int32_t wl_scale_down_old(int32_t desired, int32_t max_unavail, const struct wl_rs_count *new_rs,
			  const struct wl_rs_count *old, size_t n_old, int32_t *out);

/* Pod condition Ready is True (and the pod is not being deleted). */
bool wl_pod_ready(const struct json_object *pod);
/* Ready for at least min_ready seconds at `now` (podutil.IsPodAvailable). */
bool wl_pod_available(const struct json_object *pod, int64_t min_ready, time_t now);
/* Not terminal (Succeeded/Failed) and not being deleted. */
bool wl_pod_active(const struct json_object *pod);

/*
 * controller.ActivePods ordering, the pods to delete first when a ReplicaSet
 * has too many: unscheduled < scheduled, Pending < Unknown < Running, not
 * ready < ready, ready for less time first, more restarts first, newer
 * first. Sorts idx[0..n) (indexes into pods) in deletion order.
 */
void wl_pods_delete_order(struct json_object *const *pods, size_t *idx, size_t n);

/*
 * DaemonSet placement: the node matches the template's nodeSelector and
 * every NoSchedule/NoExecute taint is tolerated (template tolerations plus
 * the ones the DaemonSet controller adds: not-ready, unreachable,
 * disk/memory/pid-pressure, unschedulable, and network-unavailable for
 * hostNetwork pods). Node readiness is not required, as upstream.
 */
bool wl_node_eligible(const struct json_object *node, const struct json_object *pod_spec);
/* The tolerations the DaemonSet controller adds to its pods (new array). */
struct json_object *wl_ds_tolerations(const struct json_object *pod_spec);

#endif
