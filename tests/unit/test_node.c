// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the agent's node side (agent/node.h, agent/endpoint.h): the Node labels and
 * status patch (decoded back through lib/k8s as a Node), the CNI conflist (parsed back by
 * sluice-cni's own config parser), the host-gw route choice, CNI_ARGS and request parsing,
 * and the endpoint socket itself on a real event loop, driven by sluice-cni's agent client:
 * refusals name the problem, DEL is idempotent, queued DELs are replayed and deleted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/endpoint.h"
#include "agent/node.h"
#include "cni.h"
#include "cni_agent.h"
#include "harness.h"
#include "sluice/json.h"
#include "sluice/k8s.h"

TEST(node_labels)
{
	struct sl_buf b = SL_BUF_INIT;
	struct json_object *o;
	char err[256];

	ASSERT_OK(node_labels_json("n1", "amd64", "zone=z1,sluice.io/role=edge", &b, err,
				   sizeof(err)),
		  "labels");
	o = sl_json_parse(b.data, b.len, err, sizeof(err));
	ASSERT_STREQ(sl_json_get_str(o, "kubernetes.io/hostname"), "n1", "hostname");
	ASSERT_STREQ(sl_json_get_str(o, "kubernetes.io/os"), "linux", "os");
	ASSERT_STREQ(sl_json_get_str(o, "kubernetes.io/arch"), "amd64", "arch");
	ASSERT_STREQ(sl_json_get_str(o, "zone"), "z1", "extra");
	ASSERT_STREQ(sl_json_get_str(o, "sluice.io/role"), "edge", "extra with prefix");
	json_object_put(o);

	static const char *const bad[] = {"zone", "=v", "a=b,,c=d", "k=v w", "k\"=v", "k=a/b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sl_buf_reset(&b);
		err[0] = '\0';
		ASSERT_EQ(node_labels_json("n1", "amd64", bad[i], &b, err, sizeof(err)), -EINVAL,
			  bad[i]);
		ASSERT_TRUE(strstr(err, "--node-labels") != NULL, "error names the flag");
	}
	sl_buf_fini(&b);
	ASSERT_STREQ(node_goarch("x86_64"), "amd64", "x86_64");
	ASSERT_STREQ(node_goarch("aarch64"), "arm64", "aarch64");
}

TEST(node_status_patch_is_a_node)
{
	struct node_facts f = {.name = "n1",
			       .ip = "198.18.0.11",
			       .kernel = "6.1.0",
			       .os_image = "Debian \"x\"",
			       .arch = "amd64",
			       .cpus = 4,
			       .mem_kib = 8000000,
			       .now = "2026-01-02T03:04:05Z",
			       .ready_since = "2026-01-02T03:00:00Z"};
	struct sl_buf b = SL_BUF_INIT;
	struct json_object *o, *doc;
	struct k8s_node *n = NULL;
	const struct k8s_condition *c;
	char err[256];

	node_status_patch(&f, &b);
	o = sl_json_parse(b.data, b.len, err, sizeof(err));
	if (!ASSERT_NOT_NULL(o, "patch is JSON"))
		return;
	doc = json_object_new_object();
	json_object_object_add(doc, "metadata", json_object_new_object());
	json_object_object_add(doc, "status", json_object_get(sl_json_get(o, "status")));
	if (!ASSERT_OK(k8s_node_decode(doc, &n, err, sizeof(err)), err))
		goto out;
	ASSERT_EQ(n->status.n_addresses, 2, "addresses");
	ASSERT_STREQ(n->status.addresses[0].type, "InternalIP", "InternalIP first");
	ASSERT_STREQ(n->status.addresses[0].address, "198.18.0.11", "node ip");
	ASSERT_STREQ(n->status.addresses[1].address, "n1", "Hostname");
	ASSERT_EQ(k8s_node_ready(n), K8S_TRI_TRUE, "Ready=True");
	c = k8s_node_condition(n, "Ready");
	ASSERT_STREQ(c ? c->reason : NULL, "KubeletReady", "reason");
	ASSERT_NOT_NULL(k8s_node_condition(n, "MemoryPressure"), "pressure conditions");
	ASSERT_STREQ(k8s_strmap_get(&n->status.capacity, "pods"), "110", "pods");
	ASSERT_STREQ(k8s_strmap_get(&n->status.capacity, "cpu"), "4", "cpu");
	ASSERT_STREQ(k8s_strmap_get(&n->status.allocatable, "memory"), "8000000Ki", "memory");
	ASSERT_STREQ(n->status.node_info.kubelet_version, NODE_KUBELET_VER, "kubelet version");
	ASSERT_STREQ(n->status.node_info.os_image, "Debian \"x\"", "escaped os image");
out:
	k8s_node_free(n);
	json_object_put(doc);
	json_object_put(o);
	sl_buf_fini(&b);
}

TEST(conflist_parses_with_the_plugin)
{
	struct sl_buf b = SL_BUF_INIT;
	struct cni_error e = {0};
	struct cni_conf *c;
	char err[256], ip[16];

	ASSERT_OK(node_conflist_render("198.18.65.0/24", "/run/sluice-lab/L/n1", &b, err,
				       sizeof(err)),
		  "render");
	c = cni_conf_parse(b.data, b.len, CNI_CMD_ADD, &e);
	if (!ASSERT_NOT_NULL(c, e.details))
		goto out;
	ASSERT_STREQ(c->type, CNI_PLUGIN_TYPE, "plugin entry");
	ASSERT_STREQ(cni_ip_str(c->ipam.net, ip), "198.18.65.0", "subnet");
	ASSERT_EQ(c->ipam.prefix, 24, "prefix");
	ASSERT_STREQ(cni_ip_str(c->ipam.gw, ip), "198.18.65.1", "gateway = first address");
	ASSERT_STREQ(c->ipam.data_dir, "/run/sluice-lab/L/n1/ipam", "ipam dir");
	ASSERT_STREQ(c->agent_socket, "/run/sluice-lab/L/n1/agent.sock", "socket");
	ASSERT_STREQ(c->agent_queue_dir, "/run/sluice-lab/L/n1/cni-del-queue", "queue");
	cni_conf_free(c);

	static const char *const bad_cidr[] = {"198.18.65.1/24", "198.18.65.0/31", "fd00::/64",
					       "198.18.65.0", "x"};
	for (size_t i = 0; i < sizeof(bad_cidr) / sizeof(bad_cidr[0]); i++) {
		sl_buf_reset(&b);
		ASSERT_EQ(node_conflist_render(bad_cidr[i], "/s", &b, err, sizeof(err)), -EINVAL,
			  bad_cidr[i]);
		ASSERT_TRUE(strstr(err, "podCIDR") != NULL, "error names podCIDR");
	}
	char longdir[200];
	memset(longdir, 'a', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	sl_buf_reset(&b);
	ASSERT_EQ(node_conflist_render("198.18.65.0/24", longdir, &b, err, sizeof(err)), -EINVAL,
		  "socket path too long");
	sl_buf_reset(&b);
	ASSERT_EQ(node_conflist_render("198.18.65.0/24", "/a\"b", &b, err, sizeof(err)), -EINVAL,
		  "quote in state dir");
	sl_buf_reset(&b);
	ASSERT_EQ(node_conflist_render("198.18.65.0/24", "rel", &b, err, sizeof(err)), -EINVAL,
		  "relative state dir");
out:
	sl_buf_fini(&b);
}

TEST(routes_want)
{
	struct node_peer peers[] = {
		{"n1", "198.18.65.0/24", "198.18.0.11"}, /* self: unreachable */
		{"n2", "198.18.66.0/24", "198.18.0.12"}, /* route */
		{"n3", NULL, "198.18.0.13"},		 /* no podCIDR yet */
		{"n4", "198.18.68.0/24", NULL},		 /* no address yet */
		{"n5", "198.18.69.1/24", "198.18.0.15"}, /* host bits: skipped */
		{"n6", "198.18.70.0/24", "bogus"},	 /* bad address */
	};
	struct node_route r[8];
	size_t n = node_routes_want("n1", peers, 6, r, 8);

	if (!ASSERT_EQ(n, 2, "two routes"))
		return;
	ASSERT_TRUE(r[0].unreachable, "own podCIDR unreachable");
	ASSERT_EQ(r[0].dst, ntohl(inet_addr("198.18.65.0")), "own dst");
	ASSERT_EQ(r[0].prefix, 24, "own prefix");
	ASSERT_FALSE(r[1].unreachable, "peer via gateway");
	ASSERT_EQ(r[1].dst, ntohl(inet_addr("198.18.66.0")), "peer dst");
	ASSERT_EQ(r[1].gw, ntohl(inet_addr("198.18.0.12")), "peer gw");
	ASSERT_EQ(node_routes_want("n1", peers, 6, r, 1), 1, "bounded by max");
}

TEST(cni_args)
{
	const char *a = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
			"K8S_POD_INFRA_CONTAINER_ID=abc";
	char out[16];

	ASSERT_OK(ep_args_get(a, "K8S_POD_NAME", out, sizeof(out)), "name");
	ASSERT_STREQ(out, "web-0", "name value (not the NAMESPACE prefix match)");
	ASSERT_OK(ep_args_get(a, "K8S_POD_NAMESPACE", out, sizeof(out)), "ns");
	ASSERT_STREQ(out, "default", "ns value");
	ASSERT_EQ(ep_args_get(a, "MISSING", out, sizeof(out)), -ENOENT, "missing");
	ASSERT_EQ(ep_args_get(a, "K8S_POD_NAME", out, 3), -ENAMETOOLONG, "too long");
	ASSERT_EQ(ep_args_get(NULL, "K", out, sizeof(out)), -ENOENT, "no args");
	ASSERT_EQ(ep_args_get("K8S_POD_NAME", "K8S_POD_NAME", out, sizeof(out)), -ENOENT,
		  "key without value");
}

/* The request's strings point into the document: the last one stays alive until the next
 * call (or req_parse(NULL) at the end). */
static int req_parse(const char *s, struct ep_req *r, char *err, size_t n)
{
	static struct json_object *o;
	char perr[128];

	json_object_put(o);
	o = s ? sl_json_parse(s, strlen(s), perr, sizeof(perr)) : NULL;
	return s ? ep_req_parse(o, r, err, n) : 0;
}

TEST(request_parse)
{
	struct ep_req r;
	char err[256];
	static const struct {
		const char *req, *want;
	} bad[] = {
		{"[]", "not a JSON object"},
		{"{\"containerID\":\"c\",\"ifname\":\"eth0\"}", "lacks \"op\""},
		{"{\"op\":\"frob\",\"containerID\":\"c\",\"ifname\":\"eth0\"}", "unknown op"},
		{"{\"op\":\"del\",\"ifname\":\"eth0\"}", "lacks \"containerID\""},
		{"{\"op\":\"del\",\"containerID\":7,\"ifname\":\"eth0\"}", "non-empty string"},
		{"{\"op\":\"add\",\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/n\","
		 "\"hostIfname\":\"sl1\"}",
		 "lacks \"ip\""},
		{"{\"op\":\"add\",\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/n\","
		 "\"hostIfname\":\"sl1\",\"ip\":\"300.1.1.1\"}",
		 "not an IPv4 address"},
		{"{\"op\":\"add\",\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/n\","
		 "\"hostIfname\":\"sl1\",\"ip\":\"198.18.65.2\",\"hostIfindex\":-1}",
		 "positive integer"},
		{"{\"op\":\"add\",\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/n\","
		 "\"hostIfname\":\"averyveryverylongname\",\"ip\":\"198.18.65.2\"}",
		 "too long"},
	};

	ASSERT_OK(req_parse("{\"op\":\"add\",\"network\":\"sluice\",\"containerID\":\"c1\","
			    "\"ifname\":\"eth0\",\"netns\":\"/run/netns/p\",\"ip\":\"198.18.65.2\","
			    "\"gateway\":\"198.18.65.1\",\"hostIfname\":\"sl0123\","
			    "\"hostIfindex\":7,\"args\":\"K8S_POD_NAME=x\"}",
			    &r, err, sizeof(err)),
		  err);
	ASSERT_STREQ(r.op, "add", "op");
	ASSERT_EQ(r.host_ifindex, 7, "ifindex");
	ASSERT_OK(req_parse("{\"op\":\"del\",\"containerID\":\"c1\",\"ifname\":\"eth0\"}", &r, err,
			    sizeof(err)),
		  "del needs no netns");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ASSERT_EQ(req_parse(bad[i].req, &r, err, sizeof(err)), -EINVAL, bad[i].req);
		ASSERT_TRUE(strstr(err, bad[i].want) != NULL, bad[i].want);
	}
	req_parse(NULL, &r, err, sizeof(err));
}

TEST(record_names)
{
	char a[32], b[32], c[32];

	ep_record_name("sluice", "c1", "eth0", a);
	ep_record_name("sluice", "c1", "eth0", b);
	ep_record_name("sluice", "c1", "eth1", c);
	ASSERT_STREQ(a, b, "stable");
	ASSERT_TRUE(strcmp(a, c) != 0, "ifname matters");
	ep_record_name("sluice", "c1e", "th0", c);
	ASSERT_TRUE(strcmp(a, c) != 0, "field boundaries matter");
	ASSERT_EQ(strncmp(a, "ep-", 3), 0, "prefix");
}

/* --- the socket, driven by sluice-cni's client ------------------------------------------ */

struct client_run {
	const char *sock;
	const char *reqs[8];
	int rc[8];
	char why[8][256];
	struct event_base *base;
	volatile int done; /* set by the client thread; the loop polls it (no evthread) */
};

static void done_poll(evutil_socket_t fd, short what, void *arg)
{
	struct client_run *c = arg;

	if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE))
		event_base_loopbreak(c->base);
}

static void *client_thread(void *arg)
{
	struct client_run *c = arg;

	for (int i = 0; i < 8 && c->reqs[i]; i++)
		c->rc[i] = cni_agent_call(c->sock, 3000, c->reqs[i], c->why[i], sizeof(c->why[i]));
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror(path);
		close(fd);
	}
}

TEST(endpoint_socket)
{
	char dir[] = "/tmp/sluice-test-node-XXXXXX", path[256], name[32], qdir[200];
	struct client_run c = {0};
	struct endpoints *e = NULL;
	struct stat st;
	pthread_t th;

	if (!ASSERT_NOT_NULL(mkdtemp(dir), "tmpdir"))
		return;
	c.base = event_base_new();
	/* A recorded endpoint whose DEL was queued while the agent was down. */
	snprintf(path, sizeof(path), "%s/%s", dir, EP_STATE_DIR);
	mkdir(path, 0700);
	ep_record_name("sluice", "gone", "eth0", name);
	snprintf(path, sizeof(path), "%s/%s/%s.json", dir, EP_STATE_DIR, name);
	write_file(path,
		   "{\"network\":\"sluice\",\"containerID\":\"gone\",\"ifname\":\"eth0\","
		   "\"ip\":\"198.18.65.9\",\"hostIfname\":\"slnothere\",\"socketLB\":\"on\"}");
	snprintf(qdir, sizeof(qdir), "%s/%s", dir, EP_QUEUE_DIR);
	ASSERT_OK(cni_agent_queue(qdir, "sluice/gone/eth0",
				  "{\"op\":\"del\",\"network\":\"sluice\",\"containerID\":\"gone\","
				  "\"ifname\":\"eth0\"}"),
		  "queue a del");
	snprintf(path, sizeof(path), "%s/%s/junk.json", dir, EP_STATE_DIR);
	write_file(path, "not a record"); /* not an ep-* name: ignored, not deleted */

	e = ep_open(&(struct ep_opts){.base = c.base, .state_dir = dir, .node_name = "n1"});
	if (!ASSERT_NOT_NULL(e, "ep_open"))
		goto out;
	ASSERT_EQ(ep_count(e), 0, "queued del replayed against the record");
	snprintf(path, sizeof(path), "%s/%s/%s.json", dir, EP_STATE_DIR, name);
	ASSERT_TRUE(access(path, F_OK) != 0, "record file removed");
	snprintf(path, sizeof(path), "%s/%s", dir, EP_SOCK_NAME);
	ASSERT_OK(stat(path, &st), "socket exists");
	ASSERT_EQ(st.st_mode & 0777, 0600, "socket mode 0600");
	ASSERT_TRUE(S_ISSOCK(st.st_mode), "is a socket");

	c.sock = path;
	c.reqs[0] = "{\"op\":\"del\",\"network\":\"sluice\",\"containerID\":\"x\",\"ifname\":"
		    "\"eth0\"}";
	c.reqs[1] = "{\"op\":\"check\",\"network\":\"sluice\",\"containerID\":\"x\",\"ifname\":"
		    "\"eth0\"}";
	c.reqs[2] = "{\"op\":\"add\",\"network\":\"sluice\",\"containerID\":\"x\",\"ifname\":"
		    "\"eth0\",\"netns\":\"/run/netns/none\",\"ip\":\"198.18.65.2\",\"hostIfname\":"
		    "\"slnothere\"}";
	c.reqs[3] = "{\"op\":\"add\"}";
	c.reqs[4] = "garbage";
	struct timeval tick = {0, 10000};
	struct event *poll_ev = event_new(c.base, -1, EV_PERSIST, done_poll, &c);

	event_add(poll_ev, &tick);
	if (!ASSERT_OK(pthread_create(&th, NULL, client_thread, &c), "thread")) {
		event_free(poll_ev);
		goto out;
	}
	event_base_dispatch(c.base);
	event_free(poll_ev);
	pthread_join(th, NULL);
	ASSERT_EQ(c.rc[0], 0, "del of an unknown endpoint is fine");
	ASSERT_EQ(c.rc[1], -EREMOTEIO, "check of an unknown endpoint refused");
	ASSERT_TRUE(strstr(c.why[1], "no endpoint recorded") != NULL, c.why[1]);
	ASSERT_EQ(c.rc[2], -EREMOTEIO, "add with a missing veth refused");
	ASSERT_TRUE(strstr(c.why[2], "slnothere") && strstr(c.why[2], "does not exist"), c.why[2]);
	ASSERT_EQ(c.rc[3], -EREMOTEIO, "incomplete add");
	ASSERT_TRUE(strstr(c.why[3], "lacks") != NULL, c.why[3]);
	ASSERT_EQ(c.rc[4], -EREMOTEIO, "garbage");
	ASSERT_TRUE(strstr(c.why[4], "not JSON") != NULL, c.why[4]);
	ASSERT_EQ(ep_count(e), 0, "nothing recorded by refused requests");
out:
	ep_close(e);
	snprintf(path, sizeof(path), "%s/%s", dir, EP_SOCK_NAME);
	ASSERT_TRUE(access(path, F_OK) != 0, "socket removed at close");
	event_base_free(c.base);
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}
