// SPDX-License-Identifier: Apache-2.0
/* control/ctl_build.c and ctl_cidrset.c: the pure parts of the controllers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl.h"
#include "harness.h"
#include "sluice/err.h"
#include "sluice/json.h"

static struct k8s_service *svc_from(const char *json)
{
	struct json_object *j = sl_json_parse(json, strlen(json), NULL, 0);
	struct k8s_service *s = NULL;
	char err[256];

	if (j && k8s_service_decode(j, &s, err, sizeof(err)))
		fprintf(stderr, "  service decode: %s\n", err);
	json_object_put(j);
	return s;
}

/* A pod: name, ip ("" none), ready, labels app=<app>, optional extra JSON
 * members for spec (after containers) and metadata. */
static struct k8s_pod *pod_mk(const char *name, const char *ip, bool ready, const char *app,
			      const char *cports, const char *spec_extra, const char *meta_extra)
{
	char buf[4096];
	struct json_object *j;
	struct k8s_pod *p = NULL;
	char err[256];

	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"shop\",\"uid\":\"uid-%s\",\"labels\":{\"app\":\"%s\"}%s},"
		 "\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"c\",\"image\":\"x\","
		 "\"ports\":[%s]}]%s},\"status\":{\"phase\":\"Running\"%s%s%s,\"conditions\":[{"
		 "\"type\":\"Ready\",\"status\":\"%s\"}]}}",
		 name, name, app, meta_extra ? meta_extra : "", cports ? cports : "",
		 spec_extra ? spec_extra : "", *ip ? ",\"podIP\":\"" : "", ip, *ip ? "\"" : "",
		 ready ? "True" : "False");
	j = sl_json_parse(buf, strlen(buf), err, sizeof(err));
	if (!j) {
		fprintf(stderr, "  pod json: %s\n", err);
		return NULL;
	}
	if (k8s_pod_decode(j, &p, err, sizeof(err)))
		fprintf(stderr, "  pod decode: %s\n", err);
	json_object_put(j);
	return p;
}

#define WEB_SVC                                                                               \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","         \
	"\"namespace\":\"shop\",\"uid\":\"svc-uid\",\"labels\":{\"tier\":\"fe\"}},\"spec\":{" \
	"\"clusterIP\":\"198.18.128.5\",\"selector\":{\"app\":\"web\"},\"ports\":[{\"name\":" \
	"\"http\",\"port\":80,\"targetPort\":\"http\"}]}}"

TEST(ctl_target_port_resolution)
{
	struct k8s_service *svc = svc_from(
		"{\"metadata\":{\"name\":\"s\"},\"spec\":{\"ports\":[{\"name\":\"a\",\"port\":80,"
		"\"targetPort\":\"http\"},{\"name\":\"b\",\"port\":53,\"protocol\":\"UDP\","
		"\"targetPort\":\"dns\"},{\"name\":\"c\",\"port\":90,\"targetPort\":9090},{"
		"\"name\":"
		"\"d\",\"port\":91}]}}");
	struct k8s_pod *pod =
		pod_mk("p", "198.18.64.2", true, "web",
		       "{\"name\":\"http\",\"containerPort\":8080},{\"name\":\"dns\","
		       "\"containerPort\":5353,\"protocol\":\"TCP\"},{\"name\":\"dns\","
		       "\"containerPort\":5300,\"protocol\":\"UDP\"}",
		       NULL, NULL);

	if (!ASSERT_NOT_NULL(svc, "svc") || !ASSERT_NOT_NULL(pod, "pod"))
		goto out;
	ASSERT_EQ(ctl_target_port(&svc->spec.ports[0], pod), 8080, "named port");
	ASSERT_EQ(ctl_target_port(&svc->spec.ports[1], pod), 5300, "name and protocol match");
	ASSERT_EQ(ctl_target_port(&svc->spec.ports[2], pod), 9090, "integer targetPort");
	ASSERT_EQ(ctl_target_port(&svc->spec.ports[3], pod), 91, "no targetPort: the port");
	k8s_pod_free(pod);
	pod = pod_mk("q", "198.18.64.3", true, "web", "{\"name\":\"web\",\"containerPort\":80}",
		     NULL, NULL);
	ASSERT_EQ(ctl_target_port(&svc->spec.ports[0], pod), -ENOENT, "unknown name");
out:
	k8s_service_free(svc);
	k8s_pod_free(pod);
}

static struct json_object *ep_at(struct json_object *slice, size_t i)
{
	return json_object_array_get_idx(sl_json_get(slice, "endpoints"), i);
}

static bool cond(struct json_object *ep, const char *which)
{
	return json_object_get_boolean(sl_json_get(sl_json_get(ep, "conditions"), which));
}

TEST(ctl_slices_conditions_and_fields)
{
	struct k8s_service *svc = svc_from(WEB_SVC);
	const char *hp = "{\"name\":\"http\",\"containerPort\":8080}";
	struct k8s_pod *pods[6];
	struct ctl_slice_plan plan;
	struct json_object *s, *meta;

	pods[0] = pod_mk("a", "198.18.64.2", true, "web", hp,
			 ",\"hostname\":\"a\",\"subdomain\":\"web\"", NULL);
	pods[1] = pod_mk("b", "198.18.64.3", false, "web", hp, NULL, NULL);
	pods[2] = pod_mk("c", "198.18.64.4", true, "web", hp, NULL,
			 ",\"deletionTimestamp\":\"2030-01-01T00:00:00Z\"");
	pods[3] = pod_mk("d", "", true, "web", hp, NULL, NULL);		  /* no IP */
	pods[4] = pod_mk("e", "198.18.64.6", true, "db", hp, NULL, NULL); /* not selected */
	pods[5] = pod_mk("f", "198.18.64.7", true, "web", hp, ",\"hostname\":\"f\"", NULL);
	for (int i = 0; i < 6; i++)
		if (!ASSERT_NOT_NULL(pods[i], "pod"))
			return;
	if (!ASSERT_OK(ctl_slices_plan(svc, pods, 6, NULL, 0, 0, &plan), "plan"))
		goto out;
	ASSERT_EQ(plan.n_create, 1, "one slice");
	ASSERT_EQ(plan.n_update + plan.n_del, 0, "nothing else");
	s = plan.create[0];
	meta = sl_json_get(s, "metadata");
	ASSERT_STREQ(sl_json_get_str(meta, "generateName"), "web-", "generateName");
	ASSERT_STREQ(sl_json_get_str(sl_json_get(meta, "labels"), K8S_LABEL_SERVICE_NAME), "web",
		     "service-name label");
	ASSERT_STREQ(sl_json_get_str(sl_json_get(meta, "labels"), CTL_MANAGED_BY_LABEL),
		     CTL_MANAGED_BY, "managed-by label");
	ASSERT_STREQ(sl_json_get_str(sl_json_get(meta, "labels"), "tier"), "fe",
		     "service labels copied");
	ASSERT_STREQ(
		sl_json_get_str(json_object_array_get_idx(sl_json_get(meta, "ownerReferences"), 0),
				"uid"),
		"svc-uid", "owner");
	ASSERT_STREQ(sl_json_get_str(s, "addressType"), "IPv4", "addressType");
	ASSERT_EQ(json_object_array_length(sl_json_get(s, "endpoints")), 4, "4 endpoints");
	/* sorted by address: a b c f */
	ASSERT_TRUE(cond(ep_at(s, 0), "ready") && cond(ep_at(s, 0), "serving") &&
			    !cond(ep_at(s, 0), "terminating"),
		    "a ready");
	ASSERT_STREQ(sl_json_get_str(ep_at(s, 0), "hostname"), "a", "hostname with subdomain");
	ASSERT_STREQ(sl_json_get_str(ep_at(s, 0), "nodeName"), "n1", "nodeName");
	ASSERT_STREQ(sl_json_get_str(sl_json_get(ep_at(s, 0), "targetRef"), "name"), "a",
		     "targetRef");
	ASSERT_TRUE(!cond(ep_at(s, 1), "ready") && !cond(ep_at(s, 1), "serving"), "b not ready");
	ASSERT_TRUE(!cond(ep_at(s, 2), "ready") && cond(ep_at(s, 2), "serving") &&
			    cond(ep_at(s, 2), "terminating"),
		    "c terminating: serving, not ready");
	ASSERT_NULL(sl_json_get(ep_at(s, 3), "hostname"), "no hostname without subdomain");
	ASSERT_EQ(json_object_array_length(sl_json_get(s, "ports")), 1, "one port");
	{
		int64_t port = 0;
		sl_json_get_int(json_object_array_get_idx(sl_json_get(s, "ports"), 0), "port",
				&port);
		ASSERT_EQ(port, 8080, "resolved port");
	}
	ctl_slice_plan_fini(&plan);
out:
	k8s_service_free(svc);
	for (int i = 0; i < 6; i++)
		k8s_pod_free(pods[i]);
}

TEST(ctl_slices_split_by_ports_and_size)
{
	struct k8s_service *svc = svc_from(WEB_SVC);
	struct k8s_pod *pods[252];
	struct ctl_slice_plan plan;
	size_t total = 0, small = 0;

	/* 250 pods on 8080 and 2 on 9090: 3 slices of the first kind, 1 of the other. */
	for (int i = 0; i < 252; i++) {
		char name[16], ip[32];
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(ip, sizeof(ip), "198.18.%d.%d", 64 + i / 200, 1 + i % 200);
		pods[i] = pod_mk(name, ip, true, "web",
				 i < 250 ? "{\"name\":\"http\",\"containerPort\":8080}"
					 : "{\"name\":\"http\",\"containerPort\":9090}",
				 NULL, NULL);
		if (!ASSERT_NOT_NULL(pods[i], "pod"))
			return;
	}
	if (!ASSERT_OK(ctl_slices_plan(svc, pods, 252, NULL, 0, 0, &plan), "plan"))
		goto out;
	ASSERT_EQ(plan.n_create, 4, "4 slices");
	for (size_t i = 0; i < plan.n_create; i++) {
		size_t n = json_object_array_length(sl_json_get(plan.create[i], "endpoints"));
		ASSERT_TRUE(n <= 100, "at most 100 per slice");
		total += n;
		if (n == 2) {
			int64_t port = 0;
			small++;
			sl_json_get_int(
				json_object_array_get_idx(sl_json_get(plan.create[i], "ports"), 0),
				"port", &port);
			ASSERT_EQ(port, 9090, "the other port set");
		}
	}
	ASSERT_EQ(total, 252, "every endpoint once");
	ASSERT_EQ(small, 1, "9090 pods in their own slice");

	/* Feed the plan back as the existing state (with names): nothing to do. */
	{
		struct json_object *ex[4];
		struct ctl_slice_plan again;
		for (size_t i = 0; i < 4; i++) {
			char nm[16];
			ex[i] = sl_json_clone(plan.create[i]);
			snprintf(nm, sizeof(nm), "web-%zu", i);
			sl_json_set_str(sl_json_get(ex[i], "metadata"), "name", nm);
		}
		if (ASSERT_OK(ctl_slices_plan(svc, pods, 252, ex, 4, 0, &again), "replan")) {
			ASSERT_EQ(again.n_create + again.n_update + again.n_del, 0, "no churn");
			ASSERT_EQ(again.n_unchanged, 4, "4 unchanged");
			ctl_slice_plan_fini(&again);
		}
		/* One pod turns unready: exactly one slice is updated. */
		k8s_pod_free(pods[10]);
		pods[10] = pod_mk("p10", "198.18.64.11", false, "web",
				  "{\"name\":\"http\",\"containerPort\":8080}", NULL, NULL);
		if (ASSERT_OK(ctl_slices_plan(svc, pods, 252, ex, 4, 0, &again), "replan 2")) {
			ASSERT_EQ(again.n_update, 1, "one update");
			ASSERT_EQ(again.n_create + again.n_del, 0, "no create/delete");
			ASSERT_STREQ(
				sl_json_get_str(sl_json_get(again.update[0], "metadata"), "name"),
				"web-0", "keeps the existing name");
			ctl_slice_plan_fini(&again);
		}
		/* All pods gone: one placeholder remains, the rest are deleted. */
		if (ASSERT_OK(ctl_slices_plan(svc, pods, 0, ex, 4, 0, &again), "replan 3")) {
			ASSERT_EQ(again.n_del, 3, "3 deleted");
			ASSERT_EQ(again.n_update, 1, "placeholder kept");
			ASSERT_EQ(
				json_object_array_length(sl_json_get(again.update[0], "endpoints")),
				0, "empty");
			ASSERT_EQ(json_object_array_length(sl_json_get(again.update[0], "ports")),
				  0, "no ports");
			ctl_slice_plan_fini(&again);
		}
		for (size_t i = 0; i < 4; i++)
			json_object_put(ex[i]);
	}
	ctl_slice_plan_fini(&plan);
out:
	k8s_service_free(svc);
	for (int i = 0; i < 252; i++)
		k8s_pod_free(pods[i]);
}

TEST(ctl_slices_placeholder_and_publish_not_ready)
{
	struct k8s_service *svc = svc_from(
		"{\"metadata\":{\"name\":\"h\",\"namespace\":\"shop\",\"uid\":\"u\"},\"spec\":{"
		"\"clusterIP\":\"None\",\"publishNotReadyAddresses\":true,\"selector\":{\"app\":"
		"\"web\"}}}");
	struct k8s_pod *p = pod_mk("a", "198.18.64.2", false, "web", NULL, NULL, NULL);
	struct ctl_slice_plan plan;

	if (!ASSERT_OK(ctl_slices_plan(svc, NULL, 0, NULL, 0, 0, &plan), "empty"))
		goto out;
	ASSERT_EQ(plan.n_create, 1, "placeholder created");
	ASSERT_EQ(json_object_array_length(sl_json_get(plan.create[0], "endpoints")), 0,
		  "no endpoints");
	ASSERT_NOT_NULL(sl_json_get(sl_json_path(plan.create[0], "metadata", "labels", NULL),
				    CTL_HEADLESS_LABEL),
			"headless label");
	ctl_slice_plan_fini(&plan);
	if (!ASSERT_OK(ctl_slices_plan(svc, &p, 1, NULL, 0, 0, &plan), "one"))
		goto out;
	ASSERT_TRUE(cond(ep_at(plan.create[0], 0), "ready"), "publishNotReady: ready");
	ASSERT_TRUE(cond(ep_at(plan.create[0], 0), "serving"), "publishNotReady: serving");
	ctl_slice_plan_fini(&plan);
out:
	k8s_service_free(svc);
	k8s_pod_free(p);
}

TEST(ctl_endpoints_subsets)
{
	struct k8s_service *svc = svc_from(WEB_SVC);
	const char *hp = "{\"name\":\"http\",\"containerPort\":8080}";
	struct k8s_pod *pods[4];
	struct json_object *ep, *subs, *again;
	bool changed = false;

	pods[0] = pod_mk("b", "198.18.64.3", true, "web", hp, NULL, NULL);
	pods[1] = pod_mk("a", "198.18.64.2", false, "web", hp, NULL, NULL);
	pods[2] = pod_mk("c", "198.18.64.4", true, "web", hp, NULL,
			 ",\"deletionTimestamp\":\"2030-01-01T00:00:00Z\"");
	pods[3] = pod_mk("d", "198.18.64.5", true, "web",
			 "{\"name\":\"other\",\"containerPort\":1}", NULL, NULL);
	ep = ctl_endpoints_build(svc, pods, 4, NULL, &changed);
	if (!ASSERT_NOT_NULL(ep, "build"))
		goto out;
	ASSERT_TRUE(changed, "new object is a change");
	subs = sl_json_get(ep, "subsets");
	ASSERT_EQ(json_object_array_length(subs), 1, "one subset");
	ASSERT_EQ(json_object_array_length(
			  sl_json_get(json_object_array_get_idx(subs, 0), "addresses")),
		  1, "one ready (terminating left out, unresolvable port left out)");
	ASSERT_EQ(json_object_array_length(
			  sl_json_get(json_object_array_get_idx(subs, 0), "notReadyAddresses")),
		  1, "one not ready");
	ASSERT_STREQ(
		sl_json_get_str(
			json_object_array_get_idx(
				sl_json_get(json_object_array_get_idx(subs, 0), "addresses"), 0),
			"ip"),
		"198.18.64.3", "ready address");
	again = ctl_endpoints_build(svc, pods, 4, ep, &changed);
	ASSERT_FALSE(changed, "same input: no change");
	json_object_put(again);
	json_object_put(ep);
out:
	k8s_service_free(svc);
	for (int i = 0; i < 4; i++)
		k8s_pod_free(pods[i]);
}

TEST(ctl_cidrset_allocates_and_exhausts)
{
	char err[256], c[64];
	struct ctl_cidrset *s = ctl_cidrset_new("198.18.64.0/22", 24, err, sizeof(err));

	if (!ASSERT_NOT_NULL(s, "new"))
		return;
	ASSERT_EQ(ctl_cidrset_size(s), 4, "4 blocks");
	ASSERT_OK(ctl_cidrset_occupy(s, "198.18.65.0/24"), "occupy existing");
	ASSERT_EQ(ctl_cidrset_occupy(s, "198.18.65.0/24"), -EEXIST, "twice");
	ASSERT_EQ(ctl_cidrset_occupy(s, "198.18.70.0/24"), -ERANGE, "outside");
	ASSERT_EQ(ctl_cidrset_occupy(s, "198.18.64.0/25"), -ERANGE, "wrong size");
	ASSERT_EQ(ctl_cidrset_occupy(s, "nonsense"), -EINVAL, "not a CIDR");
	ASSERT_OK(ctl_cidrset_next(s, c, sizeof(c)), "next");
	ASSERT_STREQ(c, "198.18.64.0/24", "first");
	ASSERT_OK(ctl_cidrset_next(s, c, sizeof(c)), "next");
	ASSERT_STREQ(c, "198.18.66.0/24", "skips the occupied one");
	ASSERT_OK(ctl_cidrset_next(s, c, sizeof(c)), "next");
	ASSERT_STREQ(c, "198.18.67.0/24", "last");
	ASSERT_EQ(ctl_cidrset_next(s, c, sizeof(c)), -SL_ERR_EXHAUSTED, "exhausted");
	ctl_cidrset_release(s, "198.18.64.0/24");
	ASSERT_EQ(ctl_cidrset_used(s), 3, "released");
	ASSERT_OK(ctl_cidrset_next(s, c, sizeof(c)), "after release");
	ASSERT_STREQ(c, "198.18.64.0/24", "the freed block");
	ctl_cidrset_free(s);
}

TEST(ctl_cidrset_bad_input)
{
	char err[256];
	struct ctl_cidrset *s;

	ASSERT_NULL(ctl_cidrset_new("10.0.0.0", 24, err, sizeof(err)), "no prefix");
	ASSERT_NULL(ctl_cidrset_new("fd00::/64", 80, err, sizeof(err)), "ipv6");
	ASSERT_TRUE(strstr(err, "IPv6") != NULL, "says IPv6");
	ASSERT_NULL(ctl_cidrset_new("10.1.0.0/8", 24, err, sizeof(err)), "host bits");
	ASSERT_TRUE(strstr(err, "10.0.0.0/8") != NULL, "suggests the network");
	ASSERT_NULL(ctl_cidrset_new("10.0.0.0/16", 8, err, sizeof(err)), "mask too short");
	ASSERT_NULL(ctl_cidrset_new("10.0.0.0/8", 28, err, sizeof(err)), "too many blocks");
	s = ctl_cidrset_new("10.0.0.0/8", 24, err, sizeof(err));
	ASSERT_NOT_NULL(s, "2^16 blocks is fine");
	ctl_cidrset_free(s);
}

TEST(ctl_config_check_flags)
{
	char err[512];
	unsigned w = 0;
	struct ctl_config c = {"all", "10.244.0.0/16", 24, 40};

	ASSERT_OK(ctl_config_check(&c, &w, err, sizeof(err)), "defaults");
	ASSERT_EQ(w, CTL_ALL, "all");
	c.controllers = "endpoints,nodeipam";
	ASSERT_OK(ctl_config_check(&c, &w, err, sizeof(err)), "list");
	ASSERT_EQ(w, CTL_ENDPOINTS | CTL_NODEIPAM, "two");
	c.controllers = "none";
	ASSERT_OK(ctl_config_check(&c, &w, err, sizeof(err)), "none");
	ASSERT_EQ(w, 0, "nothing");
	c.controllers = "endpoints,bogus";
	ASSERT_EQ(ctl_config_check(&c, &w, err, sizeof(err)), -EINVAL, "unknown");
	ASSERT_TRUE(strstr(err, "'bogus'") != NULL, "names it");
	c.controllers = "all";
	c.cluster_cidr = "10.244.0.0/33";
	ASSERT_EQ(ctl_config_check(&c, &w, err, sizeof(err)), -EINVAL, "bad cidr");
	ASSERT_TRUE(strstr(err, "--cluster-cidr") != NULL, "names the flag");
}
