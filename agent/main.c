// SPDX-License-Identifier: Apache-2.0
/* sluice-agent: parse flags, set up logging, run the node agent (or clean up). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "sluice/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice-agent --node-name NAME (--server URL [--token T] | --kubeconfig F) [flags]\n"
		"       sluice-agent --node-name NAME --cleanup [--bpffs DIR]\n"
		"\n"
		"Sluice node agent: programs the eBPF service datapath from the API server.\n"
		"\n"
		"  --node-name NAME        this node's name (pins under <bpffs>/sluice/NAME)\n"
		"  --server URL            API server, e.g. http://127.0.0.1:6443\n"
		"  --token TOKEN           bearer token for --server\n"
		"  --kubeconfig FILE       kubeconfig instead of --server/--token\n"
		"  --bpffs DIR             bpf filesystem, mounted if needed (default /sys/fs/bpf)\n"
		"  --cgroup-root DIR       cgroup v2 directory for the socket hooks (default: the\n"
		"                          cgroup2 mount; the lab gives each node its own subtree)\n"
		"  --metrics-listen H:P    /metrics and /healthz (default 127.0.0.1:10249; '' = off)\n"
		"  --hc-bind ADDR          address for healthCheckNodePort servers (default 0.0.0.0)\n"
		"  --cleanup               detach and unpin everything for --node-name, then exit\n"
		"  --log-level LEVEL       error|warn|info|debug (default info)\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node-name", required_argument, NULL, 'n' },
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 't' },
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "cgroup-root", required_argument, NULL, 'c' },
		{ "metrics-listen", required_argument, NULL, 'm' },
		{ "hc-bind", required_argument, NULL, 'H' },
		{ "cleanup", no_argument, NULL, 'C' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct agent_config cfg;
	enum sl_log_level lvl;
	bool cleanup = false;
	int c;

	agent_config_defaults(&cfg);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			cfg.node_name = optarg;
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
		case 'L':
			if (sl_log_level_parse(optarg, &lvl)) {
				fprintf(stderr,
					"sluice-agent: --log-level '%s': accepted values are error, "
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
		fprintf(stderr, "sluice-agent: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (!cfg.node_name) {
		fprintf(stderr, "sluice-agent: --node-name is required (see --help)\n");
		return 2;
	}
	if (cleanup)
		return agent_cleanup(cfg.bpffs, cfg.node_name) ? 1 : 0;
	if (!cfg.server && !cfg.kubeconfig) {
		fprintf(stderr, "sluice-agent: --server URL or --kubeconfig FILE is required\n");
		return 2;
	}
	return agent_run(&cfg) ? 1 : 0;
}
