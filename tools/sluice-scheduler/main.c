// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-scheduler: the scheduler of sluice-control (control/sched.c) run alone
 * against any API server, like kube-scheduler. sluice-control runs the same
 * code in-process unless --controllers leaves "scheduler" out.
 *
 *   sluice-scheduler --server http://127.0.0.1:6443 [--token T] [--name N]
 *   sluice-scheduler --kubeconfig FILE
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/sched.h"
#include "sluice/client.h"
#include "sluice/log.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sluice-scheduler (--server URL [--token T] | --kubeconfig FILE)\n"
		   "  --name NAME         schedulerName this scheduler answers to besides\n"
		   "                      default-scheduler (default sluice-scheduler)\n"
		   "  --bind-workers N    binds in flight (default 32)\n"
		   "  --retry-interval S  periodic retry of unschedulable pods (default 15)\n"
		   "  --log-level L       error, warn, info, debug\n");
}

static int num(const char *flag, const char *s, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno || *end || !*s || *out < lo || *out > hi) {
		fprintf(stderr, "sluice-scheduler: %s '%s': expected an integer in [%ld, %ld]\n",
			flag, s, lo, hi);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"token", required_argument, NULL, 't'},
		{"kubeconfig", required_argument, NULL, 'k'},
		{"name", required_argument, NULL, 'n'},
		{"bind-workers", required_argument, NULL, 'w'},
		{"retry-interval", required_argument, NULL, 'r'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *server = NULL, *token = NULL, *kubeconfig = NULL;
	struct sched_config cfg = {0};
	struct sl_client *client;
	struct sched *s;
	char err[512];
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			server = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'k':
			kubeconfig = optarg;
			break;
		case 'n':
			cfg.name = optarg;
			break;
		case 'w':
			if (num("--bind-workers", optarg, 1, 256, &v))
				return 2;
			cfg.bind_workers = (unsigned)v;
			break;
		case 'r':
			if (num("--retry-interval", optarg, 1, 86400, &v))
				return 2;
			cfg.retry_s = (unsigned)v;
			break;
		case 'l': {
			enum sl_log_level lvl;
			if (sl_log_level_parse(optarg, &lvl)) {
				fprintf(stderr,
					"sluice-scheduler: --log-level '%s': expected error, warn, "
					"info or debug\n",
					optarg);
				return 2;
			}
			sl_log_set_level(lvl);
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice-scheduler: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!server == !kubeconfig) {
		fprintf(stderr, "sluice-scheduler: give exactly one of --server or --kubeconfig\n");
		usage(stderr);
		return 2;
	}
	if (server) {
		struct sl_client_opts co = {.server = server, .token = token, .timeout_ms = 30000};
		client = sl_client_new(&co, err, sizeof(err));
	} else {
		client = sl_client_from_kubeconfig(kubeconfig, NULL, err, sizeof(err));
	}
	if (!client) {
		fprintf(stderr, "sluice-scheduler: %s\n", err);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	s = sched_start(&cfg, client, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "sluice-scheduler: %s\n", err);
		sl_client_free(client);
		return 1;
	}
	pr_info("sched", "scheduling for %s", sl_client_server(client));
	while (!stop)
		pause();
	sched_stop(s);
	sl_client_free(client);
	return 0;
}
