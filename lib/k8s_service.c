// SPDX-License-Identifier: Apache-2.0
/*
 * Field tables for what the service datapath programs from: Service,
 * Endpoints (core/v1) and EndpointSlice (discovery.k8s.io/v1). Everything the
 * load balancer, NodePort and DNS code reads is typed here; the engine in
 * k8s_meta.c carries every other member through unchanged.
 */
#include "k8s_desc.h"

/* --- Service ------------------------------------------------------------------------------ */

K8S_TYPE(k8s_service_port_type, k8s_service_port, F_STR("name", struct k8s_service_port, name),
	 F_STR("protocol", struct k8s_service_port, protocol),
	 F_I32("port", struct k8s_service_port, port),
	 F_INTSTR("targetPort", struct k8s_service_port, target_port),
	 F_I32("nodePort", struct k8s_service_port, node_port),
	 F_STR("appProtocol", struct k8s_service_port, app_protocol));

K8S_TYPE(k8s_client_ip_config_type, k8s_client_ip_config,
	 F_I32("timeoutSeconds", struct k8s_client_ip_config, timeout_seconds));

K8S_TYPE(k8s_session_affinity_config_type, k8s_session_affinity_config,
	 F_OBJ("clientIP", struct k8s_session_affinity_config, client_ip, k8s_client_ip_config,
	       k8s_client_ip_config_type));

K8S_TYPE(k8s_service_spec_type, k8s_service_spec, F_STR("type", struct k8s_service_spec, type),
	 F_STR("clusterIP", struct k8s_service_spec, cluster_ip),
	 F_STRLIST("clusterIPs", struct k8s_service_spec, cluster_ips),
	 F_LIST("ports", struct k8s_service_spec, ports, k8s_service_port, k8s_service_port_type),
	 F_STRMAP("selector", struct k8s_service_spec, selector),
	 F_STR("sessionAffinity", struct k8s_service_spec, session_affinity),
	 F_OBJ("sessionAffinityConfig", struct k8s_service_spec, session_affinity_config,
	       k8s_session_affinity_config, k8s_session_affinity_config_type),
	 F_STRLIST("externalIPs", struct k8s_service_spec, external_ips),
	 F_STR("loadBalancerIP", struct k8s_service_spec, load_balancer_ip),
	 F_STRLIST("loadBalancerSourceRanges", struct k8s_service_spec,
		   load_balancer_source_ranges),
	 F_STR("loadBalancerClass", struct k8s_service_spec, load_balancer_class),
	 F_STR("externalTrafficPolicy", struct k8s_service_spec, external_traffic_policy),
	 F_STR("internalTrafficPolicy", struct k8s_service_spec, internal_traffic_policy),
	 F_I32("healthCheckNodePort", struct k8s_service_spec, health_check_node_port),
	 F_STR("externalName", struct k8s_service_spec, external_name),
	 F_STRLIST("ipFamilies", struct k8s_service_spec, ip_families),
	 F_STR("ipFamilyPolicy", struct k8s_service_spec, ip_family_policy),
	 F_BOOL("publishNotReadyAddresses", struct k8s_service_spec, publish_not_ready_addresses),
	 F_TRI("allocateLoadBalancerNodePorts", struct k8s_service_spec,
	       allocate_load_balancer_node_ports));

K8S_TYPE(k8s_lb_ingress_type, k8s_lb_ingress, F_STR("ip", struct k8s_lb_ingress, ip),
	 F_STR("hostname", struct k8s_lb_ingress, hostname),
	 F_STR("ipMode", struct k8s_lb_ingress, ip_mode));

K8S_TYPE(k8s_lb_status_type, k8s_lb_status,
	 F_LIST("ingress", struct k8s_lb_status, ingress, k8s_lb_ingress, k8s_lb_ingress_type));

K8S_TYPE(k8s_service_status_type, k8s_service_status,
	 F_OBJ("loadBalancer", struct k8s_service_status, load_balancer, k8s_lb_status,
	       k8s_lb_status_type));

K8S_TYPE_PUBLIC(k8s_service_type, k8s_service,
		F_OBJ("metadata", struct k8s_service, meta, k8s_meta, k8s_meta_type),
		F_OBJ("spec", struct k8s_service, spec, k8s_service_spec, k8s_service_spec_type),
		F_OBJ("status", struct k8s_service, status, k8s_service_status,
		      k8s_service_status_type));

K8S_DEFINE_KIND(k8s_service, k8s_service, K8S_KIND_SERVICE)

/* --- Endpoints ---------------------------------------------------------------------------- */

K8S_TYPE(k8s_endpoint_address_type, k8s_endpoint_address,
	 F_STR("ip", struct k8s_endpoint_address, ip),
	 F_STR("hostname", struct k8s_endpoint_address, hostname),
	 F_STR("nodeName", struct k8s_endpoint_address, node_name),
	 F_OBJ("targetRef", struct k8s_endpoint_address, target_ref, k8s_objref, k8s_objref_type));

K8S_TYPE(k8s_endpoint_port_type, k8s_endpoint_port, F_STR("name", struct k8s_endpoint_port, name),
	 F_I32("port", struct k8s_endpoint_port, port),
	 F_STR("protocol", struct k8s_endpoint_port, protocol),
	 F_STR("appProtocol", struct k8s_endpoint_port, app_protocol));

K8S_TYPE(k8s_endpoint_subset_type, k8s_endpoint_subset,
	 F_LIST("addresses", struct k8s_endpoint_subset, addresses, k8s_endpoint_address,
		k8s_endpoint_address_type),
	 F_LIST("notReadyAddresses", struct k8s_endpoint_subset, not_ready_addresses,
		k8s_endpoint_address, k8s_endpoint_address_type),
	 F_LIST("ports", struct k8s_endpoint_subset, ports, k8s_endpoint_port,
		k8s_endpoint_port_type));

K8S_TYPE_PUBLIC(k8s_endpoints_type, k8s_endpoints,
		F_OBJ("metadata", struct k8s_endpoints, meta, k8s_meta, k8s_meta_type),
		F_LIST("subsets", struct k8s_endpoints, subsets, k8s_endpoint_subset,
		       k8s_endpoint_subset_type));

K8S_DEFINE_KIND(k8s_endpoints, k8s_endpoints, K8S_KIND_ENDPOINTS)

/* --- EndpointSlice ------------------------------------------------------------------------ */

K8S_TYPE(k8s_endpoint_conditions_type, k8s_endpoint_conditions,
	 F_TRI("ready", struct k8s_endpoint_conditions, ready),
	 F_TRI("serving", struct k8s_endpoint_conditions, serving),
	 F_TRI("terminating", struct k8s_endpoint_conditions, terminating));

K8S_TYPE(k8s_slice_endpoint_type, k8s_slice_endpoint,
	 F_STRLIST("addresses", struct k8s_slice_endpoint, addresses),
	 F_OBJ("conditions", struct k8s_slice_endpoint, conditions, k8s_endpoint_conditions,
	       k8s_endpoint_conditions_type),
	 F_STR("hostname", struct k8s_slice_endpoint, hostname),
	 F_STR("nodeName", struct k8s_slice_endpoint, node_name),
	 F_STR("zone", struct k8s_slice_endpoint, zone),
	 F_OBJ("targetRef", struct k8s_slice_endpoint, target_ref, k8s_objref, k8s_objref_type));

K8S_TYPE(k8s_slice_port_type, k8s_slice_port, F_STR("name", struct k8s_slice_port, name),
	 F_STR("protocol", struct k8s_slice_port, protocol),
	 F_I32("port", struct k8s_slice_port, port),
	 F_STR("appProtocol", struct k8s_slice_port, app_protocol));

K8S_TYPE_PUBLIC(k8s_endpointslice_type, k8s_endpointslice,
		F_OBJ("metadata", struct k8s_endpointslice, meta, k8s_meta, k8s_meta_type),
		F_STR("addressType", struct k8s_endpointslice, address_type),
		F_LIST("endpoints", struct k8s_endpointslice, endpoints, k8s_slice_endpoint,
		       k8s_slice_endpoint_type),
		F_LIST("ports", struct k8s_endpointslice, ports, k8s_slice_port,
		       k8s_slice_port_type));

K8S_DEFINE_KIND(k8s_endpointslice, k8s_endpointslice, K8S_KIND_ENDPOINTSLICE)

const char *k8s_endpointslice_service_name(const struct k8s_endpointslice *es)
{
	return es ? k8s_strmap_get(&es->meta.labels, K8S_LABEL_SERVICE_NAME) : NULL;
}
