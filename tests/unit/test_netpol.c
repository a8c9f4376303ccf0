// SPDX-License-Identifier: Apache-2.0
/*
 * netpol/ (libnetpol): NetworkPolicy semantics as reachability truth tables
 * over the upstream e2e model (x, y, z x a, b, c; ports 80/81 over TCP, UDP
 * and SCTP), evaluated with np_check() on the compiled map entries exactly
 * as the datapath will look them up. Covers ../shared/research/netpol.md §1
 * item by item, the pure-logic upstream e2e cases, the recipes' traps and
 * the pitfalls of other implementations (§3), plus failing closed.
 *
 * Matrices: rows are sources, columns destinations, in the order
 * x/a x/b x/c y/a y/b y/c z/a z/b z/c; '.' allowed, 'X' denied; the
 * diagonal is not checked (upstream ignores loopback too).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "np_fixture.h"

#define ALLOW_ALL                                                                          \
	"......... ......... ......... ......... ......... ......... ......... ......... " \
	"........."

/* Columns x/a, x/b, x/c denied from everyone. */
#define DENY_TO_X                                                                          \
	"XXX...... XXX...... XXX...... XXX...... XXX...... XXX...... XXX...... XXX...... " \
	"XXX......"

/* Only x/a denied as a destination. */
#define DENY_TO_XA                                                                         \
	"X........ X........ X........ X........ X........ X........ X........ X........ " \
	"X........"

static struct np_ctx *model_with(const char *ns, const char *name, const char *spec)
{
	struct np_ctx *c = np_fx_model();

	ASSERT_OK(np_fx_policy(c, ns, name, spec), name);
	return c;
}

TEST(no_policy_allows_everything)
{
	struct np_ctx *c = np_fx_model();

	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "tcp 80");
	np_fx_matrix(c, UDP, 81, ALLOW_ALL, "udp 81");
	np_fx_matrix(c, SCTP, 80, ALLOW_ALL, "sctp 80");
	np_free(c);
}

TEST(default_deny_ingress)
{
	/* e2e "should support a 'default-deny-ingress' policy"; recipe 03. */
	struct np_ctx *c = model_with("x", "deny", "{'podSelector':{},'policyTypes':['Ingress']}");

	np_fx_matrix(c, TCP, 80, DENY_TO_X, "tcp 80");
	np_fx_matrix(c, UDP, 81, DENY_TO_X, "udp 81");
	np_fx_matrix(c, SCTP, 81, DENY_TO_X, "sctp 81");
	/* Isolated for ingress only: x's pods still reach everyone. */
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.5", TCP, 80, NULL), 1, "egress free");
	np_free(c);
}

TEST(ingress_empty_list_and_missing_are_deny)
{
	/* `ingress: []` and no ingress key both isolate and allow nothing. */
	struct np_ctx *c = model_with("x", "a",
				      "{'podSelector':{'matchLabels':{'pod':'a'}},"
				      "'ingress':[]}");

	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "ingress []");
	ASSERT_EQ(np_pod_ruleset(c, "x", "a", SL_NP_INGRESS), SL_NP_RS_DENY, "deny set");
	ASSERT_EQ(np_pod_ruleset(c, "x", "a", SL_NP_EGRESS), SL_NP_RS_NONE, "egress untouched");
	np_free(c);
	c = model_with("x", "a", "{'podSelector':{'matchLabels':{'pod':'a'}}}");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "no ingress key");
	np_free(c);
}

TEST(allow_all_rule)
{
	/* `ingress: [{}]` allows any source; stacked on deny-all it wins
	 * (e2e "allow-all precedence"; recipe 02a). */
	struct np_ctx *c = model_with("x", "deny", "{'podSelector':{},'policyTypes':['Ingress']}");

	ASSERT_OK(np_fx_policy(c, "x", "all",
			       "{'podSelector':{'matchLabels':{'pod':'a'}},"
			       "'ingress':[{}]}"),
		  "allow all");
	np_fx_matrix(c, TCP, 80,
		     ".XX...... .XX...... .XX...... .XX...... .XX...... .XX...... .XX...... "
		     ".XX...... .XX......",
		     "x/a open");
	/* Any source includes addresses that are not pods. */
	ASSERT_EQ(np_check(c, "198.19.1.1", "198.18.0.1", UDP, 9999, NULL), 1, "external");
	ASSERT_EQ(np_check(c, "198.19.1.1", "198.18.0.2", UDP, 9999, NULL), 0, "x/b closed");
	np_free(c);
}

TEST(pod_selector_same_namespace)
{
	/* x/a admits pod=b from its own namespace only (e2e "podSelector"). */
	struct np_ctx *c =
		model_with("x", "p",
			   "{'podSelector':{'matchLabels':{'pod':'a'}},"
			   "'ingress':[{'from':[{'podSelector':{'matchLabels':{'pod':'b'}}}]}]}");

	np_fx_matrix(c, TCP, 80,
		     "......... ......... X........ X........ X........ X........ X........ "
		     "X........ X........",
		     "from x/b");
	np_free(c);
}

TEST(empty_pod_selector_peer_is_own_namespace)
{
	/* Recipe 04: from podSelector {} = every pod of the policy's namespace. */
	struct np_ctx *c = model_with("x", "p",
				      "{'podSelector':{},"
				      "'ingress':[{'from':[{'podSelector':{}}]}]}");

	np_fx_matrix(c, TCP, 80,
		     "......... ......... ......... XXX...... XXX...... XXX...... XXX...... "
		     "XXX...... XXX......",
		     "same ns");
	{
		/* One namespace-level entry, not one per identity: a new
		 * workload in x recomputes only itself. */
		struct np_entries e;
		struct np_stats st;

		ASSERT_OK(np_dump(c, &e), "dump");
		if (ASSERT_EQ(e.n_rules, 1, "one entry for x's three identities"))
			ASSERT_TRUE(e.rules[0].key.peer >= SL_NP_PEER_NS_BASE, "namespace peer");
		np_entries_fini(&e);
		np_fx_pod(c, "x", "d", "198.18.0.99", "pod=d", NULL);
		np_fx_matrix(
			c, TCP, 80,
			"......... ......... ......... XXX...... XXX...... XXX...... XXX...... "
			"XXX...... XXX......",
			"same ns after x/d");
		np_stats_get(c, &st);
		ASSERT_EQ(st.recomputed, 2, "only x/d computed");
		ASSERT_EQ(np_check(c, "198.18.0.99", "198.18.0.1", TCP, 80, NULL), 1, "x/d in");
		ASSERT_EQ(np_check(c, "198.18.0.4", "198.18.0.99", TCP, 80, NULL), 0, "y/a to x/d");
	}
	np_free(c);
}

TEST(namespace_selector)
{
	struct np_ctx *c;

	/* Empty namespaceSelector: every pod of every namespace, no external. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'from':[{'namespaceSelector':{}}]}]}");
	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "all namespaces");
	ASSERT_EQ(np_check(c, "198.19.0.1", "198.18.0.1", TCP, 80, NULL), 0, "not external");
	{
		/* One SL_NP_PEER_ANY_POD entry, not one per identity, so a new
		 * workload elsewhere does not touch x/a's rule set. */
		struct np_entries e;
		uint32_t rs = np_pod_ruleset(c, "x", "a", SL_NP_INGRESS);
		struct np_stats st;

		ASSERT_OK(np_dump(c, &e), "dump");
		if (ASSERT_EQ(e.n_rules, 1, "one entry"))
			ASSERT_EQ(e.rules[0].key.peer, SL_NP_PEER_ANY_POD, "any pod");
		np_entries_fini(&e);
		np_fx_pod(c, "z", "new", "198.18.0.99", "pod=new", NULL);
		np_fx_matrix(c, TCP, 80, ALLOW_ALL, "still");
		np_stats_get(c, &st);
		ASSERT_EQ(st.recomputed, 2, "only the new identity computed");
		ASSERT_EQ(np_pod_ruleset(c, "x", "a", SL_NP_INGRESS), rs, "same set");
		ASSERT_EQ(np_check(c, "198.18.0.99", "198.18.0.1", TCP, 80, NULL), 1, "new pod in");
	}
	np_free(c);
	/* matchLabels ns=y. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'from':[{'namespaceSelector':{'matchLabels':{'ns':'y'}}}]}]}");
	np_fx_matrix(c, TCP, 80,
		     "X........ X........ X........ ......... ......... ......... X........ "
		     "X........ X........",
		     "ns=y");
	np_free(c);
	/* NotIn (e2e "matchExpressions NotIn"): x and z admitted, y not. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'from':[{'namespaceSelector':{'matchExpressions':"
		       "[{'key':'ns','operator':'NotIn','values':['y']}]}}]}]}");
	np_fx_matrix(c, TCP, 80,
		     "......... ......... ......... X........ X........ X........ ......... "
		     "......... .........",
		     "ns notin y");
	np_free(c);
	/* The automatic kubernetes.io/metadata.name label selects by name. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'from':[{'namespaceSelector':{'matchLabels':"
		       "{'kubernetes.io/metadata.name':'z'}}}]}]}");
	np_fx_matrix(c, TCP, 80,
		     "X........ X........ X........ X........ X........ X........ ......... "
		     "......... .........",
		     "name label");
	np_free(c);
}

TEST(and_vs_or_peers)
{
	/* One peer holding both selectors is AND (recipe 07's trap). */
	struct np_ctx *c =
		model_with("x", "and",
			   "{'podSelector':{'matchLabels':{'pod':'a'}},'ingress':[{'from':[{"
			   "'namespaceSelector':{'matchLabels':{'ns':'y'}},'podSelector':{'"
			   "matchLabels':{'pod':'b'}}}]}]}");

	np_fx_matrix(c, TCP, 80,
		     "X........ X........ X........ X........ ......... X........ X........ "
		     "X........ X........",
		     "AND: only y/b");
	np_free(c);
	/* Two list items are OR: all of y, plus pod=b of x. */
	c = model_with("x", "or",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},'ingress':[{'from':["
		       "{'namespaceSelector':{'matchLabels':{'ns':'y'}}},"
		       "{'podSelector':{'matchLabels':{'pod':'b'}}}]}]}");
	np_fx_matrix(c, TCP, 80,
		     "X........ ......... X........ ......... ......... ......... X........ "
		     "X........ X........",
		     "OR: y/* and x/b");
	np_free(c);
}

TEST(ports_and_protocols)
{
	struct np_ctx *c;

	/* e2e "ingress on port 81": 81 open, 80 closed, from everyone. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'ports':[{'port':81}]}]}");
	np_fx_matrix(c, TCP, 81, ALLOW_ALL, "tcp 81");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "tcp 80");
	/* Protocol defaults to TCP: UDP 81 stays closed. */
	np_fx_matrix(c, UDP, 81, DENY_TO_XA, "udp 81");
	np_free(c);
	/* `ports: [{}]` = every TCP port, not every protocol. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'ports':[{}]}]}");
	np_fx_matrix(c, TCP, 12345, ALLOW_ALL, "tcp any");
	np_fx_matrix(c, UDP, 80, DENY_TO_XA, "udp closed");
	np_fx_matrix(c, SCTP, 80, DENY_TO_XA, "sctp closed");
	np_free(c);
	/* Protocol-only UDP rule (e2e): UDP any port ok, TCP denied. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'ports':[{'protocol':'UDP'}]}]}");
	np_fx_matrix(c, UDP, 81, ALLOW_ALL, "udp ok");
	np_fx_matrix(c, TCP, 81, DENY_TO_XA, "tcp denied");
	np_free(c);
}

TEST(sctp_never_opens_tcp)
{
	/* The two e2e "security hole" tests (kubernetes#102509): an SCTP rule
	 * leaves the pod isolated for TCP and UDP. */
	struct np_ctx *c = model_with("x", "p",
				      "{'podSelector':{'matchLabels':{'pod':'a'}},"
				      "'ingress':[{'ports':[{'protocol':'SCTP','port':80}]}]}");

	np_fx_matrix(c, SCTP, 80, ALLOW_ALL, "sctp 80");
	np_fx_matrix(c, SCTP, 81, DENY_TO_XA, "sctp 81");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "tcp 80");
	np_fx_matrix(c, UDP, 80, DENY_TO_XA, "udp 80");
	np_free(c);
}

TEST(end_port_ranges)
{
	/* endPort is enforced as a range (cilium#28684 ignored it). */
	struct np_ctx *c = model_with("x", "p",
				      "{'podSelector':{'matchLabels':{'pod':'a'}},"
				      "'ingress':[{'ports':[{'port':80,'endPort':81}]}]}");

	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "80 in");
	np_fx_matrix(c, TCP, 81, ALLOW_ALL, "81 in");
	np_fx_matrix(c, TCP, 82, DENY_TO_XA, "82 out");
	np_fx_matrix(c, TCP, 79, DENY_TO_XA, "79 out");
	np_free(c);
	/* Cyclonus' 53..84: a range crossing block boundaries. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'ports':[{'protocol':'UDP','port':53,'endPort':84}]}]}");
	for (unsigned p = 50; p < 90; p++) {
		char name[32];

		snprintf(name, sizeof(name), "udp %u", p);
		np_fx_matrix(c, UDP, (uint16_t)p, p >= 53 && p <= 84 ? ALLOW_ALL : DENY_TO_XA,
			     name);
	}
	np_free(c);
}

TEST(end_port_lpm_blocks)
{
	/* 80..90 = 80/13 (80-87) + 88/15 (88-89) + 90/16: three LPM entries. */
	struct np_ctx *c = model_with("x", "p",
				      "{'podSelector':{'matchLabels':{'pod':'a'}},"
				      "'ingress':[{'ports':[{'port':80,'endPort':90}]}]}");
	struct np_entries e;
	char err[256];

	ASSERT_OK(np_compile(c, NULL, err, sizeof(err)), "compile");
	ASSERT_OK(np_dump(c, &e), "dump");
	if (ASSERT_EQ(e.n_rules, 3, "entries")) {
		ASSERT_EQ(ntohs(e.rules[0].key.port), 80, "p0");
		ASSERT_EQ(e.rules[0].key.prefixlen, SL_NP_RULE_PLEN_PROTO + 13, "l0");
		ASSERT_EQ(ntohs(e.rules[1].key.port), 88, "p1");
		ASSERT_EQ(e.rules[1].key.prefixlen, SL_NP_RULE_PLEN_PROTO + 15, "l1");
		ASSERT_EQ(ntohs(e.rules[2].key.port), 90, "p2");
		ASSERT_EQ(e.rules[2].key.prefixlen, SL_NP_RULE_PLEN_FULL, "l2");
		ASSERT_EQ(e.rules[0].key.peer, SL_NP_PEER_ANY, "any peer");
		ASSERT_EQ(e.rules[0].key.proto, TCP, "tcp");
		ASSERT_EQ(e.rules[0].val.policy, np_policy_id(c, "x", "p"), "policy id");
		ASSERT_EQ(e.rules[0].val.verdict, SL_NP_ALLOW, "verdict");
	}
	np_entries_fini(&e);
	np_free(c);
	/* 1..65535 = 15 + ... blocks, and a wider rule swallows a narrower one. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'ports':[{'port':1,'endPort':65535},{'port':443}]}]}");
	ASSERT_OK(np_compile(c, NULL, err, sizeof(err)), "compile");
	ASSERT_OK(np_dump(c, &e), "dump");
	ASSERT_EQ(e.n_rules, 16, "1..65535 is 16 blocks, 443 covered");
	np_entries_fini(&e);
	np_free(c);
}

TEST(named_ports_ingress)
{
	struct np_ctx *c;

	/* e2e "named port": serve-81-tcp resolves to 81 on the target. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'ports':[{'port':'serve-81-tcp'}]}]}");
	np_fx_matrix(c, TCP, 81, ALLOW_ALL, "named 81");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "80 closed");
	np_free(c);
	/* A TCP rule naming a UDP port opens nothing (ovn-kubernetes#2117),
	 * and an undeclared name opens nothing but still isolates. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'ports':[{'port':'serve-80-udp','protocol':'TCP'},"
		       "{'port':'serve-7981-udp','protocol':'UDP'}]}]}");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "tcp 80");
	np_fx_matrix(c, UDP, 80, DENY_TO_XA, "udp 80");
	ASSERT_EQ(np_pod_ruleset(c, "x", "a", SL_NP_INGRESS), SL_NP_RS_DENY, "isolated, empty");
	np_free(c);
	/* With the right protocol the UDP name opens UDP 80 only. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'ports':[{'port':'serve-80-udp','protocol':'UDP'}]}]}");
	np_fx_matrix(c, UDP, 80, ALLOW_ALL, "udp 80");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "tcp 80 closed");
	np_free(c);
}

TEST(named_ports_per_pod)
{
	/* One name, two numbers on two pods of one policy (cilium#30003):
	 * each pod opens only its own number. */
	struct np_ctx *c = np_new(NULL);

	np_fx_pod(c, "x", "web1", "198.18.1.1", "app=web", "http/TCP/8080");
	np_fx_pod(c, "x", "web2", "198.18.1.2", "app=web", "http/TCP/9090");
	np_fx_pod(c, "x", "cli", "198.18.1.3", "app=cli", NULL);
	np_fx_policy(c, "x", "p",
		     "{'podSelector':{'matchLabels':{'app':'web'}},'ingress':[{'ports':[{'port':'"
		     "http'}]}]}");
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.1", TCP, 8080, NULL), 1, "web1 8080");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.1", TCP, 9090, NULL), 0, "web1 9090");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.2", TCP, 9090, NULL), 1, "web2 9090");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.2", TCP, 8080, NULL), 0, "web2 8080");
	/* Equal labels, different named ports: two identities. */
	ASSERT_NEQ(np_pod_identity(c, "x", "web1"), np_pod_identity(c, "x", "web2"), "split");
	np_free(c);
}

TEST(named_ports_egress_resolve_on_destination)
{
	/* aws-network-policy-agent#149 resolved against the source. */
	struct np_ctx *c = np_new(NULL);

	np_fx_pod(c, "x", "cli", "198.18.1.3", "app=cli", "http/TCP/7000");
	np_fx_pod(c, "x", "db1", "198.18.1.1", "app=db", "sql/TCP/5432");
	np_fx_pod(c, "x", "db2", "198.18.1.2", "app=db2", "sql/TCP/3306");
	np_fx_policy(c, "x", "p",
		     "{'podSelector':{'matchLabels':{'app':'cli'}},'policyTypes':['Egress'],"
		     "'egress':[{'to':[{'podSelector':{}}],'ports':[{'port':'sql'}]}]}");
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.1", TCP, 5432, NULL), 1, "db1 5432");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.1", TCP, 3306, NULL), 0, "db1 3306");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.2", TCP, 3306, NULL), 1, "db2 3306");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.2", TCP, 5432, NULL), 0, "db2 5432");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.19.0.1", TCP, 5432, NULL), 0, "not a pod");
	/* A rule without `to` resolves against every destination pod. */
	np_fx_policy(c, "x", "p",
		     "{'podSelector':{'matchLabels':{'app':'cli'}},'policyTypes':['Egress'],"
		     "'egress':[{'ports':[{'port':'sql'},{'port':53,'protocol':'UDP'}]}]}");
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile 2");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.2", TCP, 3306, NULL), 1, "any db2 3306");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.18.1.2", TCP, 5432, NULL), 0, "any db2 5432");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.19.0.1", UDP, 53, NULL), 1, "dns anywhere");
	ASSERT_EQ(np_check(c, "198.18.1.3", "198.19.0.1", TCP, 3306, NULL), 0, "name not external");
	np_free(c);
}

TEST(egress_policies)
{
	struct np_ctx *c;

	/* x/a may only reach pod=b of its namespace; ingress untouched. */
	c = model_with("x", "e",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},'policyTypes':['Egress'],"
		       "'egress':[{'to':[{'podSelector':{'matchLabels':{'pod':'b'}}}]}]}");
	np_fx_matrix(c, TCP, 80,
		     "..XXXXXXX ......... ......... ......... ......... ......... ......... "
		     "......... .........",
		     "x/a egress");
	ASSERT_EQ(np_pod_ruleset(c, "x", "a", SL_NP_INGRESS), SL_NP_RS_NONE, "ingress free");
	np_free(c);
	/* Default-deny egress in x (recipe 12): DNS to anywhere blocked too. */
	c = model_with("x", "e", "{'podSelector':{},'policyTypes':['Egress']}");
	np_fx_matrix(c, UDP, 53,
		     "XXXXXXXXX XXXXXXXXX XXXXXXXXX ......... ......... ......... ......... "
		     "......... .........",
		     "deny egress");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.19.0.10", UDP, 53, NULL), 0, "dns");
	np_free(c);
}

TEST(client_egress_deny_beats_server_allow)
{
	/* Both sides are checked: x/a egress-denied cannot reach x/b even
	 * though x/b admits everyone (e2e "enforce egress ... server allows"). */
	struct np_ctx *c = model_with("x", "e",
				      "{'podSelector':{'matchLabels':{'pod':'a'}},"
				      "'policyTypes':['Egress']}");
	int reason = 0;

	ASSERT_OK(np_fx_policy(c, "x", "i",
			       "{'podSelector':{'matchLabels':{'pod':'b'}},"
			       "'ingress':[{}]}"),
		  "allow in");
	np_compile(c, NULL, NULL, 0);
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.2", TCP, 80, &reason), 0, "denied");
	ASSERT_EQ(reason, SL_R_POLICY_EGRESS, "egress reason");
	ASSERT_EQ(np_check(c, "198.18.0.3", "198.18.0.1", TCP, 80, &reason), 1, "a's ingress free");
	np_free(c);
}

TEST(policy_types_defaulting)
{
	struct np_ctx *c;

	/* Egress rules without policyTypes: Ingress AND Egress isolated. */
	c = model_with("x", "e",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'egress':[{'to':[{'podSelector':{'matchLabels':{'pod':'b'}}}]}]}");
	np_fx_matrix(c, TCP, 80,
		     "X.XXXXXXX X........ X........ X........ X........ X........ X........ "
		     "X........ X........",
		     "both isolated");
	np_free(c);
	/* policyTypes [Ingress] ignores an egress section (amazon#229). */
	c = model_with("x", "i",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},'policyTypes':['Ingress'],"
		       "'ingress':[{}],'egress':[]}");
	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "egress ignored");
	ASSERT_EQ(np_pod_ruleset(c, "x", "a", SL_NP_EGRESS), SL_NP_RS_NONE, "not isolated");
	np_free(c);
	/* Ingress rules in an Egress-only policy are ignored too. */
	c = model_with("x", "i",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},'policyTypes':['Egress'],"
		       "'ingress':[],'egress':[{}]}");
	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "ingress ignored");
	np_free(c);
}

TEST(rules_do_not_mix)
{
	/* rule1 (from x/b, port 80) + rule2 (from x/c, port 81): x/b cannot
	 * reach 81 and x/c cannot reach 80. */
	struct np_ctx *c = model_with(
		"x", "p",
		"{'podSelector':{'matchLabels':{'pod':'a'}},'ingress':["
		"{'from':[{'podSelector':{'matchLabels':{'pod':'b'}}}],'ports':[{'port':80}]},"
		"{'from':[{'podSelector':{'matchLabels':{'pod':'c'}}}],'ports':[{'port':81}]}]}");

	np_fx_matrix(c, TCP, 80,
		     "......... ......... X........ X........ X........ X........ X........ "
		     "X........ X........",
		     "80 from b");
	np_fx_matrix(c, TCP, 81,
		     "......... X........ ......... X........ X........ X........ X........ "
		     "X........ X........",
		     "81 from c");
	np_free(c);
}

TEST(ip_block_matches_pod_ips)
{
	struct np_ctx *c;

	/* e2e "ipBlock /32": y/b's address admits y/b. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.5/32'}}]}]}");
	np_fx_matrix(c, TCP, 80,
		     "X........ X........ X........ X........ ......... X........ X........ "
		     "X........ X........",
		     "/32");
	np_free(c);
	/* Recipe suite 08: a wide range admits pods (cilium#9209). */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/15'}}]}]}");
	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "/15");
	ASSERT_EQ(np_check(c, "198.20.0.1", "198.18.0.1", TCP, 80, NULL), 0, "outside");
	np_free(c);
	/* Host bits in the cidr are ignored, as the API accepts them. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.77/24'}}]}]}");
	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "host bits");
	np_free(c);
}

TEST(ip_block_except)
{
	struct np_ctx *c;

	/* e2e "ipBlock with except": everyone but y/b. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},"
		       "'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/24',"
		       "'except':['198.18.0.5/32']}}]}]}");
	np_fx_matrix(c, TCP, 80,
		     "......... ......... ......... ......... X........ ......... ......... "
		     "......... .........",
		     "except y/b");
	/* The except is a hole, not a deny: another policy allowing y/b by
	 * label opens it again (e2e "except overridden"; ovn-k#845). */
	ASSERT_OK(np_fx_policy(c, "x", "q",
			       "{'podSelector':{'matchLabels':{'pod':'a'}},"
			       "'ingress':[{'from':[{'namespaceSelector':{}}]}]}"),
		  "second");
	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "overridden");
	np_free(c);
	/* Overlapping blocks in one rule: the wide one's except is covered by
	 * a narrower block of another peer with other ports. */
	c = model_with("x", "p",
		       "{'podSelector':{'matchLabels':{'pod':'a'}},'ingress':["
		       "{'from':[{'ipBlock':{'cidr':'198.18.0.0/16','except':['198.18.0.0/29']}}],"
		       "'ports':[{'port':80}]},"
		       "{'from':[{'ipBlock':{'cidr':'198.18.0.4/30'}}],'ports':[{'port':81}]}]}");
	np_compile(c, NULL, NULL, 0);
	ASSERT_EQ(np_check(c, "198.18.0.9", "198.18.0.1", TCP, 80, NULL), 1, ".9 in /16");
	ASSERT_EQ(np_check(c, "198.18.0.5", "198.18.0.1", TCP, 80, NULL), 0, ".5 in the hole");
	ASSERT_EQ(np_check(c, "198.18.0.5", "198.18.0.1", TCP, 81, NULL), 1, ".5 in /30 on 81");
	ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 81, NULL), 0, ".2 not in /30");
	ASSERT_EQ(np_check(c, "198.18.0.9", "198.18.0.1", TCP, 81, NULL), 0, ".9 not on 81");
	/* Except wider than the cidr removes all of it. */
	np_fx_policy(c, "x", "p",
		     "{'podSelector':{'matchLabels':{'pod':'a'}},'ingress':[{'from':[{'ipBlock':"
		     "{'cidr':'198.18.0.0/24','except':['198.18.0.0/16']}}]}]}");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "except covers cidr");
	np_free(c);
}

TEST(ip_block_egress_and_external)
{
	/* Egress to a CIDR outside the cluster only. */
	struct np_ctx *c =
		model_with("x", "e",
			   "{'podSelector':{'matchLabels':{'pod':'a'}},'policyTypes':['Egress'],"
			   "'egress':[{'to':[{'ipBlock':{'cidr':'198.19.0.0/16','except':"
			   "['198.19.9.0/24']}}],'ports':[{'port':443}]}]}");

	np_compile(c, NULL, NULL, 0);
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.19.1.1", TCP, 443, NULL), 1, "out 443");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.19.1.1", TCP, 80, NULL), 0, "out 80");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.19.9.1", TCP, 443, NULL), 0, "except");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.2", TCP, 443, NULL), 0, "pods not in it");
	/* An external source is only subject to the destination's ingress. */
	ASSERT_EQ(np_check(c, "198.19.1.1", "198.18.0.1", TCP, 80, NULL), 1, "in free");
	np_free(c);
}

TEST(ipv6_block)
{
	struct np_ctx *c = np_new(NULL);

	np_fx_pod(c, "x", "a", "2001:db8::1", "app=a", NULL);
	np_fx_policy(c, "x", "p",
		     "{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'2001:db8:1::/48',"
		     "'except':['2001:db8:1:2::/64']}}]}]}");
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile");
	ASSERT_EQ(np_check(c, "2001:db8:1:1::5", "2001:db8::1", TCP, 80, NULL), 1, "in");
	ASSERT_EQ(np_check(c, "2001:db8:1:2::5", "2001:db8::1", TCP, 80, NULL), 0, "except");
	ASSERT_EQ(np_check(c, "198.18.0.1", "2001:db8::1", TCP, 80, NULL), 0, "v4 not in v6");
	np_free(c);
}

TEST(policy_in_other_namespace_selects_nothing_there)
{
	/* A policy in y never selects pods in x (calico#1683). */
	struct np_ctx *c = model_with("y", "deny", "{'podSelector':{}}");

	np_fx_matrix(c, TCP, 80,
		     "...XXX... ...XXX... ...XXX... ...XXX... ...XXX... ...XXX... ...XXX... "
		     "...XXX... ...XXX...",
		     "only y isolated");
	np_free(c);
}

TEST(updates_are_picked_up)
{
	struct np_ctx *c = model_with("x", "p",
				      "{'podSelector':{'matchLabels':{'pod':'a'}},"
				      "'ingress':[{'from':[{'namespaceSelector':{'matchLabels':"
				      "{'team':'ops'}}}]}]}");

	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "nobody has team=ops");
	/* e2e "updated namespace labels" (ovn-k#1850): z gains the label. */
	np_fx_ns(c, "z", "ns=z,team=ops");
	np_fx_matrix(c, TCP, 80,
		     "X........ X........ X........ X........ X........ X........ ......... "
		     "......... .........",
		     "z labelled");
	np_fx_ns(c, "z", "ns=z");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "label removed");
	/* Updated pod labels: y/c becomes pod=a... and team via a new policy. */
	np_fx_policy(c, "x", "p",
		     "{'podSelector':{'matchLabels':{'pod':'a'}},'ingress':[{'from':[{"
		     "'namespaceSelector':{},'podSelector':{'matchLabels':{'role':'mon'}}}]}]}");
	np_fx_matrix(c, TCP, 80, DENY_TO_XA, "no role=mon");
	np_fx_pod(c, "y", "c", "198.18.0.6", "pod=c,role=mon", NP_FX_PORTS);
	np_fx_matrix(c, TCP, 80,
		     "X........ X........ X........ X........ X........ ......... X........ "
		     "X........ X........",
		     "y/c relabelled");
	/* A pod becoming selected (e2e "pod becomes isolated"): x/b -> pod=a. */
	np_fx_pod(c, "x", "b", "198.18.0.2", "pod=a", NP_FX_PORTS);
	np_fx_matrix(c, TCP, 80,
		     "XX....... XX....... XX....... XX....... XX....... ......... XX....... "
		     "XX....... XX.......",
		     "x/b isolated");
	/* Deletion restores (e2e "deleted policy"). */
	ASSERT_OK(np_policy_del(c, "x", "p"), "delete");
	np_fx_matrix(c, TCP, 80, ALLOW_ALL, "deleted");
	ASSERT_EQ(np_policy_del(c, "x", "p"), -SL_ERR_NOTFOUND, "twice");
	np_free(c);
}

TEST(pod_ip_change_and_delete)
{
	struct np_ctx *c =
		model_with("x", "p",
			   "{'podSelector':{'matchLabels':{'pod':'a'}},"
			   "'ingress':[{'from':[{'podSelector':{'matchLabels':{'pod':'b'}}}]}]}");
	struct np_diff d;

	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile");
	ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 80, NULL), 1, "x/b before");
	/* x/b restarts with a new address: only endpoint entries change. */
	np_fx_pod(c, "x", "b", "198.18.0.22", "pod=b", NP_FX_PORTS);
	ASSERT_OK(np_compile(c, &d, NULL, 0), "compile");
	ASSERT_EQ(d.add.n_ep, 1, "new address");
	ASSERT_EQ(d.del.n_ep, 1, "old address");
	ASSERT_EQ(d.add.n_rules + d.del.n_rules + d.add.n_cidrs + d.del.n_cidrs, 0, "rules kept");
	{
		struct np_stats st;

		np_stats_get(c, &st);
		ASSERT_EQ(st.recomputed, 0, "nothing recomputed");
	}
	np_diff_fini(&d);
	ASSERT_EQ(np_check(c, "198.18.0.22", "198.18.0.1", TCP, 80, NULL), 1, "x/b after");
	ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 80, NULL), 0, "old address");
	/* Deleting x/b's identity shrinks x/a's rule set to nothing. */
	ASSERT_OK(np_pod_del(c, "x", "b"), "delete");
	ASSERT_OK(np_compile(c, &d, NULL, 0), "compile");
	ASSERT_EQ(np_pod_ruleset(c, "x", "a", SL_NP_INGRESS), SL_NP_RS_DENY, "nothing left");
	ASSERT_EQ(d.del.n_rules, 1, "rule removed");
	np_diff_fini(&d);
	ASSERT_EQ(np_pod_del(c, "x", "b"), -SL_ERR_NOTFOUND, "twice");
	np_free(c);
}

TEST(host_network_and_finished_pods)
{
	struct np_ctx *c = np_new(NULL);
	struct np_pod_spec s = {.ns = "x", .name = "h", .host_network = true};
	const char *ip[] = {"198.18.9.1"};

	s.ips = ip;
	s.n_ips = 1;
	ASSERT_OK(np_pod_set(c, &s, NULL, 0), "host pod");
	np_fx_pod(c, "x", "a", "198.18.0.1", "app=a", NULL);
	np_fx_policy(c, "x", "deny", "{'podSelector':{},'policyTypes':['Ingress','Egress']}");
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile");
	/* hostNetwork pods are not endpoints: never isolated, and only an
	 * ipBlock (their node address) can name them as peers. */
	ASSERT_EQ(np_pod_identity(c, "x", "h"), 0, "no identity");
	ASSERT_EQ(np_check(c, "198.18.9.1", "198.18.7.7", TCP, 80, NULL), 1, "host free");
	ASSERT_EQ(np_check(c, "198.18.9.1", "198.18.0.1", TCP, 80, NULL), 0, "a isolated");
	np_free(c);
}

TEST(invalid_policies_fail_closed)
{
	static const char *const bad[] = {
		/* unknown protocol */
		"{'podSelector':{},'ingress':[{'ports':[{'protocol':'ICMP','port':80}]}]}",
		/* bad CIDR */
		"{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0/33'}}]}]}",
		"{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'not-an-ip'}}]}]}",
		/* except of the other family */
		"{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16',"
		"'except':['2001:db8::/64']}}]}]}",
		/* ipBlock with a selector in one peer */
		"{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16'},"
		"'podSelector':{}}]}]}",
		/* a peer with nothing */
		"{'podSelector':{},'ingress':[{'from':[{}]}]}",
		/* ports */
		"{'podSelector':{},'ingress':[{'ports':[{'port':0}]}]}",
		"{'podSelector':{},'ingress':[{'ports':[{'port':70000}]}]}",
		"{'podSelector':{},'ingress':[{'ports':[{'port':90,'endPort':80}]}]}",
		"{'podSelector':{},'ingress':[{'ports':[{'port':'http','endPort':80}]}]}",
		"{'podSelector':{},'ingress':[{'ports':[{'endPort':80}]}]}",
		"{'podSelector':{},'ingress':[{'ports':[{'port':'Not_A_Name'}]}]}",
		/* a selector the API would reject */
		"{'podSelector':{},'ingress':[{'from':[{'podSelector':{'matchExpressions':"
		"[{'key':'a','operator':'Bogus'}]}}]}]}",
		/* unknown policy type: both directions closed */
		"{'podSelector':{},'policyTypes':['Ingress','Sideways'],'ingress':[{}],'egress':[{}"
		"]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct np_ctx *c = np_fx_model();
		char name[32];
		const char *msg;
		int reason = 0;

		snprintf(name, sizeof(name), "bad[%zu]", i);
		/* A broad allow next to it must not leak into the broken one. */
		ASSERT_EQ(np_fx_policy(c, "x", "bad", bad[i]), -SL_ERR_INVALID, name);
		msg = np_policy_error(c, "x", "bad");
		if (ASSERT_NOT_NULL(msg, name))
			ASSERT_TRUE(strstr(msg, "networkpolicy 'x/bad': spec.") != NULL, msg);
		/* The last one (unknown policyTypes) closes egress too. */
		np_fx_matrix(
			c, TCP, 80,
			i + 1 < sizeof(bad) / sizeof(bad[0])
				? DENY_TO_X
				: "XXXXXXXXX XXXXXXXXX XXXXXXXXX XXX...... XXX...... XXX...... "
				  "XXX...... XXX...... XXX......",
			name);
		ASSERT_EQ(np_check(c, "198.18.0.4", "198.18.0.1", TCP, 80, &reason), 0, name);
		ASSERT_EQ(reason, SL_R_POLICY_FAILED, name);
		ASSERT_EQ(np_pod_ruleset(c, "x", "b", SL_NP_INGRESS), SL_NP_RS_FAILED, name);
		/* Fixing it restores normal compilation. */
		ASSERT_OK(np_fx_policy(c, "x", "bad", "{'podSelector':{},'ingress':[{}]}"), name);
		ASSERT_NULL(np_policy_error(c, "x", "bad"), name);
		np_fx_matrix(c, TCP, 80, ALLOW_ALL, name);
		np_free(c);
	}
	{
		struct np_ctx *c = np_fx_model();

		np_fx_policy(c, "x", "bad", bad[sizeof(bad) / sizeof(bad[0]) - 1]);
		np_compile(c, NULL, NULL, 0);
		ASSERT_EQ(np_pod_ruleset(c, "x", "a", SL_NP_EGRESS), SL_NP_RS_FAILED, "egress too");
		np_free(c);
	}
}

TEST(invalid_objects_rejected)
{
	struct np_ctx *c = np_new(NULL);
	struct np_pod_spec s = {.ns = "x", .name = "p"};
	const char *ips[] = {"198.18.0.300"};
	char err[256] = "";

	s.ips = ips;
	s.n_ips = 1;
	ASSERT_EQ(np_pod_set(c, &s, err, sizeof(err)), -SL_ERR_INVALID, "bad ip");
	ASSERT_TRUE(strstr(err, "status.podIPs[0]") != NULL, err);
	s.ns = NULL;
	ASSERT_EQ(np_pod_set(c, &s, err, sizeof(err)), -SL_ERR_INVALID, "no ns");
	ASSERT_EQ(np_ns_set(c, "", NULL, 0), -SL_ERR_INVALID, "empty ns");
	ASSERT_EQ(np_check(c, "nope", "198.18.0.1", TCP, 80, NULL), -EINVAL, "check bad ip");
	np_free(c);
}

TEST(identities_are_shared_and_stable)
{
	struct np_ctx *c = np_new(NULL), *c2 = np_new(NULL);
	uint32_t id, rs;
	struct np_stats st;

	for (int i = 0; i < 100; i++) {
		char name[16], ip[32];

		snprintf(name, sizeof(name), "web-%d", i);
		snprintf(ip, sizeof(ip), "198.18.%d.%d", i / 200, i % 200 + 1);
		np_fx_pod(c, "shop", name, ip, "app=web,tier=fe", "http/TCP/80");
	}
	np_fx_pod(c, "shop", "db", "198.18.3.1", "app=db", NULL);
	np_fx_policy(
		c, "shop", "p",
		"{'podSelector':{'matchLabels':{'app':'web'}},'ingress':[{'from':[{'podSelector':"
		"{'matchLabels':{'app':'db'}}}],'ports':[{'port':'http'}]}]}");
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile");
	np_stats_get(c, &st);
	ASSERT_EQ(st.identities, 2, "two identities");
	ASSERT_EQ(st.rulesets, 1, "one shared rule set");
	ASSERT_EQ(st.rule_entries, 1, "one entry for 100 pods");
	ASSERT_EQ(st.ep_entries, 101, "endpoints");
	id = np_pod_identity(c, "shop", "web-7");
	rs = np_pod_ruleset(c, "shop", "web-7", SL_NP_INGRESS);
	ASSERT_TRUE(id >= SL_NP_ID_MIN && id <= SL_NP_ID_MAX, "id range");
	ASSERT_TRUE(rs >= SL_NP_RS_MIN, "rs range");
	ASSERT_EQ(np_pod_identity(c, "shop", "web-42"), id, "same identity");
	/* Unrelated objects change nothing about it. */
	np_fx_pod(c, "other", "o", "198.18.4.1", "app=web,tier=fe", NULL);
	np_fx_ns(c, "shop", "env=prod");
	np_fx_policy(c, "other", "q", "{'podSelector':{}}");
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile 2");
	ASSERT_EQ(np_pod_identity(c, "shop", "web-7"), id, "stable id");
	ASSERT_EQ(np_pod_ruleset(c, "shop", "web-7", SL_NP_INGRESS), rs, "stable rule set");
	ASSERT_NEQ(np_pod_identity(c, "other", "o"), id, "namespace is part of identity");
	/* A fresh context with the same pod computes the same ids. */
	np_fx_pod(c2, "shop", "zzz", "198.18.5.5", "tier=fe,app=web", "http/TCP/80");
	np_compile(c2, NULL, NULL, 0);
	ASSERT_EQ(np_pod_identity(c2, "shop", "zzz"), id, "same id elsewhere");
	np_free(c);
	np_free(c2);
}

TEST(address_claimed_twice)
{
	/* A reused address before the old pod's delete: deterministic owner. */
	struct np_ctx *c = np_new(NULL);
	struct np_entries e;

	np_fx_pod(c, "x", "new", "198.18.0.1", "app=new", NULL);
	np_fx_pod(c, "x", "old", "198.18.0.1", "app=old", NULL);
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile");
	ASSERT_OK(np_dump(c, &e), "dump");
	if (ASSERT_EQ(e.n_ep, 1, "one entry"))
		ASSERT_EQ(e.ep[0].val.identity, np_pod_identity(c, "x", "new"), "first by name");
	np_entries_fini(&e);
	np_free(c);
}

TEST(capacity_limits_fail_closed)
{
	struct np_limits lim;
	struct np_ctx *c;
	char err[512] = "";
	int reason = 0;

	np_limits_default(&lim);
	lim.max_set_entries = 4;
	c = np_new(&lim);
	np_fx_pod(c, "x", "a", "198.18.0.1", "app=a", NULL);
	np_fx_pod(c, "x", "b", "198.18.0.2", "app=b", NULL);
	/* Ten separate ports: ten entries > 4. */
	np_fx_policy(c, "x", "p",
		     "{'podSelector':{'matchLabels':{'app':'a'}},'ingress':[{'ports':[{'port':1},"
		     "{'port':3},{'port':5},{'port':7},{'port':9},{'port':11},{'port':13},"
		     "{'port':15},{'port':17},{'port':19}]}]}");
	ASSERT_EQ(np_compile(c, NULL, err, sizeof(err)), -ENOSPC, "over per-set limit");
	ASSERT_TRUE(strstr(err, "per-set limit 4; failing closed") != NULL, err);
	ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 1, &reason), 0, "closed");
	ASSERT_EQ(reason, SL_R_POLICY_FAILED, "reason");
	/* Fixing the policy lets it compile again. */
	np_fx_policy(
		c, "x", "p",
		"{'podSelector':{'matchLabels':{'app':'a'}},'ingress':[{'ports':[{'port':1}]}]}");
	ASSERT_OK(np_compile(c, NULL, err, sizeof(err)), "fits");
	ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 1, NULL), 1, "open");
	np_free(c);

	/* The rule map as a whole: a second distinct set does not fit. */
	np_limits_default(&lim);
	lim.max_rules = 3;
	c = np_new(&lim);
	np_fx_pod(c, "x", "a", "198.18.0.1", "app=a", NULL);
	np_fx_pod(c, "x", "b", "198.18.0.2", "app=b", NULL);
	np_fx_policy(c, "x", "pa",
		     "{'podSelector':{'matchLabels':{'app':'a'}},"
		     "'ingress':[{'ports':[{'port':1},{'port':3}]}]}");
	np_fx_policy(c, "x", "pb",
		     "{'podSelector':{'matchLabels':{'app':'b'}},"
		     "'ingress':[{'ports':[{'port':5},{'port':7}]}]}");
	ASSERT_EQ(np_compile(c, NULL, err, sizeof(err)), -ENOSPC, "map full");
	ASSERT_TRUE(strstr(err, "do not fit the maps") != NULL, err);
	/* Exactly one of them failed; neither is open beyond its rules. */
	ASSERT_EQ((np_pod_ruleset(c, "x", "a", SL_NP_INGRESS) == SL_NP_RS_FAILED) +
			  (np_pod_ruleset(c, "x", "b", SL_NP_INGRESS) == SL_NP_RS_FAILED),
		  1, "one failed");
	ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 5, NULL), 0, "a not on 5");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.2", TCP, 1, NULL), 0, "b not on 1");
	/* Room again once pa's set is gone: the failed one is retried on
	 * every compile. The compile that removes pa's set cannot use its
	 * room yet (the agent adds before it deletes), the next one can. */
	np_policy_del(c, "x", "pa");
	np_compile(c, NULL, err, sizeof(err));
	ASSERT_OK(np_compile(c, NULL, err, sizeof(err)), "retried");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.2", TCP, 5, NULL), 1, "b on 5");
	np_free(c);

	/* Identities. */
	np_limits_default(&lim);
	lim.max_identities = 1;
	c = np_new(&lim);
	ASSERT_OK(np_fx_pod(c, "x", "a", "198.18.0.1", "app=a", NULL), "first");
	ASSERT_EQ(np_fx_pod(c, "x", "b", "198.18.0.2", "app=b", NULL), -ENOSPC, "second");
	ASSERT_OK(np_fx_pod(c, "x", "a2", "198.18.0.3", "app=a", NULL), "same identity");
	/* Relabelled past the limit: the old version does not linger. */
	ASSERT_EQ(np_fx_pod(c, "x", "a2", "198.18.0.3", "app=c", NULL), -ENOSPC, "relabel");
	ASSERT_EQ(np_pod_identity(c, "x", "a2"), 0, "old version gone");
	ASSERT_NEQ(np_pod_identity(c, "x", "a"), 0, "a stays");
	np_free(c);
}

TEST(recipe_09_port_and_named_port)
{
	/* Recipe 09: apiserver admits role=monitoring on 5000 only (pod port,
	 * after Service DNAT); the named variant says api-port. */
	static const char *const specs[] = {
		"{'podSelector':{'matchLabels':{'app':'apiserver'}},'ingress':[{'from':[{'"
		"podSelector':"
		"{'matchLabels':{'role':'monitoring'}}}],'ports':[{'port':5000}]}]}",
		"{'podSelector':{'matchLabels':{'app':'apiserver'}},'ingress':[{'from':[{'"
		"podSelector':"
		"{'matchLabels':{'role':'monitoring'}}}],'ports':[{'port':'api-port'}]}]}",
	};

	for (int i = 0; i < 2; i++) {
		struct np_ctx *c = np_new(NULL);

		np_fx_pod(c, "default", "api", "198.18.0.1", "app=apiserver",
			  "api-port/TCP/5000,metrics/TCP/8000");
		np_fx_pod(c, "default", "mon", "198.18.0.2", "role=monitoring", NULL);
		np_fx_pod(c, "default", "other", "198.18.0.3", "app=other", NULL);
		np_fx_policy(c, "default", "api-allow-5000", specs[i]);
		np_compile(c, NULL, NULL, 0);
		ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 5000, NULL), 1, "mon 5000");
		ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 8000, NULL), 0, "mon 8000");
		ASSERT_EQ(np_check(c, "198.18.0.3", "198.18.0.1", TCP, 5000, NULL), 0, "other");
		np_free(c);
	}
}

TEST(recipe_11_dns_egress)
{
	/* Recipe 11 v2: foo may only send DNS to kube-system/k8s-app=kube-dns. */
	struct np_ctx *c = np_new(NULL);

	np_fx_pod(c, "default", "foo", "198.18.0.1", "app=foo", NULL);
	np_fx_pod(c, "default", "web", "198.18.0.2", "app=web", NULL);
	np_fx_pod(c, "kube-system", "dns", "198.18.0.53", "k8s-app=kube-dns", NULL);
	np_fx_policy(c, "default", "foo-deny-egress",
		     "{'podSelector':{'matchLabels':{'app':'foo'}},'policyTypes':['Egress'],"
		     "'egress':[{'to':[{'namespaceSelector':{'matchLabels':"
		     "{'kubernetes.io/metadata.name':'kube-system'}},'podSelector':{'matchLabels':"
		     "{'k8s-app':'kube-dns'}}}],'ports':[{'port':53,'protocol':'UDP'},"
		     "{'port':53,'protocol':'TCP'}]}]}");
	np_compile(c, NULL, NULL, 0);
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.53", UDP, 53, NULL), 1, "dns udp");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.53", TCP, 53, NULL), 1, "dns tcp");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.2", TCP, 80, NULL), 0, "web");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.19.0.1", TCP, 80, NULL), 0, "internet");
	ASSERT_EQ(np_check(c, "198.18.0.2", "198.18.0.1", TCP, 80, NULL), 1, "ingress free");
	np_free(c);
}

/* Two contexts fed the same objects in different orders dump the same bytes. */
TEST(deterministic_output)
{
	struct np_ctx *c1 = np_fx_model(), *c2 = np_new(NULL);
	struct np_entries e1, e2;
	static const char *const pol[][3] = {
		{"x", "p1",
		 "{'podSelector':{},'ingress':[{'from':[{'namespaceSelector':{}}],"
		 "'ports':[{'port':80},{'port':'serve-81-udp','protocol':'UDP'}]}]}"},
		{"y", "p2",
		 "{'podSelector':{'matchLabels':{'pod':'b'}},'egress':[{'to':[{'ipBlock':"
		 "{'cidr':'198.18.0.0/24','except':['198.18.0.4/30']}}]}]}"},
		{"z", "p3", "{'podSelector':{},'ingress':[{'from':[{'podSelector':{}}]}]}"},
	};

	for (int i = 0; i < 3; i++)
		np_fx_policy(c1, pol[i][0], pol[i][1], pol[i][2]);
	for (int i = 2; i >= 0; i--)
		np_fx_policy(c2, pol[i][0], pol[i][1], pol[i][2]);
	for (int n = 2; n >= 0; n--) {
		for (int p = 2; p >= 0; p--) {
			char l[32], ip[32];

			snprintf(l, sizeof(l), "pod=%s", np_fx_pods[p]);
			np_fx_ip(n * 3 + p, ip, sizeof(ip));
			np_fx_pod(c2, np_fx_nss[n], np_fx_pods[p], ip, l, NP_FX_PORTS);
		}
		char l[32];

		snprintf(l, sizeof(l), "ns=%s", np_fx_nss[n]);
		np_fx_ns(c2, np_fx_nss[n], l);
	}
	ASSERT_OK(np_compile(c1, NULL, NULL, 0), "c1");
	ASSERT_OK(np_compile(c2, NULL, NULL, 0), "c2");
	ASSERT_OK(np_dump(c1, &e1), "dump1");
	ASSERT_OK(np_dump(c2, &e2), "dump2");
	ASSERT_TRUE(e1.n_rules > 0 && e1.n_cidrs > 0, "non-trivial");
	if (ASSERT_EQ(e1.n_ep, e2.n_ep, "ep") && ASSERT_EQ(e1.n_rules, e2.n_rules, "rules") &&
	    ASSERT_EQ(e1.n_cidrs, e2.n_cidrs, "cidrs")) {
		ASSERT_TRUE(!memcmp(e1.ep, e2.ep, e1.n_ep * sizeof(*e1.ep)), "ep bytes");
		ASSERT_TRUE(!memcmp(e1.rules, e2.rules, e1.n_rules * sizeof(*e1.rules)),
			    "rule bytes");
		ASSERT_TRUE(!memcmp(e1.cidrs, e2.cidrs, e1.n_cidrs * sizeof(*e1.cidrs)),
			    "cidr bytes");
	}
	/* Sorted. */
	for (size_t i = 1; i < e1.n_rules; i++)
		if (!ASSERT_TRUE(e1.rules[i - 1].key.ruleset < e1.rules[i].key.ruleset ||
					 (e1.rules[i - 1].key.ruleset == e1.rules[i].key.ruleset &&
					  e1.rules[i - 1].key.peer <= e1.rules[i].key.peer),
				 "sorted"))
			break;
	np_entries_fini(&e1);
	np_entries_fini(&e2);
	np_free(c1);
	np_free(c2);
}

static void *decode_kind(enum k8s_kind kind, const char *sq)
{
	char *doc = strdup(sq), err[256] = "";
	struct json_object *j;
	void *obj = NULL;

	for (char *s = doc; *s; s++)
		if (*s == '\'')
			*s = '"';
	j = sl_json_parse(doc, strlen(doc), err, sizeof(err));
	if (ASSERT_NOT_NULL(j, "json") &&
	    !ASSERT_OK(k8s_obj_decode(kind, j, &obj, err, sizeof(err)), "decode"))
		fprintf(stderr, "  %s\n", err);
	json_object_put(j);
	free(doc);
	return obj;
}

TEST(from_decoded_objects)
{
	struct np_ctx *c = np_new(NULL);
	struct k8s_namespace *ns =
		decode_kind(K8S_KIND_NAMESPACE, "{'apiVersion':'v1','kind':'Namespace','metadata':{"
						"'name':'shop','labels':{'env':'prod'}}}");
	struct k8s_pod *web = decode_kind(
		K8S_KIND_POD,
		"{'apiVersion':'v1','kind':'Pod','metadata':{'namespace':'shop','name':'web',"
		"'labels':{'app':'web'}},'spec':{'nodeName':'n1','containers':[{'name':'c','ports':"
		"["
		"{'name':'http','containerPort':8080},{'name':'dns','containerPort':53,'protocol':'"
		"UDP'},"
		"{'containerPort':9999}]}]},'status':{'phase':'Running','podIP':'198.18.0.1',"
		"'podIPs':[{'ip':'198.18.0.1'},{'ip':'2001:db8::1'}]}}");
	struct k8s_pod *done = decode_kind(
		K8S_KIND_POD,
		"{'apiVersion':'v1','kind':'Pod','metadata':{'namespace':'shop','name':'job',"
		"'labels':{'app':'job'}},'spec':{'containers':[{'name':'c'}]},"
		"'status':{'phase':'Succeeded','podIP':'198.18.0.2'}}");
	struct k8s_pod *cli = decode_kind(
		K8S_KIND_POD,
		"{'apiVersion':'v1','kind':'Pod','metadata':{'namespace':'other','name':'cli'},"
		"'spec':{'containers':[{'name':'c'}]},'status':{'phase':'Running','podIP':'198.18."
		"0.3'}}");
	struct np_stats st;

	if (!ns || !web || !done || !cli)
		goto out;
	ASSERT_OK(np_ns_set_k8s(c, ns), "ns");
	ASSERT_OK(np_pod_set_k8s(c, web, NULL, 0), "web");
	ASSERT_OK(np_pod_set_k8s(c, done, NULL, 0), "job");
	ASSERT_OK(np_pod_set_k8s(c, cli, NULL, 0), "cli");
	np_fx_policy(c, "shop", "p",
		     "{'podSelector':{'matchLabels':{'app':'web'}},'ingress':[{'from':[{"
		     "'namespaceSelector':{'matchExpressions':[{'key':'env','operator':'"
		     "DoesNotExist'}]}}],"
		     "'ports':[{'port':'http'},{'port':'dns','protocol':'UDP'}]}]}");
	ASSERT_OK(np_compile(c, NULL, NULL, 0), "compile");
	np_stats_get(c, &st);
	ASSERT_EQ(st.ep_entries, 3, "two addresses of web + cli; the finished pod has none");
	ASSERT_EQ(np_check(c, "198.18.0.3", "198.18.0.1", TCP, 8080, NULL), 1, "http");
	ASSERT_EQ(np_check(c, "198.18.0.3", "198.18.0.1", UDP, 53, NULL), 1, "dns");
	ASSERT_EQ(np_check(c, "198.18.0.3", "198.18.0.1", TCP, 9999, NULL), 0, "unnamed port");
	ASSERT_EQ(np_check(c, "198.18.0.3", "2001:db8::1", TCP, 8080, NULL), 1, "v6 address");
	/* shop has env, so its own pods are not admitted. */
	np_fx_pod(c, "shop", "x", "198.18.0.4", "app=x", NULL);
	np_compile(c, NULL, NULL, 0);
	ASSERT_EQ(np_check(c, "198.18.0.4", "198.18.0.1", TCP, 8080, NULL), 0, "env exists");
out:
	k8s_namespace_free(ns);
	k8s_pod_free(web);
	k8s_pod_free(done);
	k8s_pod_free(cli);
	np_free(c);
}

static void pod_on(struct np_ctx *c, const char *name, const char *ip, const char *app,
		   const char *node)
{
	struct sl_label l = {"app", app};
	const char *ips[1] = {ip};
	struct np_pod_spec s = {.ns = "x",
				.name = name,
				.node = node,
				.labels = &l,
				.n_labels = 1,
				.ips = ips,
				.n_ips = 1};

	ASSERT_OK(np_pod_set(c, &s, NULL, 0), name);
}

TEST(node_view)
{
	/* n1 holds only what its own pods need: x/a's egress set, not x/b's
	 * ingress set (x/b lives on n2, whose agent enforces it). */
	struct np_ctx *c = np_new(NULL);
	struct np_entries e;
	struct np_diff d;
	struct np_stats st;

	ASSERT_OK(np_set_node(c, "n1"), "node");
	pod_on(c, "a", "198.18.0.1", "a", "n1");
	pod_on(c, "b", "198.18.0.2", "b", "n2");
	np_fx_policy(
		c, "x", "in-b",
		"{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':[{'podSelector':"
		"{'matchLabels':{'app':'a'}}}],'ports':[{'port':80}]}]}");
	np_fx_policy(
		c, "x", "out-a",
		"{'podSelector':{'matchLabels':{'app':'a'}},'policyTypes':['Egress'],'egress':[{"
		"'to':[{'podSelector':{'matchLabels':{'app':'b'}}}],'ports':[{'port':80},{'port':"
		"81}]}]}");
	ASSERT_OK(np_compile(c, &d, NULL, 0), "compile");
	ASSERT_EQ(d.add.n_rules, 2, "a's egress set only");
	np_diff_fini(&d);
	ASSERT_OK(np_dump(c, &e), "dump");
	ASSERT_EQ(e.n_ep, 2, "both endpoints (b as a peer)");
	for (size_t i = 0; i < e.n_ep; i++) {
		if (e.ep[i].val.identity == np_pod_identity(c, "x", "b")) {
			ASSERT_EQ(e.ep[i].val.ruleset[SL_NP_INGRESS], 0, "remote: identity only");
		} else {
			ASSERT_EQ(e.ep[i].val.ruleset[SL_NP_EGRESS],
				  np_pod_ruleset(c, "x", "a", SL_NP_EGRESS), "local egress");
			ASSERT_TRUE(e.ep[i].val.ruleset[SL_NP_EGRESS] >= SL_NP_RS_MIN, "isolated");
		}
	}
	np_entries_fini(&e);
	np_stats_get(c, &st);
	ASSERT_EQ(st.rulesets, 1, "loaded");
	ASSERT_EQ(st.rulesets_all, 2, "interned");
	/* On n1, a -> b:81 passes a's egress; b's ingress is n2's to check. */
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.2", TCP, 81, NULL), 1, "local view");
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.2", TCP, 82, NULL), 0, "egress closed");
	/* b is rescheduled onto n1: its set is loaded, then unloaded again. */
	np_pod_del(c, "x", "b");
	pod_on(c, "b", "198.18.0.2", "b", "n1");
	ASSERT_OK(np_compile(c, &d, NULL, 0), "compile 2");
	ASSERT_EQ(d.add.n_rules, 1, "b's ingress set loaded");
	ASSERT_EQ(d.del.n_rules, 0, "nothing unloaded");
	ASSERT_EQ(d.add.n_ep, 1, "b's entry gains its set");
	np_diff_fini(&d);
	ASSERT_EQ(np_check(c, "198.18.0.1", "198.18.0.2", TCP, 81, NULL), 0, "b checks now");
	pod_on(c, "b", "198.18.0.2", "b", "n2");
	ASSERT_OK(np_compile(c, &d, NULL, 0), "compile 3");
	ASSERT_EQ(d.del.n_rules, 1, "unloaded");
	np_diff_fini(&d);
	/* Cluster-wide again. */
	ASSERT_OK(np_set_node(c, NULL), "all");
	ASSERT_OK(np_compile(c, &d, NULL, 0), "compile 4");
	ASSERT_EQ(d.add.n_rules, 1, "reloaded");
	np_diff_fini(&d);
	np_free(c);
}
