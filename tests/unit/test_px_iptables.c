// SPDX-License-Identifier: Apache-2.0
/*
 * agent/px_iptables.c: the kube-proxy-compatible iptables dataplane.
 *
 *  - lib/sha256.c against the FIPS 180-2 vectors, and the chain names against
 *    names kube-proxy's own tests assert (pkg/proxy/iptables/proxier_test.go:
 *    "ns1/svc1:p80" tcp = KUBE-SVC-XPGD46QRK7WJZT7O, its endpoint 10.180.0.1:80
 *    = KUBE-SEP-SXIVWICOYRO3J4NJ, ...).
 *  - Rendering (no kernel): Services and EndpointSlices go through the real
 *    model (lbi_service_set / lbi_slice_set / lbi_plan) and the restore text
 *    is checked line by line for each kube-proxy behaviour.
 *  - The kernel: in a private network namespace (forked child, unshare), a sync
 *    through the real iptables-restore, iptables-save shows the chains, a
 *    partial sync deletes a removed Service's chains, cleanup() leaves no
 *    KUBE-* chain and no jump. Skipped without root or iptables.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/lbinc.h"
#include "agent/proxier.h"
#include "agent/px_iptables.h"
#include "harness.h"
#include "sluice/buf.h"
#include "sluice/json.h"
#include "sluice/k8s.h"
#include "sluice/sha256.h"

#define CIDR "198.18.64.0/18"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* --- fixtures ------------------------------------------------------------------------------ */

static bool feed(struct lbi *l, enum k8s_kind kind, const char *key, const char *text)
{
	struct json_object *o = text ? sl_json_parse(text, strlen(text), NULL, 0) : NULL;
	void *typed = NULL;
	char err[256] = "";
	int rc;

	if (text && (!o || k8s_obj_decode(kind, o, &typed, err, sizeof(err))))
		return TEST_FAIL_AT("decode %s: %s", key, err);
	rc = kind == K8S_KIND_SERVICE	      ? lbi_service_set(l, key, typed)
	     : kind == K8S_KIND_ENDPOINTSLICE ? lbi_slice_set(l, key, typed)
					      : lbi_node_set(l, typed);
	k8s_obj_free(kind, typed);
	json_object_put(o);
	return ASSERT_OK(rc, key);
}

/* A Service: extra is spliced into spec (starting with ','), status may be NULL. */
static bool svc(struct lbi *l, const char *ns, const char *name, const char *type, const char *cip,
		const char *ports, const char *extra, const char *status)
{
	char key[128], text[2048];

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	snprintf(text, sizeof(text),
		 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"creationTimestamp\":"
		 "\"2024-01-01T00:00:00Z\"},\"spec\":{\"type\":\"%s\",\"clusterIP\":\"%s\","
		 "\"ports\":[%s]%s}%s%s%s}",
		 ns, name, type, cip, ports, extra ? extra : "", status ? ",\"status\":" : "",
		 status ? status : "", "");
	return feed(l, K8S_KIND_SERVICE, key, text);
}

/* An endpoint for slice(): "ip,node,ready,serving,terminating". */
static bool slice(struct lbi *l, const char *ns, const char *name, const char *svcname,
		  const char *ports, const char *const *eps, size_t n)
{
	char key[128], text[4096];
	size_t off;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	off = (size_t)snprintf(text, sizeof(text),
			       "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"labels\":{"
			       "\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
			       "\"ports\":[%s],\"endpoints\":[",
			       ns, name, svcname, ports);
	for (size_t i = 0; i < n; i++) {
		char ip[32], node[32], r[8], s[8], t[8];

		if (sscanf(eps[i], "%31[^,],%31[^,],%7[^,],%7[^,],%7s", ip, node, r, s, t) != 5)
			return TEST_FAIL_AT("bad endpoint spec %s", eps[i]);
		off += (size_t)snprintf(text + off, sizeof(text) - off,
					"%s{\"addresses\":[\"%s\"],\"nodeName\":\"%s\","
					"\"conditions\":{\"ready\":%s,\"serving\":%s,"
					"\"terminating\":%s}}",
					i ? "," : "", ip, node, r, s, t);
	}
	snprintf(text + off, sizeof(text) - off, "]}");
	return feed(l, K8S_KIND_ENDPOINTSLICE, key, text);
}

static bool node(struct lbi *l, const char *ip)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "{\"metadata\":{\"name\":\"n1\"},\"status\":{\"addresses\":[{\"type\":"
		 "\"InternalIP\",\"address\":\"%s\"}]}}",
		 ip);
	return feed(l, K8S_KIND_NODE, "n1", text);
}

/* Plans l and renders one sync into out (reset first). */
static bool render(struct pxy *p, struct lbi *l, bool full, struct sl_buf *out)
{
	struct lbi_plan plan;

	sl_buf_reset(out);
	if (!ASSERT_OK(lbi_plan(l, false, &plan), "lbi_plan"))
		return false;
	lbi_plan_fini(&plan);
	return ASSERT_OK(pxy_ipt_render(p, l, full, NULL, out), "render");
}

static bool has_line(const struct sl_buf *b, const char *line)
{
	size_t n = strlen(line);

	for (const char *s = b->data; s && (s = strstr(s, line)); s++)
		if ((s == b->data || s[-1] == '\n') && (s[n] == '\n' || !s[n]))
			return true;
	return false;
}

static size_t count(const struct sl_buf *b, const char *needle)
{
	size_t n = 0;

	for (const char *s = b->data; s && (s = strstr(s, needle)); s++)
		n++;
	return n;
}

#define EXPECT_LINE(b, line)      \
	(has_line(b, line) ? true \
			   : TEST_FAIL_AT("missing line:\n    %s\n--- got:\n%s", line, (b)->data))
#define EXPECT_NO(b, needle)                         \
	(!strstr((b)->data ? (b)->data : "", needle) \
		 ? true                              \
		 : TEST_FAIL_AT("unexpected \"%s\"\n--- got:\n%s", needle, (b)->data))

static struct pxy *new_pxy(void)
{
	struct pxy_cfg cfg = {.node_name = "n1", .cluster_cidr = CIDR};

	return pxy_ipt_new(&cfg);
}

static const char *const ports_p80 = "{\"name\":\"p80\",\"port\":80,\"protocol\":\"TCP\"}";
static const char *const eports_p80 = "{\"name\":\"p80\",\"port\":8080,\"protocol\":\"TCP\"}";

/* --- hashes ------------------------------------------------------------------------------- */

static bool sha_is(const void *msg, size_t n, const char *hex)
{
	uint8_t d[SL_SHA256_LEN];
	char got[65];

	sl_sha256(msg, n, d);
	for (int i = 0; i < SL_SHA256_LEN; i++)
		snprintf(got + 2 * i, 3, "%02x", d[i]);
	return ASSERT_STREQ(got, hex, "sha256");
}

TEST(sha256_fips_vectors)
{
	static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	struct sl_sha256 c;
	uint8_t d[SL_SHA256_LEN];
	char *a = malloc(1000000);

	sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha_is(two_blocks, strlen(two_blocks),
	       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	if (!ASSERT_NOT_NULL(a, "malloc"))
		return;
	memset(a, 'a', 1000000);
	sha_is(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	/* Streaming in odd pieces gives the same digest. */
	sl_sha256_init(&c);
	for (size_t off = 0; off < 1000000; off += 777)
		sl_sha256_update(&c, a + off, off + 777 > 1000000 ? 1000000 - off : 777);
	sl_sha256_final(&c, d);
	ASSERT_EQ(d[0], 0xcd, "streamed digest[0]");
	ASSERT_EQ(d[31], 0xd0, "streamed digest[31]");
	free(a);
}

TEST(chain_names_match_kube_proxy)
{
	char n[32];

	/* Pairs from kubernetes/kubernetes pkg/proxy/iptables/proxier_test.go. */
	pxy_ipt_chain_name(n, "KUBE-SVC-", "ns1/svc1:p80", "tcp", NULL);
	ASSERT_STREQ(n, "KUBE-SVC-XPGD46QRK7WJZT7O", "ns1/svc1:p80");
	pxy_ipt_chain_name(n, "KUBE-SEP-", "ns1/svc1:p80", "tcp", "10.180.0.1:80");
	ASSERT_STREQ(n, "KUBE-SEP-SXIVWICOYRO3J4NJ", "ns1/svc1:p80 -> 10.180.0.1:80");
	pxy_ipt_chain_name(n, "KUBE-EXT-", "ns2/svc2:p80", "tcp", NULL);
	ASSERT_STREQ(n, "KUBE-EXT-GNZBNJ2PO5MGZ6GT", "ns2/svc2:p80");
	pxy_ipt_chain_name(n, "KUBE-SEP-", "ns4/svc4:p80", "tcp", "10.180.0.4:80");
	ASSERT_STREQ(n, "KUBE-SEP-UKSFD7AGPMPPLUHC", "ns4/svc4:p80 -> 10.180.0.4:80");
	pxy_ipt_chain_name(n, "KUBE-SEP-", "ns5/svc5:p80", "tcp", "10.180.0.3:80");
	ASSERT_STREQ(n, "KUBE-SEP-I77PXRDZVX7PMWMN", "ns5/svc5:p80 -> 10.180.0.3:80");
}

/* The real fixture of kube-proxy's test, through the model: same names, same rules. */
TEST(render_kube_proxy_fixture_ns1_svc1)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	const char *ep[] = {"10.180.0.1,n2,true,true,false"};

	if (!ASSERT_NOT_NULL(l, "lbi") || !ASSERT_NOT_NULL(p, "pxy"))
		goto out;
	if (!svc(l, "ns1", "svc1", "ClusterIP", "172.30.0.41", ports_p80, NULL, NULL) ||
	    !slice(l, "ns1", "svc1-a", "svc1",
		   "{\"name\":\"p80\",\"port\":80,\"protocol\":\"TCP\"}", ep, 1) ||
	    !render(p, l, true, &b))
		goto out;
	EXPECT_LINE(&b, "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp "
			"-p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O");
	EXPECT_LINE(&b,
		    "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster "
		    "IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s " CIDR " -j KUBE-MARK-MASQ");
	EXPECT_LINE(&b, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> "
			"10.180.0.1:80\" -j KUBE-SEP-SXIVWICOYRO3J4NJ");
	EXPECT_LINE(&b, "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s "
			"10.180.0.1 -j KUBE-MARK-MASQ");
	EXPECT_LINE(&b, "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p "
			"tcp -j DNAT --to-destination 10.180.0.1:80");
	EXPECT_LINE(&b, ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]");
	EXPECT_LINE(&b, ":KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]");
	/* The fixed chains. */
	EXPECT_LINE(&b, "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN");
	EXPECT_LINE(&b, "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000");
	EXPECT_LINE(&b, "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic "
			"requiring SNAT\" -j MASQUERADE --random-fully");
	EXPECT_LINE(&b, "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000");
	EXPECT_LINE(&b, "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m "
			"mark --mark 0x4000/0x4000 -j ACCEPT");
	/* The NodePort jump closes KUBE-SERVICES: nothing after it in nat but -X/COMMIT. */
	{
		const char *last = strstr(b.data, "-A KUBE-SERVICES -m comment --comment "
						  "\"kubernetes service nodeports; NOTE");
		ASSERT_NOT_NULL(last, "nodeports rule");
		ASSERT_TRUE(last && !strstr(last + 1, "-A KUBE-SERVICES"), "nodeports rule last");
	}
	ASSERT_TRUE(strstr(b.data, "*filter\n") == b.data, "filter first");
	ASSERT_EQ(count(&b, "COMMIT\n"), 2, "two tables");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

static void svc_chain(char *out, const char *prefix, const char *spn, const char *proto)
{
	pxy_ipt_chain_name(out, prefix, spn, proto, NULL);
}

TEST(render_cluster_ip_three_endpoints)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	const char *eps[] = {"198.18.64.1,n2,true,true,false", "198.18.64.2,n2,true,true,false",
			     "198.18.64.3,n3,true,true,false"};
	char h[32], line[512], s1[32], s2[32], s3[32];

	if (!svc(l, "a", "web", "ClusterIP", "198.18.128.10", ports_p80, NULL, NULL) ||
	    !slice(l, "a", "web-1", "web", eports_p80, eps, 3) || !render(p, l, true, &b))
		goto out;
	svc_chain(h, "KUBE-SVC-", "a/web:p80", "tcp");
	pxy_ipt_chain_name(s1, "KUBE-SEP-", "a/web:p80", "tcp", "198.18.64.1:8080");
	pxy_ipt_chain_name(s2, "KUBE-SEP-", "a/web:p80", "tcp", "198.18.64.2:8080");
	pxy_ipt_chain_name(s3, "KUBE-SEP-", "a/web:p80", "tcp", "198.18.64.3:8080");
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"a/web:p80 -> 198.18.64.1:8080\" -m statistic "
		 "--mode random --probability 0.3333333333 -j %s",
		 h, s1);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"a/web:p80 -> 198.18.64.2:8080\" -m statistic "
		 "--mode random --probability 0.5000000000 -j %s",
		 h, s2);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"a/web:p80 -> 198.18.64.3:8080\" -j %s", h, s3);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment a/web:p80 -m tcp -p tcp -j DNAT --to-destination "
		 "198.18.64.3:8080",
		 s3);
	EXPECT_LINE(&b, line);
	ASSERT_EQ(count(&b, "--probability"), 2, "n-1 statistic rules");
	EXPECT_NO(&b, "KUBE-EXT-"); /* not externally reachable */
	EXPECT_NO(&b, "KUBE-SVL-");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

TEST(render_no_endpoints_rejects)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	char h[32];

	if (!svc(l, "a", "empty", "NodePort", "198.18.128.11",
		 "{\"name\":\"p80\",\"port\":80,\"protocol\":\"TCP\",\"nodePort\":30011}", NULL,
		 NULL) ||
	    !render(p, l, true, &b))
		goto out;
	EXPECT_LINE(&b, "-A KUBE-SERVICES -m comment --comment \"a/empty:p80 has no endpoints\" -m "
			"tcp -p tcp -d 198.18.128.11 --dport 80 -j REJECT");
	EXPECT_LINE(&b, "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"a/empty:p80 has no "
			"endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30011 -j "
			"REJECT");
	svc_chain(h, "KUBE-SVC-", "a/empty:p80", "tcp");
	EXPECT_NO(&b, h);
	EXPECT_NO(&b, "-A KUBE-NODEPORTS -m comment --comment a/empty");
	/* The REJECT is in filter: nat has no rule for it. */
	EXPECT_NO(&b, "--dport 80 -j KUBE-");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

static const char *const lb_ports =
	"{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"nodePort\":30080}";
static const char *const lb_status = "{\"loadBalancer\":{\"ingress\":[{\"ip\":\"198.18.9.1\"}]}}";

TEST(render_etp_local_short_circuit)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	const char *eps[] = {"198.18.64.1,n1,true,true,false", "198.18.64.2,n2,true,true,false"};
	const char *remote[] = {"198.18.64.2,n2,true,true,false"};
	char svc_h[32], svl[32], ext[32], sep1[32], line[512];

	svc_chain(svc_h, "KUBE-SVC-", "a/lb:http", "tcp");
	svc_chain(svl, "KUBE-SVL-", "a/lb:http", "tcp");
	svc_chain(ext, "KUBE-EXT-", "a/lb:http", "tcp");
	pxy_ipt_chain_name(sep1, "KUBE-SEP-", "a/lb:http", "tcp", "198.18.64.1:8080");
	if (!svc(l, "a", "lb", "LoadBalancer", "198.18.128.12", lb_ports,
		 ",\"externalTrafficPolicy\":\"Local\",\"healthCheckNodePort\":32000", lb_status) ||
	    !slice(l, "a", "lb-1", "lb", "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}",
		   eps, 2) ||
	    !render(p, l, true, &b))
		goto out;
	snprintf(
		line, sizeof(line),
		"-A KUBE-SERVICES -m comment --comment \"a/lb:http loadbalancer IP\" -m tcp -p tcp "
		"-d 198.18.9.1 --dport 80 -j %s",
		ext);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A KUBE-NODEPORTS -m comment --comment a/lb:http -m tcp -p tcp --dport 30080 -j "
		 "%s",
		 ext);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"pod traffic for a/lb:http external destinations\" "
		 "-s " CIDR " -j %s",
		 ext, svc_h);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"masquerade LOCAL traffic for a/lb:http external "
		 "destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
		 ext);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"route LOCAL traffic for a/lb:http external "
		 "destinations\" -m addrtype --src-type LOCAL -j %s",
		 ext, svc_h);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line), "-A %s -j %s", ext, svl);
	EXPECT_LINE(&b, line);
	/* SVL: only the local endpoint, no cascade; SVC: both. */
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"a/lb:http -> 198.18.64.1:8080\" -j %s", svl, sep1);
	EXPECT_LINE(&b, line);
	ASSERT_EQ(count(&b, "--probability 0.5000000000"), 1, "SVC cascade over 2");
	EXPECT_LINE(&b, "-A KUBE-NODEPORTS -m comment --comment \"a/lb:http health check node "
			"port\" -m tcp -p tcp --dport 32000 -j ACCEPT");
	EXPECT_NO(&b, "KUBE-EXTERNAL-SERVICES -m comment");

	/* No local endpoint left: outside clients are dropped in filter, the short
	 * circuit for pods and the host stays, KUBE-SVL goes. */
	if (!slice(l, "a", "lb-1", "lb", "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}",
		   remote, 1) ||
	    !render(p, l, false, &b))
		goto out;
	EXPECT_LINE(&b, "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"a/lb:http has no local "
			"endpoints\" -m tcp -p tcp -d 198.18.9.1 --dport 80 -j DROP");
	EXPECT_LINE(&b,
		    "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"a/lb:http has no local "
		    "endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP");
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"route LOCAL traffic for a/lb:http external "
		 "destinations\" -m addrtype --src-type LOCAL -j %s",
		 ext, svc_h);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line), "-A %s -j %s", ext, svl);
	ASSERT_FALSE(has_line(&b, line), "no jump to KUBE-SVL");
	snprintf(line, sizeof(line), "-X %s", svl);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line), "-X %s", sep1);
	EXPECT_LINE(&b, line);
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

TEST(render_etp_cluster_nodeport_and_external_ip)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	const char *eps[] = {"198.18.64.1,n2,true,true,false"};
	char svc_h[32], ext[32], line[512];

	svc_chain(svc_h, "KUBE-SVC-", "a/np:http", "tcp");
	svc_chain(ext, "KUBE-EXT-", "a/np:http", "tcp");
	if (!node(l, "198.18.0.10") ||
	    !svc(l, "a", "np", "NodePort", "198.18.128.13", lb_ports,
		 ",\"externalIPs\":[\"198.18.0.10\",\"198.18.0.99\"]", NULL) ||
	    !slice(l, "a", "np-1", "np", "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}",
		   eps, 1) ||
	    !render(p, l, true, &b))
		goto out;
	snprintf(line, sizeof(line),
		 "-A KUBE-SERVICES -m comment --comment \"a/np:http external IP\" -m tcp -p tcp -d "
		 "198.18.0.10 --dport 80 -j %s",
		 ext);
	EXPECT_LINE(&b, line);
	EXPECT_NO(&b, "198.18.0.99"); /* not this node's: not captured (model.h) */
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"masquerade traffic for a/np:http external "
		 "destinations\" -j KUBE-MARK-MASQ",
		 ext);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line), "-A %s -j %s", ext, svc_h);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A KUBE-NODEPORTS -m comment --comment a/np:http -m tcp -p tcp --dport 30080 -j "
		 "%s",
		 ext);
	EXPECT_LINE(&b, line);
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

TEST(render_itp_local)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	const char *remote[] = {"198.18.64.2,n2,true,true,false"};
	const char *both[] = {"198.18.64.1,n1,true,true,false", "198.18.64.2,n2,true,true,false"};
	char svl[32], svc_h[32], line[512];

	svc_chain(svl, "KUBE-SVL-", "a/loc:p80", "tcp");
	svc_chain(svc_h, "KUBE-SVC-", "a/loc:p80", "tcp");
	if (!svc(l, "a", "loc", "ClusterIP", "198.18.128.14", ports_p80,
		 ",\"internalTrafficPolicy\":\"Local\"", NULL) ||
	    !slice(l, "a", "loc-1", "loc", eports_p80, remote, 1) || !render(p, l, true, &b))
		goto out;
	/* Endpoints elsewhere only: kube-proxy DROPs (not REJECT). */
	EXPECT_LINE(&b, "-A KUBE-SERVICES -m comment --comment \"a/loc:p80 has no local "
			"endpoints\" -m tcp -p tcp -d 198.18.128.14 --dport 80 -j DROP");
	EXPECT_NO(&b, svl);
	EXPECT_NO(&b, svc_h);

	if (!slice(l, "a", "loc-1", "loc", eports_p80, both, 2) || !render(p, l, false, &b))
		goto out;
	snprintf(line, sizeof(line),
		 "-A KUBE-SERVICES -m comment --comment \"a/loc:p80 cluster IP\" -m tcp -p tcp -d "
		 "198.18.128.14 --dport 80 -j %s",
		 svl);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"a/loc:p80 cluster IP\" -m tcp -p tcp -d "
		 "198.18.128.14 --dport 80 ! -s " CIDR " -j KUBE-MARK-MASQ",
		 svl);
	EXPECT_LINE(&b, line);
	EXPECT_NO(&b, "--probability"); /* one local endpoint */
	EXPECT_NO(&b, svc_h);		/* the cluster-wide set is never used */
	EXPECT_NO(&b, "198.18.64.2");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

TEST(render_affinity)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	const char *eps[] = {"198.18.64.1,n2,true,true,false", "198.18.64.2,n2,true,true,false"};
	char h[32], s1[32], line[512];

	svc_chain(h, "KUBE-SVC-", "a/aff:p80", "tcp");
	pxy_ipt_chain_name(s1, "KUBE-SEP-", "a/aff:p80", "tcp", "198.18.64.1:8080");
	if (!svc(l, "a", "aff", "ClusterIP", "198.18.128.15", ports_p80,
		 ",\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{\"clientIP\":{"
		 "\"timeoutSeconds\":600}}",
		 NULL) ||
	    !slice(l, "a", "aff-1", "aff", eports_p80, eps, 2) || !render(p, l, true, &b))
		goto out;
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment \"a/aff:p80 -> 198.18.64.1:8080\" -m recent --name %s "
		 "--rcheck --seconds 600 --reap -j %s",
		 h, s1, s1);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line),
		 "-A %s -m comment --comment a/aff:p80 -m recent --name %s --set -m tcp -p tcp -j "
		 "DNAT --to-destination 198.18.64.1:8080",
		 s1, s1);
	EXPECT_LINE(&b, line);
	ASSERT_EQ(count(&b, "--rcheck"), 2, "one check per endpoint");
	/* Affinity checks come before the cascade. */
	ASSERT_TRUE(strstr(b.data, "--rcheck") < strstr(b.data, "--probability"), "order");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

TEST(render_terminating_fallback)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	const char *term[] = {"198.18.64.1,n2,false,true,true", "198.18.64.2,n2,false,false,true"};
	const char *mixed[] = {"198.18.64.1,n2,false,true,true", "198.18.64.3,n2,true,true,false"};
	char h[32], line[256];

	if (!svc(l, "a", "t", "ClusterIP", "198.18.128.16", ports_p80, NULL, NULL) ||
	    !slice(l, "a", "t-1", "t", eports_p80, term, 2) || !render(p, l, true, &b))
		goto out;
	/* Only serving-terminating ones: used; the non-serving one never. */
	svc_chain(h, "KUBE-SVC-", "a/t:p80", "tcp");
	snprintf(line, sizeof(line),
		 "-A KUBE-SERVICES -m comment --comment \"a/t:p80 cluster IP\" -m tcp -p tcp -d "
		 "198.18.128.16 --dport 80 -j %s",
		 h);
	EXPECT_LINE(&b, line);
	ASSERT_TRUE(strstr(b.data, "--to-destination 198.18.64.1:8080") != NULL, "fallback");
	EXPECT_NO(&b, "198.18.64.2");
	/* A ready endpoint appears: the terminating one leaves the set. */
	if (!slice(l, "a", "t-1", "t", eports_p80, mixed, 2) || !render(p, l, false, &b))
		goto out;
	ASSERT_TRUE(strstr(b.data, "--to-destination 198.18.64.3:8080") != NULL, "ready one");
	ASSERT_FALSE(strstr(b.data, "--to-destination 198.18.64.1:8080") != NULL, "not the old");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

TEST(render_partial_sync)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	const char *ea[] = {"198.18.64.1,n2,true,true,false"};
	const char *eb[] = {"198.18.64.2,n2,true,true,false", "198.18.64.3,n2,true,true,false"};
	const char *eb2[] = {"198.18.64.2,n2,true,true,false"};
	char ha[32], hb[32], sa[32], sb3[32], line[256];
	struct pxy_stats st;

	svc_chain(ha, "KUBE-SVC-", "a/one:p80", "tcp");
	svc_chain(hb, "KUBE-SVC-", "a/two:p80", "tcp");
	pxy_ipt_chain_name(sa, "KUBE-SEP-", "a/one:p80", "tcp", "198.18.64.1:8080");
	pxy_ipt_chain_name(sb3, "KUBE-SEP-", "a/two:p80", "tcp", "198.18.64.3:8080");
	if (!svc(l, "a", "one", "ClusterIP", "198.18.128.21", ports_p80, NULL, NULL) ||
	    !svc(l, "a", "two", "ClusterIP", "198.18.128.22", ports_p80, NULL, NULL) ||
	    !slice(l, "a", "one-1", "one", eports_p80, ea, 1) ||
	    !slice(l, "a", "two-1", "two", eports_p80, eb, 2) || !render(p, l, true, &b))
		goto out;
	pxy_iptables_ops.stats(p, &st);
	ASSERT_EQ(st.services_rendered, 2, "first sync renders both");

	/* Nothing changed: only the chains rewritten every sync. */
	if (!render(p, l, false, &b))
		goto out;
	snprintf(line, sizeof(line), ":%s - [0:0]", ha);
	ASSERT_FALSE(has_line(&b, line), "unchanged one not declared");
	snprintf(line, sizeof(line),
		 "-A KUBE-SERVICES -m comment --comment \"a/one:p80 cluster "
		 "IP\" -m tcp -p tcp -d 198.18.128.21 --dport 80 -j %s",
		 ha);
	EXPECT_LINE(&b, line); /* KUBE-SERVICES is whole every time */
	pxy_iptables_ops.stats(p, &st);
	ASSERT_EQ(st.services_rendered, 0, "no service re-rendered");
	ASSERT_TRUE(st.rules >= 11, "rule count covers unchanged chains");

	/* two loses an endpoint: only two's chains, its gone endpoint -X'd. */
	if (!slice(l, "a", "two-1", "two", eports_p80, eb2, 1) || !render(p, l, false, &b))
		goto out;
	snprintf(line, sizeof(line), ":%s - [0:0]", hb);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line), ":%s - [0:0]", ha);
	ASSERT_FALSE(has_line(&b, line), "one untouched");
	EXPECT_NO(&b, sa);
	snprintf(line, sizeof(line), "-X %s", sb3);
	EXPECT_LINE(&b, line);
	pxy_iptables_ops.stats(p, &st);
	ASSERT_EQ(st.services_rendered, 1, "one service re-rendered");

	/* one goes away: its chains are flushed and deleted. */
	if (!feed(l, K8S_KIND_SERVICE, "a/one", NULL) || !render(p, l, false, &b))
		goto out;
	snprintf(line, sizeof(line), ":%s - [0:0]", ha);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line), "-X %s", ha);
	EXPECT_LINE(&b, line);
	snprintf(line, sizeof(line), "-X %s", sa);
	EXPECT_LINE(&b, line);
	EXPECT_NO(&b, "a/one:p80 cluster IP");
	/* -X come after every rule of the nat table. */
	ASSERT_TRUE(strstr(b.data, "-X ") > strstr(b.data, "NOTE: this must be the last"),
		    "deletes last");

	/* A full sync with the kernel's list deletes a previous run's leftovers. */
	sl_buf_reset(&b);
	{
		char save[1024];

		/* As iptables-save prints it: one jump already there. */
		snprintf(
			save, sizeof(save),
			"*filter\n:INPUT ACCEPT [0:0]\n:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]\nCOMMIT\n"
			"*nat\n:PREROUTING ACCEPT [0:0]\n:%s - [0:0]\n"
			":KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n"
			"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j "
			"KUBE-SERVICES\nCOMMIT\n",
			hb);
		if (!ASSERT_OK(pxy_ipt_render(p, l, true, save, &b), "render with save"))
			goto out;
	}
	EXPECT_LINE(&b, "-X KUBE-SEP-AAAAAAAAAAAAAAAA");
	snprintf(line, sizeof(line), "-X %s", hb);
	ASSERT_FALSE(has_line(&b, line), "active chain kept");
	EXPECT_NO(&b, "-X KUBE-MARK-MASQ");
	EXPECT_NO(&b, "BBBBBBBBBBBBBBBB"); /* only nat's chains are candidates */
	/* Missing jumps are inserted in the same transaction, present ones not. */
	EXPECT_NO(&b, "-I PREROUTING");
	EXPECT_LINE(&b, "-I OUTPUT -m comment --comment \"kubernetes service portals\" -j "
			"KUBE-SERVICES");
	EXPECT_LINE(&b, "-I POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j "
			"KUBE-POSTROUTING");
	EXPECT_LINE(&b, "-I INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes "
			"externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES");
	EXPECT_LINE(&b, "-I FORWARD -m comment --comment \"kubernetes forwarding rules\" -j "
			"KUBE-FORWARD");
	ASSERT_EQ(count(&b, "\n-I "), 11, "11 of the 12 jumps");
	ASSERT_TRUE(strstr(b.data, "-I OUTPUT -m comment") > strstr(b.data, "*nat"),
		    "nat jumps in nat");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

TEST(render_udp_conntrack_cleanup)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT, ct = SL_BUF_INIT;
	const char *two[] = {"198.18.64.1,n2,true,true,false", "198.18.64.2,n2,true,true,false"};
	const char *one[] = {"198.18.64.1,n2,true,true,false"};
	const char *dport =
		"{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\",\"nodePort\":30053}";
	const char *eport = "{\"name\":\"dns\",\"port\":5353,\"protocol\":\"UDP\"}";

	if (!svc(l, "a", "dns", "NodePort", "198.18.128.53", dport, NULL, NULL) ||
	    !render(p, l, true, &b))
		goto out;
	EXPECT_LINE(&b, "-A KUBE-SERVICES -m comment --comment \"a/dns:dns has no endpoints\" -m "
			"udp -p udp -d 198.18.128.53 --dport 53 -j REJECT");
	/* First endpoints: flows that were rejected on the VIP and NodePort are cleared. */
	if (!slice(l, "a", "dns-1", "dns", eport, two, 2) || !render(p, l, false, &b))
		goto out;
	pxy_ipt_conntrack_pending(p, &ct);
	EXPECT_LINE(&ct, "-D -p udp --orig-dst 198.18.128.53");
	EXPECT_LINE(&ct, "-D -p udp --orig-port-dst 30053");
	ASSERT_EQ(count(&ct, "\n"), 2, "two deletions");
	/* An endpoint goes: its flows through every frontend. */
	sl_buf_reset(&ct);
	if (!slice(l, "a", "dns-1", "dns", eport, one, 1) || !render(p, l, false, &b))
		goto out;
	pxy_ipt_conntrack_pending(p, &ct);
	EXPECT_LINE(&ct, "-D -p udp --orig-dst 198.18.128.53 --dst-nat 198.18.64.2");
	EXPECT_LINE(&ct, "-D -p udp --orig-port-dst 30053 --dst-nat 198.18.64.2");
	ASSERT_EQ(count(&ct, "\n"), 2, "only the gone endpoint");
	/* Unchanged: nothing queued. */
	sl_buf_reset(&ct);
	if (!render(p, l, false, &b))
		goto out;
	pxy_ipt_conntrack_pending(p, &ct);
	ASSERT_EQ(ct.len, 0, "nothing to delete");
out:
	sl_buf_fini(&b);
	sl_buf_fini(&ct);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

/* --- the kernel, in a private network namespace -------------------------------------------- */

static bool save_has(const char *save_cmd, const char *needle, struct sl_buf *dump)
{
	char cmd[128], buf[4096];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s 2>/dev/null", save_cmd);
	sl_buf_reset(dump);
	f = popen(cmd, "r");
	if (!f)
		return false;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sl_buf_append(dump, buf, n);
	pclose(f);
	return dump->data && strstr(dump->data, needle);
}

/* Connects to addr:port from this netns; true when the TCP handshake completes. */
static bool tcp_reaches(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {2, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	inet_pton(AF_INET, addr, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	ok = fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (fd >= 0)
		close(fd);
	return ok;
}

static int udp_bound(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, addr, &sa.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Which of two sockets a datagram reaches within a second: 0, 1, or -1. */
static int udp_which(int fd0, int fd1)
{
	struct pollfd pf[2] = {{fd0, POLLIN, 0}, {fd1, POLLIN, 0}};
	char buf[16];

	if (poll(pf, 2, 1000) <= 0)
		return -1;
	for (int i = 0; i < 2; i++)
		if (pf[i].revents & POLLIN) {
			(void)!recv(pf[i].fd, buf, sizeof(buf), 0);
			return i;
		}
	return -1;
}

static bool udp_flow_moves(struct pxy *p, struct lbi *l)
{
	const char *e1[] = {"198.18.10.1,n1,true,true,false"};
	const char *e2[] = {"198.18.10.2,n1,true,true,false"};
	const char *uport = "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"}";
	const char *ueport = "{\"name\":\"dns\",\"port\":5353,\"protocol\":\"UDP\"}";
	struct sockaddr_in vip = {.sin_family = AF_INET, .sin_port = htons(53)};
	int u1 = udp_bound("198.18.10.1", 5353), u2 = udp_bound("198.18.10.2", 5353);
	int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct lbi_plan plan;
	bool ok = false;

	inet_pton(AF_INET, "198.18.128.53", &vip.sin_addr);
	if (!ASSERT_TRUE(u1 >= 0 && u2 >= 0 && c >= 0, "udp sockets") ||
	    !svc(l, "a", "dns", "ClusterIP", "198.18.128.53", uport, NULL, NULL) ||
	    !slice(l, "a", "dns-1", "dns", ueport, e1, 1) ||
	    !ASSERT_OK(lbi_plan(l, false, &plan), "plan"))
		goto out;
	lbi_plan_fini(&plan);
	if (!ASSERT_OK(pxy_iptables_ops.sync(p, l, false), "sync udp") ||
	    !ASSERT_OK(connect(c, (struct sockaddr *)&vip, sizeof(vip)), "connect") ||
	    !ASSERT_EQ(send(c, "a", 1, 0), 1, "send") || !ASSERT_EQ(udp_which(u1, u2), 0, "first"))
		goto out;
	if (!slice(l, "a", "dns-1", "dns", ueport, e2, 1) ||
	    !ASSERT_OK(lbi_plan(l, false, &plan), "plan"))
		goto out;
	lbi_plan_fini(&plan);
	if (!ASSERT_OK(pxy_iptables_ops.sync(p, l, false), "sync endpoint moved") ||
	    !ASSERT_EQ(send(c, "b", 1, 0), 1, "send"))
		goto out;
	ok = ASSERT_EQ(udp_which(u1, u2), 1, "same flow reaches the new endpoint");
out:
	if (u1 >= 0)
		close(u1);
	if (u2 >= 0)
		close(u2);
	if (c >= 0)
		close(c);
	return ok;
}

static int kernel_child(const char *variant)
{
	struct pxy_cfg cfg = {.node_name = "n1", .cluster_cidr = CIDR, .iptables_cmd = variant};
	struct lbi *l = lbi_new("n1");
	struct sl_buf dump = SL_BUF_INIT;
	struct lbi_plan plan;
	struct pxy *p = NULL;
	const char *eps[] = {"198.18.10.1,n1,true,true,false"};
	char save[64], h[32], sep[32];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
	int lfd = -1;

	snprintf(save, sizeof(save), "%.*s-save", (int)(strlen(variant) - strlen("-restore")),
		 variant);
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "  unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	if (system("ip link set lo up && ip addr add 198.18.10.1/32 dev lo && "
		   "ip addr add 198.18.10.2/32 dev lo && "
		   "ip route add 198.18.128.0/24 dev lo")) {
		(void)TEST_FAIL_AT("netns setup");
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, "198.18.10.1", &sa.sin_addr);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 16)) {
		(void)TEST_FAIL_AT("listener: %s", strerror(errno));
		return 1;
	}
	ASSERT_FALSE(tcp_reaches("198.18.128.10", 80), "no service before the sync");

	p = pxy_iptables_ops.open(&cfg);
	if (!ASSERT_NOT_NULL(p, "open"))
		goto out;
	if (!svc(l, "a", "web", "ClusterIP", "198.18.128.10", ports_p80, NULL, NULL) ||
	    !svc(l, "a", "gone", "ClusterIP", "198.18.128.11", ports_p80, NULL, NULL) ||
	    !slice(l, "a", "web-1", "web", eports_p80, eps, 1) ||
	    !slice(l, "a", "gone-1", "gone", eports_p80, eps, 1) ||
	    !ASSERT_OK(lbi_plan(l, true, &plan), "plan"))
		goto out;
	lbi_plan_fini(&plan);
	if (!ASSERT_OK(pxy_iptables_ops.sync(p, l, true), "full sync"))
		goto out;
	svc_chain(h, "KUBE-SVC-", "a/web:p80", "tcp");
	ASSERT_TRUE(save_has(save, h, &dump), "KUBE-SVC chain in iptables-save");
	ASSERT_TRUE(strstr(dump.data, "-A PREROUTING -m comment --comment \"kubernetes service "
				      "portals\" -j KUBE-SERVICES") != NULL,
		    "PREROUTING jump");
	ASSERT_TRUE(strstr(dump.data, "-A POSTROUTING -m comment --comment \"kubernetes "
				      "postrouting rules\" -j KUBE-POSTROUTING") != NULL,
		    "POSTROUTING jump");
	ASSERT_TRUE(strstr(dump.data, "--probability") == NULL, "one endpoint, no statistic");
	ASSERT_TRUE(tcp_reaches("198.18.128.10", 80), "ClusterIP reaches the endpoint");

	/* A second full sync is idempotent: the jumps are not duplicated. */
	if (!ASSERT_OK(pxy_iptables_ops.sync(p, l, true), "second full sync"))
		goto out;
	save_has(save, "", &dump);
	ASSERT_EQ(count(&dump, "-A PREROUTING -m comment"), 1, "one PREROUTING jump");

	/* Partial sync: a Service goes, its chains go. */
	pxy_ipt_chain_name(sep, "KUBE-SEP-", "a/gone:p80", "tcp", "198.18.10.1:8080");
	ASSERT_TRUE(save_has(save, sep, &dump), "gone's endpoint chain there");
	if (!feed(l, K8S_KIND_SERVICE, "a/gone", NULL) ||
	    !ASSERT_OK(lbi_plan(l, false, &plan), "plan"))
		goto out;
	lbi_plan_fini(&plan);
	if (!ASSERT_OK(pxy_iptables_ops.sync(p, l, false), "partial sync"))
		goto out;
	ASSERT_FALSE(save_has(save, sep, &dump), "gone's endpoint chain deleted");
	ASSERT_TRUE(save_has(save, h, &dump), "web's chain kept");
	ASSERT_TRUE(tcp_reaches("198.18.128.10", 80), "still reachable");

	/* UDP: a flow pinned by conntrack to an endpoint that goes away moves to
	 * the new one on its next datagram (kubernetes#125467). */
	if (!udp_flow_moves(p, l))
		goto out;

	/* cleanup: nothing of ours in any variant; a second one finds nothing. */
	if (!ASSERT_OK(pxy_iptables_ops.cleanup(), "cleanup"))
		goto out;
	ASSERT_FALSE(save_has(save, "KUBE-", &dump), "no KUBE-* chain or jump left");
	ASSERT_FALSE(tcp_reaches("198.18.128.10", 80), "service gone");
	ASSERT_OK(pxy_iptables_ops.cleanup(), "cleanup again");
out:
	if (lfd >= 0)
		close(lfd);
	sl_buf_fini(&dump);
	pxy_iptables_ops.close(p);
	lbi_free(l);
	return test_failed_current ? 1 : 0;
}

static void kernel_variant(const char *variant)
{
	char path[64];
	pid_t pid;
	int st = 0;

	snprintf(path, sizeof(path), "/usr/sbin/%s", variant);
	if (geteuid() || access(path, X_OK)) {
		fprintf(stderr, "  skipped %s: needs root and %s\n", variant, path);
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(kernel_child(variant));
	ASSERT_TRUE(pid > 0 && waitpid(pid, &st, 0) == pid, "fork");
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, variant);
}

TEST(kernel_sync_and_cleanup_nft)
{
	kernel_variant("iptables-nft-restore");
}

TEST(kernel_sync_and_cleanup_legacy)
{
	kernel_variant("iptables-legacy-restore");
}

/* A restore that fails names the line and asks for a full sync. */
static int bad_child(void)
{
	struct pxy_cfg cfg = {.node_name = "n1",
			      .cluster_cidr = "not-a-cidr",
			      .iptables_cmd = "iptables-nft-restore"};
	struct lbi *l = lbi_new("n1");
	struct pxy *p;
	struct lbi_plan plan;
	struct pxy_stats st;
	const char *eps[] = {"198.18.10.1,n1,true,true,false"};

	if (unshare(CLONE_NEWNET))
		return 1;
	p = pxy_iptables_ops.open(&cfg);
	if (!ASSERT_NOT_NULL(p, "open") ||
	    !svc(l, "a", "web", "ClusterIP", "198.18.128.10", ports_p80, NULL, NULL) ||
	    !slice(l, "a", "web-1", "web", eports_p80, eps, 1) ||
	    !ASSERT_OK(lbi_plan(l, true, &plan), "plan"))
		return 1;
	lbi_plan_fini(&plan);
	ASSERT_ERR(pxy_iptables_ops.sync(p, l, false), "restore rejects the bad CIDR");
	pxy_iptables_ops.stats(p, &st);
	ASSERT_EQ(st.sync_errors, 1, "counted");
	pxy_iptables_ops.close(p);
	lbi_free(l);
	return test_failed_current ? 1 : 0;
}

TEST(kernel_restore_failure_is_reported)
{
	pid_t pid;
	int st = 0;

	if (geteuid() || access("/usr/sbin/iptables-nft-restore", X_OK)) {
		fprintf(stderr, "  skipped: needs root and iptables-nft-restore\n");
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(bad_child());
	ASSERT_TRUE(pid > 0 && waitpid(pid, &st, 0) == pid, "fork");
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child");
}

TEST(open_names_a_missing_binary)
{
	struct pxy_cfg cfg = {.node_name = "n1", .iptables_cmd = "iptables-nonexistent-restore"};

	errno = 0;
	ASSERT_NULL(pxy_iptables_ops.open(&cfg), "open");
	ASSERT_EQ(errno, ENOENT, "errno");
}

/*
 * Sync cost at scale, only with PX_IPT_BENCH=<services> (10 endpoints each):
 * prints the full sync and a one-Service partial sync, rendering and restore.
 */
static int bench_child(long n)
{
	struct pxy_cfg cfg = {.node_name = "n1",
			      .cluster_cidr = CIDR,
			      .iptables_cmd = getenv("PX_IPT_BENCH_CMD")};
	struct lbi *l = lbi_new("n1");
	struct pxy *p;
	struct lbi_plan plan;
	struct pxy_stats st;
	struct sl_buf b = SL_BUF_INIT;
	char name[32], ip[32], eps_s[10][64] = {{0}};
	const char *eps[10];
	double t0;

	/* set before the loop: with n == 0 the partial sync below still reads them */
	for (int e = 0; e < 10; e++)
		eps[e] = eps_s[e];
	if (unshare(CLONE_NEWNET) || !(p = pxy_iptables_ops.open(&cfg)))
		return 1;
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "s%ld", i);
		snprintf(ip, sizeof(ip), "198.18.%ld.%ld", 128 + i / 250, 1 + i % 250);
		for (int e = 0; e < 10; e++) {
			long k = (i * 10 + e) % 62500; /* 198.19/16 holds them; shared is fine */

			snprintf(eps_s[e], sizeof(eps_s[e]), "198.19.%ld.%ld,n2,true,true,false",
				 k / 250, 1 + k % 250);
		}
		if (!svc(l, "bench", name, "ClusterIP", ip, ports_p80, NULL, NULL) ||
		    !slice(l, "bench", name, name, eports_p80, eps, 10))
			return 1;
	}
	if (lbi_plan(l, true, &plan))
		return 1;
	lbi_plan_fini(&plan);
	{
		struct pxy *r = pxy_ipt_new(&cfg);

		t0 = now_ms();
		if (!r || pxy_ipt_render(r, l, true, NULL, &b))
			return 1;
		pxy_iptables_ops.close(r);
	}
	printf("  %ld services x 10 endpoints: render %.0f ms, %zu bytes\n", n, now_ms() - t0,
	       b.len);
	if (getenv("PX_IPT_BENCH_DUMP")) {
		FILE *f = fopen(getenv("PX_IPT_BENCH_DUMP"), "w");

		if (f)
			fwrite(b.data, 1, b.len, f), fclose(f);
		return 0;
	}
	if (!ASSERT_OK(pxy_iptables_ops.sync(p, l, true), "full sync"))
		return 1;
	pxy_iptables_ops.stats(p, &st);
	printf("  full sync %.0f ms (restore %.0f ms), %lu rules\n", st.last_sync_s * 1e3,
	       st.last_program_s * 1e3, (unsigned long)st.rules);
	eps[9] = "198.18.255.1,n2,true,true,false";
	if (!slice(l, "bench", "s7", "s7", eports_p80, eps, 10) || lbi_plan(l, false, &plan))
		return 1;
	lbi_plan_fini(&plan);
	if (!ASSERT_OK(pxy_iptables_ops.sync(p, l, false), "partial sync"))
		return 1;
	pxy_iptables_ops.stats(p, &st);
	printf("  partial sync (1 endpoint changed) %.0f ms (restore %.0f ms), %zu rendered\n",
	       st.last_sync_s * 1e3, st.last_program_s * 1e3, st.services_rendered);
	pxy_iptables_ops.cleanup();
	return 0;
}

TEST(kernel_sync_scale)
{
	const char *env = getenv("PX_IPT_BENCH");
	pid_t pid;
	int st = 0;

	if (!env || geteuid())
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(bench_child(strtol(env, NULL, 10)));
	ASSERT_TRUE(pid > 0 && waitpid(pid, &st, 0) == pid, "fork");
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bench");
}

/* Service a/big (ClusterIP 198.18.128.50, port p80) with n ready endpoints
 * 198.18.64.1 upwards, in slices of 100 as the EndpointSlice controller writes. */
static bool big_service(struct lbi *l, uint32_t n)
{
	struct sl_buf b = SL_BUF_INIT;
	char key[64];
	bool ok = svc(l, "a", "big", "ClusterIP", "198.18.128.50", ports_p80, NULL, NULL);

	for (uint32_t k = 0; ok && k * 100 < n; k++) {
		sl_buf_reset(&b);
		snprintf(key, sizeof(key), "a/big-%05u", k);
		sl_buf_printf(&b,
			      "{\"metadata\":{\"namespace\":\"a\",\"name\":\"big-%05u\",\"labels\""
			      ":{\"kubernetes.io/service-name\":\"big\"}},\"addressType\":\"IPv4\","
			      "\"ports\":[%s],\"endpoints\":[",
			      k, eports_p80);
		for (uint32_t i = k * 100; i < n && i < (k + 1) * 100; i++) {
			uint32_t a = 0xc6124001u + i; /* 198.18.64.1 + i */

			sl_buf_printf(&b, "%s{\"addresses\":[\"%u.%u.%u.%u\"],\"nodeName\":\"n2\"}",
				      i % 100 ? "," : "", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
				      a & 255);
		}
		sl_buf_puts(&b, "]}");
		ok = feed(l, K8S_KIND_ENDPOINTSLICE, key, sl_buf_cstr(&b));
	}
	sl_buf_fini(&b);
	return ok;
}

/* Plans l and checks the plan's problems: one TooManyEndpoints for a/big, or none. */
static bool plan_problems(struct lbi *l, bool too_many, const char *what)
{
	struct lbi_plan plan;
	bool ok;

	if (!ASSERT_OK(lbi_plan(l, false, &plan), "lbi_plan"))
		return false;
	ok = ASSERT_EQ(plan.n_problems, too_many ? 1 : 0, what);
	if (ok && too_many)
		ok = ASSERT_STREQ(plan.problems[0].reason, "TooManyEndpoints", what) &&
		     ASSERT_STREQ(plan.problems[0].name, "big", what);
	lbi_plan_fini(&plan);
	return ok;
}

/*
 * kube-proxy's iptables mode programs every endpoint of a Service, 10,000 of
 * them as 10,000 KUBE-SEP chains and a 9,999-step probability cascade. The
 * model's default bound is the eBPF slot block (4,096, with a
 * TooManyEndpoints problem); the agent gives a netfilter dataplane
 * LBM_MAX_BACKENDS, and the switch rebuilds the Service.
 */
TEST(render_ten_thousand_endpoints)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	char h[32], line[256];

	if (!ASSERT_NOT_NULL(l, "lbi") || !ASSERT_NOT_NULL(p, "pxy") || !big_service(l, 10000))
		goto out;
	/* the default: what the bpf datapath holds */
	if (!plan_problems(l, true, "bpf bound: TooManyEndpoints") ||
	    !ASSERT_OK(pxy_ipt_render(p, l, true, NULL, &b), "render"))
		goto out;
	ASSERT_EQ(count(&b, " -j DNAT --to-destination "), SL_MAX_SLOTS_PER_SVC,
		  "bpf bound: DNATs");

	lbi_max_backends_set(l, LBM_MAX_BACKENDS);
	sl_buf_reset(&b);
	if (!plan_problems(l, false, "netfilter bound: no problem") ||
	    !ASSERT_OK(pxy_ipt_render(p, l, true, NULL, &b), "render"))
		goto out;
	ASSERT_EQ(count(&b, ":KUBE-SEP-"), 10000, "one KUBE-SEP chain per endpoint");
	ASSERT_EQ(count(&b, " -j DNAT --to-destination "), 10000, "one DNAT per endpoint");
	ASSERT_EQ(count(&b, "--probability"), 9999, "n-1 statistic rules");
	svc_chain(h, "KUBE-SVC-", "a/big:p80", "tcp");
	/* the first step of the cascade is 1/10000; the last endpoint (highest
	 * address, 198.18.103.16) is reached without one */
	snprintf(line, sizeof(line),
		 "-A %s -m statistic --mode random --probability 0.0001000000 -j ", h);
	ASSERT_TRUE(strstr(b.data, line) != NULL, "1/10000 first");
	ASSERT_TRUE(strstr(b.data, "--to-destination 198.18.103.16:8080") != NULL,
		    "the 10,000th endpoint");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}

/* Above 1000 endpoints kube-proxy drops the per-endpoint comments; crossing
 * the threshold either way rewrites every Service. */
TEST(render_large_cluster_mode)
{
	struct lbi *l = lbi_new("n1");
	struct pxy *p = new_pxy();
	struct sl_buf b = SL_BUF_INIT;
	char name[16], ip[32], eps_s[10][64];
	const char *eps[10];
	struct pxy_stats st;

	for (int i = 0; i < 101; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		snprintf(ip, sizeof(ip), "198.18.130.%d", i + 1);
		for (int e = 0; e < 10; e++) {
			snprintf(eps_s[e], sizeof(eps_s[e]), "198.19.%d.%d,n2,true,true,false", i,
				 e + 1);
			eps[e] = eps_s[e];
		}
		if (!svc(l, "a", name, "ClusterIP", ip, ports_p80, NULL, NULL) ||
		    !slice(l, "a", name, name, eports_p80, eps, 10))
			goto out;
	}
	if (!render(p, l, true, &b))
		goto out;
	EXPECT_NO(&b, "-m comment --comment a/s0:p80"); /* SEP rules */
	EXPECT_NO(&b, "a/s0:p80 -> ");			/* SVC -> SEP rules */
	ASSERT_TRUE(strstr(b.data, "\"a/s0:p80 cluster IP\"") != NULL, "service comments stay");
	/* Back to 1000: every Service is rewritten with its comments. */
	if (!feed(l, K8S_KIND_SERVICE, "a/s100", NULL) || !render(p, l, false, &b))
		goto out;
	pxy_iptables_ops.stats(p, &st);
	ASSERT_EQ(st.services_rendered, 100, "all rewritten");
	ASSERT_TRUE(strstr(b.data, "a/s0:p80 -> 198.19.0.1:8080") != NULL, "comments back");
out:
	sl_buf_fini(&b);
	pxy_iptables_ops.close(p);
	lbi_free(l);
}
