/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What store.c (the backend-independent half of the store) and the backends
 * (store_memory.c, store_sqlite.c) share: the backend operations table, the
 * batch of finished txns a backend hands to the owner thread, and kv helpers.
 *
 * A backend evaluates txns wherever it likes (in submit for memory, on its
 * writer thread for sqlite) but never touches a txn's result fields: it fills
 * a struct store_result per txn and hands the whole batch to
 * store_batch_ready(). store_dispatch() then copies results into the txns on
 * the owner thread, so the owner never races with the backend over a txn.
 */
#ifndef SLUICE_CONTROL_STORE_INTERNAL_H
#define SLUICE_CONTROL_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The outcome of one txn, produced by a backend, consumed by dispatch. */
struct store_result {
	struct store_txn *txn;
	int err;	       /* becomes txn->err */
	int64_t rev;	       /* becomes txn->rev (0 unless err == 0) */
	struct store_kv *cur;  /* moved into txn->cur at dispatch */
	struct store_kv *prev; /* event prev (NULL on create); freed after dispatch */
};

/* Txns finished together (one sqlite transaction, or one memory write). */
struct store_batch {
	struct store_batch *next; /* ready-list link */
	size_t n;		  /* results used */
	size_t cap;		  /* results allocated */
	struct store_result res[];
};

struct store_backend {
	const char *name;
	/* Sets s->priv; on failure writes a message naming the problem into err. */
	int (*open)(struct store *s, char *err, size_t errlen);
	/* Validated txn; must eventually hand a result to store_batch_ready().
	 * Returns -ESHUTDOWN once draining started. */
	int (*submit)(struct store *s, struct store_txn *txn);
	/* Stops accepting, finishes queued txns (their batches become ready). */
	void (*drain)(struct store *s);
	/* Frees everything behind s->priv; called after the final dispatch. */
	void (*close)(struct store *s);
	int (*get)(struct store *s, const char *key, struct store_kv **out);
	int (*range)(struct store *s, const char *prefix, store_kv_fn fn, void *arg, int64_t *rev);
	int (*log_read)(struct store *s, int64_t after_rev, store_event_fn fn, void *arg);
	int (*compact)(struct store *s, int64_t rev);
	int (*check)(struct store *s, char *err, size_t errlen);
};

struct store {
	const struct store_backend *be;
	void *priv;		/* backend state */
	char *data_dir;		/* copy of opts.data_dir (may be NULL) */
	int64_t retain;		/* revisions of history compaction keeps */
	int compact_interval_s; /* seconds between periodic compactions */
	bool sync_full;		/* sqlite: synchronous=FULL */
	store_event_fn on_event;
	void *on_event_arg;

	int efd;	      /* eventfd: non-zero exactly while ready != NULL */
	pthread_mutex_t lock; /* guards ready/ready_tail and the eventfd counter */
	struct store_batch *ready, **ready_tail;

	int64_t rev;	     /* dispatched revision; atomic (owner writes) */
	int64_t compact_rev; /* atomic; written by the backend */
	int closing;	     /* atomic; set once store_close() started */

	/* Counters, atomic, see struct store_stats. */
	uint64_t st_batches, st_txns, st_failed_batches, st_compactions;
};

struct store_batch *store_batch_new(size_t cap);
void store_batch_free(struct store_batch *b);
/* Queues a finished batch for the owner and makes the notify fd readable.
 * Takes ownership of b. Thread-safe. */
void store_batch_ready(struct store *s, struct store_batch *b);

/* Builds a heap kv (copies key and value). value may be NULL (len 0) for
 * "no value"; an empty value is stored as "" so value != NULL. */
struct store_kv *store_kv_make(const char *key, size_t key_len, const void *value, size_t value_len,
			       int64_t create_rev, int64_t mod_rev, int64_t version);

/* Smallest string greater than every string with this prefix (for a range's
 * exclusive end); NULL when there is none (empty or all-0xff prefix) or on
 * allocation failure (then *oom is set). */
char *store_prefix_end(const char *prefix, bool *oom);

extern const struct store_backend store_backend_memory;
extern const struct store_backend store_backend_sqlite;

#endif
