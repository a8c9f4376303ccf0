// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for dns/wire.c and dns/zone.c: bytes -> dns_query_parse;
 * when the packet is answerable, the reply is built the way the server does
 * (writer at the UDP limit, the zone's answer from a small fixed cluster,
 * OPT, end) and must itself parse as a well-formed message no larger than
 * the limit. A rejected packet must carry a reply rcode or be a drop (-1).
 * Violations abort() so the fuzzer records the input; the corpus replays in
 * `make test`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/json.h"
#include "sluice/log.h"
#include "wire.h"
#include "zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool cond)
{
	if (!cond)
		abort();
}

static const char *const objs[][2] = {
	{"ns", "{\"metadata\":{\"name\":\"default\"}}"},
	{"svc",
	 "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"clusterIP\":"
	 "\"10.96.0.10\",\"ports\":[{\"name\":\"http\",\"port\":80}]}}"},
	{"svc", "{\"metadata\":{\"name\":\"db\",\"namespace\":\"default\"},\"spec\":{\"clusterIP\":"
		"\"None\",\"ports\":[{\"name\":\"pg\",\"port\":5432}]}}"},
	{"eps",
	 "{\"metadata\":{\"name\":\"db-1\",\"namespace\":\"default\",\"labels\":{"
	 "\"kubernetes.io/service-name\":\"db\"}},\"addressType\":\"IPv4\",\"endpoints\":["
	 "{\"addresses\":[\"10.0.0.5\"],\"hostname\":\"db-0\"},{\"addresses\":[\"10.0.0.6\"]}],"
	 "\"ports\":[{\"name\":\"pg\",\"port\":5432}]}"},
	{"svc", "{\"metadata\":{\"name\":\"ext\",\"namespace\":\"default\"},\"spec\":{\"type\":"
		"\"ExternalName\",\"externalName\":\"example.com\"}}"},
};

static struct dns_zone *zone_get(void)
{
	static struct dns_zone *z;
	struct dns_zone_opts o = {.zone = "cluster.local", .ttl = 30};

	if (z)
		return z;
	sl_log_set_level(SL_LOG_ERROR);
	z = dns_zone_new(&o);
	must(z != NULL);
	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		struct json_object *j = sl_json_parse(objs[i][1], strlen(objs[i][1]), NULL, 0);
		enum k8s_kind k = !strcmp(objs[i][0], "ns")    ? K8S_KIND_NAMESPACE
				  : !strcmp(objs[i][0], "svc") ? K8S_KIND_SERVICE
							       : K8S_KIND_ENDPOINTSLICE;

		must(j && dns_zone_upsert(z, k, j) == 0);
		json_object_put(j);
	}
	must(dns_zone_commit(z) == 0);
	dns_zone_set_synced(z, true);
	return z;
}

/* Walks a whole message: header, question, RRs; names with bounded pointers. */
static bool msg_ok(const uint8_t *m, size_t len)
{
	size_t off = 12;
	unsigned int counts[4];

	if (len < 12)
		return false;
	for (int i = 0; i < 4; i++)
		counts[i] = (unsigned int)(m[4 + 2 * i] << 8 | m[5 + 2 * i]);
	for (unsigned int s = 0; s < 4; s++)
		for (unsigned int i = 0; i < counts[s]; i++) {
			size_t o = off;
			bool jumped = false;
			int hops = 0;

			for (;;) {
				if (o >= len || ++hops > 128)
					return false;
				if ((m[o] & 0xc0) == 0xc0) {
					if (o + 1 >= len)
						return false;
					if (!jumped)
						off = o + 2;
					jumped = true;
					o = (size_t)(m[o] & 0x3f) << 8 | m[o + 1];
					continue;
				}
				if (m[o] == 0) {
					if (!jumped)
						off = o + 1;
					break;
				}
				o += 1u + m[o];
			}
			if (s == 0) {
				off += 4;
				continue;
			}
			if (off + 10 > len)
				return false;
			off += 10u + (size_t)(m[off + 8] << 8 | m[off + 9]);
		}
	return off == len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[DNS_MAX_MSG];
	struct dns_zone *z = zone_get();
	struct dns_query q;
	struct dns_writer w;
	struct dns_zone_result res;
	int rcode = 0;
	int err = dns_query_parse(data, size, &q, &rcode);
	size_t limit, n;

	if (err) {
		must(err < 0);
		if (rcode < 0)
			return 0; /* dropped */
		must(rcode == DNS_R_FORMERR || rcode == DNS_R_NOTIMP || rcode == DNS_R_BADVERS);
	}
	limit = dns_query_udp_limit(&q);
	must(limit >= DNS_MAX_UDP && limit <= DNS_EDNS_DEFAULT);
	if (dns_writer_begin(&w, out, limit, &q, false, err ? rcode : DNS_R_NOERROR))
		return 0; /* question larger than the limit: the server answers FORMERR bare */
	if (!err) {
		must(dns_zone_answer(z, &q, &w, &res) == 0);
		if (!res.ours)
			must(w.count[1] + w.count[2] + w.count[3] == 0);
	}
	must(dns_writer_opt(&w, DNS_EDNS_DEFAULT) == 0);
	n = dns_writer_end(&w);
	must(n >= 12 && n <= limit);
	must(msg_ok(out, n));
	/* Our reply is a response: the parser must drop it, never crash on it. */
	must(dns_query_parse(out, n, &q, &rcode) < 0 && rcode == -1);
	return 0;
}
