// SPDX-License-Identifier: Apache-2.0
/* sluice-agent: parse flags, set up logging, run the node agent (or clean up). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "node.h"
#include "proxier.h"
#include "sluice/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice-agent --node-name NAME (--server URL [--token T] | --kubeconfig F) "
		"[flags]\n"
		"       sluice-agent --node-name NAME --cleanup [--bpffs DIR]\n"
		"\n"
		"Sluice node agent: programs the eBPF service datapath from the API server.\n"
		"\n"
		"  --node-name NAME        this node's name (pins under <bpffs>/sluice/NAME)\n"
		"  --server URL            API server, e.g. http://127.0.0.1:6443\n"
		"  --token TOKEN           bearer token for --server\n"
		"  --kubeconfig FILE       kubeconfig instead of --server/--token\n"
		"  --bpffs DIR             bpf filesystem, mounted if needed (default "
		"/sys/fs/bpf)\n"
		"  --cgroup-root DIR       cgroup v2 directory for the socket hooks (default: the\n"
		"                          cgroup2 mount; the lab gives each node its own "
		"subtree)\n"
		"  --metrics-listen H:P    /metrics and /healthz (default 127.0.0.1:10249; '' = "
		"off)\n"
		"  --hc-bind ADDR          address for healthCheckNodePort servers (default "
		"0.0.0.0)\n"
		"  --devices LIST          uplink interfaces for NodePort/LoadBalancer/externalIP\n"
		"                          per-packet load balancing (tc), comma-separated\n"
		"  --hash-seed N           flow-hash seed, the same on every node (Maglev)\n"
		"  --nat-ports MIN-MAX     SNAT source ports toward remote backends (default\n"
		"                          61000-65535)\n"
		"  --maglev-tables N       Maglev table capacity (64 KiB each; default 64)\n"
		"  --ct-gc-interval SECS   conntrack garbage collection period (default 30)\n"
		"  --run-pods              be the node's kubelet: register the Node, keep its "
		"Lease,\n"
		"                          run the pods bound to it (docs/lab.md)\n"
		"  --node-ip IP            the node's InternalIP (default: first IPv4 of the "
		"first\n"
		"                          --devices interface)\n"
		"  --node-labels K=V,...   labels for the registered Node\n"
		"  --state-dir DIR         pod dirs, logs, agent.sock (default "
		"/var/lib/sluice/NODE)\n"
		"  --cni-conf-dir DIR      CNI configs (default /etc/cni/net.d)\n"
		"  --cni-bin-dir DIR       CNI plugins (default /opt/cni/bin)\n"
		"  --cluster-dns IP        nameserver in pods' resolv.conf\n"
		"  --cluster-domain D      cluster domain (default cluster.local)\n"
		"  --host-routing MODE     bpf (default) | kernel: pod-to-pod packets skip the\n"
		"                          node's stack (BPF FIB redirect out, redirect_peer in;\n"
		"                          bpf dataplane only, kernel path without the helpers)\n"
		"  --dataplane MODE        bpf (default) | iptables | nftables | ipvs: which\n"
		"                          datapath translates service traffic; the legacy ones\n"
		"                          program what kube-proxy programs (docs/dataplanes.md)\n"
		"  --iptables-variant V    auto (default) | legacy | nft: the iptables-restore\n"
		"                          binary --dataplane iptables drives\n"
		"  --cluster-cidr CIDR     pod CIDR: legacy dataplanes masquerade ClusterIP\n"
		"                          traffic from outside it (kube-proxy's flag)\n"
		"  --masquerade-all        legacy dataplanes masquerade all service traffic\n"
		"  --cleanup               detach and unpin everything for --node-name, remove\n"
		"                          every dataplane's rules (iptables, nftables, IPVS) and\n"
		"                          the uplink tc filters in this network namespace, then\n"
		"                          exit\n"
		"  --log-level LEVEL       error|warn|info|debug (default info)\n");
}

/* Whole-string unsigned integer (decimal or 0x hex) <= max. */
static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (!*s || *s == '-' || *end || errno || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_port_range(const char *s, unsigned *min, unsigned *max)
{
	char buf[32], *dash;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (!dash)
		return -1;
	*dash = '\0';
	if (parse_uint(buf, 65535, min) || parse_uint(dash + 1, 65535, max) || *min < 1024 ||
	    *min > *max)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"node-name", required_argument, NULL, 'n'},
		{"server", required_argument, NULL, 's'},
		{"token", required_argument, NULL, 't'},
		{"kubeconfig", required_argument, NULL, 'k'},
		{"bpffs", required_argument, NULL, 'b'},
		{"cgroup-root", required_argument, NULL, 'c'},
		{"metrics-listen", required_argument, NULL, 'm'},
		{"hc-bind", required_argument, NULL, 'H'},
		{"cleanup", no_argument, NULL, 'C'},
		{"devices", required_argument, NULL, 'D'},
		{"hash-seed", required_argument, NULL, 'S'},
		{"nat-ports", required_argument, NULL, 'P'},
		{"maglev-tables", required_argument, NULL, 'M'},
		{"ct-gc-interval", required_argument, NULL, 'G'},
		{"run-pods", no_argument, NULL, 'R'},
		{"node-ip", required_argument, NULL, 'I'},
		{"node-labels", required_argument, NULL, 'l'},
		{"state-dir", required_argument, NULL, 'd'},
		{"cni-conf-dir", required_argument, NULL, 'f'},
		{"cni-bin-dir", required_argument, NULL, 'B'},
		{"cluster-dns", required_argument, NULL, 'N'},
		{"cluster-domain", required_argument, NULL, 'z'},
		{"dataplane", required_argument, NULL, 'X'},
		{"host-routing", required_argument, NULL, 'O'},
		{"iptables-variant", required_argument, NULL, 'V'},
		{"cluster-cidr", required_argument, NULL, 'r'},
		{"masquerade-all", no_argument, NULL, 'A'},
		{"log-level", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct agent_config cfg;
	enum sl_log_level lvl;
	bool cleanup = false;
	struct in_addr a4;
	int c;

	agent_config_defaults(&cfg);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			cfg.node_name = optarg;
			break;
		case 'R':
			cfg.run_pods = true;
			break;
		case 'I':
			if (inet_pton(AF_INET, optarg, &a4) != 1) {
				fprintf(stderr,
					"sluice-agent: --node-ip '%s': expected an IPv4 address\n",
					optarg);
				return 2;
			}
			cfg.node_ip = optarg;
			break;
		case 'l':
			cfg.node_labels = optarg;
			break;
		case 'd':
			cfg.state_dir = optarg;
			break;
		case 'f':
			cfg.cni_conf_dir = optarg;
			break;
		case 'B':
			cfg.cni_bin_dir = optarg;
			break;
		case 'N':
			if (inet_pton(AF_INET, optarg, &a4) != 1) {
				fprintf(stderr,
					"sluice-agent: --cluster-dns '%s': expected an IPv4 "
					"address\n",
					optarg);
				return 2;
			}
			cfg.cluster_dns = optarg;
			break;
		case 'z':
			cfg.cluster_domain = optarg;
			break;
		case 's':
			cfg.server = optarg;
			break;
		case 't':
			cfg.token = optarg;
			break;
		case 'k':
			cfg.kubeconfig = optarg;
			break;
		case 'b':
			cfg.bpffs = optarg;
			break;
		case 'c':
			cfg.cgroup_root = optarg;
			break;
		case 'm':
			cfg.metrics_listen = optarg;
			break;
		case 'H':
			cfg.hc_bind = optarg;
			break;
		case 'C':
			cleanup = true;
			break;
		case 'D':
			cfg.devices = optarg;
			break;
		case 'S':
			if (parse_uint(optarg, UINT32_MAX, &cfg.hash_seed)) {
				fprintf(stderr,
					"sluice-agent: --hash-seed '%s': expected an integer "
					"0-4294967295 (0x prefix for hex)\n",
					optarg);
				return 2;
			}
			break;
		case 'P':
			if (parse_port_range(optarg, &cfg.nat_port_min, &cfg.nat_port_max)) {
				fprintf(stderr,
					"sluice-agent: --nat-ports '%s': expected MIN-MAX with "
					"1024 <= MIN <= MAX <= 65535\n",
					optarg);
				return 2;
			}
			break;
		case 'M':
			if (parse_uint(optarg, 4096, &cfg.maglev_tables) || !cfg.maglev_tables) {
				fprintf(stderr,
					"sluice-agent: --maglev-tables '%s': expected 1-4096\n",
					optarg);
				return 2;
			}
			break;
		case 'G':
			if (parse_uint(optarg, 86400, &cfg.ct_gc_interval_s) ||
			    !cfg.ct_gc_interval_s) {
				fprintf(stderr,
					"sluice-agent: --ct-gc-interval '%s': expected seconds "
					"1-86400\n",
					optarg);
				return 2;
			}
			break;
		case 'X': {
			enum agent_dataplane d;

			if (agent_dataplane_parse(optarg, &d)) {
				fprintf(stderr,
					"sluice-agent: --dataplane '%s': accepted values are bpf, "
					"iptables, nftables, ipvs\n",
					optarg);
				return 2;
			}
			cfg.dataplane = (int)d;
			break;
		}
		case 'O':
			if (strcmp(optarg, "bpf") && strcmp(optarg, "kernel")) {
				fprintf(stderr,
					"sluice-agent: --host-routing '%s': accepted values are "
					"bpf, "
					"kernel\n",
					optarg);
				return 2;
			}
			cfg.kernel_routing = !strcmp(optarg, "kernel");
			break;
		case 'V':
			if (strcmp(optarg, "auto") && strcmp(optarg, "legacy") &&
			    strcmp(optarg, "nft")) {
				fprintf(stderr,
					"sluice-agent: --iptables-variant '%s': accepted values "
					"are "
					"auto, legacy, nft\n",
					optarg);
				return 2;
			}
			cfg.iptables_variant = optarg;
			break;
		case 'r': {
			char ip[INET_ADDRSTRLEN], *slash = strchr(optarg, '/');
			unsigned bits;
			size_t n = slash ? (size_t)(slash - optarg) : 0;

			if (!slash || n >= sizeof(ip) || parse_uint(slash + 1, 32, &bits) ||
			    (memcpy(ip, optarg, n), ip[n] = '\0',
			     inet_pton(AF_INET, ip, &a4) != 1)) {
				fprintf(stderr,
					"sluice-agent: --cluster-cidr '%s': expected an IPv4 CIDR "
					"such as 10.244.0.0/16\n",
					optarg);
				return 2;
			}
			cfg.cluster_cidr = optarg;
			break;
		}
		case 'A':
			cfg.masquerade_all = true;
			break;
		case 'L':
			if (sl_log_level_parse(optarg, &lvl)) {
				fprintf(stderr,
					"sluice-agent: --log-level '%s': accepted values are "
					"error, "
					"warn, info, debug\n",
					optarg);
				return 2;
			}
			sl_log_set_level(lvl);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice-agent: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	if (!cfg.node_name) {
		fprintf(stderr, "sluice-agent: --node-name is required (see --help)\n");
		return 2;
	}
	if (cleanup)
		return (node_cleanup(&cfg) | agent_cleanup(cfg.bpffs, cfg.node_name)) ? 1 : 0;
	if (!cfg.server && !cfg.kubeconfig) {
		fprintf(stderr, "sluice-agent: --server URL or --kubeconfig FILE is required\n");
		return 2;
	}
	return agent_run(&cfg) ? 1 : 0;
}
