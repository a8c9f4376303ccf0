// SPDX-License-Identifier: Apache-2.0
/* sluice-dns: parse flags (and the config file), set up logging, run the cluster DNS server. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "sluice/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice-dns (--server URL [--token T] | --kubeconfig F) [--config FILE] "
		"[flags]\n"
		"\n"
		"Cluster DNS: answers <zone> from the API server's Services, EndpointSlices,\n"
		"Pods and Namespaces; forwards everything else through a cache.\n"
		"\n"
		"  --server URL             API server, e.g. http://127.0.0.1:6443\n"
		"  --token TOKEN            bearer token for --server\n"
		"  --kubeconfig FILE        kubeconfig instead of --server/--token\n"
		"  --config FILE            Corefile-like file: one directive per line, the\n"
		"                           names below without '--' (flags override it)\n"
		"  --zone NAME              cluster domain (default cluster.local)\n"
		"  --ttl SECS               TTL of cluster records, 0-3600 (default 30)\n"
		"  --pods MODE              insecure | verified | disabled (default insecure)\n"
		"  --forward ADDR[,ADDR]    upstreams IP[:PORT] (default: /etc/resolv.conf)\n"
		"  --resolv-conf FILE       where to read upstreams without --forward\n"
		"  --listen ADDR            UDP+TCP address IP[:PORT] (default 0.0.0.0:53)\n"
		"  --metrics ADDR|off       /metrics /health /ready (default off)\n"
		"  --workers N              worker threads (default: one per core)\n"
		"  --cache SIZE[,MAX[,MIN]] cache entries and TTL bounds (default 10000,3600,5)\n"
		"  --upstream-timeout MS    per upstream attempt (default 2000)\n"
		"  --max-fails N            failures before an upstream is marked down (default "
		"2)\n"
		"  --tcp-connections N      concurrent TCP clients (default 1024)\n"
		"  --tcp-idle MS            idle/slow TCP client limit (default 10000)\n"
		"  --bufsize BYTES          EDNS UDP payload ceiling, 512-4096 (default 1232)\n"
		"  --log-level LEVEL        error|warn|info|debug (default info)\n");
}

/* Splits a flag value on commas and blanks into words (in place). */
static int split_words(char *s, char **words, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *t = strtok_r(s, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		if (n == max)
			return -1;
		words[n++] = t;
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"token", required_argument, NULL, 't'},
		{"kubeconfig", required_argument, NULL, 'k'},
		{"config", required_argument, NULL, 'c'},
		{"resolv-conf", required_argument, NULL, 'r'},
		{"log-level", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		/* Directives shared with the config file. */
		{"zone", required_argument, NULL, 'D'},
		{"ttl", required_argument, NULL, 'D'},
		{"pods", required_argument, NULL, 'D'},
		{"forward", required_argument, NULL, 'D'},
		{"listen", required_argument, NULL, 'D'},
		{"metrics", required_argument, NULL, 'D'},
		{"workers", required_argument, NULL, 'D'},
		{"cache", required_argument, NULL, 'D'},
		{"upstream-timeout", required_argument, NULL, 'D'},
		{"max-fails", required_argument, NULL, 'D'},
		{"tcp-connections", required_argument, NULL, 'D'},
		{"tcp-idle", required_argument, NULL, 'D'},
		{"bufsize", required_argument, NULL, 'D'},
		{0},
	};
	struct dns_run_opts ro = {0};
	const char *config = NULL;
	const char **dname = calloc((size_t)argc, sizeof(*dname));
	char **dval = calloc((size_t)argc, sizeof(*dval));
	int nd = 0, c, li, rc = 2;
	enum sl_log_level lvl;
	char err[512];

	if (!dname || !dval) {
		fprintf(stderr, "sluice-dns: out of memory\n");
		free(dname);
		free(dval);
		return 1;
	}
	dns_config_defaults(&ro.cfg);
	while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
		switch (c) {
		case 's':
			ro.server = optarg;
			break;
		case 't':
			ro.token = optarg;
			break;
		case 'k':
			ro.kubeconfig = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'r':
			ro.resolv_conf = optarg;
			break;
		case 'L':
			if (sl_log_level_parse(optarg, &lvl)) {
				fprintf(stderr,
					"sluice-dns: --log-level '%s': accepted values are "
					"error, warn, info, debug\n",
					optarg);
				goto out;
			}
			sl_log_set_level(lvl);
			break;
		case 'D':
			dname[nd] = opts[li].name;
			dval[nd++] = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice-dns: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		goto out;
	}
	if (config && dns_config_load(&ro.cfg, config, err, sizeof(err))) {
		fprintf(stderr, "sluice-dns: %s\n", err);
		goto out;
	}
	for (int i = 0; i < nd; i++) {
		char *words[20];
		int n = split_words(dval[i], words, 20);

		if (n < 0 || dns_config_directive(&ro.cfg, dname[i], words, n, err, sizeof(err))) {
			fprintf(stderr, "sluice-dns: --%s: %s\n", dname[i],
				n < 0 ? "too many values" : err);
			goto out;
		}
	}
	if (!ro.server && !ro.kubeconfig) {
		fprintf(stderr, "sluice-dns: --server URL or --kubeconfig FILE is required\n");
		goto out;
	}
	rc = dns_run(&ro) ? 1 : 0;
out:
	free(dname);
	free(dval);
	return rc;
}
