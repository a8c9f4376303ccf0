// SPDX-License-Identifier: Apache-2.0
/*
 * Loader and keeper of the north-south uplink datapath (see nodeport.h for
 * the contract): tc attach/replace/detach on the node's devices, node4
 * settings, Maglev tables (shared by backend set, flipped atomically with the
 * svc4 entry, reused after a grace period) and the conntrack/NAT garbage
 * collector. Map writes are ordered like agent/datapath.c's: a table is
 * complete before any svc4 entry points at it, and released only after no
 * entry does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "abi/hostroute.h"
#include "maglev.h"
#include "nodeport.h"
#include "sluice/log.h"

#include "tc_nodeport.skel.h"

#define NP_LOG "nodeport"

/* A released Maglev table is rewritten only after this long: a program that
 * read the old svc4 entry may still be indexing the old table (microseconds). */
#define NP_TABLE_GRACE_NS (10ULL * 1000 * 1000)
#define NP_NSEC		  1000000000ULL
#define NP_GC_CHUNK	  4096 /* entries per batch lookup */

enum { NP_GC_CT_TCP, NP_GC_CT_ANY, NP_GC_NAT, NP_GC_N };
static const char *const np_gc_names[NP_GC_N] = {"ct4_tcp", "ct4_any", "nat4"};

struct np_table {
	__u32 refs;	/* svc4 entries (and open txns) pointing here */
	__u32 n;	/* backend ids the table was built from */
	__u32 *ids;	/* sorted; NULL while free or in grace (ids may be reused) */
	__u64 freed_ns; /* CLOCK_MONOTONIC when refs fell to 0; 0 = never used */
};

struct np {
	struct tc_nodeport *skel;
	int svc_fd, maglev_fd, ct_fd[2], nat_fd, node_fd, ctr_fd;
	struct np_table *tables;
	__u32 n_tables;
	struct sl_node4_cfg cfg; /* what node4[0] holds */
	struct event *gc_ev;
	unsigned gc_interval_s; /* np_opts.gc_interval_s, defaulted */
	/* observability */
	unsigned long long gc_runs, gc_deleted[NP_GC_N], maglev_builds, maglev_fallbacks;
	__u32 gc_live[NP_GC_N]; /* entries left after the last sweep */
	unsigned n_devices;
	bool warned_tables, warned_snat;
};

static __u64 np_now_ns(void)
{
	struct timespec ts;

	/* bpf_ktime_get_ns() is CLOCK_MONOTONIC too. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * NP_NSEC + (__u64)ts.tv_nsec;
}

static const char *np_proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP ? "TCP" : proto == IPPROTO_UDP ? "UDP" : "SCTP";
}

static int np_u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* --- tc attach / detach ------------------------------------------------------------- */

static int np_print_none(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

/* bpf_tc_query() on an interface without clsact and bpf_tc_hook_create() on
 * one that has it are expected to fail; libbpf would log the kernel's extack
 * as a warning each time. Probes run with the libbpf logger swapped out. */
static libbpf_print_fn_t np_quiet(void)
{
	return libbpf_set_print(np_print_none);
}

/* Kernel id of the map pinned at <pin_root>/<name>, or 0. */
static __u32 np_pinned_map_id(const char *pin_root, const char *name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_root, name);
	if (access(path, F_OK))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.id = 0;
	close(fd);
	return info.id;
}

/* Does program fd use the map with id map_id? */
static bool np_prog_uses_map(int fd, __u32 map_id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[64];

	if (bpf_obj_get_info_by_fd(fd, &info, &len) || !info.nr_map_ids)
		return false;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
	info.map_ids = (__u64)(unsigned long)ids;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	for (__u32 i = 0; i < info.nr_map_ids && i < sizeof(ids) / sizeof(ids[0]); i++)
		if (ids[i] == map_id)
			return true;
	return false;
}

/*
 * True if the filter at our handle/prio on (ifindex, dir) is this node's:
 * a tc_nodeport program that uses owner (the id of the node's pinned ct4_tcp
 * map, unique per pin root). Several agents may share a netns in a lab; each
 * only ever touches its own filters.
 */
static bool np_filter_ours(int ifindex, enum bpf_tc_attach_point dir, __u32 owner)
{
	struct bpf_tc_hook hook = {.sz = sizeof(hook), .ifindex = ifindex, .attach_point = dir};
	struct bpf_tc_opts q = {.sz = sizeof(q), .handle = NP_TC_HANDLE, .priority = NP_TC_PRIO};
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	bool ours = false;
	int fd;

	libbpf_print_fn_t prev = np_quiet();
	int rc = bpf_tc_query(&hook, &q);

	libbpf_set_print(prev);
	if (rc || !q.prog_id)
		return false;
	fd = bpf_prog_get_fd_by_id(q.prog_id);
	if (fd < 0)
		return false;
	/* Program names are cut to 15 characters: "tc_nodeport_ing". */
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		ours = !strncmp(info.name, "tc_nodeport_", 12) && np_prog_uses_map(fd, owner);
	close(fd);
	return ours;
}

static int np_filter_detach(int ifindex, const char *name, enum bpf_tc_attach_point dir,
			    __u32 owner)
{
	struct bpf_tc_hook hook = {.sz = sizeof(hook), .ifindex = ifindex, .attach_point = dir};
	struct bpf_tc_opts d = {.sz = sizeof(d), .handle = NP_TC_HANDLE, .priority = NP_TC_PRIO};
	int err;

	if (!np_filter_ours(ifindex, dir, owner))
		return 0;
	err = bpf_tc_detach(&hook, &d);
	if (err) {
		pr_err(NP_LOG, "device '%s': detaching the %s filter failed: %s", name,
		       dir == BPF_TC_INGRESS ? "ingress" : "egress", strerror(-err));
		return err;
	}
	pr_info(NP_LOG, "device '%s': %s filter detached", name,
		dir == BPF_TC_INGRESS ? "ingress" : "egress");
	return 1;
}

/* Detaches owner's filters from every interface not in keep[0..n). */
static int np_detach_except(__u32 owner, const int *keep, size_t n)
{
	struct if_nameindex *ifs, *i;
	int detached = 0, err = 0;

	if (!owner)
		return 0; /* no ct4_tcp pinned: this node never attached anything */
	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index; i++) {
		bool skip = false;
		int rc;

		for (size_t k = 0; k < n && !skip; k++)
			skip = keep[k] == (int)i->if_index;
		if (skip)
			continue;
		rc = np_filter_detach((int)i->if_index, i->if_name, BPF_TC_INGRESS, owner);
		detached += rc > 0 ? rc : 0;
		err = rc < 0 && !err ? rc : err;
		rc = np_filter_detach((int)i->if_index, i->if_name, BPF_TC_EGRESS, owner);
		detached += rc > 0 ? rc : 0;
		err = rc < 0 && !err ? rc : err;
	}
	if_freenameindex(ifs);
	return err ? err : detached;
}

int np_detach_all(const char *pin_root)
{
	return pin_root ? np_detach_except(np_pinned_map_id(pin_root, SL_MAP_CT4_TCP), NULL, 0) : 0;
}

static int np_dev_attach(struct np *np, int ifindex, const char *name)
{
	struct bpf_tc_hook hook = {.sz = sizeof(hook),
				   .ifindex = ifindex,
				   .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS};
	static const enum bpf_tc_attach_point dirs[2] = {BPF_TC_INGRESS, BPF_TC_EGRESS};
	int fds[2] = {bpf_program__fd(np->skel->progs.tc_nodeport_ingress),
		      bpf_program__fd(np->skel->progs.tc_nodeport_egress)};
	libbpf_print_fn_t prev;
	int err;

	/* clsact: creating it again is EEXIST, which is fine. */
	prev = np_quiet();
	err = bpf_tc_hook_create(&hook);
	libbpf_set_print(prev);
	if (err && err != -EEXIST) {
		pr_err(NP_LOG, "device '%s': creating the clsact qdisc failed: %s", name,
		       strerror(-err));
		return err;
	}
	for (int d = 0; d < 2; d++) {
		/* A fixed handle/prio with REPLACE: a restart swaps the program
		 * in place instead of stacking a second filter. */
		struct bpf_tc_opts to = {.sz = sizeof(to),
					 .handle = NP_TC_HANDLE,
					 .priority = NP_TC_PRIO,
					 .prog_fd = fds[d],
					 .flags = BPF_TC_F_REPLACE};

		hook.attach_point = dirs[d];
		err = bpf_tc_attach(&hook, &to);
		if (err) {
			pr_err(NP_LOG, "device '%s': attaching the %s program failed: %s", name,
			       d ? "egress" : "ingress", strerror(-err));
			return err;
		}
	}
	return 0;
}

/* --- node settings ------------------------------------------------------------------ */

static int np_cfg_write(struct np *np, const struct sl_node4_cfg *c)
{
	__u32 zero = 0;
	int err;

	if (bpf_map_update_elem(np->node_fd, &zero, c, BPF_ANY)) {
		err = -errno;
		pr_err(NP_LOG, "map '%s' key 0: update failed: %s", SL_MAP_NODE4, strerror(-err));
		return err;
	}
	np->cfg = *c;
	return 0;
}

/* The first InternalIP of node_name in nodes, or 0. */
static __be32 np_node_internal_ip(const char *node_name, struct json_object *nodes)
{
	size_t n = nodes && json_object_is_type(nodes, json_type_array)
			   ? json_object_array_length(nodes)
			   : 0;

	for (size_t i = 0; i < n; i++) {
		struct json_object *node = json_object_array_get_idx(nodes, i), *meta, *name, *st,
				   *addrs;

		if (!json_object_object_get_ex(node, "metadata", &meta) ||
		    !json_object_object_get_ex(meta, "name", &name) ||
		    strcmp(json_object_get_string(name), node_name) != 0)
			continue;
		if (!json_object_object_get_ex(node, "status", &st) ||
		    !json_object_object_get_ex(st, "addresses", &addrs) ||
		    !json_object_is_type(addrs, json_type_array))
			return 0;
		for (size_t j = 0; j < json_object_array_length(addrs); j++) {
			struct json_object *a = json_object_array_get_idx(addrs, j), *type, *addr;
			struct in_addr in;

			if (json_object_object_get_ex(a, "type", &type) &&
			    json_object_object_get_ex(a, "address", &addr) &&
			    !strcmp(json_object_get_string(type), "InternalIP") &&
			    inet_pton(AF_INET, json_object_get_string(addr), &in) == 1)
				return in.s_addr;
		}
		return 0;
	}
	return 0;
}

int np_node_sync(struct np *np, const char *node_name, struct json_object *nodes)
{
	struct sl_node4_cfg c;
	char a[INET_ADDRSTRLEN];

	if (!np || !node_name)
		return 0;
	c = np->cfg;
	c.snat_addr = np_node_internal_ip(node_name, nodes);
	if (c.snat_addr == np->cfg.snat_addr)
		return 0;
	if (!c.snat_addr && !np->warned_snat) {
		pr_warn(NP_LOG,
			"node '%s': no InternalIP in the Node's status.addresses: flows to "
			"backends on other nodes cannot be SNATed and are dropped",
			node_name);
		np->warned_snat = true;
	}
	inet_ntop(AF_INET, &c.snat_addr, a, sizeof(a));
	pr_info(NP_LOG, "node '%s': SNAT address %s", node_name, a);
	return np_cfg_write(np, &c);
}

/* --- Maglev tables ------------------------------------------------------------------- */

bool np_frontend_maglev(const struct lbm_frontend *fe)
{
	return fe && fe->key.scope == SL_SCOPE_EXT && fe->count > 0 &&
	       (fe->flags & (SL_SVC_F_NODEPORT | SL_SVC_F_LOADBALANCER | SL_SVC_F_EXTERNALIP));
}

/* Reads table t into out[SL_MAGLEV_M]. */
static int np_table_read(struct np *np, __u32 t, __u32 *out)
{
	struct bpf_map_batch_opts bo = {.sz = sizeof(bo)};
	__u32 base = t * SL_MAGLEV_M, prev = base - 1, next, n = SL_MAGLEV_M;
	__u32 *keys = calloc(SL_MAGLEV_M, sizeof(*keys));
	int err;

	if (!keys)
		return -ENOMEM;
	/* Array batches continue after in_batch's key: start "after base - 1". */
	err = bpf_map_lookup_batch(np->maglev_fd, base ? &prev : NULL, &next, keys, out, &n, &bo);
	if ((err && err != -ENOENT) || n != SL_MAGLEV_M) {
		/* Older kernels: one lookup per slot. */
		err = 0;
		for (__u32 i = 0; i < SL_MAGLEV_M && !err; i++) {
			__u32 k = base + i;

			if (bpf_map_lookup_elem(np->maglev_fd, &k, &out[i]))
				err = -errno;
		}
	} else {
		err = 0;
	}
	free(keys);
	if (err)
		pr_err(NP_LOG, "map '%s' table %u: read failed: %s", SL_MAP_MAGLEV, t,
		       strerror(-err));
	return err;
}

/* Marks the tables svc4 points at as used, with the backend sets they hold. */
static int np_tables_restore(struct np *np)
{
	struct sl_svc_key key, next, *prev = NULL;
	struct sl_svc_val val;
	__u32 *buf = NULL, adopted = 0;
	int err = 0;

	while (!bpf_map_get_next_key(np->svc_fd, prev, &next)) {
		struct np_table *tb;
		__u32 t, n = 0;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(np->svc_fd, &key, &val) || !(val.flags & SL_SVC_F_MAGLEV))
			continue;
		t = val.maglev_base / SL_MAGLEV_M;
		if (val.maglev_base % SL_MAGLEV_M || t >= np->n_tables) {
			pr_warn(NP_LOG,
				"map '%s': maglev_base %u outside the %u tables; the next "
				"sync rewrites that frontend",
				SL_MAP_SVC4, val.maglev_base, np->n_tables);
			continue;
		}
		tb = &np->tables[t];
		tb->refs++;
		if (tb->ids)
			continue;
		if (!buf && !(buf = malloc(SL_MAGLEV_M * sizeof(*buf)))) {
			err = -ENOMEM;
			break;
		}
		err = np_table_read(np, t, buf);
		if (err)
			break;
		qsort(buf, SL_MAGLEV_M, sizeof(*buf), np_u32_cmp);
		for (__u32 i = 0; i < SL_MAGLEV_M; i++)
			if (buf[i] && (!n || buf[n - 1] != buf[i]))
				buf[n++] = buf[i];
		tb->ids = malloc((n ? n : 1) * sizeof(*tb->ids));
		if (!tb->ids) {
			err = -ENOMEM;
			break;
		}
		memcpy(tb->ids, buf, n * sizeof(*buf));
		tb->n = n;
		adopted++;
	}
	free(buf);
	if (adopted)
		pr_info(NP_LOG, "adopted %u Maglev tables", adopted);
	return err;
}

static void np_table_unref(struct np *np, int t)
{
	struct np_table *tb;

	if (!np || t < 0 || (__u32)t >= np->n_tables)
		return;
	tb = &np->tables[t];
	if (!tb->refs || --tb->refs)
		return;
	free(tb->ids);
	tb->ids = NULL;
	tb->n = 0;
	tb->freed_ns = np_now_ns();
}

/* A live table built from exactly ids[0..n) (sorted), or -1. */
static int np_table_find(const struct np *np, const __u32 *ids, __u32 n)
{
	for (__u32 t = 0; t < np->n_tables; t++) {
		const struct np_table *tb = &np->tables[t];

		if (tb->refs && tb->ids && tb->n == n && !memcmp(tb->ids, ids, n * sizeof(*ids)))
			return (int)t;
	}
	return -1;
}

/* A table no entry points at and no program may still read, or -1. */
static int np_table_alloc(const struct np *np)
{
	__u64 now = np_now_ns();

	for (__u32 t = 0; t < np->n_tables; t++) {
		const struct np_table *tb = &np->tables[t];

		if (!tb->refs && (!tb->freed_ns || now - tb->freed_ns >= NP_TABLE_GRACE_NS))
			return (int)t;
	}
	return -1;
}

/* Builds fe's table into slot t (not yet referenced by anything). */
static int np_table_write(struct np *np, int t, const struct lbm_state *st,
			  const struct lbm_frontend *fe, const __u32 *ids)
{
	struct bpf_map_batch_opts bo = {.sz = sizeof(bo)};
	struct maglev_backend *mb = calloc(fe->count, sizeof(*mb));
	char(*names)[40] = calloc(fe->count, sizeof(*names));
	__u32 *table = calloc(SL_MAGLEV_M, sizeof(*table));
	__u32 *keys = calloc(SL_MAGLEV_M, sizeof(*keys));
	__u32 n = SL_MAGLEV_M;
	int err;

	if (!mb || !names || !table || !keys) {
		err = -ENOMEM;
		goto out;
	}
	for (__u16 i = 0; i < fe->count; i++) {
		const struct lbm_backend *b = &st->backends[fe->be[i]];
		char a[INET_ADDRSTRLEN];

		/* The name decides the permutation: the same on every node. */
		inet_ntop(AF_INET, &b->addr, a, sizeof(a));
		snprintf(names[i], sizeof(names[i]), "%s:%u/%s", a, ntohs(b->port),
			 np_proto_name(b->proto));
		mb[i].name = names[i];
		mb[i].id = ids[i];
		mb[i].weight = 1;
	}
	err = maglev_table_build(mb, fe->count, SL_MAGLEV_M, table);
	if (err)
		goto out;
	for (__u32 i = 0; i < SL_MAGLEV_M; i++)
		keys[i] = (__u32)t * SL_MAGLEV_M + i;
	err = bpf_map_update_batch(np->maglev_fd, keys, table, &n, &bo);
	if (err)
		pr_err(NP_LOG, "map '%s' table %d: batch update failed after %u: %s", SL_MAP_MAGLEV,
		       t, n, strerror(-err));
	else
		np->maglev_builds++;
out:
	free(mb);
	free(names);
	free(table);
	free(keys);
	return err;
}

/* Table the svc4 entry key points at now, or -1. */
static int np_table_of(struct np *np, const struct sl_svc_key *key)
{
	struct sl_svc_val v;
	__u32 t;

	if (bpf_map_lookup_elem(np->svc_fd, key, &v) || !(v.flags & SL_SVC_F_MAGLEV))
		return -1;
	t = v.maglev_base / SL_MAGLEV_M;
	return t < np->n_tables ? (int)t : -1;
}

int np_maglev_begin(struct np *np, const struct lbm_state *st, const struct lbm_frontend *fe,
		    const __u32 *ids, __u16 *flags, __u32 *maglev_base, struct np_txn *txn)
{
	__u32 *sorted;
	int t, err;

	txn->new_table = txn->old_table = -1;
	*flags &= (__u16)~SL_SVC_F_MAGLEV;
	*maglev_base = 0;
	if (!np || !np_frontend_maglev(fe))
		goto old;
	sorted = malloc(fe->count * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, ids, fe->count * sizeof(*sorted));
	qsort(sorted, fe->count, sizeof(*sorted), np_u32_cmp);
	t = np_table_find(np, sorted, fe->count);
	if (t < 0) {
		t = np_table_alloc(np);
		if (t < 0) {
			char a[INET_ADDRSTRLEN];

			free(sorted);
			np->maglev_fallbacks++;
			if (!np->warned_tables) {
				inet_ntop(AF_INET, &fe->key.addr, a, sizeof(a));
				pr_warn(NP_LOG,
					"frontend %s:%u/%s: all %u Maglev tables in use; using "
					"slot selection (raise --maglev-tables)",
					a, ntohs(fe->key.port), np_proto_name(fe->key.proto),
					np->n_tables);
				np->warned_tables = true;
			}
			goto old;
		}
		err = np_table_write(np, t, st, fe, ids);
		if (err) {
			free(sorted);
			return err;
		}
		np->tables[t].ids = sorted;
		np->tables[t].n = fe->count;
		np->tables[t].freed_ns = 0;
	} else {
		free(sorted);
	}
	np->tables[t].refs++;
	txn->new_table = t;
	*flags |= SL_SVC_F_MAGLEV;
	*maglev_base = (__u32)t * SL_MAGLEV_M;
old:
	if (np)
		txn->old_table = np_table_of(np, &fe->key);
	return 0;
}

void np_maglev_begin_delete(struct np *np, const struct sl_svc_key *key, struct np_txn *txn)
{
	txn->new_table = -1;
	txn->old_table = np && key ? np_table_of(np, key) : -1;
}

void np_txn_end(struct np *np, struct np_txn *txn, bool applied)
{
	if (!np || !txn)
		return;
	np_table_unref(np, applied ? txn->old_table : txn->new_table);
	txn->new_table = txn->old_table = -1;
}

/* --- conntrack GC -------------------------------------------------------------------- */

static __u64 np_ct_lifetime_ns(__u8 proto, __u16 flags)
{
	if (proto != IPPROTO_TCP)
		return SL_CT_LIFETIME_ANY_S * NP_NSEC;
	if (flags & (SL_CT_F_SEEN_FIN | SL_CT_F_SEEN_RST))
		return SL_CT_LIFETIME_CLOSE_S * NP_NSEC;
	return SL_CT_LIFETIME_TCP_S * NP_NSEC;
}

/* Idle longer than life at now? A stamp newer than now (touched during the
 * sweep) is alive, never a huge unsigned difference. */
static bool np_idle(__u64 last_seen, __u64 now, __u64 life)
{
	return last_seen < now && now - last_seen > life;
}

static bool np_ct_expired(const struct sl_ct4_key *k, const struct sl_ct4_val *v, __u64 now)
{
	return np_idle(v->last_seen_ns, now, np_ct_lifetime_ns(k->proto, v->flags));
}

/* nat4 entries outlive nothing: expired by protocol lifetime, or orphaned
 * (the conntrack entry that owns the port is gone, expired or moved on) and
 * idle for the TCP close lifetime. */
static bool np_nat_expired(struct np *np, const struct sl_nat4_key *k, const struct sl_nat4_val *v,
			   __u64 now)
{
	struct sl_ct4_key fk = {
		.saddr = v->orig_addr,
		.daddr = v->fe_addr,
		.sport = v->orig_port,
		.dport = v->fe_port,
		.proto = k->proto,
		.dir = SL_CT_DIR_FWD,
	};
	struct sl_ct4_val ct;
	int fd = np->ct_fd[k->proto == IPPROTO_TCP ? 0 : 1];

	if (np_idle(v->last_seen_ns, now,
		    k->proto == IPPROTO_TCP ? SL_CT_LIFETIME_TCP_S * NP_NSEC
					    : SL_CT_LIFETIME_ANY_S * NP_NSEC))
		return true;
	if (!np_idle(v->last_seen_ns, now, SL_CT_LIFETIME_CLOSE_S * NP_NSEC))
		return false;
	if (bpf_map_lookup_elem(fd, &fk, &ct))
		return true;
	return !(ct.flags & SL_CT_F_SNAT) || ct.nat_addr != k->nat_addr ||
	       ct.nat_port != k->nat_port || ct.backend_addr != k->peer_addr ||
	       np_ct_expired(&fk, &ct, now);
}

/* Is the entry (key, val) of map `which` collectable at now? */
static bool np_gc_expired(struct np *np, int which, const void *key, const void *val, __u64 now)
{
	if (which == NP_GC_NAT)
		return np_nat_expired(np, key, val, now);
	return np_ct_expired(key, val, now);
}

/*
 * Sweeps one map: batch-reads every entry, collects the expired keys, then
 * deletes each after checking it again (the datapath may have refreshed it
 * meanwhile). Returns entries deleted or a negative errno.
 */
static int np_gc_map(struct np *np, int which, int fd, size_t ksz, size_t vsz, __u64 now)
{
	struct bpf_map_batch_opts bo = {.sz = sizeof(bo)};
	unsigned char *keys = malloc(NP_GC_CHUNK * ksz), *vals = malloc(NP_GC_CHUNK * vsz);
	unsigned char *dead = NULL, val[64];
	size_t n_dead = 0, cap_dead = 0;
	__u64 tok_in = 0, tok_out = 0;
	__u32 live = 0;
	int deleted = 0, err = 0;
	bool first = true;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 n = NP_GC_CHUNK;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &tok_in, &tok_out, keys, vals, &n,
					      &bo);

		if (rc && rc != -ENOENT) {
			err = rc;
			pr_err(NP_LOG, "map '%s': batch lookup failed: %s", np_gc_names[which],
			       strerror(-rc));
			goto out;
		}
		for (__u32 i = 0; i < n; i++) {
			if (!np_gc_expired(np, which, keys + i * ksz, vals + i * vsz, now)) {
				live++;
				continue;
			}
			if (n_dead == cap_dead) {
				size_t cap = cap_dead ? cap_dead * 2 : 256;
				unsigned char *v = realloc(dead, cap * ksz);

				if (!v) {
					err = -ENOMEM;
					goto out;
				}
				dead = v;
				cap_dead = cap;
			}
			memcpy(dead + n_dead++ * ksz, keys + i * ksz, ksz);
		}
		if (rc == -ENOENT)
			break;
		tok_in = tok_out;
		first = false;
	}
	now = np_now_ns();
	for (size_t i = 0; i < n_dead; i++) {
		void *k = dead + i * ksz;

		if (bpf_map_lookup_elem(fd, k, val))
			continue; /* gone already (LRU eviction or the datapath) */
		if (!np_gc_expired(np, which, k, val, now)) {
			live++;
			continue;
		}
		if (!bpf_map_delete_elem(fd, k))
			deleted++;
	}
	np->gc_live[which] = live;
	np->gc_deleted[which] += (unsigned)deleted;
out:
	free(keys);
	free(vals);
	free(dead);
	return err ? err : deleted;
}

int np_gc(struct np *np)
{
	__u64 now = np_now_ns();
	int total = 0, rc;

	if (!np)
		return 0;
	np->gc_runs++;
	/* Conntrack first: nat4 entries whose flow was just collected go in the same run. */
	for (int i = 0; i < 2; i++) {
		rc = np_gc_map(np, i, np->ct_fd[i], sizeof(struct sl_ct4_key),
			       sizeof(struct sl_ct4_val), now);
		if (rc < 0)
			return rc;
		total += rc;
	}
	rc = np_gc_map(np, NP_GC_NAT, np->nat_fd, sizeof(struct sl_nat4_key),
		       sizeof(struct sl_nat4_val), np_now_ns());
	if (rc < 0)
		return rc;
	total += rc;
	if (total)
		pr_debug(NP_LOG, "conntrack GC: %d expired entries deleted", total);
	return total;
}

static void np_gc_cb(evutil_socket_t fd, short what, void *arg)
{
	np_gc(arg);
}

/* --- metrics ------------------------------------------------------------------------- */

void np_metrics_write(struct np *np, struct evbuffer *out)
{
	static const char *const reasons[SL_R_MAX] = {
		[SL_R_OK] = "ok",
		[SL_R_NO_BACKEND] = "no_backend",
		[SL_R_BACKEND_GONE] = "backend_gone",
		[SL_R_SLOT_OOB] = "slot_oob",
		[SL_R_CT_FULL] = "ct_full",
		[SL_R_NAT_FAIL] = "nat_fail",
		[SL_R_MALFORMED] = "malformed",
		[SL_R_UNSUPPORTED] = "unsupported",
		[SL_R_FIB_FAIL] = "fib_fail",
		[SL_R_CSUM_FAIL] = "csum_fail",
		[SL_R_REJECTED] = "rejected",
		[SL_R_TOO_BIG] = "too_big",
	};
	int ncpu = libbpf_num_possible_cpus();
	struct sl_counter *v;
	__u32 used = 0;

	if (!np || !out)
		return;
	evbuffer_add_printf(out,
			    "# TYPE sluice_nodeport_devices gauge\nsluice_nodeport_devices %u\n",
			    np->n_devices);
	v = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*v)) : NULL;
	if (v) {
		evbuffer_add_printf(out, "# TYPE sluice_nodeport_packets_total counter\n");
		for (__u32 r = 0; r < SL_R_MAX; r++) {
			unsigned long long p = 0;

			if (!reasons[r] || bpf_map_lookup_elem(np->ctr_fd, &r, v))
				continue;
			for (int c = 0; c < ncpu; c++)
				p += v[c].packets;
			evbuffer_add_printf(out,
					    "sluice_nodeport_packets_total{reason=\"%s\"} %llu\n",
					    reasons[r], p);
		}
		free(v);
	}
	evbuffer_add_printf(out,
			    "# TYPE sluice_nodeport_ct_gc_runs_total counter\n"
			    "sluice_nodeport_ct_gc_runs_total %llu\n"
			    "# TYPE sluice_nodeport_ct_gc_deleted_total counter\n",
			    np->gc_runs);
	for (int i = 0; i < NP_GC_N; i++)
		evbuffer_add_printf(out, "sluice_nodeport_ct_gc_deleted_total{map=\"%s\"} %llu\n",
				    np_gc_names[i], np->gc_deleted[i]);
	evbuffer_add_printf(out, "# TYPE sluice_nodeport_ct_entries gauge\n");
	for (int i = 0; i < NP_GC_N; i++)
		evbuffer_add_printf(out, "sluice_nodeport_ct_entries{map=\"%s\"} %u\n",
				    np_gc_names[i], np->gc_live[i]);
	for (__u32 t = 0; t < np->n_tables; t++)
		used += np->tables[t].refs ? 1 : 0;
	evbuffer_add_printf(out,
			    "# TYPE sluice_nodeport_maglev_tables gauge\n"
			    "sluice_nodeport_maglev_tables{state=\"used\"} %u\n"
			    "sluice_nodeport_maglev_tables{state=\"capacity\"} %u\n"
			    "# TYPE sluice_nodeport_maglev_builds_total counter\n"
			    "sluice_nodeport_maglev_builds_total %llu\n"
			    "# TYPE sluice_nodeport_maglev_fallbacks_total counter\n"
			    "sluice_nodeport_maglev_fallbacks_total %llu\n",
			    used, np->n_tables, np->maglev_builds, np->maglev_fallbacks);
}

/* --- lifecycle ----------------------------------------------------------------------- */

/* Tables in an already pinned sl_maglev_v1 (0 = none pinned yet). */
static __u32 np_pinned_tables(const char *pin_root)
{
	char path[4096];
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_root, SL_MAP_MAGLEV);
	if (access(path, F_OK))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.max_entries = 0;
	close(fd);
	return info.max_entries / SL_MAGLEV_M;
}

static int np_fd(struct np *np, struct bpf_map *m, const char *name)
{
	int fd = m ? bpf_map__fd(m) : -1;

	if (fd < 0)
		pr_err(NP_LOG, "map '%s': not in the BPF object (ABI name mismatch)", name);
	return fd;
}

/*
 * Raises sl_hr_npc_v1 (abi/hostroute.h) when the pinned conntrack already holds a REPLY entry:
 * entries made by a tc_nodeport_ingress older than the mark, or kept across a restart that
 * recreated the mark's map. Run after the new programs are attached, so an entry made after
 * the scan started was made by a program that raises the mark itself. Any REPLY entry counts,
 * whatever its client: the podCIDRs are not known yet at start, and the cost of a false mark
 * is only the lookup the pod path made before the mark existed. Stops at the first one.
 */
static void np_npc_adopt(struct np *np)
{
	struct sl_hr_npc m = {0};
	struct sl_ct4_key key, next, *prev;
	__u32 zero = 0;
	int fd = bpf_map__fd(np->skel->maps.sl_hr_npc_v1);

	if (fd < 0 || bpf_map_lookup_elem(fd, &zero, &m) || m.pod_client_flows)
		return;
	for (int i = 0; i < 2; i++) {
		prev = NULL;
		while (!bpf_map_get_next_key(np->ct_fd[i], prev, &next)) {
			if (next.dir == SL_CT_DIR_REPLY) {
				m.pod_client_flows = 1;
				if (bpf_map_update_elem(fd, &zero, &m, BPF_ANY))
					pr_warn(NP_LOG, "map '%s': update failed: %s",
						SL_MAP_HR_NPC, strerror(errno));
				else
					pr_info(NP_LOG,
						"map '%s': pinned conntrack has reply entries: the "
						"pod path checks it before redirect_peer",
						SL_MAP_HR_NPC);
				return;
			}
			key = next;
			prev = &key;
		}
	}
}

struct np *np_open(const struct np_opts *o)
{
	struct bpf_object_open_opts oo = {.sz = sizeof(oo)};
	struct sl_node4_cfg c = {};
	struct np *np = NULL;
	int *ifx = NULL, err;
	__u32 want, pinned, zero = 0;

	if (!o || !o->pin_root || !o->n_devices || !o->devices) {
		pr_err(NP_LOG, "open: a pin root and at least one device are required");
		errno = EINVAL;
		return NULL;
	}
	if (o->nat_port_min > o->nat_port_max || (o->nat_port_min && o->nat_port_min < 1024)) {
		pr_err(NP_LOG, "--nat-ports %u-%u: invalid (need 1024 <= MIN <= MAX <= 65535)",
		       o->nat_port_min, o->nat_port_max);
		errno = EINVAL;
		return NULL;
	}
	ifx = calloc(o->n_devices, sizeof(*ifx));
	np = calloc(1, sizeof(*np));
	if (!ifx || !np) {
		err = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < o->n_devices; i++) {
		ifx[i] = (int)if_nametoindex(o->devices[i]);
		if (!ifx[i]) {
			pr_err(NP_LOG,
			       "--devices: interface '%s': not found in this network namespace "
			       "(%s)",
			       o->devices[i], strerror(errno));
			err = -EINVAL;
			goto fail;
		}
	}

	oo.pin_root_path = o->pin_root;
	np->skel = tc_nodeport__open_opts(&oo);
	if (!np->skel) {
		err = -errno;
		pr_err(NP_LOG, "'%s': BPF object open failed: %s", o->pin_root, strerror(-err));
		goto fail;
	}
	want = o->maglev_tables ? o->maglev_tables : SL_MAX_MAGLEV_TABLES;
	pinned = np_pinned_tables(o->pin_root);
	if (pinned && pinned != want) {
		/* A pinned map is reused only with the same size; keep it (fail
		 * static) and say how to resize. */
		if (o->maglev_tables)
			pr_warn(NP_LOG,
				"map '%s': pinned with %u tables, --maglev-tables %u ignored "
				"(run --cleanup to resize)",
				SL_MAP_MAGLEV, pinned, want);
		want = pinned;
	}
	if (want > UINT32_MAX / SL_MAGLEV_M) {
		pr_err(NP_LOG, "--maglev-tables %u: too large (at most %u)", want,
		       UINT32_MAX / SL_MAGLEV_M);
		err = -EINVAL;
		goto fail;
	}
	np->n_tables = want;
	bpf_map__set_max_entries(np->skel->maps.sl_maglev_v1, want * SL_MAGLEV_M);
	err = tc_nodeport__load(np->skel);
	if (err) {
		pr_err(NP_LOG,
		       "'%s': BPF load failed: %s (a pinned map of an older layout? run "
		       "sluice-agent --cleanup)",
		       o->pin_root, strerror(-err));
		goto fail;
	}
	np->svc_fd = np_fd(np, np->skel->maps.sl_svc4_v1, SL_MAP_SVC4);
	np->maglev_fd = np_fd(np, np->skel->maps.sl_maglev_v1, SL_MAP_MAGLEV);
	np->ct_fd[0] = np_fd(np, np->skel->maps.sl_ct4_tcp_v1, SL_MAP_CT4_TCP);
	np->ct_fd[1] = np_fd(np, np->skel->maps.sl_ct4_any_v1, SL_MAP_CT4_ANY);
	np->nat_fd = np_fd(np, np->skel->maps.sl_nat4_v1, SL_MAP_NAT4);
	np->node_fd = np_fd(np, np->skel->maps.sl_node4_v1, SL_MAP_NODE4);
	np->ctr_fd = np_fd(np, np->skel->maps.sl_npctr_v1, SL_MAP_NP_COUNTERS);
	if (np->svc_fd < 0 || np->maglev_fd < 0 || np->ct_fd[0] < 0 || np->ct_fd[1] < 0 ||
	    np->nat_fd < 0 || np->node_fd < 0 || np->ctr_fd < 0) {
		err = -ENOENT;
		goto fail;
	}
	np->tables = calloc(np->n_tables ? np->n_tables : 1, sizeof(*np->tables));
	if (!np->tables) {
		err = -ENOMEM;
		goto fail;
	}
	err = np_tables_restore(np);
	if (err)
		goto fail;

	/* Keep the pinned SNAT address until the first sync has the Node. */
	bpf_map_lookup_elem(np->node_fd, &zero, &c);
	c.hash_seed = o->hash_seed;
	c.nat_port_min = o->nat_port_min;
	c.nat_port_max = o->nat_port_max;
	err = np_cfg_write(np, &c);
	if (err)
		goto fail;

	for (size_t i = 0; i < o->n_devices; i++) {
		err = np_dev_attach(np, ifx[i], o->devices[i]);
		if (err)
			goto fail;
		pr_info(NP_LOG, "device '%s': tc ingress and egress attached", o->devices[i]);
	}
	np->n_devices = (unsigned)o->n_devices;
	/* Devices dropped from --devices since the last run. */
	np_detach_except(np_pinned_map_id(o->pin_root, SL_MAP_CT4_TCP), ifx, o->n_devices);
	np_npc_adopt(np);

	np->gc_interval_s = o->gc_interval_s ? o->gc_interval_s : NP_GC_INTERVAL_DEFAULT_S;
	if (o->base && np_start_gc(np, o->base)) {
		err = -ENOMEM;
		goto fail;
	}
	free(ifx);
	return np;
fail:
	free(ifx);
	np_close(np);
	errno = -err;
	return NULL;
}

int np_start_gc(struct np *np, struct event_base *base)
{
	struct timeval tv = {np->gc_interval_s, 0};

	if (np->gc_ev)
		return 0;
	np->gc_ev = event_new(base, -1, EV_PERSIST, np_gc_cb, np);
	if (!np->gc_ev || event_add(np->gc_ev, &tv)) {
		if (np->gc_ev)
			event_free(np->gc_ev);
		np->gc_ev = NULL;
		return -ENOMEM;
	}
	return 0;
}

void np_close(struct np *np)
{
	if (!np)
		return;
	if (np->gc_ev)
		event_free(np->gc_ev);
	/* The tc filters hold the programs; closing our fds detaches nothing. */
	tc_nodeport__destroy(np->skel);
	for (__u32 t = 0; np->tables && t < np->n_tables; t++)
		free(np->tables[t].ids);
	free(np->tables);
	free(np);
}
