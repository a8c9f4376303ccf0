// SPDX-License-Identifier: Apache-2.0
/*
 * Defaulting of API objects before validation (see validate.h): the port of
 * Kubernetes' SetDefaults_* for the kinds Sluice serves, plus the parts of
 * the Service and Pod registry strategies that shape an object before it is
 * validated (ClusterIP/ClusterIPs normalisation, keeping allocated values
 * on update, dropping fields that no longer apply after a type change).
 *
 * Only absent fields (missing, JSON null, or "" for strings) are filled;
 * a present value of the wrong type is left alone for validation to report.
 * Every function returns 0 or -ENOMEM.
 */
#include <errno.h>
#include <string.h>

#include "sluice/json.h"
#include "validate.h"

#define DEFAULT_AFFINITY_SECONDS 10800
#define DEFAULT_GRACE_SECONDS	 30

static bool is_obj(const struct json_object *o)
{
	return o && json_object_is_type(o, json_type_object);
}

static bool is_arr(const struct json_object *o)
{
	return o && json_object_is_type(o, json_type_array);
}

static size_t arr_len(const struct json_object *a)
{
	return is_arr(a) ? json_object_array_length(a) : 0;
}

static struct json_object *arr_at(const struct json_object *a, size_t i)
{
	return is_arr(a) ? json_object_array_get_idx(a, i) : NULL;
}

/* String member, "" when absent or not a string. */
static const char *str0(const struct json_object *o, const char *key)
{
	const char *s = sl_json_get_str(o, key);

	return s ? s : "";
}

/* Absent for defaulting: missing, null, or an empty string. */
static bool unset(const struct json_object *o, const char *key)
{
	struct json_object *m = sl_json_get(o, key);

	return !m || (json_object_is_type(m, json_type_string) && !*json_object_get_string(m));
}

static int set_obj(struct json_object *o, const char *key, struct json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(o, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static int default_str(struct json_object *o, const char *key, const char *val)
{
	return unset(o, key) ? sl_json_set_str(o, key, val) : 0;
}

static int default_int(struct json_object *o, const char *key, int64_t val)
{
	return sl_json_get(o, key) ? 0 : sl_json_set_int(o, key, val);
}

static int default_bool(struct json_object *o, const char *key, bool val)
{
	return sl_json_get(o, key) ? 0 : set_obj(o, key, json_object_new_boolean(val));
}

static int set_clone(struct json_object *o, const char *key, const struct json_object *val)
{
	return set_obj(o, key, sl_json_clone((struct json_object *)val));
}

/* The object member `key`, created when absent; NULL when present with
 * another type (nothing to default there) or on allocation failure. */
static struct json_object *member_obj(struct json_object *o, const char *key, int *err)
{
	struct json_object *m = sl_json_get(o, key);

	if (m)
		return is_obj(m) ? m : NULL;
	m = json_object_new_object();
	if (set_obj(o, key, m) < 0) {
		*err = -ENOMEM;
		return NULL;
	}
	return m;
}

/* ports[].protocol = TCP for every object in the list o[key]. */
static int default_port_protocols(struct json_object *o, const char *key)
{
	struct json_object *ports = sl_json_get(o, key);
	int err = 0;

	for (size_t i = 0; i < arr_len(ports) && !err; i++)
		if (is_obj(arr_at(ports, i)))
			err = default_str(arr_at(ports, i), "protocol", "TCP");
	return err;
}

static int str_array1(struct json_object *o, const char *key, const char *val)
{
	struct json_object *a = json_object_new_array();
	struct json_object *s = json_object_new_string(val);

	if (!a || !s || json_object_array_add(a, s) < 0) {
		json_object_put(a);
		json_object_put(s);
		return -ENOMEM;
	}
	return set_obj(o, key, a);
}

/* --- Service ------------------------------------------------------------------ */

static bool svc_needs_cluster_ip(const struct json_object *spec)
{
	return strcmp(str0(spec, "type"), "ExternalName");
}

static bool svc_needs_node_port(const struct json_object *spec)
{
	const char *t = str0(spec, "type");
	struct json_object *alloc = sl_json_get(spec, "allocateLoadBalancerNodePorts");

	if (!strcmp(t, "NodePort"))
		return true;
	return !strcmp(t, "LoadBalancer") &&
	       (!alloc || !json_object_is_type(alloc, json_type_boolean) ||
		json_object_get_boolean(alloc));
}

static bool svc_needs_hc_port(const struct json_object *spec)
{
	return !strcmp(str0(spec, "type"), "LoadBalancer") &&
	       !strcmp(str0(spec, "externalTrafficPolicy"), "Local");
}

static bool svc_externally_accessible(const struct json_object *spec)
{
	const char *t = str0(spec, "type");

	return !strcmp(t, "LoadBalancer") || !strcmp(t, "NodePort") ||
	       (!strcmp(t, "ClusterIP") && arr_len(sl_json_get(spec, "externalIPs")) > 0);
}

/* Same value (both absent counts as same). */
static bool same_member(const struct json_object *a, const struct json_object *b, const char *key)
{
	struct json_object *x = sl_json_get(a, key), *y = sl_json_get(b, key);

	if (!x || !y)
		return !x && !y;
	return sl_json_equal(x, y);
}

static bool same_cluster_ips(const struct json_object *a, const struct json_object *b)
{
	return !strcmp(str0(a, "clusterIP"), str0(b, "clusterIP")) &&
	       (arr_len(sl_json_get(a, "clusterIPs")) == 0
			? arr_len(sl_json_get(b, "clusterIPs")) == 0
			: same_member(a, b, "clusterIPs"));
}

/* Every non-zero nodePort in spec n also appears in spec o. */
static bool node_ports_subset(const struct json_object *n, const struct json_object *o)
{
	struct json_object *np = sl_json_get(n, "ports"), *op = sl_json_get(o, "ports");

	for (size_t i = 0; i < arr_len(np); i++) {
		int64_t p, q;
		bool found = false;

		if (!sl_json_get_int(arr_at(np, i), "nodePort", &p) || p == 0)
			continue;
		for (size_t j = 0; j < arr_len(op) && !found; j++)
			found = sl_json_get_int(arr_at(op, j), "nodePort", &q) && q == p;
		if (!found)
			return false;
	}
	return true;
}

/* patchAllocatedValues: an update that omits allocated values keeps them. */
static int svc_patch_allocated(struct json_object *spec, const struct json_object *ospec)
{
	int err = 0;

	if (svc_needs_cluster_ip(spec) && svc_needs_cluster_ip(ospec)) {
		if (unset(spec, "clusterIP") && !unset(ospec, "clusterIP"))
			err = set_clone(spec, "clusterIP", sl_json_get(ospec, "clusterIP"));
		if (!err && arr_len(sl_json_get(spec, "clusterIPs")) == 0 &&
		    arr_len(sl_json_get(ospec, "clusterIPs")) > 0)
			err = set_clone(spec, "clusterIPs", sl_json_get(ospec, "clusterIPs"));
		if (!err && arr_len(sl_json_get(spec, "ipFamilies")) == 0 &&
		    arr_len(sl_json_get(ospec, "ipFamilies")) > 0)
			err = set_clone(spec, "ipFamilies", sl_json_get(ospec, "ipFamilies"));
		if (!err && unset(spec, "ipFamilyPolicy") && !unset(ospec, "ipFamilyPolicy"))
			err = set_clone(spec, "ipFamilyPolicy",
					sl_json_get(ospec, "ipFamilyPolicy"));
	}
	if (!err && svc_needs_node_port(spec) && svc_needs_node_port(ospec)) {
		struct json_object *np = sl_json_get(spec, "ports"),
				   *op = sl_json_get(ospec, "ports");

		/* Matched by port name, as upstream; a value the new object
		 * already uses elsewhere is not copied twice. */
		for (size_t i = 0; i < arr_len(np) && !err; i++) {
			struct json_object *p = arr_at(np, i);
			int64_t cur = 0, val = 0;
			bool used = false;

			if (!is_obj(p) || (sl_json_get_int(p, "nodePort", &cur) && cur != 0))
				continue;
			for (size_t j = 0; j < arr_len(op); j++) {
				struct json_object *q = arr_at(op, j);

				if (!strcmp(str0(q, "name"), str0(p, "name")) &&
				    sl_json_get_int(q, "nodePort", &val))
					break;
				val = 0;
			}
			for (size_t j = 0; j < arr_len(np) && val; j++) {
				int64_t other;

				if (sl_json_get_int(arr_at(np, j), "nodePort", &other) &&
				    other == val)
					used = true;
			}
			if (val && !used)
				err = sl_json_set_int(p, "nodePort", val);
		}
	}
	if (!err && svc_needs_hc_port(spec) && svc_needs_hc_port(ospec)) {
		int64_t hc = 0;

		if ((!sl_json_get_int(spec, "healthCheckNodePort", &hc) || hc == 0) &&
		    sl_json_get_int(ospec, "healthCheckNodePort", &hc))
			err = sl_json_set_int(spec, "healthCheckNodePort", hc);
	}
	return err;
}

/* NormalizeClusterIPs: keep clusterIP and clusterIPs in step. */
static int svc_normalize_ips(struct json_object *spec, const struct json_object *ospec)
{
	const char *ip = str0(spec, "clusterIP");

	if (!ospec) {
		if (*ip && arr_len(sl_json_get(spec, "clusterIPs")) == 0)
			return str_array1(spec, "clusterIPs", ip);
		return 0;
	}
	if (arr_len(sl_json_get(ospec, "clusterIPs")) > 0 &&
	    arr_len(sl_json_get(spec, "clusterIPs")) == 0 &&
	    !strcmp(str0(ospec, "clusterIP"), ip)) {
		int err = set_clone(spec, "clusterIPs", sl_json_get(ospec, "clusterIPs"));

		if (err)
			return err;
	}
	if (strcmp(str0(ospec, "clusterIP"), ip)) {
		if (!*ip) {
			json_object_object_del(spec, "clusterIPs");
			return 0;
		}
		/* A client that changed only the singular field: the plural
		 * follows it (validation then rejects the change itself). */
		if (same_member(spec, ospec, "clusterIPs"))
			json_object_object_del(spec, "clusterIPs");
		return str_array1(spec, "clusterIPs", ip);
	}
	return 0;
}

/* dropTypeDependentFields: after a type change, values the client merely
 * carried over from the old object (unchanged) are removed. */
static void svc_drop_type_dependent(struct json_object *spec, const struct json_object *ospec)
{
	static const char *const ip_fields[] = {"ipFamilies", "ipFamilyPolicy", NULL};

	if (svc_needs_cluster_ip(ospec) && !svc_needs_cluster_ip(spec)) {
		if (same_cluster_ips(spec, ospec)) {
			json_object_object_del(spec, "clusterIP");
			json_object_object_del(spec, "clusterIPs");
		}
		for (size_t i = 0; ip_fields[i]; i++)
			if (same_member(spec, ospec, ip_fields[i]))
				json_object_object_del(spec, ip_fields[i]);
		if (same_member(spec, ospec, "internalTrafficPolicy"))
			json_object_object_del(spec, "internalTrafficPolicy");
	}
	if (svc_needs_node_port(ospec) && !svc_needs_node_port(spec) &&
	    node_ports_subset(spec, ospec)) {
		struct json_object *ports = sl_json_get(spec, "ports");

		for (size_t i = 0; i < arr_len(ports); i++)
			if (is_obj(arr_at(ports, i)))
				json_object_object_del(arr_at(ports, i), "nodePort");
	}
	if (svc_needs_hc_port(ospec) && !svc_needs_hc_port(spec) &&
	    same_member(spec, ospec, "healthCheckNodePort"))
		json_object_object_del(spec, "healthCheckNodePort");
	if (!svc_externally_accessible(spec) && same_member(spec, ospec, "externalTrafficPolicy"))
		json_object_object_del(spec, "externalTrafficPolicy");
	if (!strcmp(str0(ospec, "type"), "LoadBalancer") &&
	    strcmp(str0(spec, "type"), "LoadBalancer") &&
	    same_member(spec, ospec, "allocateLoadBalancerNodePorts"))
		json_object_object_del(spec, "allocateLoadBalancerNodePorts");
}

static int default_service(struct json_object *obj, const struct json_object *old)
{
	struct json_object *ospec = old ? sl_json_get(old, "spec") : NULL;
	struct json_object *spec, *ports;
	const char *type;
	int err = 0;

	spec = member_obj(obj, "spec", &err);
	if (!spec)
		return err;
	if ((err = default_str(spec, "type", "ClusterIP")) ||
	    (err = default_str(spec, "sessionAffinity", "None")))
		return err;
	type = str0(spec, "type");

	if (!strcmp(str0(spec, "sessionAffinity"), "ClientIP")) {
		struct json_object *cfg = sl_json_get(spec, "sessionAffinityConfig");
		struct json_object *cip = sl_json_get(cfg, "clientIP");

		if (!sl_json_get(cip, "timeoutSeconds")) {
			struct json_object *ncfg = json_object_new_object();
			struct json_object *ncip = json_object_new_object();

			if (!ncfg || !ncip || set_obj(ncfg, "clientIP", ncip) < 0) {
				json_object_put(ncfg);
				return -ENOMEM;
			}
			if ((err = sl_json_set_int(ncip, "timeoutSeconds",
						   DEFAULT_AFFINITY_SECONDS)) ||
			    (err = set_obj(spec, "sessionAffinityConfig", ncfg)))
				return err;
		}
	}

	ports = sl_json_get(spec, "ports");
	for (size_t i = 0; i < arr_len(ports); i++) {
		struct json_object *p = arr_at(ports, i);
		int64_t port, tpi;

		if (!is_obj(p))
			continue;
		if ((err = default_str(p, "protocol", "TCP")))
			return err;
		/* targetPort 0, "" or absent means "same as port". */
		if ((unset(p, "targetPort") ||
		     (sl_json_get_int(p, "targetPort", &tpi) && tpi == 0)) &&
		    sl_json_get_int(p, "port", &port) &&
		    (err = sl_json_set_int(p, "targetPort", port)))
			return err;
	}

	if (svc_externally_accessible(spec) &&
	    (err = default_str(spec, "externalTrafficPolicy", "Cluster")))
		return err;
	if (strcmp(type, "ExternalName") &&
	    (err = default_str(spec, "internalTrafficPolicy", "Cluster")))
		return err;
	if (!strcmp(type, "LoadBalancer") &&
	    (err = default_bool(spec, "allocateLoadBalancerNodePorts", true)))
		return err;

	if (is_obj(ospec)) {
		if ((err = svc_patch_allocated(spec, ospec)) ||
		    (err = svc_normalize_ips(spec, ospec)))
			return err;
		svc_drop_type_dependent(spec, ospec);
	} else if ((err = svc_normalize_ips(spec, NULL))) {
		return err;
	}

	/* Sluice's service CIDR is single-stack IPv4 (alloc.h). */
	if (strcmp(type, "ExternalName")) {
		if (arr_len(sl_json_get(spec, "ipFamilies")) == 0 &&
		    (err = str_array1(spec, "ipFamilies", "IPv4")))
			return err;
		if ((err = default_str(spec, "ipFamilyPolicy", "SingleStack")))
			return err;
	}
	return 0;
}

/* --- Pod ------------------------------------------------------------------------ */

/* Upstream: "latest" (or no tag) pulls Always, anything else IfNotPresent;
 * a digest counts as a tag. */
static const char *pull_policy(const char *image)
{
	const char *slash = strrchr(image, '/');
	const char *colon;

	if (strchr(image, '@'))
		return "IfNotPresent";
	colon = strrchr(slash ? slash : image, ':');
	if (!colon || !strcmp(colon + 1, "latest"))
		return "Always";
	return "IfNotPresent";
}

static int default_containers(struct json_object *spec, const char *key, bool host_network)
{
	struct json_object *ctrs = sl_json_get(spec, key);
	int err = 0;

	for (size_t i = 0; i < arr_len(ctrs); i++) {
		struct json_object *c = arr_at(ctrs, i), *ports;

		if (!is_obj(c))
			continue;
		if ((err = default_str(c, "terminationMessagePath", "/dev/termination-log")) ||
		    (err = default_str(c, "terminationMessagePolicy", "File")))
			return err;
		if (!unset(c, "image") &&
		    (err = default_str(c, "imagePullPolicy", pull_policy(str0(c, "image")))))
			return err;
		ports = sl_json_get(c, "ports");
		for (size_t j = 0; j < arr_len(ports); j++) {
			struct json_object *p = arr_at(ports, j);
			int64_t cp;

			if (!is_obj(p))
				continue;
			if ((err = default_str(p, "protocol", "TCP")))
				return err;
			if (host_network && !sl_json_get(p, "hostPort") &&
			    sl_json_get_int(p, "containerPort", &cp) &&
			    (err = sl_json_set_int(p, "hostPort", cp)))
				return err;
		}
	}
	return 0;
}

static int default_pod_spec(struct json_object *spec)
{
	struct json_object *hn;
	bool host_network;
	int err = 0;

	hn = sl_json_get(spec, "hostNetwork");
	host_network =
		hn && json_object_is_type(hn, json_type_boolean) && json_object_get_boolean(hn);
	if ((err = default_str(spec, "restartPolicy", "Always")) ||
	    (err = default_str(spec, "dnsPolicy", "ClusterFirst")) ||
	    (err = default_str(spec, "schedulerName", "default-scheduler")) ||
	    (err = default_int(spec, "terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)) ||
	    (err = default_bool(spec, "enableServiceLinks", true)) ||
	    (err = default_containers(spec, "initContainers", host_network)) ||
	    (err = default_containers(spec, "containers", host_network)))
		return err;
	if (!sl_json_get(spec, "securityContext") &&
	    (err = set_obj(spec, "securityContext", json_object_new_object())))
		return err;
	return 0;
}

static int default_pod(struct json_object *obj, const struct json_object *old)
{
	struct json_object *spec;
	int err = 0;

	spec = member_obj(obj, "spec", &err);
	if (!spec)
		return err;
	if ((err = default_pod_spec(spec)))
		return err;
	if (!old) {
		struct json_object *status = member_obj(obj, "status", &err);

		if (status && (err = default_str(status, "phase", "Pending")))
			return err;
	}
	return err;
}

/* --- apps/v1 ------------------------------------------------------------------- */

/* spec.template.spec gets the Pod defaults, so a template compares equal to
 * what its pods become (and the template hash is stable across writes). */
static int default_template(struct json_object *spec)
{
	struct json_object *tmpl = sl_json_get(spec, "template"), *pspec;

	if (!is_obj(tmpl))
		return 0;
	pspec = sl_json_get(tmpl, "spec");
	if (!is_obj(pspec))
		return 0;
	return default_pod_spec(pspec);
}

static int default_workload(const char *kind, struct json_object *obj)
{
	struct json_object *spec = sl_json_get(obj, "spec"), *st, *ru;
	int err = 0;

	if (!is_obj(spec))
		return 0;
	if (strcmp(kind, "DaemonSet") && (err = default_int(spec, "replicas", 1)))
		return err;
	if (!strcmp(kind, "Deployment")) {
		st = member_obj(spec, "strategy", &err);
		if (!st)
			return err;
		if ((err = default_str(st, "type", "RollingUpdate")))
			return err;
		if (!strcmp(str0(st, "type"), "RollingUpdate")) {
			ru = member_obj(st, "rollingUpdate", &err);
			if (!ru)
				return err;
			if ((err = default_str(ru, "maxUnavailable", "25%")) ||
			    (err = default_str(ru, "maxSurge", "25%")))
				return err;
		}
		if ((err = default_int(spec, "revisionHistoryLimit", 10)) ||
		    (err = default_int(spec, "progressDeadlineSeconds", 600)))
			return err;
	} else if (!strcmp(kind, "DaemonSet")) {
		st = member_obj(spec, "updateStrategy", &err);
		if (!st)
			return err;
		if ((err = default_str(st, "type", "RollingUpdate")))
			return err;
		if (!strcmp(str0(st, "type"), "RollingUpdate")) {
			ru = member_obj(st, "rollingUpdate", &err);
			if (!ru)
				return err;
			if ((err = default_int(ru, "maxUnavailable", 1)) ||
			    (err = default_int(ru, "maxSurge", 0)))
				return err;
		}
		if ((err = default_int(spec, "revisionHistoryLimit", 10)))
			return err;
	}
	return default_template(spec);
}

/* --- the rest ---------------------------------------------------------------- */

static int default_namespace(struct json_object *obj, const struct json_object *old)
{
	struct json_object *meta = sl_json_get(obj, "metadata"), *labels;
	const char *name = sl_json_get_str(meta, "name");
	int err = 0;

	/* The label is always the name, whatever the client sent. */
	if (is_obj(meta) && name && *name) {
		labels = member_obj(meta, "labels", &err);
		if (labels && (err = sl_json_set_str(labels, "kubernetes.io/metadata.name", name)))
			return err;
	}
	if (err)
		return err;
	if (!old) {
		struct json_object *status = member_obj(obj, "status", &err);

		if (status && (err = default_str(status, "phase", "Active")))
			return err;
	}
	return err;
}

static int default_networkpolicy(struct json_object *obj)
{
	static const char *const dirs[] = {"ingress", "egress", NULL};
	struct json_object *spec = sl_json_get(obj, "spec");
	int err = 0;

	if (!is_obj(spec))
		return 0;
	/* A policy that names no types is an Ingress policy, plus Egress if it
	 * has egress rules. */
	if (arr_len(sl_json_get(spec, "policyTypes")) == 0 &&
	    !(sl_json_get(spec, "policyTypes") && !is_arr(sl_json_get(spec, "policyTypes")))) {
		struct json_object *types = json_object_new_array();

		if (!types || json_object_array_add(types, json_object_new_string("Ingress")) < 0 ||
		    (arr_len(sl_json_get(spec, "egress")) > 0 &&
		     json_object_array_add(types, json_object_new_string("Egress")) < 0)) {
			json_object_put(types);
			return -ENOMEM;
		}
		if ((err = set_obj(spec, "policyTypes", types)))
			return err;
	}
	for (size_t d = 0; dirs[d]; d++) {
		struct json_object *rules = sl_json_get(spec, dirs[d]);

		for (size_t i = 0; i < arr_len(rules) && !err; i++)
			if (is_obj(arr_at(rules, i)))
				err = default_port_protocols(arr_at(rules, i), "ports");
	}
	return err;
}

static int default_endpointslice(struct json_object *obj)
{
	struct json_object *ports = sl_json_get(obj, "ports");
	int err = 0;

	for (size_t i = 0; i < arr_len(ports) && !err; i++) {
		struct json_object *p = arr_at(ports, i);

		if (!is_obj(p))
			continue;
		err = default_str(p, "protocol", "TCP");
		if (!err && !sl_json_get(p, "name"))
			err = sl_json_set_str(p, "name", "");
	}
	return err;
}

static int default_endpoints(struct json_object *obj)
{
	struct json_object *subsets = sl_json_get(obj, "subsets");
	int err = 0;

	for (size_t i = 0; i < arr_len(subsets) && !err; i++)
		if (is_obj(arr_at(subsets, i)))
			err = default_port_protocols(arr_at(subsets, i), "ports");
	return err;
}

int default_object(const char *kind, struct json_object *obj, const struct json_object *old)
{
	if (!kind || !is_obj(obj))
		return 0;
	if (old && !is_obj(old))
		old = NULL;
	if (!strcmp(kind, "Service"))
		return default_service(obj, old);
	if (!strcmp(kind, "Pod"))
		return default_pod(obj, old);
	if (!strcmp(kind, "Namespace"))
		return default_namespace(obj, old);
	if (!strcmp(kind, "NetworkPolicy"))
		return default_networkpolicy(obj);
	if (!strcmp(kind, "EndpointSlice"))
		return default_endpointslice(obj);
	if (!strcmp(kind, "Endpoints"))
		return default_endpoints(obj);
	if (!strcmp(kind, "Deployment") || !strcmp(kind, "ReplicaSet") ||
	    !strcmp(kind, "DaemonSet"))
		return default_workload(kind, obj);
	return 0;
}
