// SPDX-License-Identifier: Apache-2.0
/*
 * The CNI endpoint socket (endpoint.h): records of the pods' endpoints and the per-endpoint
 * datapath state. Served by libevent on the agent's loop: a connection is a bufferevent that
 * reads one line, answers it and closes, so a slow or silent client never holds up anyone
 * else (and a runtime executing sluice-cni on the same loop's behalf is never waited on).
 *
 * Records live in <state_dir>/endpoints/<hash>.json, written before the reply, so a
 * restarted agent still knows which netns cookies it opted out and can DEL them.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "endpoint.h"
#include "node.h"
#include "policy.h"
#include "sluice/buf.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "abi/hostroute.h"
#include "abi/lb.h"
#include "tc_pod.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define EL		"endpoint"
#define EP_TC_HANDLE	0x5c1
#define EP_TC_PRIO	1
#define EP_CONN_TIMEOUT 10

struct ep_rec {
	char name[32];
	char *network, *container_id, *ifname, *ip, *host_ifname, *netns, *pod_ns, *pod_name;
	int host_ifindex;
	unsigned long long netns_cookie;
	bool sock_lb_off;
};

struct endpoints {
	struct event_base *base;
	struct sl_client *client;
	char state_dir[PATH_MAX], sock_path[PATH_MAX], rec_dir[PATH_MAX], queue_dir[PATH_MAX];
	char pin_root[PATH_MAX];
	struct evconnlistener *lst;
	struct ep_rec *recs;
	size_t n_recs;
	struct tc_pod *skel; /* loaded at the first opted-out endpoint */
	int sockoff_fd;	     /* pinned sl_sockoff_v1, -1 until needed */
	bool hr;	     /* BPF host routing on (and supported) */
	char devices[256];   /* where the fabric program goes */
};

/* --- pure parts ------------------------------------------------------------------------ */

int ep_args_get(const char *args, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);
	const char *p = args;

	while (p && *p) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			if (len - klen - 1 >= outlen)
				return -ENAMETOOLONG;
			memcpy(out, p + klen + 1, len - klen - 1);
			out[len - klen - 1] = '\0';
			return 0;
		}
		p = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

void ep_record_name(const char *network, const char *container_id, const char *ifname, char out[32])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *parts[3] = {network ? network : "", container_id, ifname};

	for (int i = 0; i < 3; i++) {
		for (const char *p = parts[i]; *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		h = (h ^ '/') * 0x100000001b3ULL;
	}
	snprintf(out, 32, "ep-%016llx", (unsigned long long)h);
}

static int req_str(struct json_object *obj, const char *k, bool required, const char **out,
		   char *err, size_t errlen)
{
	struct json_object *v = sl_json_get(obj, k);

	*out = NULL;
	if (!v) {
		if (!required)
			return 0;
		snprintf(err, errlen, "request lacks \"%s\"", k);
		return -EINVAL;
	}
	if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v) ||
	    json_object_get_string_len(v) > 1024) {
		snprintf(err, errlen, "\"%s\" must be a non-empty string of at most 1024 bytes", k);
		return -EINVAL;
	}
	*out = json_object_get_string(v);
	return 0;
}

int ep_req_parse(struct json_object *obj, struct ep_req *r, char *err, size_t errlen)
{
	struct in_addr a;
	int64_t idx;

	memset(r, 0, sizeof(*r));
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		snprintf(err, errlen, "request is not a JSON object");
		return -EINVAL;
	}
	if (req_str(obj, "op", true, &r->op, err, errlen))
		return -EINVAL;
	if (strcmp(r->op, "add") && strcmp(r->op, "del") && strcmp(r->op, "check")) {
		snprintf(err, errlen, "unknown op '%.32s' (add, del, check)", r->op);
		return -EINVAL;
	}
	bool add = !strcmp(r->op, "add");
	if (req_str(obj, "containerID", true, &r->container_id, err, errlen) ||
	    req_str(obj, "ifname", true, &r->ifname, err, errlen) ||
	    req_str(obj, "network", false, &r->network, err, errlen) ||
	    req_str(obj, "netns", add, &r->netns, err, errlen) ||
	    req_str(obj, "ip", add, &r->ip, err, errlen) ||
	    req_str(obj, "hostIfname", add, &r->host_ifname, err, errlen) ||
	    req_str(obj, "args", false, &r->args, err, errlen))
		return -EINVAL;
	if (r->ip && inet_pton(AF_INET, r->ip, &a) != 1) {
		snprintf(err, errlen, "\"ip\" '%.64s' is not an IPv4 address", r->ip);
		return -EINVAL;
	}
	if (r->host_ifname && strlen(r->host_ifname) >= IF_NAMESIZE) {
		snprintf(err, errlen, "\"hostIfname\" '%.32s' is too long for an interface name",
			 r->host_ifname);
		return -EINVAL;
	}
	if (sl_json_get(obj, "hostIfindex")) {
		if (!sl_json_get_int(obj, "hostIfindex", &idx) || idx < 1 || idx > INT32_MAX) {
			snprintf(err, errlen, "\"hostIfindex\" must be a positive integer");
			return -EINVAL;
		}
		r->host_ifindex = (int)idx;
	}
	return 0;
}

/* --- records ------------------------------------------------------------------------------ */

static void rec_fini(struct ep_rec *r)
{
	free(r->network);
	free(r->container_id);
	free(r->ifname);
	free(r->ip);
	free(r->host_ifname);
	free(r->netns);
	free(r->pod_ns);
	free(r->pod_name);
	memset(r, 0, sizeof(*r));
}

static struct ep_rec *rec_find(struct endpoints *e, const char *name)
{
	for (size_t i = 0; i < e->n_recs; i++)
		if (!strcmp(e->recs[i].name, name))
			return &e->recs[i];
	return NULL;
}

static void put(struct sl_buf *b, const char *k, const char *v)
{
	if (!v)
		return;
	sl_buf_puts(b, b->len > 1 ? "," : "");
	sl_buf_json_str(b, k);
	sl_buf_puts(b, ":");
	sl_buf_json_str(b, v);
}

static int rec_save(struct endpoints *e, const struct ep_rec *r)
{
	struct sl_buf b = SL_BUF_INIT;
	char path[PATH_MAX + 64], tmp[PATH_MAX + 96];
	int fd, err = 0;

	sl_buf_puts(&b, "{");
	put(&b, "network", r->network);
	put(&b, "containerID", r->container_id);
	put(&b, "ifname", r->ifname);
	put(&b, "ip", r->ip);
	put(&b, "hostIfname", r->host_ifname);
	put(&b, "netns", r->netns);
	put(&b, "podNamespace", r->pod_ns);
	put(&b, "podName", r->pod_name);
	sl_buf_printf(&b, ",\"hostIfindex\":%d,\"netnsCookie\":%llu,\"socketLB\":\"%s\"}\n",
		      r->host_ifindex, r->netns_cookie, r->sock_lb_off ? "off" : "on");
	if (b.oom) {
		sl_buf_fini(&b);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s.json", e->rec_dir, r->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		err = -errno;
	else {
		if (write(fd, b.data, b.len) != (ssize_t)b.len)
			err = errno ? -errno : -EIO;
		if (close(fd) && !err)
			err = -errno;
		if (!err && rename(tmp, path))
			err = -errno;
		if (err)
			unlink(tmp);
	}
	sl_buf_fini(&b);
	return err;
}

static char *jdup(struct json_object *o, const char *k)
{
	const char *s = sl_json_get_str(o, k);

	return s ? strdup(s) : NULL;
}

static void recs_load(struct endpoints *e)
{
	DIR *d = opendir(e->rec_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX + 300], buf[8192], perr[128];
		size_t len = strlen(de->d_name);
		struct json_object *o;
		struct ep_rec r = {0}, *v;
		int64_t i64;
		ssize_t n;
		int fd;

		if (strncmp(de->d_name, "ep-", 3) || len < 6 ||
		    strcmp(de->d_name + len - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", e->rec_dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		o = n > 0 ? sl_json_parse(buf, (size_t)n, perr, sizeof(perr)) : NULL;
		if (!o || !sl_json_get_str(o, "containerID") || !sl_json_get_str(o, "ifname")) {
			pr_warn(EL, "endpoint record '%s' unreadable; removed", path);
			unlink(path);
			json_object_put(o);
			continue;
		}
		snprintf(r.name, sizeof(r.name), "%.*s", (int)(len - 5), de->d_name);
		r.network = jdup(o, "network");
		r.container_id = jdup(o, "containerID");
		r.ifname = jdup(o, "ifname");
		r.ip = jdup(o, "ip");
		r.host_ifname = jdup(o, "hostIfname");
		r.netns = jdup(o, "netns");
		r.pod_ns = jdup(o, "podNamespace");
		r.pod_name = jdup(o, "podName");
		if (sl_json_get_int(o, "hostIfindex", &i64))
			r.host_ifindex = (int)i64;
		if (sl_json_get_int(o, "netnsCookie", &i64))
			r.netns_cookie = (unsigned long long)i64;
		r.sock_lb_off = sl_json_get_str(o, "socketLB") &&
				!strcmp(sl_json_get_str(o, "socketLB"), "off");
		json_object_put(o);
		v = realloc(e->recs, (e->n_recs + 1) * sizeof(*v));
		if (!v) {
			rec_fini(&r);
			break;
		}
		e->recs = v;
		e->recs[e->n_recs++] = r;
	}
	closedir(d);
}

/* --- datapath state ------------------------------------------------------------------------ */

/* A datagram socket in the netns at path (NULL: ours). A socket keeps the netns it was
 * made in, so the thread enters the netns just long enough to create one. */
static int netns_socket(const char *path)
{
	int self, fd, s, err = 0;

	if (!path) {
		s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		return s < 0 ? -errno : s;
	}
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	s = -1;
	if (self < 0 || fd < 0) {
		err = -errno;
		goto out;
	}
	if (setns(fd, CLONE_NEWNET)) {
		err = -errno;
		goto out;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		err = -errno;
	if (setns(self, CLONE_NEWNET)) {
		/* Stuck in the pod's netns would be far worse than any failed ADD. */
		pr_err(EL, "returning to the agent's netns failed: %s", strerror(errno));
		abort();
	}
out:
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	if (err && s >= 0)
		close(s);
	return err ? err : s;
}

/* The hardware address of ifname in the netns at path (NULL: ours). */
static int netns_if_mac(const char *path, const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr = {0};
	int s = netns_socket(path), err = 0;

	if (s < 0)
		return s;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(s);
	return err;
}

/* SO_NETNS_COOKIE of the netns at path. */
static int netns_cookie(const char *path, unsigned long long *cookie)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(path, O_RDONLY | O_CLOEXEC), s = -1, err = 0;
	socklen_t len = sizeof(*cookie);

	if (self < 0 || fd < 0) {
		err = -errno;
		goto out;
	}
	if (setns(fd, CLONE_NEWNET)) {
		err = -errno;
		goto out;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		err = -errno;
	if (setns(self, CLONE_NEWNET)) {
		/* Stuck in the pod's netns would be far worse than any failed ADD. */
		pr_err(EL, "returning to the agent's netns failed: %s", strerror(errno));
		abort();
	}
	if (!err && getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
out:
	if (s >= 0)
		close(s);
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	return err;
}

static int dp_ready(struct endpoints *e)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	char path[PATH_MAX + 32];
	int err;

	if (e->sockoff_fd < 0) {
		snprintf(path, sizeof(path), "%s/%s", e->pin_root, SL_MAP_SOCK_OFF);
		e->sockoff_fd = bpf_obj_get(path);
		if (e->sockoff_fd < 0) {
			err = -errno;
			pr_err(EL, "opt-out map '%s': %s", path, strerror(-err));
			return err;
		}
	}
	if (e->skel)
		return 0;
	oo.pin_root_path = e->pin_root;
	e->skel = tc_pod__open_opts(&oo);
	if (!e->skel)
		return -errno;
	e->skel->rodata->sl_hr_enabled = e->hr;
	err = tc_pod__load(e->skel);
	if (err) {
		pr_err(EL, "loading tc_pod failed: %s", strerror(-err));
		tc_pod__destroy(e->skel);
		e->skel = NULL;
		return err;
	}
	return 0;
}

/* --- BPF host routing ------------------------------------------------------------------------ */

static int rec_ifindex(const struct ep_rec *r);

/* The helpers the fast path needs (kernel 5.12+); without them pods keep the kernel path. */
static bool hr_supported(void)
{
	static const struct {
		enum bpf_func_id id;
		const char *name;
	} need[] = {{BPF_FUNC_redirect_peer, "bpf_redirect_peer"},
		    {BPF_FUNC_redirect_neigh, "bpf_redirect_neigh"},
		    {BPF_FUNC_fib_lookup, "bpf_fib_lookup"},
		    {BPF_FUNC_check_mtu, "bpf_check_mtu"}};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, need[i].id, NULL) != 1) {
			pr_warn(EL,
				"host routing: this kernel lacks %s; pod traffic takes the "
				"kernel path",
				need[i].name);
			return false;
		}
	return true;
}

static int hr_ep_fd(struct endpoints *e)
{
	return e->hr && e->skel ? bpf_map__fd(e->skel->maps.sl_hr_ep_v1) : -1;
}

/* r's entry in sl_hr_ep_v1, written once its policy entries and veth programs are in
 * place. A pod without one is still reached, through the kernel path. */
static void hr_ep_put(struct endpoints *e, const struct ep_rec *r)
{
	struct sl_hr_ep v = {.flags = r->sock_lb_off ? SL_HR_F_SVC : 0};
	int fd = hr_ep_fd(e), err;
	struct in_addr a;

	if (fd < 0 || !r->ip || inet_pton(AF_INET, r->ip, &a) != 1)
		return;
	v.ifindex = (uint32_t)rec_ifindex(r);
	err = v.ifindex ? netns_if_mac(NULL, r->host_ifname, v.host_mac) : -ENODEV;
	if (!err)
		err = netns_if_mac(r->netns, r->ifname, v.mac);
	if (!err && bpf_map_update_elem(fd, &a.s_addr, &v, BPF_ANY))
		err = -errno;
	if (err)
		pr_warn(EL,
			"endpoint %s: host routing entry: %s; its traffic takes the kernel path",
			r->ip, sl_strerror(err));
}

/* Removes r's entry if it is still r's (a newer pod may hold the address by now). */
static void hr_ep_del(struct endpoints *e, const struct ep_rec *r)
{
	int fd = hr_ep_fd(e), idx = rec_ifindex(r);
	struct sl_hr_ep v;
	struct in_addr a;

	if (fd < 0 || !r->ip || inet_pton(AF_INET, r->ip, &a) != 1)
		return;
	if (bpf_map_lookup_elem(fd, &a.s_addr, &v))
		return;
	if (v.ifindex == (uint32_t)r->host_ifindex || (idx && v.ifindex == (uint32_t)idx))
		bpf_map_delete_elem(fd, &a.s_addr);
}

/* After a restart: entries of pods no record knows (removed while the agent was down). */
static void hr_ep_reconcile(struct endpoints *e)
{
	int fd = hr_ep_fd(e);
	uint32_t key, next, *prev = NULL, stale[64];
	size_t n = 0;

	if (fd < 0)
		return;
	while (n < sizeof(stale) / sizeof(stale[0]) && !bpf_map_get_next_key(fd, prev, &next)) {
		bool known = false;
		struct in_addr a;

		for (size_t i = 0; i < e->n_recs && !known; i++)
			known = e->recs[i].ip && inet_pton(AF_INET, e->recs[i].ip, &a) == 1 &&
				a.s_addr == next && rec_ifindex(&e->recs[i]);
		if (!known)
			stale[n++] = next;
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &stale[i]);
	if (n)
		pr_info(EL, "host routing: %zu stale pod entr%s removed", n, n == 1 ? "y" : "ies");
}

void ep_hr_cidrs(struct endpoints *e, const struct node_route *r, size_t n)
{
	struct sl_hr_cidr_key key, next, *prev = NULL, stale[64];
	uint8_t one = 1;
	size_t n_stale = 0;
	int fd;

	if (!e || !e->hr || !e->skel)
		return;
	fd = bpf_map__fd(e->skel->maps.sl_hr_cidr_v1);
	for (size_t i = 0; i < n; i++) {
		struct sl_hr_cidr_key k = {.prefixlen = (uint32_t)r[i].prefix,
					   .addr = htonl(r[i].dst)};

		if (bpf_map_update_elem(fd, &k, &one, BPF_ANY))
			pr_warn(EL, "host routing: podCIDR entry: %s", strerror(errno));
	}
	while (n_stale < sizeof(stale) / sizeof(stale[0]) &&
	       !bpf_map_get_next_key(fd, prev, &next)) {
		bool want = false;

		for (size_t i = 0; i < n && !want; i++)
			want = next.prefixlen == (uint32_t)r[i].prefix &&
			       next.addr == htonl(r[i].dst);
		if (!want)
			stale[n_stale++] = next;
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < n_stale; i++)
		bpf_map_delete_elem(fd, &stale[i]);
}

void ep_hr_unpin(const char *pin_root)
{
	DIR *d = opendir(pin_root);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX + 300];

		if (strncmp(de->d_name, SL_HR_LINK_PREFIX, strlen(SL_HR_LINK_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_root, de->d_name);
		if (unlink(path))
			pr_warn(EL, "'%s': unpin failed: %s", path, strerror(errno));
		else
			pr_info(EL, "host routing: %s detached",
				de->d_name + strlen(SL_HR_LINK_PREFIX));
	}
	closedir(d);
}

/* TCX (kernel 6.6) through the raw link API: the libbpf this builds against predates it. */
#define EP_TCX_INGRESS	 46 /* BPF_TCX_INGRESS */
#define EP_LINK_TYPE_TCX 11 /* BPF_LINK_TYPE_TCX */

struct ep_tcx_link_info { /* struct bpf_link_info with its tcx member */
	uint32_t type, id, prog_id;
	uint32_t ifindex, attach_type;
	uint8_t rest[64];
};

/*
 * sl_hr_dev_v1 for device idx (abi/hostroute.h): a veth whose peer is in another netns gets
 * pod-to-pod packets by redirect_peer. Rewritten whole at each attach (an ifindex may have
 * been reused by another device since).
 */
static void hr_dev_set(struct endpoints *e, const char *dev, int idx)
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(e->skel->maps.sl_hr_dev_v1);
	int peer = node_link_veth_peer_remote(idx);
	struct sl_hr_dev *v;
	uint32_t key = (uint32_t)idx;

	if (peer < 0)
		pr_warn(EL, "host routing: device '%s': link query failed: %s; sent by redirect",
			dev, sl_strerror(peer));
	if (peer <= 0 || ncpu <= 0)
		return;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return;
	for (int c = 0; c < ncpu; c++)
		v[c].flags = SL_HR_DEV_F_PEER;
	if (bpf_map_update_elem(fd, &key, v, BPF_ANY))
		pr_warn(EL, "host routing: device '%s': %s update failed: %s", dev, SL_MAP_HR_DEV,
			strerror(errno));
	else
		pr_info(EL,
			"host routing: device '%s' is a veth into another netns: pod packets to "
			"other nodes go to its peer by redirect_peer",
			dev);
	free(v);
}

static void hr_dev_clear(struct endpoints *e)
{
	int fd = bpf_map__fd(e->skel->maps.sl_hr_dev_v1);
	uint32_t key;

	while (!bpf_map_get_next_key(fd, NULL, &key))
		if (bpf_map_delete_elem(fd, &key))
			break;
}

/*
 * The fabric program on each device, TCX ingress: it runs ahead of the uplink path's tc
 * filter, to which it passes (TCX_NEXT) everything not for a local pod. The link is pinned
 * so that packets keep their path while the agent is down; a restart swaps the program
 * inside the same link.
 */
static void hr_fabric_attach(struct endpoints *e)
{
	int prog_fd = bpf_program__fd(e->skel->progs.tc_hr_fabric);
	char list[sizeof(e->devices)], *save = NULL;

	hr_dev_clear(e);
	snprintf(list, sizeof(list), "%s", e->devices);
	for (char *dev = strtok_r(list, ",", &save); dev; dev = strtok_r(NULL, ",", &save)) {
		char pin[PATH_MAX + 64];
		struct ep_tcx_link_info info;
		uint32_t len = sizeof(info);
		int idx = (int)if_nametoindex(dev), fd, err;

		if (!idx) {
			pr_warn(EL, "host routing: device '%s' does not exist", dev);
			continue;
		}
		hr_dev_set(e, dev, idx);
		snprintf(pin, sizeof(pin), "%s/%s%s", e->pin_root, SL_HR_LINK_PREFIX, dev);
		fd = bpf_obj_get(pin);
		if (fd >= 0) {
			memset(&info, 0, sizeof(info));
			if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
			    info.type == EP_LINK_TYPE_TCX && info.ifindex == (uint32_t)idx &&
			    !bpf_link_update(fd, prog_fd, NULL)) {
				close(fd);
				pr_info(EL, "host routing: device '%s': program replaced", dev);
				continue;
			}
			close(fd);
			unlink(pin); /* another device by that name, or a dead link */
		}
		fd = bpf_link_create(prog_fd, idx, (enum bpf_attach_type)EP_TCX_INGRESS, NULL);
		if (fd < 0) {
			pr_warn(EL,
				"host routing: device '%s': TCX attach failed: %s; packets from "
				"other nodes take the kernel path",
				dev, strerror(errno));
			continue;
		}
		err = bpf_obj_pin(fd, pin) ? -errno : 0;
		close(fd); /* pinned: the pin keeps it attached; else this detaches it */
		if (err)
			pr_warn(EL, "host routing: device '%s': pinning '%s' failed: %s; detached",
				dev, pin, sl_strerror(err));
		else
			pr_info(EL,
				"host routing: device '%s': packets to local pods delivered by BPF",
				dev);
	}
}

/* Attaches the pod programs to the host veth: service translation + policy (svc) or
 * policy only. */
static int tc_attach(struct endpoints *e, int ifindex, bool svc)
{
	struct bpf_tc_hook hook = {.sz = sizeof(hook),
				   .ifindex = ifindex,
				   .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS};
	int fds[2] = {
		bpf_program__fd(svc ? e->skel->progs.tc_pod_ingress
				    : e->skel->progs.tc_pol_ingress),
		bpf_program__fd(svc ? e->skel->progs.tc_pod_egress : e->skel->progs.tc_pol_egress)};
	int err = bpf_tc_hook_create(&hook);

	if (err && err != -EEXIST)
		return err;
	for (int d = 0; d < 2; d++) {
		struct bpf_tc_opts to = {.sz = sizeof(to),
					 .handle = EP_TC_HANDLE,
					 .priority = EP_TC_PRIO,
					 .prog_fd = fds[d],
					 .flags = BPF_TC_F_REPLACE};

		hook.attach_point = d ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		err = bpf_tc_attach(&hook, &to);
		if (err)
			return err;
	}
	return 0;
}

/* Host veth of r: its ifindex now, or 0 when it is gone. */
static int rec_ifindex(const struct ep_rec *r)
{
	return r->host_ifname ? (int)if_nametoindex(r->host_ifname) : 0;
}

static int optout_apply(struct endpoints *e, const struct ep_rec *r, char *why, size_t whylen)
{
	__u32 zero = 0;
	int err, idx;

	err = dp_ready(e);
	if (err) {
		snprintf(why, whylen, "per-packet datapath unavailable: %s", sl_strerror(err));
		return err;
	}
	idx = rec_ifindex(r);
	if (!idx) {
		snprintf(why, whylen, "host interface '%s' does not exist", r->host_ifname);
		return -ENODEV;
	}
	/* tc first: once the hooks skip the pod, its packets must already be translated. */
	err = tc_attach(e, idx, true);
	if (!err && bpf_map_update_elem(e->sockoff_fd, &r->netns_cookie, &zero, BPF_ANY))
		err = -errno;
	if (err)
		snprintf(why, whylen, "socket-LB opt-out on '%s' failed: %s", r->host_ifname,
			 sl_strerror(err));
	return err;
}

/* NetworkPolicy only (the pod keeps the socket LB): the policy-only programs. */
static int policy_apply(struct endpoints *e, const struct ep_rec *r, char *why, size_t whylen)
{
	int err, idx;

	err = dp_ready(e);
	if (err) {
		snprintf(why, whylen, "policy datapath unavailable: %s", sl_strerror(err));
		return err;
	}
	idx = rec_ifindex(r);
	if (!idx) {
		snprintf(why, whylen, "host interface '%s' does not exist", r->host_ifname);
		return -ENODEV;
	}
	err = tc_attach(e, idx, false);
	if (err)
		snprintf(why, whylen, "attaching policy enforcement to '%s' failed: %s",
			 r->host_ifname, sl_strerror(err));
	return err;
}

/* Programs for r's veth: translation + policy for opted-out pods, policy for the rest
 * (when the agent enforces policy), nothing otherwise. */
static int veth_apply(struct endpoints *e, const struct ep_rec *r, char *why, size_t whylen)
{
	int err = 0;

	if (r->sock_lb_off)
		err = optout_apply(e, r, why, whylen);
	else if (npol_self())
		err = policy_apply(e, r, why, whylen);
	if (!err)
		hr_ep_put(e, r);
	return err;
}

static void optout_remove(struct endpoints *e, const struct ep_rec *r)
{
	int idx = rec_ifindex(r);

	if (e->sockoff_fd < 0)
		dp_ready(e);
	hr_ep_del(e, r);
	if (r->sock_lb_off && e->sockoff_fd >= 0 && r->netns_cookie)
		bpf_map_delete_elem(e->sockoff_fd, &r->netns_cookie);
	/* The plugin deletes the veth (and with it the filters) before it tells us; a DEL
	 * of a pod whose veth survived detaches our filters and nothing else. */
	if (idx) {
		struct bpf_tc_hook hook = {.sz = sizeof(hook), .ifindex = idx};
		struct bpf_tc_opts d = {
			.sz = sizeof(d), .handle = EP_TC_HANDLE, .priority = EP_TC_PRIO};

		hook.attach_point = BPF_TC_INGRESS;
		bpf_tc_detach(&hook, &d);
		hook.attach_point = BPF_TC_EGRESS;
		bpf_tc_detach(&hook, &d);
	}
}

/* Does the pod ask for per-packet service translation? 0/1, or negative with why. */
static int pod_socket_lb_off(struct endpoints *e, const char *ns, const char *name, char *why,
			     size_t whylen)
{
	struct sl_client_resp resp = {0};
	char path[600];
	const char *v;
	int err, off = 0;

	if (!e->client || !ns || !name)
		return 0;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", ns, name);
	err = sl_client_request(e->client, "GET", path, NULL, 0, NULL, NULL, &resp);
	if (!err && resp.status == 404) {
		pr_info(EL, "pod '%s/%s' is not in the API; socket LB stays on", ns, name);
	} else if (err || resp.status != 200) {
		snprintf(why, whylen,
			 "cannot read pod %.100s/%.100s to choose its service datapath: %s %.150s",
			 ns, name, err ? sl_strerror(err) : "HTTP error", resp.err);
		off = -EAGAIN;
	} else {
		v = sl_json_get_str(
			sl_json_path(resp.json, "metadata", "annotations", (char *)NULL),
			EP_ANNOT_SOCKET_LB);
		off = v && !strcmp(v, "off");
	}
	sl_client_resp_fini(&resp);
	return off;
}

/* --- operations ----------------------------------------------------------------------------- */

static int op_add(struct endpoints *e, const struct ep_req *q, char *why, size_t whylen)
{
	char name[32], ns[256] = "", pod[256] = "", flag[16] = "";
	struct ep_rec r = {0}, *old, *v;
	int idx, off, err;

	ep_record_name(q->network, q->container_id, q->ifname, name);
	idx = (int)if_nametoindex(q->host_ifname);
	if (!idx || (q->host_ifindex && idx != q->host_ifindex)) {
		snprintf(why, whylen, "host interface '%s'%s", q->host_ifname,
			 idx ? " has another ifindex than the request says" : " does not exist");
		return -ENODEV;
	}
	ep_args_get(q->args, "K8S_POD_NAMESPACE", ns, sizeof(ns));
	ep_args_get(q->args, "K8S_POD_NAME", pod, sizeof(pod));
	ep_args_get(q->args, "SLUICE_SOCKET_LB", flag, sizeof(flag));
	off = !strcmp(flag, "off")
		      ? 1
		      : pod_socket_lb_off(e, ns[0] ? ns : NULL, pod[0] ? pod : NULL, why, whylen);
	if (off < 0)
		return off;
	snprintf(r.name, sizeof(r.name), "%s", name);
	r.network = q->network ? strdup(q->network) : NULL;
	r.container_id = strdup(q->container_id);
	r.ifname = strdup(q->ifname);
	r.ip = strdup(q->ip);
	r.host_ifname = strdup(q->host_ifname);
	r.netns = strdup(q->netns);
	r.pod_ns = ns[0] ? strdup(ns) : NULL;
	r.pod_name = pod[0] ? strdup(pod) : NULL;
	r.host_ifindex = idx;
	r.sock_lb_off = off;
	if (!r.container_id || !r.ifname || !r.ip || !r.host_ifname || !r.netns) {
		rec_fini(&r);
		return -ENOMEM;
	}
	err = netns_cookie(q->netns, &r.netns_cookie);
	if (err) {
		snprintf(why, whylen, "netns '%.200s': %s", q->netns, sl_strerror(err));
		rec_fini(&r);
		return err;
	}
	/* Policy entries before the programs: the pod's first packet is decided with its
	 * identity and rule sets in place (policy.h). */
	err = npol_endpoint_add(npol_self(), r.pod_ns, r.pod_name, r.ip, why, whylen);
	if (!err)
		err = veth_apply(e, &r, why, whylen);
	if (err) {
		rec_fini(&r);
		return err;
	}
	err = rec_save(e, &r);
	if (err) {
		snprintf(why, whylen, "recording the endpoint under %.300s failed: %s", e->rec_dir,
			 sl_strerror(err));
		optout_remove(e, &r);
		rec_fini(&r);
		return err;
	}
	old = rec_find(e, name);
	if (old) {
		/* A repeated ADD (the runtime retried): the new facts win. */
		if (old->sock_lb_off && e->sockoff_fd >= 0 &&
		    (!r.sock_lb_off || old->netns_cookie != r.netns_cookie))
			bpf_map_delete_elem(e->sockoff_fd, &old->netns_cookie);
		if (old->ip && strcmp(old->ip, r.ip))
			hr_ep_del(e, old);
		rec_fini(old);
		*old = r;
	} else {
		v = realloc(e->recs, (e->n_recs + 1) * sizeof(*v));
		if (!v) {
			rec_fini(&r);
			return -ENOMEM;
		}
		e->recs = v;
		e->recs[e->n_recs++] = r;
		old = &e->recs[e->n_recs - 1];
	}
	pr_info(EL, "endpoint %s %s%s%s on %s (container %.12s)%s", old->ip,
		old->pod_ns ? old->pod_ns : "", old->pod_ns ? "/" : "",
		old->pod_name ? old->pod_name : "", old->host_ifname, old->container_id,
		old->sock_lb_off ? ": socket LB off, per-packet translation on the veth" : "");
	return 0;
}

static int op_del(struct endpoints *e, const struct ep_req *q)
{
	char name[32], path[PATH_MAX + 64];
	struct ep_rec *r;

	ep_record_name(q->network, q->container_id, q->ifname, name);
	r = rec_find(e, name);
	if (!r)
		return 0; /* idempotent: nothing recorded, nothing to undo */
	optout_remove(e, r);
	npol_endpoint_del(npol_self(), r->pod_ns, r->pod_name);
	snprintf(path, sizeof(path), "%s/%s.json", e->rec_dir, r->name);
	if (unlink(path) && errno != ENOENT)
		pr_warn(EL, "endpoint record '%s': unlink failed: %s", path, strerror(errno));
	pr_info(EL, "endpoint %s (container %.12s) removed", r->ip ? r->ip : "?", r->container_id);
	rec_fini(r);
	*r = e->recs[--e->n_recs];
	return 0;
}

static int op_check(struct endpoints *e, const struct ep_req *q, char *why, size_t whylen)
{
	char name[32];
	struct ep_rec *r;
	int idx;

	ep_record_name(q->network, q->container_id, q->ifname, name);
	r = rec_find(e, name);
	if (!r) {
		snprintf(why, whylen, "no endpoint recorded for container %.64s/%s",
			 q->container_id, q->ifname);
		return -ENOENT;
	}
	if (q->ip && r->ip && strcmp(q->ip, r->ip)) {
		snprintf(why, whylen, "endpoint has IP %s, not %s", r->ip, q->ip);
		return -EINVAL;
	}
	idx = rec_ifindex(r);
	if (!idx) {
		snprintf(why, whylen, "host interface '%s' is gone", r->host_ifname);
		return -ENODEV;
	}
	if (r->sock_lb_off || npol_self()) {
		struct bpf_tc_hook hook = {
			.sz = sizeof(hook), .ifindex = idx, .attach_point = BPF_TC_INGRESS};
		struct bpf_tc_opts o = {
			.sz = sizeof(o), .handle = EP_TC_HANDLE, .priority = EP_TC_PRIO};

		if (bpf_tc_query(&hook, &o) || !o.prog_id) {
			snprintf(why, whylen, "per-pod program missing on '%s'", r->host_ifname);
			return -ENOENT;
		}
	}
	return 0;
}

/* Runs one request line; fills reply with the answer line. */
static void ep_handle(struct endpoints *e, const char *line, size_t len, struct sl_buf *reply)
{
	char perr[128], why[512] = "";
	struct json_object *obj = sl_json_parse(line, len, perr, sizeof(perr));
	struct ep_req q;
	int err;

	if (!obj) {
		snprintf(why, sizeof(why), "request is not JSON: %s", perr);
		err = -EINVAL;
	} else {
		err = ep_req_parse(obj, &q, why, sizeof(why));
	}
	if (!err) {
		if (!strcmp(q.op, "add"))
			err = op_add(e, &q, why, sizeof(why));
		else if (!strcmp(q.op, "del"))
			err = op_del(e, &q);
		else
			err = op_check(e, &q, why, sizeof(why));
	}
	if (err && !why[0])
		snprintf(why, sizeof(why), "%s", sl_strerror(err));
	if (err) {
		pr_warn(EL, "request %s refused: %s",
			obj && sl_json_get_str(obj, "op") ? sl_json_get_str(obj, "op") : "?", why);
		sl_buf_puts(reply, "{\"ok\":false,\"error\":");
		sl_buf_json_str(reply, why);
		sl_buf_puts(reply, "}\n");
	} else {
		sl_buf_puts(reply, "{\"ok\":true}\n");
	}
	json_object_put(obj);
}

/* --- the socket ------------------------------------------------------------------------------ */

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	bufferevent_free(bev); /* reply flushed: one request per connection */
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev); /* EOF before a full line, error or timeout */
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct endpoints *e = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct sl_buf reply = SL_BUF_INIT;
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

	if (!line) {
		if (evbuffer_get_length(in) <= EP_MAX_LINE)
			return; /* wait for the rest */
		sl_buf_puts(&reply, "{\"ok\":false,\"error\":\"request line too long\"}\n");
	} else {
		ep_handle(e, line, len, &reply);
		free(line);
	}
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, conn_write_cb, conn_event_cb, e);
	if (reply.oom || bufferevent_write(bev, reply.data, reply.len))
		bufferevent_free(bev);
	sl_buf_fini(&reply);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct endpoints *e = arg;
	struct timeval tmo = {EP_CONN_TIMEOUT, 0};
	struct bufferevent *bev = bufferevent_socket_new(e->base, fd, BEV_OPT_CLOSE_ON_FREE);

	if (!bev) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, conn_read_cb, NULL, conn_event_cb, e);
	bufferevent_set_timeouts(bev, &tmo, &tmo);
	bufferevent_enable(bev, EV_READ);
}

static int sock_listen(struct endpoints *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd, err = 0;

	if (strlen(e->sock_path) >= sizeof(sa.sun_path)) {
		pr_err(EL, "socket path '%s' is longer than %zu bytes; use a shorter --state-dir",
		       e->sock_path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, e->sock_path);
	/* A socket left by a previous run is ours to replace; anything else is not. */
	if (!lstat(e->sock_path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			pr_err(EL, "'%s' exists and is not a socket", e->sock_path);
			return -EEXIST;
		}
		unlink(e->sock_path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0077); /* 0600 from the start: no window where others can connect */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		err = -errno;
	umask(old);
	if (!err && chmod(e->sock_path, 0600))
		err = -errno;
	if (err) {
		pr_err(EL, "socket '%s': %s", e->sock_path, strerror(-err));
		close(fd);
		return err;
	}
	e->lst = evconnlistener_new(e->base, accept_cb, e, LEV_OPT_CLOSE_ON_FREE, 128, fd);
	if (!e->lst) {
		close(fd);
		unlink(e->sock_path);
		return -ENOMEM;
	}
	return 0;
}

/* Replays the DELs sluice-cni queued while the agent was down, then deletes them. */
static void queue_replay(struct endpoints *e)
{
	DIR *d = opendir(e->queue_dir);
	struct dirent *de;
	unsigned done = 0;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX + 300], buf[8192], perr[128], why[256];
		struct json_object *o;
		struct ep_req q;
		size_t len = strlen(de->d_name);
		ssize_t n;
		int fd;

		if (strncmp(de->d_name, "del-", 4) || len < 6 ||
		    strcmp(de->d_name + len - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", e->queue_dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		o = n > 0 ? sl_json_parse(buf, (size_t)n, perr, sizeof(perr)) : NULL;
		if (!o || ep_req_parse(o, &q, why, sizeof(why)) || strcmp(q.op, "del"))
			pr_warn(EL, "queued request '%s' is not a valid del; dropped", path);
		else if (!op_del(e, &q))
			done++;
		json_object_put(o);
		unlink(path);
	}
	closedir(d);
	if (done)
		pr_info(EL, "replayed %u queued CNI DEL%s from %s", done, done == 1 ? "" : "s",
			e->queue_dir);
}

struct endpoints *ep_open(const struct ep_opts *o)
{
	struct endpoints *e = calloc(1, sizeof(*e));
	int err = 0;

	if (!e) {
		errno = ENOMEM;
		return NULL;
	}
	e->base = o->base;
	e->client = o->client;
	e->sockoff_fd = -1;
	e->hr = o->host_routing && hr_supported();
	snprintf(e->devices, sizeof(e->devices), "%s", o->devices ? o->devices : "");
	snprintf(e->state_dir, sizeof(e->state_dir), "%s", o->state_dir);
	snprintf(e->pin_root, sizeof(e->pin_root), "%s", o->pin_root ? o->pin_root : "");
	snprintf(e->sock_path, sizeof(e->sock_path), "%s/%s", o->state_dir, EP_SOCK_NAME);
	snprintf(e->rec_dir, sizeof(e->rec_dir), "%s/%s", o->state_dir, EP_STATE_DIR);
	snprintf(e->queue_dir, sizeof(e->queue_dir), "%s/%s", o->state_dir, EP_QUEUE_DIR);
	if (mkdir(e->rec_dir, 0700) && errno != EEXIST) {
		err = -errno;
		pr_err(EL, "'%s': %s", e->rec_dir, strerror(-err));
		goto fail;
	}
	recs_load(e);
	/* Host routing needs the programs before the first pod: the fabric program is
	 * per device. Off (or after a failure): no link of a previous run may stay. */
	if (e->hr && (err = dp_ready(e))) {
		pr_warn(EL, "host routing: pod programs unavailable: %s; kernel path",
			sl_strerror(err));
		e->hr = false;
	}
	if (e->hr)
		hr_fabric_attach(e);
	else if (e->pin_root[0])
		ep_hr_unpin(e->pin_root);
	pr_info(EL, "host routing: %s", e->hr ? "bpf" : "kernel");
	/* Pods of the previous run get this run's programs on their veth (the maps they
	 * read are pinned and keep enforcing meanwhile). */
	for (size_t i = 0; i < e->n_recs; i++) {
		char why[256];

		if (rec_ifindex(&e->recs[i]) && veth_apply(e, &e->recs[i], why, sizeof(why)))
			pr_warn(EL, "endpoint %s: %s", e->recs[i].ip ? e->recs[i].ip : "?", why);
	}
	hr_ep_reconcile(e);
	queue_replay(e);
	err = sock_listen(e);
	if (err)
		goto fail;
	pr_info(EL, "serving %s (%zu endpoints recorded)", e->sock_path, e->n_recs);
	return e;
fail:
	ep_close(e);
	errno = -err;
	return NULL;
}

size_t ep_count(const struct endpoints *e)
{
	return e ? e->n_recs : 0;
}

void ep_close(struct endpoints *e)
{
	if (!e)
		return;
	if (e->lst) {
		evconnlistener_free(e->lst);
		unlink(e->sock_path); /* nobody answers any more: ADDs fail fast, DELs queue */
	}
	for (size_t i = 0; i < e->n_recs; i++)
		rec_fini(&e->recs[i]);
	free(e->recs);
	/* Filters on the veths keep the programs alive: traffic is unaffected. */
	tc_pod__destroy(e->skel);
	if (e->sockoff_fd >= 0)
		close(e->sockoff_fd);
	free(e);
}
