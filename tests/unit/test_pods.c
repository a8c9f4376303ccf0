// SPDX-License-Identifier: Apache-2.0
/*
 * The pure parts of the pod runtime (agent/pods_spec.c, agent/pods_cni.c):
 * resolv.conf/hosts/hostname, environment with fieldRefs and $(VAR)
 * expansion, argv, probe configuration (defaults, named ports, bad input),
 * condition transitions, restart decisions and back-off, and the CNI config
 * handling a runtime does (conf dir lookup, name/cniVersion injection,
 * prevResult, result parsing).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/pods.h"
#include "harness.h"
#include "sluice/json.h"

static struct json_object *J(const char *s)
{
	struct json_object *o = sl_json_parse(s, strlen(s), NULL, 0);

	if (!o)
		fprintf(stderr, "bad test JSON: %s\n", s);
	return o;
}

static const char *env_get(char **env, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], name, n) && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

TEST(pods_resolv_conf_cluster_first)
{
	struct sl_buf b = SL_BUF_INIT;

	pods_resolv_conf(&b, "shop", "198.18.128.10", "cluster.local");
	ASSERT_STREQ(sl_buf_cstr(&b),
		     "nameserver 198.18.128.10\n"
		     "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
		     "options ndots:5\n",
		     "resolv.conf");
	sl_buf_fini(&b);
}

TEST(pods_hosts_and_hostname)
{
	struct json_object *pod = J("{\"metadata\":{\"name\":\"web-0\"},\"spec\":{}}");
	struct json_object *pod2 =
		J("{\"metadata\":{\"name\":\"x\"},\"spec\":{\"hostname\":\"h\"}}");
	struct json_object *longp =
		J("{\"metadata\":{\"name\":"
		  "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbb\"}}");
	struct sl_buf b = SL_BUF_INIT;
	char h[64];

	pods_hostname(pod, h, sizeof(h));
	ASSERT_STREQ(h, "web-0", "hostname from name");
	pods_hostname(pod2, h, sizeof(h));
	ASSERT_STREQ(h, "h", "spec.hostname wins");
	pods_hostname(longp, h, sizeof(h));
	ASSERT_EQ(strlen(h), 62, "cut to 63 and no trailing dash");
	pods_hosts_file(&b, "198.18.64.7", "web-0", "web", "shop", "cluster.local");
	ASSERT_TRUE(strstr(sl_buf_cstr(&b), "127.0.0.1\tlocalhost\n") != NULL, "localhost");
	ASSERT_TRUE(strstr(sl_buf_cstr(&b),
			   "198.18.64.7\tweb-0.web.shop.svc.cluster.local\tweb-0\n") != NULL,
		    "subdomain fqdn");
	sl_buf_reset(&b);
	pods_hosts_file(&b, "198.18.64.8", "x", NULL, "shop", "cluster.local");
	ASSERT_TRUE(strstr(sl_buf_cstr(&b), "198.18.64.8\tx\n") != NULL, "plain");
	sl_buf_fini(&b);
	json_object_put(pod);
	json_object_put(pod2);
	json_object_put(longp);
}

TEST(pods_env_fieldrefs_and_expansion)
{
	struct json_object *pod =
		J("{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"u-1\","
		  "\"labels\":{\"app\":\"web\"}},\"spec\":{\"nodeName\":\"n1\","
		  "\"serviceAccountName\":\"sa\"}}");
	struct json_object *ctr = J(
		"{\"name\":\"c\",\"env\":[{\"name\":\"A\",\"value\":\"1\"},"
		"{\"name\":\"B\",\"value\":\"$(A)-$(NOPE)-$$(A)\"},"
		"{\"name\":\"N\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}},"
		"{\"name\":\"NS\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata."
		"namespace\"}}},"
		"{\"name\":\"U\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.uid\"}}},"
		"{\"name\":\"NODE\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"spec.nodeName\"}}}"
		","
		"{\"name\":\"SA\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"spec."
		"serviceAccountName\"}}},"
		"{\"name\":\"IP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.podIP\"}}},"
		"{\"name\":\"HIP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.hostIP\"}}},"
		"{\"name\":\"L\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.labels['app'"
		"]\"}}},"
		"{\"name\":\"A\",\"value\":\"2\"}],"
		"\"command\":[\"sh\",\"-c\"],\"args\":[\"echo $(A) $(IP)\"]}");
	struct pods_env_ctx c = {
		.pod_ip = "198.18.64.2", .host_ip = "198.18.0.11", .node_name = "n1"};
	char **env = NULL, **argv = NULL, err[256] = "";

	if (!ASSERT_OK(pods_env_build(pod, ctr, &c, &env, err, sizeof(err)), err))
		goto out;
	ASSERT_STREQ(env_get(env, "HOSTNAME"), "p", "HOSTNAME");
	ASSERT_NOT_NULL(env_get(env, "PATH"), "default PATH");
	ASSERT_STREQ(env_get(env, "A"), "2", "later entry wins");
	ASSERT_STREQ(env_get(env, "B"), "1-$(NOPE)-$(A)", "expansion");
	ASSERT_STREQ(env_get(env, "N"), "p", "metadata.name");
	ASSERT_STREQ(env_get(env, "NS"), "ns", "metadata.namespace");
	ASSERT_STREQ(env_get(env, "U"), "u-1", "metadata.uid");
	ASSERT_STREQ(env_get(env, "NODE"), "n1", "spec.nodeName");
	ASSERT_STREQ(env_get(env, "SA"), "sa", "serviceAccountName");
	ASSERT_STREQ(env_get(env, "IP"), "198.18.64.2", "status.podIP");
	ASSERT_STREQ(env_get(env, "HIP"), "198.18.0.11", "status.hostIP");
	ASSERT_STREQ(env_get(env, "L"), "web", "label");
	if (!ASSERT_OK(pods_argv_build(ctr, env, &argv, err, sizeof(err)), err))
		goto out;
	ASSERT_STREQ(argv[0], "sh", "argv0");
	ASSERT_STREQ(argv[2], "echo 2 198.18.64.2", "args expanded");
	ASSERT_NULL(argv[3], "terminated");
out:
	pods_strv_free(env);
	pods_strv_free(argv);
	json_object_put(pod);
	json_object_put(ctr);
}

TEST(pods_env_and_argv_bad_input)
{
	struct json_object *pod = J("{\"metadata\":{\"name\":\"p\"}}");
	struct json_object *bad_ref = J("{\"name\":\"c\",\"env\":[{\"name\":\"X\",\"valueFrom\":"
					"{\"fieldRef\":{\"fieldPath\":\"spec.bogus\"}}}]}");
	struct json_object *secret = J("{\"name\":\"c\",\"env\":[{\"name\":\"X\",\"valueFrom\":"
				       "{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}}]}");
	struct json_object *noname = J("{\"name\":\"c\",\"env\":[{\"value\":\"v\"}]}");
	struct json_object *nocmd = J("{\"name\":\"c\",\"image\":\"busybox\"}");
	struct json_object *badarg = J("{\"name\":\"c\",\"command\":[\"a\",1]}");
	struct pods_env_ctx c = {0};
	char **v = NULL, err[256];

	ASSERT_EQ(pods_env_build(pod, bad_ref, &c, &v, err, sizeof(err)), -EINVAL, "bad fieldPath");
	ASSERT_TRUE(strstr(err, "spec.bogus") != NULL, err);
	ASSERT_NULL(v, "nothing returned");
	ASSERT_EQ(pods_env_build(pod, secret, &c, &v, err, sizeof(err)), -EINVAL, "secretKeyRef");
	ASSERT_TRUE(strstr(err, "fieldRef") != NULL, err);
	ASSERT_EQ(pods_env_build(pod, noname, &c, &v, err, sizeof(err)), -EINVAL, "no name");
	ASSERT_TRUE(strstr(err, "env[0].name") != NULL, err);
	ASSERT_EQ(pods_argv_build(nocmd, NULL, &v, err, sizeof(err)), -EINVAL, "no command");
	ASSERT_TRUE(strstr(err, "command: required") != NULL, err);
	ASSERT_EQ(pods_argv_build(badarg, NULL, &v, err, sizeof(err)), -EINVAL, "non-string");
	ASSERT_TRUE(strstr(err, "command[1]") != NULL, err);
	json_object_put(pod);
	json_object_put(bad_ref);
	json_object_put(secret);
	json_object_put(noname);
	json_object_put(nocmd);
	json_object_put(badarg);
}

TEST(pods_probe_parse)
{
	struct json_object *ctr =
		J("{\"name\":\"c\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080}]}");
	struct json_object *http = J("{\"httpGet\":{\"path\":\"/healthz\",\"port\":\"http\","
				     "\"httpHeaders\":[{\"name\":\"X-A\",\"value\":\"b\"}]},"
				     "\"periodSeconds\":2,\"failureThreshold\":5}");
	struct json_object *tcp = J("{\"tcpSocket\":{\"port\":9000}}");
	struct json_object *ex =
		J("{\"exec\":{\"command\":[\"cat\",\"/tmp/ok\"]},\"timeoutSeconds\":3,"
		  "\"initialDelaySeconds\":4,\"successThreshold\":2}");
	struct probe_spec p;
	char err[256] = "";

	if (ASSERT_OK(probe_spec_parse(http, ctr, &p, err, sizeof(err)), err)) {
		ASSERT_EQ(p.kind, PROBE_HTTP, "http");
		ASSERT_EQ(p.port, 8080, "named port");
		ASSERT_STREQ(p.path, "/healthz", "path");
		ASSERT_EQ(p.n_headers, 1, "headers");
		ASSERT_EQ(p.period_s, 2, "period");
		ASSERT_EQ(p.failure_threshold, 5, "failureThreshold");
		ASSERT_EQ(p.timeout_s, 1, "default timeout");
		ASSERT_EQ(p.success_threshold, 1, "default successThreshold");
		ASSERT_EQ(p.initial_delay_s, 0, "default delay");
		probe_spec_fini(&p);
	}
	if (ASSERT_OK(probe_spec_parse(tcp, ctr, &p, err, sizeof(err)), err)) {
		ASSERT_EQ(p.kind, PROBE_TCP, "tcp");
		ASSERT_EQ(p.port, 9000, "port");
		ASSERT_EQ(p.period_s, 10, "default period");
		ASSERT_EQ(p.failure_threshold, 3, "default failureThreshold");
		probe_spec_fini(&p);
	}
	if (ASSERT_OK(probe_spec_parse(ex, ctr, &p, err, sizeof(err)), err)) {
		ASSERT_EQ(p.kind, PROBE_EXEC, "exec");
		ASSERT_STREQ(p.cmd[1], "/tmp/ok", "argv");
		ASSERT_NULL(p.cmd[2], "argv end");
		ASSERT_EQ(p.timeout_s, 3, "timeout");
		ASSERT_EQ(p.initial_delay_s, 4, "delay");
		ASSERT_EQ(p.success_threshold, 2, "successThreshold");
		probe_spec_fini(&p);
	}
	json_object_put(http);
	json_object_put(tcp);
	json_object_put(ex);
	json_object_put(ctr);
}

TEST(pods_probe_parse_bad_input)
{
	static const struct {
		const char *probe, *want;
	} cases[] = {
		{"{}", "exactly one of"},
		{"{\"exec\":{\"command\":[\"a\"]},\"tcpSocket\":{\"port\":1}}", "exactly one of"},
		{"{\"grpc\":{\"port\":1}}", "grpc"},
		{"{\"tcpSocket\":{\"port\":0}}", "tcpSocket.port"},
		{"{\"tcpSocket\":{\"port\":70000}}", "tcpSocket.port"},
		{"{\"tcpSocket\":{\"port\":\"nope\"}}", "no containerPort"},
		{"{\"tcpSocket\":{}}", "tcpSocket.port: required"},
		{"{\"httpGet\":{\"port\":80,\"scheme\":\"HTTPS\"}}", "only HTTP"},
		{"{\"httpGet\":{\"port\":80,\"path\":\"no-slash\"}}", "httpGet.path"},
		{"{\"exec\":{\"command\":[]}}", "exec.command"},
		{"{\"exec\":{\"command\":[\"a\"]},\"periodSeconds\":0}", "periodSeconds"},
		{"{\"exec\":{\"command\":[\"a\"]},\"failureThreshold\":\"x\"}", "failureThreshold"},
		{"{\"exec\":{\"command\":[\"a\"]},\"initialDelaySeconds\":-1}",
		 "initialDelaySeconds"},
	};
	struct json_object *ctr = J("{\"name\":\"c\"}");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *p = J(cases[i].probe);
		struct probe_spec s;
		char err[256] = "";
		ASSERT_EQ(probe_spec_parse(p, ctr, &s, err, sizeof(err)), -EINVAL, cases[i].probe);
		ASSERT_TRUE(strstr(err, cases[i].want) != NULL, err);
		json_object_put(p);
	}
	json_object_put(ctr);
}

TEST(pods_conditions_keep_transition_time)
{
	struct json_object *c = json_object_new_array();
	struct json_object *x;

	ASSERT_TRUE(pods_cond_set(c, "Ready", false, "ContainersNotReady", "T1"), "added");
	ASSERT_FALSE(pods_cond_set(c, "Ready", false, "ContainersNotReady", "T2"), "no change");
	x = json_object_array_get_idx(c, 0);
	ASSERT_STREQ(sl_json_get_str(x, "lastTransitionTime"), "T1", "time kept");
	ASSERT_TRUE(pods_cond_set(c, "Ready", true, NULL, "T3"), "flip");
	ASSERT_STREQ(sl_json_get_str(x, "status"), "True", "status");
	ASSERT_STREQ(sl_json_get_str(x, "lastTransitionTime"), "T3", "time moved");
	ASSERT_NULL(sl_json_get(x, "reason"), "reason dropped");
	ASSERT_TRUE(pods_cond_set(c, "PodScheduled", true, NULL, "T4"), "second type");
	ASSERT_EQ(json_object_array_length(c), 2, "two conditions");
	json_object_put(c);
}

TEST(pods_restart_policy_and_backoff)
{
	ASSERT_TRUE(pods_should_restart(NULL, 0), "default Always");
	ASSERT_TRUE(pods_should_restart("Always", 0), "Always on success");
	ASSERT_TRUE(pods_should_restart("OnFailure", 1), "OnFailure on failure");
	ASSERT_FALSE(pods_should_restart("OnFailure", 0), "OnFailure on success");
	ASSERT_FALSE(pods_should_restart("Never", 1), "Never");
	ASSERT_EQ(pods_backoff_s(1), 0, "first restart at once");
	ASSERT_EQ(pods_backoff_s(2), 10, "then 10 s");
	ASSERT_EQ(pods_backoff_s(3), 20, "doubling");
	ASSERT_EQ(pods_backoff_s(4), 40, "doubling");
	ASSERT_EQ(pods_backoff_s(30), 300, "capped at 5 min");
}

TEST(pods_cni_plugin_conf_injects_and_chains)
{
	struct json_object *list = J("{\"cniVersion\":\"1.0.0\",\"name\":\"net\",\"plugins\":["
				     "{\"type\":\"a\",\"x\":1},{\"type\":\"b\"}]}");
	struct json_object *prev =
		J("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.64.9/24\"}]}");
	struct json_object *c0 = cni_plugin_conf(list, 0, NULL);
	struct json_object *c1 = cni_plugin_conf(list, 1, prev);
	char ip[64];

	ASSERT_STREQ(sl_json_get_str(c0, "name"), "net", "name injected");
	ASSERT_STREQ(sl_json_get_str(c0, "cniVersion"), "1.0.0", "version injected");
	ASSERT_NULL(sl_json_get(c0, "prevResult"), "no prevResult on the first");
	ASSERT_NOT_NULL(sl_json_get(c1, "prevResult"), "prevResult chained");
	ASSERT_NULL(cni_plugin_conf(list, 2, NULL), "out of range");
	ASSERT_OK(cni_result_ipv4(prev, ip, sizeof(ip)), "result ip");
	ASSERT_STREQ(ip, "198.18.64.9", "prefix stripped");
	ASSERT_EQ(cni_result_ipv4(list, ip, sizeof(ip)), -ENOENT, "no ips");
	json_object_put(c0);
	json_object_put(c1);
	json_object_put(list);
	json_object_put(prev);
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

TEST(pods_cni_conflist_load)
{
	char dir[] = "/tmp/sl-test-pods-XXXXXX", path[512], err[512];
	struct json_object *o;

	if (!ASSERT_NOT_NULL(mkdtemp(dir), "mkdtemp"))
		return;
	o = cni_conflist_load(dir, path, sizeof(path), err, sizeof(err));
	ASSERT_NULL(o, "empty dir");
	ASSERT_EQ(errno, ENOENT, "ENOENT");
	ASSERT_TRUE(strstr(err, "no network config") != NULL, err);
	put_file(dir, "README", "not a config");
	put_file(dir, "20-b.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"b\",\"type\":\"bridge\"}");
	o = cni_conflist_load(dir, path, sizeof(path), err, sizeof(err));
	if (ASSERT_NOT_NULL(o, err)) {
		ASSERT_STREQ(sl_json_get_str(o, "name"), "b", "single conf wrapped");
		ASSERT_EQ(json_object_array_length(sl_json_get(o, "plugins")), 1, "one plugin");
		json_object_put(o);
	}
	put_file(dir, "10-a.conflist",
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"plugins\":[{\"type\":\"sluice-cni\"}]"
		 "}");
	o = cni_conflist_load(dir, path, sizeof(path), err, sizeof(err));
	ASSERT_STREQ(sl_json_get_str(o, "name"), "a", "first by name");
	json_object_put(o);
	put_file(dir, "05-bad.conflist", "{\"name\":\"x\",\"plugins\":[{\"type\":\"../evil\"}]}");
	o = cni_conflist_load(dir, path, sizeof(path), err, sizeof(err));
	ASSERT_NULL(o, "invalid first file");
	ASSERT_EQ(errno, EINVAL, "EINVAL");
	ASSERT_TRUE(strstr(err, "05-bad.conflist") != NULL, err);
	for (const char *n = "05-bad.conflist"; n; n = NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, n);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/10-a.conflist", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/20-b.conf", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/README", dir);
	unlink(path);
	rmdir(dir);
}

TEST(pods_phase_like_kubelet)
{
	struct pods_ctr_phase run = {.state = PODS_CTR_RUNNING};
	struct pods_ctr_phase ok = {.state = PODS_CTR_TERMINATED, .exit_code = 0};
	struct pods_ctr_phase bad = {.state = PODS_CTR_TERMINATED, .exit_code = 2};
	struct pods_ctr_phase backoff = {.state = PODS_CTR_WAITING, .restarting = true};
	struct pods_ctr_phase creating = {.state = PODS_CTR_WAITING};
	struct pods_ctr_phase v[2];

	ASSERT_STREQ(pods_phase(false, &run, 1), "Pending", "no sandbox yet");
	ASSERT_STREQ(pods_phase(true, &creating, 1), "Pending", "not started");
	ASSERT_STREQ(pods_phase(true, &run, 1), "Running", "running");
	ASSERT_STREQ(pods_phase(true, &backoff, 1), "Running", "crash-looping is Running");
	ASSERT_STREQ(pods_phase(true, &ok, 1), "Succeeded", "completed");
	ASSERT_STREQ(pods_phase(true, &bad, 1), "Failed", "failed");
	v[0] = ok;
	v[1] = run;
	ASSERT_STREQ(pods_phase(true, v, 2), "Running", "one still running");
	v[1] = bad;
	ASSERT_STREQ(pods_phase(true, v, 2), "Failed", "one failed, all done");
	ASSERT_STREQ(pods_phase(true, NULL, 0), "Pending", "no containers");
}
