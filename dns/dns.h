/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-dns as a whole: dns_run() wires the API informers (Services,
 * EndpointSlices, Pods, Namespaces) into the cluster zone, starts the
 * forwarder and the DNS workers, serves /metrics, /health and /ready, and
 * runs until SIGTERM or SIGINT. main.c only parses flags into this.
 */
#ifndef SLUICE_DNS_DNS_H
#define SLUICE_DNS_DNS_H

#include "config.h"

struct dns_run_opts {
	struct dns_config cfg; /* after file + flags */
	const char *server;    /* API server URL (or kubeconfig) */
	const char *token;
	const char *kubeconfig;
	const char *resolv_conf; /* upstreams when cfg has none; default /etc/resolv.conf */
};

/* Returns 0 after a clean shutdown, or a negative error (logged) when
 * startup failed. */
int dns_run(const struct dns_run_opts *o);

#endif
