/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API server's durable store, shaped like etcd v3 so an etcd backend can
 * sit beside the embedded ones without changing the server:
 *
 *   - one cluster-wide revision, incremented by every successful write;
 *   - every key has create_rev, mod_rev and version (writes since create);
 *   - writes are compare-and-swap transactions (create-if-absent,
 *     update/delete-if-mod_rev-matches) submitted asynchronously;
 *   - a log of events retained back to the compact revision.
 *
 * Backends: "memory" (tests; nothing survives the process) and "sqlite"
 * (default; WAL; one writer thread with group commit; a current-key table plus
 * an append-only log; compaction keeps a configurable window).
 *
 * Threading model. The owner (the API server's event loop) submits writes
 * from its own thread and polls store_notify_fd(); when it is readable the
 * owner calls store_dispatch(), which, on the owner's thread:
 *   1. calls the event callback for each committed write, in revision order;
 *   2. then calls each finished txn's completion callback.
 * So by the time a writer hears "done", every event up to its revision has
 * been delivered (read-your-writes for anything fed by the event callback).
 * A txn is acknowledged only after its batch is durable (fsync'd for sqlite).
 *
 * Reads (store_get, store_range, store_log_read) are synchronous and may be
 * called from the owner thread; the sqlite backend serves them from a
 * separate read connection and never blocks behind the writer's fsync.
 */
#ifndef SLUICE_CONTROL_STORE_H
#define SLUICE_CONTROL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* One key's value at a revision. Strings are NUL-terminated, heap-owned. */
struct store_kv {
	char *key;
	char *value; /* NULL for a deletion's new state */
	size_t value_len;
	int64_t create_rev; /* revision that created this incarnation of the key */
	int64_t mod_rev;    /* revision of the last write (for a delete: the delete) */
	int64_t version;    /* 1 after create, +1 per update */
};

void store_kv_free(struct store_kv *kv); /* frees the struct too; NULL ok */
struct store_kv *store_kv_dup(const struct store_kv *kv);

enum store_op {
	STORE_CREATE, /* fails with -SL_ERR_EXISTS if the key exists */
	STORE_UPDATE, /* fails with -SL_ERR_NOTFOUND if absent, -SL_ERR_CONFLICT on rev mismatch */
	STORE_DELETE, /* same failures as UPDATE */
};

struct store_txn;
typedef void (*store_done_fn)(struct store_txn *txn, void *arg);

/*
 * A write request. The caller fills the request fields, submits, and must
 * keep the struct alive until `done` runs; results are filled in before that.
 */
struct store_txn {
	/* request */
	enum store_op op;
	char *key;   /* owned by the caller */
	char *value; /* CREATE/UPDATE: bytes to store (owned by the caller) */
	size_t value_len;
	int64_t expect_rev; /* UPDATE/DELETE: required mod_rev, 0 = unconditional */
	void *hint;	    /* opaque, handed back in the event (e.g. the parsed
			       object, so the owner need not re-parse the value) */
	store_done_fn done;
	void *done_arg;

	/* result */
	int err;	      /* 0, -SL_ERR_EXISTS, -SL_ERR_NOTFOUND, -SL_ERR_CONFLICT,
				 or -errno (I/O failure: nothing was written) */
	int64_t rev;	      /* revision of this write when err == 0 */
	struct store_kv *cur; /* on success: the new state (for DELETE: the deleted
				 value with mod_rev = delete revision); on EXISTS or
				 CONFLICT: the current kv. Owned by the txn; freed by
				 store_txn_fini(). */

	struct store_txn *next; /* internal queue link */
};

void store_txn_fini(struct store_txn *txn); /* frees cur; not key/value */

enum store_event_type {
	STORE_EV_PUT,
	STORE_EV_DELETE,
};

/* Delivered by store_dispatch(). All pointers borrowed for the call only. */
struct store_event {
	enum store_event_type type;
	const struct store_kv *kv;   /* PUT: new state. DELETE: last value, mod_rev = delete rev */
	const struct store_kv *prev; /* the state before this write; NULL on create */
	void *hint;		     /* txn->hint of the write that caused it (NULL if unknown) */
};

typedef void (*store_event_fn)(const struct store_event *ev, void *arg);

struct store_opts {
	const char *backend;	  /* "sqlite" or "memory" */
	const char *data_dir;	  /* sqlite: directory holding state.db */
	int64_t retain_revisions; /* compaction keeps at least this many revisions of
				     history (default 10000); 0 = default */
	int compact_interval_s;	  /* how often to compact (default 60); 0 = default */
	bool sync_full;		  /* sqlite synchronous=FULL (durable on power loss);
				     default true */
	store_event_fn on_event;  /* may be NULL */
	void *on_event_arg;
};

/* Opens (creating if needed) a store. NULL with errno set; *err gets a
 * message naming the problem (bad backend name, unwritable dir, corrupt DB). */
struct store *store_open(const struct store_opts *opts, char *err, size_t errlen);
/* Finishes queued writes (their callbacks run through a final dispatch), then
 * closes. NULL ok. */
void store_close(struct store *s);

/* Queues a write. Returns 0, or -errno if the store is closing (-ESHUTDOWN)
 * or the request is malformed (-EINVAL: empty key, unknown op, NULL value with
 * a length, negative expect_rev); then `done` will not run. A txn may be
 * resubmitted after its `done` ran (e.g. a retry after CONFLICT); txn->cur of
 * the previous attempt stays valid until the new result replaces it, so the
 * request may point into it. txn->cur must be NULL or valid at submit. */
int store_submit(struct store *s, struct store_txn *txn);

/* Readable (level-triggered) while completions are pending. */
int store_notify_fd(const struct store *s);
/* Delivers pending events and completions on the calling thread. Returns the
 * number of txns completed. */
int store_dispatch(struct store *s);

/* Current revision (of everything dispatched so far) and compact revision
 * (events at or below it are gone from the log). */
int64_t store_rev(const struct store *s);
int64_t store_compact_rev(const struct store *s);

/* Point read. Returns 0 and a kv the caller frees, or -SL_ERR_NOTFOUND. */
int store_get(struct store *s, const char *key, struct store_kv **out);

/* Calls fn for every current key with the given prefix, in key order.
 * *rev receives the revision the snapshot was taken at. fn returns 0 to go on,
 * non-zero to stop (that value is returned). */
typedef int (*store_kv_fn)(const struct store_kv *kv, void *arg);
int store_range(struct store *s, const char *prefix, store_kv_fn fn, void *arg, int64_t *rev);

/* Replays the log: every event with revision > after_rev, in order, through
 * fn (prev is NULL when unknown). -SL_ERR_COMPACTED if after_rev < compact rev. */
int store_log_read(struct store *s, int64_t after_rev, store_event_fn fn, void *arg);

/* Drops history at or below rev (never the current value of a key). Waits
 * until done (sqlite: runs on the writer thread between batches). Returns 0,
 * -SL_ERR_FUTURE if rev is above the committed revision, or -errno. */
int store_compact(struct store *s, int64_t rev);

/* Consistency check for tools and tests: sqlite runs PRAGMA integrity_check
 * and verifies that revisions above the compact revision are contiguous, that
 * the current table matches the newest log entry of every key, and that the
 * stored revision is not behind the log. Returns 0, or a negative error with a
 * message in err. Slow on big stores (full scans); not for the serving path. */
int store_check(struct store *s, char *err, size_t errlen);

/* Counters since open (for metrics and tests). */
struct store_stats {
	uint64_t batches;	 /* batches handed to dispatch (sqlite: transactions) */
	uint64_t txns;		 /* txns completed, including failed ones */
	uint64_t failed_batches; /* batches whose commit failed (-errno to every txn) */
	uint64_t compactions;	 /* compaction steps that deleted history */
};
void store_stats_get(const struct store *s, struct store_stats *st);

#endif
