// SPDX-License-Identifier: Apache-2.0
/*
 * The "sqlite" store backend: the API server's durable state in
 * <data_dir>/state.db, in WAL mode.
 *
 * Tables:
 *   log(rev INTEGER PRIMARY KEY, key, value, create_rev, version, deleted,
 *       prev_rev)   append-only history; rev is the store revision. A delete
 *                   row carries the deleted value; prev_rev is the mod_rev of
 *                   the state the write replaced (0 on create), so a replay
 *                   can hand out prev by joining on it.
 *   cur(key PRIMARY KEY, value, create_rev, mod_rev, version)
 *                   the current state, updated in the same transaction, so a
 *                   get or list is an index lookup/range scan (never kine's
 *                   MAX(id) ... GROUP BY over the whole history).
 *   meta(k, v)      'schema', 'rev' (the revision counter, so it never goes
 *                   back even when compaction emptied the log) and
 *                   'compact_rev'.
 *
 * Writes: one writer thread owns the write connection. It takes everything
 * queued, evaluates each txn's compare against `cur` inside ONE
 * `BEGIN IMMEDIATE` transaction (earlier txns of the batch are visible to
 * later ones), commits (one fsync with synchronous=FULL), then hands the
 * batch to the owner through the notify fd. If anything in the batch fails
 * (disk full, I/O error) the transaction is rolled back and every txn of the
 * batch gets the same -errno, so nothing is half-applied and no revision is
 * consumed.
 *
 * Reads come from a small pool of read-only connections (one per concurrent
 * reader; nested reads from callbacks get their own), so they run on WAL
 * snapshots and never wait behind the writer's fsync.
 *
 * Compaction runs on the writer thread between batches, 1000 log rows per
 * transaction, every compact_interval_s (and on store_compact()). It deletes
 * history at or below the target except rows still referenced as prev_rev by
 * newer history (a later cycle removes them once their referrers are gone),
 * records compact_rev, then runs a PASSIVE checkpoint so readers are never
 * blocked by it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"
#include "sluice/err.h"
#include "sluice/log.h"

#define SQ_SCHEMA_VERSION   1
#define SQ_BATCH_MAX	    4096 /* txns per transaction: bounds latency and memory */
#define SQ_COMPACT_CHUNK    1000 /* log rows per compaction transaction */
#define SQ_BUSY_TIMEOUT_MS  5000
#define SQ_MAX_IDLE_READERS 4

static const char sq_schema[] =
	"CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS log (rev INTEGER PRIMARY KEY, key TEXT NOT NULL,"
	" value BLOB, create_rev INTEGER NOT NULL, version INTEGER NOT NULL,"
	" deleted INTEGER NOT NULL, prev_rev INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS log_prev ON log(prev_rev);"
	"CREATE TABLE IF NOT EXISTS cur (key TEXT PRIMARY KEY, value BLOB NOT NULL,"
	" create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES ('schema', 1), ('rev', 0), ('compact_rev', 0);";

/* A pooled read connection with its prepared statements. */
struct sq_reader {
	struct sq_reader *next;
	sqlite3 *db;
	sqlite3_stmt *get, *range_all, *range_pfx, *meta, *log;
};

struct sq {
	struct store *s;
	char *path; /* <data_dir>/state.db */
	int lockfd; /* flock'd <data_dir>/state.lock: one process per store */

	/* Writer connection: used by the writer thread only (and open/close). */
	sqlite3 *wdb;
	sqlite3_stmt *w_sel, *w_ins, *w_upsert, *w_del, *w_meta_set, *w_meta_get;
	sqlite3_stmt *w_chunk_end, *w_compact_del, *w_begin, *w_commit;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t qlock; /* guards everything below */
	pthread_cond_t qcond;  /* writer wakeup */
	pthread_cond_t ccond;  /* compaction finished */
	struct store_txn *qhead, **qtail;
	bool draining;
	int64_t rev;	       /* committed revision */
	int64_t compact_rev;   /* committed compact revision */
	int64_t compact_req;   /* highest target asked for by store_compact() */
	uint64_t compact_seq;  /* store_compact() requests so far */
	uint64_t compact_done; /* requests answered */
	int compact_err;       /* result of the last finished cycle */

	pthread_mutex_t plock; /* reader pool */
	struct sq_reader *idle;
	int nidle;
};

/* Turns an SQLite failure into -errno: the OS error when there was one (so
 * EFBIG, ENOSPC, EIO reach the caller as they are), else the nearest errno. */
static int sq_errno(sqlite3 *db, int rc)
{
	int sys = db ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
		if (sys > 0)
			return -sys;
		return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

static int64_t monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int sq_exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_errno(db, rc);
}

/* Single-row integer query on a prepared statement; 0 and *out, or -errno. */
static int sq_step_int(sqlite3 *db, sqlite3_stmt *st, int64_t *out)
{
	int rc = sqlite3_step(st);
	int err = 0;

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		err = -ENOENT;
	else
		err = sq_errno(db, rc);
	sqlite3_reset(st);
	return err;
}

/* After a failure inside an explicit transaction SQLite may or may not have
 * rolled back already; make sure nothing stays open. */
static void sq_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static int sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Borrowed kv view of a row: key/value point into SQLite's memory. */
static void sq_col_kv(sqlite3_stmt *st, int ival, struct store_kv *kv)
{
	/* column_text NUL-terminates blobs too, so value is a C string. */
	kv->value = (char *)sqlite3_column_text(st, ival);
	kv->value_len = (size_t)sqlite3_column_bytes(st, ival);
	if (!kv->value)
		kv->value = (char *)"";
}

/* --- readers ----------------------------------------------------------------- */

static void sq_reader_free(struct sq_reader *r)
{
	if (!r)
		return;
	sqlite3_finalize(r->get);
	sqlite3_finalize(r->range_all);
	sqlite3_finalize(r->range_pfx);
	sqlite3_finalize(r->meta);
	sqlite3_finalize(r->log);
	sqlite3_close(r->db);
	free(r);
}

static int sq_reader_open(struct sq *q, struct sq_reader **out, char *err, size_t errlen)
{
	struct sq_reader *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	rc = sqlite3_open_v2(q->path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(r->db, 1);
	sqlite3_busy_timeout(r->db, SQ_BUSY_TIMEOUT_MS);
	rc = sqlite3_exec(r->db, "PRAGMA query_only=1", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
#define PREP(field, sql)                                                                      \
	do {                                                                                  \
		rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &r->field, \
					NULL);                                                \
		if (rc != SQLITE_OK)                                                          \
			goto fail;                                                            \
	} while (0)
	PREP(get, "SELECT value, create_rev, mod_rev, version FROM cur WHERE key = ?1");
	PREP(range_all, "SELECT key, value, create_rev, mod_rev, version FROM cur "
			"WHERE key >= ?1 ORDER BY key");
	PREP(range_pfx, "SELECT key, value, create_rev, mod_rev, version FROM cur "
			"WHERE key >= ?1 AND key < ?2 ORDER BY key");
	PREP(meta, "SELECT v FROM meta WHERE k = ?1");
	PREP(log, "SELECT l.rev, l.key, l.value, l.create_rev, l.version, l.deleted, l.prev_rev,"
		  " p.value, p.create_rev, p.version FROM log l"
		  " LEFT JOIN log p ON p.rev = l.prev_rev AND l.deleted = 0"
		  " WHERE l.rev > ?1 ORDER BY l.rev");
#undef PREP
	*out = r;
	return 0;
fail:
	if (err)
		snprintf(err, errlen, "store '%s': read connection failed: %s", q->path,
			 r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
	else
		pr_err("store", "'%s': read connection failed: %s", q->path,
		       r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
	rc = sq_errno(r->db, rc);
	sq_reader_free(r);
	return rc;
}

static int sq_reader_get(struct sq *q, struct sq_reader **out)
{
	pthread_mutex_lock(&q->plock);
	*out = q->idle;
	if (*out) {
		q->idle = (*out)->next;
		q->nidle--;
	}
	pthread_mutex_unlock(&q->plock);
	if (*out)
		return 0;
	return sq_reader_open(q, out, NULL, 0);
}

static void sq_reader_put(struct sq *q, struct sq_reader *r)
{
	pthread_mutex_lock(&q->plock);
	if (q->nidle < SQ_MAX_IDLE_READERS) {
		r->next = q->idle;
		q->idle = r;
		q->nidle++;
		r = NULL;
	}
	pthread_mutex_unlock(&q->plock);
	sq_reader_free(r);
}

static int sq_meta(struct sq_reader *r, const char *k, int64_t *v)
{
	sq_bind_text(r->meta, 1, k);
	return sq_step_int(r->db, r->meta, v);
}

/* --- writer -------------------------------------------------------------------- */

/* Reads the current row of txn->key into *old (NULL if absent). */
static int sq_load_cur(struct sq *q, const char *key, struct store_kv **old)
{
	sqlite3_stmt *st = q->w_sel;
	int rc, err = 0;

	*old = NULL;
	sq_bind_text(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct store_kv v = {0};

		sq_col_kv(st, 0, &v);
		*old = store_kv_make(key, strlen(key), v.value, v.value_len,
				     sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
				     sqlite3_column_int64(st, 3));
		if (!*old)
			err = -ENOMEM;
	} else if (rc != SQLITE_DONE) {
		err = sq_errno(q->wdb, rc);
	}
	sqlite3_reset(st);
	return err;
}

static int sq_step_done(struct sq *q, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : sq_errno(q->wdb, rc);
}

static int sq_log_append(struct sq *q, int64_t rev, const struct store_kv *kv, bool deleted,
			 int64_t prev_rev)
{
	sqlite3_stmt *st = q->w_ins;

	sqlite3_bind_int64(st, 1, rev);
	sq_bind_text(st, 2, kv->key);
	sqlite3_bind_blob64(st, 3, kv->value, kv->value_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, kv->create_rev);
	sqlite3_bind_int64(st, 5, kv->version);
	sqlite3_bind_int(st, 6, deleted);
	sqlite3_bind_int64(st, 7, prev_rev);
	return sq_step_done(q, st);
}

/*
 * Evaluates one txn against `cur` inside the open batch transaction and, if
 * its compare holds, writes it with revision *rev + 1. A compare failure is
 * a result (r->err), not an error; the return value is non-zero only for an
 * SQLite/allocation failure, which aborts the whole batch.
 */
static int sq_eval(struct sq *q, struct store_txn *txn, int64_t *rev, struct store_result *r)
{
	struct store_kv *old = NULL, *nkv = NULL;
	int64_t nrev = *rev + 1;
	int err;

	err = sq_load_cur(q, txn->key, &old);
	if (err)
		return err;
	if (txn->op == STORE_CREATE && old) {
		r->err = -SL_ERR_EXISTS;
		r->cur = old;
		return 0;
	}
	if (txn->op != STORE_CREATE && !old) {
		r->err = -SL_ERR_NOTFOUND;
		return 0;
	}
	if (txn->op != STORE_CREATE && txn->expect_rev && txn->expect_rev != old->mod_rev) {
		r->err = -SL_ERR_CONFLICT;
		r->cur = old;
		return 0;
	}

	if (txn->op == STORE_DELETE) {
		nkv = store_kv_dup(old);
		if (!nkv) {
			err = -ENOMEM;
			goto fail;
		}
		nkv->mod_rev = nrev;
		err = sq_log_append(q, nrev, old, true, old->mod_rev);
		if (err)
			goto fail;
		sq_bind_text(q->w_del, 1, txn->key);
		err = sq_step_done(q, q->w_del);
		if (err)
			goto fail;
	} else {
		nkv = store_kv_make(txn->key, strlen(txn->key), txn->value ? txn->value : "",
				    txn->value_len, old ? old->create_rev : nrev, nrev,
				    old ? old->version + 1 : 1);
		if (!nkv) {
			err = -ENOMEM;
			goto fail;
		}
		err = sq_log_append(q, nrev, nkv, false, old ? old->mod_rev : 0);
		if (err)
			goto fail;
		sq_bind_text(q->w_upsert, 1, nkv->key);
		sqlite3_bind_blob64(q->w_upsert, 2, nkv->value, nkv->value_len, SQLITE_STATIC);
		sqlite3_bind_int64(q->w_upsert, 3, nkv->create_rev);
		sqlite3_bind_int64(q->w_upsert, 4, nkv->mod_rev);
		sqlite3_bind_int64(q->w_upsert, 5, nkv->version);
		err = sq_step_done(q, q->w_upsert);
		if (err)
			goto fail;
	}
	*rev = nrev;
	r->err = 0;
	r->rev = nrev;
	r->cur = nkv;
	r->prev = old;
	return 0;
fail:
	store_kv_free(old);
	store_kv_free(nkv);
	return err;
}

static int sq_meta_set(struct sq *q, const char *k, int64_t v)
{
	sq_bind_text(q->w_meta_set, 1, k);
	sqlite3_bind_int64(q->w_meta_set, 2, v);
	return sq_step_done(q, q->w_meta_set);
}

static int sq_begin(struct sq *q)
{
	return sq_step_done(q, q->w_begin);
}

static int sq_commit(struct sq *q)
{
	return sq_step_done(q, q->w_commit);
}

/* One group commit: every txn in list, one transaction, one fsync. */
static void sq_write_batch(struct sq *q, struct store_txn *list, size_t n)
{
	struct store *s = q->s;
	struct store_batch *b;
	int64_t rev = q->rev; /* written by this thread only */
	size_t i;
	int err;

	while (!(b = store_batch_new(n))) {
		/* Results cannot even be reported: wait for memory. */
		pr_err("store", "'%s': out of memory for a batch of %zu; retrying", q->path, n);
		usleep(10000);
	}
	for (i = 0; list; i++, list = list->next)
		b->res[i].txn = list;
	b->n = n;

	err = sq_begin(q);
	for (i = 0; !err && i < n; i++)
		err = sq_eval(q, b->res[i].txn, &rev, &b->res[i]);
	if (!err && rev != q->rev)
		err = sq_meta_set(q, "rev", rev);
	if (!err)
		err = sq_commit(q);
	if (err) {
		pr_err("store", "'%s': commit of %zu txns failed: %s (%s)", q->path, n,
		       sl_strerror(err), sqlite3_errmsg(q->wdb));
		sq_rollback(q->wdb);
		for (i = 0; i < n; i++) {
			store_kv_free(b->res[i].cur);
			store_kv_free(b->res[i].prev);
			b->res[i].cur = b->res[i].prev = NULL;
			b->res[i].err = err;
			b->res[i].rev = 0;
		}
		__atomic_add_fetch(&s->st_failed_batches, 1, __ATOMIC_RELAXED);
	} else {
		pthread_mutex_lock(&q->qlock);
		q->rev = rev;
		pthread_mutex_unlock(&q->qlock);
	}
	store_batch_ready(s, b);
}

/*
 * One compaction step: deletes up to SQ_COMPACT_CHUNK log rows in
 * (*cursor, target] that no row above target refers to as its prev.
 * Returns 1 when the cycle reached target, 0 to call again, or -errno.
 */
static int sq_compact_step(struct sq *q, int64_t target, int64_t *cursor)
{
	int64_t hi = target, crev;
	int err;

	/* Chunk by row count, not revision span: the range below the old
	 * compact revision is sparse (only rows kept as someone's prev). */
	sqlite3_bind_int64(q->w_chunk_end, 1, *cursor);
	sqlite3_bind_int64(q->w_chunk_end, 2, target);
	sqlite3_bind_int64(q->w_chunk_end, 3, SQ_COMPACT_CHUNK - 1);
	err = sq_step_int(q->wdb, q->w_chunk_end, &hi);
	if (err == -ENOENT) {
		hi = target;
		err = 0;
	}
	if (err)
		return err;

	err = sq_begin(q);
	if (err)
		return err;
	sqlite3_bind_int64(q->w_compact_del, 1, *cursor);
	sqlite3_bind_int64(q->w_compact_del, 2, hi);
	sqlite3_bind_int64(q->w_compact_del, 3, target);
	err = sq_step_done(q, q->w_compact_del);
	crev = hi > q->compact_rev ? hi : q->compact_rev;
	if (!err)
		err = sq_meta_set(q, "compact_rev", crev);
	if (!err)
		err = sq_commit(q);
	if (err) {
		sq_rollback(q->wdb);
		return err;
	}
	pthread_mutex_lock(&q->qlock);
	q->compact_rev = crev;
	pthread_mutex_unlock(&q->qlock);
	__atomic_store_n(&q->s->compact_rev, crev, __ATOMIC_RELEASE);
	__atomic_add_fetch(&q->s->st_compactions, 1, __ATOMIC_RELAXED);
	*cursor = hi;
	return hi >= target;
}

static void *sq_writer(void *arg)
{
	struct sq *q = arg;
	struct store *s = q->s;
	int64_t next_periodic = monotonic_s() + s->compact_interval_s;
	bool cycle = false; /* a compaction cycle is in progress */
	int64_t cyc_target = 0, cyc_cursor = 0;
	uint64_t cyc_seq = 0; /* requests this cycle answers */

	pthread_mutex_lock(&q->qlock);
	for (;;) {
		if (q->qhead) {
			struct store_txn *list = q->qhead, *t = list;
			size_t n = 1;

			while (t->next && n < SQ_BATCH_MAX) {
				t = t->next;
				n++;
			}
			q->qhead = t->next;
			if (!q->qhead)
				q->qtail = &q->qhead;
			t->next = NULL;
			pthread_mutex_unlock(&q->qlock);
			sq_write_batch(q, list, n);
			pthread_mutex_lock(&q->qlock);
			continue;
		}
		if (!cycle) {
			int64_t target = 0;

			if (q->compact_seq != q->compact_done)
				target = q->compact_req;
			if (monotonic_s() >= next_periodic) {
				next_periodic = monotonic_s() + s->compact_interval_s;
				if (q->rev - s->retain > target)
					target = q->rev - s->retain;
			}
			if (target > 0) {
				cycle = true;
				cyc_target = target;
				cyc_cursor = 0;
				cyc_seq = q->compact_seq;
			}
		}
		if (cycle) {
			int rc;

			pthread_mutex_unlock(&q->qlock);
			rc = sq_compact_step(q, cyc_target, &cyc_cursor);
			if (rc) {
				/* Done (or failed): let the WAL shrink without
				 * waiting for readers. */
				if (rc > 0)
					sqlite3_wal_checkpoint_v2(q->wdb, NULL,
								  SQLITE_CHECKPOINT_PASSIVE, NULL,
								  NULL);
				else
					pr_err("store",
					       "'%s': compaction to %" PRId64 " failed: %s",
					       q->path, cyc_target, sl_strerror(rc));
			}
			pthread_mutex_lock(&q->qlock);
			if (rc) {
				cycle = false;
				q->compact_err = rc < 0 ? rc : 0;
				if (cyc_seq != q->compact_done) {
					q->compact_done = cyc_seq;
					pthread_cond_broadcast(&q->ccond);
				}
			}
			continue;
		}
		if (q->draining)
			break;
		{
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += next_periodic - monotonic_s();
			if (ts.tv_sec < 0)
				ts.tv_sec = 0;
			pthread_cond_timedwait(&q->qcond, &q->qlock, &ts);
		}
	}
	pthread_mutex_unlock(&q->qlock);
	return NULL;
}

/* --- backend ops ---------------------------------------------------------------- */

static int sq_submit(struct store *s, struct store_txn *txn)
{
	struct sq *q = s->priv;

	pthread_mutex_lock(&q->qlock);
	if (q->draining) {
		pthread_mutex_unlock(&q->qlock);
		return -ESHUTDOWN;
	}
	txn->next = NULL;
	*q->qtail = txn;
	q->qtail = &txn->next;
	pthread_cond_signal(&q->qcond);
	pthread_mutex_unlock(&q->qlock);
	return 0;
}

static void sq_drain(struct store *s)
{
	struct sq *q = s->priv;

	pthread_mutex_lock(&q->qlock);
	q->draining = true;
	pthread_cond_signal(&q->qcond);
	pthread_mutex_unlock(&q->qlock);
	if (q->thread_started)
		pthread_join(q->thread, NULL);
	q->thread_started = false;
}

static void sq_free(struct sq *q)
{
	if (!q)
		return;
	while (q->idle) {
		struct sq_reader *r = q->idle;

		q->idle = r->next;
		sq_reader_free(r);
	}
	sqlite3_finalize(q->w_sel);
	sqlite3_finalize(q->w_ins);
	sqlite3_finalize(q->w_upsert);
	sqlite3_finalize(q->w_del);
	sqlite3_finalize(q->w_meta_set);
	sqlite3_finalize(q->w_meta_get);
	sqlite3_finalize(q->w_chunk_end);
	sqlite3_finalize(q->w_compact_del);
	sqlite3_finalize(q->w_begin);
	sqlite3_finalize(q->w_commit);
	if (q->wdb && sqlite3_close(q->wdb) != SQLITE_OK)
		pr_err("store", "'%s': close failed: %s", q->path, sqlite3_errmsg(q->wdb));
	if (q->lockfd >= 0)
		close(q->lockfd);
	pthread_mutex_destroy(&q->qlock);
	pthread_cond_destroy(&q->qcond);
	pthread_cond_destroy(&q->ccond);
	pthread_mutex_destroy(&q->plock);
	free(q->path);
	free(q);
}

static void sq_close(struct store *s)
{
	sq_free(s->priv);
	s->priv = NULL;
}

/* Makes sure data_dir exists and is a writable directory, and takes the lock. */
static int sq_prepare_dir(struct sq *q, const char *dir, char *err, size_t errlen)
{
	struct stat st;
	char *lockpath;
	int rc;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "store: data dir '%s': cannot create: %s", dir,
			 strerror(errno));
		return rc;
	}
	if (stat(dir, &st)) {
		rc = -errno;
		snprintf(err, errlen, "store: data dir '%s': %s", dir, strerror(errno));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "store: data dir '%s': not a directory", dir);
		return -ENOTDIR;
	}
	if (access(dir, W_OK | X_OK)) {
		rc = -errno;
		snprintf(err, errlen, "store: data dir '%s': not writable: %s", dir,
			 strerror(errno));
		return rc;
	}
	if (asprintf(&lockpath, "%s/state.lock", dir) < 0)
		return -ENOMEM;
	q->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->lockfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "store: '%s': cannot open: %s", lockpath, strerror(errno));
		free(lockpath);
		return rc;
	}
	if (flock(q->lockfd, LOCK_EX | LOCK_NB)) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen,
			 "store: data dir '%s': in use by another process (lock '%s': %s)", dir,
			 lockpath, strerror(errno));
		free(lockpath);
		return rc;
	}
	free(lockpath);
	return 0;
}

static int sq_open_db(struct sq *q, char *err, size_t errlen)
{
	struct store *s = q->s;
	const char *what = "open";
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	int rc;

	rc = sqlite3_open_v2(q->path, &q->wdb,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(q->wdb, 1);
	sqlite3_busy_timeout(q->wdb, SQ_BUSY_TIMEOUT_MS);

	/* The first statement that reads the file: a non-SQLite file fails here. */
	what = "set WAL mode";
	rc = sqlite3_prepare_v2(q->wdb, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);

		if (!mode || strcmp(mode, "wal")) {
			snprintf(err, errlen, "store '%s': cannot enable WAL (journal mode '%s')",
				 q->path, mode ? mode : "?");
			sqlite3_finalize(st);
			return -EIO;
		}
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_OK)
		goto fail;

	what = "configure";
	rc = sqlite3_exec(q->wdb,
			  s->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
			  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->wdb,
				  "PRAGMA cache_size=-16384; PRAGMA journal_size_limit=67108864;"
				  "PRAGMA temp_store=MEMORY",
				  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;

	what = "create schema";
	rc = sqlite3_exec(q->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->wdb, sq_schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->wdb, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sq_rollback(q->wdb);
		goto fail;
	}

	what = "prepare statements (unexpected schema?)";
#define PREP(field, sql)                                                                       \
	do {                                                                                   \
		rc = sqlite3_prepare_v3(q->wdb, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->field, \
					NULL);                                                 \
		if (rc != SQLITE_OK)                                                           \
			goto fail;                                                             \
	} while (0)
	PREP(w_sel, "SELECT value, create_rev, mod_rev, version FROM cur WHERE key = ?1");
	PREP(w_ins, "INSERT INTO log (rev, key, value, create_rev, version, deleted, prev_rev)"
		    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	PREP(w_upsert, "INSERT INTO cur (key, value, create_rev, mod_rev, version)"
		       " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET"
		       " value = excluded.value, create_rev = excluded.create_rev,"
		       " mod_rev = excluded.mod_rev, version = excluded.version");
	PREP(w_del, "DELETE FROM cur WHERE key = ?1");
	PREP(w_meta_set, "UPDATE meta SET v = ?2 WHERE k = ?1");
	PREP(w_meta_get, "SELECT v FROM meta WHERE k = ?1");
	PREP(w_chunk_end, "SELECT rev FROM log WHERE rev > ?1 AND rev <= ?2 ORDER BY rev"
			  " LIMIT 1 OFFSET ?3");
	PREP(w_compact_del, "DELETE FROM log WHERE rev > ?1 AND rev <= ?2 AND NOT EXISTS"
			    " (SELECT 1 FROM log n WHERE n.prev_rev = log.rev AND n.rev > ?3)");
	PREP(w_begin, "BEGIN IMMEDIATE");
	PREP(w_commit, "COMMIT");
#undef PREP

	what = "read metadata";
	sq_bind_text(q->w_meta_get, 1, "schema");
	rc = sq_step_int(q->wdb, q->w_meta_get, &v);
	if (rc || v != SQ_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "store '%s': unsupported schema version %" PRId64 " (this build reads %d)",
			 q->path, rc ? -1 : v, SQ_SCHEMA_VERSION);
		return -EPROTO;
	}
	sq_bind_text(q->w_meta_get, 1, "rev");
	rc = sq_step_int(q->wdb, q->w_meta_get, &q->rev);
	if (!rc) {
		sq_bind_text(q->w_meta_get, 1, "compact_rev");
		rc = sq_step_int(q->wdb, q->w_meta_get, &q->compact_rev);
	}
	if (!rc) {
		/* Belt and braces: never hand out a revision the log has. */
		rc = sqlite3_prepare_v2(q->wdb, "SELECT coalesce(max(rev), 0) FROM log", -1, &st,
					NULL);
		if (rc == SQLITE_OK)
			rc = sq_step_int(q->wdb, st, &v);
		else
			rc = sq_errno(q->wdb, rc);
		sqlite3_finalize(st);
		if (!rc && v > q->rev) {
			pr_warn("store",
				"'%s': revision counter %" PRId64 " behind the log (%" PRId64
				"); using the log",
				q->path, q->rev, v);
			q->rev = v;
		}
	}
	if (rc) {
		snprintf(err, errlen, "store '%s': %s failed: %s", q->path, what,
			 sqlite3_errmsg(q->wdb));
		return rc < 0 ? rc : -EIO;
	}
	return 0;
fail:
	snprintf(err, errlen, "store '%s': %s failed: %s", q->path, what,
		 q->wdb ? sqlite3_errmsg(q->wdb) : sqlite3_errstr(rc));
	return sq_errno(q->wdb, rc);
}

static int sq_open(struct store *s, char *err, size_t errlen)
{
	struct sq *q;
	struct sq_reader *r = NULL;
	sigset_t all, old;
	int rc;

	if (!s->data_dir || !s->data_dir[0]) {
		snprintf(err, errlen, "store: the sqlite backend needs data_dir");
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(err, errlen, "store: out of memory");
		return -ENOMEM;
	}
	q->s = s;
	q->lockfd = -1;
	q->qtail = &q->qhead;
	pthread_mutex_init(&q->qlock, NULL);
	pthread_mutex_init(&q->plock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&q->qcond, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&q->ccond, NULL);

	rc = sq_prepare_dir(q, s->data_dir, err, errlen);
	if (rc)
		goto fail;
	if (asprintf(&q->path, "%s/state.db", s->data_dir) < 0) {
		q->path = NULL;
		snprintf(err, errlen, "store: out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	rc = sq_open_db(q, err, errlen);
	if (rc)
		goto fail;
	/* One reader up front proves a second connection works (shm, perms). */
	rc = sq_reader_open(q, &r, err, errlen);
	if (rc)
		goto fail;
	q->idle = r;
	q->nidle = 1;
	s->rev = q->rev;
	s->compact_rev = q->compact_rev;

	/* The writer takes no signals: they belong to the owner's loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&q->thread, NULL, sq_writer, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(err, errlen, "store '%s': writer thread: %s", q->path, strerror(-rc));
		goto fail;
	}
	q->thread_started = true;
	s->priv = q;
	return 0;
fail:
	sq_free(q);
	return rc;
}

static int sq_get(struct store *s, const char *key, struct store_kv **out)
{
	struct sq *q = s->priv;
	struct sq_reader *r;
	int rc, err;

	err = sq_reader_get(q, &r);
	if (err)
		return err;
	sq_bind_text(r->get, 1, key);
	rc = sqlite3_step(r->get);
	if (rc == SQLITE_ROW) {
		struct store_kv v = {0};

		sq_col_kv(r->get, 0, &v);
		*out = store_kv_make(
			key, strlen(key), v.value, v.value_len, sqlite3_column_int64(r->get, 1),
			sqlite3_column_int64(r->get, 2), sqlite3_column_int64(r->get, 3));
		err = *out ? 0 : -ENOMEM;
	} else if (rc == SQLITE_DONE) {
		err = -SL_ERR_NOTFOUND;
	} else {
		err = sq_errno(r->db, rc);
		pr_err("store", "'%s': get '%s' failed: %s", q->path, key, sqlite3_errmsg(r->db));
	}
	sqlite3_reset(r->get);
	sq_reader_put(q, r);
	return err;
}

static int sq_range(struct store *s, const char *prefix, store_kv_fn fn, void *arg, int64_t *rev)
{
	struct sq *q = s->priv;
	struct sq_reader *r;
	sqlite3_stmt *st;
	bool oom;
	char *end = store_prefix_end(prefix, &oom);
	int rc, err;

	if (oom)
		return -ENOMEM;
	err = sq_reader_get(q, &r);
	if (err) {
		free(end);
		return err;
	}
	/* One read transaction: the revision and the rows are one snapshot. */
	err = sq_exec(r->db, "BEGIN");
	if (!err)
		err = sq_meta(r, "rev", rev);
	st = end ? r->range_pfx : r->range_all;
	if (!err) {
		sq_bind_text(st, 1, prefix);
		if (end)
			sq_bind_text(st, 2, end);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct store_kv kv = {
				.key = (char *)sqlite3_column_text(st, 0),
				.create_rev = sqlite3_column_int64(st, 2),
				.mod_rev = sqlite3_column_int64(st, 3),
				.version = sqlite3_column_int64(st, 4),
			};

			sq_col_kv(st, 1, &kv);
			err = fn(&kv, arg);
			if (err)
				break;
		}
		if (!err && rc != SQLITE_DONE) {
			err = sq_errno(r->db, rc);
			pr_err("store", "'%s': range '%s' failed: %s", q->path, prefix,
			       sqlite3_errmsg(r->db));
		}
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	sq_rollback(r->db);
	sq_reader_put(q, r);
	free(end);
	return err;
}

static int sq_log_read(struct store *s, int64_t after_rev, store_event_fn fn, void *arg)
{
	struct sq *q = s->priv;
	struct sq_reader *r;
	sqlite3_stmt *st;
	int64_t crev = 0;
	int rc, err;

	err = sq_reader_get(q, &r);
	if (err)
		return err;
	err = sq_exec(r->db, "BEGIN");
	if (!err)
		err = sq_meta(r, "compact_rev", &crev);
	if (!err && after_rev < crev)
		err = -SL_ERR_COMPACTED;
	st = r->log;
	if (!err) {
		sqlite3_bind_int64(st, 1, after_rev);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t lrev = sqlite3_column_int64(st, 0);
			bool deleted = sqlite3_column_int(st, 5);
			int64_t prev_rev = sqlite3_column_int64(st, 6);
			struct store_kv kv = {
				.key = (char *)sqlite3_column_text(st, 1),
				.create_rev = sqlite3_column_int64(st, 3),
				.mod_rev = lrev,
				.version = sqlite3_column_int64(st, 4),
			};
			struct store_kv prev = {.key = kv.key, .mod_rev = prev_rev};
			struct store_event ev = {
				.type = deleted ? STORE_EV_DELETE : STORE_EV_PUT,
				.kv = &kv,
			};

			sq_col_kv(st, 2, &kv);
			if (deleted) {
				/* The tombstone carries the deleted state. */
				prev.value = kv.value;
				prev.value_len = kv.value_len;
				prev.create_rev = kv.create_rev;
				prev.version = kv.version;
				ev.prev = &prev;
			} else if (prev_rev && sqlite3_column_type(st, 8) != SQLITE_NULL) {
				sq_col_kv(st, 7, &prev);
				prev.create_rev = sqlite3_column_int64(st, 8);
				prev.version = sqlite3_column_int64(st, 9);
				ev.prev = &prev;
			}
			fn(&ev, arg);
		}
		if (rc != SQLITE_DONE) {
			err = sq_errno(r->db, rc);
			pr_err("store", "'%s': log read after %" PRId64 " failed: %s", q->path,
			       after_rev, sqlite3_errmsg(r->db));
		}
		sqlite3_reset(st);
	}
	sq_rollback(r->db);
	sq_reader_put(q, r);
	return err;
}

static int sq_compact(struct store *s, int64_t rev)
{
	struct sq *q = s->priv;
	uint64_t seq;
	int err;

	pthread_mutex_lock(&q->qlock);
	if (rev > q->rev) {
		pthread_mutex_unlock(&q->qlock);
		return -SL_ERR_FUTURE;
	}
	if (rev <= q->compact_rev || q->draining) {
		pthread_mutex_unlock(&q->qlock);
		return 0;
	}
	if (rev > q->compact_req)
		q->compact_req = rev;
	seq = ++q->compact_seq;
	pthread_cond_signal(&q->qcond);
	while (q->compact_done < seq)
		pthread_cond_wait(&q->ccond, &q->qlock);
	err = q->compact_err;
	if (!err && q->compact_rev < rev)
		err = -EAGAIN; /* a concurrent smaller request answered us; not expected */
	pthread_mutex_unlock(&q->qlock);
	return err;
}

/* Runs a count query that must return 0; names the problem otherwise. */
static int sq_check_zero(struct sq_reader *r, const char *sql, int64_t a, int64_t b,
			 const char *problem, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int64_t n = 0;
	int rc;

	rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "store check: %s", sqlite3_errmsg(r->db));
		return sq_errno(r->db, rc);
	}
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	rc = sq_step_int(r->db, st, &n);
	sqlite3_finalize(st);
	if (rc) {
		snprintf(err, errlen, "store check: %s", sqlite3_errmsg(r->db));
		return rc;
	}
	if (n) {
		snprintf(err, errlen, "store check: %" PRId64 " %s", n, problem);
		return -EUCLEAN;
	}
	return 0;
}

static int sq_check(struct store *s, char *err, size_t errlen)
{
	struct sq *q = s->priv;
	struct sq_reader *r;
	sqlite3_stmt *st = NULL;
	int64_t rev = 0, crev = 0, cnt = 0, lo = 0, hi = 0, maxall = 0;
	int rc;

	rc = sq_reader_get(q, &r);
	if (rc) {
		snprintf(err, errlen, "store check: no read connection: %s", sl_strerror(rc));
		return rc;
	}
	rc = sqlite3_prepare_v2(r->db, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *res = (const char *)sqlite3_column_text(st, 0);

		if (!res || strcmp(res, "ok")) {
			snprintf(err, errlen, "store check: integrity_check: %s", res ? res : "?");
			rc = -EUCLEAN;
		}
	} else {
		snprintf(err, errlen, "store check: integrity_check: %s", sqlite3_errmsg(r->db));
		rc = -EIO;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc)
		goto out;

	rc = sq_exec(r->db, "BEGIN");
	if (!rc)
		rc = sq_meta(r, "rev", &rev);
	if (!rc)
		rc = sq_meta(r, "compact_rev", &crev);
	if (rc) {
		snprintf(err, errlen, "store check: metadata: %s", sqlite3_errmsg(r->db));
		goto out;
	}
	if (crev > rev) {
		snprintf(err, errlen,
			 "store check: compact revision %" PRId64 " above revision %" PRId64, crev,
			 rev);
		rc = -EUCLEAN;
		goto out;
	}
	rc = sqlite3_prepare_v2(r->db,
				"SELECT count(*), coalesce(min(rev), 0), coalesce(max(rev), 0),"
				" (SELECT coalesce(max(rev), 0) FROM log) FROM log WHERE rev > ?1",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, crev);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "store check: %s", sqlite3_errmsg(r->db));
		rc = -EIO;
		goto out;
	}
	cnt = sqlite3_column_int64(st, 0);
	lo = sqlite3_column_int64(st, 1);
	hi = sqlite3_column_int64(st, 2);
	maxall = sqlite3_column_int64(st, 3);
	rc = 0;
	if (maxall > rev) {
		snprintf(err, errlen,
			 "store check: log has revision %" PRId64 " above the counter %" PRId64,
			 maxall, rev);
		rc = -EUCLEAN;
	} else if (cnt != rev - crev || (cnt && (lo != crev + 1 || hi != rev))) {
		snprintf(err, errlen,
			 "store check: log holds %" PRId64 " revisions in [%" PRId64 ", %" PRId64
			 "], expected every one in (%" PRId64 ", %" PRId64 "]",
			 cnt, lo, hi, crev, rev);
		rc = -EUCLEAN;
	}
	if (rc)
		goto out;
	rc = sq_check_zero(r,
			   "SELECT count(*) FROM cur WHERE mod_rev > ?2 OR create_rev > mod_rev"
			   " OR version < 1",
			   0, rev, "current rows with impossible revisions", err, errlen);
	if (!rc)
		rc = sq_check_zero(r,
				   "SELECT count(*) FROM cur c WHERE c.mod_rev > ?1"
				   " AND NOT EXISTS (SELECT 1 FROM log l WHERE l.rev = c.mod_rev"
				   " AND l.key = c.key AND l.deleted = 0 AND l.value IS c.value"
				   " AND l.create_rev = c.create_rev AND l.version = c.version)",
				   crev, 0, "current rows that differ from their log entry", err,
				   errlen);
	if (!rc)
		rc = sq_check_zero(r,
				   "SELECT count(*) FROM (SELECT key, max(rev) AS r, deleted AS d"
				   " FROM log GROUP BY key) g LEFT JOIN cur c ON c.key = g.key"
				   " WHERE ((g.d = 1 AND c.key IS NOT NULL)"
				   " OR (g.d = 0 AND c.mod_rev IS NOT g.r))",
				   0, 0, "keys whose current row is not their newest log entry",
				   err, errlen);
out:
	sqlite3_finalize(st);
	sq_rollback(r->db);
	sq_reader_put(q, r);
	return rc;
}

const struct store_backend store_backend_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.submit = sq_submit,
	.drain = sq_drain,
	.close = sq_close,
	.get = sq_get,
	.range = sq_range,
	.log_read = sq_log_read,
	.compact = sq_compact,
	.check = sq_check,
};
