// SPDX-License-Identifier: Apache-2.0
/*
 * control/cache.c: the watch cache fed by the memory store. Checks the
 * index (get, namespace ranges, paging order), selector-aware event types
 * (an update moving an object out of a watcher's selector is a DELETED for
 * it), replay from a resourceVersion, 410 for history older than the ring,
 * and that a reload from the store restores objects and recent history.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "control/cache.h"
#include "control/resource.h"
#include "control/store.h"
#include "harness.h"
#include "sluice/err.h"
#include "sluice/json.h"

struct fixture {
	struct store *store;
	struct cache *cache;
};

static void on_event(const struct store_event *ev, void *arg)
{
	cache_apply(arg, ev);
}

static bool fx_open(struct fixture *fx, size_t ring)
{
	struct store_opts o = {.backend = "memory", .on_event = on_event};
	char err[256];

	fx->cache = cache_new(ring);
	o.on_event_arg = fx->cache;
	fx->store = store_open(&o, err, sizeof(err));
	return ASSERT_NOT_NULL(fx->cache, "cache") && ASSERT_NOT_NULL(fx->store, err);
}

static void fx_close(struct fixture *fx)
{
	store_close(fx->store);
	cache_free(fx->cache);
}

static void txn_done(struct store_txn *txn, void *arg)
{
	*(int *)arg = 1;
}

/* Writes one object synchronously; returns its revision or a negative error. */
static int64_t fx_write(struct fixture *fx, enum store_op op, const struct api_resource *r,
			const char *ns, const char *name, const char *labels, int64_t expect)
{
	char key[256], val[512];
	struct store_txn t = {0};
	int done = 0;
	int64_t rev;

	api_resource_key(r, ns, name, key, sizeof(key));
	snprintf(val, sizeof(val),
		 "{\"apiVersion\":\"%s\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\"%s%s%s"
		 "%s%s},\"spec\":{\"nodeName\":\"n1\"}}",
		 api_resource_api_version(r), r->kind, name, ns ? ",\"namespace\":\"" : "",
		 ns ? ns : "", ns ? "\"" : "", labels ? ",\"labels\":" : "", labels ? labels : "");
	t.op = op;
	t.key = key;
	t.value = op == STORE_DELETE ? NULL : val;
	t.value_len = op == STORE_DELETE ? 0 : strlen(val);
	t.expect_rev = expect;
	t.done = txn_done;
	t.done_arg = &done;
	if (store_submit(fx->store, &t))
		return -EINVAL;
	while (!done) {
		struct pollfd p = {.fd = store_notify_fd(fx->store), .events = POLLIN};
		poll(&p, 1, 1000);
		store_dispatch(fx->store);
	}
	rev = t.err ? t.err : t.rev;
	store_txn_fini(&t);
	return rev;
}

struct seen {
	char types[64];
	char names[64][32];
	int64_t revs[64];
	int n;
	int stop_after; /* 0 = never */
};

static int record(struct cache_watcher *w, enum cache_ev_type type, struct cache_obj *obj,
		  void *arg)
{
	struct seen *s = arg;

	if (s->n < 64) {
		s->types[s->n] = "AMDBE"[type];
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", obj->name);
		s->revs[s->n] = obj->mod_rev;
		s->n++;
		s->types[s->n] = '\0';
	}
	return s->stop_after && s->n >= s->stop_after ? -1 : 0;
}

static const struct api_resource *R(const char *plural)
{
	return api_resource_find("", "v1", plural);
}

static int list_rec(struct cache_obj *o, void *arg)
{
	return record(NULL, CACHE_ADDED, o, arg);
}

TEST(get_list_and_namespace_ranges)
{
	struct fixture fx;
	struct cache_watcher f = {0};
	struct seen s = {0};

	if (!fx_open(&fx, 100))
		return;
	fx_write(&fx, STORE_CREATE, R("pods"), "b", "p2", NULL, 0);
	fx_write(&fx, STORE_CREATE, R("pods"), "a", "p1", NULL, 0);
	fx_write(&fx, STORE_CREATE, R("pods"), "a-x", "p3", NULL, 0);
	fx_write(&fx, STORE_CREATE, R("services"), "a", "s1", NULL, 0);
	ASSERT_NOT_NULL(cache_get(fx.cache, R("pods"), "a", "p1"), "get");
	ASSERT_NULL(cache_get(fx.cache, R("pods"), "a", "s1"), "other resource");
	ASSERT_EQ(cache_count(fx.cache, R("pods")), 3, "pod count");
	ASSERT_EQ(cache_count(fx.cache, R("services")), 1, "service count");

	f.res = R("pods");
	f.ns = "a";
	cache_list(fx.cache, &f, NULL, list_rec, &s);
	ASSERT_EQ(s.n, 1, "namespace a holds one pod (not a-x's)");
	ASSERT_STREQ(s.names[0], "p1", "p1");
	memset(&s, 0, sizeof(s));
	f.ns = NULL;
	cache_list(fx.cache, &f, NULL, list_rec, &s);
	ASSERT_EQ(s.n, 3, "all namespaces");
	fx_close(&fx);
}

TEST(selector_transitions_change_event_types)
{
	struct fixture fx;
	struct cache_watcher w = {0};
	struct seen s = {0};
	char err[128];
	int64_t rev;

	if (!fx_open(&fx, 100))
		return;
	w.res = R("pods");
	w.lsel = sl_labelsel_parse("app=web", err, sizeof(err));
	w.fn = record;
	w.arg = &s;
	ASSERT_OK(cache_watch_start(fx.cache, &w, true, 0), "watch");
	rev = fx_write(&fx, STORE_CREATE, R("pods"), "d", "p", "{\"app\":\"db\"}", 0);
	rev = fx_write(&fx, STORE_UPDATE, R("pods"), "d", "p", "{\"app\":\"web\"}", rev);
	rev = fx_write(&fx, STORE_UPDATE, R("pods"), "d", "p", "{\"app\":\"web\",\"x\":\"1\"}",
		       rev);
	rev = fx_write(&fx, STORE_UPDATE, R("pods"), "d", "p", "{\"app\":\"db\"}", rev);
	fx_write(&fx, STORE_DELETE, R("pods"), "d", "p", NULL, rev);
	fx_write(&fx, STORE_CREATE, R("services"), "d", "p", "{\"app\":\"web\"}", 0);
	/* create(db): nothing; ->web: ADDED; web->web: MODIFIED; ->db: DELETED;
	 * delete while db: nothing; a Service: nothing. */
	ASSERT_STREQ(s.types, "AMD", "types");
	cache_watch_stop(fx.cache, &w);
	sl_labelsel_free(w.lsel);
	fx_close(&fx);
}

TEST(replay_from_rv_and_expired)
{
	struct fixture fx;
	struct cache_watcher w = {0};
	struct seen s = {0};
	int64_t r1, r2;

	if (!fx_open(&fx, 4)) /* a ring of 4 events */
		return;
	r1 = fx_write(&fx, STORE_CREATE, R("configmaps"), "d", "c1", NULL, 0);
	r2 = fx_write(&fx, STORE_CREATE, R("configmaps"), "d", "c2", NULL, 0);
	fx_write(&fx, STORE_UPDATE, R("configmaps"), "d", "c1", NULL, r1);
	w.res = R("configmaps");
	w.fn = record;
	w.arg = &s;
	ASSERT_OK(cache_watch_start(fx.cache, &w, false, r1), "watch from r1");
	ASSERT_STREQ(s.types, "AM", "replays c2 ADDED and c1 MODIFIED");
	ASSERT_EQ(s.revs[0], r2, "first replayed rev");
	fx_write(&fx, STORE_DELETE, R("configmaps"), "d", "c2", NULL, 0);
	ASSERT_STREQ(s.types, "AMD", "then live");
	cache_watch_stop(fx.cache, &w);
	ASSERT_EQ(cache_watchers(fx.cache), 0, "stopped");

	/* Push r1 out of the ring: resuming from it is 410. */
	for (int i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "x%d", i);
		fx_write(&fx, STORE_CREATE, R("configmaps"), "d", name, NULL, 0);
	}
	memset(&s, 0, sizeof(s));
	ASSERT_EQ(cache_watch_start(fx.cache, &w, false, r1), -SL_ERR_COMPACTED, "expired");
	ASSERT_EQ(s.n, 0, "nothing delivered");
	ASSERT_OK(cache_watch_start(fx.cache, &w, false, cache_rev(fx.cache) - 1), "recent ok");
	ASSERT_EQ(s.n, 1, "one event after rev-1");
	cache_watch_stop(fx.cache, &w);
	fx_close(&fx);
}

TEST(watcher_can_stop_itself_during_replay_and_fanout)
{
	struct fixture fx;
	struct cache_watcher w = {0}, w2 = {0};
	struct seen s = {.stop_after = 2}, s2 = {0};

	if (!fx_open(&fx, 100))
		return;
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d", i);
		fx_write(&fx, STORE_CREATE, R("configmaps"), "d", name, NULL, 0);
	}
	w.res = w2.res = R("configmaps");
	w.fn = w2.fn = record;
	w.arg = &s;
	w2.arg = &s2;
	ASSERT_EQ(cache_watch_start(fx.cache, &w, true, 0), -ECANCELED, "stopped in replay");
	ASSERT_FALSE(w.active, "not linked");
	s.n = 0;
	s.stop_after = 1;
	ASSERT_OK(cache_watch_start(fx.cache, &w, false, cache_rev(fx.cache)), "live");
	ASSERT_OK(cache_watch_start(fx.cache, &w2, false, cache_rev(fx.cache)), "live 2");
	fx_write(&fx, STORE_CREATE, R("configmaps"), "d", "z1", NULL, 0);
	fx_write(&fx, STORE_CREATE, R("configmaps"), "d", "z2", NULL, 0);
	ASSERT_EQ(s.n, 1, "first watcher stopped after one live event");
	ASSERT_FALSE(w.active, "unlinked by fan-out");
	ASSERT_EQ(s2.n, 2, "the other watcher got both");
	cache_watch_stop(fx.cache, &w2);
	fx_close(&fx);
}

TEST(field_selector_on_spec_node_name)
{
	struct fixture fx;
	struct cache_watcher f = {0};
	struct seen s = {0};
	char err[128];

	if (!fx_open(&fx, 100))
		return;
	fx_write(&fx, STORE_CREATE, R("pods"), "d", "p1", NULL, 0);
	f.res = R("pods");
	f.fsel = sl_fieldsel_parse("spec.nodeName=n1", err, sizeof(err));
	cache_list(fx.cache, &f, NULL, list_rec, &s);
	ASSERT_EQ(s.n, 1, "n1 matches");
	sl_fieldsel_free(f.fsel);
	f.fsel = sl_fieldsel_parse("spec.nodeName=n2", err, sizeof(err));
	s.n = 0;
	cache_list(fx.cache, &f, NULL, list_rec, &s);
	ASSERT_EQ(s.n, 0, "n2 does not");
	sl_fieldsel_free(f.fsel);
	fx_close(&fx);
}
