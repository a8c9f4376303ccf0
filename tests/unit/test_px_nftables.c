// SPDX-License-Identifier: Apache-2.0
/*
 * agent/px_nftables.c against the real kernel: the model (agent/lbinc.h) is
 * fed Services and EndpointSlices, the backend syncs into a private network
 * namespace (a forked child that unshare()s one), and `nft list table ip
 * kube-proxy` is read back and checked for kube-proxy's structure: names
 * (hashes checked against kube-proxy's own test expectations), dispatch maps,
 * numgen vmaps, traffic policies, affinity, no-endpoint verdicts, terminating
 * fallback; partial syncs touch only the changed Service (chain handles of the
 * others stay), removed Services vanish, cleanup() removes the table.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/lbinc.h"
#include "agent/proxier.h"
#include "harness.h"
#include "sluice/buf.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

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

/* A Service: type, clusterIP, one port (name, port, proto, nodePort or 0), extra spec
 * JSON (",\"...\"" or ""), LB ingress IP or NULL. */
static char *svc_json(const char *ns, const char *name, const char *type, const char *cip,
		      const char *pname, int port, const char *proto, int nodeport,
		      const char *extra, const char *lbip)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_printf(&b,
		      "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\","
		      "\"creationTimestamp\":\"2024-01-01T00:00:00Z\"},\"spec\":{\"type\":\"%s\","
		      "\"clusterIP\":\"%s\"%s,\"ports\":[{\"name\":\"%s\",\"port\":%d,"
		      "\"protocol\":\"%s\"",
		      ns, name, type, cip, extra, pname, port, proto);
	if (nodeport)
		sl_buf_printf(&b, ",\"nodePort\":%d", nodeport);
	sl_buf_puts(&b, "}]}");
	if (lbip)
		sl_buf_printf(&b, ",\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"%s\"}]}}",
			      lbip);
	sl_buf_puts(&b, "}");
	return b.data;
}

/* eps: "ip@node[:t]" entries (t = serving but terminating), port for all. */
static char *slice_json(const char *ns, const char *svc, const char *pname, int port,
			const char *proto, const char *const *eps, size_t n)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_printf(&b,
		      "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s-x\",\"labels\":{"
		      "\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
		      "\"ports\":[{\"name\":\"%s\",\"port\":%d,\"protocol\":\"%s\"}],"
		      "\"endpoints\":[",
		      ns, svc, svc, pname, port, proto);
	for (size_t i = 0; i < n; i++) {
		char ip[64], node[64];
		bool term = strstr(eps[i], ":t") != NULL;

		sscanf(eps[i], "%63[^@]@%63[^:]", ip, node);
		sl_buf_printf(&b,
			      "%s{\"addresses\":[\"%s\"],\"nodeName\":\"%s\",\"conditions\":"
			      "{\"ready\":%s,\"serving\":true,\"terminating\":%s}}",
			      i ? "," : "", ip, node, term ? "false" : "true",
			      term ? "true" : "false");
	}
	sl_buf_puts(&b, "]}");
	return b.data;
}

static bool set_svc(struct lbi *l, const char *key, char *json)
{
	bool ok = feed(l, K8S_KIND_SERVICE, key, json);

	free(json);
	return ok;
}

static bool set_slice(struct lbi *l, const char *key, char *json)
{
	bool ok = feed(l, K8S_KIND_ENDPOINTSLICE, key, json);

	free(json);
	return ok;
}

/* stdout of a shell command (caller frees). */
static char *run(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	struct sl_buf b = SL_BUF_INIT;
	char buf[4096];
	size_t n;

	if (!f)
		return strdup("");
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sl_buf_append(&b, buf, n);
	pclose(f);
	if (!b.data)
		return strdup("");
	return b.data;
}

static char *list_table(void)
{
	return run("nft -a list table ip kube-proxy 2>&1");
}

/* The body of a chain in `nft -a list` output (caller frees), or NULL. */
static char *chain_body(const char *out, const char *chain, long *handle)
{
	char pat[512];
	const char *s, *e;

	snprintf(pat, sizeof(pat), "\tchain %s { # handle ", chain);
	s = strstr(out, pat);
	if (!s)
		return NULL;
	if (handle)
		*handle = strtol(s + strlen(pat), NULL, 10);
	e = strstr(s, "\n\t}");
	return e ? strndup(s, (size_t)(e - s)) : NULL;
}

#define HAS(hay, needle, what)                                                  \
	do {                                                                    \
		if (!(hay) || !strstr((hay), (needle)))                         \
			(void)TEST_FAIL_AT("%s: missing \"%s\"", what, needle); \
	} while (0)
#define HASNT(hay, needle, what)                                                   \
	do {                                                                       \
		if ((hay) && strstr((hay), (needle)))                              \
			(void)TEST_FAIL_AT("%s: unexpected \"%s\"", what, needle); \
	} while (0)

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Runs fn in a forked child in a new network namespace; the child's verdict
 * becomes the test's. */
static void in_netns(void (*fn)(void))
{
	pid_t pid;
	int st = 0;

	/* PX_NOFORK=1: run in this process (only under `unshare -n`, for debuggers) */
	if (getenv("PX_NOFORK")) {
		fn();
		return;
	}
	pid = fork();

	if (pid == 0) {
		if (unshare(CLONE_NEWNET) || system("ip link set lo up >/dev/null 2>&1")) {
			fprintf(stderr, "  unshare(CLONE_NEWNET) failed: %s\n", strerror(errno));
			_exit(2);
		}
		test_failed_current = 0;
		fn();
		_exit(test_failed_current ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		(void)TEST_FAIL_AT("child in its own netns failed (status %d)", st);
}

static const char *node_json =
	"{\"metadata\":{\"name\":\"n1\"},\"status\":{\"addresses\":[{\"type\":\"InternalIP\","
	"\"address\":\"198.18.0.10\"}]}}";

static struct pxy *open_px(void)
{
	struct pxy_cfg cfg = {.node_name = "n1", .cluster_cidr = "198.18.64.0/18"};

	return pxy_nftables_ops.open(&cfg);
}

/* The world of the structural test. */
static bool build_world(struct lbi *l)
{
	static const char *web[] = {"198.18.64.1@n1", "198.18.64.2@n2", "198.18.64.3@n2"};
	static const char *etp[] = {"198.18.64.4@n1", "198.18.64.5@n2"};
	static const char *itp[] = {"198.18.64.6@n2"};
	static const char *itpl[] = {"198.18.64.11@n1", "198.18.64.12@n2"};
	static const char *aff[] = {"198.18.64.7@n2", "198.18.64.8@n2"};
	static const char *term[] = {"198.18.64.9@n2:t", "198.18.64.10@n2:t"};

	return feed(l, K8S_KIND_NODE, "n1", node_json) &&
	       set_svc(l, "ns1/svc1",
		       svc_json("ns1", "svc1", "ClusterIP", "198.18.128.1", "p80", 80, "TCP", 0, "",
				NULL)) &&
	       set_slice(l, "ns1/svc1-x", slice_json("ns1", "svc1", "p80", 8080, "TCP", web, 3)) &&
	       set_svc(l, "ns1/empty",
		       svc_json("ns1", "empty", "ClusterIP", "198.18.128.2", "", 80, "TCP", 0, "",
				NULL)) &&
	       set_svc(l, "ns2/svc2",
		       svc_json("ns2", "svc2", "LoadBalancer", "198.18.128.3", "p80", 80, "TCP",
				30080, ",\"externalTrafficPolicy\":\"Local\"", "198.18.9.1")) &&
	       set_slice(l, "ns2/svc2-x", slice_json("ns2", "svc2", "p80", 8080, "TCP", etp, 2)) &&
	       set_svc(l, "ns1/itp",
		       svc_json("ns1", "itp", "ClusterIP", "198.18.128.4", "dns", 53, "UDP", 0,
				",\"internalTrafficPolicy\":\"Local\"", NULL)) &&
	       set_slice(l, "ns1/itp-x", slice_json("ns1", "itp", "dns", 5353, "UDP", itp, 1)) &&
	       set_svc(l, "ns1/itpl",
		       svc_json("ns1", "itpl", "ClusterIP", "198.18.128.7", "p80", 80, "TCP", 0,
				",\"internalTrafficPolicy\":\"Local\"", NULL)) &&
	       set_slice(l, "ns1/itpl-x", slice_json("ns1", "itpl", "p80", 8080, "TCP", itpl, 2)) &&
	       set_svc(l, "ns1/aff",
		       svc_json("ns1", "aff", "ClusterIP", "198.18.128.5", "p80", 80, "TCP", 0,
				",\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{"
				"\"clientIP\":{\"timeoutSeconds\":60}}",
				NULL)) &&
	       set_slice(l, "ns1/aff-x", slice_json("ns1", "aff", "p80", 8080, "TCP", aff, 2)) &&
	       set_svc(l, "ns1/term",
		       svc_json("ns1", "term", "ClusterIP", "198.18.128.6", "p80", 80, "TCP", 0, "",
				NULL)) &&
	       set_slice(l, "ns1/term-x", slice_json("ns1", "term", "p80", 8080, "TCP", term, 2));
}

static bool plan(struct lbi *l, bool full)
{
	struct lbi_plan pl;
	bool ok = ASSERT_OK(lbi_plan(l, full, &pl), "lbi_plan");

	if (ok)
		lbi_plan_fini(&pl);
	return ok;
}

static void structure_body(void)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = NULL;
	struct pxy_stats st;
	char *out = NULL, *c = NULL;

	if (!ASSERT_NOT_NULL(l, "lbi") || !build_world(l) || !plan(l, true))
		goto done;
	p = open_px();
	if (!ASSERT_NOT_NULL(p, "open"))
		goto done;
	if (!ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "full sync"))
		goto done;
	out = list_table();
	if (getenv("PX_DUMP"))
		fputs(out, stderr);

	/* table, base chains, dispatch */
	HAS(out, "table ip kube-proxy { # handle", "table");
	HAS(out, "comment \"rules for kube-proxy\"", "table comment");
	HAS(out, "type filter hook input priority -110; policy accept;", "filter-input");
	HAS(out, "type filter hook output priority -90; policy accept;", "post-dnat");
	HAS(out, "type nat hook prerouting priority dstnat; policy accept;", "nat-prerouting");
	HAS(out, "type nat hook postrouting priority srcnat; policy accept;", "nat-postrouting");
	HAS(out, "ct state new jump nodeport-endpoints-check", "input jump");
	HAS(out, "ip daddr . meta l4proto . th dport vmap @service-ips", "services");
	HAS(out,
	    "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap "
	    "@service-nodeports",
	    "nodeports");
	HAS(out, "ip daddr @cluster-ips reject", "cluster-ips-check");
	HAS(out, "meta mark set meta mark | 0x00004000", "mark-for-masquerade");
	HAS(out, "masquerade fully-random", "masquerading");
	HAS(out, "type ipv4_addr . inet_proto . inet_service : verdict", "map type");

	/* ClusterIP with 3 endpoints: hash as kube-proxy's own tests expect it */
	HAS(out, "198.18.128.1 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80", "svc1 elem");
	c = chain_body(out, "service-ULMVA6XW-ns1/svc1/tcp/p80", NULL);
	if (ASSERT_NOT_NULL(c, "svc1 chain")) {
		HAS(c,
		    "ip daddr 198.18.128.1 tcp dport 80 ip saddr != 198.18.64.0/18 jump "
		    "mark-for-masquerade",
		    "svc1 masq");
		HAS(c, "numgen random mod 3 vmap { 0 : goto endpoint-", "svc1 numgen");
		ASSERT_EQ(count(c, "goto endpoint-"), 3, "svc1 endpoints");
		HAS(c, "ns1/svc1/tcp/p80__198.18.64.3/8080 }", "svc1 last endpoint");
	}
	free(c);
	c = NULL;
	HAS(out, "ip saddr 198.18.64.2 jump mark-for-masquerade", "hairpin");
	HAS(out, "meta l4proto tcp dnat to 198.18.64.2:8080", "dnat");

	/* no endpoints: reject, with kube-proxy's element comment */
	HAS(out, "198.18.128.2 . tcp . 80 comment \"ns1/empty\" : goto reject-chain", "reject");
	HAS(out, "198.18.128.2", "cluster-ips has empty");

	/* eTP Local LoadBalancer + NodePort */
	HAS(out, "198.18.9.1 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80", "lb elem");
	HAS(out, "tcp . 30080 : goto external-42NFTM6N-ns2/svc2/tcp/p80", "nodeport elem");
	HAS(out, "198.18.128.3 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80", "svc2 cip");
	c = chain_body(out, "external-42NFTM6N-ns2/svc2/tcp/p80", NULL);
	if (ASSERT_NOT_NULL(c, "svc2 external chain")) {
		HAS(c, "ip saddr 198.18.64.0/18 goto service-42NFTM6N-ns2/svc2/tcp/p80",
		    "pod short circuit");
		HAS(c, "fib saddr type local jump mark-for-masquerade", "local masq");
		HAS(c, "fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80",
		    "local short circuit");
		HAS(c, "goto local-42NFTM6N-ns2/svc2/tcp/p80", "to local chain");
		HASNT(c, "\n\t\tjump mark-for-masquerade", "no blanket masq under eTP Local");
	}
	free(c);
	c = chain_body(out, "local-42NFTM6N-ns2/svc2/tcp/p80", NULL);
	if (ASSERT_NOT_NULL(c, "svc2 local chain"))
		HAS(c, "numgen random mod 1 vmap { 0 : goto endpoint-", "local numgen");
	free(c);
	c = chain_body(out, "service-42NFTM6N-ns2/svc2/tcp/p80", NULL);
	if (ASSERT_NOT_NULL(c, "svc2 cluster chain"))
		HAS(c, "numgen random mod 2 vmap", "cluster numgen");
	free(c);
	c = NULL;

	/* iTP Local without a local endpoint: drop, no chains */
	HAS(out, "198.18.128.4 . udp . 53 comment \"ns1/itp:dns\" : drop", "itp drop");
	HASNT(out, "ns1/itp/udp/dns", "no itp chains");

	/* iTP Local with a local endpoint: the local- chain only, with the masquerade rule */
	HAS(out, "198.18.128.7 . tcp . 80 : goto local-", "itpl elem");
	/* one policy chain (local-, no service-) and one endpoint chain, named once in the vmap */
	ASSERT_EQ(count(out, "ns1/itpl/tcp/p80 {"), 1, "itpl policy chains");
	ASSERT_EQ(count(out, "ns1/itpl/tcp/p80__"), 2, "itpl endpoint chain and its reference");
	{
		const char *k = strstr(out, "\tchain local-");

		while (k && !strstr(k, "ns1/itpl/tcp/p80 {"))
			k = strstr(k + 1, "\tchain local-");
		ASSERT_NOT_NULL(k, "itpl local chain");
	}
	HASNT(out, "ns1/itpl/tcp/p80__198.18.64.12/8080", "no chain for the remote endpoint");
	HAS(out,
	    "ip daddr 198.18.128.7 tcp dport 80 ip saddr != 198.18.64.0/18 jump "
	    "mark-for-masquerade",
	    "itpl masq");

	/* ClientIP affinity: per-endpoint sets with the timeout */
	HAS(out, "set affinity-", "affinity set");
	HAS(out, "flags dynamic,timeout", "affinity flags");
	HAS(out, "timeout 1m", "affinity timeout");
	HAS(out, "ip saddr @affinity-", "affinity lookup");
	HAS(out, "update @affinity-", "affinity update");
	ASSERT_EQ(count(out, "\tset affinity-"), 2, "two affinity sets");

	/* serving-terminating fallback */
	HAS(out, "ns1/term/tcp/p80__198.18.64.9/8080", "terminating endpoint 1");
	HAS(out, "meta l4proto tcp dnat to 198.18.64.10:8080", "terminating endpoint 2");

	pxy_nftables_ops.stats(p, &st);
	ASSERT_EQ(st.syncs, 1, "syncs");
	ASSERT_EQ(st.services_rendered, 7, "rendered");
	ASSERT_TRUE(st.rules > 40, "rules+elements counted");

	/* an incremental sync with no change sends nothing and renders nothing */
	if (plan(l, false) && ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "noop sync")) {
		pxy_nftables_ops.stats(p, &st);
		ASSERT_EQ(st.services_rendered, 0, "noop rendered");
	}
	/* a full sync again over an existing table works (flush-and-rebuild) */
	if (plan(l, true))
		ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "second full sync");
done:
	free(out);
	pxy_nftables_ops.close(p);
	lbi_free(l);
}

TEST(structure)
{
	in_netns(structure_body);
}

static void incremental_body(void)
{
	static const char *two[] = {"198.18.64.1@n1", "198.18.64.2@n2"};
	static const char *three[] = {"198.18.64.1@n1", "198.18.64.2@n2", "198.18.64.3@n2"};
	struct lbi *l = lbi_new("n1");
	struct pxy *p = NULL;
	struct pxy_stats st;
	char *out = NULL, *c;
	long h_svc2 = -1, h_svc2b = -2, h_svc1 = -1, h_svc1b = -1;

	if (!ASSERT_NOT_NULL(l, "lbi") || !build_world(l) || !plan(l, true))
		goto done;
	p = open_px();
	if (!ASSERT_NOT_NULL(p, "open") ||
	    !ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "full sync"))
		goto done;
	out = list_table();
	free(chain_body(out, "service-42NFTM6N-ns2/svc2/tcp/p80", &h_svc2));
	free(chain_body(out, "service-ULMVA6XW-ns1/svc1/tcp/p80", &h_svc1));
	free(out);
	out = NULL;

	/* svc1 scales to 2 endpoints, then back to 3 */
	if (!set_slice(l, "ns1/svc1-x", slice_json("ns1", "svc1", "p80", 8080, "TCP", two, 2)) ||
	    !plan(l, false) || !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "partial sync"))
		goto done;
	pxy_nftables_ops.stats(p, &st);
	ASSERT_EQ(st.services_rendered, 1, "only svc1 re-rendered");
	out = list_table();
	free(chain_body(out, "service-42NFTM6N-ns2/svc2/tcp/p80", &h_svc2b));
	ASSERT_EQ(h_svc2b, h_svc2, "svc2's chain untouched (same handle)");
	c = chain_body(out, "service-ULMVA6XW-ns1/svc1/tcp/p80", &h_svc1b);
	ASSERT_EQ(h_svc1b, h_svc1, "svc1's chain kept, refilled");
	if (ASSERT_NOT_NULL(c, "svc1 chain"))
		HAS(c, "numgen random mod 2 vmap", "svc1 now 2 endpoints");
	free(c);
	HASNT(out, "ns1/svc1/tcp/p80__198.18.64.3/8080", "removed endpoint chain deleted");
	free(out);
	out = NULL;

	if (!set_slice(l, "ns1/svc1-x", slice_json("ns1", "svc1", "p80", 8080, "TCP", three, 3)) ||
	    !plan(l, false) || !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "partial sync 2"))
		goto done;
	out = list_table();
	HAS(out, "ns1/svc1/tcp/p80__198.18.64.3/8080", "endpoint chain back");
	free(out);
	out = NULL;

	/* svc2 loses its only local endpoint: eTP Local now drops external traffic */
	{
		static const char *remote[] = {"198.18.64.5@n2"};

		if (!set_slice(l, "ns2/svc2-x",
			       slice_json("ns2", "svc2", "p80", 8080, "TCP", remote, 1)) ||
		    !plan(l, false) || !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "etp sync"))
			goto done;
		out = list_table();
		HAS(out, "198.18.9.1 . tcp . 80 comment \"ns2/svc2:p80\" : drop", "lb drop");
		HAS(out, "tcp . 30080 comment \"ns2/svc2:p80\" : drop", "nodeport drop");
		HASNT(out, "local-42NFTM6N-ns2/svc2/tcp/p80", "local chain gone");
		c = chain_body(out, "external-42NFTM6N-ns2/svc2/tcp/p80", NULL);
		if (ASSERT_NOT_NULL(c, "external chain stays for the short circuit"))
			HASNT(c, "goto local-", "no policy goto");
		free(c);
		free(out);
		out = NULL;
	}

	/* the affinity timeout changes: the sets are re-created with it in the same batch */
	if (!set_svc(l, "ns1/aff",
		     svc_json("ns1", "aff", "ClusterIP", "198.18.128.5", "p80", 80, "TCP", 0,
			      ",\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{"
			      "\"clientIP\":{\"timeoutSeconds\":120}}",
			      NULL)) ||
	    !plan(l, false) || !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "timeout sync"))
		goto done;
	out = list_table();
	ASSERT_EQ(count(out, "timeout 2m"), 2, "both affinity sets with the new timeout");
	ASSERT_EQ(count(out, "update @affinity-"), 2, "update rules refer to them");
	free(out);
	out = NULL;

	/* a removed Service: its chains, sets and elements vanish */
	if (!feed(l, K8S_KIND_SERVICE, "ns1/aff", NULL) || !plan(l, false) ||
	    !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "removal sync"))
		goto done;
	out = list_table();
	HASNT(out, "ns1/aff/", "aff chains gone");
	HASNT(out, "affinity-", "aff sets gone");
	HASNT(out, "198.18.128.5", "aff elements gone");
	HAS(out, "198.18.128.1 . tcp . 80", "others stay");
	free(out);
	out = NULL;

	/* cleanup removes the table; a second cleanup finds nothing */
	ASSERT_OK(pxy_nftables_ops.cleanup(), "cleanup");
	out = run("nft list tables 2>&1");
	HASNT(out, "kube-proxy", "table gone");
	ASSERT_OK(pxy_nftables_ops.cleanup(), "cleanup without table");
done:
	free(out);
	pxy_nftables_ops.close(p);
	lbi_free(l);
}

TEST(incremental)
{
	in_netns(incremental_body);
}

/* A sync after someone deleted the table fails with the kernel's error (the
 * agent then asks for full), and the full sync recovers. */
static void recover_body(void)
{
	static const char *one[] = {"198.18.64.1@n1"};
	struct lbi *l = lbi_new("n1");
	struct pxy *p = NULL;
	struct pxy_stats st;
	char *out = NULL;

	if (!ASSERT_NOT_NULL(l, "lbi") || !build_world(l) || !plan(l, true))
		goto done;
	p = open_px();
	if (!ASSERT_NOT_NULL(p, "open") ||
	    !ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "full sync"))
		goto done;
	free(run("nft delete table ip kube-proxy"));
	if (!set_slice(l, "ns1/svc1-x", slice_json("ns1", "svc1", "p80", 8080, "TCP", one, 1)) ||
	    !plan(l, false))
		goto done;
	ASSERT_ERR(pxy_nftables_ops.sync(p, l, false), "partial sync into a missing table");
	pxy_nftables_ops.stats(p, &st);
	ASSERT_EQ(st.sync_errors, 1, "error counted");
	if (plan(l, true) && ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "full recovers")) {
		out = list_table();
		HAS(out, "numgen random mod 1 vmap", "svc1 with one endpoint");
	}
done:
	free(out);
	pxy_nftables_ops.close(p);
	lbi_free(l);
}

TEST(recover_after_failure)
{
	in_netns(recover_body);
}

/* Scale: N ClusterIP Services with 10 endpoints each (N = 1000, or PX_SCALE):
 * one full sync, then one endpoint removed from one Service and a partial
 * sync that renders that Service only. Prints the timings (for
 * docs/dataplanes.md); checks the element counts and the partial sync's size. */
static void scale_body(void)
{
	const char *env = getenv("PX_SCALE");
	int n = env ? atoi(env) : 1000;
	struct lbi *l = lbi_new("n1");
	struct pxy *p = NULL;
	struct pxy_stats st;
	char key[64], name[32], cip[32], *out = NULL;
	const char *eps[10];
	char epbuf[10][48];
	double full_s, full_prog;

	if (!ASSERT_NOT_NULL(l, "lbi") || !feed(l, K8S_KIND_NODE, "n1", node_json))
		goto done;
	for (int i = 0; i < 10; i++)
		eps[i] = epbuf[i];
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		snprintf(key, sizeof(key), "ns1/s%d", i);
		snprintf(cip, sizeof(cip), "198.18.%d.%d", 128 + i / 250, 1 + i % 250);
		for (int e = 0; e < 10; e++) {
			int a = (i * 10 + e) % 16000;

			snprintf(epbuf[e], sizeof(epbuf[e]), "198.18.%d.%d@%s", 64 + a / 250,
				 1 + a % 250, e ? "n2" : "n1");
		}
		if (!set_svc(l, key,
			     svc_json("ns1", name, "ClusterIP", cip, "http", 80, "TCP", 0, "",
				      NULL)))
			goto done;
		snprintf(key, sizeof(key), "ns1/s%d-x", i);
		if (!set_slice(l, key, slice_json("ns1", name, "http", 8080, "TCP", eps, 10)))
			goto done;
	}
	p = open_px();
	if (!ASSERT_NOT_NULL(p, "open") || !plan(l, true) ||
	    !ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "full sync"))
		goto done;
	pxy_nftables_ops.stats(p, &st);
	full_s = st.last_sync_s, full_prog = st.last_program_s;
	ASSERT_EQ(st.services_rendered, n, "all rendered");
	out = run("nft list map ip kube-proxy service-ips | grep -c ' : goto service-'");
	ASSERT_EQ(atoi(out), n, "one service-ips element per Service");
	free(out);
	out = NULL;

	/* s7 loses an endpoint */
	for (int e = 0; e < 9; e++) {
		int a = (7 * 10 + e) % 16000;

		snprintf(epbuf[e], sizeof(epbuf[e]), "198.18.%d.%d@%s", 64 + a / 250, 1 + a % 250,
			 e ? "n2" : "n1");
	}
	if (!set_slice(l, "ns1/s7-x", slice_json("ns1", "s7", "http", 8080, "TCP", eps, 9)) ||
	    !plan(l, false) || !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "partial sync"))
		goto done;
	pxy_nftables_ops.stats(p, &st);
	ASSERT_EQ(st.services_rendered, 1, "one Service rendered");
	fprintf(stderr,
		"  # %d Services x 10 endpoints: %llu rules+elements; full sync %.3f s (batch "
		"%.3f s); one-Service partial sync %.4f s (batch %.4f s)\n",
		n, (unsigned long long)st.rules, full_s, full_prog, st.last_sync_s,
		st.last_program_s);
	out = run("nft list chain ip kube-proxy service-$(nft list map ip kube-proxy service-ips "
		  "| grep -o 'service-[A-Z0-9]*-ns1/s7/tcp/http' | head -1 | cut -d- -f2-)");
	HAS(out, "numgen random mod 9 vmap", "s7 has 9 endpoints");
done:
	free(out);
	pxy_nftables_ops.close(p);
	lbi_free(l);
}

TEST(scale)
{
	in_netns(scale_body);
}

/* Plans l and checks the plan's problems: one TooManyEndpoints for ns1/big, or none. */
static bool plan_problems(struct lbi *l, bool too_many, const char *what)
{
	struct lbi_plan pl;
	bool ok;

	if (!ASSERT_OK(lbi_plan(l, false, &pl), "lbi_plan"))
		return false;
	ok = ASSERT_EQ(pl.n_problems, too_many ? 1 : 0, what);
	if (ok && too_many)
		ok = ASSERT_STREQ(pl.problems[0].reason, "TooManyEndpoints", what) &&
		     ASSERT_STREQ(pl.problems[0].name, "big", what);
	lbi_plan_fini(&pl);
	return ok;
}

/*
 * kube-proxy's nftables mode dispatches over every endpoint of a Service:
 * 10,000 endpoints are a numgen mod 10000 vmap and 10,000 endpoint chains.
 * The model's default bound is the eBPF slot block (4,096 and a
 * TooManyEndpoints problem); the agent gives this dataplane LBM_MAX_BACKENDS.
 */
static void ten_thousand_body(void)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = NULL;
	struct sl_buf b = SL_BUF_INIT;
	char key[64], *out = NULL;
	const char *chain_cmd =
		"nft list chain ip kube-proxy service-$(nft list map ip kube-proxy service-ips "
		"| grep -o 'service-[A-Z0-9]*-ns1/big/tcp/http' | head -1 | cut -d- -f2-)";
	const char *n_chains_cmd = "nft list table ip kube-proxy | grep -c 'chain endpoint-'";

	if (!ASSERT_NOT_NULL(l, "lbi") || !feed(l, K8S_KIND_NODE, "n1", node_json) ||
	    !set_svc(l, "ns1/big",
		     svc_json("ns1", "big", "ClusterIP", "198.18.128.50", "http", 80, "TCP", 0, "",
			      NULL)))
		goto done;
	/* slices of 100, as the EndpointSlice controller writes them */
	for (uint32_t k = 0; k < 100; k++) {
		sl_buf_reset(&b);
		sl_buf_printf(&b,
			      "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"big-%05u\","
			      "\"labels\":{\"kubernetes.io/service-name\":\"big\"}},"
			      "\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":"
			      "8080,\"protocol\":\"TCP\"}],\"endpoints\":[",
			      k);
		for (uint32_t i = k * 100; i < (k + 1) * 100; i++) {
			uint32_t a = 0xc6124001u + i; /* 198.18.64.1 + i */

			sl_buf_printf(&b, "%s{\"addresses\":[\"%u.%u.%u.%u\"],\"nodeName\":\"n2\"}",
				      i % 100 ? "," : "", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
				      a & 255);
		}
		sl_buf_puts(&b, "]}");
		snprintf(key, sizeof(key), "ns1/big-%05u", k);
		if (!feed(l, K8S_KIND_ENDPOINTSLICE, key, sl_buf_cstr(&b)))
			goto done;
	}
	p = open_px();
	if (!ASSERT_NOT_NULL(p, "open") || !plan_problems(l, true, "bpf bound: TooManyEndpoints") ||
	    !ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "sync, bpf bound"))
		goto done;
	out = run(chain_cmd);
	HAS(out, "numgen random mod 4096 vmap", "bpf bound");
	free(out);
	out = NULL;

	lbi_max_backends_set(l, LBM_MAX_BACKENDS);
	if (!plan_problems(l, false, "netfilter bound: no problem") ||
	    !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "sync, netfilter bound"))
		goto done;
	out = run(chain_cmd);
	HAS(out, "numgen random mod 10000 vmap", "every endpoint");
	HAS(out, " 9999 : goto endpoint-", "the last vmap element");
	free(out);
	out = NULL;
	out = run(n_chains_cmd);
	ASSERT_EQ(atoi(out), 10000, "one endpoint chain per endpoint");
done:
	free(out);
	sl_buf_fini(&b);
	pxy_nftables_ops.close(p);
	lbi_free(l);
}

TEST(ten_thousand_endpoints)
{
	in_netns(ten_thousand_body);
}

/* UDP: removing an endpoint deletes the conntrack entries DNATed to it (and
 * only those), as kube-proxy's conntrack cleanup does; otherwise a client that
 * keeps its source port keeps hitting the dead endpoint. */
static void udp_body(void)
{
	static const char *two[] = {"198.18.64.1@n1", "198.18.64.2@n1"};
	static const char *one[] = {"198.18.64.1@n1"};
	struct lbi *l = lbi_new("n1");
	struct pxy *p = NULL;
	char *out = NULL;

	/* the ClusterIP needs a route for a local socket to send to it (kube-proxy's
	 * nodes have a default route); a veth, not lo, like a node's uplink */
	if (system("ip addr add 198.18.64.1/32 dev lo && ip addr add 198.18.64.2/32 dev lo && "
		   "ip link add v0 type veth peer name v1 && ip link set v0 up && "
		   "ip link set v1 up && ip route add 198.18.128.0/20 dev v0")) {
		(void)TEST_FAIL_AT("netns setup failed");
		goto done;
	}
	if (!ASSERT_NOT_NULL(l, "lbi") || !feed(l, K8S_KIND_NODE, "n1", node_json) ||
	    !set_svc(l, "ns1/dns",
		     svc_json("ns1", "dns", "ClusterIP", "198.18.128.20", "dns", 53, "UDP", 0, "",
			      NULL)) ||
	    !set_slice(l, "ns1/dns-x", slice_json("ns1", "dns", "dns", 5353, "UDP", two, 2)) ||
	    !plan(l, true))
		goto done;
	p = open_px();
	if (!ASSERT_NOT_NULL(p, "open") || !ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "sync"))
		goto done;
	/* 40 flows (source ports): both endpoints get some (1 in 2^39 that one gets none) */
	free(run("python3 -c 'import socket\nfor i in range(40):\n s=socket.socket(socket.AF_INET,"
		 "socket.SOCK_DGRAM)\n s.sendto(b\"x\",(\"198.18.128.20\",53))'"));
	out = run("conntrack -L -p udp --dst-nat 198.18.64.2 2>/dev/null | grep -c '^udp'");
	ASSERT_TRUE(atoi(out) > 0, "flows to the endpoint about to go");
	free(out);
	out = NULL;

	if (!set_slice(l, "ns1/dns-x", slice_json("ns1", "dns", "dns", 5353, "UDP", one, 1)) ||
	    !plan(l, false) || !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "partial sync"))
		goto done;
	out = run("conntrack -L -p udp --dst-nat 198.18.64.2 2>/dev/null | grep -c '^udp'");
	ASSERT_EQ(atoi(out), 0, "flows to the removed endpoint deleted");
	free(out);
	out = run("conntrack -L -p udp --dst-nat 198.18.64.1 2>/dev/null | grep -c '^udp'");
	ASSERT_TRUE(atoi(out) > 0, "flows to the remaining endpoint kept");
done:
	free(out);
	pxy_nftables_ops.close(p);
	lbi_free(l);
}

TEST(udp_conntrack)
{
	in_netns(udp_body);
}

/* Two Services claim the same externalIP:port; the older one owns it. When it
 * goes away the other takes the element over in the same batch, although the
 * other's own fragment did not change (only its ownership did). */
static bool xip_owner(const char *out, const char *base)
{
	static const char el[] = "198.18.0.10 . tcp . 9090 : goto external-";
	const char *e = strstr(out, el);

	/* external-<8 hash chars>-<base> */
	return e && !strncmp(e + sizeof(el) - 1 + 9, base, strlen(base));
}

static void handover_body(void)
{
	static const char *ea[] = {"198.18.64.1@n1"};
	static const char *eb[] = {"198.18.64.2@n1"};
	struct lbi *l = lbi_new("n1");
	struct pxy *p = NULL;
	char *out = NULL;
	const char *xip = ",\"externalIPs\":[\"198.18.0.10\"]";

	if (!ASSERT_NOT_NULL(l, "lbi") || !feed(l, K8S_KIND_NODE, "n1", node_json) ||
	    !set_svc(l, "ns1/a",
		     svc_json("ns1", "a", "ClusterIP", "198.18.128.30", "p", 9090, "TCP", 0, xip,
			      NULL)) ||
	    !set_slice(l, "ns1/a-x", slice_json("ns1", "a", "p", 8080, "TCP", ea, 1)) ||
	    !set_svc(l, "ns1/b",
		     svc_json("ns1", "b", "ClusterIP", "198.18.128.31", "p", 9090, "TCP", 0, xip,
			      NULL)) ||
	    !set_slice(l, "ns1/b-x", slice_json("ns1", "b", "p", 8080, "TCP", eb, 1)) ||
	    !plan(l, true))
		goto done;
	p = open_px();
	if (!ASSERT_NOT_NULL(p, "open") || !ASSERT_OK(pxy_nftables_ops.sync(p, l, true), "sync"))
		goto done;
	out = list_table();
	HAS(out, "198.18.0.10 . tcp . 9090 : goto external-", "externalIP programmed");
	ASSERT_TRUE(xip_owner(out, "ns1/a/tcp/p"), "a owns it");
	free(out);
	out = NULL;
	if (!feed(l, K8S_KIND_SERVICE, "ns1/a", NULL) || !plan(l, false) ||
	    !ASSERT_OK(pxy_nftables_ops.sync(p, l, false), "partial sync"))
		goto done;
	out = list_table();
	HAS(out, "198.18.0.10 . tcp . 9090 : goto external-", "externalIP still programmed");
	HASNT(out, "ns1/a/", "a gone");
	HAS(out, "198.18.128.31 . tcp . 9090", "b's ClusterIP");
	ASSERT_TRUE(xip_owner(out, "ns1/b/tcp/p"), "b took it over");
done:
	free(out);
	pxy_nftables_ops.close(p);
	lbi_free(l);
}

TEST(conflict_handover)
{
	in_netns(handover_body);
}
