/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validation and defaulting of API objects, with Kubernetes' rules and error
 * shapes. Pure functions on json-c trees; no store access (allocation of
 * ClusterIPs/NodePorts is the server's job, see alloc.h; this module only
 * checks that requested values are well-formed and, on update, immutable).
 *
 * Kinds: Namespace, Pod, Service, Endpoints, EndpointSlice, Node,
 * NetworkPolicy, Event, Lease, ConfigMap, Deployment, ReplicaSet, DaemonSet
 * (docs/workloads.md). An unknown kind gets only the
 * metadata checks.
 */
#ifndef SLUICE_CONTROL_VALIDATE_H
#define SLUICE_CONTROL_VALIDATE_H

#include <stdbool.h>

#include <json-c/json.h>

#include "causes.h"

/*
 * Applies defaults in place, before validation (Kubernetes' SetDefaults_*):
 * Service: type ClusterIP, ports[].protocol TCP, targetPort = port,
 * sessionAffinity None, sessionAffinityConfig.clientIP.timeoutSeconds 10800
 * when affinity is ClientIP, externalTrafficPolicy Cluster for
 * NodePort/LoadBalancer, internalTrafficPolicy Cluster, ipFamilies/
 * ipFamilyPolicy SingleStack IPv4; NetworkPolicy: policyTypes from the rules
 * present; Namespace: label kubernetes.io/metadata.name = name, status.phase
 * Active; Pod: restartPolicy, dnsPolicy, schedulerName, container port
 * protocol TCP, status.phase Pending; EndpointSlice: ports[].protocol TCP;
 * Endpoints: ports[].protocol TCP; Deployment/ReplicaSet/DaemonSet: replicas,
 * strategy, revisionHistoryLimit, progressDeadlineSeconds and the Pod defaults
 * in spec.template.spec. `old` is the stored object on update
 * (NULL on create). Returns 0 or -ENOMEM.
 */
int default_object(const char *kind, struct json_object *obj, const struct json_object *old);

/*
 * Validates obj (already defaulted). `old` is the stored object on update
 * (NULL on create) for immutability rules (Service spec.clusterIP,
 * EndpointSlice addressType, ...). `namespaced` says whether
 * metadata.namespace must be set. Appends one cause per problem; returns the
 * number appended (0 = valid).
 */
int validate_object(const char *kind, bool namespaced, const struct json_object *obj,
		    const struct json_object *old, struct api_causes *out);

/* Name checks shared with the server (path names, generateName). NULL when
 * valid, else the Kubernetes message ("a lowercase RFC 1123 label must ..."). */
const char *validate_dns1123_label(const char *s);
const char *validate_dns1123_subdomain(const char *s);

#endif
