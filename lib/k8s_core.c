// SPDX-License-Identifier: Apache-2.0
/*
 * Field tables for the core/v1 kinds the node agent and scheduler read:
 * Namespace, Pod, Node, Event, ConfigMap, plus their small accessors. The
 * tables name the JSON members Sluice types; everything else in an object is
 * carried through verbatim by the engine in k8s_meta.c.
 */
#include <string.h>

#include "k8s_desc.h"

/* --- Namespace ---------------------------------------------------------------------------- */

K8S_TYPE(k8s_namespace_spec_type, k8s_namespace_spec,
	 F_STRLIST("finalizers", struct k8s_namespace_spec, finalizers));

K8S_TYPE(k8s_namespace_status_type, k8s_namespace_status,
	 F_STR("phase", struct k8s_namespace_status, phase));

K8S_TYPE_PUBLIC(k8s_namespace_type, k8s_namespace,
		F_OBJ("metadata", struct k8s_namespace, meta, k8s_meta, k8s_meta_type),
		F_OBJ("spec", struct k8s_namespace, spec, k8s_namespace_spec,
		      k8s_namespace_spec_type),
		F_OBJ("status", struct k8s_namespace, status, k8s_namespace_status,
		      k8s_namespace_status_type));

K8S_DEFINE_KIND(k8s_namespace, k8s_namespace, K8S_KIND_NAMESPACE)

/* --- Pod ---------------------------------------------------------------------------------- */

K8S_TYPE(k8s_container_port_type, k8s_container_port,
	 F_STR("name", struct k8s_container_port, name),
	 F_I32("containerPort", struct k8s_container_port, container_port),
	 F_STR("protocol", struct k8s_container_port, protocol),
	 F_I32("hostPort", struct k8s_container_port, host_port),
	 F_STR("hostIP", struct k8s_container_port, host_ip));

K8S_TYPE(k8s_env_var_type, k8s_env_var, F_STR("name", struct k8s_env_var, name),
	 F_STR("value", struct k8s_env_var, value));

K8S_TYPE(k8s_resources_type, k8s_resources, F_STRMAP("requests", struct k8s_resources, requests),
	 F_STRMAP("limits", struct k8s_resources, limits));

K8S_TYPE(k8s_container_type, k8s_container, F_STR("name", struct k8s_container, name),
	 F_STR("image", struct k8s_container, image),
	 F_STRLIST("command", struct k8s_container, command),
	 F_STRLIST("args", struct k8s_container, args),
	 F_LIST("ports", struct k8s_container, ports, k8s_container_port, k8s_container_port_type),
	 F_LIST("env", struct k8s_container, env, k8s_env_var, k8s_env_var_type),
	 F_OBJ("resources", struct k8s_container, resources, k8s_resources, k8s_resources_type));

K8S_TYPE(k8s_toleration_type, k8s_toleration, F_STR("key", struct k8s_toleration, key),
	 F_STR("operator", struct k8s_toleration, operator),
	 F_STR("value", struct k8s_toleration, value),
	 F_STR("effect", struct k8s_toleration, effect),
	 F_I64("tolerationSeconds", struct k8s_toleration, toleration_seconds));

K8S_TYPE(k8s_pod_spec_type, k8s_pod_spec, F_STR("nodeName", struct k8s_pod_spec, node_name),
	 F_BOOL("hostNetwork", struct k8s_pod_spec, host_network),
	 F_STR("hostname", struct k8s_pod_spec, hostname),
	 F_STR("subdomain", struct k8s_pod_spec, subdomain),
	 F_LIST("containers", struct k8s_pod_spec, containers, k8s_container, k8s_container_type),
	 F_LIST("initContainers", struct k8s_pod_spec, init_containers, k8s_container,
		k8s_container_type),
	 F_STR("restartPolicy", struct k8s_pod_spec, restart_policy),
	 F_STR("schedulerName", struct k8s_pod_spec, scheduler_name),
	 F_STR("serviceAccountName", struct k8s_pod_spec, service_account_name),
	 F_STR("dnsPolicy", struct k8s_pod_spec, dns_policy),
	 F_STR("priorityClassName", struct k8s_pod_spec, priority_class_name),
	 F_I64("terminationGracePeriodSeconds", struct k8s_pod_spec,
	       termination_grace_period_seconds),
	 F_STRMAP("nodeSelector", struct k8s_pod_spec, node_selector),
	 F_LIST("tolerations", struct k8s_pod_spec, tolerations, k8s_toleration,
		k8s_toleration_type));

K8S_TYPE(k8s_pod_ip_type, k8s_pod_ip, F_STR("ip", struct k8s_pod_ip, ip));

K8S_TYPE(k8s_container_status_type, k8s_container_status,
	 F_STR("name", struct k8s_container_status, name),
	 F_BOOL("ready", struct k8s_container_status, ready),
	 F_I32("restartCount", struct k8s_container_status, restart_count),
	 F_TRI("started", struct k8s_container_status, started),
	 F_STR("image", struct k8s_container_status, image),
	 F_STR("containerID", struct k8s_container_status, container_id));

K8S_TYPE(k8s_pod_status_type, k8s_pod_status, F_STR("phase", struct k8s_pod_status, phase),
	 F_STR("reason", struct k8s_pod_status, reason),
	 F_STR("message", struct k8s_pod_status, message),
	 F_STR("podIP", struct k8s_pod_status, pod_ip),
	 F_LIST("podIPs", struct k8s_pod_status, pod_ips, k8s_pod_ip, k8s_pod_ip_type),
	 F_STR("hostIP", struct k8s_pod_status, host_ip),
	 F_LIST("hostIPs", struct k8s_pod_status, host_ips, k8s_pod_ip, k8s_pod_ip_type),
	 F_STR("qosClass", struct k8s_pod_status, qos_class),
	 F_TIME("startTime", struct k8s_pod_status, start_time),
	 F_LIST("conditions", struct k8s_pod_status, conditions, k8s_condition, k8s_condition_type),
	 F_LIST("containerStatuses", struct k8s_pod_status, container_statuses,
		k8s_container_status, k8s_container_status_type));

K8S_TYPE_PUBLIC(k8s_pod_type, k8s_pod,
		F_OBJ("metadata", struct k8s_pod, meta, k8s_meta, k8s_meta_type),
		F_OBJ("spec", struct k8s_pod, spec, k8s_pod_spec, k8s_pod_spec_type),
		F_OBJ("status", struct k8s_pod, status, k8s_pod_status, k8s_pod_status_type));

K8S_DEFINE_KIND(k8s_pod, k8s_pod, K8S_KIND_POD)

static const struct k8s_condition *k8s_condition_find(const struct k8s_condition *c, size_t n,
						      const char *type)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].type && !strcmp(c[i].type, type))
			return &c[i];
	return NULL;
}

const struct k8s_condition *k8s_pod_condition(const struct k8s_pod *pod, const char *type)
{
	if (!pod || !type)
		return NULL;
	return k8s_condition_find(pod->status.conditions, pod->status.n_conditions, type);
}

bool k8s_pod_ready(const struct k8s_pod *pod)
{
	const struct k8s_condition *c = k8s_pod_condition(pod, "Ready");

	return c && c->status && !strcmp(c->status, "True");
}

/* --- Node --------------------------------------------------------------------------------- */

K8S_TYPE(k8s_taint_type, k8s_taint, F_STR("key", struct k8s_taint, key),
	 F_STR("value", struct k8s_taint, value), F_STR("effect", struct k8s_taint, effect),
	 F_TIME("timeAdded", struct k8s_taint, time_added));

K8S_TYPE(k8s_node_spec_type, k8s_node_spec, F_STR("podCIDR", struct k8s_node_spec, pod_cidr),
	 F_STRLIST("podCIDRs", struct k8s_node_spec, pod_cidrs),
	 F_STR("providerID", struct k8s_node_spec, provider_id),
	 F_BOOL("unschedulable", struct k8s_node_spec, unschedulable),
	 F_LIST("taints", struct k8s_node_spec, taints, k8s_taint, k8s_taint_type));

K8S_TYPE(k8s_node_address_type, k8s_node_address, F_STR("type", struct k8s_node_address, type),
	 F_STR("address", struct k8s_node_address, address));

K8S_TYPE(k8s_node_info_type, k8s_node_info,
	 F_STR("kubeletVersion", struct k8s_node_info, kubelet_version),
	 F_STR("kernelVersion", struct k8s_node_info, kernel_version),
	 F_STR("osImage", struct k8s_node_info, os_image),
	 F_STR("containerRuntimeVersion", struct k8s_node_info, container_runtime_version),
	 F_STR("operatingSystem", struct k8s_node_info, operating_system),
	 F_STR("architecture", struct k8s_node_info, architecture));

K8S_TYPE(k8s_node_status_type, k8s_node_status,
	 F_LIST("addresses", struct k8s_node_status, addresses, k8s_node_address,
		k8s_node_address_type),
	 F_LIST("conditions", struct k8s_node_status, conditions, k8s_condition,
		k8s_condition_type),
	 F_STRMAP("capacity", struct k8s_node_status, capacity),
	 F_STRMAP("allocatable", struct k8s_node_status, allocatable),
	 F_OBJ("nodeInfo", struct k8s_node_status, node_info, k8s_node_info, k8s_node_info_type));

K8S_TYPE_PUBLIC(k8s_node_type, k8s_node,
		F_OBJ("metadata", struct k8s_node, meta, k8s_meta, k8s_meta_type),
		F_OBJ("spec", struct k8s_node, spec, k8s_node_spec, k8s_node_spec_type),
		F_OBJ("status", struct k8s_node, status, k8s_node_status, k8s_node_status_type));

K8S_DEFINE_KIND(k8s_node, k8s_node, K8S_KIND_NODE)

const struct k8s_condition *k8s_node_condition(const struct k8s_node *node, const char *type)
{
	if (!node || !type)
		return NULL;
	return k8s_condition_find(node->status.conditions, node->status.n_conditions, type);
}

enum k8s_tri k8s_node_ready(const struct k8s_node *node)
{
	const struct k8s_condition *c = k8s_node_condition(node, "Ready");

	if (!c || !c->status)
		return K8S_TRI_UNSET;
	if (!strcmp(c->status, "True"))
		return K8S_TRI_TRUE;
	if (!strcmp(c->status, "False"))
		return K8S_TRI_FALSE;
	return K8S_TRI_UNSET; /* "Unknown": the node controller lost contact */
}

/* --- Event -------------------------------------------------------------------------------- */

K8S_TYPE(k8s_event_source_type, k8s_event_source,
	 F_STR("component", struct k8s_event_source, component),
	 F_STR("host", struct k8s_event_source, host));

K8S_TYPE_PUBLIC(k8s_event_type, k8s_event,
		F_OBJ("metadata", struct k8s_event, meta, k8s_meta, k8s_meta_type),
		F_OBJ("involvedObject", struct k8s_event, involved_object, k8s_objref,
		      k8s_objref_type),
		F_STR("reason", struct k8s_event, reason),
		F_STR("message", struct k8s_event, message), F_STR("type", struct k8s_event, type),
		F_I32("count", struct k8s_event, count),
		F_TIME("firstTimestamp", struct k8s_event, first_timestamp),
		F_TIME("lastTimestamp", struct k8s_event, last_timestamp),
		F_MTIME("eventTime", struct k8s_event, event_time),
		F_OBJ("source", struct k8s_event, source, k8s_event_source, k8s_event_source_type),
		F_STR("reportingComponent", struct k8s_event, reporting_component),
		F_STR("reportingInstance", struct k8s_event, reporting_instance),
		F_STR("action", struct k8s_event, action));

K8S_DEFINE_KIND(k8s_event, k8s_event, K8S_KIND_EVENT)

/* --- ConfigMap ---------------------------------------------------------------------------- */

K8S_TYPE_PUBLIC(k8s_configmap_type, k8s_configmap,
		F_OBJ("metadata", struct k8s_configmap, meta, k8s_meta, k8s_meta_type),
		F_STRMAP("data", struct k8s_configmap, data),
		F_RAWOBJ("binaryData", struct k8s_configmap, binary_data),
		F_TRI("immutable", struct k8s_configmap, immutable));

K8S_DEFINE_KIND(k8s_configmap, k8s_configmap, K8S_KIND_CONFIGMAP)
