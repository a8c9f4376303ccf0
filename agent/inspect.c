// SPDX-License-Identifier: Apache-2.0
/*
 * Pinned-map inspection behind sluicectl (see inspect.h). Every list first
 * reads what it needs into plain arrays (one syscall per hash entry, batched
 * reads for the big ARRAYs), sorts them so the output is stable, then emits
 * each record once through the text/JSON writer.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice/log.h"

#include "abi/lb.h"
#include "inspect.h"

#define IN_LOG "inspect"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/* --- output writer ------------------------------------------------------------------- */

void insp_out_init(struct insp_out *o, enum insp_fmt fmt)
{
	memset(o, 0, sizeof(*o));
	o->fmt = fmt;
}

void insp_out_fini(struct insp_out *o)
{
	if (o)
		sl_buf_fini(&o->buf);
}

/* Comma and "key": before a JSON member or element. */
static void out_member(struct insp_out *o, const char *key)
{
	if (o->depth > 0 && o->depth <= INSP_OUT_DEPTH) {
		if (o->comma[o->depth - 1])
			sl_buf_puts(&o->buf, ",");
		o->comma[o->depth - 1] = true;
	}
	if (key) {
		sl_buf_json_str(&o->buf, key);
		sl_buf_puts(&o->buf, ":");
	}
}

static void out_open(struct insp_out *o, const char *key, const char *bracket)
{
	if (o->fmt != INSP_FMT_JSON)
		return;
	out_member(o, key);
	sl_buf_puts(&o->buf, bracket);
	if (o->depth < INSP_OUT_DEPTH)
		o->comma[o->depth] = false;
	o->depth++;
}

static void out_close(struct insp_out *o, const char *bracket)
{
	if (o->fmt != INSP_FMT_JSON)
		return;
	sl_buf_puts(&o->buf, bracket);
	if (o->depth > 0)
		o->depth--;
	if (!o->depth)
		sl_buf_puts(&o->buf, "\n");
}

void insp_out_obj_open(struct insp_out *o, const char *key)
{
	out_open(o, key, "{");
}

void insp_out_obj_close(struct insp_out *o)
{
	out_close(o, "}");
}

void insp_out_arr_open(struct insp_out *o, const char *key)
{
	out_open(o, key, "[");
}

void insp_out_arr_close(struct insp_out *o)
{
	out_close(o, "]");
}

static bool out_text(const struct insp_out *o, enum insp_kind k, const char *tfmt)
{
	return o->fmt == INSP_FMT_TEXT && k != INSP_JSON && tfmt;
}

static bool out_json(const struct insp_out *o, enum insp_kind k)
{
	return o->fmt == INSP_FMT_JSON && k != INSP_TEXT;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
void insp_out_str(struct insp_out *o, enum insp_kind k, const char *key, const char *tfmt,
		  const char *val)
{
	if (out_text(o, k, tfmt))
		sl_buf_printf(&o->buf, tfmt, val ? val : "-");
	if (out_json(o, k)) {
		out_member(o, key);
		if (val)
			sl_buf_json_str(&o->buf, val);
		else
			sl_buf_puts(&o->buf, "null");
	}
}

void insp_out_u64(struct insp_out *o, enum insp_kind k, const char *key, const char *tfmt,
		  unsigned long long val)
{
	if (out_text(o, k, tfmt))
		sl_buf_printf(&o->buf, tfmt, val);
	if (out_json(o, k)) {
		out_member(o, key);
		sl_buf_printf(&o->buf, "%llu", val);
	}
}
#pragma GCC diagnostic pop

void insp_out_bool(struct insp_out *o, enum insp_kind k, const char *key, const char *tfmt,
		   bool val)
{
	insp_out_str(o, INSP_TEXT, NULL, out_text(o, k, tfmt) ? tfmt : NULL, val ? "yes" : "no");
	if (out_json(o, k)) {
		out_member(o, key);
		sl_buf_puts(&o->buf, val ? "true" : "false");
	}
}

void insp_out_text(struct insp_out *o, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	if (o->fmt != INSP_FMT_TEXT)
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sl_buf_append(&o->buf, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);

	if (!big) {
		o->buf.oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sl_buf_append(&o->buf, big, (size_t)n);
	free(big);
}

/* --- names ------------------------------------------------------------------------------- */

const char *insp_proto_name(unsigned proto)
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

const char *insp_reason_name(unsigned r)
{
	switch (r) {
	case SL_R_OK:
		return "ok";
	case SL_R_NO_BACKEND:
		return "no_backend";
	case SL_R_BACKEND_GONE:
		return "backend_gone";
	case SL_R_SLOT_OOB:
		return "slot_out_of_bounds";
	case SL_R_CT_FULL:
		return "ct_full";
	case SL_R_NAT_FAIL:
		return "nat_fail";
	case SL_R_MALFORMED:
		return "malformed";
	case SL_R_UNSUPPORTED:
		return "unsupported";
	case SL_R_BIND_NODEPORT:
		return "bind_nodeport_refused";
	case SL_R_AFFINITY_HIT:
		return "affinity_hit";
	case SL_R_FIB_FAIL:
		return "fib_fail";
	case SL_R_CSUM_FAIL:
		return "csum_fail";
	case SL_R_REJECTED:
		return "rejected";
	case SL_R_TOO_BIG:
		return "too_big";
	default:
		return "unknown";
	}
}

const char *insp_backend_state_name(unsigned s)
{
	switch (s) {
	case SL_BE_ACTIVE:
		return "active";
	case SL_BE_TERMINATING:
		return "terminating";
	case SL_BE_GONE:
		return "gone";
	default:
		return "unknown";
	}
}

static const struct {
	unsigned flag;
	const char *name;
} svc_flag_names[] = {
	{SL_SVC_F_CLUSTERIP, "ClusterIP"},   {SL_SVC_F_NODEPORT, "NodePort"},
	{SL_SVC_F_EXTERNALIP, "ExternalIP"}, {SL_SVC_F_LOADBALANCER, "LoadBalancer"},
	{SL_SVC_F_LOCAL_EXT, "eTP=Local"},   {SL_SVC_F_LOCAL_INT, "iTP=Local"},
	{SL_SVC_F_AFFINITY, "ClientIP"},     {SL_SVC_F_TERMINATING, "Terminating"},
	{SL_SVC_F_MAGLEV, "Maglev"},
};

static const char *addr_str(char *buf, size_t len, __be32 addr)
{
	if (!inet_ntop(AF_INET, &addr, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

/* "198.18.1.1:8080/TCP" */
static const char *ep_str(char *buf, size_t len, __be32 addr, __be16 port, unsigned proto)
{
	char a[INET_ADDRSTRLEN];

	snprintf(buf, len, "%s:%u/%s", addr_str(a, sizeof(a), addr), ntohs(port),
		 insp_proto_name(proto));
	return buf;
}

/* Address, port and protocol as separate JSON members (text: nothing). */
static void out_ep_json(struct insp_out *o, __be32 addr, __be16 port, unsigned proto)
{
	char a[INET_ADDRSTRLEN];

	insp_out_str(o, INSP_JSON, "address", NULL, addr_str(a, sizeof(a), addr));
	insp_out_u64(o, INSP_JSON, "port", NULL, ntohs(port));
	insp_out_str(o, INSP_JSON, "protocol", NULL, insp_proto_name(proto));
}

/* --- the handle ------------------------------------------------------------------------- */

enum in_map {
	M_SVC4,
	M_SLOTS,
	M_BE4,
	M_REVNAT4,
	M_CT_TCP,
	M_CT_ANY,
	M_COUNTERS,
	M_NPCTR,
	M_N,
};

static const struct {
	const char *name;
	__u32 key_size, value_size;
} in_maps[M_N] = {
	[M_SVC4] = {SL_MAP_SVC4, sizeof(struct sl_svc_key), sizeof(struct sl_svc_val)},
	[M_SLOTS] = {SL_MAP_SLOTS, sizeof(__u32), sizeof(__u32)},
	[M_BE4] = {SL_MAP_BACKENDS4, sizeof(__u32), sizeof(struct sl_backend)},
	[M_REVNAT4] = {SL_MAP_REVNAT4, sizeof(__u32), sizeof(struct sl_revnat)},
	[M_CT_TCP] = {SL_MAP_CT4_TCP, sizeof(struct sl_ct4_key), sizeof(struct sl_ct4_val)},
	[M_CT_ANY] = {SL_MAP_CT4_ANY, sizeof(struct sl_ct4_key), sizeof(struct sl_ct4_val)},
	[M_COUNTERS] = {SL_MAP_COUNTERS, sizeof(__u32), sizeof(struct sl_counter)},
	[M_NPCTR] = {SL_MAP_NP_COUNTERS, sizeof(__u32), sizeof(struct sl_counter)},
};

struct insp {
	char root[PATH_MAX + 72];
	int fd[M_N];		/* -1 until opened */
	__u32 max_entries[M_N]; /* from the kernel's map info */
};

const char *insp_root(const struct insp *in)
{
	return in ? in->root : NULL;
}

static bool node_ok(const char *node)
{
	size_t n = strlen(node);

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

/* The only node pinned under dir, into out. */
static int only_node(const char *dir, char *out, size_t len)
{
	char list[256] = "";
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		int err = -errno;

		pr_err(IN_LOG,
		       "'%s': no node pinned (%s): is sluice-agent running with this --bpffs?", dir,
		       strerror(-err));
		return -ENOENT;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !node_ok(de->d_name))
			continue;
		if (!n)
			snprintf(out, len, "%.63s", de->d_name);
		if (strlen(list) + strlen(de->d_name) + 3 < sizeof(list))
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%.63s",
				 n ? ", " : "", de->d_name);
		n++;
	}
	closedir(d);
	if (n == 1)
		return 0;
	if (!n) {
		pr_err(IN_LOG, "'%s': no node pinned: is sluice-agent running with this --bpffs?",
		       dir);
		return -ENOENT;
	}
	pr_err(IN_LOG, "'%s': %d nodes pinned (%s): pass --node NAME", dir, n, list);
	return -EINVAL;
}

struct insp *insp_open(const char *bpffs, const char *node)
{
	char dir[PATH_MAX], name[64];
	struct statfs sfs;
	struct stat st;
	struct insp *in;
	int err, n;

	if (!bpffs)
		bpffs = "/sys/fs/bpf";
	if (statfs(bpffs, &sfs) || sfs.f_type != BPF_FS_MAGIC) {
		pr_err(IN_LOG, "bpffs '%s': not a bpf filesystem (pass --bpffs DIR of the agent)",
		       bpffs);
		errno = ENOTSUP;
		return NULL;
	}
	n = snprintf(dir, sizeof(dir), "%s/sluice", bpffs);
	if (n < 0 || (size_t)n >= sizeof(dir) - 64) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (!node) {
		err = only_node(dir, name, sizeof(name));
		if (err) {
			errno = -err;
			return NULL;
		}
		node = name;
	} else if (!node_ok(node)) {
		pr_err(IN_LOG, "node name '%s': invalid: use 1-63 of [A-Za-z0-9._-]", node);
		errno = EINVAL;
		return NULL;
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		errno = ENOMEM;
		return NULL;
	}
	for (int i = 0; i < M_N; i++)
		in->fd[i] = -1;
	snprintf(in->root, sizeof(in->root), "%s/%.63s", dir, node);
	if (stat(in->root, &st) || !S_ISDIR(st.st_mode)) {
		pr_err(IN_LOG,
		       "node '%s': nothing pinned at '%s': is sluice-agent running with "
		       "--node-name %s --bpffs %s?",
		       node, in->root, node, bpffs);
		free(in);
		errno = ENOENT;
		return NULL;
	}
	return in;
}

void insp_close(struct insp *in)
{
	if (!in)
		return;
	for (int i = 0; i < M_N; i++)
		if (in->fd[i] >= 0)
			close(in->fd[i]);
	free(in);
}

/* Opens map m read-only and checks its layout. quiet: absence is not logged. */
static int in_map(struct insp *in, enum in_map m, bool quiet)
{
	struct bpf_obj_get_opts go = {.sz = sizeof(go), .file_flags = BPF_F_RDONLY};
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX + 160];
	int fd, err;

	if (in->fd[m] >= 0)
		return in->fd[m];
	snprintf(path, sizeof(path), "%s/%s", in->root, in_maps[m].name);
	fd = bpf_obj_get_opts(path, &go);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT && quiet)
			return err;
		pr_err(IN_LOG, "map '%s': open failed: %s", path, strerror(-err));
		return err;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		pr_err(IN_LOG, "map '%s': info failed: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	if (info.key_size != in_maps[m].key_size || info.value_size != in_maps[m].value_size) {
		pr_err(IN_LOG,
		       "map '%s': layout differs from this sluicectl (key %u, value %u bytes; "
		       "expected %u, %u): use the sluicectl of the agent's version",
		       path, info.key_size, info.value_size, in_maps[m].key_size,
		       in_maps[m].value_size);
		close(fd);
		return -EPROTO;
	}
	in->fd[m] = fd;
	in->max_entries[m] = info.max_entries;
	return fd;
}

/* Reads ARRAY map m (value size vsz) into a calloc'd table of max_entries
 * values, batched; falls back to one lookup per index. */
static int in_array_read(struct insp *in, enum in_map m, size_t vsz, void **out, __u32 *n_out)
{
	struct bpf_map_batch_opts bo = {.sz = sizeof(bo)};
	int fd = in_map(in, m, false);
	__u32 max, chunk = 4096, pos = 0, batch = 0, *keys = NULL;
	unsigned char *vals = NULL, *tmp = NULL;
	bool first = true;
	int err = 0;

	*out = NULL;
	*n_out = 0;
	if (fd < 0)
		return fd;
	max = in->max_entries[m];
	vals = calloc(max ? max : 1, vsz);
	keys = calloc(chunk, sizeof(*keys));
	tmp = calloc(chunk, vsz);
	if (!vals || !keys || !tmp) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 cnt = chunk;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, keys, tmp, &cnt,
					      &bo);

		if (rc && errno != ENOENT) {
			if (first && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP))
				break; /* no batch support: per-index below */
			err = -errno;
			pr_err(IN_LOG, "map '%s': batch read failed: %s", in_maps[m].name,
			       strerror(-err));
			goto out;
		}
		for (__u32 i = 0; i < cnt; i++)
			if (keys[i] < max)
				memcpy(vals + (size_t)keys[i] * vsz, tmp + (size_t)i * vsz, vsz);
		pos += cnt;
		first = false;
		if (rc || pos >= max) {
			*out = vals;
			*n_out = max;
			vals = NULL;
			goto out;
		}
	}
	for (__u32 k = 0; k < max; k++)
		if (bpf_map_lookup_elem(fd, &k, vals + (size_t)k * vsz))
			memset(vals + (size_t)k * vsz, 0, vsz);
	*out = vals;
	*n_out = max;
	vals = NULL;
out:
	free(vals);
	free(keys);
	free(tmp);
	return err;
}

/* Collects every (key, value) of hash map fd; ksz/vsz <= 64. */
static int in_hash_read(int fd, size_t ksz, size_t vsz, void **keys_out, void **vals_out,
			size_t *n_out)
{
	unsigned char k[64], next[64];
	unsigned char *ks = NULL, *vs = NULL;
	size_t n = 0, cap = 0;
	void *prev = NULL;

	*keys_out = *vals_out = NULL;
	*n_out = 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(k, next, ksz);
		prev = k;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			unsigned char *a = realloc(ks, nc * ksz), *b;

			if (!a) {
				free(ks);
				free(vs);
				return -ENOMEM;
			}
			ks = a;
			b = realloc(vs, nc * vsz);
			if (!b) {
				free(ks);
				free(vs);
				return -ENOMEM;
			}
			vs = b;
			cap = nc;
		}
		/* An LRU entry may be evicted between the two calls: skip it. */
		if (bpf_map_lookup_elem(fd, k, vs + n * vsz))
			continue;
		memcpy(ks + n * ksz, k, ksz);
		n++;
	}
	*keys_out = ks;
	*vals_out = vs;
	*n_out = n;
	return 0;
}

/* --- services ----------------------------------------------------------------------------- */

struct svc_rec {
	struct sl_svc_key key;
	struct sl_svc_val val;
};

static int svc_cmp(const void *a, const void *b)
{
	const struct svc_rec *x = a, *y = b;

	if (x->val.svc_id != y->val.svc_id)
		return x->val.svc_id < y->val.svc_id ? -1 : 1;
	return (int)x->key.scope - (int)y->key.scope;
}

/* Text column widths of the service table. */
#define SVC_W_ID    5
#define SVC_W_FE    24
#define SVC_W_SCOPE 7
#define SVC_W_TYPE  22
#define SVC_INDENT  (SVC_W_ID + SVC_W_FE + SVC_W_SCOPE + SVC_W_TYPE)

int insp_service_list(struct insp *in, struct insp_out *o)
{
	struct sl_backend *be = NULL;
	__u32 *slots = NULL, n_be = 0, n_slots = 0;
	struct svc_rec *recs = NULL;
	void *ks = NULL, *vs = NULL;
	size_t n = 0;
	int fd, err;

	if (!in || !o)
		return -EINVAL;
	fd = in_map(in, M_SVC4, false);
	if (fd < 0)
		return fd;
	err = in_hash_read(fd, sizeof(struct sl_svc_key), sizeof(struct sl_svc_val), &ks, &vs, &n);
	if (err)
		return err;
	err = in_array_read(in, M_SLOTS, sizeof(__u32), (void **)&slots, &n_slots);
	if (!err)
		err = in_array_read(in, M_BE4, sizeof(struct sl_backend), (void **)&be, &n_be);
	if (err)
		goto out;
	recs = calloc(n ? n : 1, sizeof(*recs));
	if (!recs) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(&recs[i].key, (char *)ks + i * sizeof(struct sl_svc_key),
		       sizeof(recs[i].key));
		memcpy(&recs[i].val, (char *)vs + i * sizeof(struct sl_svc_val),
		       sizeof(recs[i].val));
	}
	qsort(recs, n, sizeof(*recs), svc_cmp);

	insp_out_text(o, "%-*s%-*s%-*s%-*s%s\n", SVC_W_ID, "ID", SVC_W_FE, "FRONTEND", SVC_W_SCOPE,
		      "SCOPE", SVC_W_TYPE, "TYPE", "BACKENDS");
	insp_out_arr_open(o, NULL);
	for (size_t i = 0; i < n; i++) {
		const struct svc_rec *r = &recs[i];
		char fe[64], types[128] = "";

		ep_str(fe, sizeof(fe), r->key.addr, r->key.port, r->key.proto);
		for (size_t f = 0; f < sizeof(svc_flag_names) / sizeof(svc_flag_names[0]); f++)
			if (r->val.flags & svc_flag_names[f].flag)
				snprintf(types + strlen(types), sizeof(types) - strlen(types),
					 "%s%s", types[0] ? "," : "", svc_flag_names[f].name);

		insp_out_obj_open(o, NULL);
		insp_out_u64(o, INSP_JSON, "id", NULL, r->val.svc_id);
		insp_out_text(o, "%-*u", SVC_W_ID, r->val.svc_id);
		insp_out_str(o, INSP_TEXT, NULL, "%-24s", fe);
		insp_out_obj_open(o, "frontend");
		out_ep_json(o, r->key.addr, r->key.port, r->key.proto);
		insp_out_obj_close(o);
		insp_out_str(o, INSP_ANY, "scope", "%-7s",
			     r->key.scope == SL_SCOPE_INT ? "int" : "ext");
		insp_out_str(o, INSP_TEXT, NULL, "%-22s", types[0] ? types : "-");
		insp_out_arr_open(o, "flags");
		for (size_t f = 0; f < sizeof(svc_flag_names) / sizeof(svc_flag_names[0]); f++)
			if (r->val.flags & svc_flag_names[f].flag)
				insp_out_str(o, INSP_JSON, NULL, NULL, svc_flag_names[f].name);
		insp_out_arr_close(o);
		if (r->val.flags & SL_SVC_F_AFFINITY)
			insp_out_u64(o, INSP_JSON, "affinity_timeout_s", NULL, r->val.affinity_s);
		insp_out_u64(o, INSP_JSON, "slot_base", NULL, r->val.slot_base);
		if (!r->val.count)
			insp_out_text(o, "(none: connections refused)");
		insp_out_arr_open(o, "backends");
		for (__u32 b = 0; b < r->val.count; b++) {
			__u32 slot = r->val.slot_base + b;
			__u32 id = slot < n_slots ? slots[slot] : 0;
			const struct sl_backend *e = id && id < n_be ? &be[id] : NULL;
			char ep[64];

			if (b)
				insp_out_text(o, "\n%*s", SVC_INDENT, "");
			insp_out_obj_open(o, NULL);
			insp_out_u64(o, INSP_ANY, "id", "%llu => ", id);
			if (e && e->addr) {
				insp_out_str(o, INSP_TEXT, NULL, "%s",
					     ep_str(ep, sizeof(ep), e->addr, e->port, e->proto));
				out_ep_json(o, e->addr, e->port, e->proto);
				insp_out_str(o, INSP_ANY, "state", " (%s)",
					     insp_backend_state_name(e->state));
				insp_out_bool(o, INSP_JSON, "local", NULL, e->node_id == 0);
			} else {
				/* A slot pointing at nothing: show it, it is a bug. */
				insp_out_str(o, INSP_ANY, "state", "(%s)", "missing");
			}
			insp_out_obj_close(o);
		}
		insp_out_arr_close(o);
		insp_out_text(o, "\n");
		insp_out_obj_close(o);
	}
	insp_out_arr_close(o);
out:
	free(recs);
	free(ks);
	free(vs);
	free(slots);
	free(be);
	return err;
}

/* --- backends ----------------------------------------------------------------------------- */

int insp_backend_list(struct insp *in, struct insp_out *o)
{
	struct sl_backend *be = NULL;
	__u32 n_be = 0;
	int err;

	if (!in || !o)
		return -EINVAL;
	err = in_array_read(in, M_BE4, sizeof(*be), (void **)&be, &n_be);
	if (err)
		return err;
	insp_out_text(o, "%-7s%-24s%-13s%s\n", "ID", "BACKEND", "STATE", "NODE");
	insp_out_arr_open(o, NULL);
	/* Id 0 is never used; an all-zero entry was never written. */
	for (__u32 id = 1; id < n_be; id++) {
		const struct sl_backend *e = &be[id];
		char ep[64];

		if (!e->addr)
			continue;
		insp_out_obj_open(o, NULL);
		insp_out_u64(o, INSP_ANY, "id", "%-7llu", id);
		insp_out_str(o, INSP_TEXT, NULL, "%-24s",
			     ep_str(ep, sizeof(ep), e->addr, e->port, e->proto));
		out_ep_json(o, e->addr, e->port, e->proto);
		insp_out_str(o, INSP_ANY, "state", "%-13s", insp_backend_state_name(e->state));
		/* The agent writes node_id 1 for every remote backend (the ABI only
		 * tells local from remote), so a number here would name no node. */
		insp_out_str(o, INSP_TEXT, NULL, "%s", e->node_id ? "remote" : "local");
		insp_out_bool(o, INSP_JSON, "local", NULL, e->node_id == 0);
		insp_out_u64(o, INSP_JSON, "node_id", NULL, e->node_id);
		insp_out_text(o, "\n");
		insp_out_obj_close(o);
	}
	insp_out_arr_close(o);
	free(be);
	return 0;
}

/* --- conntrack ---------------------------------------------------------------------------- */

struct ct_rec {
	struct sl_ct4_key key;
	struct sl_ct4_val val;
	bool tcp_map;
};

static int ct_cmp(const void *a, const void *b)
{
	const struct ct_rec *x = a, *y = b;

	return memcmp(&x->key, &y->key, sizeof(x->key));
}

static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

int insp_conntrack_list(struct insp *in, struct insp_out *o, bool *absent)
{
	static const enum in_map maps[2] = {M_CT_TCP, M_CT_ANY};
	struct ct_rec *recs = NULL;
	size_t n = 0, cap = 0;
	int found = 0, err = 0;
	__u64 now = mono_ns();

	if (absent)
		*absent = false;
	if (!in || !o)
		return -EINVAL;
	for (int m = 0; m < 2; m++) {
		void *ks, *vs;
		size_t cnt;
		int fd = in_map(in, maps[m], true);

		if (fd == -ENOENT)
			continue;
		if (fd < 0) {
			err = fd;
			goto out;
		}
		found++;
		err = in_hash_read(fd, sizeof(struct sl_ct4_key), sizeof(struct sl_ct4_val), &ks,
				   &vs, &cnt);
		if (err)
			goto out;
		if (n + cnt > cap) {
			struct ct_rec *v = realloc(recs, (n + cnt + 1) * sizeof(*v));

			if (!v) {
				free(ks);
				free(vs);
				err = -ENOMEM;
				goto out;
			}
			recs = v;
			cap = n + cnt + 1;
		}
		for (size_t i = 0; i < cnt; i++, n++) {
			memcpy(&recs[n].key, (char *)ks + i * sizeof(struct sl_ct4_key),
			       sizeof(recs[n].key));
			memcpy(&recs[n].val, (char *)vs + i * sizeof(struct sl_ct4_val),
			       sizeof(recs[n].val));
			recs[n].tcp_map = maps[m] == M_CT_TCP;
		}
		free(ks);
		free(vs);
	}
	if (!found) {
		if (absent)
			*absent = true;
		insp_out_text(o,
			      "no conntrack: neither %s nor %s is pinned under %s.\n"
			      "The tc NodePort path is not loaded on this node; the socket LB "
			      "translates at connect() and keeps no per-flow state.\n",
			      SL_MAP_CT4_TCP, SL_MAP_CT4_ANY, in->root);
		insp_out_arr_open(o, NULL);
		insp_out_arr_close(o);
		goto out;
	}
	if (n)
		qsort(recs, n, sizeof(*recs), ct_cmp);
	insp_out_text(o, "%-6s%-6s%-44s%-24s%-8s%s\n", "PROTO", "DIR", "TUPLE", "BACKEND", "AGE",
		      "FLAGS");
	insp_out_arr_open(o, NULL);
	for (size_t i = 0; i < n; i++) {
		const struct sl_ct4_key *k = &recs[i].key;
		const struct sl_ct4_val *v = &recs[i].val;
		char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN], tuple[64], ep[64];
		__u64 age_s = now > v->last_seen_ns ? (now - v->last_seen_ns) / 1000000000ULL : 0;
		__u64 life = k->proto != IPPROTO_TCP ? SL_CT_LIFETIME_ANY_S
			     : v->flags & (SL_CT_F_SEEN_FIN | SL_CT_F_SEEN_RST)
				     ? SL_CT_LIFETIME_CLOSE_S
				     : SL_CT_LIFETIME_TCP_S;

		snprintf(tuple, sizeof(tuple), "%s:%u -> %s:%u", addr_str(s, sizeof(s), k->saddr),
			 ntohs(k->sport), addr_str(d, sizeof(d), k->daddr), ntohs(k->dport));
		insp_out_obj_open(o, NULL);
		insp_out_str(o, INSP_ANY, "protocol", "%-6s", insp_proto_name(k->proto));
		insp_out_str(o, INSP_ANY, "dir", "%-6s",
			     k->dir == SL_CT_DIR_REPLY ? "reply" : "fwd");
		insp_out_str(o, INSP_TEXT, NULL, "%-44s", tuple);
		insp_out_obj_open(o, "src");
		insp_out_str(o, INSP_JSON, "address", NULL, s);
		insp_out_u64(o, INSP_JSON, "port", NULL, ntohs(k->sport));
		insp_out_obj_close(o);
		insp_out_obj_open(o, "dst");
		insp_out_str(o, INSP_JSON, "address", NULL, d);
		insp_out_u64(o, INSP_JSON, "port", NULL, ntohs(k->dport));
		insp_out_obj_close(o);
		insp_out_str(o, INSP_TEXT, NULL, "%-24s",
			     ep_str(ep, sizeof(ep), v->backend_addr, v->backend_port, k->proto));
		insp_out_obj_open(o, "backend");
		insp_out_u64(o, INSP_JSON, "id", NULL, v->backend_id);
		insp_out_str(o, INSP_JSON, "address", NULL,
			     addr_str(s, sizeof(s), v->backend_addr));
		insp_out_u64(o, INSP_JSON, "port", NULL, ntohs(v->backend_port));
		insp_out_obj_close(o);
		insp_out_obj_open(o, "frontend");
		insp_out_str(o, INSP_JSON, "address", NULL, addr_str(s, sizeof(s), v->fe_addr));
		insp_out_u64(o, INSP_JSON, "port", NULL, ntohs(v->fe_port));
		insp_out_obj_close(o);
		insp_out_u64(o, INSP_JSON, "svc_id", NULL, v->svc_id);
		if (v->flags & SL_CT_F_SNAT) {
			insp_out_obj_open(o, "snat");
			insp_out_str(o, INSP_JSON, "address", NULL,
				     addr_str(s, sizeof(s), v->nat_addr));
			insp_out_u64(o, INSP_JSON, "port", NULL, ntohs(v->nat_port));
			insp_out_obj_close(o);
		}
		{
			char age[32];

			snprintf(age, sizeof(age), "%llus", (unsigned long long)age_s);
			insp_out_str(o, INSP_TEXT, NULL, "%-8s", age);
		}
		insp_out_u64(o, INSP_JSON, "age_s", NULL, age_s);
		insp_out_bool(o, INSP_JSON, "expired", NULL, age_s > life);
		insp_out_arr_open(o, "flags");
		{
			char fl[64] = "";

			if (v->flags & SL_CT_F_SNAT) {
				insp_out_str(o, INSP_JSON, NULL, NULL, "snat");
				strcat(fl, "snat ");
			}
			if (v->flags & SL_CT_F_SEEN_FIN) {
				insp_out_str(o, INSP_JSON, NULL, NULL, "fin");
				strcat(fl, "fin ");
			}
			if (v->flags & SL_CT_F_SEEN_RST) {
				insp_out_str(o, INSP_JSON, NULL, NULL, "rst");
				strcat(fl, "rst ");
			}
			if (age_s > life)
				strcat(fl, "expired ");
			if (fl[0])
				fl[strlen(fl) - 1] = '\0';
			insp_out_str(o, INSP_TEXT, NULL, "%s", fl[0] ? fl : "-");
		}
		insp_out_arr_close(o);
		if (v->flags & SL_CT_F_SNAT)
			insp_out_text(o, " via %s:%u", addr_str(s, sizeof(s), v->nat_addr),
				      ntohs(v->nat_port));
		insp_out_text(o, "\n");
		insp_out_obj_close(o);
	}
	insp_out_arr_close(o);
out:
	free(recs);
	return err;
}

/* --- counters ----------------------------------------------------------------------------- */

/* Sums per-CPU counters of map m into out[SL_R_MAX]. */
static int ctr_read(struct insp *in, enum in_map m, struct sl_counter out[SL_R_MAX], bool quiet)
{
	int ncpu = libbpf_num_possible_cpus(), fd, err = 0;
	struct sl_counter *v;

	memset(out, 0, SL_R_MAX * sizeof(*out));
	fd = in_map(in, m, quiet);
	if (fd < 0)
		return fd;
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 r = 0; r < SL_R_MAX && r < in->max_entries[m]; r++) {
		if (bpf_map_lookup_elem(fd, &r, v)) {
			err = -errno;
			pr_err(IN_LOG, "map '%s' key %u: lookup failed: %s", in_maps[m].name, r,
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

int insp_counters(struct insp *in, struct insp_out *o)
{
	struct sl_counter sock[SL_R_MAX], np[SL_R_MAX];
	bool have_sock, have_np;
	int err;

	if (!in || !o)
		return -EINVAL;
	err = ctr_read(in, M_COUNTERS, sock, true);
	have_sock = !err;
	if (err && err != -ENOENT)
		return err;
	err = ctr_read(in, M_NPCTR, np, true);
	have_np = !err;
	if (err && err != -ENOENT)
		return err;
	if (!have_sock && !have_np) {
		pr_err(IN_LOG, "'%s': neither %s nor %s is pinned", in->root, SL_MAP_COUNTERS,
		       SL_MAP_NP_COUNTERS);
		return -ENOENT;
	}
	insp_out_text(o, "%-24s%-14s%-14s%s\n", "REASON", "SOCKET-LB", "NODEPORT-PKTS",
		      "NODEPORT-BYTES");
	insp_out_arr_open(o, NULL);
	for (unsigned r = 0; r < SL_R_MAX; r++) {
		bool named = strcmp(insp_reason_name(r), "unknown") != 0;

		/* Unnamed indices only when something counted there. */
		if (!named && !(have_sock && sock[r].packets) && !(have_np && np[r].packets))
			continue;
		insp_out_obj_open(o, NULL);
		insp_out_str(o, INSP_ANY, "reason", "%-24s", insp_reason_name(r));
		insp_out_u64(o, INSP_JSON, "index", NULL, r);
		if (have_sock)
			insp_out_u64(o, INSP_ANY, "socket_lb", "%-14llu",
				     (unsigned long long)sock[r].packets);
		else
			insp_out_str(o, INSP_ANY, "socket_lb", "%-14s", NULL);
		if (have_np) {
			insp_out_obj_open(o, "nodeport");
			insp_out_u64(o, INSP_ANY, "packets", "%-14llu",
				     (unsigned long long)np[r].packets);
			insp_out_u64(o, INSP_ANY, "bytes", "%llu", (unsigned long long)np[r].bytes);
			insp_out_obj_close(o);
		} else {
			insp_out_str(o, INSP_ANY, "nodeport", "%-14s-", NULL);
		}
		insp_out_text(o, "\n");
		insp_out_obj_close(o);
	}
	insp_out_arr_close(o);
	return 0;
}
