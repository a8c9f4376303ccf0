// SPDX-License-Identifier: Apache-2.0
/*
 * lib/k8s_*.c: typed Kubernetes objects. Round trips for every kind on
 * kubectl-shaped objects (the fuzz corpus plus the literals below), typed
 * field checks, edits through the typed members, decode errors with their
 * field paths, and the quantity / time / container helpers.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

#define CORPUS_DIR "tests/fuzz/corpus/k8s"

static struct json_object *parse(const char *txt)
{
	char err[128];
	struct json_object *o = sl_json_parse(txt, strlen(txt), err, sizeof(err));

	if (!o)
		fprintf(stderr, "  test JSON does not parse: %s\n", err);
	return o;
}

static struct json_object *load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	struct json_object *o = NULL;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
		o = sl_json_parse(buf, (size_t)n, NULL, 0);
	free(buf);
	fclose(f);
	return o;
}

/* Checks the three round-trip properties for one document; returns false on a failure. */
static bool check_roundtrip(enum k8s_kind kind, struct json_object *doc, const char *name)
{
	struct json_object *enc = NULL, *enc2 = NULL;
	void *obj = NULL, *again = NULL, *clone = NULL;
	char err[256] = "";
	bool ok = false;

	if (!ASSERT_OK(k8s_obj_decode(kind, doc, &obj, err, sizeof(err)), name)) {
		fprintf(stderr, "  %s: %s\n", name, err);
		goto out;
	}
	enc = k8s_obj_encode(kind, obj);
	if (!ASSERT_NOT_NULL(enc, name) || !ASSERT_TRUE(sl_json_equal(enc, doc), name)) {
		if (enc)
			fprintf(stderr, "  %s: got %s\n", name, sl_json_str(enc, NULL));
		goto out;
	}
	if (!ASSERT_OK(k8s_obj_decode(kind, enc, &again, err, sizeof(err)), name) ||
	    !ASSERT_TRUE(k8s_obj_equal(kind, obj, again), name))
		goto out;
	enc2 = k8s_obj_encode(kind, again);
	if (!ASSERT_NOT_NULL(enc2, name) || !ASSERT_TRUE(sl_json_equal(enc2, doc), name))
		goto out;
	clone = k8s_obj_clone(kind, obj);
	if (!ASSERT_NOT_NULL(clone, name) || !ASSERT_TRUE(k8s_obj_equal(kind, obj, clone), name))
		goto out;
	/* The text decoder (no json-c tree) reads the same typed values. */
	{
		size_t len;
		const char *txt = sl_json_str(doc, &len);
		void *fast = NULL;

		if (!ASSERT_OK(k8s_obj_decode_text(kind, txt, len, &fast, err, sizeof(err)),
			       name)) {
			fprintf(stderr, "  %s (text): %s\n", name, err);
			goto out;
		}
		ok = ASSERT_TRUE(k8s_obj_equal_typed(kind, obj, fast), name);
		k8s_obj_free(kind, fast);
		if (!ok)
			goto out;
	}
	ok = true;
out:
	json_object_put(enc);
	json_object_put(enc2);
	k8s_obj_free(kind, obj);
	k8s_obj_free(kind, again);
	k8s_obj_free(kind, clone);
	return ok;
}

/* Expects decode as kind to fail with -SL_ERR_INVALID and a message containing want. */
static bool check_invalid(enum k8s_kind kind, const char *txt, const char *want)
{
	struct json_object *doc = parse(txt);
	void *obj = (void *)1;
	char err[256] = "";
	int rc;
	bool ok;

	if (!ASSERT_NOT_NULL(doc, want))
		return false;
	rc = k8s_obj_decode(kind, doc, &obj, err, sizeof(err));
	ok = ASSERT_EQ(rc, -SL_ERR_INVALID, want) && ASSERT_NULL(obj, want) &&
	     ASSERT_TRUE(strstr(err, want) != NULL, want);
	if (!ok)
		fprintf(stderr, "  message was \"%s\"\n", err);
	/* The text decoder refuses it with the same message (these documents
	 * have one problem each, so document order does not matter). */
	if (ok) {
		char err2[256] = "";

		obj = (void *)1;
		rc = k8s_obj_decode_text(kind, txt, strlen(txt), &obj, err2, sizeof(err2));
		ok = ASSERT_EQ(rc, -SL_ERR_INVALID, want) && ASSERT_NULL(obj, want) &&
		     ASSERT_STREQ(err2, err, want);
	}
	json_object_put(doc);
	return ok;
}

/* --- round trips ------------------------------------------------------------------------ */

TEST(roundtrip_corpus_every_kind)
{
	DIR *d = opendir(CORPUS_DIR);
	struct dirent *e;
	bool seen[K8S_KIND_MAX] = {false};
	int files = 0;

	if (!ASSERT_NOT_NULL(d, "corpus directory (run from the repository root)"))
		return;
	while ((e = readdir(d))) {
		char path[512];
		struct json_object *doc;
		enum k8s_kind kind;

		if (e->d_name[0] == '.' || !strncmp(e->d_name, "invalid-", 8))
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, e->d_name);
		doc = load_file(path);
		if (!ASSERT_NOT_NULL(doc, e->d_name))
			continue;
		kind = k8s_kind_from_json(doc);
		if (ASSERT_NEQ(kind, K8S_KIND_UNKNOWN, e->d_name)) {
			seen[kind] = true;
			check_roundtrip(kind, doc, e->d_name);
		}
		json_object_put(doc);
		files++;
	}
	closedir(d);
	ASSERT_TRUE(files >= 10, "corpus has objects");
	for (int k = K8S_KIND_UNKNOWN + 1; k < K8S_KIND_MAX; k++)
		if (!ASSERT_TRUE(seen[k], "every kind has a corpus object"))
			fprintf(stderr, "  missing kind %s\n", k8s_kind_name(k));
}

/* Spellings that decode to the same typed value must come back as they were. */
TEST(roundtrip_keeps_equivalent_spellings)
{
	static const char *const docs[] = {
		("{\"metadata\":{\"name\":\"a\","
		 "\"creationTimestamp\":\"2024-05-14T11:12:44+02:00\","
		 "\"deletionTimestamp\":null,\"generation\":0,\"labels\":{},\"finalizers\":[]},"
		 "\"spec\":{\"ports\":[{\"port\":80,\"nodePort\":0,\"targetPort\":\"8080\"}],"
		 "\"selector\":null,\"publishNotReadyAddresses\":false,\"clusterIPs\":null,"
		 "\"sessionAffinityConfig\":null},\"status\":{}}"),
		("{\"metadata\":{\"creationTimestamp\":\"1970-01-01T00:00:00Z\"},"
		 "\"spec\":{\"externalIPs\":[],\"ports\":[],\"type\":\"\"}}"),
		"{\"spec\":{\"sessionAffinityConfig\":{\"clientIP\":null}},\"status\":null}",
		"{}",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct json_object *doc = parse(docs[i]);

		if (ASSERT_NOT_NULL(doc, "parse"))
			check_roundtrip(K8S_KIND_SERVICE, doc, docs[i]);
		json_object_put(doc);
	}
}

TEST(roundtrip_lease_microtime_and_offsets)
{
	struct json_object *doc =
		parse("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
		      "\"name\":\"l\"},\"spec\":{\"renewTime\":\"2024-05-14T09:30:10.5+00:00\","
		      "\"acquireTime\":\"2024-05-14T09:30:10.123456789Z\"}}");
	struct k8s_lease *l = NULL, *clone = NULL;
	struct json_object *enc = NULL;
	char err[128];

	if (!ASSERT_NOT_NULL(doc, "parse") ||
	    !ASSERT_OK(k8s_lease_decode(doc, &l, err, sizeof(err)), "decode"))
		goto out;
	ASSERT_EQ(l->spec.renew_time.sec, 1715679010, "renew sec");
	ASSERT_EQ(l->spec.renew_time.nsec, 500000000, "renew nsec");
	ASSERT_EQ(l->spec.acquire_time.nsec, 123456789, "acquire nsec");
	/* MicroTime compares at microseconds, Time at seconds: their wire precision. */
	l->spec.acquire_time.nsec += 1;
	clone = k8s_lease_clone(l);
	if (!ASSERT_NOT_NULL(clone, "clone"))
		goto out;
	ASSERT_TRUE(k8s_lease_equal(l, clone), "sub-microsecond difference ignored");
	clone->spec.acquire_time.nsec += 1000;
	ASSERT_FALSE(k8s_lease_equal(l, clone), "microsecond difference seen");
	clone->spec.acquire_time.nsec -= 1000;
	clone->meta.creation_timestamp.nsec = 5;
	ASSERT_TRUE(k8s_lease_equal(l, clone), "Time ignores fractions");
	clone->meta.creation_timestamp.sec = 1;
	ASSERT_FALSE(k8s_lease_equal(l, clone), "Time seconds differ");
	/* A renewal rewrites the time canonically, with microseconds. */
	l->spec.renew_time.sec += 10;
	enc = k8s_lease_encode(l);
	if (!ASSERT_NOT_NULL(enc, "encode"))
		goto out;
	ASSERT_STREQ(json_object_get_string(sl_json_path(enc, "spec", "renewTime", (char *)NULL)),
		     "2024-05-14T09:30:20.500000Z", "canonical MicroTime");
	ASSERT_STREQ(json_object_get_string(sl_json_path(enc, "spec", "acquireTime", (char *)NULL)),
		     "2024-05-14T09:30:10.123456789Z", "unchanged time kept verbatim");
out:
	json_object_put(enc);
	k8s_lease_free(l);
	k8s_lease_free(clone);
	json_object_put(doc);
}

/* --- typed fields ------------------------------------------------------------------------- */

static const char svc_lb[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"creationTimestamp\":"
	"\"2024-05-14T09:12:44Z\",\"name\":\"ingress\",\"namespace\":\"edge\",\"generation\":3,"
	"\"resourceVersion\":\"1200\",\"uid\":\"0b7f\",\"labels\":{\"app\":\"nginx\"},"
	"\"annotations\":{\"a/b\":\"c\"}},\"spec\":{\"allocateLoadBalancerNodePorts\":true,"
	"\"clusterIP\":\"10.96.200.7\",\"clusterIPs\":[\"10.96.200.7\",\"fd00::c8\"],"
	"\"externalTrafficPolicy\":\"Local\",\"healthCheckNodePort\":31234,"
	"\"internalTrafficPolicy\":\"Cluster\",\"ipFamilies\":[\"IPv4\",\"IPv6\"],"
	"\"ipFamilyPolicy\":\"PreferDualStack\",\"externalIPs\":[\"198.18.0.10\"],"
	"\"ports\":[{\"appProtocol\":\"http\",\"name\":\"http\",\"nodePort\":30080,\"port\":80,"
	"\"protocol\":\"TCP\",\"targetPort\":\"http\",\"x-extra\":1},{\"name\":\"quic\","
	"\"nodePort\":30443,\"port\":443,\"protocol\":\"UDP\",\"targetPort\":8443,\"x-extra\":2}],"
	"\"selector\":{\"app\":\"nginx\"},\"sessionAffinity\":\"ClientIP\","
	"\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":10800}},"
	"\"type\":\"LoadBalancer\"},\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":"
	"\"198.18.0.100\",\"ipMode\":\"VIP\"},{\"hostname\":\"lb.example.test\"}]}}}";

TEST(service_typed_fields)
{
	struct json_object *doc = parse(svc_lb);
	struct k8s_service *s = NULL;
	const struct k8s_service_spec *sp;
	char err[128];

	if (!ASSERT_OK(k8s_service_decode(doc, &s, err, sizeof(err)), "decode"))
		goto out;
	ASSERT_TRUE(s->raw == doc, "raw is the decoded document");
	ASSERT_STREQ(s->meta.name, "ingress", "name");
	ASSERT_STREQ(s->meta.namespace, "edge", "namespace");
	ASSERT_STREQ(s->meta.uid, "0b7f", "uid");
	ASSERT_STREQ(s->meta.resource_version, "1200", "resourceVersion");
	ASSERT_EQ(s->meta.generation, 3, "generation");
	ASSERT_EQ(s->meta.creation_timestamp.sec, 1715677964, "creationTimestamp");
	ASSERT_FALSE(k8s_time_is_set(&s->meta.deletion_timestamp), "no deletionTimestamp");
	ASSERT_STREQ(k8s_strmap_get(&s->meta.labels, "app"), "nginx", "label");
	ASSERT_STREQ(k8s_strmap_get(&s->meta.annotations, "a/b"), "c", "annotation");
	sp = &s->spec;
	ASSERT_STREQ(sp->type, "LoadBalancer", "type");
	ASSERT_STREQ(sp->cluster_ip, "10.96.200.7", "clusterIP");
	if (ASSERT_EQ(sp->cluster_ips.n, 2, "clusterIPs"))
		ASSERT_STREQ(sp->cluster_ips.v[1], "fd00::c8", "clusterIPs[1]");
	if (!ASSERT_EQ(sp->n_ports, 2, "ports"))
		goto out;
	ASSERT_STREQ(sp->ports[0].name, "http", "port name");
	ASSERT_STREQ(sp->ports[0].protocol, "TCP", "protocol");
	ASSERT_EQ(sp->ports[0].port, 80, "port");
	ASSERT_EQ(sp->ports[0].target_port.type, K8S_INTSTR_STR, "named targetPort");
	ASSERT_STREQ(sp->ports[0].target_port.sval, "http", "targetPort name");
	ASSERT_EQ(sp->ports[0].node_port, 30080, "nodePort");
	ASSERT_STREQ(sp->ports[0].app_protocol, "http", "appProtocol");
	ASSERT_EQ(sp->ports[1].target_port.type, K8S_INTSTR_INT, "numeric targetPort");
	ASSERT_EQ(sp->ports[1].target_port.ival, 8443, "targetPort value");
	ASSERT_STREQ(sp->ports[1].protocol, "UDP", "UDP");
	ASSERT_NULL(sp->ports[1].app_protocol, "absent appProtocol");
	ASSERT_STREQ(k8s_strmap_get(&sp->selector, "app"), "nginx", "selector");
	ASSERT_STREQ(sp->session_affinity, "ClientIP", "sessionAffinity");
	ASSERT_EQ(sp->session_affinity_config.client_ip.timeout_seconds, 10800, "timeout");
	ASSERT_EQ(sp->external_ips.n, 1, "externalIPs");
	ASSERT_STREQ(sp->external_traffic_policy, "Local", "eTP");
	ASSERT_STREQ(sp->internal_traffic_policy, "Cluster", "iTP");
	ASSERT_EQ(sp->health_check_node_port, 31234, "healthCheckNodePort");
	ASSERT_EQ(sp->ip_families.n, 2, "ipFamilies");
	ASSERT_EQ(sp->allocate_load_balancer_node_ports, K8S_TRI_TRUE, "allocateLBNodePorts");
	ASSERT_FALSE(sp->publish_not_ready_addresses, "publishNotReadyAddresses");
	ASSERT_NULL(sp->external_name, "externalName");
	if (ASSERT_EQ(s->status.load_balancer.n_ingress, 2, "ingress")) {
		ASSERT_STREQ(s->status.load_balancer.ingress[0].ip, "198.18.0.100", "ingress ip");
		ASSERT_STREQ(s->status.load_balancer.ingress[1].hostname, "lb.example.test",
			     "ingress hostname");
	}
out:
	k8s_service_free(s);
	json_object_put(doc);
}

TEST(service_externalname_and_headless)
{
	struct json_object *doc = parse(
		"{\"kind\":\"Service\",\"metadata\":{\"name\":\"db\"},\"spec\":{\"type\":"
		"\"ExternalName\",\"externalName\":\"db.example.test\",\"clusterIP\":\"None\","
		"\"publishNotReadyAddresses\":true,\"allocateLoadBalancerNodePorts\":false}}");
	struct k8s_service *s = NULL;

	if (!ASSERT_OK(k8s_service_decode(doc, &s, NULL, 0), "decode"))
		goto out;
	ASSERT_STREQ(s->spec.external_name, "db.example.test", "externalName");
	ASSERT_STREQ(s->spec.cluster_ip, "None", "headless");
	ASSERT_TRUE(s->spec.publish_not_ready_addresses, "publishNotReadyAddresses");
	ASSERT_EQ(s->spec.allocate_load_balancer_node_ports, K8S_TRI_FALSE, "tri false");
	ASSERT_EQ(s->spec.n_ports, 0, "no ports");
	ASSERT_NULL(s->spec.ports, "no port array");
out:
	k8s_service_free(s);
	json_object_put(doc);
}

TEST(endpointslice_typed_fields)
{
	struct json_object *doc = load_file(CORPUS_DIR "/endpointslice.json");
	struct k8s_endpointslice *es = NULL;
	const struct k8s_slice_endpoint *ep;
	const struct k8s_owner_ref *owner;
	char err[128];

	if (!ASSERT_NOT_NULL(doc, "load") ||
	    !ASSERT_OK(k8s_endpointslice_decode(doc, &es, err, sizeof(err)), "decode"))
		goto out;
	ASSERT_STREQ(k8s_endpointslice_service_name(es), "web", "service-name label");
	ASSERT_STREQ(es->address_type, "IPv4", "addressType");
	ASSERT_EQ(es->meta.generation, 7, "generation");
	ASSERT_STREQ(es->meta.generate_name, "web-", "generateName");
	owner = k8s_meta_controller(&es->meta);
	if (ASSERT_NOT_NULL(owner, "controller owner")) {
		ASSERT_STREQ(owner->kind, "Service", "owner kind");
		ASSERT_STREQ(owner->name, "web", "owner name");
		ASSERT_STREQ(owner->uid, "9d3c1c55-7a0b-4c43-9a51-2f6a8b1e0c11", "owner uid");
	}
	if (!ASSERT_EQ(es->n_endpoints, 3, "endpoints"))
		goto out;
	ep = &es->endpoints[0];
	if (ASSERT_EQ(ep->addresses.n, 1, "addresses"))
		ASSERT_STREQ(ep->addresses.v[0], "10.244.1.17", "address");
	ASSERT_EQ(ep->conditions.ready, K8S_TRI_TRUE, "ready");
	ASSERT_EQ(ep->conditions.serving, K8S_TRI_TRUE, "serving");
	ASSERT_EQ(ep->conditions.terminating, K8S_TRI_FALSE, "terminating");
	ASSERT_STREQ(ep->node_name, "worker-1", "nodeName");
	ASSERT_STREQ(ep->zone, "zone-a", "zone");
	ASSERT_STREQ(ep->target_ref.kind, "Pod", "targetRef kind");
	ASSERT_STREQ(ep->target_ref.namespace, "shop", "targetRef namespace");
	ASSERT_STREQ(ep->target_ref.name, "web-7d4b9c6f5-abcde", "targetRef name");
	ASSERT_STREQ(ep->target_ref.uid, "c1b2a3d4-0000-4000-8000-000000000001", "targetRef uid");
	ASSERT_NOT_NULL(sl_json_get(ep->raw, "hints"), "hints kept in raw");
	ep = &es->endpoints[1];
	ASSERT_EQ(ep->conditions.ready, K8S_TRI_FALSE, "not ready");
	ASSERT_EQ(ep->conditions.terminating, K8S_TRI_TRUE, "terminating");
	ASSERT_STREQ(ep->hostname, "web-1", "hostname");
	ep = &es->endpoints[2];
	ASSERT_EQ(ep->conditions.ready, K8S_TRI_UNSET, "ready unset");
	ASSERT_NOT_NULL(ep->conditions.raw, "empty conditions object kept");
	ASSERT_NULL(ep->target_ref.raw, "absent targetRef");
	ASSERT_NULL(ep->target_ref.name, "absent targetRef name");
	if (ASSERT_EQ(es->n_ports, 2, "ports")) {
		ASSERT_STREQ(es->ports[1].name, "metrics", "port name");
		ASSERT_EQ(es->ports[1].port, 9090, "port");
		ASSERT_STREQ(es->ports[1].protocol, "TCP", "protocol");
		ASSERT_STREQ(es->ports[1].app_protocol, "http", "appProtocol");
	}
out:
	k8s_endpointslice_free(es);
	json_object_put(doc);
}

TEST(endpoints_typed_fields)
{
	struct json_object *doc = load_file(CORPUS_DIR "/endpoints.json");
	struct k8s_endpoints *ep = NULL;
	const struct k8s_endpoint_subset *ss;

	if (!ASSERT_NOT_NULL(doc, "load") ||
	    !ASSERT_OK(k8s_endpoints_decode(doc, &ep, NULL, 0), "decode") ||
	    !ASSERT_EQ(ep->n_subsets, 1, "subsets"))
		goto out;
	ss = &ep->subsets[0];
	if (ASSERT_EQ(ss->n_addresses, 2, "addresses")) {
		ASSERT_STREQ(ss->addresses[0].ip, "10.244.1.17", "ip");
		ASSERT_STREQ(ss->addresses[0].node_name, "worker-1", "nodeName");
		ASSERT_STREQ(ss->addresses[1].hostname, "web-1", "hostname");
		ASSERT_STREQ(ss->addresses[1].target_ref.resource_version, "48100", "targetRef rv");
	}
	if (ASSERT_EQ(ss->n_not_ready_addresses, 1, "notReadyAddresses"))
		ASSERT_STREQ(ss->not_ready_addresses[0].target_ref.name, "web-7d4b9c6f5-klmno",
			     "notReady targetRef");
	if (ASSERT_EQ(ss->n_ports, 2, "ports")) {
		ASSERT_EQ(ss->ports[0].port, 8080, "port");
		ASSERT_STREQ(ss->ports[1].app_protocol, "http", "appProtocol");
	}
out:
	k8s_endpoints_free(ep);
	json_object_put(doc);
}

TEST(pod_typed_fields)
{
	struct json_object *doc = load_file(CORPUS_DIR "/pod.json");
	struct k8s_pod *p = NULL;
	const struct k8s_container *c;
	const struct k8s_pod_status *st;
	int64_t v;

	if (!ASSERT_NOT_NULL(doc, "load") || !ASSERT_OK(k8s_pod_decode(doc, &p, NULL, 0), "decode"))
		goto out;
	ASSERT_STREQ(p->spec.node_name, "worker-1", "nodeName");
	ASSERT_FALSE(p->spec.host_network, "hostNetwork");
	ASSERT_STREQ(p->spec.restart_policy, "Always", "restartPolicy");
	ASSERT_STREQ(p->spec.scheduler_name, "default-scheduler", "schedulerName");
	ASSERT_EQ(p->spec.termination_grace_period_seconds, 30, "grace");
	ASSERT_STREQ(k8s_strmap_get(&p->spec.node_selector, "kubernetes.io/os"), "linux",
		     "nodeSelector");
	if (ASSERT_EQ(p->spec.n_tolerations, 2, "tolerations")) {
		ASSERT_STREQ(p->spec.tolerations[1].key, "node.kubernetes.io/unreachable", "key");
		ASSERT_STREQ(p->spec.tolerations[1].operator, "Exists", "operator");
		ASSERT_STREQ(p->spec.tolerations[1].effect, "NoExecute", "effect");
		ASSERT_EQ(p->spec.tolerations[1].toleration_seconds, 300, "tolerationSeconds");
	}
	if (!ASSERT_EQ(p->spec.n_containers, 1, "containers"))
		goto out;
	c = &p->spec.containers[0];
	ASSERT_STREQ(c->name, "web", "container name");
	if (ASSERT_EQ(c->command.n, 1, "command"))
		ASSERT_STREQ(c->command.v[0], "/bin/web", "command[0]");
	if (ASSERT_EQ(c->args.n, 2, "args"))
		ASSERT_STREQ(c->args.v[1], "--metrics=:9090", "args[1]");
	if (ASSERT_EQ(c->n_ports, 2, "ports")) {
		ASSERT_STREQ(c->ports[0].name, "http", "port name");
		ASSERT_EQ(c->ports[0].container_port, 8080, "containerPort");
		ASSERT_STREQ(c->ports[0].protocol, "TCP", "protocol");
		ASSERT_EQ(c->ports[0].host_port, 0, "no hostPort");
	}
	if (ASSERT_EQ(c->n_env, 2, "env")) {
		ASSERT_STREQ(c->env[0].value, "info", "env value");
		ASSERT_NULL(c->env[1].value, "valueFrom env has no value");
		ASSERT_NOT_NULL(sl_json_get(c->env[1].raw, "valueFrom"), "valueFrom in raw");
	}
	ASSERT_OK(k8s_quantity_parse_milli(k8s_strmap_get(&c->resources.requests, "cpu"), &v),
		  "cpu request");
	ASSERT_EQ(v, 100, "100m");
	ASSERT_OK(k8s_quantity_parse(k8s_strmap_get(&c->resources.limits, "memory"), &v),
		  "memory limit");
	ASSERT_EQ(v, 268435456, "256Mi");
	st = &p->status;
	ASSERT_STREQ(st->phase, "Running", "phase");
	ASSERT_STREQ(st->pod_ip, "10.244.1.17", "podIP");
	if (ASSERT_EQ(st->n_pod_ips, 2, "podIPs"))
		ASSERT_STREQ(st->pod_ips[1].ip, "fd00:10:244:1::11", "podIPs[1]");
	ASSERT_STREQ(st->host_ip, "192.168.56.11", "hostIP");
	ASSERT_EQ(st->n_conditions, 4, "conditions");
	ASSERT_TRUE(k8s_pod_ready(p), "pod ready");
	ASSERT_NULL(k8s_pod_condition(p, "Nope"), "unknown condition");
	if (ASSERT_EQ(st->n_container_statuses, 1, "containerStatuses")) {
		ASSERT_TRUE(st->container_statuses[0].ready, "container ready");
		ASSERT_EQ(st->container_statuses[0].restart_count, 2, "restartCount");
		ASSERT_EQ(st->container_statuses[0].started, K8S_TRI_TRUE, "started");
	}
out:
	k8s_pod_free(p);
	json_object_put(doc);
}

TEST(pod_hostnetwork_fields)
{
	struct json_object *doc = load_file(CORPUS_DIR "/pod-hostnetwork.json");
	struct k8s_pod *p = NULL;
	int64_t v;

	if (!ASSERT_NOT_NULL(doc, "load") || !ASSERT_OK(k8s_pod_decode(doc, &p, NULL, 0), "decode"))
		goto out;
	ASSERT_TRUE(p->spec.host_network, "hostNetwork");
	ASSERT_STREQ(p->spec.hostname, "agent", "hostname");
	ASSERT_STREQ(p->spec.subdomain, "agents", "subdomain");
	ASSERT_EQ(p->spec.n_init_containers, 1, "initContainers");
	if (ASSERT_EQ(p->spec.n_containers, 1, "containers") &&
	    ASSERT_EQ(p->spec.containers[0].n_ports, 2, "ports")) {
		ASSERT_EQ(p->spec.containers[0].ports[0].host_port, 9962, "hostPort");
		ASSERT_STREQ(p->spec.containers[0].ports[1].host_ip, "169.254.20.10", "hostIP");
		ASSERT_OK(k8s_quantity_parse_milli(
				  k8s_strmap_get(&p->spec.containers[0].resources.requests, "cpu"),
				  &v),
			  "cpu");
		ASSERT_EQ(v, 250, "0.25 cpu");
		ASSERT_OK(
			k8s_quantity_parse(
				k8s_strmap_get(&p->spec.containers[0].resources.requests, "memory"),
				&v),
			"memory");
		ASSERT_EQ(v, 100000000, "1e8 bytes");
	}
	ASSERT_FALSE(k8s_pod_ready(p), "pending pod not ready");
out:
	k8s_pod_free(p);
	json_object_put(doc);
}

TEST(node_typed_fields)
{
	struct json_object *doc = load_file(CORPUS_DIR "/node.json");
	struct json_object *doc2 = load_file(CORPUS_DIR "/node-cordoned.json");
	struct k8s_node *n = NULL, *n2 = NULL;
	int64_t v;

	if (!ASSERT_NOT_NULL(doc, "load") || !ASSERT_NOT_NULL(doc2, "load cordoned") ||
	    !ASSERT_OK(k8s_node_decode(doc, &n, NULL, 0), "decode") ||
	    !ASSERT_OK(k8s_node_decode(doc2, &n2, NULL, 0), "decode cordoned"))
		goto out;
	ASSERT_STREQ(n->spec.pod_cidr, "10.244.1.0/24", "podCIDR");
	if (ASSERT_EQ(n->spec.pod_cidrs.n, 2, "podCIDRs"))
		ASSERT_STREQ(n->spec.pod_cidrs.v[1], "fd00:10:244:1::/64", "podCIDRs[1]");
	ASSERT_FALSE(n->spec.unschedulable, "schedulable");
	if (ASSERT_EQ(n->spec.n_taints, 2, "taints")) {
		ASSERT_STREQ(n->spec.taints[0].value, "edge", "taint value");
		ASSERT_EQ(n->spec.taints[1].time_added.sec, 1715678400, "timeAdded");
	}
	if (ASSERT_EQ(n->status.n_addresses, 2, "addresses")) {
		ASSERT_STREQ(n->status.addresses[0].type, "InternalIP", "address type");
		ASSERT_STREQ(n->status.addresses[0].address, "192.168.56.11", "address");
	}
	ASSERT_EQ(k8s_node_ready(n), K8S_TRI_TRUE, "ready");
	ASSERT_STREQ(k8s_node_condition(n, "MemoryPressure")->status, "False", "memory pressure");
	ASSERT_OK(k8s_quantity_parse_milli(k8s_strmap_get(&n->status.capacity, "cpu"), &v), "cpu");
	ASSERT_EQ(v, 4000, "4 cpus");
	ASSERT_OK(k8s_quantity_parse(k8s_strmap_get(&n->status.allocatable, "memory"), &v), "mem");
	ASSERT_EQ(v, 8233349120LL, "8040380Ki");
	ASSERT_OK(k8s_quantity_parse(k8s_strmap_get(&n->status.allocatable, "pods"), &v), "pods");
	ASSERT_EQ(v, 110, "pods");
	ASSERT_STREQ(n->status.node_info.kubelet_version, "v1.30.0", "kubeletVersion");
	ASSERT_STREQ(n->status.node_info.architecture, "amd64", "architecture");
	ASSERT_TRUE(n2->spec.unschedulable, "cordoned");
	ASSERT_EQ(n2->spec.taints[0].time_added.sec, 1715677200, "offset time");
	ASSERT_EQ(k8s_node_ready(n2), K8S_TRI_UNSET, "Unknown is unset");
out:
	k8s_node_free(n);
	k8s_node_free(n2);
	json_object_put(doc);
	json_object_put(doc2);
}

TEST(netpol_typed_fields)
{
	struct json_object *doc = load_file(CORPUS_DIR "/netpol.json");
	struct k8s_netpol *np = NULL;
	const struct k8s_netpol_rule *r;

	if (!ASSERT_NOT_NULL(doc, "load") ||
	    !ASSERT_OK(k8s_netpol_decode(doc, &np, NULL, 0), "decode"))
		goto out;
	ASSERT_STREQ(json_object_get_string(sl_json_path(np->spec.pod_selector, "matchLabels",
							 "app", (char *)NULL)),
		     "web", "podSelector kept as JSON");
	if (ASSERT_EQ(np->spec.policy_types.n, 2, "policyTypes"))
		ASSERT_STREQ(np->spec.policy_types.v[1], "Egress", "policyTypes[1]");
	if (!ASSERT_EQ(np->spec.n_ingress, 1, "ingress") ||
	    !ASSERT_EQ(np->spec.n_egress, 2, "egress"))
		goto out;
	r = &np->spec.ingress[0];
	if (ASSERT_EQ(r->n_peers, 3, "from")) {
		ASSERT_NOT_NULL(r->peers[0].pod_selector, "peer podSelector");
		ASSERT_NULL(r->peers[0].namespace_selector, "no namespaceSelector");
		ASSERT_NOT_NULL(r->peers[1].namespace_selector, "namespaceSelector");
		ASSERT_EQ(json_object_object_length(r->peers[1].pod_selector), 0, "empty selector");
		ASSERT_NULL(r->peers[1].ip_block.raw, "no ipBlock");
		ASSERT_STREQ(r->peers[2].ip_block.cidr, "198.18.0.0/15", "cidr");
		if (ASSERT_EQ(r->peers[2].ip_block.except.n, 1, "except"))
			ASSERT_STREQ(r->peers[2].ip_block.except.v[0], "198.18.5.0/24", "except");
	}
	if (ASSERT_EQ(r->n_ports, 3, "ports")) {
		ASSERT_EQ(r->ports[0].port.type, K8S_INTSTR_INT, "int port");
		ASSERT_EQ(r->ports[0].port.ival, 8080, "port");
		ASSERT_STREQ(r->ports[0].protocol, "TCP", "protocol");
		ASSERT_EQ(r->ports[1].port.type, K8S_INTSTR_STR, "named port");
		ASSERT_STREQ(r->ports[1].port.sval, "metrics", "port name");
		ASSERT_NULL(r->ports[1].protocol, "default protocol");
		ASSERT_EQ(r->ports[2].end_port, 32767, "endPort");
	}
	r = &np->spec.egress[0];
	if (ASSERT_EQ(r->n_peers, 1, "to"))
		ASSERT_NOT_NULL(r->peers[0].namespace_selector, "egress namespaceSelector");
	ASSERT_EQ(r->n_ports, 2, "egress ports");
	ASSERT_EQ(np->spec.egress[1].n_peers, 0, "allow-all rule");
	ASSERT_NOT_NULL(np->spec.egress[1].raw, "empty rule kept");
out:
	k8s_netpol_free(np);
	json_object_put(doc);
}

TEST(namespace_event_lease_configmap_fields)
{
	struct json_object *d1 = load_file(CORPUS_DIR "/namespace-terminating.json");
	struct json_object *d2 = load_file(CORPUS_DIR "/event.json");
	struct json_object *d3 = load_file(CORPUS_DIR "/lease.json");
	struct json_object *d4 = load_file(CORPUS_DIR "/configmap.json");
	struct k8s_namespace *ns = NULL;
	struct k8s_event *ev = NULL;
	struct k8s_lease *l = NULL;
	struct k8s_configmap *cm = NULL;

	if (!ASSERT_OK(k8s_namespace_decode(d1, &ns, NULL, 0), "namespace") ||
	    !ASSERT_OK(k8s_event_decode(d2, &ev, NULL, 0), "event") ||
	    !ASSERT_OK(k8s_lease_decode(d3, &l, NULL, 0), "lease") ||
	    !ASSERT_OK(k8s_configmap_decode(d4, &cm, NULL, 0), "configmap"))
		goto out;
	ASSERT_STREQ(ns->status.phase, "Terminating", "phase");
	ASSERT_TRUE(k8s_time_is_set(&ns->meta.deletion_timestamp), "deletionTimestamp");
	ASSERT_EQ(ns->spec.finalizers.n, 1, "finalizers");

	ASSERT_STREQ(ev->involved_object.kind, "Pod", "involvedObject kind");
	ASSERT_STREQ(ev->involved_object.field_path, "spec.containers{web}", "fieldPath");
	ASSERT_STREQ(ev->reason, "Unhealthy", "reason");
	ASSERT_STREQ(ev->type, "Warning", "type");
	ASSERT_EQ(ev->count, 3, "count");
	ASSERT_EQ(ev->last_timestamp.sec - ev->first_timestamp.sec, 72, "timestamps");
	ASSERT_FALSE(k8s_time_is_set(&ev->event_time), "null eventTime");
	ASSERT_STREQ(ev->source.component, "kubelet", "source component");
	ASSERT_STREQ(ev->source.host, "worker-1", "source host");
	ASSERT_TRUE(strncmp(ev->message, "Readiness probe failed", 22) == 0, "message");

	ASSERT_STREQ(l->spec.holder_identity,
		     "control-plane-1_2f0c8a8e-7e2b-4b8d-9d7f-4c1e1a2b3c4d", "holderIdentity");
	ASSERT_EQ(l->spec.lease_duration_seconds, 15, "leaseDurationSeconds");
	ASSERT_EQ(l->spec.lease_transitions, 4, "leaseTransitions");
	ASSERT_EQ(l->spec.renew_time.sec, 1715679012, "renewTime");
	ASSERT_EQ(l->spec.renew_time.nsec, 481516000, "renewTime micros");
	ASSERT_TRUE(k8s_time_is_set(&l->spec.acquire_time), "acquireTime");

	ASSERT_EQ(cm->data.n, 2, "data");
	ASSERT_STREQ(k8s_strmap_get(&cm->data, "empty"), "", "empty value");
	ASSERT_TRUE(strstr(k8s_strmap_get(&cm->data, "Corefile"), "forward .") != NULL, "Corefile");
	ASSERT_STREQ(sl_json_get_str(cm->binary_data, "logo.png"), "iVBORw0KGgo=", "binaryData");
	ASSERT_EQ(cm->immutable, K8S_TRI_UNSET, "immutable unset");
out:
	k8s_namespace_free(ns);
	k8s_event_free(ev);
	k8s_lease_free(l);
	k8s_configmap_free(cm);
	json_object_put(d1);
	json_object_put(d2);
	json_object_put(d3);
	json_object_put(d4);
}

/* --- edits -------------------------------------------------------------------------------- */

TEST(edit_typed_fields_then_encode)
{
	struct json_object *doc = parse(svc_lb), *enc = NULL, *ports;
	struct k8s_service *s = NULL, *again = NULL;
	struct k8s_service_port tmp;

	if (!ASSERT_OK(k8s_service_decode(doc, &s, NULL, 0), "decode"))
		goto out;
	/* Swap the two ports: each keeps its own unknown members. */
	tmp = s->spec.ports[0];
	s->spec.ports[0] = s->spec.ports[1];
	s->spec.ports[1] = tmp;
	s->spec.ports[0].node_port = 0; /* release the NodePort */
	s->spec.ports[1].target_port.type = K8S_INTSTR_INT;
	free(s->spec.ports[1].target_port.sval);
	s->spec.ports[1].target_port.sval = NULL;
	s->spec.ports[1].target_port.ival = 8080;
	free(s->spec.type);
	s->spec.type = strdup("NodePort");
	s->spec.allocate_load_balancer_node_ports = K8S_TRI_UNSET;
	ASSERT_OK(k8s_strmap_set(&s->meta.labels, "tier", "edge"), "add label");
	ASSERT_TRUE(k8s_strmap_del(&s->meta.annotations, "a/b"), "drop annotation");
	k8s_strlist_fini(&s->spec.external_ips);
	s->status.load_balancer.n_ingress = 1; /* shrink: free the tail first */
	free(s->status.load_balancer.ingress[1].hostname);
	s->status.load_balancer.ingress[1].hostname = NULL;
	json_object_put(s->status.load_balancer.ingress[1].raw);
	s->status.load_balancer.ingress[1].raw = NULL;

	enc = k8s_service_encode(s);
	if (!ASSERT_NOT_NULL(enc, "encode"))
		goto out;
	ports = sl_json_path(enc, "spec", "ports", (char *)NULL);
	if (!ASSERT_EQ(json_object_array_length(ports), 2, "ports"))
		goto out;
	ASSERT_STREQ(sl_json_get_str(json_object_array_get_idx(ports, 0), "name"), "quic", "moved");
	ASSERT_EQ(json_object_get_int(sl_json_get(json_object_array_get_idx(ports, 0), "x-extra")),
		  2, "unknown member moved with its port");
	ASSERT_NULL(sl_json_get(json_object_array_get_idx(ports, 0), "nodePort"),
		    "released nodePort removed");
	ASSERT_EQ(json_object_get_int(sl_json_get(json_object_array_get_idx(ports, 1), "x-extra")),
		  1, "unknown member of the other port");
	ASSERT_EQ(
		json_object_get_int(sl_json_get(json_object_array_get_idx(ports, 1), "targetPort")),
		8080, "targetPort now an integer");
	ASSERT_STREQ(sl_json_get_str(sl_json_get(enc, "spec"), "type"), "NodePort", "type");
	ASSERT_NULL(sl_json_path(enc, "spec", "allocateLoadBalancerNodePorts", (char *)NULL),
		    "tri unset");
	ASSERT_NULL(sl_json_path(enc, "spec", "externalIPs", (char *)NULL), "cleared list dropped");
	ASSERT_STREQ(json_object_get_string(
			     sl_json_path(enc, "metadata", "labels", "tier", (char *)NULL)),
		     "edge", "new label");
	ASSERT_NULL(sl_json_path(enc, "metadata", "annotations", (char *)NULL),
		    "emptied map dropped");
	ASSERT_EQ(json_object_array_length(
			  sl_json_path(enc, "status", "loadBalancer", "ingress", (char *)NULL)),
		  1, "ingress shrunk");
	if (!ASSERT_OK(k8s_service_decode(enc, &again, NULL, 0), "decode edited"))
		goto out;
	ASSERT_TRUE(k8s_service_equal(s, again), "decode(encode(x)) == x after edits");
	again->spec.ports[1].target_port.ival = 8081;
	ASSERT_FALSE(k8s_service_equal(s, again), "typed difference detected");
	again->spec.ports[1].target_port.ival = 8080;
	ASSERT_TRUE(k8s_service_equal(s, again), "equal again");
	json_object_object_add(again->spec.ports[0].raw, "x-extra", json_object_new_int(3));
	ASSERT_FALSE(k8s_service_equal(s, again), "unknown-member difference detected");
out:
	/* Restore the count so free releases the shrunk element too. */
	if (s)
		s->status.load_balancer.n_ingress = 2;
	k8s_service_free(s);
	k8s_service_free(again);
	json_object_put(enc);
	json_object_put(doc);
}

/* A list or map the caller emptied is dropped; one that was [] or null stays. */
TEST(emptied_collections_are_dropped)
{
	struct json_object *doc = parse(
		"{\"metadata\":{\"finalizers\":[\"a\"],\"ownerReferences\":[{\"name\":\"o\"}],"
		"\"labels\":null},\"spec\":{\"ports\":[],\"taints\":[{\"key\":\"k\"}]}}");
	struct k8s_node *n = NULL;
	struct json_object *enc = NULL;

	if (!ASSERT_OK(k8s_node_decode(doc, &n, NULL, 0), "decode"))
		goto out;
	k8s_strlist_fini(&n->meta.finalizers);
	free(n->meta.owner_references[0].name);
	json_object_put(n->meta.owner_references[0].raw);
	free(n->meta.owner_references);
	n->meta.owner_references = NULL;
	n->meta.n_owner_references = 0;
	enc = k8s_node_encode(n);
	if (!ASSERT_NOT_NULL(enc, "encode"))
		goto out;
	ASSERT_FALSE(json_object_object_get_ex(sl_json_get(enc, "metadata"), "finalizers", NULL),
		     "emptied strlist dropped");
	ASSERT_FALSE(
		json_object_object_get_ex(sl_json_get(enc, "metadata"), "ownerReferences", NULL),
		"emptied list dropped");
	ASSERT_TRUE(json_object_object_get_ex(sl_json_get(enc, "metadata"), "labels", NULL),
		    "null map kept");
	ASSERT_EQ(json_object_array_length(sl_json_path(enc, "spec", "ports", (char *)NULL)), 0,
		  "unknown [] kept");
	ASSERT_EQ(json_object_array_length(sl_json_path(enc, "spec", "taints", (char *)NULL)), 1,
		  "taints kept");
out:
	json_object_put(enc);
	k8s_node_free(n);
	json_object_put(doc);
}

TEST(build_from_scratch)
{
	struct k8s_endpointslice *es = k8s_endpointslice_new();
	struct json_object *
		enc = NULL,
	       *want = parse("{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
			     "\"metadata\":{\"name\":\"web-abc\",\"namespace\":\"shop\",\"labels\":"
			     "{\"kubernetes.io/service-name\":\"web\"},\"creationTimestamp\":"
			     "\"2024-05-14T09:12:44Z\"},\"addressType\":\"IPv4\",\"endpoints\":[{"
			     "\"addresses\":"
			     "[\"10.244.1.17\"],\"conditions\":{\"ready\":true,\"serving\":true,"
			     "\"terminating\":false},\"nodeName\":\"worker-1\"}],\"ports\":[{"
			     "\"name\":\"http\","
			     "\"port\":8080,\"protocol\":\"TCP\"}]}");
	struct k8s_endpointslice *again = NULL;

	if (!ASSERT_NOT_NULL(es, "new") || !ASSERT_NOT_NULL(want, "parse"))
		goto out;
	es->meta.name = strdup("web-abc");
	es->meta.namespace = strdup("shop");
	es->meta.creation_timestamp.sec = 1715677964;
	ASSERT_OK(k8s_strmap_set(&es->meta.labels, K8S_LABEL_SERVICE_NAME, "web"), "label");
	es->address_type = strdup("IPv4");
	es->endpoints = calloc(1, sizeof(*es->endpoints));
	es->ports = calloc(1, sizeof(*es->ports));
	if (!ASSERT_NOT_NULL(es->endpoints, "alloc") || !ASSERT_NOT_NULL(es->ports, "alloc"))
		goto out;
	es->n_endpoints = 1;
	es->n_ports = 1;
	ASSERT_OK(k8s_strlist_push(&es->endpoints[0].addresses, "10.244.1.17"), "push");
	es->endpoints[0].conditions.ready = K8S_TRI_TRUE;
	es->endpoints[0].conditions.serving = K8S_TRI_TRUE;
	es->endpoints[0].conditions.terminating = K8S_TRI_FALSE;
	es->endpoints[0].node_name = strdup("worker-1");
	es->ports[0].name = strdup("http");
	es->ports[0].port = 8080;
	es->ports[0].protocol = strdup("TCP");
	enc = k8s_endpointslice_encode(es);
	if (!ASSERT_NOT_NULL(enc, "encode"))
		goto out;
	if (!ASSERT_TRUE(sl_json_equal(enc, want), "encoded as kubectl would show it"))
		fprintf(stderr, "  got %s\n", sl_json_str(enc, NULL));
	if (ASSERT_OK(k8s_endpointslice_decode(enc, &again, NULL, 0), "decode"))
		ASSERT_TRUE(k8s_endpointslice_equal(es, again), "decode(encode(x)) == x");
	ASSERT_STREQ(k8s_endpointslice_service_name(again), "web", "accessor");
out:
	k8s_endpointslice_free(es);
	k8s_endpointslice_free(again);
	json_object_put(enc);
	json_object_put(want);
}

/* --- errors ------------------------------------------------------------------------------- */

TEST(decode_errors_name_the_field)
{
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"port\":80},{\"port\":\"80\"}]}}",
		      "spec.ports[1].port: expected integer");
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":{\"ports\":{\"port\":80}}}",
		      "spec.ports: expected array");
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[null]}}",
		      "spec.ports[0]: expected object");
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"port\":80.5}]}}",
		      "spec.ports[0].port: expected integer");
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"port\":4294967376}]}}",
		      "spec.ports[0].port: integer out of range");
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":{\"ports\":[{\"targetPort\":true}]}}",
		      "spec.ports[0].targetPort: expected integer or string");
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":{\"selector\":{\"app\":1}}}",
		      "spec.selector.app: expected string");
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":{\"clusterIPs\":[\"a\",2]}}",
		      "spec.clusterIPs[1]: expected string");
	check_invalid(K8S_KIND_SERVICE, "{\"spec\":\"x\"}", "spec: expected object");
	check_invalid(K8S_KIND_SERVICE, "{\"metadata\":{\"name\":\"a\\u0000b\"}}",
		      "metadata.name: string contains a NUL character");
	check_invalid(K8S_KIND_SERVICE, "{\"metadata\":{\"generation\":18446744073709551615}}",
		      "metadata.generation: integer out of range");
	check_invalid(K8S_KIND_SERVICE, "{\"metadata\":{\"creationTimestamp\":\"yesterday\"}}",
		      "metadata.creationTimestamp: invalid RFC 3339 time");
	check_invalid(K8S_KIND_SERVICE, "{\"metadata\":{\"ownerReferences\":[{\"controller\":1}]}}",
		      "metadata.ownerReferences[0].controller: expected boolean");
	check_invalid(K8S_KIND_SERVICE, "{\"kind\":\"Pod\"}",
		      "kind: expected \"Service\", got \"Pod\"");
	check_invalid(K8S_KIND_ENDPOINTSLICE, "{\"apiVersion\":\"discovery.k8s.io/v1beta1\"}",
		      "apiVersion: expected \"discovery.k8s.io/v1\"");
	check_invalid(K8S_KIND_POD, "[]", "expected a JSON object");
	check_invalid(K8S_KIND_ENDPOINTSLICE,
		      "{\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":"
		      "\"true\"}}]}",
		      "endpoints[0].conditions.ready: expected boolean");
	check_invalid(K8S_KIND_POD,
		      "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":"
		      "\"http\"}]}]}}",
		      "spec.containers[0].ports[0].containerPort: expected integer");
	check_invalid(K8S_KIND_NETWORKPOLICY, "{\"spec\":{\"podSelector\":[]}}",
		      "spec.podSelector: expected object");
	check_invalid(K8S_KIND_NETWORKPOLICY,
		      "{\"spec\":{\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":10}}]}]}}",
		      "spec.ingress[0].from[0].ipBlock.cidr: expected string");
	check_invalid(K8S_KIND_EVENT, "{\"count\":3000000000}", "count: integer out of range");
	check_invalid(K8S_KIND_LEASE, "{\"spec\":{\"renewTime\":\"2024-05-14 09:30:12Z\"}}",
		      "spec.renewTime: invalid RFC 3339 time");
	check_invalid(K8S_KIND_CONFIGMAP, "{\"data\":{\"k\":null}}", "data.k: expected string");
	check_invalid(K8S_KIND_CONFIGMAP, "{\"binaryData\":\"x\"}", "binaryData: expected object");
	check_invalid(K8S_KIND_NODE, "{\"status\":{\"capacity\":{\"cpu\":4}}}",
		      "status.capacity.cpu: expected string");
	check_invalid(K8S_KIND_NAMESPACE, "{\"status\":{\"phase\":[]}}",
		      "status.phase: expected string");
}

TEST(decode_bad_arguments)
{
	void *obj = (void *)1;
	char err[64];
	struct json_object *doc = parse("{}");

	ASSERT_EQ(k8s_obj_decode(K8S_KIND_UNKNOWN, doc, &obj, err, sizeof(err)), -EINVAL, "kind 0");
	ASSERT_NULL(obj, "out cleared");
	ASSERT_EQ(k8s_obj_decode(K8S_KIND_MAX, doc, &obj, err, sizeof(err)), -EINVAL, "kind max");
	ASSERT_EQ(k8s_obj_decode(K8S_KIND_POD, NULL, &obj, err, sizeof(err)), -SL_ERR_INVALID,
		  "NULL document");
	ASSERT_NULL(k8s_obj_encode(K8S_KIND_POD, NULL), "encode NULL");
	ASSERT_EQ(errno, EINVAL, "errno");
	ASSERT_NULL(k8s_obj_new(K8S_KIND_UNKNOWN), "new unknown");
	ASSERT_FALSE(k8s_obj_equal(K8S_KIND_POD, NULL, doc), "equal with NULL");
	json_object_put(doc);
}

TEST(free_accepts_null)
{
	k8s_namespace_free(NULL);
	k8s_pod_free(NULL);
	k8s_service_free(NULL);
	k8s_endpoints_free(NULL);
	k8s_endpointslice_free(NULL);
	k8s_node_free(NULL);
	k8s_netpol_free(NULL);
	k8s_event_free(NULL);
	k8s_lease_free(NULL);
	k8s_configmap_free(NULL);
	k8s_obj_free(K8S_KIND_UNKNOWN, NULL);
	k8s_strlist_fini(NULL);
	k8s_strmap_fini(NULL);
	ASSERT_NULL(k8s_endpointslice_service_name(NULL), "accessor on NULL");
	ASSERT_NULL(k8s_meta_controller(NULL), "controller of NULL");
}

/* --- kinds -------------------------------------------------------------------------------- */

TEST(kind_from_json)
{
	static const struct {
		const char *txt;
		enum k8s_kind kind;
	} cases[] = {
		{"{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}", K8S_KIND_POD},
		{"{\"apiVersion\":\"v1\",\"kind\":\"Service\"}", K8S_KIND_SERVICE},
		{"{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\"}", K8S_KIND_ENDPOINTS},
		{"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\"}", K8S_KIND_NAMESPACE},
		{"{\"apiVersion\":\"v1\",\"kind\":\"Node\"}", K8S_KIND_NODE},
		{"{\"apiVersion\":\"v1\",\"kind\":\"Event\"}", K8S_KIND_EVENT},
		{"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\"}", K8S_KIND_CONFIGMAP},
		{"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\"}",
		 K8S_KIND_ENDPOINTSLICE},
		{"{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\"}",
		 K8S_KIND_NETWORKPOLICY},
		{"{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\"}", K8S_KIND_LEASE},
		{"{\"apiVersion\":\"discovery.k8s.io/v1beta1\",\"kind\":\"EndpointSlice\"}",
		 K8S_KIND_UNKNOWN},
		{"{\"apiVersion\":\"events.k8s.io/v1\",\"kind\":\"Event\"}", K8S_KIND_UNKNOWN},
		{"{\"apiVersion\":\"v1\",\"kind\":\"Secret\"}", K8S_KIND_UNKNOWN},
		{"{\"apiVersion\":\"v1\",\"kind\":\"pod\"}", K8S_KIND_UNKNOWN},
		{"{\"kind\":\"Pod\"}", K8S_KIND_UNKNOWN},
		{"{\"apiVersion\":1,\"kind\":\"Pod\"}", K8S_KIND_UNKNOWN},
		{"[]", K8S_KIND_UNKNOWN},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *o = parse(cases[i].txt);

		ASSERT_EQ(k8s_kind_from_json(o), cases[i].kind, cases[i].txt);
		json_object_put(o);
	}
	ASSERT_EQ(k8s_kind_from_json(NULL), K8S_KIND_UNKNOWN, "NULL");
	ASSERT_STREQ(k8s_kind_name(K8S_KIND_NETWORKPOLICY), "NetworkPolicy", "name");
	ASSERT_STREQ(k8s_kind_api_version(K8S_KIND_LEASE), "coordination.k8s.io/v1", "version");
	ASSERT_NULL(k8s_kind_name(K8S_KIND_UNKNOWN), "unknown name");
	ASSERT_NULL(k8s_kind_api_version(K8S_KIND_MAX), "out of range");
}

TEST(new_object_has_typemeta)
{
	for (int k = K8S_KIND_UNKNOWN + 1; k < K8S_KIND_MAX; k++) {
		void *o = k8s_obj_new(k);
		struct json_object *enc = o ? k8s_obj_encode(k, o) : NULL;

		if (ASSERT_NOT_NULL(enc, k8s_kind_name(k))) {
			ASSERT_EQ(k8s_kind_from_json(enc), k, k8s_kind_name(k));
			ASSERT_EQ(json_object_object_length(enc), 2, "only apiVersion and kind");
			ASSERT_NULL(k8s_obj_meta(k, o)->name, "empty meta");
		}
		json_object_put(enc);
		k8s_obj_free(k, o);
	}
}

/* --- quantities --------------------------------------------------------------------------- */

TEST(quantity_cpu_millicores)
{
	static const struct {
		const char *s;
		int64_t want;
	} ok[] = {
		{"100m", 100},	     {"2", 2000},     {"0.5", 500},	{"1.5", 1500},
		{"0.1", 100},	     {".25", 250},    {"3.", 3000},	{"0.5m", 1},
		{"100u", 1},	     {"1n", 1},	      {"0", 0},		{"0.000m", 0},
		{"1e3", 1000000},    {"1E-3", 1},     {"+4", 4000},	{"-1", -1000},
		{"250000000n", 250}, {"1k", 1000000}, {"1Ki", 1024000},
	};
	static const char *const bad[] = {"",	  "m",	  " 1",	 "1 ",	 "1.2.3", "abc",
					  "1K",	  "1e",	  "1mi", ".",	 "+",	  "-",
					  "1e3m", "0x10", "1,5", "1Mib", "e3"};
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -42;
		if (ASSERT_OK(k8s_quantity_parse_milli(ok[i].s, &v), ok[i].s))
			ASSERT_EQ(v, ok[i].want, ok[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(k8s_quantity_parse_milli(bad[i], &v), -EINVAL, bad[i]);
	ASSERT_EQ(k8s_quantity_parse_milli(NULL, &v), -EINVAL, "NULL");
	ASSERT_EQ(k8s_quantity_parse_milli("9223372036854775807", &v), -ERANGE, "milli overflow");
}

TEST(quantity_memory_bytes)
{
	static const struct {
		const char *s;
		int64_t want;
	} ok[] = {
		{"128Mi", 134217728},
		{"1G", 1000000000},
		{"1e3", 1000},
		{"1Ki", 1024},
		{"1.5Gi", 1610612736},
		{"8142780Ki", 8338206720LL},
		{"1E", 1000000000000000000LL},
		{"7Ei", 8070450532247928832LL},
		{"1.5", 2},
		{"0.5Ki", 512},
		{"9223372036854775807", INT64_MAX},
		{"12345678901234567890123e-10", 1234567890124LL},
		{"0.00000000000000000000000000000000000000001", 1},
		{"1e-50", 1},
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -42;
		if (ASSERT_OK(k8s_quantity_parse(ok[i].s, &v), ok[i].s))
			ASSERT_EQ(v, ok[i].want, ok[i].s);
	}
	ASSERT_EQ(k8s_quantity_parse("9223372036854775808", &v), -ERANGE, "int64 + 1");
	ASSERT_EQ(k8s_quantity_parse("8Ei", &v), -ERANGE, "8Ei");
	ASSERT_EQ(k8s_quantity_parse("1e19", &v), -ERANGE, "1e19");
	ASSERT_EQ(k8s_quantity_parse("1e99999999", &v), -ERANGE, "huge exponent");
	ASSERT_EQ(k8s_quantity_parse("128MiB", &v), -EINVAL, "MiB");
	ASSERT_EQ(k8s_quantity_parse("128 Mi", &v), -EINVAL, "space");
}

/* --- times -------------------------------------------------------------------------------- */

TEST(time_parse_and_format)
{
	struct k8s_time t;
	char buf[K8S_TIME_BUFSZ];

	if (ASSERT_OK(k8s_time_parse("2024-05-14T09:12:44Z", &t), "parse Z")) {
		ASSERT_EQ(t.sec, 1715677964, "sec");
		ASSERT_EQ(t.nsec, 0, "nsec");
	}
	ASSERT_OK(k8s_time_parse("2024-05-14T11:12:44+02:00", &t), "offset");
	ASSERT_EQ(t.sec, 1715677964, "offset applied");
	ASSERT_OK(k8s_time_parse("2024-05-14T06:42:44-02:30", &t), "negative offset");
	ASSERT_EQ(t.sec, 1715677964, "negative offset applied");
	ASSERT_OK(k8s_time_parse("2024-02-29T00:00:00.5Z", &t), "leap day, fraction");
	ASSERT_EQ(t.sec, 1709164800, "leap day");
	ASSERT_EQ(t.nsec, 500000000, "half second");
	ASSERT_OK(k8s_time_parse("2024-02-29T00:00:00.1234567891Z", &t), "10 fraction digits");
	ASSERT_EQ(t.nsec, 123456789, "truncated to ns");
	ASSERT_OK(k8s_time_parse("1969-12-31T23:59:59Z", &t), "before epoch");
	ASSERT_EQ(t.sec, -1, "-1");
	ASSERT_OK(k8s_time_parse("0000-01-01T00:00:00Z", &t), "year 0");
	ASSERT_EQ(t.sec, -62167219200LL, "year 0 sec");

	static const char *const bad[] = {
		"",
		"2024-05-14",
		"2024-05-14T09:12:44",
		"2024-05-14t09:12:44Z",
		"2024-05-14T09:12:44z",
		"2024-05-14 09:12:44Z",
		"2024-02-30T00:00:00Z",
		"2023-02-29T00:00:00Z",
		"2024-13-01T00:00:00Z",
		"2024-00-01T00:00:00Z",
		"2024-05-14T24:00:00Z",
		"2024-05-14T09:60:00Z",
		"2024-05-14T09:12:60Z",
		"2024-05-14T09:12:44.Z",
		"2024-05-14T09:12:44+0200",
		"2024-05-14T09:12:44+24:00",
		"2024-05-14T09:12:44Zjunk",
		"+2024-05-14T09:12:44Z",
		"2024-5-14T09:12:44Z",
		"yesterday",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(k8s_time_parse(bad[i], &t), -EINVAL, bad[i]);
	ASSERT_EQ(k8s_time_parse(NULL, &t), -EINVAL, "NULL");

	t.sec = 1715679012;
	t.nsec = 481516999;
	ASSERT_EQ(k8s_time_format(&t, false, buf, sizeof(buf)), 20, "format length");
	ASSERT_STREQ(buf, "2024-05-14T09:30:12Z", "seconds");
	ASSERT_EQ(k8s_time_format(&t, true, buf, sizeof(buf)), 27, "micro length");
	ASSERT_STREQ(buf, "2024-05-14T09:30:12.481516Z", "micro");
	t.sec = -1;
	t.nsec = 0;
	ASSERT_TRUE(k8s_time_format(&t, false, buf, sizeof(buf)) > 0, "pre-epoch");
	ASSERT_STREQ(buf, "1969-12-31T23:59:59Z", "pre-epoch text");
	t.sec = 253402300800LL; /* 10000-01-01 */
	ASSERT_EQ(k8s_time_format(&t, false, buf, sizeof(buf)), -ERANGE, "year 10000");
	t.sec = 0;
	t.nsec = 1000000000;
	ASSERT_EQ(k8s_time_format(&t, false, buf, sizeof(buf)), -ERANGE, "bad nsec");
	t.nsec = 0;
	ASSERT_EQ(k8s_time_format(&t, false, buf, 10), -ENOSPC, "short buffer");
}

/* Every day of 400 years survives format -> parse (covers the civil-date arithmetic). */
TEST(time_roundtrip_every_day)
{
	struct k8s_time t = {0}, back;
	char buf[K8S_TIME_BUFSZ];
	int bad = 0;

	for (int64_t day = -146097; day < 146097 && bad < 3; day++) {
		t.sec = day * 86400 + 3723;
		t.nsec = 250000;
		if (k8s_time_format(&t, true, buf, sizeof(buf)) < 0 || k8s_time_parse(buf, &back) ||
		    back.sec != t.sec || back.nsec != t.nsec) {
			fprintf(stderr, "  day %lld: %s\n", (long long)day, buf);
			bad++;
		}
	}
	ASSERT_EQ(bad, 0, "format/parse round trip");
}

/* --- containers --------------------------------------------------------------------------- */

TEST(strmap_and_strlist)
{
	struct k8s_strmap m = {0};
	struct k8s_strlist l = {0};

	ASSERT_OK(k8s_strmap_set(&m, "a", "1"), "set a");
	ASSERT_OK(k8s_strmap_set(&m, "b", "2"), "set b");
	ASSERT_OK(k8s_strmap_set(&m, "a", "3"), "replace a");
	ASSERT_EQ(m.n, 2, "two keys");
	ASSERT_STREQ(k8s_strmap_get(&m, "a"), "3", "replaced");
	ASSERT_NULL(k8s_strmap_get(&m, "c"), "missing");
	ASSERT_TRUE(k8s_strmap_del(&m, "a"), "del");
	ASSERT_FALSE(k8s_strmap_del(&m, "a"), "del again");
	ASSERT_STREQ(k8s_strmap_get(&m, "b"), "2", "b survives");
	ASSERT_EQ(m.n, 1, "one key");
	k8s_strmap_fini(&m);
	ASSERT_EQ(m.n, 0, "fini empties");
	ASSERT_OK(k8s_strlist_push(&l, "x"), "push");
	ASSERT_OK(k8s_strlist_push(&l, "y"), "push");
	ASSERT_EQ(l.n, 2, "two");
	ASSERT_STREQ(l.v[1], "y", "order");
	k8s_strlist_fini(&l);
	ASSERT_NULL(l.v, "fini empties");
}
