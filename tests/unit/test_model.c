// SPDX-License-Identifier: Apache-2.0
/*
 * agent/model.c: Services + EndpointSlices + Nodes -> desired LB state, and
 * the diff of two states. Each scenario is a few JSON objects (written with
 * ' for " to stay readable) and the exact frontends/backends expected, in
 * the model's text dump. Covers every frontend kind, port matching by name
 * and protocol, KEP-1669 fallback, traffic policies, affinity, health-check
 * counts, bad input, datapath limits, diff ordering and a 10k x 10 scale case.
 *
 * Lab addresses (198.18.0.0/15): nodes 198.18.0.x, pods 198.18.64.x,
 * cluster IPs 198.18.128.x, LB/external IPs 198.19.0.x.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/model.h"
#include "harness.h"
#include "sluice/buf.h"
#include "sluice/json.h"
#include "sluice/log.h"

/* --- JSON builders ------------------------------------------------------------------------ */

#define META(name) "'metadata':{'namespace':'default','name':'" name "'}"
#define META_TS(name, ts) \
	"'metadata':{'namespace':'default','name':'" name "','creationTimestamp':'" ts "'}"

#define SVC_TS(name, ts, spec) \
	"{'apiVersion':'v1','kind':'Service'," META_TS(name, ts) ",'spec':" spec "}"
#define SVC(name, spec) "{'apiVersion':'v1','kind':'Service'," META(name) ",'spec':" spec "}"
#define SVC_ST(name, spec, status) \
	"{'apiVersion':'v1','kind':'Service'," META(name) ",'spec':" spec ",'status':" status "}"

#define SLICE_NS(ns, name, svc, ports, eps)                                                       \
	"{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice','metadata':{'namespace':'" ns \
	"','name':'" name "','labels':{'kubernetes.io/service-name':'" svc                        \
	"'}},'addressType':'IPv4','ports':" ports ",'endpoints':" eps "}"
#define SLICE(name, svc, ports, eps) SLICE_NS("default", name, svc, ports, eps)

#define EP(ip, node)	    "{'addresses':['" ip "'],'nodeName':'" node "'}"
#define EPC(ip, node, cond) "{'addresses':['" ip "'],'nodeName':'" node "','conditions':" cond "}"

#define C_READY	   "{'ready':true,'serving':true,'terminating':false}"
#define C_TERM	   "{'ready':false,'serving':true,'terminating':true}"
#define C_TERM_OFF "{'ready':false,'serving':false,'terminating':true}"
#define C_UNREADY  "{'ready':false,'serving':false,'terminating':false}"

#define P_HTTP	     "[{'name':'http','protocol':'TCP','port':8080}]"
#define SPEC_CIP(ip) "{'clusterIP':'" ip "','ports':[{'name':'http','port':80,'targetPort':8080}]}"

#define NODE(name, int_ip, ext_ip, ready)                                                         \
	"{'apiVersion':'v1','kind':'Node','metadata':{'name':'" name "'},'status':{'addresses':[" \
	"{'type':'InternalIP','address':'" int_ip "'},{'type':'ExternalIP','address':'" ext_ip    \
	"'},{'type':'Hostname','address':'" name                                                  \
	"'}],'conditions':[{'type':'Ready','status':'" ready "'}]}}"
#define NODES                                                                             \
	"[" NODE("n1", "198.18.0.1", "198.18.0.101", "True") "," NODE("n2", "198.18.0.2", \
								      "198.18.0.102", "True") "]"

/* Parses JSON written with ' for ". */
static struct json_object *jparse(const char *txt)
{
	char err[128], *s = strdup(txt), *p;
	struct json_object *o;

	if (!s)
		return NULL;
	for (p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	o = sl_json_parse(s, strlen(s), err, sizeof(err));
	if (!o)
		fprintf(stderr, "  test JSON does not parse: %s\n  %s\n", err, s);
	free(s);
	return o;
}

/* Builds a state for node n1 from three JSON arrays (NULL = empty). */
static struct lbm_state *build(const char *svcs, const char *slices, const char *nodes)
{
	struct json_object *a = svcs ? jparse(svcs) : NULL, *b = slices ? jparse(slices) : NULL;
	struct json_object *c = jparse(nodes ? nodes : NODES);
	struct lbm_state *st = NULL;
	int err = -EINVAL;

	if ((!svcs || a) && (!slices || b) && c)
		err = lbm_state_build_json("n1", a, b, c, &st);
	ASSERT_OK(err, "lbm_state_build_json");
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	return st;
}

/* The dump lines that start with prefix ("fe ", "be ", "hc ", "problem "), malloc'd. */
static char *lines(const struct lbm_state *st, const char *prefix)
{
	struct sl_buf all = SL_BUF_INIT, out = SL_BUF_INIT;
	const char *p, *nl;
	char *r;

	lbm_state_dump(st, &all);
	for (p = all.len ? all.data : ""; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		if (!strncmp(p, prefix, strlen(prefix)))
			sl_buf_append(&out, p, (size_t)(nl - p + 1));
	}
	sl_buf_fini(&all);
	r = strdup(out.len ? sl_buf_cstr(&out) : "");
	sl_buf_fini(&out);
	return r;
}

/* Compares one section of the dump with the expected text. */
static bool expect(const struct lbm_state *st, const char *prefix, const char *want,
		   const char *name)
{
	char *got;
	bool ok;

	if (!st)
		return ASSERT_NOT_NULL(st, name);
	got = lines(st, prefix);
	ok = ASSERT_STREQ(got, want, name);
	if (!ok)
		fprintf(stderr, "  got:\n%s  want:\n%s", got ? got : "", want);
	free(got);
	return ok;
}

/* --- frontends and port matching ------------------------------------------------------------ */

TEST(model_clusterip_basic)
{
	struct lbm_state *st =
		build("[" SVC("web", SPEC_CIP("198.18.128.10")) "]",
		      "[" SLICE("web-a", "web", P_HTTP,
				"[" EP("198.18.64.2", "n2") "," EP("198.18.64.1", "n1") "]") "]",
		      NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.1:8080 198.18.64.2:8080]\n",
		    "fe"))
		goto out;
	if (!expect(st, "be ",
		    "be 198.18.64.1:8080/TCP active local\n"
		    "be 198.18.64.2:8080/TCP active remote\n",
		    "be"))
		goto out;
	ASSERT_EQ(st->n_services, 1, "services");
	ASSERT_EQ(st->services[0].n_frontends, 1, "n_frontends");
	ASSERT_EQ(st->frontends[0].key.addr, htonl(0xc612800a), "key addr network order");
	ASSERT_EQ(st->frontends[0].key.port, htons(80), "key port network order");
	ASSERT_EQ(st->frontends[0].key.proto, IPPROTO_TCP, "proto");
	ASSERT_EQ(st->frontends[0].key.scope, SL_SCOPE_EXT, "scope");
	ASSERT_EQ(st->n_problems, 0, "no problems");
	ASSERT_EQ(st->stats.bad_objects, 0, "no bad objects");
out:
	lbm_state_free(st);
}

/* kube-proxy joins service and slice ports by (name, protocol); the slice
 * port's number is the target; the service's targetPort is never read. */
TEST(model_port_matching)
{
	struct lbm_state *st = build(
		"[" SVC("dns", "{'clusterIP':'198.18.128.53','ports':["
			       "{'name':'dns','protocol':'UDP','port':53,'targetPort':'dns'},"
			       "{'name':'dns-tcp','protocol':'TCP','port':53,'targetPort':5353},"
			       "{'name':'metrics','protocol':'SCTP','port':9153}]}") "]",
		"[" SLICE("dns-a", "dns",
			  "[{'name':'dns','protocol':'UDP','port':1053},"
			  "{'name':'dns-tcp','protocol':'TCP','port':1053},"
			  "{'name':'metrics','protocol':'TCP','port':9153}]",
			  "[" EP("198.18.64.1", "n1") "]") ","
		/* named targetPort resolved differently for other pods: own slice */
		SLICE("dns-b", "dns", "[{'name':'dns','protocol':'UDP','port':2053}]",
		      "[" EP("198.18.64.2", "n2") "]") "]",
		NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.128.53:53/TCP ext CLUSTERIP [198.18.64.1:1053]\n"
		    "fe 198.18.128.53:53/UDP ext CLUSTERIP [198.18.64.1:1053 198.18.64.2:2053]\n"
		    "fe 198.18.128.53:9153/SCTP ext CLUSTERIP reject\n",
		    "fe"))
		goto out;
	expect(st, "be ",
	       "be 198.18.64.1:1053/TCP active local\n"
	       "be 198.18.64.1:1053/UDP active local\n"
	       "be 198.18.64.2:2053/UDP active remote\n",
	       "be");
out:
	lbm_state_free(st);
}

/* Unnamed ports: absent name on either side is "", absent protocol is TCP. */
TEST(model_unnamed_port_defaults)
{
	struct lbm_state *st = build(
		"[" SVC("a", "{'clusterIP':'198.18.128.1','ports':[{'port':80}]}") "]",
		"[" SLICE("a-1", "a", "[{'port':8080}]", "[" EP("198.18.64.1", "n2") "]") "," SLICE(
			"a-2", "a", "[{'name':'','protocol':'TCP','port':8081}]",
			"[" EP("198.18.64.2",
			       "n2") "]") "," SLICE("a-3", "a", "[{'name':'x','port':8082}]",
						    "[" EP("198.18.64.3",
							   "n2") "]") "," SLICE("a-4", "a",
										"[{'name':''}]",
										"[" EP("198.18.64."
										       "4",
										       "n2") "]") "]",
		NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.128.1:80/TCP ext CLUSTERIP [198.18.64.1:8080 198.18.64.2:8081]\n",
		    "fe"))
		goto out;
	ASSERT_EQ(st->stats.bad_endpoints, 1, "port-less slice port ignored and counted");
out:
	lbm_state_free(st);
}

TEST(model_dedupe_across_slices)
{
	/* 64.1:8080 twice (remote first, then local: local wins); 64.2 in two
	 * slices; 64.1 on a different port is a different backend. */
	struct lbm_state *st = build(
		"[" SVC("web", SPEC_CIP("198.18.128.10")) "]",
		"[" SLICE(
			"web-a", "web", P_HTTP,
			"[" EP("198.18.64.1", "n2") "," EP(
				"198.18.64.2",
				"n2") "]") "," SLICE("web-b", "web", P_HTTP,
						     "[" EP("198.18.64.1", "n1") "," EP(
							     "198.18.64.2",
							     "n2") "]") "," SLICE("web-c", "web",
										  "[{'name':'http',"
										  "'protocol':'TCP'"
										  ",'port':9090}]",
										  "[" EP("198.18."
											 "64.1",
											 "n1") "]") "]",
		NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.128.10:80/TCP ext CLUSTERIP "
		    "[198.18.64.1:8080 198.18.64.1:9090 198.18.64.2:8080]\n",
		    "fe"))
		goto out;
	expect(st, "be ",
	       "be 198.18.64.1:8080/TCP active local\n"
	       "be 198.18.64.1:9090/TCP active local\n"
	       "be 198.18.64.2:8080/TCP active remote\n",
	       "be");
out:
	lbm_state_free(st);
}

TEST(model_ipv4_only)
{
	struct lbm_state *st =
		build("[" SVC("web",
			      "{'clusterIP':'198.18.128.10','clusterIPs':['198.18.128.10','fd00::"
			      "10'],"
			      "'ports':[{'name':'http','port':80}]}") "," SVC("v6only",
									      "{'clusterIP':'fd00::"
									      "11','ports':[{'port'"
									      ":80}]}") "]",
		      "[" SLICE("web-a", "web", P_HTTP,
				"[" EP("198.18.64.1",
				       "n1") ",{'addresses':[]},{'addresses':['nope']}"
					     "]") ","
						  "{'apiVersion':'discovery.k8s.io/"
						  "v1','kind':'EndpointSlice','"
						  "metadata':{'namespace':"
						  "'default','name':'web-v6','labels':"
						  "{'kubernetes.io/"
						  "service-name':'web'}},"
						  "'addressType':'IPv6','ports'"
						  ":" P_HTTP ",'endpoints':[{'addresses':['fd00::"
						  "1']}]},"
						  "{'apiVersion':'discovery.k8s.io/"
						  "v1','kind':'EndpointSlice','"
						  "metadata':{'namespace':"
						  "'default','name':'web-fqdn','"
						  "labels':{'kubernetes.io/"
						  "service-name':'web'}},"
						  "'addressType':'FQDN','ports'"
						  ":" P_HTTP ",'endpoints':[{'addresses':['a."
						  "example']}]}]",
		      NULL);

	if (!expect(st, "fe ", "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.1:8080]\n", "fe"))
		goto out;
	ASSERT_EQ(st->stats.ignored_slices, 2, "IPv6 + FQDN slices ignored");
	ASSERT_EQ(st->stats.bad_endpoints, 2, "empty and unparsable addresses");
	ASSERT_EQ(st->stats.skipped_services, 1, "IPv6-only service");
out:
	lbm_state_free(st);
}

TEST(model_services_not_proxied)
{
	struct lbm_state *st = build(
		"[" SVC("headless",
			"{'clusterIP':'None','ports':[{'port':80}]"
			"}") "," SVC("headless2",
				     "{'clusterIPs':["
				     "'None'],'ports'"
				     ":[{'port':80}]"
				     "}") "," SVC("unallocated",
						  "{'ports':[{'port':80}]}") "," SVC("ext",
										     "{'type':'"
										     "ExternalName'"
										     ",'"
										     "externalName'"
										     ":'"
										     "example.com',"
										     "'"
										     "clusterIP':'"
										     "198."
										     "18.128.9',"
										     "'ports':[{'"
										     "port':"
										     "80}]}") ","
											      "{'"
											      "apiV"
											      "ersi"
											      "o"
											      "n':'"
											      "v1',"
											      "'"
											      "kind"
											      "':'"
											      "Serv"
											      "ice'"
											      ","
											      "'met"
											      "adat"
											      "a"
											      "':{'"
											      "name"
											      "spac"
											      "e"
											      "':'"
											      "defa"
											      "ult'"
											      ","
											      "'nam"
											      "e':'"
											      "othe"
											      "r',"
											      "'lab"
											      "els'"
											      ":"
											      "{'"
											      "serv"
											      "ice."
											      "kube"
											      "rnet"
											      "e"
											      "s."
											      "io/"
											      "serv"
											      "ice-"
											      "prox"
											      "y-"
											      "name"
											      "':'"
											      "some"
											      "one-"
											      "else"
											      "'}},"
											      "'spe"
											      "c':{"
											      "'"
											      "clus"
											      "terI"
											      "P"
											      "':'"
											      "198."
											      "18."
											      "128."
											      "8'"
											      ",'"
											      "port"
											      "s':"
											      "[{'"
											      "port"
											      "':"
											      "80}]"
											      "}}"
											      "]",
		"[" SLICE("headless-a", "headless", "[{'port':80}]",
			  "[" EP("198.18.64.1", "n1") "]") ","
							   /* headless-labelled and other-proxy
							      slices are not ours either */
							   "{'apiVersion':'discovery.k8s.io/"
							   "v1','kind':'EndpointSlice','"
							   "metadata':{'namespace':"
							   "'default','name':'x','labels':{'"
							   "kubernetes.io/"
							   "service-name':'other',"
							   "'service.kubernetes.io/"
							   "headless':''}},'addressType':'IPv4'"
							   ",'endpoints':[]}"
							   "]",
		NULL);

	if (!ASSERT_NOT_NULL(st, "build"))
		return;
	ASSERT_EQ(st->n_frontends, 0, "no frontends");
	ASSERT_EQ(st->n_backends, 0, "no backends");
	ASSERT_EQ(st->n_services, 0, "no services");
	ASSERT_EQ(st->stats.skipped_services, 5, "skipped");
	ASSERT_EQ(st->stats.ignored_slices, 1, "headless-labelled slice");
	ASSERT_EQ(st->stats.bad_objects, 0, "none of these is malformed");
	lbm_state_free(st);
}

#define SPEC_NP(etp)                                                                        \
	"{'type':'NodePort','clusterIP':'198.18.128.10','externalTrafficPolicy':'" etp "'," \
	"'ports':[{'name':'http','port':80,'nodePort':30080}]}"

TEST(model_nodeport)
{
	struct lbm_state *st =
		build("[" SVC("web", SPEC_NP("Cluster")) "]",
		      "[" SLICE("web-a", "web", P_HTTP, "[" EP("198.18.64.2", "n2") "]") "]", NULL);

	expect(st, "fe ",
	       "fe 0.0.0.0:30080/TCP ext NODEPORT [198.18.64.2:8080]\n"
	       "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.2:8080]\n",
	       "fe");
	if (st)
		ASSERT_EQ(st->frontends[0].be, st->frontends[1].be, "one slot list shared");
	lbm_state_free(st);
}

TEST(model_loadbalancer)
{
	struct lbm_state *st = build(
		"[" SVC_ST("lb",
			   "{'type':'LoadBalancer','clusterIP':'198.18.128.10','ports':[{'name':'"
			   "http',"
			   "'port':80,'nodePort':30080}]}",
			   "{'loadBalancer':{'ingress':[{'ip':'198.19.0.1'},{'ip':'198.19.0.2','"
			   "ipMode':"
			   "'Proxy'},{'hostname':'lb.example'},{'ip':'fd00::1'},{'ip':'198.19.0.3',"
			   "'ipMode':'VIP'}]}}") ","
		/* status of a non-LB service is not programmed */
		SVC_ST("cip", SPEC_CIP("198.18.128.11"),
		       "{'loadBalancer':{'ingress':[{'ip':'198.19.0.9'}]}}") "]",
		"[" SLICE("lb-a", "lb", P_HTTP, "[" EP("198.18.64.2", "n2") "]") "]", NULL);

	expect(st, "fe ",
	       "fe 0.0.0.0:30080/TCP ext NODEPORT [198.18.64.2:8080]\n"
	       "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.2:8080]\n"
	       "fe 198.18.128.11:80/TCP ext CLUSTERIP reject\n"
	       "fe 198.19.0.1:80/TCP ext LOADBALANCER [198.18.64.2:8080]\n"
	       "fe 198.19.0.3:80/TCP ext LOADBALANCER [198.18.64.2:8080]\n",
	       "fe");
	lbm_state_free(st);
}

/* Only externalIPs this node owns are translated (CVE-2020-8554). */
TEST(model_external_ips_local_only)
{
	struct lbm_state *st = build(
		"[" SVC("web",
			"{'clusterIP':'198.18.128.10','externalIPs':['198.18.0.101','198.19.0.7',"
			"'198.18.0.1'],'ports':[{'name':'http','port':80}]}") "]",
		"[" SLICE("web-a", "web", P_HTTP, "[" EP("198.18.64.2", "n2") "]") "]", NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.0.1:80/TCP ext EXTERNALIP [198.18.64.2:8080]\n"
		    "fe 198.18.0.101:80/TCP ext EXTERNALIP [198.18.64.2:8080]\n"
		    "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.2:8080]\n",
		    "fe"))
		goto out;
	ASSERT_EQ(st->stats.foreign_external_ips, 1, "198.19.0.7 not ours");
	ASSERT_EQ(st->n_node_addrs, 2, "InternalIP + ExternalIP, not Hostname");
out:
	lbm_state_free(st);
}

/* An address that is both LB ingress and externalIP is one frontend. */
TEST(model_lb_and_external_ip_merge)
{
	struct lbm_state *st =
		build("[" SVC_ST("lb",
				 "{'type':'LoadBalancer','clusterIP':'198.18.128.10','externalIPs':"
				 "['198.18.0.101'],"
				 "'ports':[{'name':'http','port':80,'nodePort':30080}]}",
				 "{'loadBalancer':{'ingress':[{'ip':'198.18.0.101'}]}}") "]",
		      "[" SLICE("lb-a", "lb", P_HTTP, "[" EP("198.18.64.2", "n2") "]") "]", NULL);

	if (!expect(st, "fe ",
		    "fe 0.0.0.0:30080/TCP ext NODEPORT [198.18.64.2:8080]\n"
		    "fe 198.18.0.101:80/TCP ext EXTERNALIP|LOADBALANCER [198.18.64.2:8080]\n"
		    "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.2:8080]\n",
		    "fe"))
		goto out;
	ASSERT_EQ(st->n_problems, 0, "not a conflict");
out:
	lbm_state_free(st);
}

/* --- KEP-1669 endpoint conditions ----------------------------------------------------------- */

TEST(model_conditions_ready_preferred)
{
	/* ready (explicit and unset), serving-terminating, terminating-not-serving,
	 * not ready: only the ready ones take new flows; terminating ones stay
	 * as backends to drain; the not-ready one is gone. */
	struct lbm_state *st = build(
		"[" SVC("web", SPEC_CIP("198.18.128.10")) "]",
		"[" SLICE("web-a", "web", P_HTTP,
			  "[" EPC("198.18.64.1", "n2", C_READY) "," EP("198.18.64.2", "n2") "," EPC(
				  "198.18.64.3", "n2",
				  C_TERM) "," EPC("198.18.64.4", "n2",
						  C_TERM_OFF) "," EPC("198.18.64.5", "n2",
								      C_UNREADY) "]") "]",
		NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.1:8080 198.18.64.2:8080]\n",
		    "fe"))
		goto out;
	expect(st, "be ",
	       "be 198.18.64.1:8080/TCP active remote\n"
	       "be 198.18.64.2:8080/TCP active remote\n"
	       "be 198.18.64.3:8080/TCP terminating remote\n"
	       "be 198.18.64.4:8080/TCP terminating remote\n",
	       "be");
out:
	lbm_state_free(st);
}

TEST(model_conditions_terminating_fallback)
{
	struct lbm_state *st = build(
		"[" SVC("web", SPEC_CIP("198.18.128.10")) "]",
		"[" SLICE("web-a", "web", P_HTTP,
			  "[" EPC("198.18.64.3", "n2", C_TERM) "," EPC(
				  "198.18.64.4", "n2", C_TERM_OFF) "," EPC("198.18.64.5", "n2",
									   C_UNREADY) "]") "]",
		NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.128.10:80/TCP ext CLUSTERIP|TERMINATING [198.18.64.3:8080]\n", "fe"))
		goto out;
	expect(st, "be ",
	       "be 198.18.64.3:8080/TCP terminating remote\n"
	       "be 198.18.64.4:8080/TCP terminating remote\n",
	       "be");
out:
	lbm_state_free(st);
}

TEST(model_conditions_nothing_serving)
{
	struct lbm_state *st = build("[" SVC("web", SPEC_CIP("198.18.128.10")) "]",
				     "[" SLICE("web-a", "web", P_HTTP,
					       "[" EPC("198.18.64.4", "n2", C_TERM_OFF) "," EPC(
						       "198.18.64.5", "n2", C_UNREADY) "]") "]",
				     NULL);

	if (!expect(st, "fe ", "fe 198.18.128.10:80/TCP ext CLUSTERIP reject\n", "fe"))
		goto out;
	ASSERT_FALSE(st->frontends[0].drop, "no endpoints anywhere: reject, not drop");
	expect(st, "be ", "be 198.18.64.4:8080/TCP terminating remote\n", "be");
out:
	lbm_state_free(st);
}

/* kube-proxy does not look at node readiness. */
TEST(model_not_ready_node_still_counts)
{
	struct lbm_state *st =
		build("[" SVC("web", SPEC_CIP("198.18.128.10")) "]",
		      "[" SLICE("web-a", "web", P_HTTP, "[" EP("198.18.64.2", "n2") "]") "]",
		      "[" NODE("n1", "198.18.0.1", "198.18.0.101",
			       "True") "," NODE("n2", "198.18.0.2", "198.18.0.102", "False") "]");

	expect(st, "fe ", "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.2:8080]\n", "fe");
	lbm_state_free(st);
}

/* --- traffic policies and health checks ----------------------------------------------------- */

TEST(model_etp_local)
{
	struct lbm_state *st =
		build("[" SVC("web", SPEC_NP("Local")) "]",
		      "[" SLICE("web-a", "web", P_HTTP,
				"[" EP("198.18.64.1", "n1") "," EP("198.18.64.2", "n2") "]") "]",
		      NULL);

	/* outside clients: local only; in-node clients (INT): cluster-wide;
	 * the ClusterIP is untouched by eTP. */
	expect(st, "fe ",
	       "fe 0.0.0.0:30080/TCP ext NODEPORT|LOCAL_EXT [198.18.64.1:8080]\n"
	       "fe 0.0.0.0:30080/TCP int NODEPORT|LOCAL_EXT [198.18.64.1:8080 198.18.64.2:8080]\n"
	       "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.1:8080 198.18.64.2:8080]\n",
	       "fe");
	lbm_state_free(st);
}

TEST(model_etp_local_no_local_endpoints_drops)
{
	struct lbm_state *st =
		build("[" SVC("web", SPEC_NP("Local")) "]",
		      "[" SLICE("web-a", "web", P_HTTP, "[" EP("198.18.64.2", "n2") "]") "]", NULL);

	if (!expect(st, "fe ",
		    "fe 0.0.0.0:30080/TCP ext NODEPORT|LOCAL_EXT drop\n"
		    "fe 0.0.0.0:30080/TCP int NODEPORT|LOCAL_EXT [198.18.64.2:8080]\n"
		    "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.2:8080]\n",
		    "fe"))
		goto out;
	ASSERT_TRUE(st->frontends[0].drop, "drop flag");
	ASSERT_EQ(st->frontends[0].count, 0, "count 0");
out:
	lbm_state_free(st);
}

#define SPEC_LB_LOCAL                                                                         \
	"{'type':'LoadBalancer','clusterIP':'198.18.128.10','externalTrafficPolicy':'Local'," \
	"'healthCheckNodePort':32000,'ports':[{'name':'http','port':80,'nodePort':30080},"    \
	"{'name':'https','port':443,'nodePort':30443}]}"
#define P_HTTP_HTTPS "[{'name':'http','port':8080},{'name':'https','port':8443}]"

TEST(model_health_check_counts)
{
	struct lbm_state *st =
		build("[" SVC_ST("lb", SPEC_LB_LOCAL,
				 "{'loadBalancer':{'ingress':[{'ip':'198.19.0.1'}]}}") "]",
		      "[" SLICE("lb-a", "lb", P_HTTP_HTTPS,
				"[" EP("198.18.64.1", "n1") "," EP("198.18.64.2", "n2") "," EPC(
					"198.18.64.3", "n1", C_TERM) "]") "]",
		      NULL);

	/* kube-proxy sums local ready endpoints over all ports: 1 pod x 2 ports */
	expect(st, "hc ", "hc default/lb port=32000 local=2\n", "hc");
	expect(st, "fe 198.19",
	       "fe 198.19.0.1:80/TCP ext LOADBALANCER|LOCAL_EXT [198.18.64.1:8080]\n"
	       "fe 198.19.0.1:80/TCP int LOADBALANCER|LOCAL_EXT "
	       "[198.18.64.1:8080 198.18.64.2:8080]\n"
	       "fe 198.19.0.1:443/TCP ext LOADBALANCER|LOCAL_EXT [198.18.64.1:8443]\n"
	       "fe 198.19.0.1:443/TCP int LOADBALANCER|LOCAL_EXT "
	       "[198.18.64.1:8443 198.18.64.2:8443]\n",
	       "fe");
	lbm_state_free(st);
}

/* Only terminating local endpoints: traffic still goes to them (fallback),
 * but the health check says 503 so the LB drains the node. */
TEST(model_health_check_only_terminating)
{
	struct lbm_state *st = build(
		"[" SVC_ST("lb", SPEC_LB_LOCAL,
			   "{'loadBalancer':{'ingress':[{'ip':'198.19.0.1'}]}}") "]",
		"[" SLICE("lb-a", "lb", P_HTTP_HTTPS,
			  "[" EP("198.18.64.2", "n2") "," EPC("198.18.64.3", "n1", C_TERM) "]") "]",
		NULL);

	expect(st, "hc ", "hc default/lb port=32000 local=0\n", "hc");
	expect(st, "fe 198.19.0.1:80/",
	       "fe 198.19.0.1:80/TCP ext LOADBALANCER|LOCAL_EXT|TERMINATING "
	       "[198.18.64.3:8080]\n"
	       "fe 198.19.0.1:80/TCP int LOADBALANCER|LOCAL_EXT "
	       "[198.18.64.2:8080]\n",
	       "fe");
	lbm_state_free(st);
}

TEST(model_health_check_only_for_lb_local)
{
	struct lbm_state *st = build(
		"[" SVC("np",
			"{'type':'NodePort','clusterIP':'198.18.128.10','externalTrafficPolicy':"
			"'Local','healthCheckNodePort':32000,'ports':[{'port':80,'nodePort':30080}]"
			"}") "," SVC("lbc", "{'type':'LoadBalancer','clusterIP':'198.18.128.11','"
					    "ports':[{'port':80,"
					    "'nodePort':30081}]}") "]",
		NULL, NULL);

	expect(st, "hc ", "", "no HC server");
	lbm_state_free(st);
}

#define SPEC_ITP(itp)                                                                             \
	"{'clusterIP':'198.18.128.10','internalTrafficPolicy':'" itp "','ports':[{'name':'http'," \
	"'port':80}]}"

TEST(model_itp_local)
{
	struct lbm_state *st =
		build("[" SVC("web", SPEC_ITP("Local")) "]",
		      "[" SLICE("web-a", "web", P_HTTP,
				"[" EP("198.18.64.1", "n1") "," EP("198.18.64.2", "n2") "]") "]",
		      NULL);

	expect(st, "fe ",
	       "fe 198.18.128.10:80/TCP ext CLUSTERIP|LOCAL_INT [198.18.64.1:8080]\n"
	       "fe 198.18.128.10:80/TCP int CLUSTERIP|LOCAL_INT [198.18.64.1:8080]\n",
	       "fe");
	/* the remote endpoint is in no slot list, so not a backend */
	expect(st, "be ", "be 198.18.64.1:8080/TCP active local\n", "be");
	lbm_state_free(st);
}

TEST(model_itp_local_no_local)
{
	struct lbm_state *a =
		build("[" SVC("web", SPEC_ITP("Local")) "]",
		      "[" SLICE("web-a", "web", P_HTTP, "[" EP("198.18.64.2", "n2") "]") "]", NULL);
	struct lbm_state *b = build("[" SVC("web", SPEC_ITP("Local")) "]", NULL, NULL);

	expect(a, "fe ",
	       "fe 198.18.128.10:80/TCP ext CLUSTERIP|LOCAL_INT drop\n"
	       "fe 198.18.128.10:80/TCP int CLUSTERIP|LOCAL_INT drop\n",
	       "endpoints elsewhere: drop");
	expect(b, "fe ",
	       "fe 198.18.128.10:80/TCP ext CLUSTERIP|LOCAL_INT reject\n"
	       "fe 198.18.128.10:80/TCP int CLUSTERIP|LOCAL_INT reject\n",
	       "no endpoints: reject");
	lbm_state_free(a);
	lbm_state_free(b);
}

TEST(model_session_affinity)
{
	struct lbm_state *st = build(
		"[" SVC("a",
			"{'clusterIP':'198.18.128.1','sessionAffinity':'ClientIP','ports':[{'"
			"port':80}]}") "," SVC("b",
					       "{'clusterIP':'198.18.128.2','sessionAffinity':'"
					       "ClientIP',"
					       "'sessionAffinityConfig':{'clientIP':{'"
					       "timeoutSeconds':60}},"
					       "'ports':[{'port':80}]}") "," SVC("c",
										 "{'clusterIP':'"
										 "198.18.128.3','"
										 "sessionAffinity':"
										 "'None','"
										 "ports':[{'port':"
										 "80}]}") "]",
		"[" SLICE("a-1", "a", "[{'port':80}]", "[" EP("198.18.64.1", "n2") "]") "]", NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.128.1:80/TCP ext CLUSTERIP|AFFINITY aff=10800 [198.18.64.1:80]\n"
		    "fe 198.18.128.2:80/TCP ext CLUSTERIP|AFFINITY aff=60 reject\n"
		    "fe 198.18.128.3:80/TCP ext CLUSTERIP reject\n",
		    "fe"))
		goto out;
	ASSERT_EQ(st->frontends[0].affinity_s, 10800, "default timeout");
out:
	lbm_state_free(st);
}

/* --- bad input and datapath limits ---------------------------------------------------------- */

TEST(model_malformed_objects_skipped)
{
	struct lbm_state *st = build(
		"[" SVC("good",
			SPEC_CIP(
				"198.18.128.10")) ","
						  /* wrong JSON types: the decoder rejects it
						   */
						  "{'apiVersion':'v1','kind':'Service','"
						  "metadata':{'namespace':'default','name':'"
						  "badtype'},"
						  "'spec':{'clusterIP':'198.18.128.11','"
						  "ports':'eighty'}},"
						  "{'apiVersion':'v1','kind':'Service','"
						  "metadata':{'namespace':'default'},"
						  "'spec':{'clusterIP':'198.18.128.12','"
						  "ports':[{'port':80}]}},"
						  "42," SVC(
							  "badip",
							  "{'clusterIP':'banana',"
							  "'ports':[{'port':80}]"
							  "}") "," SVC("badtype2",
								       "{'type':'Magic','clusterIP'"
								       ":'198."
								       "18.128.13','ports':[{'port'"
								       ":80}]"
								       "}") "," SVC("badpolicy",
										    "{'clusterIP':'"
										    "198."
										    "18.128.14','"
										    "externalTraffi"
										    "cPolic"
										    "y':'Sometimes'"
										    ","
										    "'ports':[{'"
										    "port':80}"
										    "]}") "," SVC("badpor"
												  "t",
												  "{'"
												  "cluste"
												  "rIP':'"
												  "198."
												  "18."
												  "128."
												  "15','"
												  "ports'"
												  ":[{'"
												  "port':"
												  "80,'"
												  "protoc"
												  "ol':'"
												  "ICMP'}"
												  ","
												  "{'"
												  "port':"
												  "70000}"
												  ",{'"
												  "name':"
												  "'ok','"
												  "port':"
												  "81}]}") "]",
		"[" SLICE("good-a", "good", P_HTTP,
			  "[" EP("198.18.64.1",
				 "n2") "]") ","
					    "{'apiVersion':'discovery.k8s.io/"
					    "v1','kind':'EndpointSlice','metadata':{'"
					    "namespace':"
					    "'default','name':'nolabel'},'addressType':'IPv4'"
					    ",'endpoints':[]},"
					    "{'apiVersion':'discovery.k8s.io/"
					    "v1','kind':'EndpointSlice','metadata':{'"
					    "namespace':"
					    "'default','name':'badeps','labels':{'kubernetes."
					    "io/service-name':'good'}},"
					    "'addressType':'IPv4','endpoints':{'not':'a "
					    "list'}}]",
		NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.128.10:80/TCP ext CLUSTERIP [198.18.64.1:8080]\n"
		    "fe 198.18.128.15:81/TCP ext CLUSTERIP reject\n",
		    "fe"))
		goto out;
	/* badtype, no-name, 42, badip, Magic, Sometimes, ICMP, 70000, nolabel, badeps */
	ASSERT_EQ(st->stats.bad_objects, 10, "bad objects counted");
out:
	lbm_state_free(st);
}

TEST(model_bad_arguments)
{
	struct json_object *o = jparse("{'a':1}");
	struct lbm_state *st = (struct lbm_state *)&st;

	ASSERT_EQ(lbm_state_build_json("n1", o, NULL, NULL, &st), -EINVAL, "not an array");
	ASSERT_NULL(st, "out cleared");
	ASSERT_EQ(lbm_state_build_json("n1", NULL, NULL, NULL, NULL), -EINVAL, "NULL out");
	ASSERT_EQ(lbm_state_build(NULL, &st), -EINVAL, "NULL input");
	ASSERT_OK(lbm_state_build_json(NULL, NULL, NULL, NULL, &st), "all empty");
	if (ASSERT_NOT_NULL(st, "empty state"))
		ASSERT_EQ(st->n_frontends, 0, "empty");
	lbm_state_free(st);
	lbm_state_free(NULL);
	lbm_ops_fini(NULL);
	json_object_put(o);
}

TEST(model_too_many_endpoints)
{
	struct sl_buf b = SL_BUF_INIT;
	struct lbm_state *st = NULL;
	const char *s;
	int i;

	sl_buf_puts(&b,
		    "[{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice','metadata':"
		    "{'namespace':'default','name':'big-a','labels':{'kubernetes.io/service-name':"
		    "'big'}},'addressType':'IPv4','ports':" P_HTTP ",'endpoints':[");
	for (i = 0; i < SL_MAX_SLOTS_PER_SVC + 5; i++)
		sl_buf_printf(&b, "%s{'addresses':['198.18.%d.%d']}", i ? "," : "", 64 + i / 250,
			      1 + i % 250);
	sl_buf_puts(&b, "]}]");
	s = sl_buf_cstr(&b);
	st = build("[" SVC("big", SPEC_CIP("198.18.128.10")) "," SVC("small",
								     SPEC_CIP("198.18.128.11")) "]",
		   s, NULL);
	if (!ASSERT_NOT_NULL(st, "build"))
		goto out;
	ASSERT_EQ(st->n_frontends, 2, "both services programmed");
	ASSERT_EQ(st->frontends[0].count, SL_MAX_SLOTS_PER_SVC, "cut to the datapath limit");
	ASSERT_EQ(st->n_backends, SL_MAX_SLOTS_PER_SVC, "backends of the kept slots only");
	if (ASSERT_EQ(st->n_problems, 1, "one problem")) {
		ASSERT_STREQ(st->problems[0].name, "big", "problem service");
		ASSERT_STREQ(st->problems[0].reason, "TooManyEndpoints", "reason");
	}
	/* first by address: 198.18.64.1 */
	ASSERT_EQ(st->backends[st->frontends[0].be[0]].addr, htonl(0xc6124001), "first kept");
out:
	sl_buf_fini(&b);
	lbm_state_free(st);
}

/*
 * One Service "big" (ClusterIP 198.18.128.10, port http) with n ready endpoints
 * 198.18.64.1 upwards in slices of 100, as the EndpointSlice controller writes
 * them, built through lbm_state_build for a dataplane holding max_backends.
 */
static struct lbm_state *build_big(uint32_t n, uint32_t max_backends)
{
	const char *svc_txt = "{\"metadata\":{\"namespace\":\"default\",\"name\":\"big\"},"
			      "\"spec\":{\"clusterIP\":\"198.18.128.10\",\"ports\":[{\"name\":"
			      "\"http\",\"port\":80}]}}";
	uint32_t n_slices = (n + 99) / 100;
	struct k8s_endpointslice **slices = calloc(n_slices ? n_slices : 1, sizeof(*slices));
	struct k8s_service *svc = NULL;
	struct lbm_state *st = NULL;
	struct sl_buf b = SL_BUF_INIT;
	struct lbm_input in = {.node_name = "n1", .max_backends = max_backends};
	char err[256] = "";
	uint32_t k;

	if (!ASSERT_NOT_NULL(slices, "calloc") ||
	    !ASSERT_OK(k8s_obj_decode_text(K8S_KIND_SERVICE, svc_txt, strlen(svc_txt),
					   (void **)&svc, err, sizeof(err)),
		       err))
		goto out;
	for (k = 0; k < n_slices; k++) {
		sl_buf_reset(&b);
		sl_buf_printf(&b,
			      "{\"metadata\":{\"namespace\":\"default\",\"name\":\"big-%05u\","
			      "\"labels\":{\"kubernetes.io/service-name\":\"big\"}},"
			      "\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\","
			      "\"protocol\":\"TCP\",\"port\":8080}],\"endpoints\":[",
			      k);
		for (uint32_t i = k * 100; i < n && i < (k + 1) * 100; i++) {
			uint32_t a = 0xc6124001u + i; /* 198.18.64.1 + i, inside 198.18.0.0/15 */

			sl_buf_printf(&b, "%s{\"addresses\":[\"%u.%u.%u.%u\"]}", i % 100 ? "," : "",
				      a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
		}
		sl_buf_puts(&b, "]}");
		if (!ASSERT_OK(k8s_obj_decode_text(K8S_KIND_ENDPOINTSLICE, b.data, b.len,
						   (void **)&slices[k], err, sizeof(err)),
			       err))
			goto out;
	}
	in.services = (const struct k8s_service *const *)&svc;
	in.n_services = 1;
	in.slices = (const struct k8s_endpointslice *const *)slices;
	in.n_slices = n_slices;
	ASSERT_OK(lbm_state_build(&in, &st), "lbm_state_build");
out:
	for (k = 0; slices && k < n_slices; k++)
		k8s_obj_free(K8S_KIND_ENDPOINTSLICE, slices[k]);
	free(slices);
	k8s_obj_free(K8S_KIND_SERVICE, svc);
	sl_buf_fini(&b);
	return st;
}

/* Checks one frontend holding want of n endpoints, and a TooManyEndpoints
 * problem naming the bound exactly when endpoints were left out. */
static void expect_big(const struct lbm_state *st, uint32_t n, uint32_t want, const char *what)
{
	char msg[160];

	if (!ASSERT_NOT_NULL(st, what) || !ASSERT_EQ(st->n_frontends, 1, what))
		return;
	ASSERT_EQ(st->frontends[0].count, want, what);
	ASSERT_EQ(st->n_backends, want, what);
	/* the first by address are kept: the last kept is 198.18.64.1 + want - 1 */
	ASSERT_EQ(st->backends[st->frontends[0].be[want - 1]].addr, htonl(0xc6124001u + want - 1),
		  what);
	if (want == n) {
		ASSERT_EQ(st->n_problems, 0, what);
		return;
	}
	if (!ASSERT_EQ(st->n_problems, 1, what))
		return;
	ASSERT_STREQ(st->problems[0].reason, "TooManyEndpoints", what);
	snprintf(msg, sizeof(msg),
		 "port 'http' has %u endpoints; the datapath holds %u per frontend", n, want);
	if (!strstr(st->problems[0].message, msg))
		(void)TEST_FAIL_AT("%s: message \"%s\" lacks \"%s\"", what, st->problems[0].message,
				   msg);
}

/*
 * The bound on a frontend's backends belongs to the dataplane: the eBPF slot
 * block (the default) cuts a 10,000-endpoint Service to 4,096 and says so;
 * the netfilter dataplanes, which program every endpoint like kube-proxy,
 * get all 10,000; the model's own 16-bit count bounds those at 65,535.
 */
TEST(model_max_backends_by_dataplane)
{
	struct lbm_state *st;

	st = build_big(10000, 0);
	expect_big(st, 10000, SL_MAX_SLOTS_PER_SVC, "default = bpf slot block");
	lbm_state_free(st);
	st = build_big(10000, LBM_MAX_BACKENDS_BPF);
	expect_big(st, 10000, SL_MAX_SLOTS_PER_SVC, "bpf");
	lbm_state_free(st);
	st = build_big(10000, LBM_MAX_BACKENDS);
	expect_big(st, 10000, 10000, "netfilter: every endpoint");
	lbm_state_free(st);
	st = build_big(100, 10);
	expect_big(st, 100, 10, "any bound in between");
	lbm_state_free(st);
	st = build_big(LBM_MAX_BACKENDS + 5, UINT32_MAX);
	expect_big(st, LBM_MAX_BACKENDS + 5, LBM_MAX_BACKENDS, "larger than the count holds");
	lbm_state_free(st);
}

/* Two services want one externalIP:port: the older keeps it, the newer is
 * reported; both keep their ClusterIPs. */
TEST(model_frontend_conflict)
{
	/* clang-format off */
	const char *svcs =
		"[" SVC_TS("new", "2024-05-01T00:00:00Z",
			   "{'clusterIP':'198.18.128.20','externalIPs':['198.18.0.101'],"
			   "'ports':[{'name':'http','port':80}]}") ","
		SVC_TS("old", "2024-01-01T00:00:00Z",
		       "{'clusterIP':'198.18.128.21','externalIPs':['198.18.0.101'],"
		       "'externalTrafficPolicy':'Local','ports':[{'name':'web','port':80}]}") "]";
	const char *slices =
		"[" SLICE("new-a", "new", P_HTTP, "[" EP("198.18.64.1", "n2") "]") ","
		SLICE("old-a", "old", "[{'name':'web','port':8080}]", "[" EP("198.18.64.2", "n1") "]")
		"]";
	/* clang-format on */
	struct lbm_state *st = build(svcs, slices, NULL);

	if (!expect(st, "fe ",
		    "fe 198.18.0.101:80/TCP ext EXTERNALIP|LOCAL_EXT [198.18.64.2:8080]\n"
		    "fe 198.18.0.101:80/TCP int EXTERNALIP|LOCAL_EXT [198.18.64.2:8080]\n"
		    "fe 198.18.128.20:80/TCP ext CLUSTERIP [198.18.64.1:8080]\n"
		    "fe 198.18.128.21:80/TCP ext CLUSTERIP [198.18.64.2:8080]\n",
		    "fe"))
		goto out;
	expect(st, "problem ",
	       "problem default/new FrontendConflict: frontend 198.18.0.101:80/TCP of port "
	       "'http' "
	       "is not programmed: it is already used by service default/old port 'web'\n",
	       "problem");
	/* "new" sorts first by name: the owner is chosen by age, not by name */
	ASSERT_EQ(st->services[0].n_frontends, 1, "new: ClusterIP only");
	ASSERT_EQ(st->services[1].n_frontends, 3, "old: EXT + INT + ClusterIP");
out:
	lbm_state_free(st);
}

/* Two services selecting the same pod port share one logical backend. */
TEST(model_shared_backend)
{
	struct lbm_state *st = build(
		"[" SVC("a", SPEC_CIP("198.18.128.1")) "," SVC("b", SPEC_CIP("198.18.128.2")) "]",
		"[" SLICE("a-1", "a", P_HTTP, "[" EP("198.18.64.1", "n2") "]") "," SLICE(
			"b-1", "b", P_HTTP, "[" EP("198.18.64.1", "n2") "]") "]",
		NULL);

	if (!ASSERT_NOT_NULL(st, "build") || !ASSERT_EQ(st->n_frontends, 2, "frontends"))
		goto out;
	ASSERT_EQ(st->n_backends, 1, "one backend");
	ASSERT_EQ(st->frontends[0].be[0], st->frontends[1].be[0], "same index");
out:
	lbm_state_free(st);
}

/* Two ports of one service on the same port/protocol: the first is kept. */
TEST(model_duplicate_service_port)
{
	struct lbm_state *st =
		build("[" SVC("a", "{'clusterIP':'198.18.128.1','ports':[{'name':'x','port':80},"
				   "{'name':'y','port':80}]}") "]",
		      "[" SLICE("a-1", "a", "[{'name':'x','port':8080},{'name':'y','port':9090}]",
				"[" EP("198.18.64.1", "n2") "]") "]",
		      NULL);

	expect(st, "fe ", "fe 198.18.128.1:80/TCP ext CLUSTERIP [198.18.64.1:8080]\n", "fe");
	expect(st, "be ", "be 198.18.64.1:8080/TCP active remote\n", "be");
	expect(st, "problem ",
	       "problem default/a FrontendConflict: frontend 198.18.128.1:80/TCP of port 'y' is "
	       "not programmed: it is already used by service default/a port 'x'\n",
	       "problem");
	lbm_state_free(st);
}

/* The same service twice in the input (a caller bug): first copy wins, logged. */
TEST(model_duplicate_input_object)
{
	struct lbm_state *st = build(
		"[" SVC("a", SPEC_CIP("198.18.128.1")) "," SVC("a", SPEC_CIP("198.18.128.2")) "]",
		NULL, NULL);

	if (!expect(st, "fe ", "fe 198.18.128.1:80/TCP ext CLUSTERIP reject\n", "fe"))
		goto out;
	ASSERT_EQ(st->stats.bad_objects, 1, "counted");
	ASSERT_EQ(st->n_services, 1, "one service");
out:
	lbm_state_free(st);
}

/* Input order never changes the output. */
TEST(model_deterministic)
{
	const char *s1 = "[" SVC("a", SPEC_NP("Local")) "," SVC("b", SPEC_CIP("198.18.128.11")) "]";
	const char *s2 = "[" SVC("b", SPEC_CIP("198.18.128.11")) "," SVC("a", SPEC_NP("Local")) "]";
	const char *l1 = "[" SLICE("a-1", "a", P_HTTP, "[" EP("198.18.64.1", "n1") "]") "," SLICE(
		"b-1", "b", P_HTTP,
		"[" EP("198.18.64.3", "n2") "," EP("198.18.64.2", "n1") "]") "]";
	const char *l2 = "[" SLICE(
		"b-1", "b", P_HTTP,
		"[" EP("198.18.64.3", "n2") "," EP(
			"198.18.64.2", "n1") "]") "," SLICE("a-1", "a", P_HTTP,
							    "[" EP("198.18.64.1", "n1") "]") "]";
	struct lbm_state *x = build(s1, l1, NULL), *y = build(s2, l2, NULL);
	char *dx = x ? lines(x, "") : NULL, *dy = y ? lines(y, "") : NULL;

	if (ASSERT_NOT_NULL(dx, "x") && ASSERT_NOT_NULL(dy, "y")) {
		ASSERT_STREQ(dx, dy, "same dump");
		ASSERT_TRUE(strlen(dx) > 100, "non-trivial");
	}
	free(dx);
	free(dy);
	lbm_state_free(x);
	lbm_state_free(y);
}

TEST(model_find_frontend)
{
	struct lbm_state *st = build("[" SVC("web", SPEC_NP("Local")) "]", NULL, NULL);
	struct sl_svc_key k = {0, htons(30080), IPPROTO_TCP, SL_SCOPE_INT};

	if (!ASSERT_NOT_NULL(st, "build"))
		return;
	ASSERT_EQ(lbm_state_find_frontend(st, &k), 1, "nodeport int");
	k.proto = IPPROTO_UDP;
	ASSERT_EQ(lbm_state_find_frontend(st, &k), -1, "udp missing");
	lbm_state_free(st);
}

/* --- diff ------------------------------------------------------------------------------------ */

static const char *op_name(enum lbm_op_kind k)
{
	switch (k) {
	case LBM_OP_BACKEND_ADD:
		return "be+";
	case LBM_OP_BACKEND_UPDATE:
		return "be~";
	case LBM_OP_FRONTEND_UPSERT:
		return "fe=";
	case LBM_OP_FRONTEND_DELETE:
		return "fe-";
	case LBM_OP_BACKEND_REMOVE:
		return "be-";
	}
	return "?";
}

/* "be+ 198.18.64.1:8080/TCP\nfe= 198.18.128.10:80/TCP ext 2\n..." */
static char *ops_text(const struct lbm_state *p, const struct lbm_state *n,
		      const struct lbm_ops *ops)
{
	struct sl_buf b = SL_BUF_INIT;
	char ip[INET_ADDRSTRLEN], *r;
	size_t i;

	for (i = 0; i < ops->n; i++) {
		const struct lbm_op *op = &ops->v[i];
		struct in_addr a;
		unsigned int port, proto;

		if (op->kind == LBM_OP_BACKEND_ADD || op->kind == LBM_OP_BACKEND_UPDATE ||
		    op->kind == LBM_OP_BACKEND_REMOVE) {
			const struct lbm_backend *be = op->kind == LBM_OP_BACKEND_REMOVE
							       ? &p->backends[op->prev_idx]
							       : &n->backends[op->next_idx];

			a.s_addr = be->addr;
			inet_ntop(AF_INET, &a, ip, sizeof(ip));
			sl_buf_printf(&b, "%s %s:%u %s\n", op_name(op->kind), ip, ntohs(be->port),
				      op->kind == LBM_OP_BACKEND_REMOVE ? ""
				      : be->state == SL_BE_ACTIVE	? "active"
									: "terminating");
			continue;
		}
		{
			const struct lbm_frontend *fe = op->kind == LBM_OP_FRONTEND_DELETE
								? &p->frontends[op->prev_idx]
								: &n->frontends[op->next_idx];

			a.s_addr = fe->key.addr;
			port = ntohs(fe->key.port);
			proto = fe->key.proto;
			inet_ntop(AF_INET, &a, ip, sizeof(ip));
			sl_buf_printf(&b, "%s %s:%u/%u %s", op_name(op->kind), ip, port, proto,
				      fe->key.scope == SL_SCOPE_INT ? "int" : "ext");
			if (op->kind == LBM_OP_FRONTEND_UPSERT)
				sl_buf_printf(&b, " n=%u%s", fe->count,
					      op->prev_idx == LBM_NO_IDX ? " new" : "");
			sl_buf_puts(&b, "\n");
		}
	}
	r = strdup(b.len ? sl_buf_cstr(&b) : "");
	sl_buf_fini(&b);
	return r;
}

static bool expect_diff(const struct lbm_state *p, const struct lbm_state *n, const char *want,
			const char *name)
{
	struct lbm_ops ops = {0};
	char *got = NULL;
	bool ok = false;

	if (!ASSERT_OK(lbm_diff(p, n, &ops), name))
		goto out;
	got = ops_text(p, n, &ops);
	ok = ASSERT_STREQ(got, want, name);
	if (!ok)
		fprintf(stderr, "  got:\n%s  want:\n%s", got ? got : "", want);
out:
	free(got);
	lbm_ops_fini(&ops);
	return ok;
}

#define S_WEB "[" SVC("web", SPEC_NP("Cluster")) "]"
#define L_WEB2                            \
	"[" SLICE("web-a", "web", P_HTTP, \
		  "[" EP("198.18.64.1", "n1") "," EP("198.18.64.2", "n2") "]") "]"

TEST(model_diff_initial_and_resync)
{
	struct lbm_state *a = build(S_WEB, L_WEB2, NULL), *b = build(S_WEB, L_WEB2, NULL);

	if (!ASSERT_NOT_NULL(a, "a") || !ASSERT_NOT_NULL(b, "b"))
		goto out;
	expect_diff(NULL, a,
		    "be+ 198.18.64.1:8080 active\n"
		    "be+ 198.18.64.2:8080 active\n"
		    "fe= 0.0.0.0:30080/6 ext n=2 new\n"
		    "fe= 198.18.128.10:80/6 ext n=2 new\n",
		    "initial sync");
	expect_diff(a, b, "", "no-change resync: zero ops");
	expect_diff(a, NULL,
		    "fe- 0.0.0.0:30080/6 ext\n"
		    "fe- 198.18.128.10:80/6 ext\n"
		    "be- 198.18.64.1:8080 \n"
		    "be- 198.18.64.2:8080 \n",
		    "teardown");
	expect_diff(NULL, NULL, "", "empty to empty");
out:
	lbm_state_free(a);
	lbm_state_free(b);
}

TEST(model_diff_endpoint_churn)
{
	struct lbm_state *a = build(S_WEB, L_WEB2, NULL);
	struct lbm_state *b =
		build(S_WEB,
		      "[" SLICE("web-a", "web", P_HTTP,
				"[" EP("198.18.64.2", "n2") "," EP("198.18.64.3", "n2") "," EPC(
					"198.18.64.1", "n1", C_TERM) "]") "]",
		      NULL);
	struct lbm_state *c =
		build(S_WEB, "[" SLICE("web-a", "web", P_HTTP, "[" EP("198.18.64.3", "n2") "]") "]",
		      NULL);

	/* new backend first, then the frontends that use it; 64.1 starts draining */
	expect_diff(a, b,
		    "be~ 198.18.64.1:8080 terminating\n"
		    "be+ 198.18.64.3:8080 active\n"
		    "fe= 0.0.0.0:30080/6 ext n=2\n"
		    "fe= 198.18.128.10:80/6 ext n=2\n",
		    "add + terminate");
	/* frontends stop referencing 64.1/64.2 before they are removed */
	expect_diff(b, c,
		    "fe= 0.0.0.0:30080/6 ext n=1\n"
		    "fe= 198.18.128.10:80/6 ext n=1\n"
		    "be- 198.18.64.1:8080 \n"
		    "be- 198.18.64.2:8080 \n",
		    "remove");
	lbm_state_free(a);
	lbm_state_free(b);
	lbm_state_free(c);
}

/* Turning eTP Local on: the INT entry must exist before the EXT entry points
 * in-node clients at it; turning it off: EXT first, then INT goes. */
TEST(model_diff_scope_order)
{
	struct lbm_state *a = build(S_WEB, L_WEB2, NULL);
	struct lbm_state *b = build("[" SVC("web", SPEC_NP("Local")) "]", L_WEB2, NULL);

	expect_diff(a, b,
		    "fe= 0.0.0.0:30080/6 int n=2 new\n"
		    "fe= 0.0.0.0:30080/6 ext n=1\n",
		    "cluster -> local");
	expect_diff(b, a,
		    "fe= 0.0.0.0:30080/6 ext n=2\n"
		    "fe- 0.0.0.0:30080/6 int\n",
		    "local -> cluster");
	lbm_state_free(a);
	lbm_state_free(b);
}

TEST(model_diff_type_change)
{
	struct lbm_state *a = build(S_WEB, L_WEB2, NULL);
	struct lbm_state *b = build("[" SVC("web", SPEC_CIP("198.18.128.10")) "]", L_WEB2, NULL);
	struct lbm_state *c =
		build("[" SVC("web", "{'type':'ExternalName','externalName':'x.example'}") "]",
		      L_WEB2, NULL);

	expect_diff(a, b, "fe- 0.0.0.0:30080/6 ext\n", "NodePort -> ClusterIP");
	expect_diff(b, c,
		    "fe- 198.18.128.10:80/6 ext\n"
		    "be- 198.18.64.1:8080 \n"
		    "be- 198.18.64.2:8080 \n",
		    "ClusterIP -> ExternalName");
	lbm_state_free(a);
	lbm_state_free(b);
	lbm_state_free(c);
}

TEST(model_diff_flag_changes)
{
	struct lbm_state *a = build(S_WEB, L_WEB2, NULL);
	struct lbm_state *b =
		build("[" SVC("web", "{'type':'NodePort','clusterIP':'198.18.128.10',"
				     "'sessionAffinity':'ClientIP','ports':[{'name':'http',"
				     "'port':80,'nodePort':30080}]}") "]",
		      L_WEB2, NULL);

	expect_diff(a, b,
		    "fe= 0.0.0.0:30080/6 ext n=2\n"
		    "fe= 198.18.128.10:80/6 ext n=2\n",
		    "affinity on");
	lbm_state_free(a);
	lbm_state_free(b);
}

/* --- scale ------------------------------------------------------------------------------------ */

#define N_SVC 10000
#define N_EP  10

static char *scale_services(void)
{
	struct sl_buf b = SL_BUF_INIT;
	char *r;
	int i;

	sl_buf_puts(&b, "[");
	for (i = 0; i < N_SVC; i++)
		sl_buf_printf(
			&b,
			"%s{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"namespace\":"
			"\"ns%d\",\"name\":\"svc%d\"},\"spec\":{\"type\":\"%s\",\"clusterIP\":"
			"\"198.18.%d.%d\",\"ports\":[{\"name\":\"http\",\"port\":80%s}]}}",
			i ? "," : "", i % 7, i, i % 10 ? "ClusterIP" : "NodePort", 128 + i / 250,
			1 + i % 250, i % 10 ? "" : ",\"nodePort\":0");
	sl_buf_puts(&b, "]");
	r = sl_buf_steal(&b, NULL);
	return r;
}

/* Slices; `bump` shifts the endpoints of service 0 so one service changes. */
static char *scale_slices(int bump)
{
	struct sl_buf b = SL_BUF_INIT;
	int i, k;

	sl_buf_puts(&b, "[");
	for (i = 0; i < N_SVC; i++) {
		sl_buf_printf(
			&b,
			"%s{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
			"\"metadata\":{\"namespace\":\"ns%d\",\"name\":\"svc%d-x\",\"labels\":"
			"{\"kubernetes.io/service-name\":\"svc%d\"}},\"addressType\":\"IPv4\","
			"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}],"
			"\"endpoints\":[",
			i ? "," : "", i % 7, i, i);
		for (k = 0; k < N_EP; k++) {
			int n = i * N_EP + k + (i == 0 ? bump : 0);

			sl_buf_printf(
				&b, "%s{\"addresses\":[\"198.%d.%d.%d\"],\"nodeName\":\"n%d\"}",
				k ? "," : "", 18 + n / 65536, (n / 256) % 256, n % 256, n % 3);
		}
		sl_buf_puts(&b, "]}");
	}
	sl_buf_puts(&b, "]");
	return sl_buf_steal(&b, NULL);
}

TEST(model_scale_10k_x_10)
{
	char *svcs = scale_services(), *sl = scale_slices(0), *sl2 = scale_slices(N_EP / 2);
	struct json_object *js = NULL, *jl = NULL, *jl2 = NULL, *jn = jparse(NODES);
	struct lbm_state *a = NULL, *b = NULL, *c = NULL;
	struct lbm_ops ops = {0};
	size_t i, n_np = 0;

	if (!ASSERT_NOT_NULL(svcs, "svcs") || !ASSERT_NOT_NULL(sl, "slices") ||
	    !ASSERT_NOT_NULL(sl2, "slices2"))
		goto out;
	js = sl_json_parse(svcs, strlen(svcs), NULL, 0);
	jl = sl_json_parse(sl, strlen(sl), NULL, 0);
	jl2 = sl_json_parse(sl2, strlen(sl2), NULL, 0);
	if (!ASSERT_NOT_NULL(js, "parse svcs") || !ASSERT_NOT_NULL(jl, "parse slices") ||
	    !ASSERT_NOT_NULL(jl2, "parse slices2"))
		goto out;
	if (!ASSERT_OK(lbm_state_build_json("n1", js, jl, jn, &a), "build a") ||
	    !ASSERT_OK(lbm_state_build_json("n1", js, jl, jn, &b), "build b") ||
	    !ASSERT_OK(lbm_state_build_json("n1", js, jl2, jn, &c), "build c"))
		goto out;
	/* NodePort services here have nodePort 0 (not allocated): ClusterIP only */
	ASSERT_EQ(a->n_frontends, N_SVC, "one ClusterIP frontend per service");
	ASSERT_EQ(a->n_backends, N_SVC * N_EP, "backends");
	ASSERT_EQ(a->n_services, N_SVC, "services");
	ASSERT_EQ(a->n_problems, 0, "no problems");
	ASSERT_EQ(a->stats.bad_objects, 0, "no bad objects");
	for (i = 0; i < a->n_frontends; i++) {
		n_np += !!(a->frontends[i].flags & SL_SVC_F_NODEPORT);
		if (a->frontends[i].count != N_EP)
			break;
		if (i && a->frontends[i].key.addr == a->frontends[i - 1].key.addr)
			break;
	}
	ASSERT_EQ(i, a->n_frontends, "every frontend has 10 slots and its own address");
	ASSERT_EQ(n_np, 0, "no nodeport");

	if (!ASSERT_OK(lbm_diff(NULL, a, &ops), "diff initial"))
		goto out;
	ASSERT_EQ(ops.n, N_SVC + N_SVC * N_EP, "initial ops");
	lbm_ops_fini(&ops);
	if (!ASSERT_OK(lbm_diff(a, b, &ops), "diff resync"))
		goto out;
	ASSERT_EQ(ops.n, 0, "no-change resync at scale");
	lbm_ops_fini(&ops);
	/* service 0's endpoints shift by 5: 5 of them overlap service 1's, which
	 * are shared backends now (same ip:port), 5 old ones go */
	if (!ASSERT_OK(lbm_diff(a, c, &ops), "diff one change"))
		goto out;
	ASSERT_EQ(ops.n, 1 + 5, "one upsert + 5 removes");
	if (ops.n == 6) {
		ASSERT_EQ(ops.v[0].kind, LBM_OP_FRONTEND_UPSERT, "upsert first");
		ASSERT_EQ(ops.v[5].kind, LBM_OP_BACKEND_REMOVE, "removes last");
	}
out:
	lbm_ops_fini(&ops);
	lbm_state_free(a);
	lbm_state_free(b);
	lbm_state_free(c);
	json_object_put(js);
	json_object_put(jl);
	json_object_put(jl2);
	json_object_put(jn);
	free(svcs);
	free(sl);
	free(sl2);
}
