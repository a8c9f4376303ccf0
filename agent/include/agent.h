/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-agent: the node agent. Watches Services, EndpointSlices and Nodes
 * through the lib/ informer, folds them into the node's desired datapath
 * (agent/model.c), and applies only the difference to the pinned eBPF maps
 * (agent/datapath.c). It is never on the packet path: if it dies, the pinned
 * maps and links keep forwarding ("fail static").
 */
#ifndef SLUICE_AGENT_H
#define SLUICE_AGENT_H

#include <stdbool.h>

struct agent_config {
	const char *node_name;	    /* required */
	const char *server;	    /* API server URL, or NULL with kubeconfig */
	const char *token;	    /* bearer token or NULL */
	const char *kubeconfig;	    /* kubeconfig path or NULL */
	const char *bpffs;	    /* bpf filesystem (mounted if needed); default /sys/fs/bpf */
	const char *cgroup_root;    /* cgroup v2 dir for the socket hooks; NULL = the root */
	const char *metrics_listen; /* "127.0.0.1:10249"; "" disables */
	const char *hc_bind;	    /* address for healthCheckNodePort servers; default 0.0.0.0 */
	int sync_delay_ms;	    /* least time between syncs (default 5; see mark_dirty) */
	/* north-south uplink path (agent/nodeport.h); no devices = not loaded */
	const char *devices;   /* comma-separated interface names, or NULL */
	unsigned hash_seed;    /* flow-hash seed, equal on every node */
	unsigned nat_port_min; /* SNAT port range, inclusive; 0/0 = datapath default */
	unsigned nat_port_max;
	unsigned maglev_tables;	   /* sl_maglev_v1 capacity in tables; 0 = default */
	unsigned ct_gc_interval_s; /* conntrack GC period; 0 = default */
	/* the node's kubelet side (docs/lab.md): Node + Lease, CNI endpoint socket, pods */
	bool run_pods;		    /* register the Node and run the pods bound to it */
	const char *node_ip;	    /* InternalIP; NULL = first IPv4 of the first device */
	const char *node_labels;    /* "k=v,k2=v2" added to the registered Node, or NULL */
	const char *state_dir;	    /* NULL = /var/lib/sluice/<node> */
	const char *cni_conf_dir;   /* default /etc/cni/net.d */
	const char *cni_bin_dir;    /* default /opt/cni/bin */
	const char *cluster_dns;    /* nameserver for pods' resolv.conf, or NULL */
	const char *cluster_domain; /* default cluster.local */
	bool kernel_routing; /* --host-routing kernel: pod traffic through the node's stack */
	/* service dataplane (agent/proxier.h) */
	int dataplane;		      /* enum agent_dataplane; 0 = bpf */
	const char *iptables_variant; /* "auto" (NULL), "legacy", "nft" */
	const char *cluster_cidr;     /* pod CIDR for legacy masquerading, or NULL */
	bool masquerade_all;
};

void agent_config_defaults(struct agent_config *cfg);

/* Runs until SIGTERM/SIGINT. 0 on a clean stop, negative errno when it cannot
 * start (reason logged). Stopping leaves the datapath in place. */
int agent_run(const struct agent_config *cfg);

/* Detaches and unpins everything the agent made for this node, including the
 * tc filters of the uplink path on the interfaces of the caller's netns. */
int agent_cleanup(const char *bpffs, const char *node_name);

/* Mounts a bpf filesystem at path unless one is there already. */
int agent_bpffs_ensure(const char *path);
/* The cgroup v2 mount point (first cgroup2 entry of /proc/self/mounts). */
int agent_cgroup2_root(char *out, size_t outlen);

#endif
