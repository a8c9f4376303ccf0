// SPDX-License-Identifier: Apache-2.0
/*
 * agent/inspect.h (what sluicectl prints) on maps the test creates itself:
 * the process moves into a private mount namespace, mounts two bpffs
 * instances on temp dirs and pins hand-written maps with the abi/lb.h layouts
 * under <bpffs>/sluice/<node>/:
 *
 *   bpffs A: n1   svc4, slots, be4, counters (no CT maps: socket LB only)
 *            n2   the same plus sl_ct4_tcp_v1 / sl_ct4_any_v1 and sl_npctr_v1
 *            bad  svc4 with a wrong value size (another layout version)
 *            empty (a pin dir without maps)
 *   bpffs B: solo (the only node: picked without --node)
 *
 * Checks the join (slots -> backend ids -> backends, states, scopes, flags),
 * the exact text tables, the JSON documents (parsed back), and every error.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "sluice/json.h"
#include "agent/inspect.h"
#include "abi/lb.h"

static char bpffs_a[64], bpffs_b[64];

static int map_pin(const char *bpffs, const char *node, const char *name, enum bpf_map_type type,
		   __u32 ksz, __u32 vsz, __u32 max)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/sluice", bpffs);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/sluice/%s", bpffs, node);
	mkdir(path, 0700);
	if (!name)
		return 0;
	fd = bpf_map_create(type, name, ksz, vsz, max, NULL);
	if (fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/sluice/%s/%s", bpffs, node, name);
	if (bpf_obj_pin(fd, path)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static __be32 ip(const char *s)
{
	__be32 a = 0;

	inet_pton(AF_INET, s, &a);
	return a;
}

static int put(int fd, const void *k, const void *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

static int slot_put(int fd, __u32 slot, __u32 id)
{
	return put(fd, &slot, &id);
}

/* Services, slots and backends of one node (see the expected tables). */
static int node_fill(const char *node)
{
	int svc, slots, be, ctr, err = 0;
	struct sl_backend b[4] = {
		{},
		{.addr = ip("198.18.1.1"), .port = htons(8080), .proto = IPPROTO_TCP},
		{.addr = ip("198.18.1.2"),
		 .port = htons(8080),
		 .proto = IPPROTO_TCP,
		 .state = SL_BE_TERMINATING,
		 .node_id = 3},
		{.addr = ip("198.18.1.3"),
		 .port = htons(53),
		 .proto = IPPROTO_UDP,
		 .state = SL_BE_GONE},
	};
	struct sl_svc_key k1 = {
		.addr = ip("198.18.128.50"), .port = htons(80), .proto = IPPROTO_TCP};
	struct sl_svc_val v1 = {
		.svc_id = 1, .slot_base = 10, .count = 2, .flags = SL_SVC_F_CLUSTERIP};
	struct sl_svc_key k2 = {.port = htons(30080), .proto = IPPROTO_TCP};
	struct sl_svc_val v2 = {.svc_id = 2, .flags = SL_SVC_F_NODEPORT | SL_SVC_F_LOCAL_EXT};
	struct sl_svc_key k2i = {.port = htons(30080), .proto = IPPROTO_TCP, .scope = SL_SCOPE_INT};
	struct sl_svc_val v2i = {.svc_id = 2,
				 .slot_base = 20,
				 .count = 1,
				 .flags = SL_SVC_F_NODEPORT | SL_SVC_F_LOCAL_EXT};
	struct sl_svc_key k3 = {
		.addr = ip("198.18.128.51"), .port = htons(53), .proto = IPPROTO_UDP};
	struct sl_svc_val v3 = {.svc_id = 3,
				.slot_base = 30,
				.count = 1,
				.flags = SL_SVC_F_CLUSTERIP | SL_SVC_F_AFFINITY,
				.affinity_s = 10800};
	int ncpu = libbpf_num_possible_cpus();
	struct sl_counter *pc;

	svc = map_pin(bpffs_a, node, SL_MAP_SVC4, BPF_MAP_TYPE_HASH, sizeof(k1), sizeof(v1), 64);
	slots = map_pin(bpffs_a, node, SL_MAP_SLOTS, BPF_MAP_TYPE_ARRAY, 4, 4, 64);
	be = map_pin(bpffs_a, node, SL_MAP_BACKENDS4, BPF_MAP_TYPE_ARRAY, 4, sizeof(b[0]), 8);
	ctr = map_pin(bpffs_a, node, SL_MAP_COUNTERS, BPF_MAP_TYPE_PERCPU_ARRAY, 4,
		      sizeof(struct sl_counter), SL_R_MAX);
	if (svc < 0 || slots < 0 || be < 0 || ctr < 0 || ncpu <= 0)
		return -EIO;
	for (__u32 i = 1; i < 4 && !err; i++)
		err = put(be, &i, &b[i]);
	err = err ?: put(svc, &k1, &v1);
	err = err ?: put(svc, &k2, &v2);
	err = err ?: put(svc, &k2i, &v2i);
	err = err ?: put(svc, &k3, &v3);
	err = err ?: slot_put(slots, 10, 1);
	err = err ?: slot_put(slots, 11, 2);
	err = err ?: slot_put(slots, 20, 1);
	err = err ?: slot_put(slots, 30, 7); /* id 7: nothing there */
	/* Counters on the first and the last CPU: the sum must cover both. */
	pc = calloc((size_t)ncpu, sizeof(*pc));
	if (pc) {
		__u32 r = SL_R_OK, r2 = SL_R_NO_BACKEND;

		pc[0].packets = 5;
		pc[ncpu - 1].packets += 7;
		err = err ?: put(ctr, &r, pc);
		memset(pc, 0, (size_t)ncpu * sizeof(*pc));
		pc[ncpu - 1].packets = 2;
		err = err ?: put(ctr, &r2, pc);
	}
	free(pc);
	close(svc);
	close(slots);
	close(be);
	close(ctr);
	return pc ? err : -ENOMEM;
}

static int ct_fill(const char *node)
{
	struct timespec ts;
	__u64 now;
	int tcp, any, np, err;
	struct sl_ct4_key k = {.saddr = ip("198.18.0.99"),
			       .daddr = ip("198.18.0.10"),
			       .sport = htons(40000),
			       .dport = htons(30080),
			       .proto = IPPROTO_TCP};
	struct sl_ct4_val v = {.fe_addr = ip("198.18.0.10"),
			       .client_addr = ip("198.18.0.99"),
			       .backend_addr = ip("198.18.1.2"),
			       .nat_addr = ip("198.18.0.10"),
			       .fe_port = htons(30080),
			       .client_port = htons(40000),
			       .backend_port = htons(8080),
			       .nat_port = htons(61001),
			       .backend_id = 2,
			       .svc_id = 2,
			       .flags = SL_CT_F_SNAT};
	struct sl_ct4_key ku = {.saddr = ip("198.18.0.98"),
				.daddr = ip("198.18.0.10"),
				.sport = htons(5353),
				.dport = htons(30053),
				.proto = IPPROTO_UDP};
	struct sl_ct4_val vu = {
		.backend_addr = ip("198.18.1.3"), .backend_port = htons(53), .backend_id = 3};

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
	v.last_seen_ns = now - 3000000000ULL;	 /* 3 s ago */
	vu.last_seen_ns = now - 120000000000ULL; /* 120 s ago: past the 60 s UDP lifetime */
	tcp = map_pin(bpffs_a, node, SL_MAP_CT4_TCP, BPF_MAP_TYPE_LRU_HASH, sizeof(k), sizeof(v),
		      64);
	any = map_pin(bpffs_a, node, SL_MAP_CT4_ANY, BPF_MAP_TYPE_LRU_HASH, sizeof(k), sizeof(v),
		      64);
	np = map_pin(bpffs_a, node, SL_MAP_NP_COUNTERS, BPF_MAP_TYPE_PERCPU_ARRAY, 4,
		     sizeof(struct sl_counter), SL_R_MAX);
	if (tcp < 0 || any < 0 || np < 0)
		return -EIO;
	err = put(tcp, &k, &v);
	err = err ?: put(any, &ku, &vu);
	close(tcp);
	close(any);
	close(np);
	return err;
}

static void env_fini(void)
{
	for (int i = 0; i < 2; i++) {
		char *d = i ? bpffs_b : bpffs_a;

		if (d[0]) {
			umount2(d, MNT_DETACH);
			rmdir(d);
		}
	}
}

static int env_init(void)
{
	static int done, result = -1;
	char a[] = "/tmp/sluice-insp-XXXXXX", b[] = "/tmp/sluice-insp-XXXXXX";
	int fd;

	if (done)
		return result;
	done = 1;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		fprintf(stderr, "  private mount ns: %s\n", strerror(errno));
		return result;
	}
	if (!mkdtemp(a) || !mkdtemp(b)) {
		fprintf(stderr, "  mkdtemp: %s\n", strerror(errno));
		return result;
	}
	snprintf(bpffs_a, sizeof(bpffs_a), "%s", a);
	snprintf(bpffs_b, sizeof(bpffs_b), "%s", b);
	atexit(env_fini);
	if (mount("bpf", bpffs_a, "bpf", 0, NULL) || mount("bpf", bpffs_b, "bpf", 0, NULL)) {
		fprintf(stderr, "  bpffs on temp dirs: %s\n", strerror(errno));
		return result;
	}
	if (node_fill("n1") || node_fill("n2") || ct_fill("n2")) {
		fprintf(stderr, "  filling maps failed\n");
		return result;
	}
	fd = map_pin(bpffs_a, "bad", SL_MAP_SVC4, BPF_MAP_TYPE_HASH, sizeof(struct sl_svc_key), 16,
		     8);
	if (fd < 0 || map_pin(bpffs_a, "empty", NULL, 0, 0, 0, 0) ||
	    map_pin(bpffs_b, "solo", NULL, 0, 0, 0, 0))
		return result;
	close(fd);
	result = 0;
	return result;
}

/* Runs one list on node of bpffs A into a string (caller frees). */
static char *run(const char *node, enum insp_fmt fmt,
		 int (*fn)(struct insp *in, struct insp_out *o), int *err)
{
	struct insp_out o;
	struct insp *in;
	char *s;

	*err = -EIO;
	if (env_init())
		return NULL;
	in = insp_open(bpffs_a, node);
	if (!in) {
		*err = -errno;
		return NULL;
	}
	insp_out_init(&o, fmt);
	*err = fn(in, &o);
	s = strdup(o.buf.data ? o.buf.data : "");
	insp_out_fini(&o);
	insp_close(in);
	return s;
}

static int ct_list(struct insp *in, struct insp_out *o)
{
	return insp_conntrack_list(in, o, NULL);
}

static struct json_object *parse(const char *s)
{
	char why[128] = "";
	struct json_object *j = s ? sl_json_parse(s, strlen(s), why, sizeof(why)) : NULL;

	if (!j && s)
		fprintf(stderr, "  JSON: %s in:\n%s\n", why, s);
	return j;
}

static const char *jstr(struct json_object *o, const char *k)
{
	const char *s = sl_json_get_str(o, k);

	return s ? s : "(absent)";
}

static int64_t jint(struct json_object *o, const char *k)
{
	int64_t v = -1;

	sl_json_get_int(o, k, &v);
	return v;
}

TEST(writer_one_code_path)
{
	struct insp_out t, j;
	struct json_object *doc = NULL;

	for (int pass = 0; pass < 2; pass++) {
		struct insp_out *o = pass ? &j : &t;

		insp_out_init(o, pass ? INSP_FMT_JSON : INSP_FMT_TEXT);
		insp_out_text(o, "HEAD\n");
		insp_out_arr_open(o, NULL);
		insp_out_obj_open(o, NULL);
		insp_out_str(o, INSP_ANY, "name", "<%s>", "a\"b\\c");
		insp_out_u64(o, INSP_ANY, "n", " %llu", 42);
		insp_out_str(o, INSP_ANY, "none", " %s", NULL);
		insp_out_bool(o, INSP_ANY, "yes", " %s", true);
		insp_out_arr_open(o, "list");
		insp_out_u64(o, INSP_JSON, NULL, NULL, 1);
		insp_out_u64(o, INSP_JSON, NULL, NULL, 2);
		insp_out_arr_close(o);
		insp_out_obj_open(o, "empty");
		insp_out_obj_close(o);
		insp_out_obj_close(o);
		insp_out_obj_open(o, NULL);
		insp_out_obj_close(o);
		insp_out_arr_close(o);
	}
	ASSERT_STREQ(t.buf.data, "HEAD\n<a\"b\\c> 42 - yes", "text");
	ASSERT_STREQ(j.buf.data,
		     "[{\"name\":\"a\\\"b\\\\c\",\"n\":42,\"none\":null,\"yes\":true,"
		     "\"list\":[1,2],\"empty\":{}},{}]\n",
		     "json");
	doc = parse(j.buf.data);
	if (ASSERT_NOT_NULL(doc, "json parses"))
		ASSERT_STREQ(jstr(json_object_array_get_idx(doc, 0), "name"), "a\"b\\c",
			     "escaped string round-trips");
	json_object_put(doc);
	insp_out_fini(&t);
	insp_out_fini(&j);
	insp_out_fini(NULL);
}

TEST(service_list_text)
{
	int err;
	char *s = run("n1", INSP_FMT_TEXT, insp_service_list, &err);
	const char *want =
		"ID   FRONTEND                SCOPE  TYPE                  BACKENDS\n"
		"1    198.18.128.50:80/TCP    ext    ClusterIP             1 => "
		"198.18.1.1:8080/TCP (active)\n"
		"                                                          2 => "
		"198.18.1.2:8080/TCP (terminating)\n"
		"2    0.0.0.0:30080/TCP       ext    NodePort,eTP=Local    (none: connections "
		"refused)\n"
		"2    0.0.0.0:30080/TCP       int    NodePort,eTP=Local    1 => "
		"198.18.1.1:8080/TCP (active)\n"
		"3    198.18.128.51:53/UDP    ext    ClusterIP,ClientIP    7 => (missing)\n";

	if (ASSERT_OK(err, "service list"))
		ASSERT_STREQ(s, want, "table");
	free(s);
}

TEST(service_list_json)
{
	struct json_object *doc, *e, *be;
	int err;
	char *s = run("n1", INSP_FMT_JSON, insp_service_list, &err);

	doc = parse(s);
	if (!ASSERT_OK(err, "service list") || !ASSERT_NOT_NULL(doc, "parses") ||
	    !ASSERT_EQ(json_object_array_length(doc), 4, "4 frontend entries"))
		goto out;
	e = json_object_array_get_idx(doc, 0);
	ASSERT_EQ(jint(e, "id"), 1, "id");
	ASSERT_STREQ(jstr(sl_json_get(e, "frontend"), "address"), "198.18.128.50", "address");
	ASSERT_EQ(jint(sl_json_get(e, "frontend"), "port"), 80, "port");
	ASSERT_STREQ(jstr(sl_json_get(e, "frontend"), "protocol"), "TCP", "protocol");
	ASSERT_STREQ(jstr(e, "scope"), "ext", "scope");
	ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(sl_json_get(e, "flags"), 0)),
		     "ClusterIP", "flags[0]");
	be = sl_json_get(e, "backends");
	ASSERT_EQ(json_object_array_length(be), 2, "2 backends");
	be = json_object_array_get_idx(be, 1);
	ASSERT_EQ(jint(be, "id"), 2, "backend id");
	ASSERT_STREQ(jstr(be, "address"), "198.18.1.2", "backend address");
	ASSERT_STREQ(jstr(be, "state"), "terminating", "backend state");
	ASSERT_FALSE(json_object_get_boolean(sl_json_get(be, "local")), "remote backend");
	e = json_object_array_get_idx(doc, 1);
	ASSERT_EQ(json_object_array_length(sl_json_get(e, "backends")), 0, "refusing entry");
	e = json_object_array_get_idx(doc, 3);
	ASSERT_EQ(jint(e, "affinity_timeout_s"), 10800, "affinity timeout");
	ASSERT_STREQ(jstr(json_object_array_get_idx(sl_json_get(e, "backends"), 0), "state"),
		     "missing", "slot to a missing backend");
out:
	json_object_put(doc);
	free(s);
}

TEST(backend_list_text_and_json)
{
	struct json_object *doc, *e;
	int err, err2;
	char *t = run("n1", INSP_FMT_TEXT, insp_backend_list, &err);
	char *s = run("n1", INSP_FMT_JSON, insp_backend_list, &err2);
	const char *want = "ID     BACKEND                 STATE        NODE\n"
			   "1      198.18.1.1:8080/TCP     active       local\n"
			   "2      198.18.1.2:8080/TCP     terminating  remote\n"
			   "3      198.18.1.3:53/UDP       gone         local\n";

	if (ASSERT_OK(err, "backend list text"))
		ASSERT_STREQ(t, want, "table");
	doc = parse(s);
	if (ASSERT_OK(err2, "backend list json") && ASSERT_NOT_NULL(doc, "parses") &&
	    ASSERT_EQ(json_object_array_length(doc), 3, "3 backends")) {
		e = json_object_array_get_idx(doc, 2);
		ASSERT_EQ(jint(e, "id"), 3, "id");
		ASSERT_EQ(jint(e, "port"), 53, "port");
		ASSERT_STREQ(jstr(e, "protocol"), "UDP", "protocol");
		ASSERT_STREQ(jstr(e, "state"), "gone", "state");
		ASSERT_TRUE(json_object_get_boolean(sl_json_get(e, "local")), "local");
		ASSERT_EQ(jint(json_object_array_get_idx(doc, 1), "node_id"), 3, "node id");
	}
	json_object_put(doc);
	free(t);
	free(s);
}

TEST(conntrack_absent_explained)
{
	struct insp_out o;
	struct insp *in;
	bool absent = false;
	int err;
	char *t = run("n1", INSP_FMT_TEXT, ct_list, &err);

	if (ASSERT_OK(err, "text") && ASSERT_NOT_NULL(t, "text out"))
		ASSERT_NOT_NULL(strstr(t, "no conntrack: neither sl_ct4_tcp_v1 nor sl_ct4_any_v1"),
				"explains the absent maps");
	free(t);
	in = insp_open(bpffs_a, "n1");
	if (!ASSERT_NOT_NULL(in, "open"))
		return;
	insp_out_init(&o, INSP_FMT_JSON);
	ASSERT_OK(insp_conntrack_list(in, &o, &absent), "json");
	ASSERT_TRUE(absent, "absent flag");
	ASSERT_STREQ(o.buf.data, "[]\n", "empty JSON array");
	insp_out_fini(&o);
	insp_close(in);
}

TEST(conntrack_list)
{
	struct json_object *doc, *e;
	int err, err2;
	char *t = run("n2", INSP_FMT_TEXT, ct_list, &err);
	char *s = run("n2", INSP_FMT_JSON, ct_list, &err2);

	if (ASSERT_OK(err, "text") && ASSERT_NOT_NULL(t, "text out")) {
		ASSERT_NOT_NULL(strstr(t, "TCP   fwd   198.18.0.99:40000 -> 198.18.0.10:30080"
					  "      198.18.1.2:8080/TCP     3s      snat via "
					  "198.18.0.10:61001\n"),
				"TCP entry line");
		ASSERT_NOT_NULL(strstr(t, "UDP   fwd   198.18.0.98:5353 -> 198.18.0.10:30053"),
				"UDP entry");
		ASSERT_NOT_NULL(strstr(t, "120s    expired\n"), "UDP entry past its lifetime");
	}
	doc = parse(s);
	if (ASSERT_OK(err2, "json") && ASSERT_NOT_NULL(doc, "parses") &&
	    ASSERT_EQ(json_object_array_length(doc), 2, "2 entries")) {
		/* Sorted by key: 198.18.0.98 before 198.18.0.99. */
		e = json_object_array_get_idx(doc, 1);
		ASSERT_STREQ(jstr(e, "protocol"), "TCP", "protocol");
		ASSERT_STREQ(jstr(sl_json_get(e, "src"), "address"), "198.18.0.99", "src");
		ASSERT_EQ(jint(sl_json_get(e, "dst"), "port"), 30080, "dst port");
		ASSERT_EQ(jint(sl_json_get(e, "backend"), "id"), 2, "backend id");
		ASSERT_EQ(jint(sl_json_get(e, "snat"), "port"), 61001, "snat port");
		ASSERT_EQ(jint(e, "age_s"), 3, "age");
		ASSERT_FALSE(json_object_get_boolean(sl_json_get(e, "expired")), "live");
		ASSERT_TRUE(json_object_get_boolean(
				    sl_json_get(json_object_array_get_idx(doc, 0), "expired")),
			    "UDP expired");
	}
	json_object_put(doc);
	free(t);
	free(s);
}

TEST(counters_summed_over_cpus)
{
	struct json_object *doc, *e;
	int err, err2;
	char *t = run("n1", INSP_FMT_TEXT, insp_counters, &err);
	char *s = run("n2", INSP_FMT_JSON, insp_counters, &err2);

	if (ASSERT_OK(err, "text") && ASSERT_NOT_NULL(t, "out")) {
		ASSERT_NOT_NULL(
			strstr(t, "ok                      12            -             -\n"),
			"ok: 5 + 7 over two CPUs, no NodePort map");
		ASSERT_NOT_NULL(strstr(t, "no_backend              2 "), "no_backend");
		ASSERT_NULL(strstr(t, "unknown"), "unnamed zero indices hidden");
	}
	doc = parse(s);
	if (ASSERT_OK(err2, "json") && ASSERT_NOT_NULL(doc, "parses")) {
		e = json_object_array_get_idx(doc, 0);
		ASSERT_STREQ(jstr(e, "reason"), "ok", "first reason");
		ASSERT_EQ(jint(e, "socket_lb"), 12, "sum");
		ASSERT_EQ(jint(sl_json_get(e, "nodeport"), "packets"), 0, "nodeport packets");
	}
	json_object_put(doc);
	free(t);
	free(s);
}

TEST(open_errors_named)
{
	struct insp *in;
	int err;
	char *s;

	if (!ASSERT_OK(env_init(), "env"))
		return;
	errno = 0;
	ASSERT_NULL(insp_open(bpffs_a, "nope"), "unknown node");
	ASSERT_EQ(errno, ENOENT, "ENOENT");
	ASSERT_NULL(insp_open(bpffs_a, "../x"), "bad node name");
	ASSERT_EQ(errno, EINVAL, "EINVAL");
	ASSERT_NULL(insp_open(bpffs_a, NULL), "several nodes, none named");
	ASSERT_EQ(errno, EINVAL, "EINVAL");
	ASSERT_NULL(insp_open("/proc", "n1"), "not a bpffs");
	ASSERT_EQ(errno, ENOTSUP, "ENOTSUP");
	in = insp_open(bpffs_b, NULL);
	if (ASSERT_NOT_NULL(in, "the only node picked")) {
		const char *r = insp_root(in);

		ASSERT_TRUE(strlen(r) > 5 && !strcmp(r + strlen(r) - 5, "/solo"), "root is solo");
	}
	insp_close(in);
	insp_close(NULL);
	s = run("bad", INSP_FMT_TEXT, insp_service_list, &err);
	ASSERT_EQ(err, -EPROTO, "layout mismatch refused");
	free(s);
	s = run("empty", INSP_FMT_JSON, insp_backend_list, &err);
	ASSERT_EQ(err, -ENOENT, "missing map");
	free(s);
	s = run("empty", INSP_FMT_JSON, insp_counters, &err);
	ASSERT_EQ(err, -ENOENT, "no counter maps");
	free(s);
	ASSERT_EQ(insp_service_list(NULL, NULL), -EINVAL, "NULL");
}
