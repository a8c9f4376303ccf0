// SPDX-License-Identifier: Apache-2.0
/*
 * netpol-dpbench: what the policy hooks cost per packet, without policy and with the
 * benchmark's 100-rule policies (tools/bench/netpol.sh), measured by the kernel itself.
 *
 *   netpol-dpbench [--repeat 200000] [--runs 7]
 *
 * Root. Loads tc_pod.bpf.o unpinned in a private network namespace, fills its policy maps
 * from libnetpol for two pods, bench/cli (198.18.0.1) and bench/srv (198.18.0.2, ports 8090
 * and 9000), and times the policy programs on single packets with BPF_PROG_TEST_RUN
 * (repeat times in the kernel; the least of runs runs): the SYN a new connection starts with
 * (decided every time: SYNs are never passed by the cache), on the client's veth (its egress
 * rules) and on the server's (its ingress rules), then an ACK of an established flow (the
 * cache, forward tuple) and a reply (the cache, reversed tuple: the same entry, the key is
 * normalised). Once with no policy, once with the 100-rule policy on each side: server
 * ingress 99 rules for other namespaces and ports, then `from: app=cli` on 8090 and 9000;
 * client egress 99 ipBlock rules, then `to: app=srv` on the same ports.
 *
 * A loaded machine slows a run down, it does not make one faster: the least of several runs
 * is the figure, close to what a quiet machine gives. The last line is key=value pairs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "netpol.h"
#include "sluice/json.h"
#include "sluice/k8s.h"
#include "abi/policy.h"
#include "tc_pod.skel.h"

#define ETH_LEN 14
#define CLI	"198.18.0.1"
#define SRV	"198.18.0.2"
#define TCP_SYN 0x02
#define TCP_ACK 0x10

static unsigned opt_repeat = 200000, opt_runs = 7;

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* Ethernet + IPv4 + a 20-byte TCP header with flags. */
static size_t tcp_pkt(uint8_t *b, const char *src, const char *dst, uint16_t sport, uint16_t dport,
		      uint8_t flags)
{
	size_t len = ETH_LEN + 20 + 20;
	uint32_t a;
	uint16_t v;

	memset(b, 0, len);
	b[12] = 0x08;
	b[ETH_LEN] = 0x45;
	b[ETH_LEN + 2] = (len - ETH_LEN) >> 8;
	b[ETH_LEN + 3] = (len - ETH_LEN) & 0xff;
	b[ETH_LEN + 8] = 64;
	b[ETH_LEN + 9] = IPPROTO_TCP;
	a = ip4(src);
	memcpy(b + ETH_LEN + 12, &a, 4);
	a = ip4(dst);
	memcpy(b + ETH_LEN + 16, &a, 4);
	v = htons(sport);
	memcpy(b + ETH_LEN + 20, &v, 2);
	v = htons(dport);
	memcpy(b + ETH_LEN + 22, &v, 2);
	b[ETH_LEN + 20 + 12] = 5 << 4;
	b[ETH_LEN + 20 + 13] = flags;
	return len;
}

/* The least ns per run of prog on the packet over opt_runs runs of opt_repeat; < 0 on error. */
static double ns_per_pkt(struct bpf_program *prog, const uint8_t *in, size_t len, int *retval)
{
	uint8_t out[128];
	struct __sk_buff ctx = {.ifindex = 1};
	/* LIBBPF_OPTS spelled out (cppcheck does not know the macro). */
	struct bpf_test_run_opts o = {.sz = sizeof(o),
				      .data_in = in,
				      .data_size_in = (uint32_t)len,
				      .data_out = out,
				      .data_size_out = sizeof(out),
				      .ctx_in = &ctx,
				      .ctx_size_in = sizeof(ctx),
				      .repeat = opt_repeat};
	double best = -1;

	for (unsigned i = 0; i < opt_runs; i++) {
		if (bpf_prog_test_run_opts(bpf_program__fd(prog), &o)) {
			fprintf(stderr, "netpol-dpbench: BPF_PROG_TEST_RUN %s: %s\n",
				bpf_program__name(prog), strerror(errno));
			return -1;
		}
		if (best < 0 || o.duration < best)
			best = o.duration;
	}
	*retval = (int)o.retval;
	return best;
}

static int add_policy(struct np_ctx *c, const char *name, const char *spec)
{
	size_t n = strlen(spec) + 256;
	char *doc = malloc(n), err[512] = "";
	struct json_object *j = NULL;
	struct k8s_netpol *p = NULL;
	int ret = -EINVAL;

	if (!doc)
		return -ENOMEM;
	snprintf(doc, n,
		 "{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':{"
		 "'namespace':'bench','name':'%s'},'spec':%s}",
		 name, spec);
	for (char *s = doc; *s; s++)
		if (*s == '\'')
			*s = '"';
	j = sl_json_parse(doc, strlen(doc), err, sizeof(err));
	if (j && !k8s_netpol_decode(j, &p, err, sizeof(err)))
		ret = np_policy_set(c, p, err, sizeof(err));
	if (ret)
		fprintf(stderr, "netpol-dpbench: policy %s: %s\n", name, err);
	k8s_netpol_free(p);
	json_object_put(j);
	free(doc);
	return ret;
}

/* The two 100-rule policies of tools/bench/netpol.sh. */
static int add_policies(struct np_ctx *c)
{
	char spec[16384];
	size_t n = 0;
	int ret;

	n += (size_t)snprintf(spec + n, sizeof(spec) - n,
			      "{'podSelector':{'matchLabels':{'app':'srv'}},'ingress':[");
	for (int i = 1; i < 100; i++)
		n += (size_t)snprintf(
			spec + n, sizeof(spec) - n,
			"{'from':[{'namespaceSelector':{'matchLabels':{'team':'t%d'}}}],"
			"'ports':[{'port':%d}]},",
			i, 10000 + i);
	snprintf(spec + n, sizeof(spec) - n,
		 "{'from':[{'podSelector':{'matchLabels':{'app':'cli'}}}],'ports':[{'port':8090},"
		 "{'port':9000}]}]}");
	ret = add_policy(c, "srv-100-rules", spec);
	if (ret)
		return ret;
	n = (size_t)snprintf(
		spec, sizeof(spec),
		"{'podSelector':{'matchLabels':{'app':'cli'}},'policyTypes':['Egress'],"
		"'egress':[");
	for (int i = 1; i < 100; i++)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n,
				      "{'to':[{'ipBlock':{'cidr':'198.19.%d.0/24'}}]},", i);
	snprintf(spec + n, sizeof(spec) - n,
		 "{'to':[{'podSelector':{'matchLabels':{'app':'srv'}}}],'ports':[{'port':8090},"
		 "{'port':9000}]}]}");
	return add_policy(c, "cli-100-rules", spec);
}

static int add_pod(struct np_ctx *c, const char *name, const char *ip)
{
	struct sl_label l[1] = {{"app", name}};
	struct np_port ports[2] = {{"conn", IPPROTO_TCP, 8090}, {"echo", IPPROTO_TCP, 9000}};
	const char *ips[1] = {ip};
	struct np_pod_spec s = {.ns = "bench",
				.name = name,
				.node = "n1",
				.labels = l,
				.n_labels = 1,
				.ports = ports,
				.n_ports = 2,
				.ips = ips,
				.n_ips = 1};
	char err[256] = "";
	int ret = np_pod_set(c, &s, err, sizeof(err));

	if (ret)
		fprintf(stderr, "netpol-dpbench: pod %s: %s\n", name, err);
	return ret;
}

/* Compiles c and writes its whole output into the skeleton's maps. */
static int load_maps(struct tc_pod *s, struct np_ctx *c)
{
	struct np_entries e = {0};
	char err[512] = "";
	int ret = np_compile(c, NULL, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "netpol-dpbench: compile: %s\n", err);
		return ret;
	}
	ret = np_dump(c, &e);
	for (size_t i = 0; !ret && i < e.n_rules; i++)
		ret = bpf_map_update_elem(bpf_map__fd(s->maps.sl_np_rules_v1), &e.rules[i].key,
					  &e.rules[i].val, 0);
	for (size_t i = 0; !ret && i < e.n_cidrs; i++)
		ret = bpf_map_update_elem(bpf_map__fd(s->maps.sl_np_cidrs_v1), &e.cidrs[i].key,
					  &e.cidrs[i].val, 0);
	for (size_t i = 0; !ret && i < e.n_ep; i++)
		ret = bpf_map_update_elem(bpf_map__fd(s->maps.sl_np_ep_v1), &e.ep[i].key,
					  &e.ep[i].val, 0);
	if (ret)
		fprintf(stderr, "netpol-dpbench: map update: %s\n", strerror(errno));
	np_entries_fini(&e);
	return ret ? -EIO : 0;
}

static struct tc_pod *load_prog(void)
{
	struct tc_pod *s = tc_pod__open();
	struct bpf_map *m;

	if (!s)
		return NULL;
	/* Private maps: nothing pinned (bpf_object__for_each_map, spelled out). */
	for (m = bpf_object__next_map(s->obj, NULL); m; m = bpf_object__next_map(s->obj, m))
		bpf_map__set_pin_path(m, NULL);
	bpf_map__set_max_entries(s->maps.sl_ct4_tcp_v1, 1024);
	bpf_map__set_max_entries(s->maps.sl_ct4_any_v1, 1024);
	bpf_map__set_max_entries(s->maps.sl_np_ct_v1, 1024);
	if (tc_pod__load(s)) {
		tc_pod__destroy(s);
		return NULL;
	}
	return s;
}

/* Field order follows the table below, read row by row, not size. */
struct pcase { // NOLINT(clang-analyzer-optin.performance.Padding)
	const char *key, *what;
	bool to_pod; /* tc_pol_egress (the pod's ingress) or tc_pol_ingress (its egress) */
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t flags;
};

static const struct pcase cases[] = {
	{"syn_srv", "SYN cli -> srv:8090 on srv's veth (ingress rules)", true, CLI, SRV, 40000,
	 8090, TCP_SYN},
	{"syn_cli", "SYN cli -> srv:8090 on cli's veth (egress rules)", false, CLI, SRV, 40000,
	 8090, TCP_SYN},
	{"ack", "ACK of the established flow (cache)", true, CLI, SRV, 40000, 8090, TCP_ACK},
	{"reply", "reply srv -> cli (cache, reversed tuple)", false, SRV, CLI, 8090, 40000,
	 TCP_ACK},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* ns per packet of every case, arm 0 = no policy, 1 = 100 rules. */
static int run_arm(int arm, double *ns)
{
	struct np_ctx *c = np_new(NULL);
	struct sl_label team = {"team", "bench"};
	struct tc_pod *s = load_prog();
	uint8_t pkt[128];
	int ret = -EINVAL, rv = -1;

	if (!s) {
		fprintf(stderr, "netpol-dpbench: cannot load tc_pod (root?)\n");
		np_free(c);
		return -EPERM;
	}
	if (!c || np_ns_set(c, "bench", &team, 1) || add_pod(c, "cli", CLI) ||
	    add_pod(c, "srv", SRV) || (arm && add_policies(c)) || load_maps(s, c))
		goto out;
	if (arm) {
		/* The policy is in force: port 8080 is in no rule. */
		uint32_t saved = opt_runs, saved_r = opt_repeat;
		size_t len = tcp_pkt(pkt, CLI, SRV, 40001, 8080, TCP_SYN);

		opt_runs = opt_repeat = 1;
		ns_per_pkt(s->progs.tc_pol_egress, pkt, len, &rv);
		opt_runs = saved;
		opt_repeat = saved_r;
		if (rv != 2) { /* TC_ACT_SHOT */
			fprintf(stderr, "netpol-dpbench: srv:8080 not dropped (%d): no policy?\n",
				rv);
			goto out;
		}
	}
	for (size_t i = 0; i < NCASES; i++) {
		const struct pcase *k = &cases[i];
		size_t len = tcp_pkt(pkt, k->src, k->dst, k->sport, k->dport, k->flags);

		ns[i] = ns_per_pkt(k->to_pod ? s->progs.tc_pol_egress : s->progs.tc_pol_ingress,
				   pkt, len, &rv);
		if (ns[i] < 0)
			goto out;
		if (rv != 0) { /* TC_ACT_OK: every case is allowed in both arms */
			fprintf(stderr, "netpol-dpbench: %s: verdict %d, want allowed\n", k->key,
				rv);
			goto out;
		}
	}
	ret = 0;
out:
	tc_pod__destroy(s);
	np_free(c);
	return ret;
}

static int quiet(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	return lvl == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"repeat", required_argument, NULL, 'r'},
		{"runs", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	double ns[2][NCASES];
	int o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'r':
			opt_repeat = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			opt_runs = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			printf("usage: netpol-dpbench [--repeat N] [--runs N]\n");
			return 0;
		default:
			fprintf(stderr, "usage: netpol-dpbench [--repeat N] [--runs N]\n");
			return 2;
		}
	}
	if (!opt_repeat || !opt_runs) {
		fprintf(stderr, "netpol-dpbench: --repeat and --runs must be > 0\n");
		return 2;
	}
	libbpf_set_print(quiet);
	/* A network namespace of our own: nothing of the machine's is touched. */
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "netpol-dpbench: unshare(CLONE_NEWNET): %s (root?)\n",
			strerror(errno));
		return 1;
	}
	if (run_arm(0, ns[0]) || run_arm(1, ns[1]))
		return 1;
	printf("netpol-dpbench: policy hook per packet, BPF_PROG_TEST_RUN, least of %u runs of "
	       "%u\n",
	       opt_runs, opt_repeat);
	printf("%-52s %9s %9s\n", "packet", "no policy", "100 rules");
	for (size_t i = 0; i < NCASES; i++)
		printf("%-52s %6.0f ns %6.0f ns\n", cases[i].what, ns[0][i], ns[1][i]);
	printf("netpol_dpbench");
	for (size_t i = 0; i < NCASES; i++)
		printf(" %s_none_ns=%.0f %s_policy_ns=%.0f", cases[i].key, ns[0][i], cases[i].key,
		       ns[1][i]);
	printf("\n");
	return 0;
}
