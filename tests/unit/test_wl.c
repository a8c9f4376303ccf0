// SPDX-License-Identifier: Apache-2.0
/* control/wl_plan.c: the decisions of the workload controllers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl.h"
#include "control/validate.h"
#include "control/wl.h"
#include "harness.h"
#include "sluice/json.h"

static struct json_object *J(const char *s)
{
	struct json_object *j = sl_json_parse(s, strlen(s), NULL, 0);

	if (!j)
		fprintf(stderr, "  bad test JSON: %s\n", s);
	return j;
}

/* A pod: node ("" unscheduled), phase, ready since `ready_at` (NULL: not
 * ready), restarts, created at `created`. */
static struct json_object *pod(const char *name, const char *node, const char *phase,
			       const char *ready_at, int restarts, const char *created)
{
	char buf[2048];

	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"%s\",\"creationTimestamp\":\"%s\"},"
		 "\"spec\":{\"nodeName\":\"%s\"},\"status\":{\"phase\":\"%s\","
		 "\"containerStatuses\":[{\"restartCount\":%d}],\"conditions\":[{\"type\":"
		 "\"Ready\",\"status\":\"%s\",\"lastTransitionTime\":\"%s\"}]}}",
		 name, created, node, phase, restarts, ready_at ? "True" : "False",
		 ready_at ? ready_at : created);
	return J(buf);
}

TEST(wl_delete_order_prefers_unscheduled_pending_notready_newer)
{
	struct json_object *p[7];
	size_t idx[7];
	static const char *const want[] = {"unsched",	  "pending", "restarts", "notready",
					   "young-ready", "new",     "old"};

	p[0] = pod("old", "n1", "Running", "2024-01-01T00:00:10Z", 0, "2024-01-01T00:00:00Z");
	p[1] = pod("new", "n1", "Running", "2024-01-01T00:00:10Z", 0, "2024-01-01T00:00:05Z");
	p[2] = pod("notready", "n1", "Running", NULL, 0, "2024-01-01T00:00:00Z");
	p[3] = pod("unsched", "", "Pending", NULL, 0, "2024-01-01T00:00:00Z");
	p[4] = pod("pending", "n1", "Pending", NULL, 5, "2024-01-01T00:00:00Z");
	p[5] = pod("young-ready", "n1", "Running", "2024-01-01T00:01:00Z", 0,
		   "2024-01-01T00:00:00Z");
	p[6] = pod("restarts", "n1", "Running", NULL, 3, "2024-01-01T00:00:00Z");
	for (size_t i = 0; i < 7; i++)
		idx[i] = i;
	wl_pods_delete_order(p, idx, 7);
	for (size_t i = 0; i < 7; i++)
		ASSERT_STREQ(sl_json_get_str(sl_json_get(p[idx[i]], "metadata"), "name"), want[i],
			     "deletion order");
	for (size_t i = 0; i < 7; i++)
		json_object_put(p[i]);
}

TEST(wl_pod_ready_available_active)
{
	struct json_object *r =
		pod("a", "n1", "Running", "2024-01-01T00:00:10Z", 0, "2024-01-01T00:00:00Z");
	struct json_object *nr = pod("b", "n1", "Running", NULL, 0, "2024-01-01T00:00:00Z");
	struct json_object *done = J("{\"metadata\":{},\"status\":{\"phase\":\"Succeeded\"}}");
	struct json_object *del =
		J("{\"metadata\":{\"deletionTimestamp\":\"2024-01-01T00:00:00Z\"},"
		  "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\","
		  "\"status\":\"True\"}]}}");
	time_t t10 = 1704067210; /* 2024-01-01T00:00:10Z */

	ASSERT_TRUE(wl_pod_ready(r), "ready");
	ASSERT_FALSE(wl_pod_ready(nr), "not ready");
	ASSERT_FALSE(wl_pod_ready(del), "terminating is not ready");
	ASSERT_TRUE(wl_pod_available(r, 0, t10), "available without minReadySeconds");
	ASSERT_FALSE(wl_pod_available(r, 5, t10 + 4), "not yet available");
	ASSERT_TRUE(wl_pod_available(r, 5, t10 + 5), "available after minReadySeconds");
	ASSERT_TRUE(wl_pod_active(r), "running is active");
	ASSERT_FALSE(wl_pod_active(done), "succeeded is not active");
	ASSERT_FALSE(wl_pod_active(del), "terminating is not active");
	json_object_put(r);
	json_object_put(nr);
	json_object_put(done);
	json_object_put(del);
}

TEST(wl_fenceposts_round_surge_up_unavailable_down)
{
	struct json_object *p25 = J("\"25%\""), *one = J("1"), *zero = J("0"), *bad = J("\"x%\"");
	int32_t s = -1, u = -1;

	ASSERT_OK(wl_fenceposts(p25, p25, 6, &s, &u), "25% of 6");
	ASSERT_EQ(s, 2, "surge rounds up (1.5 -> 2)");
	ASSERT_EQ(u, 1, "unavailable rounds down (1.5 -> 1)");
	ASSERT_OK(wl_fenceposts(p25, p25, 1, &s, &u), "25% of 1");
	ASSERT_EQ(s, 1, "surge 1");
	ASSERT_EQ(u, 0, "unavailable 0");
	ASSERT_OK(wl_fenceposts(zero, zero, 4, &s, &u), "both 0");
	ASSERT_EQ(u, 1, "both 0 makes maxUnavailable 1");
	ASSERT_OK(wl_fenceposts(one, NULL, 4, &s, &u), "int and absent");
	ASSERT_EQ(s, 1, "int surge");
	ASSERT_EQ(u, 0, "absent unavailable");
	ASSERT_ERR(wl_fenceposts(bad, one, 4, &s, &u), "bad percent");
	json_object_put(p25);
	json_object_put(one);
	json_object_put(zero);
	json_object_put(bad);
}

TEST(wl_rolling_update_steps)
{
	/* 6 replicas, maxSurge 2, maxUnavailable 1: the new RS may grow to
	 * 8 - total, never past 6. */
	ASSERT_EQ(wl_new_rs_replicas(6, 2, 6, 0), 2, "first surge");
	ASSERT_EQ(wl_new_rs_replicas(6, 2, 8, 2), 2, "at the surge limit");
	ASSERT_EQ(wl_new_rs_replicas(6, 2, 5, 2), 5, "room for 3 more");
	ASSERT_EQ(wl_new_rs_replicas(6, 2, 7, 6), 6, "never past desired");
	ASSERT_EQ(wl_new_rs_replicas(2, 2, 6, 6), 2, "scaled down deployment caps the new RS");

	{
		/* new 2 (0 available), old 6 (6 available): 8 pods, min
		 * available 5, 2 new unavailable: 8-5-2 = 1 may go. */
		struct wl_rs_count n = {2, 0}, o[1] = {{6, 6}};
		int32_t to[1];
		ASSERT_EQ(wl_scale_down_old(6, 1, &n, o, 1, to), 1, "one old pod goes");
		ASSERT_EQ(to[0], 5, "old to 5");
	}
	{
		/* Unhealthy old pods go first, whatever availability says. */
		struct wl_rs_count n = {3, 3}, o[2] = {{2, 0}, {4, 4}};
		int32_t to[2];
		ASSERT_EQ(wl_scale_down_old(6, 1, &n, o, 2, to), 4, "2 unhealthy + 2 available");
		ASSERT_EQ(to[0], 0, "unhealthy RS emptied");
		ASSERT_EQ(to[1], 2, "available down to min available 5 (3 new + 2 old)");
	}
	{
		/* Nothing available anywhere: no old pod may go while the new
		 * ones are not available. */
		struct wl_rs_count n = {2, 0}, o[1] = {{5, 5}};
		int32_t to[1];
		ASSERT_EQ(wl_scale_down_old(6, 1, &n, o, 1, to), 0, "7 pods, min 5, 2 unavailable");
		ASSERT_EQ(to[0], 5, "unchanged");
	}
	{
		struct wl_rs_count n = {6, 6}, o[1] = {{0, 0}};
		int32_t to[1];
		ASSERT_EQ(wl_scale_down_old(6, 1, &n, o, 1, to), 0, "no old pods");
	}
}

TEST(wl_template_hash_stable_and_sensitive)
{
	struct json_object *a =
		J("{\"metadata\":{\"labels\":{\"app\":\"w\",\"t\":\"1\"}},"
		  "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x:1\"}]}}");
	struct json_object *b = J("{\"spec\":{\"containers\":[{\"image\":\"x:1\",\"name\":\"c\"}]},"
				  "\"metadata\":{\"labels\":{\"t\":\"1\",\"app\":\"w\"}}}");
	struct json_object *c =
		J("{\"metadata\":{\"labels\":{\"app\":\"w\",\"t\":\"1\"}},"
		  "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x:2\"}]}}");
	char ha[WL_HASH_BUFSZ], hb[WL_HASH_BUFSZ], hc[WL_HASH_BUFSZ], hd[WL_HASH_BUFSZ];

	wl_template_hash(a, -1, ha);
	wl_template_hash(b, -1, hb);
	wl_template_hash(c, -1, hc);
	wl_template_hash(a, 1, hd);
	ASSERT_STREQ(ha, hb, "key order does not matter");
	ASSERT_TRUE(strcmp(ha, hc) != 0, "image changes the hash");
	ASSERT_TRUE(strcmp(ha, hd) != 0, "collisionCount changes the hash");
	ASSERT_TRUE(strlen(ha) >= 6, "a usable name suffix");
	ASSERT_TRUE(strspn(ha, "bcdfghjklmnpqrstvwxz2456789") == strlen(ha), "safe alphabet");
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
}

TEST(wl_daemonset_node_eligibility)
{
	struct json_object *ssd =
		J("{\"metadata\":{\"name\":\"n1\",\"labels\":{\"disk\":\"ssd\"}}}");
	struct json_object *tainted =
		J("{\"metadata\":{\"name\":\"n2\"},\"spec\":{\"taints\":[{\"key\":\"dedicated\","
		  "\"value\":\"db\",\"effect\":\"NoSchedule\"}]}}");
	struct json_object *notready =
		J("{\"metadata\":{\"name\":\"n3\"},\"spec\":{\"taints\":[{\"key\":"
		  "\"node.kubernetes.io/not-ready\",\"effect\":\"NoExecute\"},{\"key\":\"p\","
		  "\"effect\":\"PreferNoSchedule\"}]}}");
	struct json_object *any = J("{}");
	struct json_object *sel = J("{\"nodeSelector\":{\"disk\":\"ssd\"}}");
	struct json_object *tol = J("{\"tolerations\":[{\"key\":\"dedicated\",\"operator\":"
				    "\"Equal\",\"value\":\"db\",\"effect\":\"NoSchedule\"}]}");
	struct json_object *tolw =
		J("{\"tolerations\":[{\"key\":\"dedicated\",\"value\":\"web\"}]}");
	struct json_object *tols = wl_ds_tolerations(any);

	ASSERT_TRUE(wl_node_eligible(ssd, any), "no selector");
	ASSERT_TRUE(wl_node_eligible(ssd, sel), "selector matches");
	ASSERT_FALSE(wl_node_eligible(tainted, sel), "selector does not match");
	ASSERT_FALSE(wl_node_eligible(tainted, any), "untolerated NoSchedule taint");
	ASSERT_TRUE(wl_node_eligible(tainted, tol), "tolerated taint");
	ASSERT_FALSE(wl_node_eligible(tainted, tolw), "toleration of another value");
	ASSERT_TRUE(wl_node_eligible(notready, any), "not-ready is tolerated by daemons");
	ASSERT_EQ(json_object_array_length(tols), 6, "six default daemon tolerations");
	json_object_put(tols);
	json_object_put(ssd);
	json_object_put(tainted);
	json_object_put(notready);
	json_object_put(any);
	json_object_put(sel);
	json_object_put(tol);
	json_object_put(tolw);
}

TEST(wl_controller_flags)
{
	char err[512];
	unsigned w = 0;
	struct ctl_config c = {"replicaset,deployment,daemonset,garbagecollector", "10.244.0.0/16",
			       24, 40};

	ASSERT_OK(ctl_config_check(&c, &w, err, sizeof(err)), "workload list");
	ASSERT_EQ(w, CTL_REPLICASET | CTL_DEPLOYMENT | CTL_DAEMONSET | CTL_GC, "four bits");
	c.controllers = "replicasets";
	ASSERT_EQ(ctl_config_check(&c, &w, err, sizeof(err)), -EINVAL, "plural is unknown");
	ASSERT_TRUE(strstr(err, "garbagecollector") != NULL, "lists the accepted names");
}

static bool has_cause(const struct api_causes *c, const char *field, const char *msg_part)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].field, field) && strstr(c->v[i].message, msg_part))
			return true;
	for (size_t i = 0; i < c->n; i++)
		fprintf(stderr, "  cause: %s: %s\n", c->v[i].field, c->v[i].message);
	return false;
}

TEST(wl_deployment_defaults_and_validation)
{
	struct json_object *d = J(
		"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"w\","
		"\"namespace\":\"default\"},\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"w\"}"
		"},"
		"\"template\":{\"metadata\":{\"labels\":{\"app\":\"w\"}},\"spec\":{\"containers\":["
		"{"
		"\"name\":\"c\",\"image\":\"x:1\"}]}}}}");
	struct json_object *spec = sl_json_get(d, "spec"), *ru;
	struct api_causes c = {0};
	int64_t v = 0;

	ASSERT_OK(default_object("Deployment", d, NULL), "defaults");
	ASSERT_TRUE(sl_json_get_int(spec, "replicas", &v) && v == 1, "replicas 1");
	ASSERT_TRUE(sl_json_get_int(spec, "revisionHistoryLimit", &v) && v == 10, "history 10");
	ASSERT_TRUE(sl_json_get_int(spec, "progressDeadlineSeconds", &v) && v == 600,
		    "deadline 600");
	ru = sl_json_get(sl_json_get(spec, "strategy"), "rollingUpdate");
	ASSERT_STREQ(sl_json_get_str(sl_json_get(spec, "strategy"), "type"), "RollingUpdate",
		     "strategy");
	ASSERT_STREQ(sl_json_get_str(ru, "maxSurge"), "25%", "maxSurge");
	ASSERT_STREQ(sl_json_get_str(ru, "maxUnavailable"), "25%", "maxUnavailable");
	ASSERT_STREQ(sl_json_get_str(sl_json_get(sl_json_get(spec, "template"), "spec"),
				     "restartPolicy"),
		     "Always", "template pod defaults");
	ASSERT_EQ(validate_object("Deployment", true, d, NULL, &c), 0, "valid");

	sl_json_set_int(spec, "replicas", -1);
	sl_json_set_str(sl_json_get(sl_json_get(spec, "selector"), "matchLabels"), "app", "v");
	sl_json_set_str(ru, "maxSurge", "0%");
	sl_json_set_int(ru, "maxUnavailable", 0);
	validate_object("Deployment", true, d, NULL, &c);
	ASSERT_TRUE(has_cause(&c, "spec.replicas", "must be greater than or equal to 0"),
		    "replicas >= 0");
	ASSERT_TRUE(has_cause(&c, "spec.template.metadata.labels",
			      "`selector` does not match template `labels`"),
		    "selector vs labels");
	ASSERT_TRUE(has_cause(&c, "spec.strategy.rollingUpdate.maxUnavailable",
			      "may not be 0 when `maxSurge` is 0"),
		    "surge and unavailable both 0");
	api_causes_fini(&c);
	json_object_object_del(spec, "selector");
	json_object_object_del(sl_json_get(sl_json_get(spec, "template"), "spec"), "containers");
	validate_object("Deployment", true, d, NULL, &c);
	ASSERT_TRUE(has_cause(&c, "spec.selector", "Required value"), "selector required");
	ASSERT_TRUE(has_cause(&c, "spec.template.spec.containers", "Required value"),
		    "containers required");
	api_causes_fini(&c);
	json_object_put(d);
}

/*
 * Drives a whole rollout with the controller's arithmetic: each step either
 * grows the new ReplicaSet or shrinks the old one, then every pod becomes
 * available. Total pods never exceed desired + maxSurge and available pods
 * never drop below desired - maxUnavailable; the rollout ends all-new.
 */
static void simulate(int32_t desired, int32_t surge, int32_t unavail, const char *name)
{
	struct wl_rs_count n = {0, 0}, o[1] = {{desired, desired}};
	int steps = 0;

	while ((n.replicas != desired || o[0].replicas) && steps < 100) {
		int32_t t =
			wl_new_rs_replicas(desired, surge, n.replicas + o[0].replicas, n.replicas);
		if (t != n.replicas) {
			n.replicas = t;
		} else {
			int32_t to[1];
			wl_scale_down_old(desired, unavail, &n, o, 1, to);
			if (to[0] == o[0].replicas) {
				/* Stuck before pods become available: they do now. */
				n.available = n.replicas;
				steps++;
				continue;
			}
			o[0].replicas = to[0];
			if (o[0].available > to[0])
				o[0].available = to[0];
		}
		if (!ASSERT_TRUE(n.replicas + o[0].replicas <= desired + surge, name) ||
		    !ASSERT_TRUE(n.available + o[0].available >= desired - unavail, name))
			return;
		steps++;
	}
	ASSERT_EQ(n.replicas, desired, name);
	ASSERT_EQ(o[0].replicas, 0, name);
	ASSERT_TRUE(steps < 100, name);
}

TEST(wl_rolling_update_simulated_to_completion)
{
	simulate(6, 2, 1, "6 replicas 25%/25%");
	simulate(3, 0, 1, "maxSurge 0");
	simulate(3, 1, 0, "maxUnavailable 0");
	simulate(10, 3, 3, "10 replicas 3/3");
	simulate(1, 1, 0, "single replica");
}
