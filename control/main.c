// SPDX-License-Identifier: Apache-2.0
/* sluice-control: parse flags, set up logging, run the API server. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "control.h"
#include "sluice/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice-control [flags]\n"
		"\n"
		"Kubernetes-compatible API server for Sluice (JSON, list/watch, embedded store).\n"
		"\n"
		"  --listen HOST:PORT          address to serve on (default 127.0.0.1:6443)\n"
		"  --listen-netns NETNS=IP:PORT also serve inside a network namespace (path, e.g.\n"
		"                              /run/netns/lab-cp=198.18.0.2:6443); repeatable, "
		"up to 4\n"
		"  --data-dir DIR              SQLite store directory (default "
		"/var/lib/sluice/control)\n"
		"  --store sqlite|memory       storage backend (default sqlite)\n"
		"  --sync full|normal          fsync every commit (full, default) or rely on WAL\n"
		"  --service-cidr CIDR         ClusterIP range (default 10.96.0.0/12)\n"
		"  --node-port-range LO-HI     NodePort range (default 30000-32767)\n"
		"  --token-file FILE           static bearer tokens, lines "
		"'token,user,uid[,groups]';\n"
		"                              required when listening beyond loopback\n"
		"  --anonymous-loopback        with --token-file: requests to a loopback address\n"
		"                              need no token (kubectl sends none over plain "
		"HTTP)\n"
		"  --retain-revisions N        watch history kept (default 10000)\n"
		"  --compact-interval SECONDS  store compaction period (default 60)\n"
		"  --min-request-timeout S     watches end after a random time in [S, 2S] (default "
		"1800)\n"
		"  --idle-timeout SECONDS      idle keep-alive connection limit (default 120)\n"
		"  --watch-buffer-bytes N      unsent bytes before a slow watcher is closed "
		"(default 16MiB)\n"
		"  --controllers LIST          controllers to run: all (default), none, or a comma "
		"list\n"
		"                              of endpointslice, endpoints, nodeipam, "
		"nodelifecycle,\n"
		"                              scheduler, replicaset, deployment, daemonset, "
		"garbagecollector\n"
		"  --cluster-cidr CIDR         pod address space for node IPAM (default "
		"10.244.0.0/16)\n"
		"  --node-cidr-mask-size N     prefix length of each node's podCIDR (default 24)\n"
		"  --node-monitor-grace-period S  a node whose Lease is older is NotReady (default "
		"40)\n"
		"  --ready-file FILE           write the bound port here once serving\n"
		"  --log-level LEVEL           error|warn|info|debug (default info)\n"
		"  --help\n");
}

static int parse_num(const char *flag, const char *val, long long lo, long long hi, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(val, &end, 10);
	if (errno || *end || end == val || *out < lo || *out > hi) {
		fprintf(stderr, "sluice-control: %s '%s': expected an integer in [%lld, %lld]\n",
			flag, val, lo, hi);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"listen-netns", required_argument, NULL, 'N'},
		{"data-dir", required_argument, NULL, 'd'},
		{"store", required_argument, NULL, 's'},
		{"sync", required_argument, NULL, 'S'},
		{"service-cidr", required_argument, NULL, 'c'},
		{"node-port-range", required_argument, NULL, 'p'},
		{"token-file", required_argument, NULL, 't'},
		{"anonymous-loopback", no_argument, NULL, 'A'},
		{"retain-revisions", required_argument, NULL, 'r'},
		{"compact-interval", required_argument, NULL, 'C'},
		{"min-request-timeout", required_argument, NULL, 'm'},
		{"idle-timeout", required_argument, NULL, 'i'},
		{"watch-buffer-bytes", required_argument, NULL, 'w'},
		{"ready-file", required_argument, NULL, 'R'},
		{"advertise-address", required_argument, NULL, 'a'},
		{"log-level", required_argument, NULL, 'L'},
		{"controllers", required_argument, NULL, 'K'},
		{"cluster-cidr", required_argument, NULL, 'P'},
		{"node-cidr-mask-size", required_argument, NULL, 'M'},
		{"node-monitor-grace-period", required_argument, NULL, 'G'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct control_config cfg;
	enum sl_log_level lvl;
	long long n;
	int c, rc;

	control_config_defaults(&cfg);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			cfg.listen = optarg;
			break;
		case 'N':
			if (cfg.n_netns_listen == CONTROL_MAX_NETNS_LISTEN) {
				fprintf(stderr, "sluice-control: --listen-netns: at most %d\n",
					CONTROL_MAX_NETNS_LISTEN);
				return 2;
			}
			cfg.netns_listen[cfg.n_netns_listen++] = optarg;
			break;
		case 'd':
			cfg.data_dir = optarg;
			break;
		case 's':
			if (strcmp(optarg, "sqlite") && strcmp(optarg, "memory")) {
				fprintf(stderr,
					"sluice-control: --store '%s': accepted values are sqlite, "
					"memory\n",
					optarg);
				return 2;
			}
			cfg.store = optarg;
			break;
		case 'S':
			if (strcmp(optarg, "full") && strcmp(optarg, "normal")) {
				fprintf(stderr,
					"sluice-control: --sync '%s': accepted values are full, "
					"normal\n",
					optarg);
				return 2;
			}
			cfg.sync_full = !strcmp(optarg, "full");
			break;
		case 'c':
			cfg.service_cidr = optarg;
			break;
		case 'p':
			cfg.node_port_range = optarg;
			break;
		case 't':
			cfg.token_file = optarg;
			break;
		case 'A':
			cfg.anonymous_loopback = true;
			break;
		case 'r':
			if (parse_num("--retain-revisions", optarg, 100, 10000000, &n))
				return 2;
			cfg.retain_revisions = n;
			break;
		case 'C':
			if (parse_num("--compact-interval", optarg, 1, 86400, &n))
				return 2;
			cfg.compact_interval_s = (int)n;
			break;
		case 'm':
			if (parse_num("--min-request-timeout", optarg, 1, 86400, &n))
				return 2;
			cfg.min_request_timeout_s = (int)n;
			break;
		case 'i':
			if (parse_num("--idle-timeout", optarg, 1, 86400, &n))
				return 2;
			cfg.idle_timeout_s = (int)n;
			break;
		case 'w':
			if (parse_num("--watch-buffer-bytes", optarg, 4096, 1LL << 32, &n))
				return 2;
			cfg.watch_buffer_bytes = (size_t)n;
			break;
		case 'R':
			cfg.ready_file = optarg;
			break;
		case 'a':
			cfg.advertise = optarg;
			break;
		case 'K':
			cfg.controllers = optarg;
			break;
		case 'P':
			cfg.cluster_cidr = optarg;
			break;
		case 'M':
			if (parse_num("--node-cidr-mask-size", optarg, 1, 30, &n))
				return 2;
			cfg.node_cidr_mask = (int)n;
			break;
		case 'G':
			if (parse_num("--node-monitor-grace-period", optarg, 1, 86400, &n))
				return 2;
			cfg.node_grace_s = (int)n;
			break;
		case 'L':
			if (sl_log_level_parse(optarg, &lvl)) {
				fprintf(stderr,
					"sluice-control: --log-level '%s': accepted values are "
					"error, warn, info, debug\n",
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
		fprintf(stderr, "sluice-control: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	{
		/* Every watch and keep-alive client holds a descriptor; the usual
		 * soft limit of 1024 is far below what one API server serves. */
		struct rlimit rl;
		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	rc = control_run(&cfg);
	return rc ? 1 : 0;
}
