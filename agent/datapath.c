// SPDX-License-Identifier: Apache-2.0
/*
 * Loader and map writer of the socket load balancer (see datapath.h for the
 * contract). Shape follows libbpf-bootstrap: open with the pin root set,
 * load (libbpf reuses compatible pinned maps by name and pins new ones),
 * attach or adopt one pinned BPF link per program, then restore the id and
 * slot allocators from what the maps hold. Everything after that is plain
 * map writes ordered so that no entry ever points at something missing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice/err.h"
#include "sluice/log.h"

#include "bigmem.h"
#include "datapath.h"
#include "cgroup_sock_lb.skel.h"

#define DP_LOG "datapath"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/* A freed slot block is reused only after this long: a program that read the
 * old svc4 entry may still be indexing the old block (a few microseconds). */
#define DP_SLOT_GRACE_NS (10ULL * 1000 * 1000)

#define DP_NPROGS 5

/* --- small helpers ------------------------------------------------------------------- */

static void dp_fd_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

static __u64 dp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static const char *dp_proto_name(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	default:
		return "?";
	}
}

static bool dp_proto_ok(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* "198.18.128.10:80/TCP" into buf (for log lines). */
static const char *dp_addr_str(char *buf, size_t len, __be32 addr, __be16 port, __u8 proto)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &addr, a, sizeof(a));
	snprintf(buf, len, "%s:%u/%s", a, ntohs(port), dp_proto_name(proto));
	return buf;
}

static const char *dp_key_str(char *buf, size_t len, const struct sl_svc_key *k)
{
	char a[48];

	dp_addr_str(a, sizeof(a), k->addr, k->port, k->proto);
	snprintf(buf, len, "%s %s", a, k->scope == SL_SCOPE_INT ? "int" : "ext");
	return buf;
}

/* --- bitmap id allocator (round robin so freed ids are reused late) ------------------- */

struct dp_ids {
	__u64 *bits;
	__u32 max;  /* ids 1 .. max-1; id 0 is never handed out */
	__u32 next; /* where the next search starts */
	__u32 used;
};

static int dp_ids_init(struct dp_ids *ids, __u32 max)
{
	ids->bits = calloc((max + 63) / 64, sizeof(__u64));
	if (!ids->bits)
		return -ENOMEM;
	ids->max = max;
	ids->next = 1;
	ids->used = 0;
	return 0;
}

static bool dp_ids_test(const struct dp_ids *ids, __u32 id)
{
	return id && id < ids->max && (ids->bits[id / 64] >> (id % 64)) & 1;
}

static void dp_ids_set(struct dp_ids *ids, __u32 id)
{
	if (id && id < ids->max && !dp_ids_test(ids, id)) {
		ids->bits[id / 64] |= 1ULL << (id % 64);
		ids->used++;
	}
}

static void dp_ids_clear(struct dp_ids *ids, __u32 id)
{
	if (dp_ids_test(ids, id)) {
		ids->bits[id / 64] &= ~(1ULL << (id % 64));
		ids->used--;
	}
}

static __u32 dp_ids_alloc(struct dp_ids *ids)
{
	if (ids->used >= ids->max - 1)
		return 0;
	for (__u32 n = 0; n < ids->max; n++) {
		__u32 id = ids->next;

		ids->next = id + 1 >= ids->max ? 1 : id + 1;
		if (!dp_ids_test(ids, id)) {
			dp_ids_set(ids, id);
			return id;
		}
	}
	return 0;
}

/* --- backend identity index: open addressing, linear probing ---------------------------- */

struct dp_be_ent {
	__u64 key; /* addr << 32 | port << 8 | proto; 0 = empty (addr 0 is never a backend) */
	__u32 id;
};

struct dp_be_index {
	struct dp_be_ent *v;
	size_t cap; /* power of two */
	size_t n;
};

static __u64 dp_be_key(__be32 addr, __be16 port, __u8 proto)
{
	return (__u64)addr << 32 | (__u64)port << 8 | proto;
}

static size_t dp_be_hash(__u64 k, size_t cap)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

/* The entry holding key, or the empty entry where it would go (cap != 0). */
static struct dp_be_ent *dp_be_index_slot(const struct dp_be_index *ix, __u64 key)
{
	size_t i;

	for (i = dp_be_hash(key, ix->cap); ix->v[i].key && ix->v[i].key != key;
	     i = (i + 1) & (ix->cap - 1))
		;
	return &ix->v[i];
}

/* Where be's probe starts (for prefetching; cap != 0). */
static const void *dp_be_index_home(const struct dp_be_index *ix, const struct sl_backend *be)
{
	return &ix->v[dp_be_hash(dp_be_key(be->addr, be->port, be->proto), ix->cap)];
}

#define DP_PREFETCH 8

static __u32 dp_be_index_get(const struct dp_be_index *ix, __u64 key)
{
	return ix->cap ? dp_be_index_slot(ix, key)->id : 0;
}

/* Room for n more keys at load factor <= 1/2, in one rehash: a start adds
 * 200,000 backends, and doubling from 256 rehashed them ten times. */
static int dp_be_index_reserve(struct dp_be_index *ix, size_t n)
{
	struct dp_be_index big = {0};
	size_t need = (ix->n + n) * 2;

	if (need <= ix->cap)
		return 0;
	for (big.cap = ix->cap ? ix->cap : 256; big.cap < need; big.cap *= 2)
		;
	big.v = sl_big_calloc(big.cap * sizeof(*big.v));
	if (!big.v)
		return -ENOMEM;
	for (size_t i = 0; i < ix->cap; i++) {
		if (ix->v[i].key) {
			*dp_be_index_slot(&big, ix->v[i].key) = ix->v[i];
			big.n++;
		}
	}
	sl_big_free(ix->v, ix->cap * sizeof(*ix->v));
	*ix = big;
	return 0;
}

static int dp_be_index_put(struct dp_be_index *ix, __u64 key, __u32 id)
{
	struct dp_be_ent *e;
	int err = dp_be_index_reserve(ix, 1);

	if (err)
		return err;
	e = dp_be_index_slot(ix, key);
	if (!e->key)
		ix->n++;
	e->key = key;
	e->id = id;
	return 0;
}

/* Backward-shift deletion: no tombstones, probes stay exact. */
static void dp_be_index_del(struct dp_be_index *ix, __u64 key)
{
	size_t mask = ix->cap - 1, i, j;

	if (!ix->cap)
		return;
	for (i = dp_be_hash(key, ix->cap); ix->v[i].key != key; i = (i + 1) & mask)
		if (!ix->v[i].key)
			return;
	ix->n--;
	for (j = (i + 1) & mask; ix->v[j].key; j = (j + 1) & mask) {
		size_t home = dp_be_hash(ix->v[j].key, ix->cap);

		/* Move j into the hole at i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			ix->v[i] = ix->v[j];
			i = j;
		}
	}
	ix->v[i].key = 0;
	ix->v[i].id = 0;
}

/* --- slot blocks: first-fit extents ------------------------------------------------------ */

struct dp_ext {
	__u32 start;
	__u32 len;
};

struct dp_pending {
	struct dp_ext blk;
	__u64 freed_ns; /* CLOCK_MONOTONIC */
};

struct dp_slots {
	struct dp_ext *free; /* sorted by start, never adjacent (coalesced) */
	size_t n_free, cap_free;
	struct dp_pending *pend; /* freed blocks in their grace period */
	size_t n_pend, cap_pend;
	__u32 used; /* slots in live and pending blocks */
};

static int dp_slots_free_insert(struct dp_slots *s, __u32 start, __u32 len)
{
	size_t i;

	if (!len)
		return 0;
	for (i = 0; i < s->n_free && s->free[i].start < start; i++)
		;
	/* Coalesce with the previous and/or next extent. */
	if (i > 0 && s->free[i - 1].start + s->free[i - 1].len == start) {
		s->free[i - 1].len += len;
		if (i < s->n_free && start + len == s->free[i].start) {
			s->free[i - 1].len += s->free[i].len;
			memmove(&s->free[i], &s->free[i + 1],
				(s->n_free - i - 1) * sizeof(*s->free));
			s->n_free--;
		}
		return 0;
	}
	if (i < s->n_free && start + len == s->free[i].start) {
		s->free[i].start = start;
		s->free[i].len += len;
		return 0;
	}
	if (s->n_free == s->cap_free) {
		size_t cap = s->cap_free ? s->cap_free * 2 : 64;
		struct dp_ext *v = realloc(s->free, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->free = v;
		s->cap_free = cap;
	}
	memmove(&s->free[i + 1], &s->free[i], (s->n_free - i) * sizeof(*s->free));
	s->free[i].start = start;
	s->free[i].len = len;
	s->n_free++;
	return 0;
}

/* Returns pending blocks older than the grace period (all of them if force). */
static void dp_slots_reclaim(struct dp_slots *s, bool force)
{
	__u64 now = dp_now_ns();
	size_t k = 0;

	for (size_t i = 0; i < s->n_pend; i++) {
		struct dp_pending *p = &s->pend[i];

		if ((force || now - p->freed_ns >= DP_SLOT_GRACE_NS) &&
		    !dp_slots_free_insert(s, p->blk.start, p->blk.len)) {
			s->used -= p->blk.len;
			continue;
		}
		s->pend[k++] = *p;
	}
	s->n_pend = k;
}

/* First fit. Returns the block start, or 0 when nothing fits. */
static __u32 dp_slots_alloc(struct dp_slots *s, __u32 len)
{
	for (int pass = 0; pass < 2; pass++) {
		dp_slots_reclaim(s, pass == 1);
		for (size_t i = 0; i < s->n_free; i++) {
			struct dp_ext *e = &s->free[i];
			__u32 start = e->start;

			if (e->len < len)
				continue;
			e->start += len;
			e->len -= len;
			if (!e->len) {
				memmove(e, e + 1, (s->n_free - i - 1) * sizeof(*e));
				s->n_free--;
			}
			s->used += len;
			return start;
		}
		if (!s->n_pend)
			break;
		pr_debug(DP_LOG, "slots: no free block of %u, reusing blocks in grace", len);
	}
	return 0;
}

/* Puts a block that the maps no longer reference into its grace period. */
static void dp_slots_release(struct dp_slots *s, __u32 start, __u32 len)
{
	if (!len)
		return;
	if (s->n_pend == s->cap_pend) {
		size_t cap = s->cap_pend ? s->cap_pend * 2 : 16;
		struct dp_pending *v = realloc(s->pend, cap * sizeof(*v));

		if (!v) {
			/* No memory for the grace list: free at once (a tiny race beats a
			 * leaked block). */
			if (!dp_slots_free_insert(s, start, len))
				s->used -= len;
			return;
		}
		s->pend = v;
		s->cap_pend = cap;
	}
	s->pend[s->n_pend].blk.start = start;
	s->pend[s->n_pend].blk.len = len;
	s->pend[s->n_pend].freed_ns = dp_now_ns();
	s->n_pend++;
}

static void dp_slots_fini(struct dp_slots *s)
{
	free(s->free);
	free(s->pend);
	memset(s, 0, sizeof(*s));
}

static int dp_ext_cmp(const void *a, const void *b)
{
	const struct dp_ext *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Free extents = [1, SL_MAX_SLOTS) minus the used blocks (sorted in place). */
static int dp_slots_rebuild(struct dp_slots *s, struct dp_ext *used, size_t n)
{
	__u32 pos = 1;
	int err;

	if (n)
		qsort(used, n, sizeof(*used), dp_ext_cmp);
	s->used = 0;
	for (size_t i = 0; i < n; i++) {
		if (used[i].start < pos) {
			pr_warn(DP_LOG, "map '%s': slot block %u+%u overlaps another block",
				SL_MAP_SVC4, used[i].start, used[i].len);
			if (used[i].start + used[i].len <= pos)
				continue;
			used[i].len -= pos - used[i].start;
			used[i].start = pos;
		}
		err = dp_slots_free_insert(s, pos, used[i].start - pos);
		if (err)
			return err;
		pos = used[i].start + used[i].len;
		s->used += used[i].len;
	}
	return dp_slots_free_insert(s, pos, SL_MAX_SLOTS - pos);
}

/* --- the handle ----------------------------------------------------------------------- */

struct dp_link {
	const char *prog; /* program name, also the pin file suffix */
	struct bpf_link *link;
};

#define DP_FILL_REFRESH_S 30 /* how often dp_fill_read walks the maps */

struct dp {
	struct dp_fill fill; /* last walk's figures */
	/* backends refused for want of an id since the last summary: the first
	 * few are named, the rest counted (a sync past the map's size would
	 * otherwise log one line per backend, every retry) */
	unsigned be_full_n;
	time_t fill_at; /* CLOCK_MONOTONIC seconds of that walk, 0 = never */
	struct cgroup_sock_lb *skel;
	char root[PATH_MAX];
	int cgroup_fd;
	struct dp_link links[DP_NPROGS];
	/* map fds (owned by skel) */
	int svc_fd, slots_fd, be_fd, revnat_fd, sockrev_fd, aff_fd, svcbe_fd, local_fd, cfg_fd,
		ctr_fd;
	struct dp_ids be_ids;
	struct dp_ids svc_ids;
	struct dp_be_index be_index;
	struct dp_slots slots;
	bool created; /* the load created every service map (nothing adopted) */
};

const char *dp_pin_root(const struct dp *dp)
{
	return dp ? dp->root : NULL;
}

static int dp_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	if ((level == LIBBPF_DEBUG && sl_log_threshold < SL_LOG_DEBUG) ||
	    (level == LIBBPF_INFO && sl_log_threshold < SL_LOG_INFO))
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (n && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	if (level == LIBBPF_WARN)
		pr_warn("libbpf", "%s", msg);
	else if (level == LIBBPF_INFO)
		pr_info("libbpf", "%s", msg);
	else
		pr_debug("libbpf", "%s", msg);
	return 0;
}

static bool dp_node_ok(const char *node)
{
	size_t n = node ? strlen(node) : 0;

	if (!n || n > 63 || !strcmp(node, ".") || !strcmp(node, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = node[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int dp_root_path(char *buf, size_t len, const char *bpffs, const char *node)
{
	int n;

	if (!bpffs)
		bpffs = DP_BPFFS_DEFAULT;
	if (!dp_node_ok(node)) {
		pr_err(DP_LOG, "node name '%s': invalid: use 1-63 of [A-Za-z0-9._-]",
		       node ? node : "(null)");
		return -EINVAL;
	}
	n = snprintf(buf, len, "%s/sluice/%s", bpffs, node);
	if (n < 0 || (size_t)n >= len) {
		pr_err(DP_LOG, "bpffs '%s': path too long", bpffs);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int dp_mkdir(const char *path)
{
	if (mkdir(path, 0700) && errno != EEXIST) {
		int err = -errno;

		pr_err(DP_LOG, "pin dir '%s': mkdir failed: %s", path, strerror(-err));
		return err;
	}
	return 0;
}

static int dp_map_fd(struct dp *dp, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(dp->skel->obj, name);

	if (!m) {
		pr_err(DP_LOG, "map '%s': not in the BPF object (ABI name mismatch)", name);
		return -ENOENT;
	}
	return bpf_map__fd(m);
}

/* Detaches and unpins <root>/link_<prog> if an earlier run left one. */
static void dp_link_drop(struct dp *dp, const char *prog)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/link_%s", dp->root, prog) >= (int)sizeof(path) ||
	    access(path, F_OK))
		return;
	fd = bpf_obj_get(path);
	if (fd >= 0 && bpf_link_detach(fd))
		pr_warn(DP_LOG, "link '%s': detach failed: %s", path, strerror(errno));
	dp_fd_close(fd);
	if (unlink(path))
		pr_warn(DP_LOG, "pin '%s': unlink failed: %s", path, strerror(errno));
	else
		pr_info(DP_LOG, "link '%s': detached (socket LB off)", path);
}

/* Attaches prog to the cgroup, or adopts the link pinned at <root>/link_<prog>
 * and swaps its program in place (no window without a program). */
static int dp_link_setup(struct dp *dp, struct dp_link *l, struct bpf_program *prog, __u64 cg_id)
{
	char path[PATH_MAX + 32];
	struct bpf_link *old;
	int err;

	l->prog = bpf_program__name(prog);
	snprintf(path, sizeof(path), "%s/link_%s", dp->root, l->prog);
	/* Probe first: libbpf warns when bpf_link__open() finds nothing. */
	old = access(path, F_OK) ? NULL : bpf_link__open(path);
	if (old) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);

		err = bpf_obj_get_info_by_fd(bpf_link__fd(old), &info, &len);
		if (!err && info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cg_id &&
		    !bpf_link__update_program(old, prog)) {
			pr_debug(DP_LOG, "link '%s': adopted, program updated", path);
			l->link = old;
			return 0;
		}
		/* Attached elsewhere or not updatable: attach anew, then drop
		 * the old pin (its link detaches when the last reference goes). */
		pr_warn(DP_LOG, "link '%s': pinned link not reusable, replacing it", path);
		bpf_link__disconnect(old);
		bpf_link__destroy(old);
	}
	l->link = bpf_program__attach_cgroup(prog, dp->cgroup_fd);
	if (!l->link) {
		err = -errno;
		pr_err(DP_LOG, "program '%s': attach to cgroup failed: %s", l->prog,
		       strerror(-err));
		return err;
	}
	if (old)
		unlink(path);
	err = bpf_link__pin(l->link, path);
	if (err) {
		pr_err(DP_LOG, "link '%s': pin failed: %s", path, strerror(-err));
		return err;
	}
	return 0;
}

/* Chunk of the batched backend walk and writes (keys + values on the heap). */
#define DP_BATCH 8192

/*
 * Calls fn for every live backend in be4: batched lookups where the kernel
 * has them for arrays (5.6+), one lookup per id otherwise.
 */
static int dp_be_walk(struct dp *dp,
		      int (*fn)(struct dp *dp, __u32 id, const struct sl_backend *be, void *arg),
		      void *arg)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 *keys = calloc(DP_BATCH, sizeof(*keys)), in = 0, out = 0, n;
	struct sl_backend *vals = calloc(DP_BATCH, sizeof(*vals));
	bool first = true, done = false;
	int err = 0;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	while (!done && !err) {
		n = DP_BATCH;
		if (bpf_map_lookup_batch(dp->be_fd, first ? NULL : &in, &out, keys, vals, &n,
					 &bo)) {
			if (errno != ENOENT) {
				if (!first)
					err = -errno;
				break; /* no batch support: walk id by id below */
			}
			done = true; /* ENOENT: the last chunk */
		}
		first = false;
		in = out;
		for (__u32 i = 0; i < n && !err; i++)
			if (keys[i] && vals[i].addr && vals[i].state != SL_BE_GONE)
				err = fn(dp, keys[i], &vals[i], arg);
	}
	if (!first || err)
		goto out;
	for (__u32 id = 1; id < SL_MAX_BACKENDS && !err; id++) {
		struct sl_backend be;

		if (bpf_map_lookup_elem(dp->be_fd, &id, &be) || !be.addr || be.state == SL_BE_GONE)
			continue;
		err = fn(dp, id, &be, arg);
	}
out:
	free(keys);
	free(vals);
	return err;
}

static int dp_restore_be(struct dp *dp, __u32 id, const struct sl_backend *be, void *arg)
{
	dp_ids_set(&dp->be_ids, id);
	return dp_be_index_put(&dp->be_index, dp_be_key(be->addr, be->port, be->proto), id);
}

/* True when root holds no pin of the map name yet. */
static bool dp_pin_absent(const char *root, const char *name)
{
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool absent;

	if (dfd < 0)
		return false; /* unknown: walk */
	absent = faccessat(dfd, name, F_OK, 0) != 0 && errno == ENOENT;
	close(dfd);
	return absent;
}

/* True when none of the maps dp writes service state into is pinned yet:
 * the load creates them all, empty. */
static bool dp_pins_absent(const char *root)
{
	static const char *const names[] = {SL_MAP_SVC4, SL_MAP_SLOTS, SL_MAP_BACKENDS4,
					    SL_MAP_REVNAT4, SL_MAP_SVC_BE4};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!dp_pin_absent(root, names[i]))
			return false;
	return true;
}

bool dp_maps_created(const struct dp *dp)
{
	return dp && dp->created;
}

/* Restores the allocators from the (possibly adopted) maps. fresh: the maps
 * were created by this load, so there is nothing to adopt. */
static int dp_restore(struct dp *dp, bool fresh)
{
	struct dp_ext *used = NULL;
	size_t n_used = 0, cap_used = 0;
	struct sl_svc_key key, next, *prev = NULL;
	struct sl_svc_val val;
	int err = 0;

	while (!fresh && !bpf_map_get_next_key(dp->svc_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(dp->svc_fd, &key, &val))
			continue;
		dp_ids_set(&dp->svc_ids, val.svc_id);
		if (!val.count)
			continue;
		if (n_used == cap_used) {
			size_t cap = cap_used ? cap_used * 2 : 64;
			struct dp_ext *v = realloc(used, cap * sizeof(*v));

			if (!v) {
				err = -ENOMEM;
				goto out;
			}
			used = v;
			cap_used = cap;
		}
		used[n_used].start = val.slot_base;
		used[n_used].len = val.count;
		n_used++;
	}
	err = dp_slots_rebuild(&dp->slots, used, n_used);
	if (err)
		goto out;

	/* Backends: the whole array, in batches (one lookup per id was ~0.2 s
	 * at 262144 ids, paid even on fresh maps). */
	if (!fresh)
		err = dp_be_walk(dp, dp_restore_be, NULL);
	if (err)
		goto out;
	if (dp->svc_ids.used || dp->be_ids.used)
		pr_info(DP_LOG, "'%s': adopted %u services ids, %u backends, %u slots", dp->root,
			dp->svc_ids.used, dp->be_ids.used, dp->slots.used);
out:
	free(used);
	return err;
}

struct dp *dp_open(const struct dp_opts *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct bpf_program *progs[DP_NPROGS];
	char parent[PATH_MAX];
	struct statfs sfs;
	struct stat st;
	struct dp *dp;
	const char *bpffs;
	bool fresh;
	int err;

	if (!o || !o->cgroup) {
		pr_err(DP_LOG, "open: options and cgroup path are required");
		errno = EINVAL;
		return NULL;
	}
	bpffs = o->bpffs ? o->bpffs : DP_BPFFS_DEFAULT;
	dp = calloc(1, sizeof(*dp));
	if (!dp) {
		errno = ENOMEM;
		return NULL;
	}
	dp->cgroup_fd = -1;
	err = dp_root_path(dp->root, sizeof(dp->root), bpffs, o->node);
	if (err)
		goto fail;
	if (statfs(bpffs, &sfs) || sfs.f_type != BPF_FS_MAGIC) {
		pr_err(DP_LOG, "bpffs '%s': not a bpf filesystem: mount -t bpf bpf %s", bpffs,
		       bpffs);
		err = -ENOTSUP;
		goto fail;
	}
	dp->cgroup_fd = open(o->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dp->cgroup_fd < 0 || fstat(dp->cgroup_fd, &st)) {
		err = -errno;
		pr_err(DP_LOG, "cgroup '%s': open failed: %s", o->cgroup, strerror(-err));
		goto fail;
	}
	snprintf(parent, sizeof(parent), "%s/sluice", bpffs);
	err = dp_mkdir(parent);
	if (!err)
		err = dp_mkdir(dp->root);
	if (err)
		goto fail;
	err = dp_ids_init(&dp->be_ids, SL_MAX_BACKENDS);
	if (!err)
		err = dp_ids_init(&dp->svc_ids, SL_MAX_SERVICES);
	if (err)
		goto fail;

	/* No backends pin yet: the load creates every map (a cleaned or new
	 * node) and the restore walk has nothing to find. */
	fresh = dp_pin_absent(dp->root, SL_MAP_BACKENDS4);
	dp->created = fresh && dp_pins_absent(dp->root);
	libbpf_set_print(dp_libbpf_print);
	oo.pin_root_path = dp->root;
	dp->skel = cgroup_sock_lb__open_opts(&oo);
	if (!dp->skel) {
		err = -errno;
		pr_err(DP_LOG, "'%s': BPF object open failed: %s", dp->root, strerror(-err));
		goto fail;
	}
	/* Maps already pinned under root are reused as they are (fail static:
	 * never emptied); an incompatible one fails the load. */
	err = cgroup_sock_lb__load(dp->skel);
	if (err) {
		pr_err(DP_LOG,
		       "'%s': BPF load failed: %s (a pinned map of an older layout? "
		       "run sluice-agent --cleanup)",
		       dp->root, strerror(-err));
		goto fail;
	}
	dp->svc_fd = dp_map_fd(dp, SL_MAP_SVC4);
	dp->slots_fd = dp_map_fd(dp, SL_MAP_SLOTS);
	dp->be_fd = dp_map_fd(dp, SL_MAP_BACKENDS4);
	dp->revnat_fd = dp_map_fd(dp, SL_MAP_REVNAT4);
	dp->sockrev_fd = dp_map_fd(dp, SL_MAP_SOCK_REV4);
	dp->aff_fd = dp_map_fd(dp, SL_MAP_AFFINITY4);
	dp->svcbe_fd = dp_map_fd(dp, SL_MAP_SVC_BE4);
	dp->local_fd = dp_map_fd(dp, SL_MAP_LOCAL4);
	dp->cfg_fd = dp_map_fd(dp, SL_MAP_CFG);
	dp->ctr_fd = dp_map_fd(dp, SL_MAP_COUNTERS);
	if (dp->svc_fd < 0 || dp->slots_fd < 0 || dp->be_fd < 0 || dp->revnat_fd < 0 ||
	    dp->sockrev_fd < 0 || dp->aff_fd < 0 || dp->svcbe_fd < 0 || dp->local_fd < 0 ||
	    dp->cfg_fd < 0 || dp->ctr_fd < 0) {
		err = -ENOENT;
		goto fail;
	}
	err = dp_restore(dp, fresh);
	if (err)
		goto fail;

	progs[0] = dp->skel->progs.sl_connect4;
	progs[1] = dp->skel->progs.sl_sendmsg4;
	progs[2] = dp->skel->progs.sl_recvmsg4;
	progs[3] = dp->skel->progs.sl_getpeername4;
	progs[4] = dp->skel->progs.sl_post_bind4;
	for (int i = 0; i < DP_NPROGS; i++) {
		if (o->no_attach) {
			dp_link_drop(dp, bpf_program__name(progs[i]));
			continue;
		}
		/* cgroup v2 directory inode number == cgroup id. */
		err = dp_link_setup(dp, &dp->links[i], progs[i], st.st_ino);
		if (err)
			goto fail;
	}
	return dp;
fail:
	dp_close(dp);
	errno = -err;
	return NULL;
}

void dp_close(struct dp *dp)
{
	if (!dp)
		return;
	for (int i = 0; i < DP_NPROGS; i++) {
		if (!dp->links[i].link)
			continue;
		/* Keep the attachment: the pin holds it after our fd closes. */
		bpf_link__disconnect(dp->links[i].link);
		bpf_link__destroy(dp->links[i].link);
	}
	cgroup_sock_lb__destroy(dp->skel);
	dp_fd_close(dp->cgroup_fd);
	free(dp->be_ids.bits);
	free(dp->svc_ids.bits);
	sl_big_free(dp->be_index.v, dp->be_index.cap * sizeof(*dp->be_index.v));
	dp_slots_fini(&dp->slots);
	free(dp);
}

int dp_cleanup(const char *bpffs, const char *node)
{
	char root[PATH_MAX], path[PATH_MAX + 256], parent[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int err = 0;

	if (!bpffs)
		bpffs = DP_BPFFS_DEFAULT;
	err = dp_root_path(root, sizeof(root), bpffs, node);
	if (err)
		return err;
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		if (!strncmp(de->d_name, "link_", 5)) {
			int fd = bpf_obj_get(path);

			/* Detach now even if some process still holds the link. */
			if (fd >= 0 && bpf_link_detach(fd) && !err) {
				err = -errno;
				pr_err(DP_LOG, "link '%s': detach failed: %s", path,
				       strerror(-err));
			}
			dp_fd_close(fd);
		}
		if (unlink(path) && !err) {
			err = -errno;
			pr_err(DP_LOG, "pin '%s': unlink failed: %s", path, strerror(-err));
		}
	}
	closedir(d);
	if (rmdir(root) && !err) {
		err = -errno;
		pr_err(DP_LOG, "pin dir '%s': rmdir failed: %s", root, strerror(-err));
	}
	snprintf(parent, sizeof(parent), "%s/sluice", bpffs);
	rmdir(parent); /* other nodes may still use it */
	return err;
}

/* --- backends ------------------------------------------------------------------------- */

int dp_backend_id(const struct dp *dp, __be32 addr, __be16 port, __u8 proto, __u32 *id)
{
	__u32 v = dp ? dp_be_index_get(&dp->be_index, dp_be_key(addr, port, proto)) : 0;

	if (!v)
		return -SL_ERR_NOTFOUND;
	if (id)
		*id = v;
	return 0;
}

/* Validates be and finds or allocates its id. 0 or a negative error (logged). */
#define DP_FULL_NAMED 5

/* Logs how many backends found the map full beyond those named. */
static void dp_be_full_summary(struct dp *dp)
{
	if (dp->be_full_n > DP_FULL_NAMED)
		pr_err(DP_LOG,
		       "map '%s': %u more backends not programmed: no free backend id (%u "
		       "in use, the map's size)",
		       SL_MAP_BACKENDS4, dp->be_full_n - DP_FULL_NAMED, dp->be_ids.used);
	dp->be_full_n = 0;
}

static int dp_backend_prepare(struct dp *dp, const struct sl_backend *be, __u32 *id)
{
	struct dp_be_ent *e;
	char s[64];
	__u32 v;
	int err;

	if (!be->addr || !be->port || !dp_proto_ok(be->proto) ||
	    (be->state != SL_BE_ACTIVE && be->state != SL_BE_TERMINATING)) {
		dp_addr_str(s, sizeof(s), be->addr, be->port, be->proto);
		pr_err(DP_LOG,
		       "map '%s' backend %s state %u: invalid (need an address, a port, "
		       "TCP/UDP/SCTP, state ACTIVE or TERMINATING)",
		       SL_MAP_BACKENDS4, s, be->state);
		return -EINVAL;
	}
	err = dp_be_index_reserve(&dp->be_index, 1);
	if (err)
		return err;
	/* One probe finds the id or the place for a new one. */
	e = dp_be_index_slot(&dp->be_index, dp_be_key(be->addr, be->port, be->proto));
	if (!e->key) {
		v = dp_ids_alloc(&dp->be_ids);
		if (!v) {
			if (dp->be_full_n++ < DP_FULL_NAMED) {
				dp_addr_str(s, sizeof(s), be->addr, be->port, be->proto);
				pr_err(DP_LOG,
				       "map '%s' backend %s: no free backend id (%u in use)",
				       SL_MAP_BACKENDS4, s, dp->be_ids.used);
			}
			return -SL_ERR_EXHAUSTED;
		}
		e->key = dp_be_key(be->addr, be->port, be->proto);
		e->id = v;
		dp->be_index.n++;
	}
	*id = e->id;
	return 0;
}

int dp_backend_upsert(struct dp *dp, const struct sl_backend *be, __u32 *id)
{
	char s[64];
	__u32 v;
	int err;

	if (!dp || !be)
		return -EINVAL;
	err = dp_backend_prepare(dp, be, &v);
	if (err)
		return err;
	if (bpf_map_update_elem(dp->be_fd, &v, be, BPF_ANY)) {
		err = -errno;
		dp_addr_str(s, sizeof(s), be->addr, be->port, be->proto);
		pr_err(DP_LOG, "map '%s' key %u (%s): update failed: %s", SL_MAP_BACKENDS4, v, s,
		       strerror(-err));
		return err;
	}
	if (id)
		*id = v;
	return 0;
}

int dp_backend_reserve(struct dp *dp, size_t n)
{
	return dp ? dp_be_index_reserve(&dp->be_index, n) : -EINVAL;
}

int dp_backend_upsert_many(struct dp *dp, const struct sl_backend *bes, size_t n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	size_t cap = n < DP_BATCH ? n : DP_BATCH;
	__u32 *keys, cnt;
	struct sl_backend *vals;
	int first_err = 0;

	if (!dp || (n && !bes))
		return -EINVAL;
	if (!n)
		return 0;
	/* Size the identity index once for the worst case (all new). */
	if (dp_be_index_reserve(&dp->be_index, n))
		return -ENOMEM;
	keys = calloc(cap, sizeof(*keys));
	vals = calloc(cap, sizeof(*vals));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n;) {
		__u32 m = 0;

		for (; i < n && m < cap; i++) {
			int err;

			/* The index is megabytes and probed at random: fetch a few
			 * entries ahead so the misses overlap. */
			if (i + DP_PREFETCH < n)
				__builtin_prefetch(
					dp_be_index_home(&dp->be_index, &bes[i + DP_PREFETCH]), 1);
			err = dp_backend_prepare(dp, &bes[i], &keys[m]);

			if (err) {
				first_err = first_err ? first_err : err;
				continue;
			}
			vals[m++] = bes[i];
		}
		cnt = m;
		if (!m || !bpf_map_update_batch(dp->be_fd, keys, vals, &cnt, &bo))
			continue;
		/* No batch support, or an entry failed: one by one from where the
		 * batch stopped, so every failure is named. */
		for (__u32 k = cnt < m ? cnt : 0; k < m; k++) {
			char s[64];

			if (!bpf_map_update_elem(dp->be_fd, &keys[k], &vals[k], BPF_ANY))
				continue;
			first_err = first_err ? first_err : -errno;
			dp_addr_str(s, sizeof(s), vals[k].addr, vals[k].port, vals[k].proto);
			pr_err(DP_LOG, "map '%s' key %u (%s): update failed: %s", SL_MAP_BACKENDS4,
			       keys[k], s, strerror(errno));
		}
	}
	free(keys);
	free(vals);
	dp_be_full_summary(dp);
	return first_err;
}

int dp_backend_remove(struct dp *dp, __be32 addr, __be16 port, __u8 proto)
{
	struct sl_backend be;
	char s[64];
	__u32 id;
	int err;

	if (!dp)
		return -EINVAL;
	dp_addr_str(s, sizeof(s), addr, port, proto);
	id = dp_be_index_get(&dp->be_index, dp_be_key(addr, port, proto));
	if (!id) {
		pr_warn(DP_LOG, "map '%s' backend %s: remove: no such backend", SL_MAP_BACKENDS4,
			s);
		return -SL_ERR_NOTFOUND;
	}
	/* Keep address and port: reverse entries and logs can still name it. */
	if (bpf_map_lookup_elem(dp->be_fd, &id, &be)) {
		memset(&be, 0, sizeof(be));
		be.addr = addr;
		be.port = port;
		be.proto = proto;
	}
	be.state = SL_BE_GONE;
	if (bpf_map_update_elem(dp->be_fd, &id, &be, BPF_ANY)) {
		err = -errno;
		pr_err(DP_LOG, "map '%s' key %u (%s): update to GONE failed: %s", SL_MAP_BACKENDS4,
		       id, s, strerror(-err));
		return err;
	}
	dp_be_index_del(&dp->be_index, dp_be_key(addr, port, proto));
	dp_ids_clear(&dp->be_ids, id);
	return 0;
}

/* --- services ------------------------------------------------------------------------- */

static int dp_u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static bool dp_u32_has(const __u32 *v, size_t n, __u32 x)
{
	return n && bsearch(&x, v, n, sizeof(x), dp_u32_cmp);
}

/* Reads a block's backend ids, sorted. *out is malloc'd (NULL when len 0). */
static int dp_block_read(struct dp *dp, __u32 base, __u32 len, __u32 **out)
{
	__u32 *v;

	*out = NULL;
	if (!len)
		return 0;
	v = calloc(len, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 i = 0; i < len; i++) {
		__u32 slot = base + i;

		if (bpf_map_lookup_elem(dp->slots_fd, &slot, &v[i]))
			v[i] = 0;
	}
	qsort(v, len, sizeof(*v), dp_u32_cmp);
	*out = v;
	return 0;
}

static int dp_block_write(struct dp *dp, __u32 base, const __u32 *ids, __u32 len)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 *keys, n = len;
	int err = 0;

	keys = calloc(len, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (__u32 i = 0; i < len; i++)
		keys[i] = base + i;
	if (bpf_map_update_batch(dp->slots_fd, keys, ids, &n, &bo)) {
		err = -errno;
		pr_err(DP_LOG, "map '%s' keys %u..%u: batch update failed after %u: %s",
		       SL_MAP_SLOTS, base, base + len - 1, n, strerror(-err));
	}
	free(keys);
	return err;
}

/* Ids of the other scope's block of the same frontend (sorted), for
 * membership bookkeeping; empty when that scope is absent or has no
 * affinity (then none of its backends needs a membership pair). */
static int dp_other_scope(struct dp *dp, const struct sl_svc_key *key, struct sl_svc_val *oval,
			  bool *exists, __u32 **ids)
{
	struct sl_svc_key ok = *key;

	ok.scope = key->scope == SL_SCOPE_INT ? SL_SCOPE_EXT : SL_SCOPE_INT;
	*exists = !bpf_map_lookup_elem(dp->svc_fd, &ok, oval);
	*ids = NULL;
	if (!*exists || !(oval->flags & SL_SVC_F_AFFINITY))
		return 0;
	return dp_block_read(dp, oval->slot_base, oval->count, ids);
}

/*
 * svcbe4 holds {svc_id, backend_id} for the frontends with ClientIP affinity
 * only: the programs consult it for nothing but validating an affinity hit,
 * and only under SL_SVC_F_AFFINITY. Writing it for every frontend cost more
 * than all other map writes of a start together (a no-prealloc hash update
 * is ~1 us here; 200,000 pairs at 10,000 Services). Pairs of frontends
 * without affinity are still pruned on update and delete (maps written by an
 * agent that kept them for everyone shed them as Services change).
 */
static bool dp_members_want(__u16 flags)
{
	return flags & SL_SVC_F_AFFINITY;
}

/* Deletes svcbe4 pairs of old ids that neither keep list still uses. */
static void dp_members_prune(struct dp *dp, __u32 svc_id, const __u32 *old, size_t n_old,
			     const __u32 *keep1, size_t n1, const __u32 *keep2, size_t n2)
{
	for (size_t i = 0; i < n_old; i++) {
		struct sl_svc_be_key mk = {.svc_id = svc_id, .backend_id = old[i]};

		if (i && old[i] == old[i - 1])
			continue;
		if (dp_u32_has(keep1, n1, old[i]) || dp_u32_has(keep2, n2, old[i]))
			continue;
		if (bpf_map_delete_elem(dp->svcbe_fd, &mk) && errno != ENOENT)
			pr_warn(DP_LOG, "map '%s' key {%u, %u}: delete failed: %s", SL_MAP_SVC_BE4,
				svc_id, old[i], strerror(errno));
	}
}

/* svcbe4 pairs {svc_id, ids[i]}: one batch where the kernel has hash batch
 * updates (5.6+), else one update each. */
static int dp_members_add(struct dp *dp, __u32 svc_id, const __u32 *ids, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	struct sl_svc_be_key *keys;
	__u32 *zeros, cnt = n;
	int err = 0;

	if (!n)
		return 0;
	keys = calloc(n, sizeof(*keys));
	zeros = calloc(n, sizeof(*zeros));
	if (!keys || !zeros) {
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < n; i++)
		keys[i] = (struct sl_svc_be_key){.svc_id = svc_id, .backend_id = ids[i]};
	if (!bpf_map_update_batch(dp->svcbe_fd, keys, zeros, &cnt, &bo))
		goto out;
	for (__u32 i = cnt < n ? cnt : 0; i < n; i++) {
		if (!bpf_map_update_elem(dp->svcbe_fd, &keys[i], &zeros[i], BPF_ANY))
			continue;
		err = -errno;
		pr_err(DP_LOG, "map '%s' key {%u, %u}: update failed: %s", SL_MAP_SVC_BE4, svc_id,
		       ids[i], strerror(-err));
		break;
	}
out:
	free(keys);
	free(zeros);
	return err;
}

int dp_svc_upsert(struct dp *dp, const struct dp_svc *svc, __u32 *svc_id)
{
	struct sl_svc_val old, nv = {}, oval;
	struct sl_revnat rn = {};
	__u32 *old_ids = NULL, *new_sorted = NULL, *other_ids = NULL;
	bool had_old, other;
	char ks[80];
	__u32 id = 0, base = 0;
	int err = 0;

	if (!dp || !svc)
		return -EINVAL;
	dp_key_str(ks, sizeof(ks), &svc->key);
	if (!svc->key.port || !dp_proto_ok(svc->key.proto) || svc->key.scope > SL_SCOPE_INT ||
	    (!svc->key.addr && !(svc->flags & SL_SVC_F_NODEPORT))) {
		pr_err(DP_LOG,
		       "map '%s' key %s: invalid frontend (need a port, TCP/UDP/SCTP, "
		       "scope ext/int, an address unless NODEPORT)",
		       SL_MAP_SVC4, ks);
		return -EINVAL;
	}
	if (svc->count > SL_MAX_SLOTS_PER_SVC || (svc->count && !svc->backend_ids)) {
		pr_err(DP_LOG, "map '%s' key %s: %u backends: invalid (at most %u)", SL_MAP_SVC4,
		       ks, svc->count, SL_MAX_SLOTS_PER_SVC);
		return -EINVAL;
	}
	for (__u32 i = 0; i < svc->count; i++) {
		if (!dp_ids_test(&dp->be_ids, svc->backend_ids[i])) {
			pr_err(DP_LOG, "map '%s' key %s: backend id %u is not a live backend",
			       SL_MAP_SVC4, ks, svc->backend_ids[i]);
			return -EINVAL;
		}
	}

	had_old = !bpf_map_lookup_elem(dp->svc_fd, &svc->key, &old);
	err = dp_other_scope(dp, &svc->key, &oval, &other, &other_ids);
	if (err)
		goto out;
	if (had_old)
		id = old.svc_id;
	else if (other)
		id = oval.svc_id;
	else if (!(id = dp_ids_alloc(&dp->svc_ids))) {
		pr_err(DP_LOG, "map '%s' key %s: no free service id", SL_MAP_SVC4, ks);
		err = -SL_ERR_EXHAUSTED;
		goto out;
	}

	/* 1. membership of every new backend, before any slot points at it
	 * (only affinity hits consult it: see dp_members_want) */
	if (dp_members_want(svc->flags))
		err = dp_members_add(dp, id, svc->backend_ids, svc->count);
	if (err)
		goto fail_id;
	/* 2. reverse translation for the per-packet path */
	rn.addr = svc->key.addr;
	rn.port = svc->key.port;
	rn.proto = svc->key.proto;
	if (bpf_map_update_elem(dp->revnat_fd, &id, &rn, BPF_ANY)) {
		err = -errno;
		pr_err(DP_LOG, "map '%s' key %u (%s): update failed: %s", SL_MAP_REVNAT4, id, ks,
		       strerror(-err));
		goto fail_id;
	}
	/* 3. a fresh slot block */
	if (svc->count) {
		base = dp_slots_alloc(&dp->slots, svc->count);
		if (!base) {
			pr_err(DP_LOG, "map '%s' key %s: no free block of %u slots", SL_MAP_SLOTS,
			       ks, svc->count);
			err = -SL_ERR_EXHAUSTED;
			goto fail_id;
		}
		err = dp_block_write(dp, base, svc->backend_ids, svc->count);
		if (err)
			goto fail_block;
	}
	/* 4. the flip: one update makes the new block live */
	nv.svc_id = id;
	nv.slot_base = base;
	nv.count = svc->count;
	nv.flags = svc->flags;
	nv.affinity_s = svc->affinity_s;
	nv.maglev_base = svc->maglev_base;
	if (bpf_map_update_elem(dp->svc_fd, &svc->key, &nv, BPF_ANY)) {
		err = -errno;
		pr_err(DP_LOG, "map '%s' key %s: update failed: %s", SL_MAP_SVC4, ks,
		       strerror(-err));
		goto fail_block;
	}
	/* 5. retire the old block and memberships nobody uses any more */
	if (had_old && old.count) {
		if (!dp_block_read(dp, old.slot_base, old.count, &old_ids)) {
			new_sorted = calloc(svc->count ? svc->count : 1, sizeof(*new_sorted));
			if (new_sorted) {
				memcpy(new_sorted, svc->backend_ids, svc->count * sizeof(__u32));
				qsort(new_sorted, svc->count, sizeof(__u32), dp_u32_cmp);
				dp_members_prune(dp, id, old_ids, old.count, new_sorted,
						 dp_members_want(svc->flags) ? svc->count : 0,
						 other_ids, other_ids ? oval.count : 0);
			}
		}
		dp_slots_release(&dp->slots, old.slot_base, old.count);
	}
	if (svc_id)
		*svc_id = id;
	goto out;

fail_block:
	if (base) {
		/* Never referenced: free at once. */
		if (!dp_slots_free_insert(&dp->slots, base, svc->count))
			dp->slots.used -= svc->count;
	}
fail_id:
	if (!had_old && !other)
		dp_ids_clear(&dp->svc_ids, id);
out:
	free(old_ids);
	free(new_sorted);
	free(other_ids);
	return err;
}

int dp_svc_delete(struct dp *dp, const struct sl_svc_key *key)
{
	struct sl_svc_val old, oval;
	__u32 *old_ids = NULL, *other_ids = NULL;
	bool other;
	char ks[80];
	int err;

	if (!dp || !key)
		return -EINVAL;
	dp_key_str(ks, sizeof(ks), key);
	if (bpf_map_lookup_elem(dp->svc_fd, key, &old)) {
		pr_warn(DP_LOG, "map '%s' key %s: delete: no such frontend", SL_MAP_SVC4, ks);
		return -SL_ERR_NOTFOUND;
	}
	if (bpf_map_delete_elem(dp->svc_fd, key)) {
		err = -errno;
		pr_err(DP_LOG, "map '%s' key %s: delete failed: %s", SL_MAP_SVC4, ks,
		       strerror(-err));
		return err;
	}
	err = dp_other_scope(dp, key, &oval, &other, &other_ids);
	if (!err && !dp_block_read(dp, old.slot_base, old.count, &old_ids))
		dp_members_prune(dp, old.svc_id, old_ids, old.count, other_ids,
				 other_ids ? oval.count : 0, NULL, 0);
	dp_slots_release(&dp->slots, old.slot_base, old.count);
	/* The id outlives neither scope; revnat4 keeps its entry until the id is
	 * reused (per-packet flows may still translate replies with it). */
	if (!other)
		dp_ids_clear(&dp->svc_ids, old.svc_id);
	free(old_ids);
	free(other_ids);
	return 0;
}

/* --- many new frontends at once (a start) ------------------------------------------- */

/* Below this many frontends (plus 1/16 of those in svc4) dp_svc_upsert_many
 * leaves everything to dp_svc_upsert. */
#define DP_MANY_MIN 64

/* Frontend identity without the scope: both scopes share one svc id. */
static __u64 dp_fe_ident(const struct sl_svc_key *k)
{
	return (__u64)k->addr << 32 | (__u64)k->port << 16 | (__u64)k->proto << 8 | 1;
}

struct dp_u64_set {
	__u64 *v; /* 0 = empty (every ident has bit 0 set) */
	size_t cap;
};

/* Inserts x; false when it was already there. */
static bool dp_u64_set_add(struct dp_u64_set *s, __u64 x)
{
	size_t i;

	for (i = dp_be_hash(x, s->cap); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == x)
			return false;
	s->v[i] = x;
	return true;
}

/* The svc4 entries (batched reads), indexed by full key. */
struct dp_exist {
	struct sl_svc_key *keys;
	struct sl_svc_val *vals;
	size_t n, cap;
	__u64 *tk; /* open addressing: full key (0 = empty) ... */
	__u32 *ti; /* ... and its index in keys/vals */
	size_t tcap;
};

static __u64 dp_fe_full(const struct sl_svc_key *k)
{
	return dp_fe_ident(k) | (__u64)(k->scope & 1) << 1;
}

static void dp_exist_fini(struct dp_exist *ex)
{
	free(ex->keys);
	free(ex->vals);
	free(ex->tk);
	free(ex->ti);
}

static const struct sl_svc_val *dp_exist_get(const struct dp_exist *ex, const struct sl_svc_key *k)
{
	__u64 x = dp_fe_full(k);

	if (!ex->tcap)
		return NULL;
	for (size_t i = dp_be_hash(x, ex->tcap); ex->tk[i]; i = (i + 1) & (ex->tcap - 1))
		if (ex->tk[i] == x)
			return &ex->vals[ex->ti[i]];
	return NULL;
}

static bool dp_exist_add(struct dp_exist *ex, const struct sl_svc_key *k,
			 const struct sl_svc_val *v)
{
	if (ex->n == ex->cap)
		return false;
	ex->keys[ex->n] = *k;
	ex->vals[ex->n++] = *v;
	return true;
}

/*
 * Reads svc4 (batched where the kernel can): every entry into ex, indexed
 * by key, and every frontend identity into set. -E2BIG when svc4 holds
 * more than ex can take (more entries than two per id: not expected).
 */
static int dp_svc_existing(struct dp *dp, struct dp_u64_set *set, struct dp_exist *ex)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	struct sl_svc_key *keys = calloc(DP_BATCH, sizeof(*keys));
	struct sl_svc_val *vals = calloc(DP_BATCH, sizeof(*vals)), val;
	struct sl_svc_key key, next, *prev = NULL;
	__u64 in = 0, out = 0;
	bool first = true, done = false, full = false;
	__u32 n;
	int err = 0;

	ex->cap = 2 * (size_t)dp->svc_ids.used + 16;
	ex->keys = calloc(ex->cap, sizeof(*ex->keys));
	ex->vals = calloc(ex->cap, sizeof(*ex->vals));
	if (!keys || !vals || !ex->keys || !ex->vals) {
		err = -ENOMEM;
		goto out;
	}
	while (!done && !full) {
		n = DP_BATCH;
		if (bpf_map_lookup_batch(dp->svc_fd, first ? NULL : &in, &out, keys, vals, &n,
					 &bo)) {
			if (errno != ENOENT) {
				if (!first) {
					err = -errno;
					pr_err(DP_LOG, "map '%s': batch lookup failed: %s",
					       SL_MAP_SVC4, strerror(-err));
					goto out;
				}
				break; /* no hash batch ops (< 5.6): key by key below */
			}
			done = true;
		}
		first = false;
		in = out;
		for (__u32 i = 0; i < n && !full; i++)
			full = !dp_exist_add(ex, &keys[i], &vals[i]);
	}
	while (first && !full && !bpf_map_get_next_key(dp->svc_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(dp->svc_fd, &key, &val))
			full = !dp_exist_add(ex, &key, &val);
	}
	if (full) {
		err = -E2BIG;
		goto out;
	}
	for (ex->tcap = 64; ex->tcap < 2 * ex->n; ex->tcap *= 2)
		;
	ex->tk = calloc(ex->tcap, sizeof(*ex->tk));
	ex->ti = calloc(ex->tcap, sizeof(*ex->ti));
	if (!ex->tk || !ex->ti) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < ex->n; k++) {
		__u64 x = dp_fe_full(&ex->keys[k]);
		size_t i;

		dp_u64_set_add(set, dp_fe_ident(&ex->keys[k]));
		for (i = dp_be_hash(x, ex->tcap); ex->tk[i] && ex->tk[i] != x;
		     i = (i + 1) & (ex->tcap - 1))
			;
		ex->tk[i] = x;
		ex->ti[i] = (__u32)k;
	}
out:
	free(keys);
	free(vals);
	return err;
}

/* True when the block at base holds exactly ids[0..n) (one batched read). */
static bool dp_block_same(struct dp *dp, __u32 base, const __u32 *ids, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 keys[SL_MAX_SLOTS_PER_SVC], vals[SL_MAX_SLOTS_PER_SVC];
	__u32 prev = base - 1, next, cnt = n;
	int rc;

	if (!n)
		return true;
	/* Array batches continue after in_batch's key: start "after base - 1". */
	rc = bpf_map_lookup_batch(dp->slots_fd, base ? &prev : NULL, &next, keys, vals, &cnt, &bo);
	if ((rc && errno != ENOENT) || cnt != n) {
		for (__u32 i = 0; i < n; i++) {
			__u32 slot = base + i, v;

			if (bpf_map_lookup_elem(dp->slots_fd, &slot, &v) || v != ids[i])
				return false;
		}
		return true;
	}
	return keys[0] == base && !memcmp(vals, ids, n * sizeof(*ids));
}

/* An existing entry that already says what s says (nothing to write). */
static bool dp_svc_unchanged(struct dp *dp, const struct sl_svc_val *v, const struct dp_svc *s)
{
	return v->count == s->count && v->flags == s->flags && v->affinity_s == s->affinity_s &&
	       v->maglev_base == s->maglev_base &&
	       dp_block_same(dp, v->slot_base, s->backend_ids, s->count);
}

/* One batch update of n entries; on failure logs the map, the entry it
 * stopped at and the error. */
static int dp_batch_put(int fd, const char *map, const void *keys, const void *vals, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 cnt = n;
	int err;

	if (!n || !bpf_map_update_batch(fd, keys, vals, &cnt, &bo))
		return 0;
	err = -errno;
	pr_err(DP_LOG, "map '%s': batch update of %u entries failed at entry %u: %s", map, n, cnt,
	       strerror(-err));
	return err;
}

int dp_svc_upsert_many(struct dp *dp, const struct dp_svc *svcs, size_t n, bool *done)
{
	struct dp_u64_set set = {0};
	struct dp_exist ex = {0};
	struct sl_svc_key *fkeys = NULL;
	struct sl_svc_val *fvals = NULL;
	struct sl_svc_be_key *pairs = NULL;
	struct sl_revnat *rvals = NULL;
	__u32 *rkeys = NULL, *skeys = NULL, *svals = NULL, *zeros = NULL;
	size_t *which = NULL, n_slots = 0, n_fe = 0, n_pairs = 0;
	__u32 fcnt;
	int err = 0;

	if (!dp || (n && (!svcs || !done)))
		return -EINVAL;
	if (!n)
		return 0;
	memset(done, 0, n * sizeof(*done));
	/* Finding which frontends exist reads all of svc4: worth it for a start
	 * or a large change, not for the few writes of a steady-state sync. */
	if (dp->svc_ids.used && n < DP_MANY_MIN + dp->svc_ids.used / 16)
		return 0;
	for (size_t i = 0; i < n; i++)
		n_slots += svcs[i].count;
	/* Twice what it can hold: the new idents and svc4's (dp_svc_existing). */
	for (set.cap = 256; set.cap < 2 * (n + 2 * (size_t)dp->svc_ids.used + 16); set.cap *= 2)
		;
	set.v = calloc(set.cap, sizeof(*set.v));
	fkeys = calloc(n, sizeof(*fkeys));
	fvals = calloc(n, sizeof(*fvals));
	rkeys = calloc(n, sizeof(*rkeys));
	rvals = calloc(n, sizeof(*rvals));
	which = calloc(n, sizeof(*which));
	pairs = calloc(n_slots + 1, sizeof(*pairs));
	skeys = calloc(n_slots + 1, sizeof(*skeys));
	svals = calloc(n_slots + 1, sizeof(*svals));
	zeros = calloc(n_slots + 1, sizeof(*zeros));
	if (!set.v || !fkeys || !fvals || !rkeys || !rvals || !which || !pairs || !skeys ||
	    !svals || !zeros) {
		err = -ENOMEM;
		goto out;
	}
	/* Frontends already in svc4 (either scope) are skipped when their entry
	 * and block already say the same (a restart), else left to the
	 * per-entry path: it reuses their id, retires their old block and
	 * prunes memberships. A start into maps this load created has none,
	 * and skips the read. */
	if (dp->svc_ids.used) {
		err = dp_svc_existing(dp, &set, &ex);
		if (err)
			goto out;
	}
	n_slots = 0;
	for (size_t i = 0; i < n; i++) {
		const struct dp_svc *s = &svcs[i];
		struct sl_svc_val *v = &fvals[n_fe];
		bool ok;
		__u32 id, base = 0;

		/* Invalid input, an existing frontend, or the second scope of a
		 * new one (it shares the first one's id): per entry. */
		ok = s->key.port && dp_proto_ok(s->key.proto) && s->key.scope <= SL_SCOPE_INT &&
		     (s->key.addr || (s->flags & SL_SVC_F_NODEPORT)) &&
		     s->count <= SL_MAX_SLOTS_PER_SVC && (!s->count || s->backend_ids);
		for (__u32 k = 0; ok && k < s->count; k++)
			ok = dp_ids_test(&dp->be_ids, s->backend_ids[k]);
		if (!ok)
			continue;
		if (!dp_u64_set_add(&set, dp_fe_ident(&s->key))) {
			/* Already in svc4 as wanted (a restart adopting the maps
			 * of the same cluster): nothing to write. */
			const struct sl_svc_val *ov = dp_exist_get(&ex, &s->key);

			done[i] = ov && dp_svc_unchanged(dp, ov, s);
			continue;
		}
		id = dp_ids_alloc(&dp->svc_ids);
		if (!id)
			break; /* exhausted: the per-entry path names every failure */
		if (s->count && !(base = dp_slots_alloc(&dp->slots, s->count))) {
			dp_ids_clear(&dp->svc_ids, id);
			break;
		}
		for (__u32 k = 0; k < s->count; k++) {
			if (dp_members_want(s->flags))
				pairs[n_pairs++] = (struct sl_svc_be_key){
					.svc_id = id, .backend_id = s->backend_ids[k]};
			skeys[n_slots] = base + k;
			svals[n_slots++] = s->backend_ids[k];
		}
		rkeys[n_fe] = id;
		rvals[n_fe] = (struct sl_revnat){
			.addr = s->key.addr, .port = s->key.port, .proto = s->key.proto};
		fkeys[n_fe] = s->key;
		*v = (struct sl_svc_val){.svc_id = id,
					 .slot_base = base,
					 .count = s->count,
					 .flags = s->flags,
					 .affinity_s = s->affinity_s,
					 .maglev_base = s->maglev_base};
		which[n_fe++] = i;
	}
	/* dp_svc_upsert's order, one batch per map: memberships, reverse
	 * translation and slot blocks, and only then the svc4 entries that
	 * make them live. */
	err = dp_batch_put(dp->svcbe_fd, SL_MAP_SVC_BE4, pairs, zeros, (__u32)n_pairs);
	if (!err)
		err = dp_batch_put(dp->revnat_fd, SL_MAP_REVNAT4, rkeys, rvals, (__u32)n_fe);
	if (!err)
		err = dp_batch_put(dp->slots_fd, SL_MAP_SLOTS, skeys, svals, (__u32)n_slots);
	fcnt = 0;
	if (!err && n_fe) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);

		fcnt = (__u32)n_fe;
		if (bpf_map_update_batch(dp->svc_fd, fkeys, fvals, &fcnt, &bo)) {
			err = -errno;
			if (fcnt > n_fe)
				fcnt = 0;
			pr_err(DP_LOG,
			       "map '%s': batch update of %zu entries failed at entry %u: %s",
			       SL_MAP_SVC4, n_fe, fcnt, strerror(-err));
		}
	}
	for (size_t f = 0; f < n_fe; f++) {
		if (f < fcnt) {
			done[which[f]] = true;
			continue;
		}
		/* Not live: give back the block and the id, drop the memberships
		 * (the per-entry retry writes its own). */
		if (fvals[f].count &&
		    !dp_slots_free_insert(&dp->slots, fvals[f].slot_base, fvals[f].count))
			dp->slots.used -= fvals[f].count;
		dp_ids_clear(&dp->svc_ids, fvals[f].svc_id);
		for (__u32 k = 0; dp_members_want(fvals[f].flags) && k < fvals[f].count; k++) {
			struct sl_svc_be_key mk = {.svc_id = fvals[f].svc_id,
						   .backend_id = svcs[which[f]].backend_ids[k]};

			bpf_map_delete_elem(dp->svcbe_fd, &mk);
		}
	}
	/* A failed batch is retried entry by entry by the caller (done[] false),
	 * which names what fails. */
	err = 0;
out:
	dp_exist_fini(&ex);
	free(set.v);
	free(fkeys);
	free(fvals);
	free(rkeys);
	free(rvals);
	free(which);
	free(pairs);
	free(skeys);
	free(svals);
	free(zeros);
	return err;
}

/* --- node settings ------------------------------------------------------------------- */

int dp_local_addrs_set(struct dp *dp, const __be32 *addrs, size_t n)
{
	struct sl_local4_val v = {};
	__be32 key, next, *prev = NULL;
	__be32 *stale = NULL;
	size_t n_stale = 0, cap = 0;
	int err = 0;

	if (!dp || (n && !addrs) || n > SL_MAX_LOCAL_ADDRS) {
		pr_err(DP_LOG, "map '%s': %zu local addresses: invalid (at most %u)", SL_MAP_LOCAL4,
		       n, SL_MAX_LOCAL_ADDRS);
		return -EINVAL;
	}
	/* Collect first: deleting while walking would restart get_next_key. */
	while (!bpf_map_get_next_key(dp->local_fd, prev, &next)) {
		bool keep = false;

		key = next;
		prev = &key;
		for (size_t i = 0; i < n && !keep; i++)
			keep = addrs[i] == key;
		if (keep)
			continue;
		if (n_stale == cap) {
			__be32 *t = realloc(stale, (cap = cap ? cap * 2 : 16) * sizeof(*t));

			if (!t) {
				free(stale);
				return -ENOMEM;
			}
			stale = t;
		}
		stale[n_stale++] = key;
	}
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_update_elem(dp->local_fd, &addrs[i], &v, BPF_ANY)) {
			char a[INET_ADDRSTRLEN];

			err = -errno;
			inet_ntop(AF_INET, &addrs[i], a, sizeof(a));
			pr_err(DP_LOG, "map '%s' key %s: update failed: %s", SL_MAP_LOCAL4, a,
			       strerror(-err));
			goto out;
		}
	}
	for (size_t i = 0; i < n_stale; i++)
		bpf_map_delete_elem(dp->local_fd, &stale[i]);
out:
	free(stale);
	return err;
}

int dp_host_netns_set(struct dp *dp, __u64 netns_cookie)
{
	struct sl_lb_cfg cfg = {};
	__u32 zero = 0;
	int err;

	if (!dp)
		return -EINVAL;
	/* Read-modify-write keeps fields other writers may own. */
	bpf_map_lookup_elem(dp->cfg_fd, &zero, &cfg);
	cfg.host_netns_cookie = netns_cookie;
	if (bpf_map_update_elem(dp->cfg_fd, &zero, &cfg, BPF_ANY)) {
		err = -errno;
		pr_err(DP_LOG, "map '%s' key 0: update failed: %s", SL_MAP_CFG, strerror(-err));
		return err;
	}
	return 0;
}

/* --- observability ------------------------------------------------------------------- */

int dp_counters_read(struct dp *dp, struct sl_counter out[SL_R_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_counter *v;
	int err = 0;

	if (!dp || !out)
		return -EINVAL;
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	/* Per-CPU values come as ncpu elements, each rounded up to 8 bytes
	 * (sizeof(struct sl_counter) already is). */
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 r = 0; r < SL_R_MAX; r++) {
		out[r].packets = out[r].bytes = 0;
		if (bpf_map_lookup_elem(dp->ctr_fd, &r, v)) {
			err = -errno;
			pr_err(DP_LOG, "map '%s' key %u: lookup failed: %s", SL_MAP_COUNTERS, r,
			       strerror(-err));
			break;
		}
		for (int c = 0; c < ncpu; c++) {
			out[r].packets += v[c].packets;
			out[r].bytes += v[c].bytes;
		}
	}
	free(v);
	return err;
}

/* Entries of a hash map, walking keys (key_size <= 64). */
static __u32 dp_map_count(int fd, __u32 key_size)
{
	unsigned char a[64] = {0}, b[64] = {0};
	void *prev = NULL, *cur = a;
	__u32 n = 0;

	if (key_size > sizeof(a))
		return 0;
	while (!bpf_map_get_next_key(fd, prev, cur)) {
		n++;
		prev = cur;
		cur = cur == a ? b : a;
	}
	return n;
}

int dp_fill_read(struct dp *dp, struct dp_fill *f)
{
	struct timespec now;

	if (!dp || !f)
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &now);
	dp->fill_at = now.tv_sec ? now.tv_sec : 1;
	memset(f, 0, sizeof(*f));
	f->services = dp_map_count(dp->svc_fd, sizeof(struct sl_svc_key));
	f->services_max = SL_MAX_SERVICES;
	f->svc_ids = dp->svc_ids.used;
	f->backends = dp->be_ids.used;
	f->backends_max = SL_MAX_BACKENDS - 1;
	f->slots = dp->slots.used;
	f->slots_max = SL_MAX_SLOTS - 1;
	f->sock_rev = dp_map_count(dp->sockrev_fd, sizeof(struct sl_sock_rev_key));
	f->sock_rev_max = SL_MAX_SOCK_REV;
	f->affinity = dp_map_count(dp->aff_fd, sizeof(struct sl_affinity_key));
	f->affinity_max = SL_MAX_AFFINITY;
	f->svc_be = dp_map_count(dp->svcbe_fd, sizeof(struct sl_svc_be_key));
	f->svc_be_max = SL_MAX_SVC_BE;
	dp->fill = *f;
	return 0;
}

int dp_fill_read_cached(struct dp *dp, struct dp_fill *f)
{
	struct timespec now;

	if (!dp || !f)
		return -EINVAL;
	/*
	 * Counting hash/LRU entries walks the maps with one syscall per entry
	 * (~0.7 s at 10,000 services with 200,000 membership pairs) and the
	 * caller is the agent's event loop: walk at most once per
	 * DP_FILL_REFRESH_S, returning the last figures (with the allocator
	 * counts, which are exact and free) in between.
	 */
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!dp->fill_at || now.tv_sec - dp->fill_at >= DP_FILL_REFRESH_S)
		return dp_fill_read(dp, f);
	*f = dp->fill;
	f->svc_ids = dp->svc_ids.used;
	f->backends = dp->be_ids.used;
	f->slots = dp->slots.used;
	return 0;
}

/* --- enumeration (restart reconciliation) ------------------------------------------ */

int dp_svc_foreach(struct dp *dp, int (*fn)(const struct sl_svc_key *key, void *arg), void *arg)
{
	struct sl_svc_key key, next, *prev = NULL;
	struct sl_svc_key *keys = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (!dp || !fn)
		return -EINVAL;
	/* Collect first: fn may delete entries, which would derail get_next_key. */
	while (!bpf_map_get_next_key(dp->svc_fd, prev, &next)) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct sl_svc_key *v = realloc(keys, ncap * sizeof(*v));
			if (!v) {
				free(keys);
				return -ENOMEM;
			}
			keys = v;
			cap = ncap;
		}
		keys[n++] = next;
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = fn(&keys[i], arg);
	free(keys);
	return rc;
}

struct dp_be_list {
	struct sl_backend *bes;
	__u32 *ids;
	size_t n, cap;
};

static int dp_be_collect(struct dp *dp, __u32 id, const struct sl_backend *be, void *arg)
{
	struct dp_be_list *l = arg;

	/* Only ids the allocator owns: what fn may remove. */
	if (!dp_ids_test(&dp->be_ids, id) || l->n == l->cap)
		return 0;
	l->bes[l->n] = *be;
	l->ids[l->n++] = id;
	return 0;
}

int dp_backend_foreach(struct dp *dp, int (*fn)(const struct sl_backend *be, __u32 id, void *arg),
		       void *arg)
{
	struct dp_be_list l = {0};
	int rc;

	if (!dp || !fn)
		return -EINVAL;
	/* Read in batches (dp_be_walk): one lookup per backend was 200,000
	 * bpf() calls for the reconciliation after a start at 10,000 Services. */
	l.cap = dp->be_index.n + 1;
	l.bes = calloc(l.cap, sizeof(*l.bes));
	l.ids = calloc(l.cap, sizeof(*l.ids));
	rc = l.bes && l.ids ? dp_be_walk(dp, dp_be_collect, &l) : -ENOMEM;
	for (size_t i = 0; i < l.n && !rc; i++)
		rc = fn(&l.bes[i], l.ids[i], arg);
	free(l.bes);
	free(l.ids);
	return rc;
}
