// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's node side: Node registration and status, the Lease heartbeat, the CNI conflist
 * once the control plane assigned a podCIDR, and host-gw routes to the other nodes' pods.
 * See node.h for the contract.
 *
 * API writes are merge patches, so the agent only ever states the fields it owns and a
 * concurrent writer (the node lifecycle controller setting Ready=Unknown, an admin adding a
 * label) never has its other fields overwritten. A failed write is retried at the next tick;
 * nothing here is fatal once the node side runs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"
#include "cni.h"
#include "datapath.h"
#include "endpoint.h"
#include "masq.h"
#include "node.h"
#include "proxier.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/k8s.h"
#include "sluice/log.h"

#define NL "node"

struct peer {
	char *name;
	char *pod_cidr;
	char *ip;
};

struct node {
	const struct agent_config *cfg;
	struct event_base *base;
	struct sl_client *client;
	char ip[INET_ADDRSTRLEN];
	char state_dir[PATH_MAX];
	char arch[32], kernel[128], os_image[128];
	struct sl_buf labels; /* metadata.labels JSON */
	struct event *lease_ev, *status_ev, *route_ev;
	char *uid;	/* the Node's metadata.uid once known (Lease owner) */
	char *pod_cidr; /* what the conflist on disk holds */
	char *masq;	/* the nft script applied last (masq.h) */
	char ready_since[K8S_TIME_BUFSZ];
	bool lease_ok, registered;
	bool nodes_synced; /* the Nodes informer's first list is in: routes can be reconciled */
	time_t status_at;  /* last successful status write */
	struct peer *peers;
	size_t n_peers;
	struct endpoints *ep;
};

/* --- pure parts ------------------------------------------------------------------------ */

const char *node_goarch(const char *m)
{
	static const char *const map[][2] = {
		{"x86_64", "amd64"},	{"aarch64", "arm64"},	{"armv7l", "arm"},
		{"i686", "386"},	{"ppc64le", "ppc64le"}, {"s390x", "s390x"},
		{"riscv64", "riscv64"},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(m, map[i][0]))
			return map[i][1];
	return m;
}

static void kv(struct sl_buf *b, const char *k, const char *v, bool comma)
{
	if (comma)
		sl_buf_puts(b, ",");
	sl_buf_json_str(b, k);
	sl_buf_puts(b, ":");
	sl_buf_json_str(b, v);
}

/* A label key or value as Kubernetes allows them: [A-Za-z0-9._/-], at most 316 bytes. */
static bool label_token_ok(const char *s, size_t len, bool key)
{
	if (len > (key ? 316 : 63) || (key && !len))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || (key && c == '/')))
			return false;
	}
	return true;
}

int node_labels_json(const char *name, const char *arch, const char *extra, struct sl_buf *out,
		     char *err, size_t errlen)
{
	const char *p = extra;

	sl_buf_puts(out, "{");
	kv(out, "kubernetes.io/hostname", name, false);
	kv(out, "kubernetes.io/os", "linux", true);
	kv(out, "kubernetes.io/arch", arch, true);
	while (p && *p) {
		const char *end = strchr(p, ','), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char k[320], v[64];

		eq = memchr(p, '=', len);
		if (!len || !eq || !label_token_ok(p, (size_t)(eq - p), true) ||
		    !label_token_ok(eq + 1, len - (size_t)(eq - p) - 1, false)) {
			snprintf(err, errlen,
				 "--node-labels: '%.*s' is not key=value with a valid label key "
				 "and value",
				 (int)(len > 80 ? 80 : len), p);
			return -EINVAL;
		}
		snprintf(k, sizeof(k), "%.*s", (int)(eq - p), p);
		snprintf(v, sizeof(v), "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
		kv(out, k, v, true);
		p = end ? end + 1 : NULL;
	}
	sl_buf_puts(out, "}");
	return out->oom ? -ENOMEM : 0;
}

void node_status_patch(const struct node_facts *f, struct sl_buf *b)
{
	static const char *const press[][3] = {
		{"MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory"},
		{"DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
		{"PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
	};
	char cap[160];

	snprintf(cap, sizeof(cap), "{\"cpu\":\"%u\",\"memory\":\"%lluKi\",\"pods\":\"%d\"}",
		 f->cpus, f->mem_kib, NODE_MAX_PODS);
	sl_buf_puts(b, "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":");
	sl_buf_json_str(b, f->ip);
	sl_buf_puts(b, "},{\"type\":\"Hostname\",\"address\":");
	sl_buf_json_str(b, f->name);
	sl_buf_printf(b, "}],\"capacity\":%s,\"allocatable\":%s,\"nodeInfo\":{", cap, cap);
	kv(b, "kubeletVersion", NODE_KUBELET_VER, false);
	kv(b, "kubeProxyVersion", NODE_KUBELET_VER, true);
	kv(b, "kernelVersion", f->kernel, true);
	kv(b, "osImage", f->os_image, true);
	kv(b, "operatingSystem", "linux", true);
	kv(b, "architecture", f->arch, true);
	kv(b, "containerRuntimeVersion", "sluice://" NODE_KUBELET_VER, true);
	sl_buf_puts(b, "},\"conditions\":[");
	for (size_t i = 0; i < 3; i++) {
		sl_buf_puts(b, "{");
		kv(b, "type", press[i][0], false);
		kv(b, "status", "False", true);
		kv(b, "reason", press[i][1], true);
		kv(b, "message", press[i][2], true);
		kv(b, "lastHeartbeatTime", f->now, true);
		kv(b, "lastTransitionTime", f->ready_since, true);
		sl_buf_puts(b, "},");
	}
	sl_buf_puts(b, "{");
	kv(b, "type", "Ready", false);
	kv(b, "status", "True", true);
	kv(b, "reason", "KubeletReady", true);
	kv(b, "message", "sluice-agent is posting ready status", true);
	kv(b, "lastHeartbeatTime", f->now, true);
	kv(b, "lastTransitionTime", f->ready_since, true);
	sl_buf_puts(b, "}]}}");
}

int node_conflist_render(const char *pod_cidr, const char *state_dir, struct sl_buf *out, char *err,
			 size_t errlen)
{
	char gw[INET_ADDRSTRLEN], sock[PATH_MAX];
	uint32_t net;
	int prefix;

	if (!pod_cidr || cni_cidr_parse(pod_cidr, &net, &prefix) || prefix < 8 || prefix > 30 ||
	    (net & (prefix ? ~0u >> prefix : ~0u))) {
		snprintf(err, errlen, "podCIDR '%.64s' is not an IPv4 network with prefix 8..30",
			 pod_cidr ? pod_cidr : "");
		return -EINVAL;
	}
	if (state_dir[0] != '/' ||
	    (size_t)snprintf(sock, sizeof(sock), "%s/%s", state_dir, EP_SOCK_NAME) > 107) {
		snprintf(err, errlen,
			 "--state-dir '%.64s' must be an absolute path short enough for a unix "
			 "socket path (107 bytes)",
			 state_dir);
		return -EINVAL;
	}
	/* The paths are written unescaped below: refuse what JSON would need to escape. */
	if (strpbrk(state_dir, "\"\\\n")) {
		snprintf(err, errlen, "--state-dir '%.64s' contains a quote, backslash or newline",
			 state_dir);
		return -EINVAL;
	}
	cni_ip_str(net + 1, gw);
	sl_buf_puts(out, "{\"cniVersion\":\"1.0.0\",\"name\":\"sluice\",\"plugins\":[{");
	kv(out, "type", CNI_PLUGIN_TYPE, false);
	sl_buf_puts(out, ",\"ipam\":{");
	kv(out, "type", "sluice", false);
	kv(out, "subnet", pod_cidr, true);
	kv(out, "gateway", gw, true);
	sl_buf_puts(out, ",\"dataDir\":");
	sl_buf_printf(out, "\"%s/ipam\"", state_dir); /* validated path: quoted below */
	sl_buf_puts(out, "},");
	kv(out, "agentSocket", sock, false);
	sl_buf_puts(out, ",\"agentQueueDir\":");
	sl_buf_printf(out, "\"%s/%s\"", state_dir, EP_QUEUE_DIR);
	sl_buf_puts(out, ",\"agentTimeoutMs\":10000}]}\n");
	return out->oom ? -ENOMEM : 0;
}

size_t node_routes_want(const char *self, const struct node_peer *peers, size_t n,
			struct node_route *out, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k < max; i++) {
		const struct node_peer *p = &peers[i];
		struct in_addr gw;
		uint32_t net;
		int prefix;

		if (!p->pod_cidr || cni_cidr_parse(p->pod_cidr, &net, &prefix) || prefix < 1 ||
		    (net & (~0u >> prefix)))
			continue;
		if (!strcmp(p->name, self)) {
			out[k++] = (struct node_route){
				.dst = net, .prefix = prefix, .unreachable = true};
			continue;
		}
		if (!p->ip || inet_pton(AF_INET, p->ip, &gw) != 1 || !gw.s_addr)
			continue;
		out[k++] =
			(struct node_route){.dst = net, .prefix = prefix, .gw = ntohl(gw.s_addr)};
	}
	return k;
}

/* --- host facts ------------------------------------------------------------------------- */

static void now_str(char *buf, size_t len)
{
	struct k8s_time t = {.sec = time(NULL)};

	if (k8s_time_format(&t, false, buf, len) < 0)
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

static void os_image(char *out, size_t len)
{
	FILE *f = fopen("/etc/os-release", "re");
	char line[256];

	snprintf(out, len, "Linux");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "PRETTY_NAME=", 12))
			continue;
		char *v = line + 12;
		v[strcspn(v, "\n")] = '\0';
		if (*v == '"') {
			v++;
			v[strcspn(v, "\"")] = '\0';
		}
		snprintf(out, len, "%.100s", v);
		break;
	}
	fclose(f);
}

/* The node IP: --node-ip, else the first IPv4 address of the first --devices entry. */
static int node_ip_resolve(const struct agent_config *cfg, char *out, size_t len)
{
	struct ifaddrs *ifs, *i;
	struct in_addr a;
	char dev[IF_NAMESIZE + 1];
	int rc = -ENOENT;

	if (cfg->node_ip) {
		if (inet_pton(AF_INET, cfg->node_ip, &a) != 1) {
			pr_err(NL, "--node-ip '%s' is not an IPv4 address", cfg->node_ip);
			return -EINVAL;
		}
		snprintf(out, len, "%s", cfg->node_ip);
		return 0;
	}
	if (!cfg->devices || !cfg->devices[0]) {
		pr_err(NL, "--run-pods needs --node-ip or --devices to find the node's InternalIP");
		return -EINVAL;
	}
	snprintf(dev, sizeof(dev), "%.*s", (int)strcspn(cfg->devices, ","), cfg->devices);
	if (getifaddrs(&ifs))
		return -errno;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, dev))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
			  (socklen_t)len);
		rc = 0;
		break;
	}
	freeifaddrs(ifs);
	if (rc)
		pr_err(NL,
		       "device '%s' has no IPv4 address to use as the node's InternalIP; pass "
		       "--node-ip",
		       dev);
	return rc;
}

/* --- API writes -------------------------------------------------------------------------- */

static int api(struct node *n, const char *method, const char *path, const char *body,
	       const char *ctype, struct sl_client_resp *resp)
{
	int err = sl_client_request(n->client, method, path, body, body ? strlen(body) : 0, ctype,
				    NULL, resp);

	if (err)
		return err;
	return resp->status >= 200 && resp->status < 300
		       ? 0
		       : sl_client_status_err(resp->status, resp->err);
}

static void remember_uid(struct node *n, struct json_object *obj)
{
	const char *uid = sl_json_get_str(sl_json_get(obj, "metadata"), "uid");

	if (uid && (!n->uid || strcmp(uid, n->uid))) {
		free(n->uid);
		n->uid = strdup(uid);
	}
}

/* Creates the Node or brings its labels up to date. */
static int node_register(struct node *n)
{
	const char *name = n->cfg->node_name;
	struct sl_client_resp resp = {0};
	struct sl_buf body = SL_BUF_INIT;
	char path[512];
	int err;

	snprintf(path, sizeof(path), "/api/v1/nodes/%s", name);
	err = api(n, "GET", path, NULL, NULL, &resp);
	if (err == -SL_ERR_NOTFOUND) {
		sl_client_resp_fini(&resp);
		sl_buf_puts(&body,
			    "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":");
		sl_buf_json_str(&body, name);
		sl_buf_printf(&body, ",\"labels\":%s}}", sl_buf_cstr(&n->labels));
		err = api(n, "POST", "/api/v1/nodes", sl_buf_cstr(&body), NULL, &resp);
		if (err == -SL_ERR_EXISTS)
			err = 0; /* raced with an admin; the patch below still runs next tick */
		else if (!err)
			pr_info(NL, "node '%s': registered (InternalIP %s)", name, n->ip);
	} else if (!err) {
		sl_client_resp_fini(&resp);
		sl_buf_printf(&body, "{\"metadata\":{\"labels\":%s}}", sl_buf_cstr(&n->labels));
		err = api(n, "PATCH", path, sl_buf_cstr(&body), "application/merge-patch+json",
			  &resp);
		if (!err)
			pr_info(NL, "node '%s': already registered; labels updated", name);
	}
	if (!err)
		remember_uid(n, resp.json);
	else
		pr_err(NL, "node '%s': registration failed: %s %s", name, sl_strerror(err),
		       resp.err);
	sl_client_resp_fini(&resp);
	sl_buf_fini(&body);
	return err;
}

static int node_status_write(struct node *n)
{
	struct sl_client_resp resp = {0};
	struct sl_buf body = SL_BUF_INIT;
	struct sysinfo si = {0};
	char now[K8S_TIME_BUFSZ], path[512];
	struct node_facts f = {
		.name = n->cfg->node_name,
		.ip = n->ip,
		.kernel = n->kernel,
		.os_image = n->os_image,
		.arch = n->arch,
		.now = now,
		.ready_since = n->ready_since,
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int err;

	now_str(now, sizeof(now));
	if (!n->ready_since[0])
		snprintf(n->ready_since, sizeof(n->ready_since), "%s", now);
	sysinfo(&si);
	f.cpus = cpus > 0 ? (unsigned)cpus : 1;
	f.mem_kib = (unsigned long long)si.totalram * (si.mem_unit ? si.mem_unit : 1) / 1024;
	node_status_patch(&f, &body);
	snprintf(path, sizeof(path), "/api/v1/nodes/%s/status", n->cfg->node_name);
	err = body.oom ? -ENOMEM
		       : api(n, "PATCH", path, sl_buf_cstr(&body), "application/merge-patch+json",
			     &resp);
	if (err) {
		pr_warn(NL, "node '%s': status update failed: %s %s", n->cfg->node_name,
			sl_strerror(err), resp.err);
	} else {
		n->status_at = time(NULL);
		remember_uid(n, resp.json);
		pr_debug(NL, "node '%s': status written", n->cfg->node_name);
	}
	sl_client_resp_fini(&resp);
	sl_buf_fini(&body);
	return err;
}

static int lease_write(struct node *n)
{
	const char *name = n->cfg->node_name;
	struct sl_client_resp resp = {0};
	struct sl_buf body = SL_BUF_INIT;
	struct k8s_time t;
	struct timespec ts;
	char now[K8S_TIME_BUFSZ], path[512];
	int err;

	clock_gettime(CLOCK_REALTIME, &ts);
	t.sec = ts.tv_sec;
	t.nsec = (int32_t)(ts.tv_nsec / 1000 * 1000);
	k8s_time_format(&t, true, now, sizeof(now));
	snprintf(path, sizeof(path),
		 "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/%s", name);
	sl_buf_puts(&body, "{\"spec\":{\"holderIdentity\":");
	sl_buf_json_str(&body, name);
	sl_buf_printf(&body, ",\"leaseDurationSeconds\":%d,\"renewTime\":\"%s\"}}",
		      NODE_LEASE_DURATION, now);
	err = api(n, "PATCH", path, sl_buf_cstr(&body), "application/merge-patch+json", &resp);
	if (err == -SL_ERR_NOTFOUND) {
		/* First heartbeat: create it, owned by the Node so it goes with it. */
		sl_client_resp_fini(&resp);
		sl_buf_reset(&body);
		sl_buf_puts(&body, "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
				   "\"metadata\":{\"name\":");
		sl_buf_json_str(&body, name);
		sl_buf_puts(&body, ",\"namespace\":\"kube-node-lease\"");
		if (n->uid) {
			sl_buf_puts(&body, ",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":"
					   "\"Node\",\"name\":");
			sl_buf_json_str(&body, name);
			sl_buf_puts(&body, ",\"uid\":");
			sl_buf_json_str(&body, n->uid);
			sl_buf_puts(&body, "}]");
		}
		sl_buf_puts(&body, "},\"spec\":{\"holderIdentity\":");
		sl_buf_json_str(&body, name);
		sl_buf_printf(&body,
			      ",\"leaseDurationSeconds\":%d,\"acquireTime\":\"%s\","
			      "\"renewTime\":\"%s\"}}",
			      NODE_LEASE_DURATION, now, now);
		err = api(n, "POST",
			  "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
			  sl_buf_cstr(&body), NULL, &resp);
	}
	if (err) {
		if (n->lease_ok)
			pr_warn(NL, "node '%s': lease renewal failed: %s %s", name,
				sl_strerror(err), resp.err);
		n->lease_ok = false;
	} else {
		if (!n->lease_ok)
			pr_info(NL, "node '%s': lease kube-node-lease/%s held", name, name);
		n->lease_ok = true;
	}
	sl_client_resp_fini(&resp);
	sl_buf_fini(&body);
	return err;
}

/* --- conflist ----------------------------------------------------------------------------- */

static int conflist_path(const struct agent_config *cfg, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s/%s", cfg->cni_conf_dir, NODE_CONFLIST) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Writes the conflist atomically (tmp + fsync + rename), so a runtime never reads half. */
static int conflist_write(struct node *n, const char *cidr)
{
	struct sl_buf b = SL_BUF_INIT;
	char path[PATH_MAX], tmp[PATH_MAX + 32], why[256];
	int fd, err;

	err = node_conflist_render(cidr, n->state_dir, &b, why, sizeof(why));
	if (err) {
		pr_err(NL, "node '%s': no CNI config written: %s", n->cfg->node_name, why);
		goto out;
	}
	err = conflist_path(n->cfg, path, sizeof(path));
	if (!err)
		err = mkdir_p(n->cfg->cni_conf_dir, 0755);
	if (err) {
		pr_err(NL, "--cni-conf-dir '%s': %s", n->cfg->cni_conf_dir, sl_strerror(err));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	if (write(fd, b.data, b.len) != (ssize_t)b.len)
		err = errno ? -errno : -EIO;
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
fail:
	if (err) {
		unlink(tmp);
		pr_err(NL, "node '%s': writing '%s' failed: %s", n->cfg->node_name, path,
		       sl_strerror(err));
	} else {
		pr_info(NL, "node '%s': podCIDR %s; wrote %s", n->cfg->node_name, cidr, path);
	}
out:
	sl_buf_fini(&b);
	return err;
}

/* --- routes ------------------------------------------------------------------------------- */

static bool route_eq(const struct node_route *a, const struct node_route *b)
{
	return a->dst == b->dst && a->prefix == b->prefix && a->unreachable == b->unreachable &&
	       (a->unreachable || a->gw == b->gw);
}

static void routes_sync(struct node *n)
{
	struct node_peer *pv = calloc(n->n_peers + 1, sizeof(*pv));
	struct node_route *want = calloc(n->n_peers + 1, sizeof(*want)), *have = NULL;
	size_t n_want, n_have = 0;
	char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	int err;

	if (!pv || !want)
		goto out;
	for (size_t i = 0; i < n->n_peers; i++)
		pv[i] = (struct node_peer){n->peers[i].name, n->peers[i].pod_cidr, n->peers[i].ip};
	n_want = node_routes_want(n->cfg->node_name, pv, n->n_peers, want, n->n_peers + 1);
	err = node_route_dump(&have, &n_have);
	if (err) {
		pr_warn(NL, "node '%s': listing routes failed: %s", n->cfg->node_name,
			sl_strerror(err));
		goto out;
	}
	for (size_t i = 0; i < n_have; i++) {
		bool keep = false;

		/* Same destination wanted with another gateway: the replace below swaps it in
		 * place, with no moment where the peer's pods are unroutable. */
		for (size_t j = 0; j < n_want && !keep; j++)
			keep = have[i].dst == want[j].dst && have[i].prefix == want[j].prefix;
		if (keep)
			continue;
		err = node_route_delete(&have[i]);
		cni_ip_str(have[i].dst, a);
		if (err)
			pr_warn(NL, "route %s/%d: delete failed: %s", a, have[i].prefix,
				sl_strerror(err));
		else
			pr_info(NL, "route %s/%d removed", a, have[i].prefix);
	}
	for (size_t j = 0; j < n_want; j++) {
		bool present = false;

		for (size_t i = 0; i < n_have && !present; i++)
			present = route_eq(&have[i], &want[j]);
		if (present)
			continue;
		err = node_route_replace(&want[j]);
		cni_ip_str(want[j].dst, a);
		cni_ip_str(want[j].gw, g);
		if (err)
			pr_warn(NL, "route %s/%d %s%s: install failed: %s", a, want[j].prefix,
				want[j].unreachable ? "unreachable" : "via ",
				want[j].unreachable ? "" : g, sl_strerror(err));
		else
			pr_info(NL, "route %s/%d %s%s installed", a, want[j].prefix,
				want[j].unreachable ? "unreachable" : "via ",
				want[j].unreachable ? "" : g);
	}
	/* The cluster's extent changes with the same Node facts as the routes. */
	masq_sync(n->pod_cidr, pv, n->n_peers, &n->masq);
	ep_hr_cidrs(n->ep, want, n_want);
out:
	free(pv);
	free(want);
	free(have);
}

/* --- events -------------------------------------------------------------------------------- */

static void lease_cb(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	if (!n->registered)
		n->registered = !node_register(n);
	lease_write(n);
	/* Also repairs routes someone removed and retries installs that failed. */
	if (n->nodes_synced)
		routes_sync(n);
	/* The status is due every NODE_STATUS_S; a failed write retries with the lease. */
	if (!n->status_at || time(NULL) - n->status_at >= NODE_STATUS_S)
		node_status_write(n);
}

static void status_cb(evutil_socket_t fd, short what, void *arg)
{
	node_status_write(arg);
}

static void route_cb(evutil_socket_t fd, short what, void *arg)
{
	routes_sync(arg);
}

static struct peer *peer_find(struct node *n, const char *name)
{
	for (size_t i = 0; i < n->n_peers; i++)
		if (!strcmp(n->peers[i].name, name))
			return &n->peers[i];
	return NULL;
}

static void peer_free(struct peer *p)
{
	free(p->name);
	free(p->pod_cidr);
	free(p->ip);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void node_observe(struct node *n, struct json_object *obj, bool deleted)
{
	struct json_object *meta = sl_json_get(obj, "metadata"), *addrs, *conds;
	const char *name = sl_json_get_str(meta, "name"), *cidr, *ip = NULL;
	struct timeval soon = {0, 100000};
	struct peer *p;
	bool changed = false;

	if (!n || !name)
		return;
	cidr = sl_json_get_str(sl_json_get(obj, "spec"), "podCIDR");
	addrs = sl_json_path(obj, "status", "addresses", (char *)NULL);
	for (size_t i = 0; addrs && json_object_is_type(addrs, json_type_array) &&
			   i < json_object_array_length(addrs);
	     i++) {
		struct json_object *a = json_object_array_get_idx(addrs, i);
		const char *t = sl_json_get_str(a, "type");

		if (t && !strcmp(t, "InternalIP")) {
			ip = sl_json_get_str(a, "address");
			break;
		}
	}
	p = peer_find(n, name);
	if (deleted) {
		if (p) {
			peer_free(p);
			*p = n->peers[--n->n_peers];
			changed = true;
		}
	} else if (!p) {
		struct peer *v = realloc(n->peers, (n->n_peers + 1) * sizeof(*v));

		if (!v)
			return;
		n->peers = v;
		v[n->n_peers] = (struct peer){strdup(name), dup_or_null(cidr), dup_or_null(ip)};
		n->n_peers++;
		changed = true;
	} else if (!str_eq(p->pod_cidr, cidr) || !str_eq(p->ip, ip)) {
		free(p->pod_cidr);
		free(p->ip);
		p->pod_cidr = dup_or_null(cidr);
		p->ip = dup_or_null(ip);
		changed = true;
	}
	/* Debounced: a burst of Node events (a relist) is one reconcile. */
	if (changed && n->nodes_synced)
		event_add(n->route_ev, &soon);
	if (deleted || strcmp(name, n->cfg->node_name))
		return;

	/* Our own Node. */
	remember_uid(n, obj);
	if (cidr && !str_eq(cidr, n->pod_cidr) && !conflist_write(n, cidr)) {
		free(n->pod_cidr);
		n->pod_cidr = strdup(cidr);
	}
	/* Someone (the lifecycle controller) says we are not Ready: answer with a fresh
	 * status in a second rather than at the next minute (our own write comes back as
	 * Ready=True, so this never loops). */
	conds = sl_json_path(obj, "status", "conditions", (char *)NULL);
	for (size_t i = 0; conds && json_object_is_type(conds, json_type_array) &&
			   i < json_object_array_length(conds);
	     i++) {
		struct json_object *c = json_object_array_get_idx(conds, i);
		const char *t = sl_json_get_str(c, "type"), *s = sl_json_get_str(c, "status");

		if (t && !strcmp(t, "Ready") && s && strcmp(s, "True")) {
			struct timeval later = {1, 0};

			pr_info(NL,
				"node '%s': marked Ready=%s by the control plane; reposting "
				"Ready=True",
				n->cfg->node_name, s);
			n->ready_since[0] = '\0'; /* a new transition */
			event_add(n->status_ev, &later);
		}
	}
}

void node_synced(struct node *n)
{
	struct timeval now = {0, 0};

	if (!n || n->nodes_synced)
		return;
	n->nodes_synced = true;
	event_add(n->route_ev, &now);
}

/* --- lifecycle ----------------------------------------------------------------------------- */

/* Pods route through this netns (to each other, to other nodes' podCIDRs, to services), so
 * it must forward, as the reference ptp plugin ensures too. Per netns: in the lab this
 * touches only the node's namespace. */
static void forwarding_enable(void)
{
	const char *path = "/proc/sys/net/ipv4/ip_forward";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	char c = '0';

	if (fd < 0 || read(fd, &c, 1) != 1 || c == '1') {
		if (fd < 0)
			pr_warn(NL, "%s: %s; pods may not be routable", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (pwrite(fd, "1\n", 2, 0) != 2)
		pr_warn(NL, "enabling %s failed: %s; pods may not be routable", path,
			strerror(errno));
	else
		pr_info(NL, "IPv4 forwarding enabled (pods route through this netns)");
	close(fd);
}

struct node *node_open(const struct agent_config *cfg, struct event_base *base,
		       struct sl_client *client, const char *pin_root)
{
	struct node *n = calloc(1, sizeof(*n));
	struct timeval period = {NODE_LEASE_S, 0};
	struct utsname u;
	char why[256];
	int err;

	if (!n) {
		errno = ENOMEM;
		return NULL;
	}
	n->cfg = cfg;
	n->base = base;
	n->client = client;
	n->labels = (struct sl_buf)SL_BUF_INIT;
	if (cfg->state_dir)
		snprintf(n->state_dir, sizeof(n->state_dir), "%s", cfg->state_dir);
	else
		snprintf(n->state_dir, sizeof(n->state_dir), "/var/lib/sluice/%s", cfg->node_name);
	uname(&u);
	snprintf(n->arch, sizeof(n->arch), "%.31s", node_goarch(u.machine));
	snprintf(n->kernel, sizeof(n->kernel), "%s", u.release);
	os_image(n->os_image, sizeof(n->os_image));
	err = node_ip_resolve(cfg, n->ip, sizeof(n->ip));
	if (!err) {
		err = node_labels_json(cfg->node_name, n->arch, cfg->node_labels, &n->labels, why,
				       sizeof(why));
		if (err)
			pr_err(NL, "%s", why);
	}
	if (!err) {
		err = mkdir_p(n->state_dir, 0700);
		if (err)
			pr_err(NL, "--state-dir '%s': %s", n->state_dir, sl_strerror(err));
	}
	if (err)
		goto fail;
	forwarding_enable();
	n->lease_ev = event_new(base, -1, EV_PERSIST, lease_cb, n);
	n->status_ev = evtimer_new(base, status_cb, n);
	n->route_ev = evtimer_new(base, route_cb, n);
	if (!n->lease_ev || !n->status_ev || !n->route_ev) {
		err = -ENOMEM;
		goto fail;
	}
	n->ep = ep_open(&(struct ep_opts){.base = base,
					  .client = client,
					  .state_dir = n->state_dir,
					  .pin_root = pin_root,
					  .node_name = cfg->node_name,
					  /* Legacy dataplanes DNAT in the node's netfilter: replies
					   * to pods must pass its conntrack, so they keep the
					   * kernel path. */
					  .host_routing = !cfg->kernel_routing &&
							  cfg->dataplane == AGENT_DP_BPF,
					  .devices = cfg->devices});
	if (!n->ep) {
		err = -errno;
		goto fail;
	}
	/* Registration failures (API not up yet) are retried by the lease tick. */
	n->registered = !node_register(n);
	if (n->registered)
		node_status_write(n);
	lease_write(n);
	event_add(n->lease_ev, &period);
	pr_info(NL, "node '%s': node side running (InternalIP %s, state %s, CNI conf %s)",
		cfg->node_name, n->ip, n->state_dir, cfg->cni_conf_dir);
	return n;
fail:
	node_close(n);
	errno = -err;
	return NULL;
}

void node_close(struct node *n)
{
	if (!n)
		return;
	ep_close(n->ep);
	if (n->lease_ev)
		event_free(n->lease_ev);
	if (n->status_ev)
		event_free(n->status_ev);
	if (n->route_ev)
		event_free(n->route_ev);
	for (size_t i = 0; i < n->n_peers; i++)
		peer_free(&n->peers[i]);
	free(n->peers);
	free(n->uid);
	free(n->pod_cidr);
	free(n->masq);
	sl_buf_fini(&n->labels);
	free(n);
}

int node_cleanup(const struct agent_config *cfg)
{
	struct node_route *have = NULL;
	char path[PATH_MAX], buf[4096];
	size_t n_have = 0;
	ssize_t len;
	int fd, rc = 0, err;

	/* The conflist only if it is ours: another CNI's file is never touched. */
	if (cfg->cni_conf_dir && !conflist_path(cfg, path, sizeof(path))) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			len = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			buf[len > 0 ? len : 0] = '\0';
			if (strstr(buf, "\"" CNI_PLUGIN_TYPE "\"") && unlink(path) == 0)
				pr_info(NL, "removed %s", path);
		}
	}
	err = node_route_dump(&have, &n_have);
	for (size_t i = 0; !err && i < n_have; i++) {
		int e = node_route_delete(&have[i]);

		if (e && !rc)
			rc = e;
	}
	free(have);
	if (err)
		pr_warn(NL, "listing routes failed: %s", sl_strerror(err));
	masq_remove();
	snprintf(path, sizeof(path), "%s/sluice/%s", cfg->bpffs ? cfg->bpffs : DP_BPFFS_DEFAULT,
		 cfg->node_name);
	ep_hr_unpin(path);
	return rc;
}
