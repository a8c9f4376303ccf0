// SPDX-License-Identifier: Apache-2.0
/*
 * agent/lbinc.c: the incremental model must program exactly what the full
 * build (agent/model.c lbm_state_build over every object) describes. Plans
 * are applied to an in-memory picture of the maps that checks the ordering
 * rules as it goes (a frontend never points at a missing backend, deletes
 * and removals hit existing entries, nothing removed is still referenced);
 * after every plan the picture is compared with a full build of the same
 * inputs. Inputs are random Services, EndpointSlices and Node addresses drawn
 * from small pools, so shared backends, frontend conflicts, slices moving
 * between Services, Local policies and terminating endpoints all occur.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/lbinc.h"
#include "agent/model.h"
#include "harness.h"
#include "sluice/buf.h"
#include "sluice/json.h"

/* --- the picture of the maps -------------------------------------------------------------- */

#define MAXE 512

struct pbe {
	uint64_t key;
	uint8_t state;
	bool local;
};

struct pfe {
	struct sl_svc_key key;
	uint16_t flags, count;
	uint32_t affinity_s;
	bool drop;
	uint64_t be[SL_MAX_SLOTS_PER_SVC];
};

struct picture {
	struct pbe be[MAXE];
	size_t n_be;
	struct pfe fe[MAXE];
	size_t n_fe;
	char err[256]; /* first ordering violation */
};

static uint64_t bkey(const struct lbm_backend *b)
{
	return (uint64_t)b->addr << 32 | (uint64_t)b->port << 8 | b->proto;
}

static struct pbe *pic_be(struct picture *p, uint64_t k)
{
	for (size_t i = 0; i < p->n_be; i++)
		if (p->be[i].key == k)
			return &p->be[i];
	return NULL;
}

static struct pfe *pic_fe(struct picture *p, const struct sl_svc_key *k)
{
	for (size_t i = 0; i < p->n_fe; i++)
		if (!memcmp(&p->fe[i].key, k, sizeof(*k)))
			return &p->fe[i];
	return NULL;
}

static void violation(struct picture *p, const char *what)
{
	if (!p->err[0])
		snprintf(p->err, sizeof(p->err), "%s", what);
}

static void pic_fe_set(struct picture *p, struct pfe *dst, const struct lbm_state *st,
		       const struct lbm_frontend *fe)
{
	dst->key = fe->key;
	dst->flags = fe->flags;
	dst->count = fe->count;
	dst->affinity_s = fe->affinity_s;
	dst->drop = fe->drop;
	for (uint16_t i = 0; i < fe->count; i++) {
		dst->be[i] = bkey(&st->backends[fe->be[i]]);
		if (p && !pic_be(p, dst->be[i]))
			violation(p, "frontend written before its backend");
	}
}

static void pic_apply(struct picture *p, const struct lbi_plan *pl)
{
	for (size_t i = 0; i < pl->n_be_put; i++) {
		struct pbe *b = pic_be(p, bkey(&pl->be_put[i]));

		if (!b) {
			if (p->n_be == MAXE)
				return violation(p, "picture full");
			b = &p->be[p->n_be++];
		}
		*b = (struct pbe){bkey(&pl->be_put[i]), pl->be_put[i].state, pl->be_put[i].local};
	}
	for (size_t i = 0; i < pl->n_fe_put; i++) {
		const struct lbm_state *st = pl->fe_put[i].st;
		const struct lbm_frontend *fe = &st->frontends[pl->fe_put[i].idx];
		struct pfe *f = pic_fe(p, &fe->key);

		if ((fe->flags & (SL_SVC_F_LOCAL_INT | SL_SVC_F_LOCAL_EXT)) &&
		    fe->key.scope == SL_SCOPE_EXT && !f) {
			struct sl_svc_key k = fe->key;

			k.scope = SL_SCOPE_INT;
			if ((fe->flags & SL_SVC_F_LOCAL_INT || fe->flags & SL_SVC_F_LOCAL_EXT) &&
			    !pic_fe(p, &k))
				violation(p, "EXT entry with a Local policy before its INT entry");
		}
		if (!f) {
			if (p->n_fe == MAXE)
				return violation(p, "picture full");
			f = &p->fe[p->n_fe++];
		}
		pic_fe_set(p, f, st, fe);
	}
	for (size_t i = 0; i < pl->n_fe_del; i++) {
		struct pfe *f = pic_fe(p, &pl->fe_del[i]);

		if (!f) {
			violation(p, "delete of a frontend that is not there");
			continue;
		}
		*f = p->fe[--p->n_fe];
	}
	for (size_t i = 0; i < pl->n_be_del; i++) {
		uint64_t k = bkey(&pl->be_del[i]);
		struct pbe *b = pic_be(p, k);

		if (!b) {
			violation(p, "removal of a backend that is not there");
			continue;
		}
		for (size_t j = 0; j < p->n_fe; j++)
			for (uint16_t s = 0; s < p->fe[j].count; s++)
				if (p->fe[j].be[s] == k)
					violation(p, "backend removed while a frontend uses it");
		*b = p->be[--p->n_be];
	}
}

/* Compares the picture with a full build; *why says what differs. */
static bool pic_matches(struct picture *p, const struct lbm_state *st, bool exact_backends,
			char *why, size_t len)
{
	size_t i;

	if (p->n_fe != st->n_frontends) {
		snprintf(why, len, "%zu frontends programmed, full build has %zu", p->n_fe,
			 st->n_frontends);
		return false;
	}
	for (i = 0; i < st->n_frontends; i++) {
		struct pfe want, *got = pic_fe(p, &st->frontends[i].key);

		pic_fe_set(NULL, &want, st, &st->frontends[i]);
		if (!got || got->flags != want.flags || got->count != want.count ||
		    got->affinity_s != want.affinity_s || got->drop != want.drop ||
		    memcmp(got->be, want.be, want.count * sizeof(want.be[0]))) {
			snprintf(why, len, "frontend %zu (%08x:%u/%u scope %u) %s", i,
				 ntohl(st->frontends[i].key.addr), ntohs(st->frontends[i].key.port),
				 st->frontends[i].key.proto, st->frontends[i].key.scope,
				 got ? "differs" : "missing");
			return false;
		}
	}
	for (i = 0; i < st->n_backends; i++) {
		struct pbe *b = pic_be(p, bkey(&st->backends[i]));

		/* Under a conflict the loser's uses still count (lbinc.h). */
		if (!b || (exact_backends && (b->state != st->backends[i].state ||
					      b->local != st->backends[i].local))) {
			snprintf(why, len, "backend %zu %s", i, b ? "differs" : "missing");
			return false;
		}
	}
	if (exact_backends && p->n_be != st->n_backends) {
		snprintf(why, len, "%zu backends programmed, full build has %zu", p->n_be,
			 st->n_backends);
		return false;
	}
	return true;
}

/* --- random inputs -------------------------------------------------------------------------- */

#define NSVC   6
#define NSLICE 8

struct world {
	char *svc[NSVC]; /* JSON text, NULL = absent */
	char *slice[NSLICE];
	char *node;
	uint64_t rng;
};

static uint32_t rnd(struct world *w, uint32_t n)
{
	w->rng = w->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(w->rng >> 33) % n;
}

static const char *svc_ns(int i)
{
	return i < NSVC / 2 ? "a" : "b";
}

static char *gen_service(struct world *w, int i)
{
	static const char *types[] = {"ClusterIP", "NodePort", "LoadBalancer"};
	struct sl_buf b = SL_BUF_INIT;
	int type = (int)rnd(w, 3), nports = 1 + (int)rnd(w, 2);

	sl_buf_printf(&b,
		      "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"s%d\","
		      "\"creationTimestamp\":\"2024-01-0%uT00:00:00Z\"},\"spec\":{\"type\":\"%s\","
		      "\"clusterIP\":\"%s\"",
		      svc_ns(i), i, 1 + rnd(w, 3), types[type],
		      rnd(w, 8) == 0 ? "None"
				     : (const char *[]){"198.18.128.1", "198.18.128.2",
							"198.18.128.3"}[rnd(w, 3)]);
	if (rnd(w, 3) == 0)
		sl_buf_puts(&b, ",\"internalTrafficPolicy\":\"Local\"");
	if (type && rnd(w, 2) == 0)
		sl_buf_puts(&b, ",\"externalTrafficPolicy\":\"Local\"");
	if (type == 2)
		sl_buf_printf(&b, ",\"healthCheckNodePort\":%u", 32000 + rnd(w, 2));
	if (rnd(w, 3) == 0)
		sl_buf_puts(&b, ",\"externalIPs\":[\"198.18.0.10\",\"198.18.0.99\"]");
	if (rnd(w, 4) == 0)
		sl_buf_puts(&b, ",\"sessionAffinity\":\"ClientIP\"");
	sl_buf_puts(&b, ",\"ports\":[");
	for (int p = 0; p < nports; p++)
		sl_buf_printf(&b, "%s{\"name\":\"%s\",\"port\":%u,\"protocol\":\"%s\"%s}",
			      p ? "," : "", p ? "b" : "a", 80 + rnd(w, 2),
			      rnd(w, 4) ? "TCP" : "UDP",
			      type ? (p ? ",\"nodePort\":30001" : ",\"nodePort\":30000") : "");
	sl_buf_puts(&b, "]}");
	if (type == 2)
		sl_buf_printf(
			&b,
			",\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"198.18.9.%u\"}]}}",
			1 + rnd(w, 2));
	sl_buf_puts(&b, "}");
	return b.data;
}

static char *gen_slice(struct world *w, int i)
{
	struct sl_buf b = SL_BUF_INIT;
	int svc = (int)rnd(w, NSVC + 1), neps = (int)rnd(w, 5);

	/* Slices live in namespace "a" and name a Service there (or one that
	 * never exists): they move between Services as their label changes. */
	sl_buf_printf(&b,
		      "{\"metadata\":{\"namespace\":\"a\",\"name\":\"e%d\",\"labels\":{"
		      "\"kubernetes.io/service-name\":\"s%d\"}},\"addressType\":\"%s\","
		      "\"ports\":[{\"name\":\"a\",\"port\":%u,\"protocol\":\"TCP\"},"
		      "{\"name\":\"a\",\"port\":8080,\"protocol\":\"UDP\"},"
		      "{\"name\":\"b\",\"port\":8081,\"protocol\":\"TCP\"}],\"endpoints\":[",
		      i, svc % (NSVC / 2 + 1), rnd(w, 10) ? "IPv4" : "IPv6", 8080 + rnd(w, 2));
	for (int e = 0; e < neps; e++) {
		static const char *tri[] = {"", "\"ready\":true,", "\"ready\":false,"};
		bool term = rnd(w, 4) == 0;

		sl_buf_printf(&b,
			      "%s{\"addresses\":[\"198.18.64.%u\"],\"nodeName\":\"%s\","
			      "\"conditions\":{%s\"serving\":%s,\"terminating\":%s}}",
			      e ? "," : "", 1 + rnd(w, 6), rnd(w, 2) ? "n1" : "n2",
			      term ? "\"ready\":false," : tri[rnd(w, 3)],
			      rnd(w, 3) ? "true" : "false", term ? "true" : "false");
	}
	sl_buf_puts(&b, "]}");
	return b.data;
}

static char *gen_node(struct world *w)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_printf(&b,
		      "{\"metadata\":{\"name\":\"n1\"},\"status\":{\"addresses\":[{\"type\":"
		      "\"InternalIP\",\"address\":\"198.18.0.%s\"}]}}",
		      rnd(w, 2) ? "10" : "11");
	return b.data;
}

static struct json_object *arr_of(char **texts, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		if (texts[i])
			json_object_array_add(a,
					      sl_json_parse(texts[i], strlen(texts[i]), NULL, 0));
	return a;
}

static bool feed(struct lbi *l, enum k8s_kind kind, const char *key, const char *text)
{
	struct json_object *o = text ? sl_json_parse(text, strlen(text), NULL, 0) : NULL;
	void *typed = NULL;
	char err[256] = "";
	int rc;

	if (text && k8s_obj_decode(kind, o, &typed, err, sizeof(err)))
		return TEST_FAIL_AT("decode %s: %s", key, err);
	rc = kind == K8S_KIND_SERVICE	      ? lbi_service_set(l, key, typed)
	     : kind == K8S_KIND_ENDPOINTSLICE ? lbi_slice_set(l, key, typed)
					      : lbi_node_set(l, typed);
	k8s_obj_free(kind, typed);
	json_object_put(o);
	return ASSERT_OK(rc, key);
}

static bool has_conflict(const struct lbm_state *st)
{
	for (size_t i = 0; i < st->n_problems; i++)
		if (!strcmp(st->problems[i].reason, "FrontendConflict"))
			return true;
	return false;
}

/* One random input change (a Service, a slice or the node) fed to l. */
static bool random_change(struct world *w, struct lbi *l, int *moved)
{
	uint32_t what = rnd(w, 10);
	char key[32];

	if (what < 4) {
		int i = (int)rnd(w, NSVC);

		free(w->svc[i]);
		w->svc[i] = rnd(w, 5) ? gen_service(w, i) : NULL;
		snprintf(key, sizeof(key), "%s/s%d", svc_ns(i), i);
		return feed(l, K8S_KIND_SERVICE, key, w->svc[i]);
	}
	if (what < 9) {
		int i = (int)rnd(w, NSLICE);

		*moved += w->slice[i] != NULL;
		free(w->slice[i]);
		w->slice[i] = rnd(w, 6) ? gen_slice(w, i) : NULL;
		snprintf(key, sizeof(key), "a/e%d", i);
		return feed(l, K8S_KIND_ENDPOINTSLICE, key, w->slice[i]);
	}
	free(w->node);
	w->node = rnd(w, 4) ? gen_node(w) : NULL;
	return feed(l, K8S_KIND_NODE, "n1", w->node);
}

/* The picture of the maps after the plans so far against a full build of
 * the world; *conflicts counts worlds with a FrontendConflict. */
static bool matches_full(struct world *w, struct lbi *l, struct picture *pic, int step,
			 int *conflicts)
{
	struct json_object *js = arr_of(w->svc, NSVC), *jl = arr_of(w->slice, NSLICE),
			   *jn = arr_of(&w->node, 1);
	struct lbm_state *full = NULL;
	char why[200] = "";
	bool ok = ASSERT_OK(lbm_state_build_json("n1", js, jl, jn, &full), "full build");

	if (ok) {
		*conflicts += has_conflict(full);
		ok = pic_matches(pic, full, !has_conflict(full), why, sizeof(why));
		if (!ok)
			(void)TEST_FAIL_AT("step %d: %s", step, why);
	}
	for (size_t i = 0; ok && i < full->n_frontends; i++)
		ok = ASSERT_TRUE(lbi_want_frontend(l, &full->frontends[i].key), "wanted fe");
	for (size_t i = 0; ok && i < full->n_backends; i++)
		ok = ASSERT_TRUE(lbi_want_backend(l, full->backends[i].addr, full->backends[i].port,
						  full->backends[i].proto),
				 "wanted be");
	if (ok) {
		size_t nfe, nbe;

		lbi_counts(l, &nfe, &nbe);
		ok = ASSERT_EQ(nfe, full->n_frontends, "frontend count") &&
		     ASSERT_EQ(nbe, pic->n_be, "backend count");
	}
	lbm_state_free(full);
	json_object_put(js);
	json_object_put(jl);
	json_object_put(jn);
	return ok;
}

static void world_fini(struct world *w)
{
	for (int i = 0; i < NSVC; i++)
		free(w->svc[i]);
	for (int i = 0; i < NSLICE; i++)
		free(w->slice[i]);
	free(w->node);
}

TEST(lbinc_matches_the_full_build)
{
	struct world w = {.rng = 42};
	struct picture *pic = calloc(1, sizeof(*pic));
	struct lbi *l = lbi_new("n1");
	int plans = 0, conflicts = 0, moved = 0;

	if (!ASSERT_NOT_NULL(pic, "picture") || !ASSERT_NOT_NULL(l, "lbi_new"))
		goto out;
	for (int step = 0; step < 1500; step++) {
		struct lbi_plan plan;

		if (!random_change(&w, l, &moved))
			goto out;
		if (rnd(&w, 3) == 0)
			continue; /* let changes pile up between plans */
		if (!ASSERT_OK(lbi_plan(l, rnd(&w, 20) == 0, &plan), "plan"))
			goto out;
		pic_apply(pic, &plan);
		lbi_plan_fini(&plan);
		ASSERT_FALSE(lbi_dirty(l), "clean after a plan");
		if (!ASSERT_STREQ(pic->err, "", "ordering"))
			goto out;
		if (!matches_full(&w, l, pic, step, &conflicts))
			goto out;
		plans++;
	}
	/* The pools must really produce the hard cases. */
	ASSERT_TRUE(plans > 500, "plans");
	ASSERT_TRUE(conflicts > 20, "frontend conflicts occurred");
	ASSERT_TRUE(moved > 100, "slices replaced");
out:
	world_fini(&w);
	free(pic);
	lbi_free(l);
}

/*
 * A start: inputs stream in with lbi_prebuild between them (some Services
 * built, then changed again, the node replaced under them), then the first
 * plan. It must use the prebuilt fragments that still hold and rebuild the
 * rest: the maps equal a full build of the final inputs, and later plans
 * (prebuilding over) stay right.
 */
TEST(lbinc_prebuild_then_first_plan)
{
	int conflicts = 0, moved = 0;
	size_t prebuilt = 0;

	for (int trial = 0; trial < 150; trial++) {
		struct world w = {.rng = 1000 + (uint32_t)trial};
		struct picture *pic = calloc(1, sizeof(*pic));
		struct lbi *l = lbi_new("n1");
		struct lbi_plan plan;
		bool ok = ASSERT_NOT_NULL(pic, "picture") && ASSERT_NOT_NULL(l, "lbi_new");

		/* The node first, as at a start (its list is small). */
		free(w.node);
		w.node = gen_node(&w);
		ok = ok && feed(l, K8S_KIND_NODE, "n1", w.node);
		for (int step = 0, n = 5 + (int)rnd(&w, 30); ok && step < n; step++) {
			ok = random_change(&w, l, &moved);
			if (ok && rnd(&w, 2) == 0)
				ok = ASSERT_TRUE(lbi_prebuild(l, 1 + rnd(&w, 3)) >= 0, "prebuild");
		}
		ok = ok && ASSERT_OK(lbi_plan(l, true, &plan), "first plan");
		if (ok) {
			prebuilt += plan.services_prebuilt;
			pic_apply(pic, &plan);
			lbi_plan_fini(&plan);
			ok = matches_full(&w, l, pic, trial, &conflicts);
		}
		/* Prebuilding is over: a change and a prebuild change nothing. */
		for (int step = 0; ok && step < 20; step++) {
			ok = random_change(&w, l, &moved) &&
			     ASSERT_OK(lbi_prebuild(l, SIZE_MAX), "late: nothing to build");
			ok = ok && ASSERT_OK(lbi_plan(l, false, &plan), "plan");
			if (ok) {
				ok = ASSERT_EQ(plan.services_prebuilt, 0, "none prebuilt late");
				pic_apply(pic, &plan);
				lbi_plan_fini(&plan);
				ok = ok && matches_full(&w, l, pic, 1000 + step, &conflicts);
			}
		}
		world_fini(&w);
		free(pic);
		lbi_free(l);
		if (!ok)
			return;
	}
	printf("# %zu prebuilt fragments used\n", prebuilt);
	ASSERT_TRUE(prebuilt > 10, "prebuilt fragments were used");
	ASSERT_TRUE(conflicts > 5, "frontend conflicts occurred");
}

/* One event, one Service: a slice update rebuilds its Service only and
 * writes just the frontends and backends that changed. */
TEST(lbinc_touches_only_what_changed)
{
	struct lbi *l = lbi_new("n1");
	struct lbi_plan p;
	char key[32], txt[512];

	if (!ASSERT_NOT_NULL(l, "new"))
		return;
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "d/s%d", i);
		snprintf(txt, sizeof(txt),
			 "{\"metadata\":{\"namespace\":\"d\",\"name\":\"s%d\"},\"spec\":{"
			 "\"clusterIP\":\"198.18.128.%d\",\"ports\":[{\"port\":80}]}}",
			 i, i + 1);
		feed(l, K8S_KIND_SERVICE, key, txt);
		snprintf(key, sizeof(key), "d/s%d-x", i);
		snprintf(txt, sizeof(txt),
			 "{\"metadata\":{\"namespace\":\"d\",\"name\":\"s%d-x\",\"labels\":{"
			 "\"kubernetes.io/service-name\":\"s%d\"}},\"addressType\":\"IPv4\","
			 "\"ports\":[{\"port\":8080}],\"endpoints\":[{\"addresses\":[\"198.18.64.%"
			 "d\"]},"
			 "{\"addresses\":[\"198.18.65.%d\"]}]}",
			 i, i, i + 1, i + 1);
		feed(l, K8S_KIND_ENDPOINTSLICE, key, txt);
	}
	ASSERT_OK(lbi_plan(l, false, &p), "first plan");
	ASSERT_EQ(p.services_built, 50, "all built");
	ASSERT_EQ(p.n_fe_put, 50, "frontends");
	ASSERT_EQ(p.n_be_put, 100, "backends");
	lbi_plan_fini(&p);

	feed(l, K8S_KIND_ENDPOINTSLICE, "d/s7-x",
	     "{\"metadata\":{\"namespace\":\"d\",\"name\":\"s7-x\",\"labels\":{"
	     "\"kubernetes.io/service-name\":\"s7\"}},\"addressType\":\"IPv4\","
	     "\"ports\":[{\"port\":8080}],\"endpoints\":[{\"addresses\":[\"198.18.64.8\"]}]}");
	ASSERT_OK(lbi_plan(l, false, &p), "change");
	ASSERT_EQ(p.services_built, 1, "one service rebuilt");
	ASSERT_EQ(p.n_be_put, 0, "no backend written");
	ASSERT_EQ(p.n_fe_put, 1, "its frontend rewritten");
	ASSERT_EQ(p.n_be_del, 1, "the dropped endpoint removed");
	ASSERT_EQ(p.n_fe_del, 0, "nothing deleted");
	lbi_plan_fini(&p);

	ASSERT_OK(lbi_plan(l, false, &p), "nothing dirty");
	ASSERT_EQ(p.services_built + p.n_fe_put + p.n_be_put + p.n_fe_del + p.n_be_del, 0,
		  "empty plan");
	lbi_plan_fini(&p);
	ASSERT_OK(lbi_plan(l, true, &p), "full");
	ASSERT_TRUE(p.full, "marked full");
	ASSERT_EQ(p.n_fe_put, 50, "every frontend");
	ASSERT_EQ(p.n_be_put, 99, "every backend");
	lbi_plan_fini(&p);

	/* Deleting the Service deletes its frontend and frees its backends. */
	feed(l, K8S_KIND_SERVICE, "d/s3", NULL);
	ASSERT_OK(lbi_plan(l, false, &p), "delete");
	ASSERT_EQ(p.n_fe_del, 1, "frontend deleted");
	ASSERT_EQ(p.n_be_del, 2, "backends removed");
	lbi_plan_fini(&p);
	lbi_free(l);
}

/* A slice whose Service never existed costs no frontend; bad slices are kept out. */
TEST(lbinc_slices_without_service)
{
	struct lbi *l = lbi_new("n1");
	struct lbi_plan p;
	size_t nfe, nbe;

	if (!ASSERT_NOT_NULL(l, "new"))
		return;
	feed(l, K8S_KIND_ENDPOINTSLICE, "d/x",
	     "{\"metadata\":{\"namespace\":\"d\",\"name\":\"x\",\"labels\":{"
	     "\"kubernetes.io/service-name\":\"ghost\"}},\"addressType\":\"IPv4\","
	     "\"ports\":[{\"port\":8080}],\"endpoints\":[{\"addresses\":[\"198.18.64.8\"]}]}");
	feed(l, K8S_KIND_ENDPOINTSLICE, "d/y",
	     "{\"metadata\":{\"namespace\":\"d\",\"name\":\"y\"},\"addressType\":\"IPv4\"}");
	ASSERT_OK(lbi_plan(l, false, &p), "plan");
	ASSERT_EQ(p.n_fe_put + p.n_be_put, 0, "nothing to write");
	lbi_plan_fini(&p);
	lbi_counts(l, &nfe, &nbe);
	ASSERT_EQ(nfe + nbe, 0, "nothing wanted");
	ASSERT_EQ(lbi_service_set(l, NULL, NULL), -EINVAL, "NULL key");
	lbi_free(l);
}

/* What lbi_prebuild tells its caller: Services just taken in wait one call
 * (2: "again in a moment"), then build (0: the queue is empty); a Node
 * update that leaves the addresses alone keeps what was built. */
TEST(lbinc_prebuild_reports_what_waits)
{
	struct world w = {.rng = 7};
	struct lbi *l = lbi_new("n1");
	struct lbi_plan plan;
	char key[32];

	if (!ASSERT_NOT_NULL(l, "lbi_new"))
		return;
	w.node = gen_node(&w);
	ASSERT_TRUE(feed(l, K8S_KIND_NODE, "n1", w.node), "node");
	ASSERT_EQ(lbi_prebuild(l, 100), 0, "nothing queued");
	for (int i = 0; i < 4; i++) {
		/* Services 0-3 in namespace "a" get the slices (gen_slice). */
		w.svc[i] = gen_service(&w, i);
		snprintf(key, sizeof(key), "%s/s%d", svc_ns(i), i);
		ASSERT_TRUE(feed(l, K8S_KIND_SERVICE, key, w.svc[i]), "service");
	}
	for (int i = 0; i < NSLICE; i++) {
		w.slice[i] = gen_slice(&w, i);
		snprintf(key, sizeof(key), "a/e%d", i);
		ASSERT_TRUE(feed(l, K8S_KIND_ENDPOINTSLICE, key, w.slice[i]), "slice");
	}
	ASSERT_EQ(lbi_prebuild(l, 100), 2, "just taken in: again in a moment");
	ASSERT_EQ(lbi_prebuild(l, 100), 0, "built: the queue is empty");
	/* The same Node again (a status update, say): nothing to rebuild. */
	ASSERT_TRUE(feed(l, K8S_KIND_NODE, "n1", w.node), "node again");
	ASSERT_OK(lbi_plan(l, true, &plan), "first plan");
	ASSERT_TRUE(plan.services_prebuilt > 0, "the prebuilt fragments were used");
	lbi_plan_fini(&plan);
	ASSERT_EQ(lbi_prebuild(l, 100), 0, "over after the first plan");
	world_fini(&w);
	lbi_free(l);
}
