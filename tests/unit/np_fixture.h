/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fixtures shared by the netpol unit tests: objects from short strings, the
 * upstream e2e model (namespaces x, y, z labelled ns=<name>; pods a, b, c
 * labelled pod=<name>, each serving 80 and 81 over TCP, UDP and SCTP under
 * the names serve-<port>-<proto>) and a reachability-matrix check in the
 * style of the e2e Reachability tables. Header-only (static functions) so
 * each test binary stays one .c file plus harness.o.
 */
#ifndef SLUICE_NP_FIXTURE_H
#define SLUICE_NP_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "netpol.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

/* Not every test uses every helper. */
#define NP_FX static __attribute__((unused))

#define TCP  6
#define UDP  17
#define SCTP 132

/* Policy spec written as JSON with ' for " (readable in C). Returns
 * np_policy_set's result; decode errors fail the test and return -1. */
NP_FX int np_fx_policy(struct np_ctx *c, const char *ns, const char *name, const char *spec_sq)
{
	size_t n = strlen(spec_sq) + strlen(ns) + strlen(name) + 128;
	char *doc = malloc(n), err[512] = "";
	struct json_object *j;
	struct k8s_netpol *p = NULL;
	int ret;

	snprintf(doc, n,
		 "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
		 "\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\"},\"spec\":%s}",
		 ns, name, spec_sq);
	for (char *s = doc; *s; s++)
		if (*s == '\'')
			*s = '"';
	j = sl_json_parse(doc, strlen(doc), err, sizeof(err));
	if (!ASSERT_NOT_NULL(j, "policy json")) {
		fprintf(stderr, "  %s: %s\n", doc, err);
		free(doc);
		return -1;
	}
	if (!ASSERT_OK(k8s_netpol_decode(j, &p, err, sizeof(err)), "policy decode")) {
		fprintf(stderr, "  %s: %s\n", doc, err);
		json_object_put(j);
		free(doc);
		return -1;
	}
	ret = np_policy_set(c, p, err, sizeof(err));
	if (ret && ret != -SL_ERR_INVALID)
		ASSERT_OK(ret, "np_policy_set");
	k8s_netpol_free(p);
	json_object_put(j);
	free(doc);
	return ret;
}

/* labels "k=v,k2=v2" (at most 8); ports "name/PROTO/num,..." (at most 16). */
NP_FX int np_fx_pod(struct np_ctx *c, const char *ns, const char *name, const char *ip,
		    const char *labels, const char *ports)
{
	struct sl_label l[8];
	struct np_port p[16];
	char lb[256], pb[512], err[256] = "";
	size_t nl = 0, np = 0;
	struct np_pod_spec s = {.ns = ns, .name = name, .node = "node-1"};
	const char *ips[1] = {ip};
	int ret;

	snprintf(lb, sizeof(lb), "%s", labels ? labels : "");
	snprintf(pb, sizeof(pb), "%s", ports ? ports : "");
	for (char *save = NULL, *t = strtok_r(lb, ",", &save); t && nl < 8;
	     t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		if (!eq)
			continue;
		*eq = '\0';
		l[nl].key = t;
		l[nl++].value = eq + 1;
	}
	for (char *save = NULL, *t = strtok_r(pb, ",", &save); t && np < 16;
	     t = strtok_r(NULL, ",", &save)) {
		char *s1 = strchr(t, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;

		if (!s2)
			continue;
		*s1 = *s2 = '\0';
		p[np].name = t;
		p[np].proto = np_proto_parse(s1 + 1);
		p[np++].port = (uint16_t)atoi(s2 + 1);
	}
	s.labels = l;
	s.n_labels = nl;
	s.ports = p;
	s.n_ports = np;
	s.ips = ips;
	s.n_ips = ip ? 1 : 0;
	ret = np_pod_set(c, &s, err, sizeof(err));
	if (ret)
		fprintf(stderr, "  np_pod_set %s/%s: %d %s\n", ns, name, ret, err);
	return ret;
}

NP_FX int np_fx_ns(struct np_ctx *c, const char *name, const char *labels)
{
	struct sl_label l[8];
	char lb[256];
	size_t nl = 0;

	snprintf(lb, sizeof(lb), "%s", labels ? labels : "");
	for (char *save = NULL, *t = strtok_r(lb, ",", &save); t && nl < 8;
	     t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		if (!eq)
			continue;
		*eq = '\0';
		l[nl].key = t;
		l[nl++].value = eq + 1;
	}
	return np_ns_set(c, name, l, nl);
}

/* --- the e2e model -----------------------------------------------------------------------------
 */

static const char *const np_fx_nss[3] = {"x", "y", "z"};
static const char *const np_fx_pods[3] = {"a", "b", "c"};
#define NP_FX_PORTS                                                                        \
	"serve-80-tcp/TCP/80,serve-81-tcp/TCP/81,serve-80-udp/UDP/80,serve-81-udp/UDP/81," \
	"serve-80-sctp/SCTP/80,serve-81-sctp/SCTP/81"

/* x/a = 198.18.0.1 ... z/c = 198.18.0.9 */
NP_FX void np_fx_ip(int i, char *buf, size_t n)
{
	snprintf(buf, n, "198.18.0.%d", i + 1);
}

NP_FX struct np_ctx *np_fx_model(void)
{
	struct np_ctx *c = np_new(NULL);

	for (int n = 0; n < 3; n++) {
		char l[32];

		snprintf(l, sizeof(l), "ns=%s", np_fx_nss[n]);
		np_fx_ns(c, np_fx_nss[n], l);
		for (int p = 0; p < 3; p++) {
			char ip[32];

			snprintf(l, sizeof(l), "pod=%s", np_fx_pods[p]);
			np_fx_ip(n * 3 + p, ip, sizeof(ip));
			np_fx_pod(c, np_fx_nss[n], np_fx_pods[p], ip, l, NP_FX_PORTS);
		}
	}
	return c;
}

/*
 * Compiles and compares the 9x9 matrix for (proto, port) with `want`: 81
 * characters after removing spaces, rows = source (x/a, x/b, ... z/c),
 * columns = destination; '.' allowed, 'X' denied; the diagonal (a pod to
 * itself) is not checked. Prints both tables on a mismatch.
 */
NP_FX bool np_fx_matrix(struct np_ctx *c, uint8_t proto, uint16_t port, const char *want,
			const char *name)
{
	char w[82], got[82], err[512] = "";
	size_t n = 0;
	bool ok = true;
	int ret = np_compile(c, NULL, err, sizeof(err));

	if (!ASSERT_TRUE(ret == 0 || ret == -ENOSPC, name))
		fprintf(stderr, "  compile: %d %s\n", ret, err);
	for (const char *s = want; *s && n < 81; s++)
		if (*s == '.' || *s == 'X')
			w[n++] = *s;
	w[n] = '\0';
	if (!ASSERT_EQ(n, 81, name))
		return false;
	for (int i = 0; i < 9; i++) {
		for (int j = 0; j < 9; j++) {
			char a[32], b[32];

			np_fx_ip(i, a, sizeof(a));
			np_fx_ip(j, b, sizeof(b));
			got[i * 9 + j] = np_check(c, a, b, proto, port, NULL) == 1 ? '.' : 'X';
			if (i != j && got[i * 9 + j] != w[i * 9 + j])
				ok = false;
		}
	}
	got[81] = '\0';
	if (!ok) {
		(void)TEST_FAIL_AT("%s: reachability differs (proto %u port %u)", name, proto,
				   port);
		fprintf(stderr, "        want        got\n");
		for (int i = 0; i < 9; i++)
			fprintf(stderr, "  %s/%s  %.9s   %.9s\n", np_fx_nss[i / 3],
				np_fx_pods[i % 3], w + i * 9, got + i * 9);
	}
	return ok;
}

#endif
