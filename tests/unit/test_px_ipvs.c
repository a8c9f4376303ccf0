// SPDX-License-Identifier: Apache-2.0
/*
 * agent/px_ipvs.c, kube-proxy's IPVS mode. This kernel has no IP_VS, so what
 * is checked here is: the probe and open() refuse with EOPNOTSUPP and a
 * reason naming IPVS; the generic netlink messages the backend would send,
 * built from real model fragments and parsed back with libnl against the
 * kernel's attribute policy (include/uapi/linux/ip_vs.h, net/netfilter/ipvs/
 * ip_vs_ctl.c); the graceful-termination weights; kube-ipvs0's addresses in
 * a private netns; the ipset and iptables text.
 *
 * Lab addresses (198.18.0.0/15): node 198.18.0.1, pods 198.18.64.x,
 * cluster IPs 198.18.128.x, LB/external IPs 198.19.0.x.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "agent/model.h"
#include "agent/px_ipvs.h"
#include "harness.h"
#include "sluice/buf.h"
#include "sluice/json.h"

#define META(name)	"'metadata':{'namespace':'default','name':'" name "'}"
#define SVC(name, spec) "{'apiVersion':'v1','kind':'Service'," META(name) ",'spec':" spec "}"
#define SVC_ST(name, spec, status) \
	"{'apiVersion':'v1','kind':'Service'," META(name) ",'spec':" spec ",'status':" status "}"
#define SLICE(name, svc, ports, eps)                                                          \
	"{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice','metadata':{'namespace':" \
	"'default','name':'" name "','labels':{'kubernetes.io/service-name':'" svc            \
	"'}},'addressType':'IPv4','ports':" ports ",'endpoints':" eps "}"
#define EPC(ip, node, cond) "{'addresses':['" ip "'],'nodeName':'" node "','conditions':" cond "}"
#define C_READY		    "{'ready':true,'serving':true,'terminating':false}"
#define C_TERM		    "{'ready':false,'serving':true,'terminating':true}"
#define NODES                                                                                \
	"[{'apiVersion':'v1','kind':'Node','metadata':{'name':'n1'},'status':{'addresses':[" \
	"{'type':'InternalIP','address':'198.18.0.1'}]}}]"

/* A fake family id: the messages are only built and parsed, never sent. */
#define FAMILY 0x2a

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

/* The model of one Service (= its fragment) for node n1. */
static struct lbm_state *build(const char *svcs, const char *slices)
{
	struct json_object *a = jparse(svcs), *b = slices ? jparse(slices) : NULL,
			   *c = jparse(NODES);
	struct lbm_state *st = NULL;
	int err = -EINVAL;

	if (a && (!slices || b) && c)
		err = lbm_state_build_json("n1", a, b, c, &st);
	ASSERT_OK(err, "lbm_state_build_json");
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	return st;
}

static __be32 ip4(const char *s)
{
	struct in_addr a = {0};

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static ssize_t find_fe(const struct lbm_state *st, const char *addr, uint16_t port, uint8_t proto)
{
	struct sl_svc_key k = {.addr = ip4(addr), .port = htons(port), .proto = proto};

	return lbm_state_find_frontend(st, &k);
}

/* ClusterIP 198.18.128.10:80 with ClientIP affinity (300 s): 198.18.64.1 ready
 * (on n1), 198.18.64.2 serving-terminating (kept only to drain). */
#define AFFINITY_SVC                                                                  \
	"[" SVC("web", "{'clusterIP':'198.18.128.10','sessionAffinity':'ClientIP',"   \
		       "'sessionAffinityConfig':{'clientIP':{'timeoutSeconds':300}}," \
		       "'ports':[{'name':'http','port':80,'protocol':'TCP'}]}") "]"
#define AFFINITY_SLICE                                                               \
	"[" SLICE("web-1", "web", "[{'name':'http','protocol':'TCP','port':8080}]",  \
		  "[" EPC("198.18.64.1", "n1", C_READY) "," EPC("198.18.64.2", "n2", \
								C_TERM) "]") "]"

/* --- the kernel: no IP_VS here ------------------------------------------------------ */

static bool kernel_has_ipvs(void)
{
	return !access("/proc/net/ip_vs", F_OK);
}

TEST(probe_names_the_missing_ipvs)
{
	char why[400] = "untouched";
	int rc = pxy_ipvs_probe(why, sizeof(why));

	if (kernel_has_ipvs()) {
		/* a kernel with IPVS: usable, or only the ipset tool missing */
		ASSERT_TRUE(rc == 0 || rc == -ENOENT, "probe with IPVS");
		return;
	}
	ASSERT_EQ(rc, -EOPNOTSUPP, "probe without IP_VS");
	ASSERT_TRUE(strstr(why, "IPVS") != NULL, "reason names IPVS");
	ASSERT_TRUE(strstr(why, "generic netlink family 'IPVS' not found") != NULL,
		    "reason says what was looked for");
	ASSERT_TRUE(strstr(why, "--dataplane nftables or iptables") != NULL,
		    "reason says what to use instead");
	ASSERT_TRUE(strchr(why, '\n') == NULL, "one line");
	/* a short buffer truncates, never overflows */
	char small[8];

	memset(small, 'x', sizeof(small));
	ASSERT_EQ(pxy_ipvs_probe(small, sizeof(small)), -EOPNOTSUPP, "short buffer");
	ASSERT_EQ(strlen(small), sizeof(small) - 1, "truncated and terminated");
}

TEST(open_refuses_with_eopnotsupp)
{
	struct pxy_cfg cfg = {.node_name = "n1"};
	struct pxy *p;

	if (kernel_has_ipvs())
		return;
	errno = 0;
	p = pxy_ipvs_ops.open(&cfg);
	ASSERT_NULL(p, "open");
	ASSERT_EQ(errno, EOPNOTSUPP, "errno");
	if (p)
		pxy_ipvs_ops.close(p);
	ASSERT_STREQ(pxy_ipvs_ops.name, "ipvs", "name");
}

/* --- generic netlink messages --------------------------------------------------------- */

/* The kernel's policies (net/netfilter/ipvs/ip_vs_ctl.c), written from the uapi. */
static struct nla_policy cmd_policy[IPVS_CMD_ATTR_MAX + 1] = {
	[IPVS_CMD_ATTR_SERVICE] = {.type = NLA_NESTED},
	[IPVS_CMD_ATTR_DEST] = {.type = NLA_NESTED},
};
static struct nla_policy svc_policy[IPVS_SVC_ATTR_MAX + 1] = {
	[IPVS_SVC_ATTR_AF] = {.type = NLA_U16},
	[IPVS_SVC_ATTR_PROTOCOL] = {.type = NLA_U16},
	[IPVS_SVC_ATTR_ADDR] = {.type = NLA_UNSPEC, .maxlen = 16},
	[IPVS_SVC_ATTR_PORT] = {.type = NLA_U16},
	[IPVS_SVC_ATTR_FWMARK] = {.type = NLA_U32},
	[IPVS_SVC_ATTR_SCHED_NAME] = {.type = NLA_STRING, .maxlen = IP_VS_SCHEDNAME_MAXLEN},
	[IPVS_SVC_ATTR_PE_NAME] = {.type = NLA_STRING, .maxlen = IP_VS_PENAME_MAXLEN},
	[IPVS_SVC_ATTR_FLAGS] = {.type = NLA_UNSPEC, .minlen = sizeof(struct ip_vs_flags)},
	[IPVS_SVC_ATTR_TIMEOUT] = {.type = NLA_U32},
	[IPVS_SVC_ATTR_NETMASK] = {.type = NLA_U32},
};
static struct nla_policy dest_policy[IPVS_DEST_ATTR_MAX + 1] = {
	[IPVS_DEST_ATTR_ADDR] = {.type = NLA_UNSPEC, .maxlen = 16},
	[IPVS_DEST_ATTR_PORT] = {.type = NLA_U16},
	[IPVS_DEST_ATTR_FWD_METHOD] = {.type = NLA_U32},
	[IPVS_DEST_ATTR_WEIGHT] = {.type = NLA_U32},
	[IPVS_DEST_ATTR_U_THRESH] = {.type = NLA_U32},
	[IPVS_DEST_ATTR_L_THRESH] = {.type = NLA_U32},
	[IPVS_DEST_ATTR_ADDR_FAMILY] = {.type = NLA_U16},
};

struct parsed {
	uint8_t cmd, version;
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1];
	struct nlattr *svc[IPVS_SVC_ATTR_MAX + 1];
	struct nlattr *dest[IPVS_DEST_ATTR_MAX + 1];
};

static bool parse(struct nl_msg *m, struct parsed *p)
{
	struct nlmsghdr *h = nlmsg_hdr(m);
	struct genlmsghdr *g = nlmsg_data(h);

	memset(p, 0, sizeof(*p));
	if (!ASSERT_EQ(h->nlmsg_type, FAMILY, "nlmsg_type = family") ||
	    !ASSERT_OK(genlmsg_parse(h, 0, p->top, IPVS_CMD_ATTR_MAX, cmd_policy), "genlmsg_parse"))
		return false;
	p->cmd = g->cmd;
	p->version = g->version;
	if (!ASSERT_NOT_NULL(p->top[IPVS_CMD_ATTR_SERVICE], "service attribute") ||
	    !ASSERT_OK(nla_parse_nested(p->svc, IPVS_SVC_ATTR_MAX, p->top[IPVS_CMD_ATTR_SERVICE],
					svc_policy),
		       "service attributes parse"))
		return false;
	if (p->top[IPVS_CMD_ATTR_DEST] &&
	    !ASSERT_OK(nla_parse_nested(p->dest, IPVS_DEST_ATTR_MAX, p->top[IPVS_CMD_ATTR_DEST],
					dest_policy),
		       "dest attributes parse"))
		return false;
	return true;
}

/* addr attributes: union nf_inet_addr, the IPv4 address first */
static bool addr_is(struct nlattr *a, const char *want, const char *what)
{
	__be32 v;

	if (!ASSERT_NOT_NULL(a, what) || !ASSERT_EQ(nla_len(a), 16, what))
		return false;
	memcpy(&v, nla_data(a), 4);
	return ASSERT_EQ(ntohl(v), ntohl(ip4(want)), what);
}

static void check_service_id(struct parsed *p, const char *addr, uint16_t port)
{
	ASSERT_EQ(nla_get_u16(p->svc[IPVS_SVC_ATTR_AF]), AF_INET, "af");
	ASSERT_EQ(nla_get_u16(p->svc[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_TCP, "protocol");
	addr_is(p->svc[IPVS_SVC_ATTR_ADDR], addr, "service addr");
	/* the kernel reads the port in network order */
	ASSERT_EQ(nla_get_u16(p->svc[IPVS_SVC_ATTR_PORT]), htons(port), "port, network order");
}

TEST(new_service_message_from_a_fragment)
{
	struct lbm_state *st = build(AFFINITY_SVC, AFFINITY_SLICE);
	struct nl_msg *m = nlmsg_alloc();
	struct ipvs_vs vs;
	struct parsed p;
	ssize_t fe;

	if (!st || !ASSERT_NOT_NULL(m, "nlmsg_alloc"))
		goto out;
	fe = find_fe(st, "198.18.128.10", 80, IPPROTO_TCP);
	if (!ASSERT_TRUE(fe >= 0, "ClusterIP frontend"))
		goto out;
	ipvs_vs_of(st, fe, st->frontends[fe].key.addr, &vs);
	if (!ASSERT_OK(ipvs_msg_service(m, FAMILY, IPVS_CMD_NEW_SERVICE, &vs), "build") ||
	    !parse(m, &p))
		goto out;
	ASSERT_EQ(p.cmd, IPVS_CMD_NEW_SERVICE, "cmd");
	ASSERT_EQ(p.version, IPVS_GENL_VERSION, "version");
	ASSERT_NULL(p.top[IPVS_CMD_ATTR_DEST], "no dest in NEW_SERVICE");
	check_service_id(&p, "198.18.128.10", 80);
	if (ASSERT_NOT_NULL(p.svc[IPVS_SVC_ATTR_SCHED_NAME], "sched"))
		ASSERT_STREQ(nla_get_string(p.svc[IPVS_SVC_ATTR_SCHED_NAME]), "rr", "sched rr");
	if (ASSERT_NOT_NULL(p.svc[IPVS_SVC_ATTR_FLAGS], "flags")) {
		struct ip_vs_flags fl;

		memcpy(&fl, nla_data(p.svc[IPVS_SVC_ATTR_FLAGS]), sizeof(fl));
		ASSERT_EQ(fl.flags, IP_VS_SVC_F_PERSISTENT, "ClientIP affinity = persistent");
		ASSERT_EQ(fl.mask, 0xffffffffU, "mask");
	}
	if (ASSERT_NOT_NULL(p.svc[IPVS_SVC_ATTR_TIMEOUT], "timeout"))
		ASSERT_EQ(nla_get_u32(p.svc[IPVS_SVC_ATTR_TIMEOUT]), 300, "affinity timeout");
	if (ASSERT_NOT_NULL(p.svc[IPVS_SVC_ATTR_NETMASK], "netmask"))
		ASSERT_EQ(nla_get_u32(p.svc[IPVS_SVC_ATTR_NETMASK]), 0xffffffffU, "netmask /32");
	ASSERT_NULL(p.svc[IPVS_SVC_ATTR_FWMARK], "no fwmark");

	/* DEL_SERVICE names the service only */
	nlmsg_free(m);
	m = nlmsg_alloc();
	if (!ASSERT_NOT_NULL(m, "nlmsg_alloc") ||
	    !ASSERT_OK(ipvs_msg_service(m, FAMILY, IPVS_CMD_DEL_SERVICE, &vs), "build del") ||
	    !parse(m, &p))
		goto out;
	ASSERT_EQ(p.cmd, IPVS_CMD_DEL_SERVICE, "del cmd");
	check_service_id(&p, "198.18.128.10", 80);
	ASSERT_NULL(p.svc[IPVS_SVC_ATTR_SCHED_NAME], "del: no sched");
	ASSERT_NULL(p.svc[IPVS_SVC_ATTR_FLAGS], "del: no flags");
	ASSERT_EQ(ipvs_msg_service(m, 0, IPVS_CMD_DEL_SERVICE, &vs), -EINVAL, "no family");
out:
	nlmsg_free(m);
	lbm_state_free(st);
}

TEST(no_affinity_no_persistence)
{
	struct lbm_state *st =
		build("[" SVC("plain", "{'clusterIP':'198.18.128.11','ports':[{'port':53,"
				       "'protocol':'UDP'}]}") "]",
		      NULL);
	struct ipvs_vs vs;
	ssize_t fe;

	if (!st)
		return;
	fe = find_fe(st, "198.18.128.11", 53, IPPROTO_UDP);
	if (ASSERT_TRUE(fe >= 0, "frontend")) {
		ipvs_vs_of(st, fe, st->frontends[fe].key.addr, &vs);
		ASSERT_EQ(vs.flags, 0, "no persistence");
		ASSERT_EQ(vs.timeout_s, 0, "no timeout");
		ASSERT_EQ(vs.proto, IPPROTO_UDP, "udp");
		ASSERT_STREQ(vs.sched, "rr", "rr");
	}
	lbm_state_free(st);
}

TEST(dest_weights_follow_graceful_termination)
{
	struct lbm_state *st = build(AFFINITY_SVC, AFFINITY_SLICE);
	struct ipvs_dest ready = {.addr = ip4("198.18.64.1"), .port = htons(8080)};
	struct ipvs_dest term = {.addr = ip4("198.18.64.2"), .port = htons(8080)};
	struct ipvs_dest gone = {.addr = ip4("198.18.64.9"), .port = htons(8080)};
	ssize_t fe;

	if (!st)
		return;
	fe = find_fe(st, "198.18.128.10", 80, IPPROTO_TCP);
	if (!ASSERT_TRUE(fe >= 0, "frontend"))
		goto out;
	ASSERT_EQ(st->frontends[fe].count, 1, "only the ready endpoint takes new flows");
	ASSERT_EQ(ipvs_dest_weight(st, fe, &ready), 1, "ready: weight 1");
	ASSERT_EQ(ipvs_dest_weight(st, fe, &term), 0, "terminating: weight 0 (drain)");
	ASSERT_EQ(ipvs_dest_weight(st, fe, &gone), -1, "gone, idle: delete");
	gone.inactive = 2;
	ASSERT_EQ(ipvs_dest_weight(st, fe, &gone), 0, "gone with connections: drain first");
	term.port = htons(8081);
	ASSERT_EQ(ipvs_dest_weight(st, fe, &term), -1, "other port: not this backend");
out:
	lbm_state_free(st);
}

TEST(fallback_terminating_slots_keep_weight_1)
{
	/* KEP-1669: with no ready endpoint the serving-terminating ones take new
	 * connections, so their real servers must not be quiesced */
	struct lbm_state *st =
		build(AFFINITY_SVC,
		      "[" SLICE("web-1", "web", "[{'name':'http','protocol':'TCP','port':8080}]",
				"[" EPC("198.18.64.2", "n2", C_TERM) "]") "]");
	struct ipvs_dest term = {.addr = ip4("198.18.64.2"), .port = htons(8080)};
	ssize_t fe;

	if (!st)
		return;
	fe = find_fe(st, "198.18.128.10", 80, IPPROTO_TCP);
	if (ASSERT_TRUE(fe >= 0, "frontend") &&
	    ASSERT_TRUE(st->frontends[fe].flags & SL_SVC_F_TERMINATING, "fallback"))
		ASSERT_EQ(ipvs_dest_weight(st, fe, &term), 1, "fallback slot: weight 1");
	lbm_state_free(st);
}

TEST(new_dest_message_for_a_terminating_backend)
{
	struct lbm_state *st = build(AFFINITY_SVC, AFFINITY_SLICE);
	struct nl_msg *m = nlmsg_alloc();
	struct ipvs_dest d = {.addr = ip4("198.18.64.2"), .port = htons(8080)};
	struct ipvs_vs vs;
	struct parsed p;
	ssize_t fe;
	int w;

	if (!st || !ASSERT_NOT_NULL(m, "nlmsg_alloc"))
		goto out;
	fe = find_fe(st, "198.18.128.10", 80, IPPROTO_TCP);
	if (!ASSERT_TRUE(fe >= 0, "frontend"))
		goto out;
	ipvs_vs_of(st, fe, st->frontends[fe].key.addr, &vs);
	w = ipvs_dest_weight(st, fe, &d);
	if (!ASSERT_EQ(w, 0, "weight"))
		goto out;
	d.weight = (uint32_t)w;
	if (!ASSERT_OK(ipvs_msg_dest(m, FAMILY, IPVS_CMD_NEW_DEST, &vs, &d), "build") ||
	    !parse(m, &p))
		goto out;
	ASSERT_EQ(p.cmd, IPVS_CMD_NEW_DEST, "cmd");
	check_service_id(&p, "198.18.128.10", 80);
	ASSERT_NULL(p.svc[IPVS_SVC_ATTR_SCHED_NAME], "service named, not defined");
	if (!ASSERT_NOT_NULL(p.top[IPVS_CMD_ATTR_DEST], "dest attribute"))
		goto out;
	addr_is(p.dest[IPVS_DEST_ATTR_ADDR], "198.18.64.2", "dest addr");
	if (ASSERT_NOT_NULL(p.dest[IPVS_DEST_ATTR_PORT], "dest port"))
		ASSERT_EQ(nla_get_u16(p.dest[IPVS_DEST_ATTR_PORT]), htons(8080), "dest port");
	if (ASSERT_NOT_NULL(p.dest[IPVS_DEST_ATTR_ADDR_FAMILY], "dest af"))
		ASSERT_EQ(nla_get_u16(p.dest[IPVS_DEST_ATTR_ADDR_FAMILY]), AF_INET, "dest af");
	if (ASSERT_NOT_NULL(p.dest[IPVS_DEST_ATTR_FWD_METHOD], "fwd"))
		ASSERT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_FWD_METHOD]), IP_VS_CONN_F_MASQ,
			  "masq (NAT) forwarding");
	if (ASSERT_NOT_NULL(p.dest[IPVS_DEST_ATTR_WEIGHT], "weight"))
		ASSERT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_WEIGHT]), 0, "terminating: weight 0");
	/* the kernel requires both thresholds on NEW/SET (ip_vs_genl_parse_dest) */
	ASSERT_NOT_NULL(p.dest[IPVS_DEST_ATTR_U_THRESH], "u_thresh");
	ASSERT_NOT_NULL(p.dest[IPVS_DEST_ATTR_L_THRESH], "l_thresh");

	/* the ready one: weight 1 */
	nlmsg_free(m);
	m = nlmsg_alloc();
	d.addr = ip4("198.18.64.1");
	d.weight = (uint32_t)ipvs_dest_weight(st, fe, &d);
	if (ASSERT_NOT_NULL(m, "nlmsg_alloc") &&
	    ASSERT_OK(ipvs_msg_dest(m, FAMILY, IPVS_CMD_NEW_DEST, &vs, &d), "build ready") &&
	    parse(m, &p) && ASSERT_NOT_NULL(p.dest[IPVS_DEST_ATTR_WEIGHT], "weight"))
		ASSERT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_WEIGHT]), 1, "ready: weight 1");

	/* DEL_DEST: address and port only */
	nlmsg_free(m);
	m = nlmsg_alloc();
	if (ASSERT_NOT_NULL(m, "nlmsg_alloc") &&
	    ASSERT_OK(ipvs_msg_dest(m, FAMILY, IPVS_CMD_DEL_DEST, &vs, &d), "build del") &&
	    parse(m, &p)) {
		ASSERT_EQ(p.cmd, IPVS_CMD_DEL_DEST, "del cmd");
		addr_is(p.dest[IPVS_DEST_ATTR_ADDR], "198.18.64.1", "del addr");
		ASSERT_NULL(p.dest[IPVS_DEST_ATTR_WEIGHT], "del: no weight");
	}
out:
	nlmsg_free(m);
	lbm_state_free(st);
}

/* --- kube-ipvs0 in a private netns ---------------------------------------------------- */

/* LoadBalancer 198.19.0.5:443 (+ NodePort 30443, ClusterIP 198.18.128.20) with
 * externalIP 198.18.0.1 (the node's own, so the model keeps it). */
#define LB_SVC                                                                     \
	"[" SVC_ST("lb",                                                           \
		   "{'type':'LoadBalancer','clusterIP':'198.18.128.20',"           \
		   "'externalIPs':['198.18.0.1'],'externalTrafficPolicy':'Local'," \
		   "'ports':[{'name':'https','port':443,'nodePort':30443,"         \
		   "'protocol':'TCP'}]}",                                          \
		   "{'loadBalancer':{'ingress':[{'ip':'198.19.0.5'}]}}") "]"
#define LB_SLICE                                                                     \
	"[" SLICE("lb-1", "lb", "[{'name':'https','protocol':'TCP','port':8443}]",   \
		  "[" EPC("198.18.64.7", "n1", C_READY) "," EPC("198.18.64.8", "n2", \
								C_READY) "]") "]"

/* `ip -o -4 addr show dev kube-ipvs0` as "a/32 b/32 " (sorted by the kernel's order). */
static void ip_addrs(char *out, size_t len)
{
	FILE *f = popen("ip -o -4 addr show dev " IPVS_DUMMY_DEV " | awk '{print $4}' | sort", "r");
	size_t n = 0;
	char line[64];

	out[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		n += snprintf(out + n, n < len ? len - n : 0, "%s ", line);
	}
	pclose(f);
}

static void dummy_child(void)
{
	struct lbm_state *st = build(LB_SVC, LB_SLICE);
	struct nl_sock *rt = nl_socket_alloc();
	__be32 *addrs = NULL;
	size_t n = 0, changed = 99;
	char got[256];
	int ifindex = 0, rc;

	if (!st || !ASSERT_NOT_NULL(rt, "socket") ||
	    !ASSERT_OK(nl_connect(rt, NETLINK_ROUTE), "connect"))
		goto out;
	/* nothing there yet: cleanup is a no-op that succeeds */
	ASSERT_EQ(ipvs_dummy_delete(rt), 1, "delete without a device");
	ASSERT_OK(pxy_ipvs_ops.cleanup(), "cleanup on an empty netns");

	rc = ipvs_dummy_ensure(rt, &ifindex);
	if (rc == -EOPNOTSUPP) {
		/* This kernel has no dummy devices (CONFIG_DUMMY unset): the
		 * error says so, and the address handling is checked on a veth
		 * end named kube-ipvs0 instead (it only uses the name). */
		fprintf(stderr, "  # no dummy devices in this kernel; using a veth named %s\n",
			IPVS_DUMMY_DEV);
		if (!ASSERT_OK(
			    system("ip link add " IPVS_DUMMY_DEV " type veth peer name ipvs-peer"),
			    "veth stand-in"))
			goto out;
		rc = ipvs_dummy_ensure(rt, &ifindex);
	}
	if (!ASSERT_OK(rc, "ensure") || !ASSERT_TRUE(ifindex > 0, "ifindex"))
		goto out;
	ASSERT_OK(ipvs_dummy_ensure(rt, &rc), "ensure again");
	ASSERT_EQ(rc, ifindex, "same device");

	if (!ASSERT_OK(ipvs_bind_addrs(st, NULL, &addrs, &n), "bind addrs"))
		goto out;
	/* ClusterIP, externalIP, LB IP; not the NodePort wildcard */
	ASSERT_EQ(n, 3, "three addresses");
	if (!ASSERT_OK(ipvs_dummy_sync(rt, ifindex, addrs, n, &changed), "bind"))
		goto out;
	ASSERT_EQ(changed, 3, "three bound");
	ip_addrs(got, sizeof(got));
	ASSERT_STREQ(got, "198.18.0.1/32 198.18.128.20/32 198.19.0.5/32 ", "ip addr show");
	ASSERT_OK(ipvs_dummy_sync(rt, ifindex, addrs, n, &changed), "bind again");
	ASSERT_EQ(changed, 0, "nothing to do");

	/* the Service loses its LB IP: only that address goes */
	for (size_t i = 0; i < n; i++)
		if (addrs[i] == ip4("198.19.0.5"))
			addrs[i] = addrs[--n];
	ASSERT_OK(ipvs_dummy_sync(rt, ifindex, addrs, n, &changed), "unbind");
	ASSERT_EQ(changed, 1, "one unbound");
	ip_addrs(got, sizeof(got));
	ASSERT_STREQ(got, "198.18.0.1/32 198.18.128.20/32 ", "after unbind");
	ASSERT_OK(ipvs_dummy_sync(rt, ifindex, NULL, 0, &changed), "unbind all");
	ip_addrs(got, sizeof(got));
	ASSERT_STREQ(got, "", "empty");

	/* cleanup removes the device; a second cleanup finds nothing */
	ASSERT_OK(pxy_ipvs_ops.cleanup(), "cleanup");
	ASSERT_TRUE(system("ip link show " IPVS_DUMMY_DEV " >/dev/null 2>&1") != 0, "gone");
	ASSERT_EQ(ipvs_dummy_delete(rt), 1, "nothing left");
	ASSERT_OK(pxy_ipvs_ops.cleanup(), "cleanup again");
out:
	free(addrs);
	nl_socket_free(rt);
	lbm_state_free(st);
}

TEST(kube_ipvs0_addresses_in_a_private_netns)
{
	pid_t pid = fork();
	int status = 0;

	if (!ASSERT_TRUE(pid >= 0, "fork"))
		return;
	if (pid == 0) {
		if (unshare(CLONE_NEWNET)) {
			fprintf(stderr, "  unshare(CLONE_NEWNET): %s\n", strerror(errno));
			_exit(2);
		}
		dummy_child();
		_exit(test_failed_current ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child checks passed");
}

/* --- ipset and iptables text ---------------------------------------------------------- */

static void sets_of(struct ipvs_sets *s, const struct lbm_state *st)
{
	__be32 node = ip4("198.18.0.1");

	memset(s, 0, sizeof(*s));
	ipvs_sets_add(s, st, NULL, &node, 1);
	ASSERT_OK(ipvs_sets_finish(s), "finish");
}

/* The lines of text starting with prefix, in order. */
static char *grep(const char *text, const char *prefix)
{
	struct sl_buf b = SL_BUF_INIT;
	size_t n = strlen(prefix);

	for (const char *l = text; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l + 1) : strlen(l);

		if (!strncmp(l, prefix, n))
			sl_buf_append(&b, l, len);
		l += len;
	}
	return sl_buf_steal(&b, NULL);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return TEST_FAIL_AT("missing line: %s", line);
}

TEST(ipset_text_for_a_load_balancer)
{
	struct lbm_state *st = build(LB_SVC, LB_SLICE);
	struct ipvs_sets s;
	struct sl_buf b = SL_BUF_INIT;
	char *adds = NULL;

	if (!st)
		return;
	sets_of(&s, st);
	if (!ASSERT_OK(ipvs_render_ipset(NULL, &s, &b), "render"))
		goto out;
	adds = grep(b.data, "add ");
	/* eTP Local: the external IP goes to -LOCAL only, the LB IP to both LB
	 * sets, the NodePort to both; hairpin only for the local endpoint */
	ASSERT_STREQ(adds,
		     "add KUBE-LOOP-BACK 198.18.64.7,tcp:8443,198.18.64.7\n"
		     "add KUBE-CLUSTER-IP 198.18.128.20,tcp:443\n"
		     "add KUBE-EXTERNAL-IP-LOCAL 198.18.0.1,tcp:443\n"
		     "add KUBE-LOAD-BALANCER 198.19.0.5,tcp:443\n"
		     "add KUBE-LOAD-BALANCER-LOCAL 198.19.0.5,tcp:443\n"
		     "add KUBE-NODE-PORT-TCP 30443\n"
		     "add KUBE-NODE-PORT-LOCAL-TCP 30443\n"
		     "add KUBE-IPVS-IPS 198.18.0.1\n"
		     "add KUBE-IPVS-IPS 198.18.128.20\n"
		     "add KUBE-IPVS-IPS 198.19.0.5\n",
		     "entries");
	has_line(b.data, "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 "
			 "maxelem 65536 comment");
	has_line(b.data, "create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 "
			 "maxelem 65536 comment");
	has_line(b.data, "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535 comment");
	has_line(b.data, "create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536 "
			 "comment");
	has_line(b.data, "flush KUBE-CLUSTER-IP");
	ASSERT_TRUE(strstr(b.data, "del ") == NULL, "a full restore deletes nothing");
out:
	free(adds);
	sl_buf_fini(&b);
	ipvs_sets_fini(&s);
	lbm_state_free(st);
}

TEST(ipset_diff_between_two_syncs)
{
	struct lbm_state *a = build(LB_SVC, LB_SLICE);
	/* the same Service with eTP Cluster and a UDP NodePort Service added */
	struct lbm_state *b2 =
		build("[" SVC_ST("lb",
				 "{'type':'LoadBalancer','clusterIP':'198.18.128."
				 "20',"
				 "'externalIPs':['198.18.0.1'],"
				 "'ports':[{'name':'https','port':443,'nodePort':"
				 "30443,"
				 "'protocol':'TCP'}]}",
				 "{'loadBalancer':{'ingress':[{'ip':'198.19.0.5'}]}"
				 "}") "," SVC("dns", "{'type':'NodePort','clusterIP':'198."
						     "18.128.53','ports':[{'port':53,"
						     "'nodePort':30053,'protocol':'UDP'}]"
						     "}") "]",
		      LB_SLICE);
	struct ipvs_sets sa, sb;
	struct sl_buf b = SL_BUF_INIT;
	char *ch = NULL;

	if (!a || !b2)
		goto out;
	sets_of(&sa, a);
	sets_of(&sb, b2);
	if (!ASSERT_OK(ipvs_render_ipset(&sa, &sb, &b), "render"))
		goto fini;
	ASSERT_TRUE(strstr(b.data, "flush ") == NULL, "an incremental restore flushes nothing");
	{
		struct sl_buf c = SL_BUF_INIT;
		char *d = grep(b.data, "del "), *ad = grep(b.data, "add ");

		sl_buf_printf(&c, "%s%s", d ? d : "", ad ? ad : "");
		ch = sl_buf_steal(&c, NULL);
		free(d);
		free(ad);
	}
	ASSERT_STREQ(ch,
		     "del KUBE-EXTERNAL-IP-LOCAL 198.18.0.1,tcp:443\n"
		     "del KUBE-LOAD-BALANCER-LOCAL 198.19.0.5,tcp:443\n"
		     "del KUBE-NODE-PORT-LOCAL-TCP 30443\n"
		     "add KUBE-CLUSTER-IP 198.18.128.53,udp:53\n"
		     "add KUBE-EXTERNAL-IP 198.18.0.1,tcp:443\n"
		     "add KUBE-NODE-PORT-UDP 30053\n"
		     "add KUBE-IPVS-IPS 198.18.128.53\n",
		     "only the difference");
fini:
	ipvs_sets_fini(&sa);
	ipvs_sets_fini(&sb);
out:
	free(ch);
	sl_buf_fini(&b);
	lbm_state_free(a);
	lbm_state_free(b2);
}

TEST(iptables_text_follows_the_sets)
{
	struct lbm_state *st = build(LB_SVC, LB_SLICE);
	struct lbm_state *cip = build(AFFINITY_SVC, AFFINITY_SLICE);
	struct pxy_cfg cfg = {.node_name = "n1", .cluster_cidr = "198.18.64.0/18"};
	struct ipvs_sets s, s2;
	struct sl_buf b = SL_BUF_INIT;

	if (!st || !cip)
		goto out;
	sets_of(&s, st);
	sets_of(&s2, cip);
	if (!ASSERT_OK(ipvs_render_iptables(&cfg, &s, &b), "render"))
		goto fini;
	ASSERT_TRUE(!strncmp(b.data, "*nat\n:KUBE-SERVICES - [0:0]\n", 28), "starts with nat");
	has_line(b.data, "-A KUBE-POSTROUTING -m comment --comment \"Kubernetes endpoints dst "
			 "ip:port, source ip for solving hairpin purpose\" -m set --match-set "
			 "KUBE-LOOP-BACK dst,dst,src -j MASQUERADE");
	has_line(b.data, "-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + "
			 "port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst "
			 "! -s 198.18.64.0/18 -j KUBE-MARK-MASQ");
	has_line(b.data, "-A KUBE-NODE-PORT -m comment --comment \"Kubernetes nodeport TCP port "
			 "with externalTrafficPolicy=local\" -p tcp -m set --match-set "
			 "KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN");
	has_line(b.data,
		 "-A KUBE-NODE-PORT -m comment --comment \"Kubernetes nodeport TCP port "
		 "for masquerade purpose\" -p tcp -m set --match-set KUBE-NODE-PORT-TCP dst "
		 "-j KUBE-MARK-MASQ");
	has_line(b.data, "-A KUBE-SERVICES -m comment --comment \"Kubernetes service lb portal\" "
			 "-m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER");
	has_line(b.data, "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN");
	has_line(b.data, "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000");
	has_line(b.data, "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000");
	has_line(b.data, "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set "
			 "KUBE-IPVS-IPS dst -j REJECT");
	ASSERT_TRUE(strstr(b.data, "KUBE-NODE-PORT-UDP") == NULL, "no rule for an empty set");
	ASSERT_TRUE(strstr(b.data, "COMMIT\n*filter\n") != NULL, "nat then filter");

	/* masquerade-all, another mark bit, a ClusterIP-only model */
	cfg.masquerade_all = true;
	cfg.masq_bit = 15;
	sl_buf_reset(&b);
	if (!ASSERT_OK(ipvs_render_iptables(&cfg, &s2, &b), "render 2"))
		goto fini;
	has_line(b.data, "-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + "
			 "port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst "
			 "-j KUBE-MARK-MASQ");
	has_line(b.data, "-A KUBE-MARK-MASQ -j MARK --or-mark 0x8000");
	ASSERT_TRUE(strstr(b.data, "KUBE-LOOP-BACK") != NULL, "local endpoint 198.18.64.1");
	ASSERT_TRUE(strstr(b.data, "-j KUBE-LOAD-BALANCER\n") == NULL, "no LB: no jump");
	cfg.masq_bit = 32;
	ASSERT_EQ(ipvs_render_iptables(&cfg, &s2, &b), -EINVAL, "bad mark bit");
fini:
	ipvs_sets_fini(&s);
	ipvs_sets_fini(&s2);
out:
	sl_buf_fini(&b);
	lbm_state_free(st);
	lbm_state_free(cip);
}

/* --- the kernel accepts the sets and rules (private netns) ----------------------------- */

/* stdout of a shell command, malloc'd ("" on failure). */
static char *sh(const char *cmd)
{
	struct sl_buf b = SL_BUF_INIT;
	FILE *f = popen(cmd, "r");
	char buf[4096];
	size_t n;

	while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		sl_buf_append(&b, buf, n);
	if (f)
		pclose(f);
	sl_buf_puts(&b, "");
	return sl_buf_steal(&b, NULL);
}

static bool out_has(const char *cmd, const char *needle, bool want)
{
	char *o = sh(cmd);
	bool has = strstr(o, needle) != NULL;

	if (has != want)
		(void)TEST_FAIL_AT("`%s` %s \"%s\":\n%s", cmd, want ? "lacks" : "has", needle, o);
	free(o);
	return has == want;
}

static int count_of(const char *cmd, const char *needle)
{
	char *o = sh(cmd);
	int n = 0;

	for (const char *p = o; (p = strstr(p, needle)); p++)
		n++;
	free(o);
	return n;
}

static void netfilter_child(void)
{
	struct lbm_state *lb = build(LB_SVC, LB_SLICE), *cip = build(AFFINITY_SVC, AFFINITY_SLICE);
	struct pxy_cfg cfg = {.node_name = "n1", .cluster_cidr = "198.18.64.0/18"};
	__be32 node = ip4("198.18.0.1");
	struct ipvs_sets a = {0}, b = {0};

	if (!lb || !cip)
		goto out;
	ipvs_sets_add(&a, lb, NULL, &node, 1);
	ipvs_sets_add(&a, cip, NULL, &node, 1);
	ipvs_sets_add(&b, cip, NULL, &node, 1);
	if (!ASSERT_OK(ipvs_sets_finish(&a), "a") || !ASSERT_OK(ipvs_sets_finish(&b), "b"))
		goto out;

	/* full: every set created and filled, the chains and the jumps */
	if (!ASSERT_OK(ipvs_apply_netfilter(&cfg, NULL, &a, true), "apply full"))
		goto out;
	out_has("ipset list KUBE-CLUSTER-IP", "198.18.128.20,tcp:443", true);
	out_has("ipset list KUBE-CLUSTER-IP", "198.18.128.10,tcp:80", true);
	out_has("ipset list KUBE-NODE-PORT-TCP", "30443", true);
	out_has("ipset list KUBE-LOOP-BACK", "198.18.64.7,tcp:8443,198.18.64.7", true);
	out_has("iptables -w -t nat -S KUBE-SERVICES",
		"--match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT", true);
	out_has("iptables -w -t nat -S KUBE-SERVICES",
		"--match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER", true);
	out_has("iptables -w -t filter -S KUBE-IPVS-FILTER",
		"--match-set KUBE-IPVS-IPS dst -j REJECT", true);
	ASSERT_EQ(count_of("iptables -w -t nat -S PREROUTING", "-j KUBE-SERVICES"), 1, "one jump");

	/* again: nothing doubles */
	if (!ASSERT_OK(ipvs_apply_netfilter(&cfg, &a, &a, true), "apply same"))
		goto out;
	ASSERT_EQ(count_of("iptables -w -t nat -S PREROUTING", "-j KUBE-SERVICES"), 1,
		  "still one jump");

	/* the LoadBalancer Service goes: its entries and the rules of emptied sets go */
	if (!ASSERT_OK(ipvs_apply_netfilter(&cfg, &a, &b, false), "apply diff"))
		goto out;
	out_has("ipset list KUBE-CLUSTER-IP", "198.18.128.20,tcp:443", false);
	out_has("ipset list KUBE-CLUSTER-IP", "198.18.128.10,tcp:80", true);
	out_has("ipset list KUBE-NODE-PORT-TCP", "30443", false);
	out_has("iptables -w -t nat -S KUBE-SERVICES", "-j KUBE-LOAD-BALANCER", false);

	/* cleanup: the jumps, the chains and the sets are gone */
	ASSERT_OK(pxy_ipvs_ops.cleanup(), "cleanup");
	ASSERT_EQ(count_of("ipset list -n", "KUBE-"), 0, "no KUBE-* set left");
	ASSERT_EQ(count_of("iptables-save 2>/dev/null", "KUBE-"), 0, "no KUBE-* rule left");
	ASSERT_OK(pxy_ipvs_ops.cleanup(), "cleanup again");
out:
	ipvs_sets_fini(&a);
	ipvs_sets_fini(&b);
	lbm_state_free(lb);
	lbm_state_free(cip);
}

TEST(kernel_accepts_sets_and_rules_in_a_private_netns)
{
	pid_t pid;
	int status = 0;

	if (system("command -v ipset >/dev/null && command -v iptables-restore >/dev/null")) {
		fprintf(stderr, "  # SKIP: the ipset and iptables tools are needed (make deps)\n");
		return;
	}
	pid = fork();
	if (!ASSERT_TRUE(pid >= 0, "fork"))
		return;
	if (pid == 0) {
		if (unshare(CLONE_NEWNET)) {
			fprintf(stderr, "  unshare(CLONE_NEWNET): %s\n", strerror(errno));
			_exit(2);
		}
		netfilter_child();
		_exit(test_failed_current ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child checks passed");
}
