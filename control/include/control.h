/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-control: the compact Kubernetes-compatible API server (and, in later
 * issues, scheduler and controllers). This header is the only one other
 * components (tools, tests) include.
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#define CONTROL_MAX_NETNS_LISTEN 4

struct control_config {
	const char *listen;	     /* "127.0.0.1:6443" */
	const char *advertise;	     /* address put in the kubernetes Endpoints, or NULL */
	const char *data_dir;	     /* sqlite directory */
	const char *store;	     /* "sqlite" | "memory" */
	const char *service_cidr;    /* "198.18.128.0/20" lab default; 10.96.0.0/12 on real nodes */
	const char *node_port_range; /* "30000-32767" */
	const char *token_file;	     /* static tokens, CSV token,user,uid[,"groups"] */
	int64_t retain_revisions;    /* watch history kept by store and cache */
	int compact_interval_s;
	int idle_timeout_s;	   /* keep-alive idle limit for non-watch connections */
	int min_request_timeout_s; /* watches end after a random time in [t, 2t] */
	size_t watch_buffer_bytes; /* per-watcher unsent output before it is closed */
	bool sync_full;		   /* fsync every commit (default) */
	const char *ready_file;	   /* written with the bound port once serving */
	/* Extra listeners bound inside other network namespaces, "NETNS=HOST:PORT" with NETNS
	 * a path such as /run/netns/lab-cp: one process serves kubectl on the host's loopback
	 * and the lab's nodes on their own network (docs/lab.md). */
	const char *netns_listen[CONTROL_MAX_NETNS_LISTEN];
	int n_netns_listen;
	/* Controllers (control/ctl.h, docs/lab.md). */
	const char *controllers;  /* "all" (default), "none" or a comma list */
	const char *cluster_cidr; /* node IPAM range, default 10.244.0.0/16 */
	int node_cidr_mask;	  /* --node-cidr-mask-size, default 24 */
	int node_grace_s;	  /* --node-monitor-grace-period, default 40 */
};

void control_config_defaults(struct control_config *cfg);

/* Runs the API server until SIGTERM/SIGINT. Returns 0 on a clean shutdown,
 * negative errno when it cannot start (the reason is logged). */
int control_run(const struct control_config *cfg);

#endif
