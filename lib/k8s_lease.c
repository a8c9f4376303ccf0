// SPDX-License-Identifier: Apache-2.0
/*
 * Field table for Lease (coordination.k8s.io/v1): leader election between
 * controller replicas and node heartbeats. acquireTime and renewTime are
 * MicroTime, so they are written back with microseconds.
 */
#include "k8s_desc.h"

K8S_TYPE(k8s_lease_spec_type, k8s_lease_spec,
	 F_STR("holderIdentity", struct k8s_lease_spec, holder_identity),
	 F_I32("leaseDurationSeconds", struct k8s_lease_spec, lease_duration_seconds),
	 F_MTIME("acquireTime", struct k8s_lease_spec, acquire_time),
	 F_MTIME("renewTime", struct k8s_lease_spec, renew_time),
	 F_I32("leaseTransitions", struct k8s_lease_spec, lease_transitions));

K8S_TYPE_PUBLIC(k8s_lease_type, k8s_lease,
		F_OBJ("metadata", struct k8s_lease, meta, k8s_meta, k8s_meta_type),
		F_OBJ("spec", struct k8s_lease, spec, k8s_lease_spec, k8s_lease_spec_type));

K8S_DEFINE_KIND(k8s_lease, k8s_lease, K8S_KIND_LEASE)
