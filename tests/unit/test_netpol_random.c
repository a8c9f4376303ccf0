// SPDX-License-Identifier: Apache-2.0
/*
 * netpol/: randomised checks in the style of Cyclonus' generator.
 *   - oracle: random namespaces, pods and valid policies; every source x
 *     destination x probe (TCP/UDP/SCTP on a few ports) evaluated by
 *     np_check() on the compiled maps must equal a naive evaluator written
 *     straight from the semantics (../shared/research/netpol.md §1) over the
 *     decoded objects, with no identities, rule sets or LPM in between;
 *   - incremental: a random sequence of pod/namespace/policy changes
 *     compiled step by step must dump exactly what a fresh context with the
 *     final objects dumps, and the diffs applied in order to an empty
 *     mirror must rebuild the same maps.
 * Seeds are fixed, so a failure reproduces; the failing seed is printed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "np_fixture.h"
#include "sluice/selector.h"

/* --- deterministic PRNG ------------------------------------------------------------------------
 */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n ? (uint32_t)(rng_state % n) : 0;
}

/* IPv4 only, written here so the oracle shares no code with netpol/. */
static bool v4_parse(const char *s, uint32_t *addr, int *plen)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	struct in_addr a;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*addr = ntohl(a.s_addr);
	*plen = slash ? atoi(slash + 1) : 32;
	return true;
}

static bool in_cidr(const char *ip, const char *cidr)
{
	uint32_t a, c;
	int la, lc;

	if (!v4_parse(ip, &a, &la) || !v4_parse(cidr, &c, &lc))
		return false;
	if (lc == 0)
		return true;
	return ((a ^ c) >> (32 - lc)) == 0;
}

/* --- the world -------------------------------------------------------------------------------- */

#define NNS  4
#define NPOD 10

struct w_port {
	const char *name;
	const char *proto;
	int port;
};

struct w_pod {
	bool live;
	int ns;
	char name[8];
	char ip[32];
	char lab_pod[4], lab_app[8]; /* "" = label absent */
	const char *node;
	struct w_port ports[4];
	int n_ports;
};

struct w_ns {
	const char *name;
	char env[8]; /* label env=..., "" = absent */
};

#define NPOL 6
struct world {
	struct w_ns ns[NNS];
	struct w_pod pods[NPOD];
	struct json_object *pol[NPOL]; /* NULL = absent */
	int pol_ns[NPOL];
};

static const char *const ns_names[NNS] = {"x", "y", "z", "w"};
static const char *const protos[3] = {"TCP", "UDP", "SCTP"};

static void gen_pod(struct world *w, int i)
{
	struct w_pod *p = &w->pods[i];
	static const char *const names[] = {"serve-80", "serve-81", "http", "dns"};

	p->live = true;
	p->ns = (int)rnd(NNS);
	snprintf(p->name, sizeof(p->name), "p%d", i);
	/* Addresses may move (restart) but stay unique. */
	snprintf(p->ip, sizeof(p->ip), "198.18.%u.%d", rnd(3), i + 1);
	p->node = rnd(2) ? "n1" : "n2";
	snprintf(p->lab_pod, sizeof(p->lab_pod), "%s",
		 rnd(4) ? (const char *[]){"a", "b", "c"}[rnd(3)] : "");
	snprintf(p->lab_app, sizeof(p->lab_app), "%s",
		 rnd(2) ? (const char *[]){"web", "db"}[rnd(2)] : "");
	p->n_ports = (int)rnd(4);
	for (int k = 0; k < p->n_ports; k++) {
		p->ports[k].name = names[k];
		p->ports[k].proto = protos[rnd(3)];
		p->ports[k].port = 80 + (int)rnd(3);
	}
}

static void gen_ns(struct world *w, int i)
{
	w->ns[i].name = ns_names[i];
	snprintf(w->ns[i].env, sizeof(w->ns[i].env), "%s",
		 rnd(3) ? (const char *[]){"prod", "dev"}[rnd(2)] : "");
}

static struct json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static struct json_object *gen_selector(bool pod)
{
	struct json_object *sel = json_object_new_object(), *ml, *me, *req, *vals;
	const char *key =
		pod ? (rnd(2) ? "pod" : "app") : (rnd(3) ? "env" : "kubernetes.io/metadata.name");
	const char *v1 = pod ? (key[0] == 'p' ? "a" : "web") : (key[0] == 'e' ? "prod" : "y");
	const char *v2 = pod ? (key[0] == 'p' ? "b" : "db") : (key[0] == 'e' ? "dev" : "z");

	switch (rnd(4)) {
	case 0: /* {} */
		break;
	case 1:
		ml = json_object_new_object();
		json_object_object_add(ml, key, jstr(rnd(2) ? v1 : v2));
		json_object_object_add(sel, "matchLabels", ml);
		break;
	default:
		me = json_object_new_array();
		req = json_object_new_object();
		json_object_object_add(req, "key", jstr(key));
		switch (rnd(4)) {
		case 0:
			json_object_object_add(req, "operator", jstr("In"));
			break;
		case 1:
			json_object_object_add(req, "operator", jstr("NotIn"));
			break;
		case 2:
			json_object_object_add(req, "operator", jstr("Exists"));
			break;
		default:
			json_object_object_add(req, "operator", jstr("DoesNotExist"));
			break;
		}
		const char *op = json_object_get_string(json_object_object_get(req, "operator"));
		if (op[0] == 'I' || op[0] == 'N') {
			vals = json_object_new_array();
			json_object_array_add(vals, jstr(v1));
			if (rnd(2))
				json_object_array_add(vals, jstr(v2));
			json_object_object_add(req, "values", vals);
		}
		json_object_array_add(me, req);
		json_object_object_add(sel, "matchExpressions", me);
		break;
	}
	return sel;
}

static struct json_object *gen_peer(void)
{
	struct json_object *peer = json_object_new_object(), *ib, *ex;
	char cidr[32];

	switch (rnd(5)) {
	case 0:
		json_object_object_add(peer, "podSelector", gen_selector(true));
		break;
	case 1:
		json_object_object_add(peer, "namespaceSelector", gen_selector(false));
		break;
	case 2:
		json_object_object_add(peer, "podSelector", gen_selector(true));
		json_object_object_add(peer, "namespaceSelector", gen_selector(false));
		break;
	default:
		ib = json_object_new_object();
		/* Around the pods' 198.18.{0,1,2}.N addresses, plus outside. */
		switch (rnd(4)) {
		case 0:
			snprintf(cidr, sizeof(cidr), "198.18.%u.0/24", rnd(3));
			break;
		case 1:
			snprintf(cidr, sizeof(cidr), "198.18.0.0/%u", 14 + rnd(3));
			break;
		case 2:
			snprintf(cidr, sizeof(cidr), "198.18.%u.%u/32", rnd(3), 1 + rnd(NPOD));
			break;
		default:
			snprintf(cidr, sizeof(cidr), "198.19.%u.0/24", rnd(2));
			break;
		}
		json_object_object_add(ib, "cidr", jstr(cidr));
		if (rnd(2) && !strstr(cidr, "/32")) {
			uint32_t a = 0;
			int l = 0;
			struct in_addr ia;
			char buf[32], e[48];

			if (!v4_parse(cidr, &a, &l))
				abort(); /* the generator wrote it */
			ia.s_addr = htonl(l ? a & ~((1u << (32 - l)) - 1) : 0);
			inet_ntop(AF_INET, &ia, buf, sizeof(buf));
			ex = json_object_new_array();
			/* An except inside the cidr: its first /26 or one host. */
			if (rnd(2))
				snprintf(e, sizeof(e), "%s/26", buf);
			else
				snprintf(e, sizeof(e), "%.*s%u/32",
					 (int)(strrchr(buf, '.') - buf + 1), buf, 1 + rnd(NPOD));
			json_object_array_add(ex, jstr(e));
			json_object_object_add(ib, "except", ex);
		}
		json_object_object_add(peer, "ipBlock", ib);
		break;
	}
	return peer;
}

static struct json_object *gen_port(void)
{
	struct json_object *p = json_object_new_object();
	static const char *const names[] = {"serve-80", "serve-81", "http", "nope"};

	if (rnd(3))
		json_object_object_add(p, "protocol", jstr(protos[rnd(3)]));
	switch (rnd(4)) {
	case 0:
		break; /* all ports of the protocol */
	case 1:
		json_object_object_add(p, "port", json_object_new_int(79 + (int)rnd(4)));
		break;
	case 2: {
		int lo = 78 + (int)rnd(3);

		json_object_object_add(p, "port", json_object_new_int(lo));
		json_object_object_add(p, "endPort", json_object_new_int(lo + (int)rnd(4)));
		break;
	}
	default:
		json_object_object_add(p, "port", jstr(names[rnd(4)]));
		break;
	}
	return p;
}

static struct json_object *gen_rules(const char *peers_key)
{
	struct json_object *rules = json_object_new_array();
	int n = (int)rnd(3);

	for (int i = 0; i < n; i++) {
		struct json_object *r = json_object_new_object();

		if (rnd(3)) {
			struct json_object *peers = json_object_new_array();
			int np = (int)rnd(3);

			for (int k = 0; k < np; k++)
				json_object_array_add(peers, gen_peer());
			json_object_object_add(r, peers_key, peers);
		}
		if (rnd(2)) {
			struct json_object *ports = json_object_new_array();
			int np = 1 + (int)rnd(2);

			for (int k = 0; k < np; k++)
				json_object_array_add(ports, gen_port());
			json_object_object_add(r, "ports", ports);
		}
		json_object_array_add(rules, r);
	}
	return rules;
}

static void gen_policy(struct world *w, int i)
{
	struct json_object *doc = json_object_new_object(), *meta = json_object_new_object();
	struct json_object *spec = json_object_new_object(), *types;
	char name[16];

	w->pol_ns[i] = (int)rnd(NNS);
	snprintf(name, sizeof(name), "np%d", i);
	json_object_object_add(doc, "apiVersion", jstr("networking.k8s.io/v1"));
	json_object_object_add(doc, "kind", jstr("NetworkPolicy"));
	json_object_object_add(meta, "namespace", jstr(ns_names[w->pol_ns[i]]));
	json_object_object_add(meta, "name", jstr(name));
	json_object_object_add(doc, "metadata", meta);
	json_object_object_add(spec, "podSelector", gen_selector(true));
	switch (rnd(4)) {
	case 0:
		break; /* defaulted */
	case 1:
		types = json_object_new_array();
		json_object_array_add(types, jstr("Ingress"));
		json_object_object_add(spec, "policyTypes", types);
		break;
	case 2:
		types = json_object_new_array();
		json_object_array_add(types, jstr("Egress"));
		json_object_object_add(spec, "policyTypes", types);
		break;
	default:
		types = json_object_new_array();
		json_object_array_add(types, jstr("Ingress"));
		json_object_array_add(types, jstr("Egress"));
		json_object_object_add(spec, "policyTypes", types);
		break;
	}
	if (rnd(4))
		json_object_object_add(spec, "ingress", gen_rules("from"));
	if (rnd(2))
		json_object_object_add(spec, "egress", gen_rules("to"));
	json_object_object_add(doc, "spec", spec);
	json_object_put(w->pol[i]);
	w->pol[i] = doc;
}

/* --- feeding a context ---------------------------------------------------------------------------
 */

static int feed_pod(struct np_ctx *c, const struct world *w, int i)
{
	const struct w_pod *p = &w->pods[i];
	struct sl_label l[2];
	struct np_port ports[4];
	size_t nl = 0;
	const char *ips[1] = {p->ip};
	struct np_pod_spec s = {
		.ns = ns_names[p->ns], .name = p->name, .node = p->node, .ips = ips, .n_ips = 1};

	if (p->lab_pod[0])
		l[nl++] = (struct sl_label){"pod", p->lab_pod};
	if (p->lab_app[0])
		l[nl++] = (struct sl_label){"app", p->lab_app};
	for (int k = 0; k < p->n_ports; k++)
		ports[k] = (struct np_port){p->ports[k].name, np_proto_parse(p->ports[k].proto),
					    (uint16_t)p->ports[k].port};
	s.labels = l;
	s.n_labels = nl;
	s.ports = ports;
	s.n_ports = (size_t)p->n_ports;
	return np_pod_set(c, &s, NULL, 0);
}

static int feed_ns(struct np_ctx *c, const struct world *w, int i)
{
	struct sl_label l = {"env", w->ns[i].env};

	return np_ns_set(c, w->ns[i].name, &l, w->ns[i].env[0] ? 1 : 0);
}

static int feed_policy(struct np_ctx *c, const struct world *w, int i)
{
	struct k8s_netpol *p = NULL;
	char err[512] = "";
	int ret = k8s_netpol_decode(w->pol[i], &p, err, sizeof(err));

	if (!ASSERT_OK(ret, "decode generated policy")) {
		fprintf(stderr, "  %s: %s\n", json_object_to_json_string(w->pol[i]), err);
		return ret;
	}
	ret = np_policy_set(c, p, err, sizeof(err));
	if (!ASSERT_OK(ret, "generated policy compiles"))
		fprintf(stderr, "  %s: %s\n", json_object_to_json_string(w->pol[i]), err);
	k8s_netpol_free(p);
	return ret;
}

/* The node view under test: NULL = cluster-wide (the oracle's view). */
static const char *view_node;

static struct np_ctx *fresh(const struct world *w)
{
	struct np_ctx *c = np_new(NULL);

	np_set_node(c, view_node);

	/* Policies first, then pods, then namespaces: an order unlike the
	 * incremental one. */
	for (int i = NPOL - 1; i >= 0; i--)
		if (w->pol[i])
			feed_policy(c, w, i);
	for (int i = NPOD - 1; i >= 0; i--)
		if (w->pods[i].live)
			feed_pod(c, w, i);
	for (int i = 0; i < NNS; i++)
		feed_ns(c, w, i);
	return c;
}

/* --- the naive evaluator -----------------------------------------------------------------------
 */

static const struct w_pod *pod_by_ip(const struct world *w, const char *ip)
{
	for (int i = 0; i < NPOD; i++)
		if (w->pods[i].live && !strcmp(w->pods[i].ip, ip))
			return &w->pods[i];
	return NULL;
}

static bool sel_match_json(struct json_object *selj, const struct sl_label *l, size_t n)
{
	struct sl_labelsel *sel = sl_labelsel_from_json(selj, "x", NULL, 0);
	bool r = sel && sl_labelsel_match(sel, l, n);

	sl_labelsel_free(sel);
	return r;
}

static size_t pod_labels(const struct w_pod *p, struct sl_label *l)
{
	size_t n = 0;

	if (p->lab_pod[0])
		l[n++] = (struct sl_label){"pod", p->lab_pod};
	if (p->lab_app[0])
		l[n++] = (struct sl_label){"app", p->lab_app};
	return n;
}

static size_t ns_labels(const struct world *w, int ns, struct sl_label *l)
{
	size_t n = 0;

	l[n++] = (struct sl_label){"kubernetes.io/metadata.name", ns_names[ns]};
	if (w->ns[ns].env[0])
		l[n++] = (struct sl_label){"env", w->ns[ns].env};
	return n;
}

/* Does one rule of a policy in namespace pns admit peer (address ip, pod
 * or NULL) to destination dst (pod or NULL) on proto/port? */
static bool rule_admits(const struct world *w, int pns, const struct k8s_netpol_rule *r,
			const char *peer_ip, const struct w_pod *peer, const struct w_pod *dst,
			uint8_t proto, uint16_t port, bool egress)
{
	bool port_ok = r->n_ports == 0, peer_ok = r->n_peers == 0;

	for (size_t i = 0; i < r->n_ports && !port_ok; i++) {
		const struct k8s_netpol_port *p = &r->ports[i];

		if (np_proto_parse(p->protocol) != proto)
			continue;
		if (p->port.type == K8S_INTSTR_NONE) {
			port_ok = true;
		} else if (p->port.type == K8S_INTSTR_INT) {
			int hi = p->end_port ? p->end_port : p->port.ival;

			port_ok = port >= p->port.ival && port <= hi;
		} else if (dst) {
			/* Named: the destination pod's port of that name and
			 * protocol. Our documented choice: an egress ipBlock
			 * peer never matches a named port (README). */
			bool cidr_peer_only = egress;

			(void)cidr_peer_only;
			for (int k = 0; k < dst->n_ports; k++)
				if (!strcmp(dst->ports[k].name, p->port.sval) &&
				    np_proto_parse(dst->ports[k].proto) == proto &&
				    dst->ports[k].port == port)
					port_ok = true;
		}
	}
	if (!port_ok)
		return false;
	for (size_t i = 0; i < r->n_peers && !peer_ok; i++) {
		const struct k8s_netpol_peer *pe = &r->peers[i];

		if (pe->ip_block.raw) {
			bool in = in_cidr(peer_ip, pe->ip_block.cidr);

			for (size_t k = 0; in && k < pe->ip_block.except.n; k++)
				in = !in_cidr(peer_ip, pe->ip_block.except.v[k]);
			if (in && egress && r->n_ports) {
				/* Only the numeric/any port entries count here. */
				bool numeric = false;

				for (size_t k = 0; k < r->n_ports; k++) {
					const struct k8s_netpol_port *p = &r->ports[k];

					if (np_proto_parse(p->protocol) != proto ||
					    p->port.type == K8S_INTSTR_STR)
						continue;
					if (p->port.type == K8S_INTSTR_NONE)
						numeric = true;
					else
						numeric = numeric ||
							  (port >= p->port.ival &&
							   port <= (p->end_port ? p->end_port
										: p->port.ival));
				}
				in = numeric;
			}
			peer_ok = in;
			continue;
		}
		if (!peer)
			continue;
		struct sl_label l[3];
		size_t n;

		if (pe->namespace_selector) {
			n = ns_labels(w, peer->ns, l);
			if (!sel_match_json(pe->namespace_selector, l, n))
				continue;
		} else if (peer->ns != pns) {
			continue;
		}
		n = pod_labels(peer, l);
		if (pe->pod_selector && !sel_match_json(pe->pod_selector, l, n))
			continue;
		peer_ok = true;
	}
	return peer_ok;
}

/* The world's policies decoded once per comparison (the oracle's only
 * cache; NULL = no policy in that slot). */
static struct k8s_netpol *decoded[NPOL];

/* Is subject (a pod) allowed on its `egress` side with the given peer? */
static bool side_ok(const struct world *w, const struct w_pod *subj, const char *peer_ip,
		    const struct w_pod *peer, uint8_t proto, uint16_t port, bool egress)
{
	bool isolated = false;
	struct sl_label l[3];
	size_t n = pod_labels(subj, l);

	for (int i = 0; i < NPOL; i++) {
		struct k8s_netpol *p = decoded[i];
		bool types[2] = {false, false};

		if (!p || w->pol_ns[i] != subj->ns)
			continue;
		if (!p->spec.policy_types.n) {
			types[0] = true;
			types[1] = p->spec.n_egress > 0;
		}
		for (size_t k = 0; k < p->spec.policy_types.n; k++)
			types[!strcmp(p->spec.policy_types.v[k], "Egress")] = true;
		if (types[egress] && sel_match_json(p->spec.pod_selector, l, n)) {
			const struct k8s_netpol_rule *rules =
				egress ? p->spec.egress : p->spec.ingress;
			size_t nr = egress ? p->spec.n_egress : p->spec.n_ingress;

			isolated = true;
			for (size_t r = 0; r < nr; r++) {
				if (rule_admits(w, subj->ns, &rules[r], peer_ip, peer,
						egress ? peer : subj, proto, port, egress))
					return true;
			}
		}
	}
	return !isolated;
}

static bool oracle(const struct world *w, const char *from, const char *to, uint8_t proto,
		   uint16_t port)
{
	const struct w_pod *s = pod_by_ip(w, from), *d = pod_by_ip(w, to);

	if (!strcmp(from, to))
		return true;
	if (s && !side_ok(w, s, to, d, proto, port, true))
		return false;
	if (d && !side_ok(w, d, from, s, proto, port, false))
		return false;
	return true;
}

static void gen_world(struct world *w)
{
	memset(w, 0, sizeof(*w));
	for (int i = 0; i < NNS; i++)
		gen_ns(w, i);
	for (int i = 0; i < NPOD; i++)
		gen_pod(w, i);
	for (int i = 0; i < NPOL; i++)
		if (rnd(4))
			gen_policy(w, i);
}

static void world_fini(struct world *w)
{
	for (int i = 0; i < NPOL; i++)
		json_object_put(w->pol[i]);
}

/* Compares np_check with the oracle on every pair and probe; false on the
 * first difference (printed). */
static bool compare_world(struct np_ctx *c, const struct world *w, uint64_t seed)
{
	static const uint16_t probe_ports[] = {78, 80, 81, 82, 83};
	const char *extra[] = {"198.19.0.9", "198.19.1.9", "198.18.1.200"};
	const char *addrs[NPOD + 3];
	int na = 0;

	for (int i = 0; i < NPOD; i++)
		if (w->pods[i].live)
			addrs[na++] = w->pods[i].ip;
	bool ok = true;

	for (int i = 0; i < 3; i++)
		addrs[na++] = extra[i];
	for (int i = 0; i < NPOL; i++) {
		decoded[i] = NULL;
		if (w->pol[i])
			k8s_netpol_decode(w->pol[i], &decoded[i], NULL, 0);
	}
	for (int a = 0; a < na && ok; a++) {
		for (int b = 0; b < na; b++) {
			for (int pr = 0; pr < 3; pr++) {
				uint8_t proto = np_proto_parse(protos[pr]);

				for (size_t k = 0; k < sizeof(probe_ports) / sizeof(probe_ports[0]);
				     k++) {
					uint16_t port = probe_ports[k];
					bool want = oracle(w, addrs[a], addrs[b], proto, port);
					int got =
						np_check(c, addrs[a], addrs[b], proto, port, NULL);

					if (got != (int)want) {
						(void)TEST_FAIL_AT(
							"seed %llu: %s -> %s %s/%u: oracle %d, "
							"compiled %d",
							(unsigned long long)seed, addrs[a],
							addrs[b], protos[pr], port, want, got);
						for (int i = 0; i < NPOL; i++)
							if (w->pol[i])
								fprintf(stderr, "  %s\n",
									json_object_to_json_string(
										w->pol[i]));
						for (int i = 0; i < NPOD; i++)
							if (w->pods[i].live)
								fprintf(stderr,
									"  pod %s/%s %s pod=%s "
									"app=%s "
									"ports=%d\n",
									ns_names[w->pods[i].ns],
									w->pods[i].name,
									w->pods[i].ip,
									w->pods[i].lab_pod,
									w->pods[i].lab_app,
									w->pods[i].n_ports);
						ok = false;
						goto out;
					}
				}
			}
		}
	}
out:
	for (int i = 0; i < NPOL; i++)
		k8s_netpol_free(decoded[i]);
	return ok;
}

TEST(compiled_maps_match_naive_evaluator)
{
	view_node = NULL;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		struct world w;
		struct np_ctx *c;
		char err[512] = "";

		rng_state = seed * 0x9e3779b97f4a7c15ull;
		gen_world(&w);
		c = fresh(&w);
		if (!ASSERT_OK(np_compile(c, NULL, err, sizeof(err)), "compile") ||
		    !compare_world(c, &w, seed)) {
			np_free(c);
			world_fini(&w);
			break;
		}
		np_free(c);
		world_fini(&w);
	}
}

/* --- incremental vs full -----------------------------------------------------------------------
 */

/* A mirror of the maps built only from diffs. */
struct mirror {
	struct np_entries e;
};

static int ep_key_cmp(const struct np_ep_entry *a, const struct np_ep_entry *b)
{
	return memcmp(&a->key, &b->key, sizeof(a->key));
}

static void mirror_apply(struct mirror *m, const struct np_diff *d)
{
	/* Rules and cidrs: whole entries; add must not exist yet, del must. */
	for (size_t i = 0; i < d->add.n_rules; i++) {
		for (size_t k = 0; k < m->e.n_rules; k++)
			if (!memcmp(&m->e.rules[k].key, &d->add.rules[i].key,
				    sizeof(d->add.rules[i].key)))
				(void)TEST_FAIL_AT("rule added twice");
		m->e.rules = realloc(m->e.rules, (m->e.n_rules + 1) * sizeof(*m->e.rules));
		m->e.rules[m->e.n_rules++] = d->add.rules[i];
	}
	for (size_t i = 0; i < d->add.n_cidrs; i++) {
		m->e.cidrs = realloc(m->e.cidrs, (m->e.n_cidrs + 1) * sizeof(*m->e.cidrs));
		m->e.cidrs[m->e.n_cidrs++] = d->add.cidrs[i];
	}
	for (size_t i = 0; i < d->add.n_ep; i++) {
		size_t k;

		for (k = 0; k < m->e.n_ep; k++)
			if (!ep_key_cmp(&m->e.ep[k], &d->add.ep[i]))
				break;
		if (k == m->e.n_ep) {
			m->e.ep = realloc(m->e.ep, (m->e.n_ep + 1) * sizeof(*m->e.ep));
			m->e.n_ep++;
		}
		m->e.ep[k] = d->add.ep[i];
	}
	for (size_t i = 0; i < d->del.n_ep; i++) {
		size_t k;

		for (k = 0; k < m->e.n_ep; k++)
			if (!ep_key_cmp(&m->e.ep[k], &d->del.ep[i]))
				break;
		if (!ASSERT_TRUE(k < m->e.n_ep, "deleted endpoint exists"))
			continue;
		m->e.ep[k] = m->e.ep[--m->e.n_ep];
	}
	for (size_t i = 0; i < d->del.n_rules; i++) {
		size_t k;

		for (k = 0; k < m->e.n_rules; k++)
			if (!memcmp(&m->e.rules[k], &d->del.rules[i], sizeof(d->del.rules[i])))
				break;
		if (!ASSERT_TRUE(k < m->e.n_rules, "deleted rule exists"))
			continue;
		m->e.rules[k] = m->e.rules[--m->e.n_rules];
	}
	for (size_t i = 0; i < d->del.n_cidrs; i++) {
		size_t k;

		for (k = 0; k < m->e.n_cidrs; k++)
			if (!memcmp(&m->e.cidrs[k], &d->del.cidrs[i], sizeof(d->del.cidrs[i])))
				break;
		if (!ASSERT_TRUE(k < m->e.n_cidrs, "deleted cidr exists"))
			continue;
		m->e.cidrs[k] = m->e.cidrs[--m->e.n_cidrs];
	}
}

static int sort_ep(const void *a, const void *b)
{
	return memcmp(&((const struct np_ep_entry *)a)->key, &((const struct np_ep_entry *)b)->key,
		      sizeof(struct sl_np_ep_key));
}

static int sort_bytes_rule(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct np_rule_entry));
}

static int sort_bytes_cidr(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct np_cidr_entry));
}

/* Same entries regardless of order (the mirror is unsorted). */
static bool same_entries(struct np_entries *a, struct np_entries *b, const char *what)
{
	struct np_entries *s[2] = {a, b};

	for (int i = 0; i < 2; i++) {
		if (s[i]->n_ep)
			qsort(s[i]->ep, s[i]->n_ep, sizeof(*s[i]->ep), sort_ep);
		if (s[i]->n_rules)
			qsort(s[i]->rules, s[i]->n_rules, sizeof(*s[i]->rules), sort_bytes_rule);
		if (s[i]->n_cidrs)
			qsort(s[i]->cidrs, s[i]->n_cidrs, sizeof(*s[i]->cidrs), sort_bytes_cidr);
	}
	if (!ASSERT_EQ(a->n_ep, b->n_ep, what) || !ASSERT_EQ(a->n_rules, b->n_rules, what) ||
	    !ASSERT_EQ(a->n_cidrs, b->n_cidrs, what))
		return false;
	return ASSERT_TRUE(!a->n_ep || !memcmp(a->ep, b->ep, a->n_ep * sizeof(*a->ep)), what) &&
	       ASSERT_TRUE(!a->n_rules ||
				   !memcmp(a->rules, b->rules, a->n_rules * sizeof(*a->rules)),
			   what) &&
	       ASSERT_TRUE(!a->n_cidrs ||
				   !memcmp(a->cidrs, b->cidrs, a->n_cidrs * sizeof(*a->cidrs)),
			   what);
}

TEST(incremental_equals_full_recompute)
{
	size_t recomputed = 0, full = 0;

	for (uint64_t seed = 1; seed <= 60; seed++) {
		struct world w;
		struct np_ctx *c;
		struct mirror m = {{0}};
		bool ok = true;

		rng_state = seed * 0xd1b54a32d192ed03ull;
		/* Every third seed compiles node n1's view (np_set_node). */
		view_node = seed % 3 == 0 ? "n1" : NULL;
		gen_world(&w);
		c = fresh(&w);
		{
			struct np_diff d;

			ASSERT_OK(np_compile(c, &d, NULL, 0), "first");
			mirror_apply(&m, &d);
			np_diff_fini(&d);
		}
		for (int step = 0; step < 25 && ok; step++) {
			struct np_diff d;
			struct np_ctx *f;
			struct np_entries ec, ef;
			struct np_stats st;
			int i;

			switch (rnd(7)) {
			case 0: /* pod relabel / restart / new pod */
			case 1:
				i = (int)rnd(NPOD);
				{
					int old_ns = w.pods[i].ns;
					bool was = w.pods[i].live;

					gen_pod(&w, i);
					/* Same name in another namespace is another pod. */
					if (was && old_ns != w.pods[i].ns)
						ASSERT_OK(np_pod_del(c, ns_names[old_ns],
								     w.pods[i].name),
							  "moved pod");
				}
				feed_pod(c, &w, i);
				break;
			case 2: /* pod delete */
				i = (int)rnd(NPOD);
				if (w.pods[i].live) {
					w.pods[i].live = false;
					ASSERT_OK(np_pod_del(c, ns_names[w.pods[i].ns],
							     w.pods[i].name),
						  "pod del");
				}
				break;
			case 3: /* namespace labels */
				i = (int)rnd(NNS);
				gen_ns(&w, i);
				feed_ns(c, &w, i);
				break;
			case 4: /* policy create/update */
			case 5:
				i = (int)rnd(NPOL);
				if (w.pol[i]) {
					char name[16];

					/* A policy moving namespace is a delete + create. */
					snprintf(name, sizeof(name), "np%d", i);
					np_policy_del(c, ns_names[w.pol_ns[i]], name);
				}
				gen_policy(&w, i);
				feed_policy(c, &w, i);
				break;
			default: /* policy delete */
				i = (int)rnd(NPOL);
				if (w.pol[i]) {
					char name[16];

					snprintf(name, sizeof(name), "np%d", i);
					ASSERT_OK(np_policy_del(c, ns_names[w.pol_ns[i]], name),
						  "pol del");
					json_object_put(w.pol[i]);
					w.pol[i] = NULL;
				}
				break;
			}
			ASSERT_OK(np_compile(c, &d, NULL, 0), "step compile");
			np_stats_get(c, &st);
			recomputed += st.recomputed;
			full += 2 * st.identities;
			mirror_apply(&m, &d);
			np_diff_fini(&d);
			f = fresh(&w);
			ASSERT_OK(np_compile(f, NULL, NULL, 0), "fresh compile");
			ASSERT_OK(np_dump(c, &ec), "dump c");
			ASSERT_OK(np_dump(f, &ef), "dump f");
			ok = same_entries(&ec, &ef, "incremental == full");
			if (ok) {
				struct np_entries mc = m.e;

				/* The mirror (diffs only) equals the dump too. */
				ok = same_entries(&mc, &ec, "diffs == dump");
				m.e = mc;
			}
			if (ok && step % 4 == 3 && !view_node)
				ok = compare_world(c, &w, seed);
			if (!ok)
				fprintf(stderr, "  seed %llu step %d\n", (unsigned long long)seed,
					step);
			np_entries_fini(&ec);
			np_entries_fini(&ef);
			np_free(f);
		}
		np_entries_fini(&m.e);
		np_free(c);
		world_fini(&w);
		if (!ok)
			break;
	}
	view_node = NULL;
	/* The point of being incremental: far fewer sets computed than a
	 * full recompute at every step would. */
	ASSERT_TRUE(recomputed * 2 < full, "incremental recomputes less");
	fprintf(stderr, "  recomputed %zu identity x direction sets; full would be %zu\n",
		recomputed, full);
}
