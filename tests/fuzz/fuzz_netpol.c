// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzz target for the NetworkPolicy compiler (netpol/). The input is one
 * NetworkPolicy document (JSON); it is decoded and compiled against a small
 * fixed cluster (namespaces x, y labelled; pods with labels, named ports,
 * IPv4 and IPv6 addresses). Invariants, abort() on a break:
 *   - np_policy_set returns 0, -SL_ERR_INVALID with a message that names
 *     the policy and the policy recorded with an error, or -ENOMEM;
 *   - np_compile returns 0 (or -ENOMEM), and the output is consistent: every
 *     rule set an endpoint points at (>= SL_NP_RS_MIN) has rule entries,
 *     every rule and cidr entry belongs to a set some endpoint uses, rule
 *     prefix lengths are in 72..96 and cidr ones within the family;
 *   - a second context fed the same objects in another order dumps the
 *     same bytes (determinism);
 *   - a broken policy never widens: it yields no rule entries, only
 *     SL_NP_RS_FAILED for the pods it selects;
 *   - deleting the policy and compiling again gives back the dump of the
 *     cluster without it (the diff path undoes exactly what it did).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netpol.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                           \
	do {                                                        \
		if (!(cond)) {                                      \
			fprintf(stderr, "fuzz_netpol: %s\n", what); \
			abort();                                    \
		}                                                   \
	} while (0)

static void add_cluster(struct np_ctx *c, bool reverse)
{
	static const struct {
		const char *ns, *name, *ip, *app;
		uint16_t port;
	} pods[] = {
		{"x", "a", "198.18.0.1", "web", 80},   {"x", "b", "198.18.0.2", "db", 5432},
		{"y", "a", "198.18.1.1", "web", 8080}, {"y", "c", "198.18.1.2", "cli", 0},
		{"y", "v6", "2001:db8::1", "web", 80},
	};
	struct sl_label envx = {"env", "prod"}, envy = {"env", "dev"};

	for (int k = 0; k < 5; k++) {
		int i = reverse ? 4 - k : k;
		struct sl_label l = {"app", pods[i].app};
		struct np_port p[2] = {{"http", 6, pods[i].port}, {"dns", 17, 53}};
		const char *ip[1] = {pods[i].ip};
		struct np_pod_spec s = {.ns = pods[i].ns,
					.name = pods[i].name,
					.labels = &l,
					.n_labels = 1,
					.ips = ip,
					.n_ips = 1,
					.ports = p,
					.n_ports = pods[i].port ? 2 : 1};

		np_pod_set(c, &s, NULL, 0);
	}
	np_ns_set(c, "x", &envx, 1);
	np_ns_set(c, "y", &envy, 1);
}

static void check_consistent(const struct np_entries *e)
{
	for (size_t i = 0; i < e->n_ep; i++) {
		uint32_t rs[2] = {e->ep[i].val.ruleset[0], e->ep[i].val.ruleset[1]};

		for (int d = 0; d < 2; d++) {
			bool found = rs[d] < SL_NP_RS_MIN;

			for (size_t k = 0; k < e->n_rules && !found; k++)
				found = e->rules[k].key.ruleset == rs[d];
			CHECK(found, "endpoint points at a rule set without entries");
		}
	}
	for (size_t k = 0; k < e->n_rules; k++) {
		bool used = false;

		CHECK(e->rules[k].key.prefixlen >= SL_NP_RULE_PLEN_EXACT &&
			      e->rules[k].key.prefixlen <= SL_NP_RULE_PLEN_FULL,
		      "rule prefix length");
		CHECK(e->rules[k].val.verdict == SL_NP_ALLOW, "verdict");
		for (size_t i = 0; i < e->n_ep && !used; i++)
			used = e->ep[i].val.ruleset[0] == e->rules[k].key.ruleset ||
			       e->ep[i].val.ruleset[1] == e->rules[k].key.ruleset;
		CHECK(used, "rule entry of an unused set");
	}
	for (size_t k = 0; k < e->n_cidrs; k++) {
		uint32_t plen = e->cidrs[k].key.prefixlen - SL_NP_CIDR_PLEN_BASE;

		CHECK(plen <= (e->cidrs[k].key.family == SL_NP_AF_INET ? 32u : 128u),
		      "cidr prefix length");
	}
}

static bool same(const struct np_entries *a, const struct np_entries *b)
{
	return a->n_ep == b->n_ep && a->n_rules == b->n_rules && a->n_cidrs == b->n_cidrs &&
	       (!a->n_ep || !memcmp(a->ep, b->ep, a->n_ep * sizeof(*a->ep))) &&
	       (!a->n_rules || !memcmp(a->rules, b->rules, a->n_rules * sizeof(*a->rules))) &&
	       (!a->n_cidrs || !memcmp(a->cidrs, b->cidrs, a->n_cidrs * sizeof(*a->cidrs)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *j = sl_json_parse((const char *)data, size, NULL, 0);
	struct k8s_netpol *pol = NULL;
	struct np_ctx *c = NULL, *c2 = NULL;
	struct np_entries base = {0}, e1 = {0}, e2 = {0}, after = {0};
	char err[512] = "";
	int ret;

	if (!j)
		return 0;
	if (k8s_netpol_decode(j, &pol, NULL, 0))
		goto out;
	c = np_new(NULL);
	c2 = np_new(NULL);
	if (!c || !c2)
		goto out;
	add_cluster(c, false);
	if (np_compile(c, NULL, NULL, 0) || np_dump(c, &base))
		goto out;
	ret = np_policy_set(c, pol, err, sizeof(err));
	if (ret == -ENOMEM)
		goto out;
	CHECK(ret == 0 || ret == -SL_ERR_INVALID, "np_policy_set result");
	if (ret == -SL_ERR_INVALID) {
		CHECK(err[0] != '\0', "error without a message");
		if (pol->meta.namespace && *pol->meta.namespace && pol->meta.name &&
		    *pol->meta.name) {
			CHECK(np_policy_error(c, pol->meta.namespace, pol->meta.name) != NULL,
			      "invalid policy not recorded");
			CHECK(strstr(err, "networkpolicy '") == err, "message names the policy");
		}
	}
	ret = np_compile(c, NULL, err, sizeof(err));
	if (ret == -ENOMEM)
		goto out;
	CHECK(ret == 0, "compile of a small cluster fails");
	if (np_dump(c, &e1))
		goto out;
	check_consistent(&e1);
	/* Same objects, other order. */
	np_policy_set(c2, pol, NULL, 0);
	add_cluster(c2, true);
	if (np_compile(c2, NULL, NULL, 0) || np_dump(c2, &e2))
		goto out;
	CHECK(same(&e1, &e2), "output depends on the order of events");
	/* Failing closed: the broken policy is the only one, so every pod is
	 * either not isolated or closed; it contributes no rule. */
	if (np_policy_error(c, pol->meta.namespace ? pol->meta.namespace : "",
			    pol->meta.name ? pol->meta.name : "")) {
		for (size_t i = 0; i < e1.n_ep; i++)
			for (int d = 0; d < 2; d++)
				CHECK(e1.ep[i].val.ruleset[d] == SL_NP_RS_NONE ||
					      e1.ep[i].val.ruleset[d] == SL_NP_RS_FAILED,
				      "a broken policy produced rules");
	}
	/* Removing it restores the cluster's maps. */
	if (pol->meta.namespace && *pol->meta.namespace && pol->meta.name && *pol->meta.name) {
		struct np_diff d;

		if (np_policy_del(c, pol->meta.namespace, pol->meta.name))
			goto out;
		if (np_compile(c, &d, NULL, 0))
			goto out;
		np_diff_fini(&d);
		if (np_dump(c, &after))
			goto out;
		CHECK(same(&base, &after), "delete does not restore");
	}
out:
	np_entries_fini(&base);
	np_entries_fini(&e1);
	np_entries_fini(&e2);
	np_entries_fini(&after);
	np_free(c);
	np_free(c2);
	k8s_netpol_free(pol);
	json_object_put(j);
	return 0;
}
