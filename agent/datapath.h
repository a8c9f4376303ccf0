/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Datapath loader and map writer for the socket-level service load balancer
 * (bpf/cgroup_sock_lb.bpf.c). dp_open() loads the programs with every map
 * pinned by name under <bpffs>/sluice/<node>/, attaches them to a cgroup v2
 * directory through BPF links and pins the links there too, so traffic keeps
 * flowing with the state last written when the agent stops, crashes or
 * restarts (fail static). A restarted agent adopts the pinned maps (never
 * emptied) and links (updated in place to the new programs), and rebuilds its
 * allocators from the maps.
 *
 * The writer owns every id in the maps:
 *  - backend ids: one per {addr, port, proto} (agent/model.h's identity),
 *    allocated round-robin from 1 so a removed id is reused as late as
 *    possible; restored on open from backends4 entries not in state GONE.
 *  - svc ids: one per frontend {addr, port, proto}, shared by its EXT and
 *    INT scope entries; round-robin from 1; restored from svc4.
 *  - slot blocks: first-fit extents over slots[1 .. SL_MAX_SLOTS); a service
 *    update writes a new block, flips the svc4 entry in one update, then
 *    frees the old block after a grace period (a program that read the old
 *    entry may still be reading the old block); rebuilt from svc4 on open.
 *
 * Errors are negative errno values and are logged ("datapath" subsystem)
 * naming the map and key. Not thread-safe: one sync loop owns a struct dp.
 */
#ifndef SLUICE_AGENT_DATAPATH_H
#define SLUICE_AGENT_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "abi/lb.h"

#define DP_BPFFS_DEFAULT "/sys/fs/bpf"

struct dp_opts {
	const char *bpffs;  /* bpf filesystem mount; NULL = DP_BPFFS_DEFAULT */
	const char *node;   /* node name, [A-Za-z0-9._-]{1,63}: pin root <bpffs>/sluice/<node> */
	const char *cgroup; /* cgroup v2 directory the programs attach to */
	/* Load and pin the maps but leave the socket hooks detached (and detach
	 * the links of an earlier run): a legacy dataplane (agent/proxier.h)
	 * translates service traffic, the pod datapath still uses the maps. */
	bool no_attach;
};

struct dp;

/*
 * Loads (or adopts) the socket LB under the pin root and attaches it to
 * o->cgroup. Returns a handle the caller frees with dp_close(), or NULL with
 * errno: EINVAL (bad option, named in the log), ENOTSUP (bpffs is not a bpf
 * filesystem: mount -t bpf bpf <bpffs>), or the libbpf/kernel error (a pinned
 * map whose layout no longer matches fails the load: the name carries a
 * version so a layout change means new names, never a silent reuse).
 */
struct dp *dp_open(const struct dp_opts *o);

/* Frees the handle. Detaches and unpins nothing (fail static). Accepts NULL. */
void dp_close(struct dp *dp);

/*
 * Detaches every pinned link of the node and unpins all of its maps, then
 * removes the pin root (what `sluice-agent --cleanup` runs). A node with no
 * pin root is not an error. Returns 0 or a negative errno (first failure;
 * it still removes what it can).
 */
int dp_cleanup(const char *bpffs, const char *node);

/*
 * True when dp_open() found none of the service maps pinned, so it created
 * them empty and every entry in them since was written through this handle.
 * (A first sync that wrote everything it wanted without an error then has
 * nothing stale to reconcile.)
 */
bool dp_maps_created(const struct dp *dp);

/* "<bpffs>/sluice/<node>"; owned by dp. */
const char *dp_pin_root(const struct dp *dp);

/* --- backends ------------------------------------------------------------------- */

/*
 * Creates or updates the backend {be->addr, be->port, be->proto} with state
 * and node_id from be (state must be ACTIVE or TERMINATING). Returns 0 and
 * its id in *id (may be NULL), -EINVAL, or -SL_ERR_EXHAUSTED when all
 * SL_MAX_BACKENDS - 1 ids are in use.
 */
int dp_backend_upsert(struct dp *dp, const struct sl_backend *be, __u32 *id);

/*
 * dp_backend_upsert for n backends with batched map writes (a start writes
 * every backend: one bpf() call per 8192 instead of one each). Every valid
 * entry is written; returns 0 or the first error (each one logged).
 */
int dp_backend_upsert_many(struct dp *dp, const struct sl_backend *bes, size_t n);

/* Makes room for n more backends in the id index at once (a caller that
 * writes a start's backends in chunks: one rehash, not one per doubling).
 * 0 or -ENOMEM. */
int dp_backend_reserve(struct dp *dp, size_t n);

/* The id of a live backend: 0 or -SL_ERR_NOTFOUND. */
int dp_backend_id(const struct dp *dp, __be32 addr, __be16 port, __u8 proto, __u32 *id);

/*
 * Marks the backend GONE (programs skip it from now on; sockets that were
 * translated to it keep their reverse entry) and releases its id. Services
 * should be rewritten without it first (agent/model.h orders ops that way).
 * Returns 0, -SL_ERR_NOTFOUND, or the map error.
 */
int dp_backend_remove(struct dp *dp, __be32 addr, __be16 port, __u8 proto);

/* --- services ------------------------------------------------------------------- */

struct dp_svc {
	struct sl_svc_key key;	  /* frontend (addr 0 + SL_SVC_F_NODEPORT = any local) */
	__u16 flags;		  /* enum sl_svc_flags */
	__u32 affinity_s;	  /* ClientIP affinity timeout, seconds (SL_SVC_F_AFFINITY) */
	const __u32 *backend_ids; /* count ids from dp_backend_upsert(), in slot order */
	__u16 count;		  /* 0 = refuse connections; <= SL_MAX_SLOTS_PER_SVC */
	__u32 maglev_base;	  /* with SL_SVC_F_MAGLEV: its table in sl_maglev_v1 (nodeport.h) */
};

/*
 * Creates or atomically replaces a frontend entry: new slot block, flip,
 * old block freed after a grace period. Returns 0 and the svc id in *svc_id
 * (may be NULL), -EINVAL (bad key, count, or an id that is not a live
 * backend), -SL_ERR_EXHAUSTED (no slot block or svc id free), or the map
 * error; on failure the previous entry is untouched.
 */
int dp_svc_upsert(struct dp *dp, const struct dp_svc *svc, __u32 *svc_id);

/*
 * dp_svc_upsert for many frontends, batched: every entry whose frontend
 * {addr, port, proto} is in neither scope of svc4 yet (and is not repeated
 * in svcs) is created with one batch per map, memberships, revnat4 and slot
 * blocks first and the svc4 entries last, so no entry is ever live before
 * what it points at. An entry already in svc4 exactly as wanted (flags,
 * affinity, Maglev base and the same backend ids in its block: a restart
 * adopting the maps) is left as it is. done[i] tells which are in place;
 * the caller writes the others with dp_svc_upsert() (existing frontends
 * that change, whose old block must be retired; the second scope of a new
 * frontend; invalid input or a failed batch, which dp_svc_upsert names). With svc4 not empty, a
 * small n (a steady-state sync) writes nothing here: finding the existing frontends reads the whole
 * map. Returns 0, -EINVAL or -ENOMEM (nothing written).
 */
int dp_svc_upsert_many(struct dp *dp, const struct dp_svc *svcs, size_t n, bool *done);

/* Deletes a frontend entry (one scope). 0 or -SL_ERR_NOTFOUND or the map error. */
int dp_svc_delete(struct dp *dp, const struct sl_svc_key *key);

/* --- node settings ---------------------------------------------------------------- */

/* Replaces the set of this node's addresses (NodePort wildcard match). At most
 * SL_MAX_LOCAL_ADDRS. Returns 0, -EINVAL or the map error. */
int dp_local_addrs_set(struct dp *dp, const __be32 *addrs, size_t n);

/* Netns cookie (SO_NETNS_COOKIE) whose binds on a NodePort port are refused
 * with EADDRINUSE; 0 turns the check off. Returns 0 or the map error. */
int dp_host_netns_set(struct dp *dp, __u64 netns_cookie);

/* --- observability ---------------------------------------------------------------- */

/* Sums the per-CPU counters: out[reason] for every reason < SL_R_MAX
 * (enum sl_reason, SL_R_BIND_NODEPORT, SL_R_AFFINITY_HIT). 0 or map error. */
int dp_counters_read(struct dp *dp, struct sl_counter out[SL_R_MAX]);

/* Map fill, entries used and capacity. Walks the hash maps key by key, so it
 * costs one syscall per entry: call it for metrics, not per sync. */
struct dp_fill {
	__u32 services, services_max; /* svc4 entries */
	__u32 svc_ids;		      /* svc ids in use */
	__u32 backends, backends_max; /* live backend ids */
	__u32 slots, slots_max;	      /* slots in blocks (live and in grace) */
	__u32 sock_rev, sock_rev_max; /* sockrev4 (LRU) */
	__u32 affinity, affinity_max; /* aff4 (LRU) */
	__u32 svc_be, svc_be_max;     /* svcbe4 membership pairs */
};

int dp_fill_read(struct dp *dp, struct dp_fill *out);
/* Same, but walks the maps at most every 30 s (for /metrics on the event loop). */
int dp_fill_read_cached(struct dp *dp, struct dp_fill *out);

/*
 * Enumeration for reconciliation after a restart: calls fn for every
 * frontend key in svc4 / every live backend. fn may delete or remove the
 * entry it is given (the set is collected first). A non-zero return from fn
 * stops and is returned.
 */
int dp_svc_foreach(struct dp *dp, int (*fn)(const struct sl_svc_key *key, void *arg), void *arg);
int dp_backend_foreach(struct dp *dp, int (*fn)(const struct sl_backend *be, __u32 id, void *arg),
		       void *arg);

#endif
