// SPDX-License-Identifier: Apache-2.0
/*
 * Field table for NetworkPolicy (networking.k8s.io/v1), the input of the
 * policy compiler. Label selectors are kept as JSON objects (refcount held) so
 * the compiler can hand them to sl_labelsel_from_json() with their field path;
 * ingress and egress rules share one C struct, differing only in whether the
 * peers live under "from" or "to".
 */
#include "k8s_desc.h"

K8S_TYPE(k8s_ip_block_type, k8s_ip_block, F_STR("cidr", struct k8s_ip_block, cidr),
	 F_STRLIST("except", struct k8s_ip_block, except));

K8S_TYPE(k8s_netpol_peer_type, k8s_netpol_peer,
	 F_RAWOBJ("podSelector", struct k8s_netpol_peer, pod_selector),
	 F_RAWOBJ("namespaceSelector", struct k8s_netpol_peer, namespace_selector),
	 F_OBJ("ipBlock", struct k8s_netpol_peer, ip_block, k8s_ip_block, k8s_ip_block_type));

K8S_TYPE(k8s_netpol_port_type, k8s_netpol_port, F_STR("protocol", struct k8s_netpol_port, protocol),
	 F_INTSTR("port", struct k8s_netpol_port, port),
	 F_I32("endPort", struct k8s_netpol_port, end_port));

K8S_TYPE(k8s_netpol_ingress_type, k8s_netpol_rule,
	 F_LIST("ports", struct k8s_netpol_rule, ports, k8s_netpol_port, k8s_netpol_port_type),
	 F_LIST("from", struct k8s_netpol_rule, peers, k8s_netpol_peer, k8s_netpol_peer_type));

K8S_TYPE(k8s_netpol_egress_type, k8s_netpol_rule,
	 F_LIST("ports", struct k8s_netpol_rule, ports, k8s_netpol_port, k8s_netpol_port_type),
	 F_LIST("to", struct k8s_netpol_rule, peers, k8s_netpol_peer, k8s_netpol_peer_type));

K8S_TYPE(k8s_netpol_spec_type, k8s_netpol_spec,
	 F_RAWOBJ("podSelector", struct k8s_netpol_spec, pod_selector),
	 F_STRLIST("policyTypes", struct k8s_netpol_spec, policy_types),
	 F_LIST("ingress", struct k8s_netpol_spec, ingress, k8s_netpol_rule,
		k8s_netpol_ingress_type),
	 F_LIST("egress", struct k8s_netpol_spec, egress, k8s_netpol_rule, k8s_netpol_egress_type));

K8S_TYPE_PUBLIC(k8s_netpol_type, k8s_netpol,
		F_OBJ("metadata", struct k8s_netpol, meta, k8s_meta, k8s_meta_type),
		F_OBJ("spec", struct k8s_netpol, spec, k8s_netpol_spec, k8s_netpol_spec_type));

K8S_DEFINE_KIND(k8s_netpol, k8s_netpol, K8S_KIND_NETWORKPOLICY)
