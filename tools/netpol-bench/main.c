// SPDX-License-Identifier: Apache-2.0
/*
 * netpol-bench: what compiling NetworkPolicy costs (libnetpol, no kernel).
 *
 *   netpol-bench [--pods 1000] [--policies 1000] [--namespaces 10]
 *                [--replicas 4] [--nodes 10] [--runs 5]
 *
 * Builds a synthetic cluster: `namespaces` namespaces (labels team, env),
 * pods in workloads of `replicas` pods with equal labels and named ports,
 * and policies of five shapes spread over the workloads (same-namespace
 * podSelector + named port; namespaceSelector AND podSelector In + port
 * range; ipBlock with except + all-namespaces DNS; egress to a workload's
 * named port + DNS to kube-system; ingress from env=prod namespaces).
 *
 * Per run (fresh context each time) it times loading the objects and the
 * full compile, then three incremental changes: one pod relabelled (it
 * joins another workload), one namespace's labels flipped, one policy
 * edited; then what one node's agent would load (np_set_node). Prints the medians, the map entries
 * and bytes the datapath would load, the peak RSS, the machine, and the command to repeat it. The
 * last line is key=value pairs for tools/bench.
 *
 * Exit 1 when a compile fails or any rule set failed closed: a benchmark
 * with errors measures the wrong thing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "netpol.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

static int opt_pods = 1000, opt_policies = 1000, opt_ns = 10, opt_replicas = 4, opt_runs = 5,
	   opt_nodes = 10;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Workloads per namespace; pod i belongs to workload (i / ns) / replicas. */
static int apps_per_ns(void)
{
	int per_ns = (opt_pods + opt_ns - 1) / opt_ns;

	return (per_ns + opt_replicas - 1) / opt_replicas;
}

static int add_pod(struct np_ctx *c, int i, const char *app_override)
{
	char ns[16], name[32], app[16], ip[32], err[256], node[24];
	static const char *const roles[] = {"web", "api", "db"};
	int w = (i / opt_ns) / opt_replicas;
	struct sl_label l[3];
	struct np_port ports[2] = {{"http", 6, 8080}, {"metrics", 6, 9090}};
	const char *ips[1] = {ip};
	struct np_pod_spec s = {.ns = ns, .name = name, .node = node};
	int ret;

	snprintf(ns, sizeof(ns), "ns%d", i % opt_ns);
	snprintf(name, sizeof(name), "pod-%d", i);
	/* A workload's replicas land on consecutive nodes; every node gets
	 * pods of every namespace. */
	snprintf(node, sizeof(node), "node-%d", (i / opt_ns) % opt_nodes);
	snprintf(app, sizeof(app), "app%d", w);
	/* 198.18.0.0/15 holds 131k addresses; skip .0 of each /24. */
	snprintf(ip, sizeof(ip), "198.%d.%d.%d", 18 + (i / 65025) % 2, (i / 255) % 255,
		 i % 255 + 1);
	l[0] = (struct sl_label){"app", app_override ? app_override : app};
	l[1] = (struct sl_label){"role", roles[w % 3]};
	l[2] = (struct sl_label){"pod-template-hash", "5d8f7c9b4"};
	s.labels = l;
	s.n_labels = 3;
	s.ips = ips;
	s.n_ips = 1;
	/* Every third workload serves http on another number. */
	if (w % 3 == 2)
		ports[0].port = 8081;
	s.ports = ports;
	s.n_ports = 2;
	ret = np_pod_set(c, &s, err, sizeof(err));
	if (ret)
		fprintf(stderr, "netpol-bench: %s\n", err);
	return ret;
}

static int add_ns(struct np_ctx *c, int i, bool flip)
{
	char name[16], team[8];
	struct sl_label l[2];

	snprintf(name, sizeof(name), "ns%d", i);
	snprintf(team, sizeof(team), "t%d", i % 3);
	l[0] = (struct sl_label){"team", team};
	l[1] = (struct sl_label){"env", (i % 2) ^ flip ? "dev" : "prod"};
	return np_ns_set(c, name, l, 2);
}

static int add_policy(struct np_ctx *c, int j, int variant)
{
	int apps = apps_per_ns(), a = (j / opt_ns) % apps;
	char spec[1024], doc[1400], err[512];
	struct json_object *json;
	struct k8s_netpol *p = NULL;
	int ret;

	/* Every namespace, and each workload's policies, get several shapes. */
	switch ((j / opt_ns / apps + a + variant) % 5) {
	case 0:
		snprintf(spec, sizeof(spec),
			 "{'podSelector':{'matchLabels':{'app':'app%d'}},'ingress':[{'from':[{"
			 "'podSelector':{'matchLabels':{'app':'app%d'}}}],'ports':[{'port':8080},"
			 "{'port':'metrics'}]}]}",
			 a, (a + 1) % apps);
		break;
	case 1:
		snprintf(spec, sizeof(spec),
			 "{'podSelector':{'matchLabels':{'app':'app%d'}},'ingress':[{'from':[{"
			 "'namespaceSelector':{'matchLabels':{'team':'t%d'}},'podSelector':{"
			 "'matchExpressions':[{'key':'app','operator':'In','values':['app%d','app%"
			 "d']}]}"
			 "}],'ports':[{'port':8000,'endPort':8999}]}]}",
			 a, j % 3, (a + 2) % apps, (a + 5) % apps);
		break;
	case 2:
		snprintf(spec, sizeof(spec),
			 "{'podSelector':{'matchLabels':{'app':'app%d'}},'ingress':[{'from':[{"
			 "'ipBlock':{'cidr':'198.18.0.0/15','except':['198.18.%d.0/"
			 "24']}}],'ports':[{"
			 "'port':443}]},{'from':[{'namespaceSelector':{}}],'ports':[{'port':53,"
			 "'protocol':'UDP'}]}]}",
			 a, j % 255);
		break;
	case 3:
		snprintf(spec, sizeof(spec),
			 "{'podSelector':{'matchLabels':{'app':'app%d'}},'policyTypes':['Egress'],"
			 "'egress':[{'to':[{'podSelector':{'matchLabels':{'app':'app%d'}}}],'ports'"
			 ":[{"
			 "'port':'http'}]},{'to':[{'namespaceSelector':{'matchLabels':{"
			 "'kubernetes.io/"
			 "metadata.name':'kube-system'}},'podSelector':{'matchLabels':{"
			 "'k8s-app':'kube-dns'}}}],'ports':[{'port':53,'protocol':'UDP'},{'port':"
			 "53}]}]}",
			 a, (a + 3) % apps);
		break;
	default:
		snprintf(spec, sizeof(spec),
			 "{'podSelector':{'matchLabels':{'app':'app%d'}},'ingress':[{'from':[{"
			 "'namespaceSelector':{'matchLabels':{'env':'prod'}}}]}]}",
			 a);
		break;
	}
	snprintf(doc, sizeof(doc),
		 "{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':{"
		 "'namespace':'ns%d','name':'pol-%d'},'spec':%s}",
		 j % opt_ns, j, spec);
	for (char *s = doc; *s; s++)
		if (*s == '\'')
			*s = '"';
	json = sl_json_parse(doc, strlen(doc), err, sizeof(err));
	if (!json || k8s_netpol_decode(json, &p, err, sizeof(err))) {
		fprintf(stderr, "netpol-bench: policy %d: %s\n", j, err);
		json_object_put(json);
		return -EINVAL;
	}
	ret = np_policy_set(c, p, err, sizeof(err));
	if (ret)
		fprintf(stderr, "netpol-bench: %s\n", err);
	k8s_netpol_free(p);
	json_object_put(json);
	return ret;
}

struct sample {
	double load_ms, compile_ms;
	double pod_ms, ns_ms, pol_ms;
	size_t pod_diff, ns_diff, pol_diff; /* entries added + removed */
	size_t pod_recomputed, ns_recomputed, pol_recomputed;
	struct np_stats st;
	struct np_stats node_st; /* node-0's view (np_set_node) */
};

static size_t diff_size(const struct np_diff *d)
{
	return d->add.n_ep + d->add.n_rules + d->add.n_cidrs + d->del.n_ep + d->del.n_rules +
	       d->del.n_cidrs;
}

/* One change + compile, timed; fails on any compile error. */
static int step(struct np_ctx *c, double *ms, size_t *diff, size_t *recomputed,
		int (*change)(struct np_ctx *, int), int arg)
{
	struct np_diff d;
	struct np_stats st;
	char err[512] = "";
	double t0 = now_ms();
	int ret = change(c, arg);

	if (!ret)
		ret = np_compile(c, &d, err, sizeof(err));
	*ms = now_ms() - t0;
	if (ret) {
		fprintf(stderr, "netpol-bench: compile failed: %d %s\n", ret, err);
		return ret;
	}
	np_stats_get(c, &st);
	*recomputed = st.recomputed;
	*diff = diff_size(&d);
	np_diff_fini(&d);
	return 0;
}

static int relabel_pod(struct np_ctx *c, int i)
{
	return add_pod(c, i, "app1");
}

static int flip_ns(struct np_ctx *c, int i)
{
	return add_ns(c, i, true);
}

static int edit_policy(struct np_ctx *c, int j)
{
	return add_policy(c, j, 1);
}

static int run(struct sample *s)
{
	struct np_ctx *c = np_new(NULL);
	char err[512] = "";
	double t0;
	int ret = 0;

	if (!c)
		return -ENOMEM;
	t0 = now_ms();
	/* The DNS workload egress policies point at. */
	{
		struct sl_label l = {"k8s-app", "kube-dns"};
		const char *ip[] = {"198.19.255.53"};
		struct np_pod_spec dns = {.ns = "kube-system",
					  .name = "dns",
					  .labels = &l,
					  .n_labels = 1,
					  .ips = ip,
					  .n_ips = 1};

		ret = np_pod_set(c, &dns, err, sizeof(err));
	}
	for (int i = 0; i < opt_ns && !ret; i++)
		ret = add_ns(c, i, false);
	for (int i = 0; i < opt_pods && !ret; i++)
		ret = add_pod(c, i, NULL);
	for (int j = 0; j < opt_policies && !ret; j++)
		ret = add_policy(c, j, 0);
	s->load_ms = now_ms() - t0;
	if (ret)
		goto out;
	t0 = now_ms();
	ret = np_compile(c, NULL, err, sizeof(err));
	s->compile_ms = now_ms() - t0;
	if (ret) {
		fprintf(stderr, "netpol-bench: compile failed: %d %s\n", ret, err);
		goto out;
	}
	np_stats_get(c, &s->st);
	ret = step(c, &s->pod_ms, &s->pod_diff, &s->pod_recomputed, relabel_pod, opt_pods / 2);
	if (!ret)
		ret = step(c, &s->ns_ms, &s->ns_diff, &s->ns_recomputed, flip_ns, 1);
	if (!ret)
		ret = step(c, &s->pol_ms, &s->pol_diff, &s->pol_recomputed, edit_policy,
			   opt_policies / 3);
	/* What one node's agent loads. */
	if (!ret)
		ret = np_set_node(c, "node-0");
	if (!ret)
		ret = np_compile(c, NULL, err, sizeof(err));
	np_stats_get(c, &s->node_st);
out:
	np_free(c);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: netpol-bench [--pods N] [--policies N] [--namespaces N] "
		   "[--replicas N] [--nodes N] [--runs N]\n");
}

static int parse_int(const char *flag, const char *v, int min, int max, int *out)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || *end || x < min || x > max) {
		fprintf(stderr, "netpol-bench: %s: expected an integer in %d-%d, got '%s'\n", flag,
			min, max, v);
		return -1;
	}
	*out = (int)x;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pods", required_argument, NULL, 'p'},
		{"policies", required_argument, NULL, 'P'},
		{"namespaces", required_argument, NULL, 'n'},
		{"replicas", required_argument, NULL, 'r'},
		{"runs", required_argument, NULL, 'R'},
		{"nodes", required_argument, NULL, 'N'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sample *s;
	double load[64], comp[64], pod[64], nsm[64], pol[64];
	struct rusage ru;
	char cpu[256] = "unknown";
	FILE *f;
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int bad = 0;

		switch (o) {
		case 'p':
			bad = parse_int("--pods", optarg, 1, 120000, &opt_pods);
			break;
		case 'P':
			bad = parse_int("--policies", optarg, 0, 1000000, &opt_policies);
			break;
		case 'n':
			bad = parse_int("--namespaces", optarg, 1, 10000, &opt_ns);
			break;
		case 'r':
			bad = parse_int("--replicas", optarg, 1, 100000, &opt_replicas);
			break;
		case 'R':
			bad = parse_int("--runs", optarg, 1, 64, &opt_runs);
			break;
		case 'N':
			bad = parse_int("--nodes", optarg, 1, 10000, &opt_nodes);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (bad)
			return 2;
	}
	if (optind != argc) {
		fprintf(stderr, "netpol-bench: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	s = calloc((size_t)opt_runs, sizeof(*s));
	if (!s)
		return 1;
	for (int r = 0; r < opt_runs; r++) {
		if (run(&s[r])) {
			free(s);
			return 1;
		}
		load[r] = s[r].load_ms;
		comp[r] = s[r].compile_ms;
		pod[r] = s[r].pod_ms;
		nsm[r] = s[r].ns_ms;
		pol[r] = s[r].pol_ms;
	}
	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[512];

		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
				snprintf(cpu, sizeof(cpu), "%s", strchr(line, ':') + 2);
				cpu[strcspn(cpu, "\n")] = '\0';
				break;
			}
		fclose(f);
	}
	getrusage(RUSAGE_SELF, &ru);
	const struct np_stats *st = &s[0].st;

	printf("netpol-bench: %d pods (%d per workload) x %d policies in %d namespaces, %d runs\n",
	       opt_pods, opt_replicas, opt_policies, opt_ns, opt_runs);
	printf("machine: %ld cpus online, %s (shared; medians of %d runs)\n",
	       sysconf(_SC_NPROCESSORS_ONLN), cpu, opt_runs);
	printf("repeat: %s --pods %d --policies %d --namespaces %d --replicas %d --nodes %d "
	       "--runs %d\n",
	       argv[0], opt_pods, opt_policies, opt_ns, opt_replicas, opt_nodes, opt_runs);
	printf("load objects       %9.1f ms\n", median(load, opt_runs));
	printf("full compile       %9.1f ms\n", median(comp, opt_runs));
	printf("pod relabelled     %9.2f ms  (%zu sets recomputed, %zu entries in the diff)\n",
	       median(pod, opt_runs), s[0].pod_recomputed, s[0].pod_diff);
	printf("namespace relabel  %9.2f ms  (%zu sets recomputed, %zu entries in the diff)\n",
	       median(nsm, opt_runs), s[0].ns_recomputed, s[0].ns_diff);
	printf("policy edited      %9.2f ms  (%zu sets recomputed, %zu entries in the diff)\n",
	       median(pol, opt_runs), s[0].pol_recomputed, s[0].pol_diff);
	printf("identities %zu, rule sets %zu (shared by %zu identity x direction pairs)\n",
	       st->identities, st->rulesets, 2 * st->identities);
	printf("entries: endpoints %zu, rules %zu, cidrs %zu; map bytes %zu (%.1f KiB; keys + "
	       "values)\n",
	       st->ep_entries, st->rule_entries, st->cidr_entries, st->map_bytes,
	       st->map_bytes / 1024.0);
	printf("one node of %d (node-0's view): rule sets %zu, rules %zu, cidrs %zu; map bytes %zu "
	       "(%.1f KiB)\n",
	       opt_nodes, s[0].node_st.rulesets, s[0].node_st.rule_entries,
	       s[0].node_st.cidr_entries, s[0].node_st.map_bytes, s[0].node_st.map_bytes / 1024.0);
	printf("peak RSS %ld KiB\n", ru.ru_maxrss);
	printf("netpol_bench pods=%d policies=%d namespaces=%d load_ms=%.1f compile_ms=%.1f "
	       "pod_change_ms=%.2f ns_change_ms=%.2f policy_change_ms=%.2f identities=%zu "
	       "rulesets=%zu ep_entries=%zu rule_entries=%zu cidr_entries=%zu map_bytes=%zu "
	       "node_map_bytes=%zu rss_kib=%ld\n",
	       opt_pods, opt_policies, opt_ns, median(load, opt_runs), median(comp, opt_runs),
	       median(pod, opt_runs), median(nsm, opt_runs), median(pol, opt_runs), st->identities,
	       st->rulesets, st->ep_entries, st->rule_entries, st->cidr_entries, st->map_bytes,
	       s[0].node_st.map_bytes, ru.ru_maxrss);
	free(s);
	return 0;
}
