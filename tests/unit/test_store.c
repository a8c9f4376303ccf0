// SPDX-License-Identifier: Apache-2.0
/*
 * control/store*.c: the etcd-shaped store, every test run against both the
 * "memory" and the "sqlite" backend (each in a fresh mkdtemp directory):
 * CAS semantics and errors, revision bookkeeping, events before completions,
 * the level-triggered notify fd, prefix ranges, log replay and compaction,
 * restart durability, group commit with conflicts inside one batch, a write
 * burst, I/O failure mid-batch, and bad input to store_open.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "control/store.h"
#include "sluice/err.h"

static const char *const backends[] = {"memory", "sqlite"};
#define NBACKENDS 2

/* What the callbacks saw, in order. */
struct rec {
	char what;	  /* 'e' event, 'd' done */
	int type;	  /* event type */
	int64_t rev;	  /* event kv mod_rev or txn rev */
	int64_t prev_rev; /* event prev mod_rev, -1 if no prev */
	void *hint;
};

/* Tests declare it = {0}: fx_close() is safe on one whose fx_open() never ran. */
struct fx {
	const char *backend;
	char dir[64];
	char data[96];
	struct store_opts o;
	struct store *s;
	struct rec *recs;
	size_t nrecs, caprecs;
	int done; /* completions seen */
};

static void fx_push(struct fx *f, struct rec r)
{
	if (f->nrecs == f->caprecs) {
		f->caprecs = f->caprecs ? f->caprecs * 2 : 256;
		f->recs = realloc(f->recs, f->caprecs * sizeof(*f->recs));
		if (!f->recs)
			abort();
	}
	f->recs[f->nrecs++] = r;
}

static void on_event(const struct store_event *ev, void *arg)
{
	struct fx *f = arg;

	fx_push(f, (struct rec){.what = 'e',
				.type = ev->type,
				.rev = ev->kv->mod_rev,
				.prev_rev = ev->prev ? ev->prev->mod_rev : -1,
				.hint = ev->hint});
}

static void on_done(struct store_txn *txn, void *arg)
{
	struct fx *f = arg;

	fx_push(f, (struct rec){.what = 'd', .rev = txn->rev, .hint = txn->hint});
	f->done++;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static bool fx_open(struct fx *f, const char *backend, int64_t retain, int interval)
{
	char err[256];

	memset(f, 0, sizeof(*f));
	f->backend = backend;
	strcpy(f->dir, "/tmp/sluice-store-XXXXXX");
	if (!ASSERT_NOT_NULL(mkdtemp(f->dir), "mkdtemp"))
		return false;
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	f->o = (struct store_opts){
		.backend = backend,
		.data_dir = f->data,
		.retain_revisions = retain,
		.compact_interval_s = interval,
		.sync_full = true,
		.on_event = on_event,
		.on_event_arg = f,
	};
	f->s = store_open(&f->o, err, sizeof(err));
	if (!f->s)
		fprintf(stderr, "  store_open(%s): %s\n", backend, err);
	return ASSERT_NOT_NULL(f->s, backend);
}

static bool fx_reopen(struct fx *f)
{
	char err[256];

	store_close(f->s);
	f->s = store_open(&f->o, err, sizeof(err));
	if (!f->s)
		fprintf(stderr, "  store_open(%s): %s\n", f->backend, err);
	return ASSERT_NOT_NULL(f->s, "reopen");
}

static void fx_close(struct fx *f)
{
	store_close(f->s);
	f->s = NULL;
	free(f->recs);
	if (f->dir[0])
		nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Dispatches until `done` reaches want (5 s budget). */
static bool fx_wait(struct fx *f, int want)
{
	struct pollfd p = {.fd = store_notify_fd(f->s), .events = POLLIN};
	int loops = 0;

	while (f->done < want && loops++ < 500) {
		if (poll(&p, 1, 10) > 0)
			store_dispatch(f->s);
	}
	return ASSERT_EQ(f->done, want, "completions arrived");
}

static void txn_set(struct store_txn *t, enum store_op op, const char *key, const char *val,
		    int64_t expect, struct fx *f)
{
	store_txn_fini(t);
	memset(t, 0, sizeof(*t));
	t->op = op;
	t->key = (char *)key;
	t->value = (char *)val;
	t->value_len = val ? strlen(val) : 0;
	t->expect_rev = expect;
	t->done = on_done;
	t->done_arg = f;
}

/* Submits one txn and waits for it. */
static bool run1(struct fx *f, struct store_txn *t, enum store_op op, const char *key,
		 const char *val, int64_t expect)
{
	txn_set(t, op, key, val, expect, f);
	if (!ASSERT_OK(store_submit(f->s, t), "submit"))
		return false;
	return fx_wait(f, f->done + 1);
}

TEST(crud_semantics_and_errors)
{
	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct store_txn t = {0};
		struct store_kv *kv = NULL;

		if (!fx_open(&f, backends[b], 0, 0))
			goto out;
		fprintf(stderr, "  backend %s\n", backends[b]);
		ASSERT_EQ(store_rev(f.s), 0, "fresh rev");
		if (!run1(&f, &t, STORE_CREATE, "/a", "v1", 0))
			goto out;
		ASSERT_OK(t.err, "create");
		ASSERT_EQ(t.rev, 1, "create rev");
		if (!ASSERT_NOT_NULL(t.cur, "create cur"))
			goto out;
		ASSERT_EQ(t.cur->create_rev, 1, "create_rev");
		ASSERT_EQ(t.cur->mod_rev, 1, "mod_rev");
		ASSERT_EQ(t.cur->version, 1, "version");
		ASSERT_STREQ(t.cur->value, "v1", "value");

		run1(&f, &t, STORE_CREATE, "/a", "v-dup", 0);
		ASSERT_EQ(t.err, -SL_ERR_EXISTS, "create twice");
		ASSERT_EQ(t.rev, 0, "failed txn has no rev");
		if (ASSERT_NOT_NULL(t.cur, "exists reports current"))
			ASSERT_STREQ(t.cur->value, "v1", "exists value");

		run1(&f, &t, STORE_UPDATE, "/a", "v2", 1);
		ASSERT_OK(t.err, "update");
		ASSERT_EQ(t.rev, 2, "failed create consumed no revision");
		if (ASSERT_NOT_NULL(t.cur, "update cur")) {
			ASSERT_EQ(t.cur->create_rev, 1, "update keeps create_rev");
			ASSERT_EQ(t.cur->version, 2, "update bumps version");
		}

		run1(&f, &t, STORE_UPDATE, "/a", "v3", 1);
		ASSERT_EQ(t.err, -SL_ERR_CONFLICT, "stale update");
		if (ASSERT_NOT_NULL(t.cur, "conflict reports current")) {
			ASSERT_EQ(t.cur->mod_rev, 2, "conflict cur mod_rev");
			ASSERT_STREQ(t.cur->value, "v2", "conflict cur value");
		}
		run1(&f, &t, STORE_UPDATE, "/missing", "x", 0);
		ASSERT_EQ(t.err, -SL_ERR_NOTFOUND, "update missing");
		ASSERT_NULL(t.cur, "notfound has no cur");
		run1(&f, &t, STORE_DELETE, "/missing", NULL, 0);
		ASSERT_EQ(t.err, -SL_ERR_NOTFOUND, "delete missing");
		run1(&f, &t, STORE_DELETE, "/a", NULL, 1);
		ASSERT_EQ(t.err, -SL_ERR_CONFLICT, "stale delete");

		run1(&f, &t, STORE_UPDATE, "/a", "v3", 0);
		ASSERT_OK(t.err, "unconditional update");
		ASSERT_EQ(t.rev, 3, "rev 3");

		run1(&f, &t, STORE_DELETE, "/a", NULL, 3);
		ASSERT_OK(t.err, "delete");
		ASSERT_EQ(t.rev, 4, "delete rev");
		if (ASSERT_NOT_NULL(t.cur, "delete cur")) {
			ASSERT_STREQ(t.cur->value, "v3", "delete reports last value");
			ASSERT_EQ(t.cur->mod_rev, 4, "delete cur mod_rev = delete rev");
		}
		ASSERT_EQ(store_get(f.s, "/a", &kv), -SL_ERR_NOTFOUND, "gone");

		run1(&f, &t, STORE_CREATE, "/a", "", 0);
		ASSERT_OK(t.err, "recreate (empty value)");
		if (ASSERT_NOT_NULL(t.cur, "recreate cur")) {
			ASSERT_EQ(t.cur->create_rev, 5, "new incarnation create_rev");
			ASSERT_EQ(t.cur->version, 1, "new incarnation version");
		}
		if (ASSERT_OK(store_get(f.s, "/a", &kv), "get")) {
			ASSERT_STREQ(kv->value, "", "empty value is non-NULL");
			ASSERT_EQ(kv->value_len, 0, "empty len");
			ASSERT_EQ(kv->mod_rev, 5, "get mod_rev");
		}
		store_kv_free(kv);
		kv = NULL;
		ASSERT_EQ(store_rev(f.s), 5, "store_rev");

		/* Binary values with NUL bytes round-trip. */
		txn_set(&t, STORE_CREATE, "/bin", NULL, 0, &f);
		t.value = "a\0b\xff";
		t.value_len = 4;
		ASSERT_OK(store_submit(f.s, &t), "submit binary");
		fx_wait(&f, f.done + 1);
		if (ASSERT_OK(store_get(f.s, "/bin", &kv), "get binary")) {
			ASSERT_EQ(kv->value_len, 4, "binary len");
			ASSERT_TRUE(!memcmp(kv->value, "a\0b\xff", 5), "binary bytes + NUL");
		}
		store_kv_free(kv);
		kv = NULL;

		txn_set(&t, STORE_CREATE, "", "x", 0, &f);
		ASSERT_EQ(store_submit(f.s, &t), -EINVAL, "empty key rejected");
		txn_set(&t, (enum store_op)42, "/k", "x", 0, &f);
		ASSERT_EQ(store_submit(f.s, &t), -EINVAL, "bad op rejected");
		txn_set(&t, STORE_UPDATE, "/k", "x", -3, &f);
		ASSERT_EQ(store_submit(f.s, &t), -EINVAL, "negative expect_rev rejected");
		{
			char err[512];

			ASSERT_OK(store_check(f.s, err, sizeof(err)), err);
		}
	out:
		store_txn_fini(&t);
		fx_close(&f);
	}
}

TEST(events_in_order_before_completions)
{
	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct store_txn t[6] = {0};
		int hints[6];
		int64_t last = 0;
		size_t nev = 0;

		if (!fx_open(&f, backends[b], 0, 0))
			goto out;
		fprintf(stderr, "  backend %s\n", backends[b]);
		txn_set(&t[0], STORE_CREATE, "/k1", "a", 0, &f);
		txn_set(&t[1], STORE_CREATE, "/k2", "b", 0, &f);
		txn_set(&t[2], STORE_UPDATE, "/k1", "a2", 1, &f);
		txn_set(&t[3], STORE_CREATE, "/k1", "dup", 0, &f); /* fails: no event */
		txn_set(&t[4], STORE_DELETE, "/k2", NULL, 2, &f);
		txn_set(&t[5], STORE_UPDATE, "/k1", "a3", 0, &f);
		for (int i = 0; i < 6; i++) {
			t[i].hint = &hints[i];
			ASSERT_OK(store_submit(f.s, &t[i]), "submit");
		}
		ASSERT_EQ(store_rev(f.s), 0, "rev moves only at dispatch");
		if (!fx_wait(&f, 6))
			goto out;
		/* A completion at revision r comes after every event up to r
		 * (batches may split, so later events may follow it). */
		for (size_t i = 0; i < f.nrecs; i++) {
			struct rec *r = &f.recs[i];

			if (r->what == 'd') {
				ASSERT_TRUE(r->rev <= last, "completion before its event");
				continue;
			}
			ASSERT_EQ(r->rev, last + 1, "events in revision order, no gaps");
			last = r->rev;
			nev++;
		}
		ASSERT_EQ(nev, 5, "one event per successful write");
		/* memory: everything was ready for one dispatch, which must
		 * deliver all events before any completion. */
		if (!strcmp(backends[b], "memory") && f.nrecs == 11)
			for (size_t i = 0; i < f.nrecs; i++)
				ASSERT_EQ(f.recs[i].what, i < 5 ? 'e' : 'd', "events first");
		ASSERT_EQ(t[3].err, -SL_ERR_EXISTS, "dup create failed");
		ASSERT_EQ(store_rev(f.s), 5, "rev after dispatch");
		/* Event details: update of k1 has prev at 1; delete of k2 is a
		 * DELETE with prev at 2; hints come back. */
		for (size_t i = 0; i < f.nrecs; i++) {
			struct rec *r = &f.recs[i];

			if (r->what != 'e')
				continue;
			if (r->rev == 1) {
				ASSERT_EQ(r->prev_rev, -1, "create has no prev");
				ASSERT_TRUE(r->hint == &hints[0], "hint");
			}
			if (r->rev == 3) {
				ASSERT_EQ(r->prev_rev, 1, "update prev");
				ASSERT_TRUE(r->hint == &hints[2], "hint 2");
			}
			if (r->rev == 4) {
				ASSERT_EQ(r->type, STORE_EV_DELETE, "delete event");
				ASSERT_EQ(r->prev_rev, 2, "delete prev");
			}
		}
	out:
		for (int i = 0; i < 6; i++)
			store_txn_fini(&t[i]);
		fx_close(&f);
	}
}

TEST(notify_fd_is_level_triggered)
{
	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct store_txn t = {0};
		struct pollfd p;
		int n = 0;

		if (!fx_open(&f, backends[b], 0, 0))
			goto out;
		p = (struct pollfd){.fd = store_notify_fd(f.s), .events = POLLIN};
		ASSERT_EQ(poll(&p, 1, 0), 0, "idle fd not readable");
		ASSERT_EQ(store_dispatch(f.s), 0, "nothing to dispatch");
		txn_set(&t, STORE_CREATE, "/x", "1", 0, &f);
		ASSERT_OK(store_submit(f.s, &t), "submit");
		ASSERT_EQ(poll(&p, 1, 5000), 1, "readable when done");
		ASSERT_EQ(poll(&p, 1, 0), 1, "still readable (level)");
		n = store_dispatch(f.s);
		ASSERT_EQ(n, 1, "dispatch count");
		ASSERT_EQ(poll(&p, 1, 0), 0, "not readable after dispatch");
		ASSERT_TRUE(fcntl(p.fd, F_GETFD) & FD_CLOEXEC, "cloexec");
		ASSERT_TRUE(fcntl(p.fd, F_GETFL) & O_NONBLOCK, "nonblock");
	out:
		store_txn_fini(&t);
		fx_close(&f);
	}
}

struct range_ctx {
	char keys[16][32];
	int n;
	int stop_after;
};

static int range_cb(const struct store_kv *kv, void *arg)
{
	struct range_ctx *c = arg;

	if (c->n < 16)
		snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", kv->key);
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

TEST(range_by_prefix_in_key_order)
{
	static const char *const keys[] = {"/pods/b", "/svc/x",	 "/pods/a",	"/pods",
					   "/podsx",  "/pods/c", "/pods/a/sub", "/p\xff\xff"};
	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct store_txn t[8] = {0};
		struct range_ctx c = {0};
		int64_t rev = -1;

		if (!fx_open(&f, backends[b], 0, 0))
			goto out;
		fprintf(stderr, "  backend %s\n", backends[b]);
		for (int i = 0; i < 8; i++) {
			txn_set(&t[i], STORE_CREATE, keys[i], "v", 0, &f);
			ASSERT_OK(store_submit(f.s, &t[i]), "submit");
		}
		if (!fx_wait(&f, 8))
			goto out;
		ASSERT_OK(store_range(f.s, "/pods/", range_cb, &c, &rev), "range");
		ASSERT_EQ(c.n, 4, "four under /pods/");
		ASSERT_STREQ(c.keys[0], "/pods/a", "order 0");
		ASSERT_STREQ(c.keys[1], "/pods/a/sub", "order 1");
		ASSERT_STREQ(c.keys[2], "/pods/b", "order 2");
		ASSERT_STREQ(c.keys[3], "/pods/c", "order 3");
		ASSERT_EQ(rev, 8, "snapshot rev");

		memset(&c, 0, sizeof(c));
		ASSERT_OK(store_range(f.s, "", range_cb, &c, NULL), "range all");
		ASSERT_EQ(c.n, 8, "all keys");
		ASSERT_STREQ(c.keys[0], "/pods", "byte order first");
		ASSERT_STREQ(c.keys[5], "/podsx", "byte order 5");
		ASSERT_STREQ(c.keys[6], "/p\xff\xff", "0xff sorts high");
		ASSERT_STREQ(c.keys[7], "/svc/x", "byte order last");

		memset(&c, 0, sizeof(c));
		ASSERT_OK(store_range(f.s, "/p\xff", range_cb, &c, NULL), "0xff prefix");
		ASSERT_EQ(c.n, 1, "0xff prefix match");

		memset(&c, 0, sizeof(c));
		c.stop_after = 2;
		ASSERT_EQ(store_range(f.s, "/", range_cb, &c, NULL), 7, "stop value returned");
		ASSERT_EQ(c.n, 2, "stopped after two");

		memset(&c, 0, sizeof(c));
		ASSERT_OK(store_range(f.s, "/nothing/", range_cb, &c, &rev), "empty range");
		ASSERT_EQ(c.n, 0, "no match");
	out:
		for (int i = 0; i < 8; i++)
			store_txn_fini(&t[i]);
		fx_close(&f);
	}
}

struct log_ctx {
	int64_t revs[64];
	int types[64];
	int64_t prevs[64];
	char vals[64][16];
	int n;
};

static void log_cb(const struct store_event *ev, void *arg)
{
	struct log_ctx *c = arg;

	if (c->n < 64) {
		c->revs[c->n] = ev->kv->mod_rev;
		c->types[c->n] = ev->type;
		c->prevs[c->n] = ev->prev ? ev->prev->mod_rev : -1;
		snprintf(c->vals[c->n], sizeof(c->vals[0]), "%s",
			 ev->kv->value ? ev->kv->value : "");
	}
	c->n++;
}

/* Writes rev 1..10: /a created, updated 4 times, /b created, deleted, ... */
static bool write_history(struct fx *f)
{
	struct store_txn t = {0};
	char v[16];
	bool ok = true;

	ok &= run1(f, &t, STORE_CREATE, "/a", "a1", 0) && !t.err; /* 1 */
	ok &= run1(f, &t, STORE_CREATE, "/b", "b1", 0) && !t.err; /* 2 */
	for (int i = 2; i <= 5; i++) {				  /* 3..6 */
		snprintf(v, sizeof(v), "a%d", i);
		ok &= run1(f, &t, STORE_UPDATE, "/a", v, 0) && !t.err;
	}
	ok &= run1(f, &t, STORE_DELETE, "/b", NULL, 0) && !t.err; /* 7 */
	ok &= run1(f, &t, STORE_CREATE, "/c", "c1", 0) && !t.err; /* 8 */
	ok &= run1(f, &t, STORE_UPDATE, "/a", "a6", 0) && !t.err; /* 9 */
	ok &= run1(f, &t, STORE_CREATE, "/b", "b2", 0) && !t.err; /* 10 */
	store_txn_fini(&t);
	return ASSERT_TRUE(ok, "history written");
}

TEST(log_read_and_compaction)
{
	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct log_ctx c = {0};
		struct store_kv *kv = NULL;
		char err[512];

		if (!fx_open(&f, backends[b], 0, 0) || !write_history(&f))
			goto out;
		fprintf(stderr, "  backend %s\n", backends[b]);
		ASSERT_OK(store_log_read(f.s, 5, log_cb, &c), "log_read");
		ASSERT_EQ(c.n, 5, "revs 6..10");
		ASSERT_EQ(c.revs[0], 6, "first");
		ASSERT_EQ(c.prevs[0], 5, "update prev");
		ASSERT_EQ(c.types[1], STORE_EV_DELETE, "rev 7 delete");
		ASSERT_STREQ(c.vals[1], "b1", "delete carries value");
		ASSERT_EQ(c.prevs[1], 2, "delete prev");
		ASSERT_EQ(c.prevs[2], -1, "create prev NULL");
		ASSERT_EQ(c.prevs[4], -1, "recreate prev NULL");
		ASSERT_EQ(c.revs[4], 10, "last");

		memset(&c, 0, sizeof(c));
		ASSERT_OK(store_log_read(f.s, 10, log_cb, &c), "log_read at head");
		ASSERT_EQ(c.n, 0, "nothing after head");

		ASSERT_EQ(store_compact(f.s, 11), -SL_ERR_FUTURE, "compact future");
		ASSERT_OK(store_compact(f.s, 6), "compact");
		ASSERT_EQ(store_compact_rev(f.s), 6, "compact rev");
		ASSERT_EQ(store_log_read(f.s, 5, log_cb, &c), -SL_ERR_COMPACTED, "compacted");
		memset(&c, 0, sizeof(c));
		ASSERT_OK(store_log_read(f.s, 6, log_cb, &c), "read from compact rev");
		ASSERT_EQ(c.n, 4, "7..10 kept");
		ASSERT_EQ(c.prevs[0], 2, "delete prev survives compaction");
		ASSERT_EQ(c.revs[2], 9, "rev 9");
		ASSERT_EQ(c.prevs[2], 6, "update prev (rev 6, below compact) still known");
		ASSERT_OK(store_compact(f.s, 3), "older compact is a no-op");
		ASSERT_EQ(store_compact_rev(f.s), 6, "compact rev unchanged");
		if (ASSERT_OK(store_get(f.s, "/c", &kv), "current value survives"))
			ASSERT_EQ(kv->mod_rev, 8, "c mod_rev");
		store_kv_free(kv);
		kv = NULL;
		ASSERT_OK(store_check(f.s, err, sizeof(err)), err);

		/* Compacting everything empties the log but not the revision. */
		ASSERT_OK(store_compact(f.s, 10), "compact all");
		ASSERT_EQ(store_log_read(f.s, 9, log_cb, &c), -SL_ERR_COMPACTED, "all compacted");
		ASSERT_OK(store_check(f.s, err, sizeof(err)), err);
		if (!strcmp(backends[b], "sqlite")) {
			struct store_txn t = {0};

			if (!fx_reopen(&f))
				goto out;
			ASSERT_EQ(store_rev(f.s), 10, "rev survives an empty log");
			ASSERT_EQ(store_compact_rev(f.s), 10, "compact rev survives");
			run1(&f, &t, STORE_CREATE, "/d", "d", 0);
			ASSERT_EQ(t.rev, 11, "next revision after restart");
			store_txn_fini(&t);
			ASSERT_OK(store_check(f.s, err, sizeof(err)), err);
		}
	out:
		fx_close(&f);
	}
}

TEST(retention_compacts_automatically)
{
	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct store_txn t = {0};
		char key[16];

		if (!fx_open(&f, backends[b], 5, 1))
			goto out;
		fprintf(stderr, "  backend %s\n", backends[b]);
		for (int i = 0; i < 20; i++) {
			snprintf(key, sizeof(key), "/k%d", i);
			run1(&f, &t, STORE_CREATE, key, "v", 0);
		}
		/* memory trims as it writes; sqlite on its 1 s timer. */
		for (int i = 0; i < 40 && store_compact_rev(f.s) < 15; i++)
			usleep(100000);
		ASSERT_EQ(store_compact_rev(f.s), 15, "keeps retain_revisions");
	out:
		store_txn_fini(&t);
		fx_close(&f);
	}
}

TEST(sqlite_restart_keeps_everything)
{
	struct fx f = {0};
	struct store_txn t = {0};
	struct store_kv *kv = NULL;
	struct log_ctx c = {0};
	char err[512];

	if (!fx_open(&f, "sqlite", 0, 0) || !write_history(&f))
		goto out;
	ASSERT_OK(store_compact(f.s, 4), "compact");
	if (!fx_reopen(&f))
		goto out;
	ASSERT_EQ(store_rev(f.s), 10, "rev restored");
	ASSERT_EQ(store_compact_rev(f.s), 4, "compact rev restored");
	if (ASSERT_OK(store_get(f.s, "/a", &kv), "get a")) {
		ASSERT_STREQ(kv->value, "a6", "a value");
		ASSERT_EQ(kv->create_rev, 1, "a create_rev");
		ASSERT_EQ(kv->mod_rev, 9, "a mod_rev");
		ASSERT_EQ(kv->version, 6, "a version");
	}
	store_kv_free(kv);
	kv = NULL;
	if (ASSERT_OK(store_get(f.s, "/b", &kv), "get b"))
		ASSERT_EQ(kv->create_rev, 10, "b recreated");
	store_kv_free(kv);
	ASSERT_OK(store_log_read(f.s, 4, log_cb, &c), "log after restart");
	ASSERT_EQ(c.n, 6, "5..10");
	run1(&f, &t, STORE_UPDATE, "/a", "a7", 9);
	ASSERT_OK(t.err, "update after restart");
	ASSERT_EQ(t.rev, 11, "counter continues");
	ASSERT_OK(store_check(f.s, err, sizeof(err)), err);
out:
	store_txn_fini(&t);
	fx_close(&f);
}

TEST(group_commit_with_conflicts_in_one_batch)
{
	enum { NKEYS = 100, DUPS = 3, HOT = 50 };

	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct store_txn *t = calloc(NKEYS * DUPS + HOT + 1, sizeof(*t));
		char(*keys)[16] = calloc(NKEYS, sizeof(*keys));
		int created = 0, exists = 0, won = 0, conflicts = 0, n = 0;
		int64_t win_rev = 0, hot_rev, maxrev = 0, base;
		struct store_stats st;
		char err[512];
		bool *seen = NULL;

		if (!ASSERT_NOT_NULL(t, "alloc") || !ASSERT_NOT_NULL(keys, "alloc") ||
		    !fx_open(&f, backends[b], 0, 0))
			goto out;
		fprintf(stderr, "  backend %s\n", backends[b]);
		run1(&f, &t[n], STORE_CREATE, "/hot", "0", 0);
		hot_rev = t[n++].rev;
		base = store_rev(f.s);
		f.done = 0;
		for (int d = 0; d < DUPS; d++) {
			for (int k = 0; k < NKEYS; k++) {
				snprintf(keys[k], sizeof(keys[k]), "/g/%03d", k);
				txn_set(&t[n], STORE_CREATE, keys[k], "v", 0, &f);
				ASSERT_OK(store_submit(f.s, &t[n++]), "submit create");
				if (k % 2 == 0 && d == 0) {
					/* interleave updates of one hot key, all
					 * expecting the same revision */
					txn_set(&t[n], STORE_UPDATE, "/hot", "x", hot_rev, &f);
					ASSERT_OK(store_submit(f.s, &t[n++]), "submit hot");
				}
			}
		}
		if (!fx_wait(&f, n - 1))
			goto out;
		seen = calloc(n + 2, sizeof(*seen));
		for (int i = 1; i < n; i++) {
			if (!strcmp(t[i].key, "/hot")) {
				if (!t[i].err) {
					won++;
					win_rev = t[i].rev;
				} else if (t[i].err == -SL_ERR_CONFLICT) {
					conflicts++;
					if (t[i].cur && win_rev)
						ASSERT_EQ(t[i].cur->mod_rev, win_rev,
							  "conflict shows winner");
				}
			} else if (!t[i].err) {
				created++;
			} else if (t[i].err == -SL_ERR_EXISTS) {
				exists++;
			}
			if (!t[i].err) {
				int64_t off = t[i].rev - base;

				if (ASSERT_TRUE(off >= 1 && off <= n, "rev in range")) {
					ASSERT_FALSE(seen[off], "revision handed out once");
					seen[off] = true;
				}
				if (t[i].rev > maxrev)
					maxrev = t[i].rev;
			}
		}
		ASSERT_EQ(created, NKEYS, "each key created once");
		ASSERT_EQ(exists, NKEYS * (DUPS - 1), "the rest EXISTS");
		ASSERT_EQ(won, 1, "one hot update wins");
		ASSERT_EQ(conflicts, HOT - 1, "the other hot updates conflict");
		ASSERT_EQ(maxrev, base + NKEYS + 1, "revisions contiguous");
		ASSERT_EQ(store_rev(f.s), maxrev, "store_rev");
		store_stats_get(f.s, &st);
		fprintf(stderr, "  %s: %llu txns in %llu batches\n", backends[b],
			(unsigned long long)st.txns, (unsigned long long)st.batches);
		if (!strcmp(backends[b], "sqlite"))
			ASSERT_TRUE(st.batches * 4 < st.txns, "writes were grouped");
		ASSERT_OK(store_check(f.s, err, sizeof(err)), err);
	out:
		for (int i = 0; t && i < NKEYS * DUPS + HOT + 1; i++)
			store_txn_fini(&t[i]);
		free(t);
		free(keys);
		free(seen);
		fx_close(&f);
	}
}

/* A burst with a window of txns in flight, refilled from the callback. */
struct burst {
	struct fx *f;
	struct store_txn *t;
	char (*keys)[24];
	int total, submitted, ok, failed;
	int64_t last_rev;
	bool order_ok;
};

static void burst_done(struct store_txn *txn, void *arg);

static void burst_next(struct burst *bu, struct store_txn *t)
{
	int i = bu->submitted++;

	snprintf(bu->keys[i], sizeof(bu->keys[0]), "/burst/%d", i % 300);
	/* rounds over 300 keys: create all, update all, delete all, ... */
	txn_set(t,
		(i / 300) % 3 == 2 ? STORE_DELETE
		: (i / 300) % 3	   ? STORE_UPDATE
				   : STORE_CREATE,
		bu->keys[i], "some value bytes", 0, bu->f);
	t->done = burst_done;
	t->done_arg = bu;
	if (store_submit(bu->f->s, t))
		bu->failed++;
}

static void burst_done(struct store_txn *txn, void *arg)
{
	struct burst *bu = arg;

	bu->f->done++;
	if (!txn->err) {
		bu->ok++;
		if (txn->rev <= bu->last_rev)
			bu->order_ok = false;
		bu->last_rev = txn->rev;
	} else if (txn->err != -SL_ERR_EXISTS && txn->err != -SL_ERR_NOTFOUND) {
		bu->failed++;
	}
	if (bu->submitted < bu->total)
		burst_next(bu, txn);
}

TEST(write_burst)
{
	enum { TOTAL = 3000, WINDOW = 64 };

	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct burst bu = {.total = TOTAL, .order_ok = true};
		struct store_txn t[WINDOW] = {0};
		char err[512];

		bu.keys = calloc(TOTAL, sizeof(*bu.keys));
		if (!ASSERT_NOT_NULL(bu.keys, "alloc") || !fx_open(&f, backends[b], 1000, 1))
			goto out;
		bu.f = &f;
		bu.t = t;
		for (int i = 0; i < WINDOW; i++)
			burst_next(&bu, &t[i]);
		fx_wait(&f, TOTAL);
		ASSERT_EQ(bu.failed, 0, "no failures");
		ASSERT_TRUE(bu.ok > TOTAL / 2, "most writes succeed");
		ASSERT_TRUE(bu.order_ok, "completions in revision order");
		ASSERT_EQ(store_rev(f.s), bu.ok, "one revision per successful write");
		ASSERT_OK(store_check(f.s, err, sizeof(err)), err);
	out:
		for (int i = 0; i < WINDOW; i++)
			store_txn_fini(&t[i]);
		free(bu.keys);
		fx_close(&f);
	}
}

static int closing_submit_rc = 1;
static struct store *closing_store;

static void close_done(struct store_txn *txn, void *arg)
{
	int *n = arg;
	static struct store_txn again;

	(*n)++;
	if (*n == 1) {
		memset(&again, 0, sizeof(again));
		again.op = STORE_CREATE;
		again.key = "/late";
		again.value = "x";
		again.value_len = 1;
		closing_submit_rc = store_submit(closing_store, &again);
	}
}

TEST(close_finishes_queued_writes)
{
	for (int b = 0; b < NBACKENDS; b++) {
		struct fx f = {0};
		struct store_txn t[100] = {0};
		char keys[100][16];
		int n = 0, ok = 0;

		if (!fx_open(&f, backends[b], 0, 0))
			goto out;
		closing_store = f.s;
		closing_submit_rc = 1;
		for (int i = 0; i < 100; i++) {
			snprintf(keys[i], sizeof(keys[i]), "/c/%d", i);
			txn_set(&t[i], STORE_CREATE, keys[i], "v", 0, &f);
			t[i].done = close_done;
			t[i].done_arg = &n;
			ASSERT_OK(store_submit(f.s, &t[i]), "submit");
		}
		store_close(f.s);
		f.s = NULL;
		ASSERT_EQ(n, 100, "every callback ran in the final dispatch");
		for (int i = 0; i < 100; i++)
			ok += t[i].err == 0;
		ASSERT_EQ(ok, 100, "all committed");
		ASSERT_EQ(closing_submit_rc, -ESHUTDOWN, "submit while closing refused");
		if (!strcmp(backends[b], "sqlite")) {
			struct store_kv *kv = NULL;

			f.s = store_open(&f.o, NULL, 0);
			if (ASSERT_NOT_NULL(f.s, "reopen")) {
				ASSERT_EQ(store_rev(f.s), 100, "durable");
				ASSERT_OK(store_get(f.s, "/c/99", &kv), "last key");
				store_kv_free(kv);
			}
		}
	out:
		for (int i = 0; i < 100; i++)
			store_txn_fini(&t[i]);
		fx_close(&f);
	}
}

TEST(sqlite_io_failure_fails_whole_batch)
{
	struct fx f = {0};
	struct store_txn big = {0}, small = {0}, after = {0};
	struct rlimit old, lim;
	struct store_kv *kv = NULL;
	size_t bigsz = 24 << 20;
	char *bigval = malloc(bigsz), err[512];
	int64_t rev0;

	if (!ASSERT_NOT_NULL(bigval, "alloc") || !fx_open(&f, "sqlite", 0, 0))
		goto out;
	memset(bigval, 'x', bigsz);
	run1(&f, &small, STORE_CREATE, "/before", "v", 0);
	rev0 = store_rev(f.s);

	/* Files may not grow past 4 MiB: the WAL append fails with EFBIG. */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 4 << 20;
	setrlimit(RLIMIT_FSIZE, &lim);
	txn_set(&small, STORE_CREATE, "/small", "v", 0, &f);
	txn_set(&big, STORE_CREATE, "/big", NULL, 0, &f);
	big.value = bigval;
	big.value_len = bigsz;
	store_submit(f.s, &big);
	store_submit(f.s, &small);
	fx_wait(&f, f.done + 2);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);

	ASSERT_ERR(big.err, "big write failed");
	ASSERT_TRUE(big.err > -SL_ERR_BASE, "failure is an errno");
	ASSERT_NULL(big.cur, "no cur on I/O failure");
	if (small.err)
		ASSERT_EQ(small.err, big.err, "same batch, same error");
	ASSERT_EQ(store_get(f.s, "/big", &kv), -SL_ERR_NOTFOUND, "nothing half-applied");
	ASSERT_EQ(store_rev(f.s), rev0 + !small.err, "failed writes consume no revision");

	run1(&f, &after, STORE_CREATE, "/after", "v", 0);
	ASSERT_OK(after.err, "store usable after the failure");
	ASSERT_EQ(after.rev, store_rev(f.s), "rev continues");
	ASSERT_OK(store_check(f.s, err, sizeof(err)), err);
	if (fx_reopen(&f))
		ASSERT_OK(store_check(f.s, err, sizeof(err)), err);
out:
	free(bigval);
	store_txn_fini(&big);
	store_txn_fini(&small);
	store_txn_fini(&after);
	fx_close(&f);
}

TEST(open_rejects_bad_input)
{
	struct store_opts o = {.backend = "etcd3"};
	char err[512], dir[] = "/tmp/sluice-store-XXXXXX", path[128];
	struct store *s, *s2;
	FILE *fp;

	ASSERT_NULL(store_open(&o, err, sizeof(err)), "unknown backend");
	ASSERT_TRUE(strstr(err, "etcd3") != NULL, "message names the backend");
	o.backend = "sqlite";
	ASSERT_NULL(store_open(&o, err, sizeof(err)), "sqlite without dir");
	ASSERT_TRUE(strstr(err, "data_dir") != NULL, "message names data_dir");

	if (!ASSERT_NOT_NULL(mkdtemp(dir), "mkdtemp"))
		return;
	/* A path below a regular file can never be created (even by root). */
	snprintf(path, sizeof(path), "%s/file", dir);
	fp = fopen(path, "w");
	if (fp)
		fclose(fp);
	snprintf(path, sizeof(path), "%s/file/sub", dir);
	o.data_dir = path;
	ASSERT_NULL(store_open(&o, err, sizeof(err)), "unusable dir");
	ASSERT_TRUE(strstr(err, path) != NULL, "message names the path");
	ASSERT_TRUE(strstr(err, "Not a directory") != NULL, "message names the problem");
	fprintf(stderr, "  %s\n", err);

	/* Garbage where state.db should be. */
	snprintf(path, sizeof(path), "%s/bad", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/bad/state.db", dir);
	fp = fopen(path, "w");
	if (fp) {
		for (int i = 0; i < 512; i++)
			fputs("this is not a database ", fp);
		fclose(fp);
	}
	snprintf(path, sizeof(path), "%s/bad", dir);
	ASSERT_NULL(store_open(&o, err, sizeof(err)), "corrupt db");
	ASSERT_TRUE(strstr(err, "state.db") != NULL, "message names the file");
	ASSERT_TRUE(strstr(err, "not a database") != NULL, "message names the problem");
	fprintf(stderr, "  %s\n", err);

	/* Second opener of a live store. */
	snprintf(path, sizeof(path), "%s/live", dir);
	s = store_open(&o, err, sizeof(err));
	if (ASSERT_NOT_NULL(s, "first open")) {
		s2 = store_open(&o, err, sizeof(err));
		ASSERT_NULL(s2, "second open refused");
		ASSERT_EQ(errno, EBUSY, "EBUSY");
		ASSERT_TRUE(strstr(err, "in use") != NULL, "message says in use");
		store_close(s2);
	}
	store_close(s);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
