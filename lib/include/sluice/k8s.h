/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Typed Kubernetes objects for the networking stack: Namespace, Pod, Service,
 * Endpoints, EndpointSlice, Node, NetworkPolicy, Event, Lease, ConfigMap.
 *
 * Model. Every object and every nested object below has `raw` as its FIRST
 * member: a reference (refcount held) to the json_object it was decoded from.
 * The fields the node agent, DNS server, scheduler and controllers use are
 * decoded into typed C members; everything else stays in `raw` only. Encoding
 * builds a new document from the typed members plus a deep copy of every raw
 * member that has no typed counterpart, so
 *
 *   encode(decode(json)) is structurally equal to json   (sl_json_equal)
 *   decode(encode(x))    equals x                          (k8s_*_equal)
 *
 * for every object that decodes. Where a typed value still equals what `raw`
 * holds, the raw member is copied verbatim, so spellings that decode to the
 * same value ("+01:00" time offsets, explicit `null`, `"nodePort": 0`) survive.
 * List elements carry their own `raw`, so reordering or removing ports keeps
 * each port's unknown members with that port.
 *
 * Absence. A string member is NULL when the field is absent (or null); ""
 * is an empty string that was present. Integers and bools are 0/false when
 * absent, as in the Go API types. Go `*bool` fields whose default is not false
 * are `enum k8s_tri`. Times are `struct k8s_time`, unset when zero at the
 * precision the field is written with (seconds for Time, microseconds for
 * MicroTime; equality uses the same precision). Lists are a pointer plus
 * `n_<name>` count; string lists and maps are k8s_strlist and k8s_strmap. A
 * typed member set back to its default is left out on encode (a list or map
 * the caller emptied disappears, a released nodePort is dropped).
 *
 * Ownership. Every pointer member is owned by the object (malloc'd strings,
 * arrays; held json refs). To edit an object, free()/replace members with
 * malloc'd values, or use the k8s_strlist_ and k8s_strmap_ helpers; an element
 * removed from a list must have its members (and its raw) released by the
 * caller. A new list element has raw == NULL. `raw`
 * must be treated as read-only: decode shares subtrees of the caller's
 * document, so never modify a document after decoding from it.
 *
 * Errors. Decoding a malformed object (wrong JSON type, integer out of range,
 * unparsable time, kind mismatch) returns -SL_ERR_INVALID and writes a message
 * naming the field path, "spec.ports[1].port: expected integer". Unknown
 * fields are never an error. Allocation failure is -ENOMEM.
 *
 * Threads: objects are plain data; json-c refcounts are not atomic, so an
 * object (and the document it came from) belongs to one thread at a time.
 */
#ifndef SLUICE_K8S_H
#define SLUICE_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* --- value types ------------------------------------------------------------------------- */

/* A Go *bool: unset (absent or null), false or true. */
enum k8s_tri {
	K8S_TRI_UNSET = 0,
	K8S_TRI_FALSE = 1,
	K8S_TRI_TRUE = 2,
};

/* intstr.IntOrString (Service targetPort, NetworkPolicy port). */
enum k8s_intstr_type {
	K8S_INTSTR_NONE = 0, /* absent */
	K8S_INTSTR_INT = 1,
	K8S_INTSTR_STR = 2,
};

struct k8s_intstr {
	enum k8s_intstr_type type;
	int32_t ival; /* when type == K8S_INTSTR_INT */
	char *sval;   /* when type == K8S_INTSTR_STR (a port name, or digits kept as a string) */
};

/* A point in time: seconds since the Unix epoch (UTC) plus nanoseconds. {0,0} is unset. */
struct k8s_time {
	int64_t sec;
	int32_t nsec; /* 0..999999999 */
};

struct k8s_strlist {
	char **v; /* n owned strings */
	size_t n;
};

struct k8s_kv {
	char *key;
	char *value;
};

/* A JSON object of strings ({"app":"web"}), in document order; keys are unique. */
struct k8s_strmap {
	struct k8s_kv *v;
	size_t n;
};

/* --- shared nested types --------------------------------------------------------------- */

struct k8s_owner_ref {
	struct json_object *raw;
	char *api_version;
	char *kind;
	char *name;
	char *uid;
	enum k8s_tri controller;
	enum k8s_tri block_owner_deletion;
};

/* metav1.ObjectMeta */
struct k8s_meta {
	struct json_object *raw;
	char *name;
	char *generate_name;
	char *namespace;
	char *uid;
	char *resource_version;
	int64_t generation;
	struct k8s_time creation_timestamp;
	struct k8s_time deletion_timestamp;
	int64_t deletion_grace_period_seconds;
	struct k8s_strmap labels;
	struct k8s_strmap annotations;
	struct k8s_owner_ref *owner_references;
	size_t n_owner_references;
	struct k8s_strlist finalizers;
	/* Not an API field: set on objects k8s_obj_decode_text put in one
	 * block of memory (every member inside it), which k8s_obj_free
	 * releases at once. NULL for every other object. */
	void *arena;
};

/* corev1.ObjectReference (targetRef, involvedObject). */
struct k8s_objref {
	struct json_object *raw;
	char *api_version;
	char *kind;
	char *namespace;
	char *name;
	char *uid;
	char *resource_version;
	char *field_path;
};

/* Pod and Node conditions. */
struct k8s_condition {
	struct json_object *raw;
	char *type;   /* "Ready", "MemoryPressure", ... */
	char *status; /* "True", "False", "Unknown" */
	char *reason;
	char *message;
	struct k8s_time last_transition_time;
};

/* --- Namespace (v1) --------------------------------------------------------------------- */

struct k8s_namespace_spec {
	struct json_object *raw;
	struct k8s_strlist finalizers;
};

struct k8s_namespace_status {
	struct json_object *raw;
	char *phase; /* "Active", "Terminating" */
};

struct k8s_namespace {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_namespace_spec spec;
	struct k8s_namespace_status status;
};

/* --- Pod (v1) ------------------------------------------------------------------------------ */

struct k8s_container_port {
	struct json_object *raw;
	char *name;
	int32_t container_port;
	char *protocol; /* NULL means TCP */
	int32_t host_port;
	char *host_ip;
};

struct k8s_env_var {
	struct json_object *raw; /* valueFrom stays here */
	char *name;
	char *value;
};

struct k8s_resources {
	struct json_object *raw;
	struct k8s_strmap requests; /* quantities as strings; see k8s_quantity_* */
	struct k8s_strmap limits;
};

struct k8s_container {
	struct json_object *raw;
	char *name;
	char *image;
	struct k8s_strlist command;
	struct k8s_strlist args;
	struct k8s_container_port *ports;
	size_t n_ports;
	struct k8s_env_var *env;
	size_t n_env;
	struct k8s_resources resources;
};

struct k8s_toleration {
	struct json_object *raw;
	char *key;
	char *operator; /* "Exists", "Equal" */
	char *value;
	char *effect;
	int64_t toleration_seconds;
};

struct k8s_pod_spec {
	struct json_object *raw;
	char *node_name;
	bool host_network;
	char *hostname;
	char *subdomain;
	struct k8s_container *containers;
	size_t n_containers;
	struct k8s_container *init_containers;
	size_t n_init_containers;
	char *restart_policy;
	char *scheduler_name;
	char *service_account_name;
	char *dns_policy;
	char *priority_class_name;
	int64_t termination_grace_period_seconds;
	struct k8s_strmap node_selector;
	struct k8s_toleration *tolerations;
	size_t n_tolerations;
};

struct k8s_pod_ip {
	struct json_object *raw;
	char *ip;
};

struct k8s_container_status {
	struct json_object *raw;
	char *name;
	bool ready;
	int32_t restart_count;
	enum k8s_tri started;
	char *image;
	char *container_id;
};

struct k8s_pod_status {
	struct json_object *raw;
	char *phase; /* "Pending", "Running", "Succeeded", "Failed", "Unknown" */
	char *reason;
	char *message;
	char *pod_ip;
	struct k8s_pod_ip *pod_ips;
	size_t n_pod_ips;
	char *host_ip;
	struct k8s_pod_ip *host_ips;
	size_t n_host_ips;
	char *qos_class;
	struct k8s_time start_time;
	struct k8s_condition *conditions;
	size_t n_conditions;
	struct k8s_container_status *container_statuses;
	size_t n_container_statuses;
};

struct k8s_pod {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_pod_spec spec;
	struct k8s_pod_status status;
};

/* --- Service (v1) ------------------------------------------------------------------------ */

struct k8s_service_port {
	struct json_object *raw;
	char *name;
	char *protocol; /* NULL means TCP */
	int32_t port;
	struct k8s_intstr target_port; /* NONE means "same as port" */
	int32_t node_port;
	char *app_protocol;
};

struct k8s_client_ip_config {
	struct json_object *raw;
	int32_t timeout_seconds;
};

struct k8s_session_affinity_config {
	struct json_object *raw;
	struct k8s_client_ip_config client_ip;
};

struct k8s_service_spec {
	struct json_object *raw;
	char *type; /* "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"; NULL = ClusterIP */
	char *cluster_ip; /* "None" for headless */
	struct k8s_strlist cluster_ips;
	struct k8s_service_port *ports;
	size_t n_ports;
	struct k8s_strmap selector; /* plain map; empty = no selector */
	char *session_affinity;	    /* "None", "ClientIP" */
	struct k8s_session_affinity_config session_affinity_config;
	struct k8s_strlist external_ips;
	char *load_balancer_ip;
	struct k8s_strlist load_balancer_source_ranges;
	char *load_balancer_class;
	char *external_traffic_policy; /* "Cluster", "Local" */
	char *internal_traffic_policy;
	int32_t health_check_node_port;
	char *external_name;
	struct k8s_strlist ip_families; /* "IPv4", "IPv6" */
	char *ip_family_policy;
	bool publish_not_ready_addresses;
	enum k8s_tri allocate_load_balancer_node_ports; /* unset means true */
};

struct k8s_lb_ingress {
	struct json_object *raw;
	char *ip;
	char *hostname;
	char *ip_mode;
};

struct k8s_lb_status {
	struct json_object *raw;
	struct k8s_lb_ingress *ingress;
	size_t n_ingress;
};

struct k8s_service_status {
	struct json_object *raw;
	struct k8s_lb_status load_balancer;
};

struct k8s_service {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_service_spec spec;
	struct k8s_service_status status;
};

/* --- Endpoints (v1) ----------------------------------------------------------------------- */

struct k8s_endpoint_address {
	struct json_object *raw;
	char *ip;
	char *hostname;
	char *node_name;
	struct k8s_objref target_ref;
};

struct k8s_endpoint_port {
	struct json_object *raw;
	char *name;
	int32_t port;
	char *protocol;
	char *app_protocol;
};

struct k8s_endpoint_subset {
	struct json_object *raw;
	struct k8s_endpoint_address *addresses;
	size_t n_addresses;
	struct k8s_endpoint_address *not_ready_addresses;
	size_t n_not_ready_addresses;
	struct k8s_endpoint_port *ports;
	size_t n_ports;
};

struct k8s_endpoints {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_endpoint_subset *subsets;
	size_t n_subsets;
};

/* --- EndpointSlice (discovery.k8s.io/v1) ------------------------------------------------- */

struct k8s_endpoint_conditions {
	struct json_object *raw;
	enum k8s_tri ready; /* unset: consumers treat as ready */
	enum k8s_tri serving;
	enum k8s_tri terminating;
};

struct k8s_slice_endpoint {
	struct json_object *raw; /* hints, deprecatedTopology stay here */
	struct k8s_strlist addresses;
	struct k8s_endpoint_conditions conditions;
	char *hostname;
	char *node_name;
	char *zone;
	struct k8s_objref target_ref;
};

struct k8s_slice_port {
	struct json_object *raw;
	char *name;
	char *protocol;
	int32_t port; /* 0 = unset (all ports) */
	char *app_protocol;
};

struct k8s_endpointslice {
	struct json_object *raw;
	struct k8s_meta meta;
	char *address_type; /* "IPv4", "IPv6", "FQDN" */
	struct k8s_slice_endpoint *endpoints;
	size_t n_endpoints;
	struct k8s_slice_port *ports;
	size_t n_ports;
};

/* --- Node (v1) ------------------------------------------------------------------------------ */

struct k8s_taint {
	struct json_object *raw;
	char *key;
	char *value;
	char *effect; /* "NoSchedule", "PreferNoSchedule", "NoExecute" */
	struct k8s_time time_added;
};

struct k8s_node_spec {
	struct json_object *raw;
	char *pod_cidr;
	struct k8s_strlist pod_cidrs;
	char *provider_id;
	bool unschedulable;
	struct k8s_taint *taints;
	size_t n_taints;
};

struct k8s_node_address {
	struct json_object *raw;
	char *type; /* "InternalIP", "ExternalIP", "Hostname", ... */
	char *address;
};

struct k8s_node_info {
	struct json_object *raw;
	char *kubelet_version;
	char *kernel_version;
	char *os_image;
	char *container_runtime_version;
	char *operating_system;
	char *architecture;
};

struct k8s_node_status {
	struct json_object *raw;
	struct k8s_node_address *addresses;
	size_t n_addresses;
	struct k8s_condition *conditions;
	size_t n_conditions;
	struct k8s_strmap capacity; /* "cpu", "memory", "pods", ... as quantity strings */
	struct k8s_strmap allocatable;
	struct k8s_node_info node_info;
};

struct k8s_node {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_node_spec spec;
	struct k8s_node_status status;
};

/* --- NetworkPolicy (networking.k8s.io/v1) --------------------------------------------------- */

struct k8s_ip_block {
	struct json_object *raw;
	char *cidr;
	struct k8s_strlist except;
};

struct k8s_netpol_peer {
	struct json_object *raw;
	/* LabelSelector objects kept as JSON (refcount held, NULL when absent);
	 * compile with sl_labelsel_from_json(). */
	struct json_object *pod_selector;
	struct json_object *namespace_selector;
	struct k8s_ip_block ip_block; /* ip_block.raw == NULL when absent */
};

struct k8s_netpol_port {
	struct json_object *raw;
	char *protocol;		/* NULL means TCP */
	struct k8s_intstr port; /* NONE = all ports */
	int32_t end_port;	/* 0 = single port */
};

/* One ingress rule ("from" peers) or egress rule ("to" peers). */
struct k8s_netpol_rule {
	struct json_object *raw;
	struct k8s_netpol_port *ports;
	size_t n_ports;
	struct k8s_netpol_peer *peers;
	size_t n_peers;
};

struct k8s_netpol_spec {
	struct json_object *raw;
	struct json_object *pod_selector; /* LabelSelector; {} selects every pod */
	struct k8s_strlist policy_types;  /* "Ingress", "Egress" */
	struct k8s_netpol_rule *ingress;
	size_t n_ingress;
	struct k8s_netpol_rule *egress;
	size_t n_egress;
};

struct k8s_netpol {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_netpol_spec spec;
};

/* --- Event (v1) ---------------------------------------------------------------------------- */

struct k8s_event_source {
	struct json_object *raw;
	char *component;
	char *host;
};

struct k8s_event {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_objref involved_object;
	char *reason;
	char *message;
	char *type; /* "Normal", "Warning" */
	int32_t count;
	struct k8s_time first_timestamp;
	struct k8s_time last_timestamp;
	struct k8s_time event_time; /* MicroTime */
	struct k8s_event_source source;
	char *reporting_component;
	char *reporting_instance;
	char *action;
};

/* --- Lease (coordination.k8s.io/v1) ------------------------------------------------------- */

struct k8s_lease_spec {
	struct json_object *raw;
	char *holder_identity;
	int32_t lease_duration_seconds;
	struct k8s_time acquire_time; /* MicroTime */
	struct k8s_time renew_time;   /* MicroTime */
	int32_t lease_transitions;
};

struct k8s_lease {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_lease_spec spec;
};

/* --- ConfigMap (v1) ------------------------------------------------------------------------ */

struct k8s_configmap {
	struct json_object *raw;
	struct k8s_meta meta;
	struct k8s_strmap data;
	struct json_object *binary_data; /* {"key":"<base64>"} kept as JSON, NULL when absent */
	enum k8s_tri immutable;
};

/* --- kinds and generic entry points --------------------------------------------------------- */

enum k8s_kind {
	K8S_KIND_UNKNOWN = 0,
	K8S_KIND_NAMESPACE,
	K8S_KIND_POD,
	K8S_KIND_SERVICE,
	K8S_KIND_ENDPOINTS,
	K8S_KIND_ENDPOINTSLICE,
	K8S_KIND_NODE,
	K8S_KIND_NETWORKPOLICY,
	K8S_KIND_EVENT,
	K8S_KIND_LEASE,
	K8S_KIND_CONFIGMAP,
	K8S_KIND_MAX,
};

/*
 * Kind of a document from its apiVersion and kind members; K8S_KIND_UNKNOWN
 * when either is missing or not one of the kinds above (including other
 * versions such as discovery.k8s.io/v1beta1 or events.k8s.io/v1).
 */
enum k8s_kind k8s_kind_from_json(const struct json_object *obj);
/* "Service", "v1": static strings, or NULL for K8S_KIND_UNKNOWN / out of range. */
const char *k8s_kind_name(enum k8s_kind kind);
const char *k8s_kind_api_version(enum k8s_kind kind);

/*
 * Generic forms of the per-kind functions below; `obj` points to the kind's
 * struct (struct k8s_service for K8S_KIND_SERVICE, ...).
 *
 * k8s_obj_decode: decodes `json` (borrowed; references to it are kept, so do
 * not modify it afterwards) into a new object in *out. The document must be a
 * JSON object; apiVersion and kind, when present, must match `kind`.
 * Returns 0, -SL_ERR_INVALID (message in err naming the field), -EINVAL
 * (bad kind) or -ENOMEM. *out is NULL on failure.
 *
 * k8s_obj_encode: new document (caller owns it); NULL with errno = ENOMEM.
 * k8s_obj_new: empty object whose raw is {"apiVersion":..,"kind":..}, so an
 * object built from scratch encodes with its type meta. NULL + errno.
 * k8s_obj_clone: deep copy (decode of encode); NULL + errno.
 * k8s_obj_equal: typed members equal and unknown raw members structurally
 * equal, recursively (absent and explicit default compare equal).
 */
int k8s_obj_decode(enum k8s_kind kind, struct json_object *json, void **out, char *err,
		   size_t errlen);
/*
 * The same decode straight from JSON text (len bytes), without building a
 * json-c tree: several times faster, for consumers that only read the
 * object (the node agent's first LIST). `raw` members stay NULL, so encoding
 * the result drops every field without a typed member; of several problems
 * in one object, the first in the text is reported. Syntax errors are
 * -SL_ERR_INVALID with "invalid JSON: ..." in err.
 *
 * The object and its members are carved out of a few large blocks
 * (meta.arena) for kinds without free-form JSON members: read it, then
 * k8s_obj_free it; never free or replace its members one by one.
 */
int k8s_obj_decode_text(enum k8s_kind kind, const char *text, size_t len, void **out, char *err,
			size_t errlen);
/*
 * A run of k8s_obj_decode_text objects carved out of shared slabs: for a
 * list, where each object of the arena kinds was a malloc of a few KiB on the
 * decoding thread and a free on the consumer's, and malloc took those blocks
 * back at a third of the decode's cost. An object in a slab is freed as any
 * other (k8s_obj_free, on any thread); a slab is released with its last
 * object and the run's end. One run is used by one thread at a time;
 * objects of kinds that cannot live in an arena, and very large ones, are
 * allocated as k8s_obj_decode_text allocates them.
 */
struct k8s_text_run;
struct k8s_text_run *k8s_text_run_new(void);	 /* NULL: out of memory */
void k8s_text_run_end(struct k8s_text_run *run); /* accepts NULL */
/* k8s_obj_decode_text into run (NULL: as k8s_obj_decode_text). */
int k8s_obj_decode_text_run(struct k8s_text_run *run, enum k8s_kind kind, const char *text,
			    size_t len, void **out, char *err, size_t errlen);
struct json_object *k8s_obj_encode(enum k8s_kind kind, const void *obj);
void *k8s_obj_new(enum k8s_kind kind);
void *k8s_obj_clone(enum k8s_kind kind, const void *obj);
bool k8s_obj_equal(enum k8s_kind kind, const void *a, const void *b);
/* Typed members only, unknown members ignored: for objects from
 * k8s_obj_decode_text, which keeps no raw. */
bool k8s_obj_equal_typed(enum k8s_kind kind, const void *a, const void *b);
void k8s_obj_free(enum k8s_kind kind, void *obj);
/* ObjectMeta of any kind's object (every kind struct has `meta`). */
const struct k8s_meta *k8s_obj_meta(enum k8s_kind kind, const void *obj);

/*
 * Per-kind functions, all with the semantics of the generic ones above:
 *
 *   int            <p>_decode(struct json_object *json, struct <t> **out, char *err, size_t
 * errlen); struct json_object *<p>_encode(const struct <t> *obj); struct <t>    *<p>_new(void);
 *   struct <t>    *<p>_clone(const struct <t> *obj);
 *   bool           <p>_equal(const struct <t> *a, const struct <t> *b);
 *   void           <p>_free(struct <t> *obj);           accepts NULL
 */
#define K8S_DECLARE_KIND(p, t)                                                              \
	int p##_decode(struct json_object *json, struct t **out, char *err, size_t errlen); \
	struct json_object *p##_encode(const struct t *obj);                                \
	struct t *p##_new(void);                                                            \
	struct t *p##_clone(const struct t *obj);                                           \
	bool p##_equal(const struct t *a, const struct t *b);                               \
	void p##_free(struct t *obj)

K8S_DECLARE_KIND(k8s_namespace, k8s_namespace);
K8S_DECLARE_KIND(k8s_pod, k8s_pod);
K8S_DECLARE_KIND(k8s_service, k8s_service);
K8S_DECLARE_KIND(k8s_endpoints, k8s_endpoints);
K8S_DECLARE_KIND(k8s_endpointslice, k8s_endpointslice);
K8S_DECLARE_KIND(k8s_node, k8s_node);
K8S_DECLARE_KIND(k8s_netpol, k8s_netpol);
K8S_DECLARE_KIND(k8s_event, k8s_event);
K8S_DECLARE_KIND(k8s_lease, k8s_lease);
K8S_DECLARE_KIND(k8s_configmap, k8s_configmap);

/* --- accessors ------------------------------------------------------------------------------ */

/* Value for key or NULL. Borrowed. */
const char *k8s_strmap_get(const struct k8s_strmap *m, const char *key);
/* Sets key (copied) to value (copied), replacing an existing value. 0 or -ENOMEM. */
int k8s_strmap_set(struct k8s_strmap *m, const char *key, const char *value);
/* Removes key; returns true if it was there. */
bool k8s_strmap_del(struct k8s_strmap *m, const char *key);
/* Appends a copy of s. 0 or -ENOMEM. */
int k8s_strlist_push(struct k8s_strlist *l, const char *s);
/* Frees the members and leaves an empty list/map. */
void k8s_strlist_fini(struct k8s_strlist *l);
void k8s_strmap_fini(struct k8s_strmap *m);

/* The owner reference with controller: true, or NULL. Borrowed. */
const struct k8s_owner_ref *k8s_meta_controller(const struct k8s_meta *meta);

/* Label kubernetes.io/service-name of an EndpointSlice, or NULL. Borrowed. */
const char *k8s_endpointslice_service_name(const struct k8s_endpointslice *es);
#define K8S_LABEL_SERVICE_NAME "kubernetes.io/service-name"

/* Condition of the given type, or NULL. Borrowed. */
const struct k8s_condition *k8s_pod_condition(const struct k8s_pod *pod, const char *type);
const struct k8s_condition *k8s_node_condition(const struct k8s_node *node, const char *type);
/* True when the Ready condition has status "True". */
bool k8s_pod_ready(const struct k8s_pod *pod);
/* Ready condition as a tri-state: UNSET when the node reports none (or "Unknown"). */
enum k8s_tri k8s_node_ready(const struct k8s_node *node);

/* --- quantities and times ------------------------------------------------------------------- */

/*
 * resource.Quantity strings: <sign?><digits[.digits]><suffix> where suffix is
 * a binary SI (Ki Mi Gi Ti Pi Ei), decimal SI (n u m "" k M G T P E) or
 * decimal exponent (e3, E-2). Rounded up (away from zero) to the unit like
 * Quantity.MilliValue()/Value().
 *
 * k8s_quantity_parse_milli: CPU "100m" -> 100, "2" -> 2000, "0.5" -> 500.
 * k8s_quantity_parse: plain value, memory "128Mi" -> 134217728, "1G", "1e3".
 * Return 0, -EINVAL on anything that is not a quantity (empty, spaces,
 * unknown suffix, "1.2.3"), -ERANGE when the result does not fit int64.
 */
int k8s_quantity_parse_milli(const char *s, int64_t *milli);
int k8s_quantity_parse(const char *s, int64_t *value);

/*
 * RFC 3339 times as Kubernetes writes them: "2024-03-01T12:00:00Z",
 * optional fraction of up to 9 digits, "Z" or a "+hh:mm"/"-hh:mm" offset.
 * Returns 0 or -EINVAL (any deviation, out-of-range fields, year outside
 * 0000..9999).
 */
int k8s_time_parse(const char *s, struct k8s_time *out);
/*
 * Formats t in UTC: metav1.Time style "2024-03-01T12:00:00Z" (fraction
 * dropped), or with micro = true metav1.MicroTime style
 * "2024-03-01T12:00:00.123456Z". buf needs K8S_TIME_BUFSZ bytes.
 * Returns the string length or -ERANGE / -ENOSPC.
 */
#define K8S_TIME_BUFSZ 32
int k8s_time_format(const struct k8s_time *t, bool micro, char *buf, size_t len);
static inline bool k8s_time_is_set(const struct k8s_time *t)
{
	return t->sec != 0 || t->nsec != 0;
}

#endif
