// SPDX-License-Identifier: Apache-2.0
/*
 * `sluicectl flows` (flows.h): reads the pinned policy ring buffer and prints decisions.
 * Policy ids are recovered by feeding the listed NetworkPolicies to a libnetpol context,
 * which numbers them exactly as the agent's does (a hash of namespace/name).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "flows.h"
#include "inspect.h"
#include "policy.h"
#include "netpol/netpol.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/k8s.h"
#include "sluice/log.h"
#include "abi/policy.h"

struct name_ent {
	uint32_t key; /* address (network order) or policy id */
	char name[256];
};

struct fl {
	struct sl_client *client;
	struct name_ent *pods, *pols;
	size_t n_pods, n_pols;
	time_t last_list;
	bool json;
	const char *verdict; /* "allow", "deny" or NULL */
	long count, seen;
	double mono_to_real;
};

static volatile sig_atomic_t stop;

static void on_sig(int sig)
{
	stop = 1;
}

static void names_list(struct fl *f)
{
	struct sl_client_resp resp = {0};
	struct json_object *items;
	struct np_ctx *ctx;
	time_t now = time(NULL);

	if (!f->client || now == f->last_list)
		return;
	f->last_list = now;
	if (!sl_client_request(f->client, "GET", "/api/v1/pods", NULL, 0, NULL, NULL, &resp) &&
	    resp.status == 200 && (items = sl_json_get(resp.json, "items"))) {
		size_t n = json_object_array_length(items);
		struct name_ent *v = calloc(n + 1, sizeof(*v));

		for (size_t i = 0; v && i < n; i++) {
			struct json_object *it = json_object_array_get_idx(items, i);
			const char *ip = sl_json_get_str(sl_json_get(it, "status"), "podIP");
			const char *ns = sl_json_get_str(sl_json_get(it, "metadata"), "namespace");
			const char *nm = sl_json_get_str(sl_json_get(it, "metadata"), "name");
			struct in_addr a;

			if (!ip || !ns || !nm || inet_pton(AF_INET, ip, &a) != 1)
				continue;
			v[f->n_pods].key = a.s_addr;
			snprintf(v[f->n_pods].name, sizeof(v[0].name), "%s/%s", ns, nm);
			f->n_pods++;
		}
		if (v) {
			free(f->pods);
			f->pods = v;
		}
	}
	sl_client_resp_fini(&resp);
	ctx = np_new(NULL);
	if (ctx &&
	    !sl_client_request(f->client, "GET", "/apis/networking.k8s.io/v1/networkpolicies", NULL,
			       0, NULL, NULL, &resp) &&
	    resp.status == 200 && (items = sl_json_get(resp.json, "items"))) {
		size_t n = json_object_array_length(items);
		struct name_ent *v = calloc(n + 1, sizeof(*v));

		f->n_pols = 0;
		for (size_t i = 0; v && i < n; i++) {
			struct k8s_netpol *p = NULL;
			char err[256];

			if (k8s_obj_decode(K8S_KIND_NETWORKPOLICY,
					   json_object_array_get_idx(items, i), (void **)&p, err,
					   sizeof(err)))
				continue;
			np_policy_set(ctx, p, err, sizeof(err));
			v[f->n_pols].key = np_policy_id(ctx, p->meta.namespace, p->meta.name);
			snprintf(v[f->n_pols].name, sizeof(v[0].name), "%s/%s", p->meta.namespace,
				 p->meta.name);
			f->n_pols++;
			k8s_obj_free(K8S_KIND_NETWORKPOLICY, p);
		}
		if (v) {
			free(f->pols);
			f->pols = v;
		}
	}
	sl_client_resp_fini(&resp);
	np_free(ctx);
}

static const char *lookup(struct fl *f, bool pol, uint32_t key)
{
	for (int pass = 0; pass < 2; pass++) {
		struct name_ent *v = pol ? f->pols : f->pods;
		size_t n = pol ? f->n_pols : f->n_pods;

		for (size_t i = 0; i < n; i++)
			if (v[i].key == key)
				return v[i].name;
		if (pass == 0)
			names_list(f);
	}
	return NULL;
}

static const char *proto_name(unsigned p)
{
	switch (p) {
	case 1:
		return "ICMP";
	case 6:
		return "TCP";
	case 17:
		return "UDP";
	case 132:
		return "SCTP";
	default:
		return "IP";
	}
}

static int flow_cb(void *arg, void *data, size_t size)
{
	struct fl *f = arg;
	const struct sl_np_flow *r = data;
	char sa[INET_ADDRSTRLEN], da[INET_ADDRSTRLEN], ts[64], pol[300];
	const char *sn, *dn, *pn, *why, *verdict;
	time_t wall;
	struct tm tm;
	double t;

	if (size < sizeof(*r) || stop)
		return 0;
	verdict = r->verdict == SL_NP_CT_ALLOW ? "allow" : "deny";
	if (f->verdict && strcmp(f->verdict, verdict))
		return 0;
	inet_ntop(AF_INET, &r->saddr, sa, sizeof(sa));
	inet_ntop(AF_INET, &r->daddr, da, sizeof(da));
	sn = r->src_id ? lookup(f, false, r->saddr) : NULL;
	dn = r->dst_id ? lookup(f, false, r->daddr) : NULL;
	pn = r->policy ? lookup(f, true, r->policy) : NULL;
	if (r->policy && !pn)
		snprintf(pol, sizeof(pol), "id:%u", r->policy);
	else
		snprintf(pol, sizeof(pol), "%s", pn ? pn : "-");
	why = npol_reason_name(r->reason);
	t = f->mono_to_real + (double)r->ts_ns / 1e9;
	wall = (time_t)t;
	localtime_r(&wall, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	if (f->json) {
		printf("{\"time\":%.6f,\"verdict\":\"%s\",\"direction\":\"%s\",\"proto\":\"%s\","
		       "\"src\":\"%s\",\"sport\":%u,\"srcPod\":\"%s\",\"dst\":\"%s\",\"dport\":%u,"
		       "\"dstPod\":\"%s\",\"reason\":\"%s\",\"policy\":\"%s\",\"ifindex\":%u}\n",
		       t, verdict, r->dir == SL_NP_INGRESS ? "ingress" : "egress",
		       proto_name(r->proto), sa, ntohs(r->sport), sn ? sn : "", da, ntohs(r->dport),
		       dn ? dn : "", why ? why : "?", pn ? pn : "", r->ifindex);
	} else {
		printf("%s.%03d %-5s %-7s %-4s %s%s%s:%u -> %s%s%s:%u reason=%s policy=%s\n", ts,
		       (int)((t - (double)wall) * 1000), verdict,
		       r->dir == SL_NP_INGRESS ? "ingress" : "egress", proto_name(r->proto),
		       sn ? sn : "", sn ? " " : "", sa, ntohs(r->sport), dn ? dn : "",
		       dn ? " " : "", da, ntohs(r->dport), why ? why : "?", pol);
	}
	fflush(stdout);
	if (f->count && ++f->seen >= f->count)
		stop = 1;
	return 0;
}

static void usage(FILE *o)
{
	fprintf(o,
		"usage: sluicectl flows [--bpffs DIR] [--node NAME] [--kubeconfig FILE | --server "
		"URL [--token T]]\n"
		"                       [--verdict allow|deny] [--count N] [--timeout SECONDS] "
		"[-o text|json]\n"
		"\n"
		"Streams the node's NetworkPolicy decisions (first packet of each flow) with pod\n"
		"and policy names from the API ($KUBECONFIG when no flag names one). Stops after\n"
		"N records, after SECONDS, or on SIGINT.\n");
}

int flows_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bpffs", required_argument, NULL, 'b'},
		{"node", required_argument, NULL, 'n'},
		{"kubeconfig", required_argument, NULL, 'k'},
		{"server", required_argument, NULL, 's'},
		{"token", required_argument, NULL, 't'},
		{"verdict", required_argument, NULL, 'v'},
		{"count", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 'T'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *bpffs = NULL, *node = NULL, *kc = getenv("KUBECONFIG"), *server = NULL,
		   *token = NULL;
	struct fl f = {0};
	struct ring_buffer *rb = NULL;
	struct timespec mono, real;
	char path[4200], err[512];
	struct insp *in;
	long timeout_s = 0;
	time_t start;
	int c, fd, rc = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bpffs = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'k':
			kc = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'v':
			if (strcmp(optarg, "allow") && strcmp(optarg, "deny")) {
				fprintf(stderr,
					"sluicectl flows: --verdict '%s': accepted values "
					"are allow, deny\n",
					optarg);
				return 2;
			}
			f.verdict = optarg;
			break;
		case 'c':
		case 'T': {
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 0 || v > 1000000000) {
				fprintf(stderr,
					"sluicectl flows: --%s '%s': expected a non-negative "
					"integer\n",
					c == 'c' ? "count" : "timeout", optarg);
				return 2;
			}
			if (c == 'c')
				f.count = v;
			else
				timeout_s = v;
			break;
		}
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				fprintf(stderr,
					"sluicectl flows: -o '%s': accepted values are text, "
					"json\n",
					optarg);
				return 2;
			}
			f.json = !strcmp(optarg, "json");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluicectl flows: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (server) {
		struct sl_client_opts co = {.server = server, .token = token, .timeout_ms = 5000};

		f.client = sl_client_new(&co, err, sizeof(err));
	} else if (kc && *kc) {
		f.client = sl_client_from_kubeconfig(kc, NULL, err, sizeof(err));
	}
	if ((server || (kc && *kc)) && !f.client) {
		fprintf(stderr, "sluicectl flows: API client: %s\n", err);
		return 1;
	}
	in = insp_open(bpffs, node);
	if (!in) {
		fprintf(stderr, "sluicectl flows: %s\n", sl_strerror(-errno));
		sl_client_free(f.client);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", insp_root(in), SL_MAP_NP_FLOW);
	insp_close(in);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr,
			"sluicectl flows: '%s': %s (is the agent enforcing NetworkPolicy here?)\n",
			path, strerror(errno));
		sl_client_free(f.client);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	f.mono_to_real = (double)real.tv_sec + (double)real.tv_nsec / 1e9 -
			 ((double)mono.tv_sec + (double)mono.tv_nsec / 1e9);
	names_list(&f);
	rb = ring_buffer__new(fd, flow_cb, &f, NULL);
	if (!rb) {
		fprintf(stderr, "sluicectl flows: ring buffer '%s': %s\n", path, strerror(errno));
		rc = 1;
		goto out;
	}
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	start = time(NULL);
	while (!stop) {
		int n = ring_buffer__poll(rb, 200);

		if (n < 0 && n != -EINTR) {
			fprintf(stderr, "sluicectl flows: %s\n", strerror(-n));
			rc = 1;
			break;
		}
		if (timeout_s && time(NULL) - start >= timeout_s)
			break;
	}
	if (f.count && f.seen < f.count)
		rc = 3; /* fewer records than asked for before the timeout */
out:
	ring_buffer__free(rb);
	close(fd);
	free(f.pods);
	free(f.pols);
	sl_client_free(f.client);
	return rc;
}
