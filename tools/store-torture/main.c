// SPDX-License-Identifier: Apache-2.0
/*
 * store-torture: drives the API server's store (control/store.h) hard, to
 * check crash safety and to get a rough write rate.
 *
 *   store-torture burst DIR [--inflight N] [--count N] [--keys N]
 *                           [--retain N] [--compact-interval S] [--sync full|normal]
 *       Random creates/updates/deletes with N txns in flight against the
 *       sqlite store in DIR. Prints one line per ACKNOWLEDGED write, flushed
 *       before the next dispatch: "ack <rev> <C|U|D> <key> <value>". Runs
 *       until --count writes were acknowledged (default: until killed).
 *
 *   store-torture verify DIR ACKFILE
 *       Reopens the store, runs store_check() (integrity_check, contiguous
 *       revisions, current table == newest log entry per key) and checks that
 *       every acknowledged write in ACKFILE is there with its revision (or
 *       was legitimately superseded). Exit 0 when all holds.
 *
 *   store-torture bench DIR [--inflight N] [--seconds S] [--sync full|normal]
 *       Creates of fresh keys for S seconds; prints creates/s.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/store.h"
#include "sluice/err.h"
#include "sluice/log.h"

struct key_state {
	char name[32];
	bool exists;	 /* as far as we know */
	int64_t mod_rev; /* known mod_rev when exists */
	bool busy;	 /* a txn on this key is in flight */
};

struct slot {
	struct store_txn txn;
	struct key_state *ks;
	char value[48];
	char op;
};

struct torture {
	struct store *s;
	struct slot *slots;
	struct key_state *keys;
	int inflight, nkeys;
	long count; /* stop after this many acks (0 = forever) */
	long acked, done, submitted, failed;
	long seq;
	bool bench, stop;
	unsigned int rnd;
};

static void usage(void)
{
	fprintf(stderr, "usage: store-torture burst DIR [--inflight N] [--count N] [--keys N]\n"
			"                           [--retain N] [--compact-interval S] [--sync "
			"full|normal]\n"
			"       store-torture verify DIR ACKFILE\n"
			"       store-torture bench DIR [--inflight N] [--seconds S] [--sync "
			"full|normal]\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void slot_done(struct store_txn *txn, void *arg);

static void slot_submit(struct torture *t, struct slot *sl)
{
	struct key_state *ks;
	enum store_op op;
	int err;

	if (t->bench) {
		ks = NULL;
		snprintf(sl->value, sizeof(sl->value), "/bench/%ld", t->seq++);
		op = STORE_CREATE;
	} else {
		/* A free key: never two txns on one key, so no self-conflicts. */
		do {
			ks = &t->keys[rand_r(&t->rnd) % t->nkeys];
		} while (ks->busy);
		if (!ks->exists)
			op = STORE_CREATE;
		else
			op = rand_r(&t->rnd) % 10 < 7 ? STORE_UPDATE : STORE_DELETE;
		snprintf(sl->value, sizeof(sl->value), "%d-%ld", (int)getpid(), t->seq++);
		ks->busy = true;
	}
	sl->ks = ks;
	sl->op = op == STORE_CREATE ? 'C' : op == STORE_UPDATE ? 'U' : 'D';
	store_txn_fini(&sl->txn);
	memset(&sl->txn, 0, sizeof(sl->txn));
	sl->txn.op = op;
	sl->txn.key = ks ? ks->name : sl->value;
	sl->txn.value = op == STORE_DELETE ? NULL : sl->value;
	sl->txn.value_len = op == STORE_DELETE ? 0 : strlen(sl->value);
	sl->txn.expect_rev = ks && ks->exists ? ks->mod_rev : 0;
	sl->txn.done = slot_done;
	sl->txn.done_arg = t;
	err = store_submit(t->s, &sl->txn);
	if (err) {
		fprintf(stderr, "store-torture: submit failed: %s\n", sl_strerror(err));
		t->failed++;
		t->stop = true;
		if (ks)
			ks->busy = false;
		return;
	}
	t->submitted++;
}

static void slot_done(struct store_txn *txn, void *arg)
{
	struct torture *t = arg;
	struct slot *sl = (struct slot *)((char *)txn - offsetof(struct slot, txn));
	struct key_state *ks = sl->ks;

	t->done++;
	if (ks)
		ks->busy = false;
	switch (txn->err) {
	case 0:
		t->acked++;
		if (ks) { /* a key is tracked exactly when not in bench mode */
			printf("ack %" PRId64 " %c %s %s\n", txn->rev, sl->op, txn->key,
			       sl->op == 'D' ? "-" : sl->value);
			fflush(stdout);
			ks->exists = txn->op != STORE_DELETE;
			ks->mod_rev = txn->rev;
		}
		break;
	case -SL_ERR_EXISTS:
	case -SL_ERR_CONFLICT:
		if (ks && txn->cur) {
			ks->exists = true;
			ks->mod_rev = txn->cur->mod_rev;
		}
		break;
	case -SL_ERR_NOTFOUND:
		if (ks)
			ks->exists = false;
		break;
	default:
		fprintf(stderr, "store-torture: '%s' failed: %s\n", txn->key,
			sl_strerror(txn->err));
		t->failed++;
		break;
	}
	if (!t->stop && (!t->count || t->acked < t->count))
		slot_submit(t, sl);
}

static struct store *open_store(const char *dir, bool sync_full, int64_t retain, int interval)
{
	struct store_opts o = {
		.backend = "sqlite",
		.data_dir = dir,
		.retain_revisions = retain,
		.compact_interval_s = interval,
		.sync_full = sync_full,
	};
	char err[512];
	struct store *s = store_open(&o, err, sizeof(err));

	if (!s)
		fprintf(stderr, "store-torture: %s\n", err);
	return s;
}

/* Burst and bench share the loop: keep `inflight` txns queued, dispatch. */
static int run_load(struct torture *t, double seconds)
{
	struct pollfd p = {.fd = store_notify_fd(t->s), .events = POLLIN};
	double start = now_s(), elapsed;
	struct store_stats st;

	t->slots = calloc(t->inflight, sizeof(*t->slots));
	if (!t->slots)
		return 1;
	for (int i = 0; i < t->inflight; i++)
		slot_submit(t, &t->slots[i]);
	while (t->done < t->submitted) {
		if (poll(&p, 1, 100) > 0)
			store_dispatch(t->s);
		if (seconds > 0 && now_s() - start >= seconds)
			t->stop = true;
	}
	elapsed = now_s() - start;
	store_stats_get(t->s, &st);
	if (t->bench)
		printf("bench inflight=%d creates=%ld seconds=%.2f rate=%.0f/s batches=%" PRIu64
		       " avg_batch=%.1f\n",
		       t->inflight, t->acked, elapsed, t->acked / elapsed, st.batches,
		       st.batches ? (double)st.txns / st.batches : 0.0);
	for (int i = 0; i < t->inflight; i++)
		store_txn_fini(&t->slots[i].txn);
	free(t->slots);
	return t->failed ? 1 : 0;
}

/* --- verify ------------------------------------------------------------------ */

struct logent {
	char type; /* 0 = missing, 'P' put, 'D' delete */
	char *key;
	char *value;
};

struct vctx {
	struct logent *ents; /* index rev - base - 1 */
	int64_t base, n;
	int bad;
};

static void verify_log_cb(const struct store_event *ev, void *arg)
{
	struct vctx *v = arg;
	int64_t i = ev->kv->mod_rev - v->base - 1;

	if (i < 0 || i >= v->n) {
		fprintf(stderr,
			"verify: log revision %" PRId64 " outside (%" PRId64 ", %" PRId64 "]\n",
			ev->kv->mod_rev, v->base, v->base + v->n);
		v->bad++;
		return;
	}
	v->ents[i].type = ev->type == STORE_EV_DELETE ? 'D' : 'P';
	v->ents[i].key = strdup(ev->kv->key);
	v->ents[i].value = strdup(ev->kv->value ? ev->kv->value : "");
}

static int do_verify(const char *dir, const char *ackfile)
{
	struct store *s = open_store(dir, true, 0, 3600);
	struct vctx v = {0};
	char err[512], line[256], key[64], val[64], op;
	int64_t rev, crev, acks = 0, checked_log = 0, checked_cur = 0;
	FILE *fp = NULL;
	int rc = 1;

	if (!s)
		return 1;
	if (store_check(s, err, sizeof(err))) {
		printf("not ok - store_check: %s\n", err);
		goto out;
	}
	printf("ok - store_check (rev %" PRId64 ", compact %" PRId64 ")\n", store_rev(s),
	       store_compact_rev(s));
	crev = store_compact_rev(s);
	v.base = crev;
	v.n = store_rev(s) - crev;
	v.ents = calloc(v.n + 1, sizeof(*v.ents));
	if (!v.ents || store_log_read(s, crev, verify_log_cb, &v) || v.bad) {
		printf("not ok - log read\n");
		goto out;
	}
	fp = fopen(ackfile, "r");
	if (!fp) {
		printf("not ok - open '%s': %s\n", ackfile, strerror(errno));
		goto out;
	}
	while (fgets(line, sizeof(line), fp)) {
		struct store_kv *kv = NULL;

		/* A line cut short by the kill was never fully acknowledged. */
		if (!strchr(line, '\n'))
			break;
		if (sscanf(line, "ack %" SCNd64 " %c %63s %63s", &rev, &op, key, val) != 4) {
			printf("not ok - bad ack line: %s", line);
			v.bad++;
			continue;
		}
		acks++;
		if (rev > store_rev(s)) {
			printf("not ok - ack rev %" PRId64 " (%s) above the store revision %" PRId64
			       "\n",
			       rev, key, store_rev(s));
			v.bad++;
			continue;
		}
		if (rev > crev) {
			struct logent *e = &v.ents[rev - crev - 1];

			checked_log++;
			if (!e->type || strcmp(e->key, key) || (e->type == 'D') != (op == 'D') ||
			    (op != 'D' && strcmp(e->value, val))) {
				printf("not ok - acked %c %s at rev %" PRId64 " not in the log "
				       "(found %c %s)\n",
				       op, key, rev, e->type ? e->type : '-',
				       e->key ? e->key : "-");
				v.bad++;
			}
		}
		/* The current state must not be older than any ack. */
		if (!store_get(s, key, &kv)) {
			checked_cur++;
			if (op == 'D' ? kv->create_rev <= rev : kv->mod_rev < rev) {
				printf("not ok - %s: current mod_rev %" PRId64
				       " older than ack %" PRId64 "\n",
				       key, kv->mod_rev, rev);
				v.bad++;
			} else if (kv->mod_rev == rev && strcmp(kv->value, val)) {
				printf("not ok - %s: value at rev %" PRId64 " differs\n", key, rev);
				v.bad++;
			}
			store_kv_free(kv);
		} else if (op != 'D' && rev > crev) {
			/* Gone: a later delete of the key must be in the log. */
			bool found = false;

			for (int64_t i = rev - crev; i < v.n && !found; i++)
				found = v.ents[i].type == 'D' && !strcmp(v.ents[i].key, key);
			if (!found) {
				printf("not ok - %s: acked put at %" PRId64 " vanished\n", key,
				       rev);
				v.bad++;
			}
		}
	}
	if (!v.bad)
		printf("ok - %" PRId64 " acknowledged writes present (%" PRId64
		       " checked in the log, %" PRId64 " against current state)\n",
		       acks, checked_log, checked_cur);
	rc = v.bad ? 1 : 0;
out:
	if (fp)
		fclose(fp);
	for (int64_t i = 0; v.ents && i < v.n; i++) {
		free(v.ents[i].key);
		free(v.ents[i].value);
	}
	free(v.ents);
	store_close(s);
	return rc;
}

/* --- main ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct torture t = {.inflight = 64, .nkeys = 2000};
	const char *mode, *dir;
	double seconds = 2;
	int64_t retain = 0;
	int interval = 0, rc;
	bool sync_full = true;

	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (argc < 3) {
		usage();
		return 2;
	}
	mode = argv[1];
	dir = argv[2];
	if (!strcmp(mode, "verify")) {
		if (argc != 4) {
			usage();
			return 2;
		}
		return do_verify(dir, argv[3]);
	}
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val) {
			fprintf(stderr, "store-torture: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--inflight"))
			t.inflight = atoi(val);
		else if (!strcmp(a, "--count"))
			t.count = atol(val);
		else if (!strcmp(a, "--keys"))
			t.nkeys = atoi(val);
		else if (!strcmp(a, "--retain"))
			retain = atoll(val);
		else if (!strcmp(a, "--compact-interval"))
			interval = atoi(val);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(val);
		else if (!strcmp(a, "--sync") && (!strcmp(val, "full") || !strcmp(val, "normal")))
			sync_full = !strcmp(val, "full");
		else {
			fprintf(stderr, "store-torture: unknown option %s %s\n", a, val);
			usage();
			return 2;
		}
	}
	if (t.inflight < 1 || t.nkeys < t.inflight * 2) {
		fprintf(stderr, "store-torture: need --inflight >= 1 and --keys >= 2 x inflight\n");
		return 2;
	}
	t.rnd = (unsigned int)getpid() ^ (unsigned int)time(NULL);
	t.s = open_store(dir, sync_full, retain, interval);
	if (!t.s)
		return 1;
	if (!strcmp(mode, "bench")) {
		t.bench = true;
		rc = run_load(&t, seconds);
	} else if (!strcmp(mode, "burst")) {
		t.keys = calloc(t.nkeys, sizeof(*t.keys));
		if (!t.keys)
			return 1;
		for (int i = 0; i < t.nkeys; i++) {
			struct store_kv *kv = NULL;

			snprintf(t.keys[i].name, sizeof(t.keys[i].name), "/torture/%05d", i);
			/* Start from what survived earlier runs. */
			if (!store_get(t.s, t.keys[i].name, &kv)) {
				t.keys[i].exists = true;
				t.keys[i].mod_rev = kv->mod_rev;
				store_kv_free(kv);
			}
		}
		rc = run_load(&t, 0);
		free(t.keys);
	} else {
		usage();
		rc = 2;
	}
	store_close(t.s);
	fflush(stdout);
	return rc;
}
