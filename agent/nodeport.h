/* SPDX-License-Identifier: Apache-2.0 */
/*
 * North-south service load balancing on the node's uplinks: the loader and
 * keeper of bpf/tc_nodeport.bpf.c (NodePort, LoadBalancer ingress IPs and
 * externalIPs handled per packet, with conntrack, DNAT, SNAT toward remote
 * backends, reverse NAT, RST/ICMP refusals and Maglev backend selection).
 *
 * np_open() loads the object with the same pin root as the socket LB
 * (dp_pin_root()), so the service maps (svc4, slots, be4, aff4, svcbe4,
 * local4) are the very maps agent/datapath.c writes, and the uplink-only maps
 * (ct4_tcp, ct4_any, nat4, maglev, node4, npctr) are pinned beside them and
 * survive restarts. The two programs are attached to each --devices
 * interface as clsact direct-action filters with a fixed handle and priority
 * (NP_TC_HANDLE, NP_TC_PRIO) and BPF_TC_F_REPLACE: a restarted agent replaces
 * its filters in place (no duplicate, no gap), and the filters, not any pin,
 * keep the programs alive while no agent runs (fail static). Interfaces of the
 * netns that carry this node's filter but are no longer listed are detached
 * (a filter is this node's when its program uses the node's pinned ct4_tcp
 * map, so agents of several nodes may share a netns).
 *
 * Which frontends use Maglev: EXT-scope entries of NodePort, LoadBalancer
 * and externalIP frontends with at least one backend (north-south: a client
 * may reach any node, or move between nodes behind an external LB, and must
 * land on the same backend without shared state; Maglev with a cluster-wide
 * hash seed guarantees that). ClusterIP and INT-scope entries are only ever
 * looked up by the socket LB, which picks per connection and needs no
 * cross-node agreement; they keep plain slot selection. The model stays
 * unaware of this: the flag and the table base are added here, on the way to
 * the map.
 *
 * Maglev tables: SL_MAGLEV_M slots each, in the flat sl_maglev_v1 array
 * (table t at maglev_base = t * SL_MAGLEV_M). Frontends with the same backend
 * set share one table (NodePort, LB IP and externalIP of one service port
 * usually do); a changed set gets a fresh table that the svc4 update flips to
 * atomically, and the old table is reused only after a grace period. When
 * every table is in use a frontend falls back to slot selection (logged,
 * counted in /metrics). On start the tables in use are found from svc4.
 *
 * Conntrack GC: a timer sweeps ct4_tcp, ct4_any and nat4 and deletes the
 * entries the datapath already treats as absent (idle past the lifetimes in
 * abi/lb.h), plus nat4 entries whose conntrack entry is gone; counted in
 * /metrics.
 *
 * Not thread-safe: the agent's event loop owns a struct np. Every function
 * accepts a NULL np and then does nothing (no --devices: no N-S path).
 */
#ifndef SLUICE_AGENT_NODEPORT_H
#define SLUICE_AGENT_NODEPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include <json-c/json.h>

#include "abi/lb.h"
#include "model.h"

struct event_base;
struct evbuffer;

#define NP_TC_HANDLE		 0x51ce	     /* tc filter handle of both programs on every device */
#define NP_TC_PRIO		 1	     /* tc filter priority: first in the clsact chain */
#define NP_HASH_SEED_DEFAULT	 0x51ce5eedu /* must be equal on every node (Maglev) */
#define NP_GC_INTERVAL_DEFAULT_S 30

struct np_opts {
	const char *pin_root;	    /* dp_pin_root(): maps shared by name; required */
	const char *const *devices; /* interface names in the caller's netns */
	size_t n_devices;	    /* >= 1 */
	__u32 hash_seed;	    /* flow-hash seed, cluster-wide (NP_HASH_SEED_DEFAULT) */
	__u16 nat_port_min;	    /* SNAT source ports, inclusive; 0/0 = SL_NAT_PORT_MIN/MAX */
	__u16 nat_port_max;
	__u32 maglev_tables;	 /* capacity of sl_maglev_v1 in tables; 0 = SL_MAX_MAGLEV_TABLES
				  * (a pinned map keeps its size; a mismatch is logged) */
	unsigned gc_interval_s;	 /* conntrack GC period; 0 = NP_GC_INTERVAL_DEFAULT_S */
	struct event_base *base; /* loop for the GC timer; NULL = no timer (np_gc by hand) */
};

struct np;

/*
 * Loads (or adopts) tc_nodeport under o->pin_root, writes the node settings
 * (seed, port range; the SNAT address keeps its pinned value until
 * np_node_sync), restores the Maglev table allocator from svc4, attaches to
 * every device and detaches our filter from the netns's other interfaces.
 * Returns a handle (free with np_close) or NULL with errno: EINVAL (bad
 * option or unknown device, named in the log), or the libbpf/kernel error.
 */
struct np *np_open(const struct np_opts *o);

/*
 * Starts the conntrack GC timer on base (every gc_interval_s of the open's
 * options), for a handle opened with base NULL: the agent opens the uplink
 * datapath on a setup thread and adds the timer on its loop's thread, as
 * libevent wants. 0 or -ENOMEM; a second call is a no-op.
 */
int np_start_gc(struct np *np, struct event_base *base);

/* Frees the handle; the tc filters stay attached (fail static). Accepts NULL. */
void np_close(struct np *np);

/*
 * Detaches the tc filters of the node whose pin root is pin_root
 * (NP_TC_HANDLE/NP_TC_PRIO, a tc_nodeport_* program using that root's pinned
 * ct4_tcp map, which both programs use) from every interface of the caller's
 * netns; other filters, other nodes' filters and the clsact qdisc are left
 * alone. Nothing pinned there =
 * nothing to detach. Returns the number of filters detached, or a negative
 * errno.
 */
int np_detach_all(const char *pin_root);

/*
 * Node settings from the Node objects (as sl_informer_list() returns them):
 * the SNAT source is this node's first InternalIP (0 = none: flows to remote
 * backends are dropped and counted as nat_fail). Writes node4 only when it
 * changes. Returns 0 or the map error.
 */
int np_node_sync(struct np *np, const char *node_name, struct json_object *nodes);

/* True if this frontend's EXT entry should use Maglev (see the top of this file). */
bool np_frontend_maglev(const struct lbm_frontend *fe);

/* One svc4 write's Maglev bookkeeping: tables to release after it. */
struct np_txn {
	int new_table; /* table the new entry points at; -1 = none */
	int old_table; /* table the entry pointed at before; -1 = none */
};

/*
 * Before writing fe's svc4 entry: if it uses Maglev, finds or builds the
 * table for its backends (ids[i] is the backends4 id of
 * st->backends[fe->be[i]]) and sets SL_SVC_F_MAGLEV in *flags and the base
 * in *maglev_base. Always fills txn; call np_txn_end() after the write.
 * Returns 0 (also when it falls back to slots) or -ENOMEM / the map error.
 */
int np_maglev_begin(struct np *np, const struct lbm_state *st, const struct lbm_frontend *fe,
		    const __u32 *ids, __u16 *flags, __u32 *maglev_base, struct np_txn *txn);

/* Before deleting the svc4 entry key. Always fills txn. */
void np_maglev_begin_delete(struct np *np, const struct sl_svc_key *key, struct np_txn *txn);

/* After the write: applied releases the old table, else the new one. */
void np_txn_end(struct np *np, struct np_txn *txn, bool applied);

/*
 * One conntrack GC sweep (the timer calls it). Returns the number of entries
 * deleted, or a negative errno.
 */
int np_gc(struct np *np);

/* Appends Prometheus text: N-S datapath counters, CT/NAT fill and GC, Maglev tables. */
void np_metrics_write(struct np *np, struct evbuffer *out);

#endif
