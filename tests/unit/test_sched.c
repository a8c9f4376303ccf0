// SPDX-License-Identifier: Apache-2.0
/* control/sched_core.c: the scheduler's digests, filters, scores, choice and message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/sched.h"
#include "harness.h"
#include "sluice/json.h"

static bool pod_json(struct sched_pod *p, const char *js)
{
	char err[256];
	struct json_object *j = sl_json_parse(js, strlen(js), err, sizeof(err));
	int rc;

	if (!j) {
		fprintf(stderr, "  pod json: %s: %s\n", err, js);
		memset(p, 0, sizeof(*p));
		return false;
	}
	rc = sched_pod_parse(j, p, err, sizeof(err));
	json_object_put(j);
	if (rc)
		fprintf(stderr, "  pod parse: %s\n", err);
	return rc == 0;
}

/* A pod from its requests and the members of its spec (after "containers") and metadata. */
static bool pod_mk(struct sched_pod *p, const char *cpu, const char *mem, const char *spec_extra,
		   const char *meta_extra)
{
	char buf[4096], req[128] = "";

	if (cpu)
		snprintf(req, sizeof(req), "\"cpu\":\"%s\"", cpu);
	if (mem)
		snprintf(req + strlen(req), sizeof(req) - strlen(req), "%s\"memory\":\"%s\"",
			 cpu ? "," : "", mem);
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"u\","
		 "\"labels\":{\"app\":\"web\"}%s},\"spec\":{\"containers\":[{\"name\":\"c\","
		 "\"resources\":{\"requests\":{%s}}}]%s}}",
		 meta_extra ? meta_extra : "", req, spec_extra ? spec_extra : "");
	return pod_json(p, buf);
}

static bool node_mk(struct sched_node *n, const char *name, const char *cpu, const char *mem,
		    const char *labels, const char *spec, bool ready)
{
	char buf[4096], err[256];
	struct json_object *j;
	int rc;

	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"%s\",\"labels\":{%s}},\"spec\":{%s},\"status\":{"
		 "\"allocatable\":{\"cpu\":\"%s\",\"memory\":\"%s\",\"pods\":\"3\"},"
		 "\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}]}}",
		 name, labels ? labels : "", spec ? spec : "", cpu, mem, ready ? "True" : "False");
	j = sl_json_parse(buf, strlen(buf), err, sizeof(err));
	if (!j) {
		fprintf(stderr, "  node json: %s: %s\n", err, buf);
		return false;
	}
	rc = sched_node_parse(j, n, err, sizeof(err));
	json_object_put(j);
	if (rc)
		fprintf(stderr, "  node parse: %s\n", err);
	return rc == 0;
}

TEST(sched_pod_digest)
{
	struct sched_pod p;
	char err[256];
	struct json_object *j;
	const char *js =
		"{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"ownerReferences\":[{\"uid\":"
		"\"rs1\",\"controller\":true}]},\"spec\":{\"containers\":[{\"resources\":{"
		"\"requests\":{\"cpu\":\"250m\",\"memory\":\"64Mi\"}},\"ports\":[{"
		"\"containerPort\":"
		"80,\"hostPort\":8080}]},{\"resources\":{\"requests\":{\"cpu\":1}}}],"
		"\"initContainers\":[{\"resources\":{\"requests\":{\"cpu\":\"2\",\"memory\":"
		"\"1Mi\"}}}"
		"]}}";

	ASSERT_TRUE(pod_mk(&p, "100m", "1Gi", NULL, NULL), "simple pod");
	ASSERT_EQ(p.cpu_m, 100, "cpu 100m");
	ASSERT_EQ(p.mem, 1024LL * 1024 * 1024, "memory 1Gi");
	ASSERT_TRUE(p.owner != 0, "labels give an owner");
	ASSERT_NULL(p.node, "unscheduled");
	sched_pod_fini(&p);

	j = sl_json_parse(js, strlen(js), NULL, 0);
	ASSERT_OK(sched_pod_parse(j, &p, err, sizeof(err)), "parse");
	/* containers: 250m + 1 = 1250m, 64Mi; init: 2 CPU, 1Mi: max per resource */
	ASSERT_EQ(p.cpu_m, 2000, "cpu: the init container's 2 is larger than 1250m");
	ASSERT_EQ(p.mem, 64LL * 1024 * 1024, "memory: containers' 64Mi");
	ASSERT_EQ(p.n_ports, 1, "one host port");
	ASSERT_EQ(p.ports[0].port, 8080, "hostPort");
	ASSERT_STREQ(p.ports[0].proto, "TCP", "default protocol");
	{
		struct sched_pod q;
		const char *js2 = "{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns\","
				  "\"ownerReferences\":[{\"uid\":\"rs1\",\"controller\":true}]},"
				  "\"spec\":{}}";
		struct json_object *j2 = sl_json_parse(js2, strlen(js2), NULL, 0);
		ASSERT_OK(sched_pod_parse(j2, &q, err, sizeof(err)), "parse b");
		ASSERT_EQ(q.owner, p.owner, "same controller uid, same owner");
		sched_pod_fini(&q);
		json_object_put(j2);
	}
	sched_pod_fini(&p);
	json_object_put(j);
}

TEST(sched_parse_errors)
{
	static const struct {
		const char *json, *want;
	} rows[] = {
		{"{\"metadata\":{\"name\":\"a\"},\"spec\":{\"containers\":[{\"resources\":{"
		 "\"requests\":{\"cpu\":\"lots\"}}}]}}",
		 "resources.requests.cpu 'lots'"},
		{"{\"metadata\":{\"name\":\"a\"},\"spec\":{\"affinity\":{\"nodeAffinity\":{"
		 "\"requiredDuringSchedulingIgnoredDuringExecution\":{\"nodeSelectorTerms\":[{"
		 "\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"Near\"}]}]}}}}}",
		 "operator 'Near'"},
		{"{\"metadata\":{\"name\":\"a\"},\"spec\":{\"affinity\":{\"nodeAffinity\":{"
		 "\"requiredDuringSchedulingIgnoredDuringExecution\":{\"nodeSelectorTerms\":[{"
		 "\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"Gt\",\"values\":[\"x\"]}]}]}}"
		 "}"
		 "}}",
		 "exactly one integer"},
		{"{\"metadata\":{\"name\":\"a\"},\"spec\":{\"topologySpreadConstraints\":[{"
		 "\"maxSkew\":0,\"topologyKey\":\"kubernetes.io/hostname\"}]}}",
		 "maxSkew"},
		{"{\"spec\":{}}", "metadata.name"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct json_object *j = sl_json_parse(rows[i].json, strlen(rows[i].json), NULL, 0);
		struct sched_pod p;
		char err[256] = "";
		ASSERT_EQ(sched_pod_parse(j, &p, err, sizeof(err)), -EINVAL, rows[i].want);
		ASSERT_TRUE(strstr(err, rows[i].want) != NULL, rows[i].want);
		sched_pod_fini(&p);
		json_object_put(j);
	}
	{
		const char *js = "{\"metadata\":{\"name\":\"n\"},\"status\":{\"allocatable\":{"
				 "\"memory\":\"1 Gi\"}}}";
		struct json_object *j = sl_json_parse(js, strlen(js), NULL, 0);
		struct sched_node n;
		char err[256] = "";
		ASSERT_EQ(sched_node_parse(j, &n, err, sizeof(err)), -EINVAL, "node memory");
		ASSERT_TRUE(strstr(err, "status.allocatable.memory '1 Gi'") != NULL, "names it");
		sched_node_fini(&n);
		json_object_put(j);
	}
}

/* ToleratesTaint, upstream's table. */
TEST(sched_toleration_truth_table)
{
	static const struct {
		const char *tkey, *top, *tval, *teff; /* toleration */
		const char *key, *val, *eff;	      /* taint */
		bool want;
	} rows[] = {
		{"k", "Equal", "v", "NoSchedule", "k", "v", "NoSchedule", true},
		{"k", "Equal", "v", "NoSchedule", "k", "w", "NoSchedule", false},
		{"k", NULL, "v", NULL, "k", "v", "NoExecute", true}, /* empty effect: all */
		{"k", "Exists", NULL, NULL, "k", "anything", "NoSchedule", true},
		{"k", "Exists", NULL, "NoExecute", "k", "x", "NoSchedule", false},
		{NULL, "Exists", NULL, NULL, "any", "x", "NoExecute", true}, /* tolerate all */
		{"j", "Exists", NULL, NULL, "k", "x", "NoSchedule", false},
		{"k", "Equal", NULL, NULL, "k", NULL, "NoSchedule", true}, /* "" == "" */
		{"k", "Equal", "", NULL, "k", "v", "NoSchedule", false},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sched_tol t = {(char *)rows[i].tkey, (char *)rows[i].top,
				      (char *)rows[i].tval, (char *)rows[i].teff};
		struct sched_pod p = {.tols = &t, .n_tols = 1};
		struct sched_taint tn = {(char *)rows[i].key, (char *)rows[i].val,
					 (char *)rows[i].eff};
		char name[64];
		snprintf(name, sizeof(name), "row %zu", i);
		ASSERT_EQ(sched_tolerates(&p, &tn), rows[i].want, name);
	}
}

/* NodeSelectorRequirement operators against a node labelled gen=5 (or without gen). */
TEST(sched_affinity_truth_table)
{
	static const struct { /* NOLINT(clang-analyzer-optin.performance.Padding): a table */
		enum sched_op op;
		const char *v1, *v2;
		bool labelled, want;
	} rows[] = {
		{SCHED_OP_IN, "5", "6", true, true},
		{SCHED_OP_IN, "6", NULL, true, false},
		{SCHED_OP_IN, "5", NULL, false, false},
		{SCHED_OP_NOTIN, "6", NULL, true, true},
		{SCHED_OP_NOTIN, "5", NULL, true, false},
		{SCHED_OP_NOTIN, "5", NULL, false, true},
		{SCHED_OP_EXISTS, NULL, NULL, true, true},
		{SCHED_OP_EXISTS, NULL, NULL, false, false},
		{SCHED_OP_NOTEXISTS, NULL, NULL, true, false},
		{SCHED_OP_NOTEXISTS, NULL, NULL, false, true},
		{SCHED_OP_GT, "4", NULL, true, true},
		{SCHED_OP_GT, "5", NULL, true, false},
		{SCHED_OP_GT, "4", NULL, false, false},
		{SCHED_OP_LT, "6", NULL, true, true},
		{SCHED_OP_LT, "5", NULL, true, false},
	};
	struct sl_label with[] = {{"gen", "5"}, {"zone", "a"}}, without[] = {{"zone", "a"}};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *vals[2] = {(char *)rows[i].v1, (char *)rows[i].v2};
		struct sched_expr e = {.key = "gen",
				       .op = rows[i].op,
				       .vals = vals,
				       .n_vals = rows[i].v2   ? 2
						 : rows[i].v1 ? 1
							      : 0};
		struct sched_term t = {.e = &e, .n = 1};
		struct sched_node n = {.name = "n1",
				       .labels = rows[i].labelled ? with : without,
				       .n_labels = rows[i].labelled ? 2 : 1};
		char name[64];
		snprintf(name, sizeof(name), "row %zu", i);
		ASSERT_EQ(sched_term_match(&t, &n), rows[i].want, name);
	}
	{
		/* matchFields metadata.name, and the empty term that matches nothing */
		char *vals[1] = {"n1"};
		struct sched_expr e = {.key = "metadata.name",
				       .op = SCHED_OP_IN,
				       .vals = vals,
				       .n_vals = 1,
				       .field = true};
		struct sched_term t = {.e = &e, .n = 1}, empty = {0};
		struct sched_node n = {.name = "n1"};
		ASSERT_TRUE(sched_term_match(&t, &n), "matchFields name");
		ASSERT_FALSE(sched_term_match(&empty, &n), "empty term");
	}
}

TEST(sched_filter_reasons)
{
	struct sched_node n;
	struct sched_pod p;
	struct sched_fit fit;

	ASSERT_TRUE(node_mk(&n, "n1", "1", "1Gi", "\"disk\":\"ssd\"", NULL, true), "node");
	ASSERT_TRUE(pod_mk(&p, "500m", "300Mi", NULL, NULL), "pod");
	ASSERT_EQ(sched_filter(&p, &n, &fit), 0, "fits");
	sched_node_account(&n, &p, 1);
	ASSERT_EQ(sched_filter(&p, &n, &fit), 0, "second fits exactly (1000m)");
	sched_node_account(&n, &p, 1);
	ASSERT_EQ(sched_filter(&p, &n, &fit), SCHED_R_CPU, "third: Insufficient cpu");
	sched_node_account(&n, &p, 1);
	ASSERT_EQ(sched_filter(&p, &n, &fit), SCHED_R_CPU | SCHED_R_MEM | SCHED_R_PODS,
		  "fourth: cpu, memory and pods (3) at once");
	sched_node_account(&n, &p, -1);
	sched_node_account(&n, &p, -1);
	sched_node_account(&n, &p, -1);
	ASSERT_EQ(n.used_cpu_m, 0, "accounting returns to zero");
	ASSERT_EQ(n.used_pods, 0, "pods back to zero");
	sched_pod_fini(&p);
	sched_node_fini(&n);

	ASSERT_TRUE(node_mk(&n, "n1", "4", "4Gi", NULL, NULL, false), "not ready");
	ASSERT_TRUE(pod_mk(&p, NULL, NULL, NULL, NULL), "pod");
	ASSERT_EQ(sched_filter(&p, &n, &fit), SCHED_R_NOT_READY, "not ready");
	sched_node_fini(&n);
	ASSERT_TRUE(node_mk(&n, "n1", "4", "4Gi", NULL, "\"unschedulable\":true", true), "cordon");
	ASSERT_EQ(sched_filter(&p, &n, &fit), SCHED_R_UNSCHEDULABLE, "cordoned");
	sched_node_fini(&n);
	ASSERT_TRUE(node_mk(&n, "n1", "4", "4Gi", NULL,
			    "\"taints\":[{\"key\":\"node.kubernetes.io/unreachable\","
			    "\"effect\":\"NoExecute\"},{\"key\":\"soft\",\"effect\":"
			    "\"PreferNoSchedule\"}]",
			    true),
		    "tainted");
	ASSERT_EQ(sched_filter(&p, &n, &fit), SCHED_R_TAINT, "unreachable taint");
	ASSERT_STREQ(fit.taint, "{node.kubernetes.io/unreachable: }", "taint text");
	sched_pod_fini(&p);
	ASSERT_TRUE(pod_mk(&p, NULL, NULL,
			   ",\"tolerations\":[{\"key\":\"node.kubernetes.io/unreachable\","
			   "\"operator\":\"Exists\",\"effect\":\"NoExecute\"}]",
			   NULL),
		    "tolerating pod");
	ASSERT_EQ(sched_filter(&p, &n, &fit), 0, "tolerated; PreferNoSchedule never filters");
	sched_pod_fini(&p);
	sched_node_fini(&n);

	ASSERT_TRUE(node_mk(&n, "n1", "4", "4Gi", "\"disk\":\"hdd\"", NULL, true), "hdd");
	ASSERT_TRUE(pod_mk(&p, NULL, NULL, ",\"nodeSelector\":{\"disk\":\"ssd\"}", NULL), "sel");
	ASSERT_EQ(sched_filter(&p, &n, &fit), SCHED_R_AFFINITY, "nodeSelector");
	sched_pod_fini(&p);
	ASSERT_TRUE(pod_json(&p, "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"containers\":[{"
				 "\"ports\":[{\"hostPort\":53,\"protocol\":\"UDP\"}]}]}}"),
		    "port pod");
	ASSERT_EQ(sched_filter(&p, &n, &fit), 0, "port free");
	sched_node_account(&n, &p, 1);
	ASSERT_EQ(sched_filter(&p, &n, &fit), SCHED_R_PORTS, "port taken");
	sched_node_account(&n, &p, -1);
	ASSERT_EQ(sched_filter(&p, &n, &fit), 0, "port free again");
	sched_pod_fini(&p);
	sched_node_fini(&n);
}

TEST(sched_message_building)
{
	static const struct {
		unsigned r[4];
		size_t n;
		const char *want;
	} rows[] = {
		{{SCHED_R_CPU, SCHED_R_CPU, SCHED_R_TAINT},
		 3,
		 "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 "
		 "Insufficient cpu."},
		{{SCHED_R_CPU | SCHED_R_MEM, SCHED_R_MEM},
		 2,
		 "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory."},
		{{SCHED_R_UNSCHEDULABLE, SCHED_R_AFFINITY, SCHED_R_AFFINITY, SCHED_R_PORTS},
		 4,
		 "0/4 nodes are available: 1 node(s) didn't have free ports for the requested pod "
		 "ports, 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node "
		 "affinity/selector."},
		{{SCHED_R_SPREAD, SCHED_R_NOT_READY},
		 2,
		 "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, "
		 "1 node(s) were not ready."},
		{{0}, 0, "0/0 nodes are available."},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sched_fit f[4] = {0};
		char buf[512];
		for (size_t k = 0; k < rows[i].n; k++) {
			f[k].reasons = rows[i].r[k];
			if (f[k].reasons & SCHED_R_TAINT)
				strcpy(f[k].taint, "{dedicated: db}");
		}
		sched_fit_message(f, rows[i].n, buf, sizeof(buf));
		ASSERT_STREQ(buf, rows[i].want, rows[i].want);
	}
	{
		struct sched_fit f[1] = {{.reasons = SCHED_R_CPU}};
		char small[16];
		size_t len = sched_fit_message(f, 1, small, sizeof(small));
		ASSERT_EQ(len, strlen(small), "truncated length");
		ASSERT_EQ(len, sizeof(small) - 1, "fills the buffer");
	}
}

TEST(sched_scores)
{
	struct sched_node n;
	struct sched_pod p;

	ASSERT_TRUE(node_mk(&n, "n1", "4", "8Gi", NULL, NULL, true), "node");
	ASSERT_TRUE(pod_mk(&p, "1", "2Gi", NULL, NULL), "pod");
	/* empty node: (3/4 cpu free, 6/8 memory free) = 75 */
	ASSERT_EQ(sched_score_least_allocated(&p, &n), 75, "least allocated, empty");
	ASSERT_EQ(sched_score_balanced(&p, &n), 100, "balanced: 25% and 25%");
	sched_node_account(&n, &p, 1);
	ASSERT_EQ(sched_score_least_allocated(&p, &n), 50, "least allocated, half used");
	sched_pod_fini(&p);
	ASSERT_TRUE(pod_mk(&p, "2", NULL, NULL, NULL), "cpu-only pod");
	/* cpu (1+2)/4 = 75%, memory 2Gi/8Gi = 25%: 100 * (1 - 0.5/2) = 75 */
	ASSERT_EQ(sched_score_balanced(&p, &n), 75, "balanced: 75% vs 25%");
	sched_pod_fini(&p);
	sched_node_fini(&n);
}

static void nodes3(struct sched_node *n, struct sched_node **v)
{
	node_mk(&n[0], "n0", "4", "8Gi", "\"disk\":\"hdd\"", NULL, true);
	node_mk(&n[1], "n1", "4", "8Gi", "\"disk\":\"ssd\"", NULL, true);
	node_mk(&n[2], "n2", "4", "8Gi", "\"disk\":\"ssd\"", NULL, true);
	for (int i = 0; i < 3; i++)
		v[i] = &n[i];
}

TEST(sched_tie_break_round_robin)
{
	struct sched_node n[3], *v[3];
	struct sched_fit fits[3];
	struct sched_pod p;
	uint32_t rr = 0;
	int got[6];

	nodes3(n, v);
	ASSERT_TRUE(pod_mk(&p, "100m", NULL, NULL, "") && (p.owner = 0, true), "pod, no owner");
	for (int i = 0; i < 6; i++)
		got[i] = sched_select(&p, v, 3, NULL, NULL, &rr, fits, NULL);
	/* equal nodes, nothing accounted: each decision takes the next one */
	ASSERT_EQ(got[0], 0, "first");
	ASSERT_EQ(got[1], 1, "second");
	ASSERT_EQ(got[2], 2, "third");
	ASSERT_EQ(got[3], 0, "wraps");
	sched_pod_fini(&p);
	for (int i = 0; i < 3; i++)
		sched_node_fini(&n[i]);
}

TEST(sched_spread_and_affinity_scores)
{
	struct sched_node n[3], *v[3];
	struct sched_fit fits[3];
	int64_t sc[3];
	struct sched_pod p;
	uint32_t rr = 0;
	int32_t owner[3] = {2, 0, 1};

	nodes3(n, v);
	ASSERT_TRUE(pod_mk(&p, "100m", NULL, NULL, NULL), "pod");
	ASSERT_EQ(sched_select(&p, v, 3, owner, NULL, &rr, fits, sc), 1,
		  "fewest pods of the owner");
	ASSERT_TRUE(sc[1] > sc[2] && sc[2] > sc[0], "spread orders the scores");
	sched_pod_fini(&p);

	ASSERT_TRUE(pod_mk(&p, "100m", NULL,
			   ",\"affinity\":{\"nodeAffinity\":{\"preferredDuringSchedulingIgnored"
			   "DuringExecution\":[{\"weight\":10,\"preference\":{\"matchExpressions"
			   "\":[{\"key\":\"disk\",\"operator\":\"In\",\"values\":[\"hdd\"]}]}}]}}",
			   NULL),
		    "preferring hdd");
	p.owner = 0;
	ASSERT_EQ(sched_select(&p, v, 3, NULL, NULL, &rr, fits, sc), 0, "preferred affinity");
	sched_pod_fini(&p);

	ASSERT_TRUE(pod_mk(&p, "100m", NULL,
			   ",\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnored"
			   "DuringExecution\":{\"nodeSelectorTerms\":[{\"matchExpressions\":[{"
			   "\"key\":\"disk\",\"operator\":\"In\",\"values\":[\"nvme\"]}]},{"
			   "\"matchFields\":[{\"key\":\"metadata.name\",\"operator\":\"In\","
			   "\"values\":[\"n2\"]}]}]}}}",
			   NULL),
		    "required: nvme or n2 (terms ORed)");
	ASSERT_EQ(sched_select(&p, v, 3, NULL, NULL, &rr, fits, sc), 2, "second term matches");
	ASSERT_EQ(fits[0].reasons, SCHED_R_AFFINITY, "n0 rejected");
	ASSERT_EQ(sc[0], -1, "rejected node has no score");
	sched_pod_fini(&p);
	for (int i = 0; i < 3; i++)
		sched_node_fini(&n[i]);
}

#define TSC_FMT                                                           \
	",\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":" \
	"\"kubernetes.io/hostname\",\"whenUnsatisfiable\":\"%s\","        \
	"\"labelSelector\":{\"matchLabels\":{\"app\":\"web\"}}}]%s"

TEST(sched_topology_spread)
{
	struct sched_node n[3], *v[3];
	struct sched_fit fits[3];
	struct sched_pod p;
	uint32_t rr = 0;
	int32_t cnt[3] = {2, 1, 1};
	char spec[512];
	char msg[256];

	nodes3(n, v);
	snprintf(spec, sizeof(spec), TSC_FMT, "DoNotSchedule", "");
	ASSERT_TRUE(pod_mk(&p, NULL, NULL, spec, NULL), "hard constraint");
	ASSERT_EQ(p.n_tscs, 1, "parsed");
	ASSERT_TRUE(p.n_tscs >= 1 && p.tscs[0].self, "the pod matches its own selector");
	ASSERT_TRUE(sched_select(&p, v, 3, NULL, cnt, &rr, fits, NULL) != 0, "not n0");
	ASSERT_EQ(fits[0].reasons, SCHED_R_SPREAD, "n0: 2+1-1 > 1");
	sched_pod_fini(&p);

	/* only n0 is allowed by the selector: the skew domain is n0 alone, so it fits */
	snprintf(spec, sizeof(spec), TSC_FMT, "DoNotSchedule",
		 ",\"nodeSelector\":{\"disk\":\"hdd\"}");
	ASSERT_TRUE(pod_mk(&p, NULL, NULL, spec, NULL), "hard + selector");
	ASSERT_EQ(sched_select(&p, v, 3, NULL, cnt, &rr, fits, NULL), 0, "n0 is its own min");
	sched_pod_fini(&p);

	/* every node over the skew: the message names the constraint */
	{
		int32_t c2[3] = {3, 3, 1};
		struct sched_node *v2[2] = {v[0], v[1]};
		snprintf(spec, sizeof(spec), TSC_FMT, "DoNotSchedule", "");
		ASSERT_TRUE(pod_mk(&p, NULL, NULL, spec, NULL), "hard");
		/* two nodes with counts 3 and 3 plus ... a third with 1 outside the view */
		ASSERT_EQ(sched_select(&p, v2, 2, NULL, c2, &rr, fits, NULL), 0,
			  "3,3: skew 1 fits anywhere");
		c2[1] = 1;
		ASSERT_EQ(sched_select(&p, v2, 2, NULL, c2, &rr, fits, NULL), 1, "3,1: only n1");
		sched_fit_message(fits, 2, msg, sizeof(msg));
		sched_pod_fini(&p);
	}

	snprintf(spec, sizeof(spec), TSC_FMT, "ScheduleAnyway", "");
	ASSERT_TRUE(pod_mk(&p, NULL, NULL, spec, NULL) && (p.owner = 0, true), "soft");
	{
		int32_t c3[3] = {5, 0, 5};
		ASSERT_EQ(sched_select(&p, v, 3, NULL, c3, &rr, fits, NULL), 1,
			  "soft: the emptiest node scores best");
		ASSERT_EQ(fits[0].reasons, 0, "soft never filters");
	}
	sched_pod_fini(&p);
	for (int i = 0; i < 3; i++)
		sched_node_fini(&n[i]);
}

/* The assume cache: decisions account at once, so a burst never overcommits. */
TEST(sched_burst_does_not_overcommit)
{
	struct sched_node n[2], *v[2];
	struct sched_fit fits[2];
	struct sched_pod p;
	uint32_t rr = 0;
	int placed = 0, idx;
	char msg[256];

	node_mk(&n[0], "a", "1", "8Gi", NULL, NULL, true);
	node_mk(&n[1], "b", "1", "8Gi", NULL, NULL, true);
	v[0] = &n[0];
	v[1] = &n[1];
	ASSERT_TRUE(pod_mk(&p, "600m", NULL, NULL, NULL), "pod");
	for (int i = 0; i < 3; i++) {
		idx = sched_select(&p, v, 2, NULL, NULL, &rr, fits, NULL);
		if (idx < 0)
			break;
		sched_node_account(v[idx], &p, 1);
		placed++;
	}
	ASSERT_EQ(placed, 2, "two 600m pods on two 1-CPU nodes, not three");
	ASSERT_TRUE(n[0].used_cpu_m == 600 && n[1].used_cpu_m == 600, "one each");
	sched_fit_message(fits, 2, msg, sizeof(msg));
	ASSERT_STREQ(msg, "0/2 nodes are available: 2 Insufficient cpu.", "message");
	sched_pod_fini(&p);
	sched_node_fini(&n[0]);
	sched_node_fini(&n[1]);
}

/* The latency histograms behind the scheduler's own p50/p99 (sched_stats). */
TEST(sched_latency_quantiles)
{
	struct sched_lat *h = calloc(1, sizeof(*h));
	uint64_t q;

	ASSERT_NOT_NULL(h, "alloc");
	ASSERT_EQ(sched_lat_quantile(h, 0.99), 0, "empty");
	/* 1..10000 us once each: p50 = 5000, p99 = 9900, within the 1/16 bucket width */
	for (uint64_t us = 1; us <= 10000; us++)
		sched_lat_add(h, us);
	ASSERT_EQ(h->n, 10000, "count");
	ASSERT_EQ(h->max_us, 10000, "max");
	q = sched_lat_quantile(h, 0.50);
	ASSERT_TRUE(q >= 5000 && q <= 5000 + 5000 / 16 + 1, "p50 within a bucket above 5000 us");
	q = sched_lat_quantile(h, 0.99);
	ASSERT_TRUE(q >= 9900 && q <= 10000, "p99 within a bucket above 9900 us, not over max");
	ASSERT_EQ(sched_lat_quantile(h, 1.0), 10000, "p100 is the max");
	/* small values are exact */
	memset(h, 0, sizeof(*h));
	for (int i = 0; i < 99; i++)
		sched_lat_add(h, 3);
	sched_lat_add(h, 7);
	ASSERT_EQ(sched_lat_quantile(h, 0.99), 3, "99 of 100 at 3 us");
	ASSERT_EQ(sched_lat_quantile(h, 0.995), 7, "the last one");
	/* one pathological sample far out lands in the last bucket, reported as itself */
	memset(h, 0, sizeof(*h));
	sched_lat_add(h, 1);
	sched_lat_add(h, UINT64_C(1) << 50);
	ASSERT_EQ(sched_lat_quantile(h, 1.0), UINT64_C(1) << 50, "clamped bucket, exact max");
	/* every bucket boundary is monotonic: a larger sample never ranks below a smaller one */
	for (uint64_t us = 1; us < (UINT64_C(1) << 34); us = us * 3 / 2 + 1) {
		memset(h, 0, sizeof(*h));
		sched_lat_add(h, us);
		q = sched_lat_quantile(h, 0.5);
		if (!ASSERT_TRUE(q == us, "a single sample is its own quantile"))
			break;
	}
	free(h);
}
