/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read-only inspection of a node's pinned load-balancing maps, joined the way
 * an operator wants to read them (cilium-dbg service list style): frontends
 * with their backends and states, backends, conntrack entries of the tc
 * NodePort path, and drop/translation counters. sluicectl is a thin CLI over
 * this; tests drive it on maps they create themselves.
 *
 * Output goes through struct insp_out, one code path for text and JSON in the
 * manner of iproute2's print_*(PRINT_ANY, key, fmt, value): each field is
 * emitted once with its JSON key and its text format, and the writer keeps
 * whichever the output format needs. Lists are JSON arrays of objects.
 *
 * Maps are opened by pin name under <bpffs>/sluice/<node>/ and checked
 * against the layouts of abi/lb.h (key and value sizes) before any read, so a
 * node running another layout version gives an error naming the map instead
 * of garbage. Nothing is ever written. Not thread-safe.
 */
#ifndef SLUICE_AGENT_INSPECT_H
#define SLUICE_AGENT_INSPECT_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/buf.h"

/* --- output writer ------------------------------------------------------------------- */

enum insp_fmt {
	INSP_FMT_TEXT = 0,
	INSP_FMT_JSON = 1,
};

/* Where a field appears. */
enum insp_kind {
	INSP_ANY = 0,  /* text (with its format) and JSON (with its key) */
	INSP_JSON = 1, /* JSON only (structure a table cannot show) */
	INSP_TEXT = 2, /* text only (headers, padding, line breaks) */
};

#define INSP_OUT_DEPTH 16

struct insp_out {
	enum insp_fmt fmt;
	struct sl_buf buf;	    /* everything written so far */
	int depth;		    /* open JSON containers */
	bool comma[INSP_OUT_DEPTH]; /* container at that depth has a member already */
};

void insp_out_init(struct insp_out *o, enum insp_fmt fmt);
void insp_out_fini(struct insp_out *o);

/* Containers: key names the member inside an object; NULL inside an array
 * or at the top. Text output ignores containers. */
void insp_out_obj_open(struct insp_out *o, const char *key);
void insp_out_obj_close(struct insp_out *o);
void insp_out_arr_open(struct insp_out *o, const char *key);
void insp_out_arr_close(struct insp_out *o);

/* Fields. tfmt is the text format (one %s / %llu / %s); NULL prints nothing
 * in text. val NULL is JSON null and "-" in text. */
void insp_out_str(struct insp_out *o, enum insp_kind k, const char *key, const char *tfmt,
		  const char *val);
void insp_out_u64(struct insp_out *o, enum insp_kind k, const char *key, const char *tfmt,
		  unsigned long long val);
void insp_out_bool(struct insp_out *o, enum insp_kind k, const char *key, const char *tfmt,
		   bool val);
/* Text only, printf style. */
void insp_out_text(struct insp_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- the inspected node ----------------------------------------------------------------- */

struct insp;

/*
 * Opens <bpffs>/sluice/<node> (bpffs NULL = /sys/fs/bpf). node NULL picks the
 * only node pinned under <bpffs>/sluice. Returns a handle to free with
 * insp_close(), or NULL with errno: EINVAL (bad node name, or several nodes
 * and none named: the log lists them), ENOENT (nothing pinned for the node),
 * ENOTSUP (bpffs is not a bpf filesystem). Maps are opened on first use.
 */
struct insp *insp_open(const char *bpffs, const char *node);
void insp_close(struct insp *in);

/* "<bpffs>/sluice/<node>", owned by in. */
const char *insp_root(const struct insp *in);

/*
 * Each list writes one JSON array (or a text table with a header) to o and
 * returns 0, -ENOENT (a map it needs is not pinned: logged with its path),
 * -EPROTO (a pinned map's layout differs from abi/lb.h) or the map error.
 */
int insp_service_list(struct insp *in, struct insp_out *o);
int insp_backend_list(struct insp *in, struct insp_out *o);
/* Conntrack of the tc NodePort path. Neither CT map pinned is not an error:
 * the list is empty, *absent (may be NULL) is set, and text output explains
 * why (the socket LB keeps no per-flow state). */
int insp_conntrack_list(struct insp *in, struct insp_out *o, bool *absent);
/* Per-reason counters of the socket LB (sl_counters_v1) and the NodePort
 * path (sl_npctr_v1, if pinned), summed over CPUs. */
int insp_counters(struct insp *in, struct insp_out *o);

/* Names used in both outputs (never NULL). */
const char *insp_proto_name(unsigned proto);
const char *insp_reason_name(unsigned reason);
const char *insp_backend_state_name(unsigned state);

#endif
