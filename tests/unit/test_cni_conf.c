// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for sluice-cni's input handling and the commands that need no netns: config
 * parsing (every bad field gets the spec's error code), CNI_* environment validation,
 * VERSION, STATUS, GC and DEL-without-netns through cni_plugin_run(), the error object's
 * shape, the agent client against a fake agent, and the DEL queue while the agent is down.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cni.h"
#include "cni_agent.h"
#include "cni_ipam.h"
#include "harness.h"
#include "sluice/json.h"

static int parse_code(const char *json, enum cni_cmd cmd)
{
	struct cni_error e = {0};
	struct cni_conf *c = cni_conf_parse(json, strlen(json), cmd, &e);

	if (c) {
		cni_conf_free(c);
		return 0;
	}
	return e.code ? e.code : -1;
}

#define IPAM_OK "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/24\"}"
#define HEAD	"{\"cniVersion\":\"1.0.0\",\"name\":\"sl\",\"type\":\"sluice-cni\","

TEST(conf_valid)
{
	const char *j = "{\"cniVersion\":\"1.1.0\",\"name\":\"pod-net.1\",\"type\":\"sluice-cni\","
			"\"mtu\":1400,\"agentSocket\":\"/run/x.sock\",\"dns\":{\"nameservers\":"
			"[\"198.18.0.10\"]},\"ipam\":{\"type\":\"sluice\",\"subnet\":"
			"\"198.18.64.0/24\",\"gateway\":\"198.18.64.254\",\"rangeStart\":"
			"\"198.18.64.10\",\"rangeEnd\":\"198.18.64.20\",\"dataDir\":\"/tmp/d\"},"
			"\"prevResult\":{\"ips\":[]},\"runtimeConfig\":{},\"unknownKey\":1}";
	struct cni_error e = {0};
	struct cni_conf *c = cni_conf_parse(j, strlen(j), CNI_CMD_ADD, &e);
	char a[16];

	if (!ASSERT_NOT_NULL(c, "parse"))
		return;
	ASSERT_STREQ(c->cni_version, "1.1.0", "version");
	ASSERT_EQ(c->version, CNI_VERSION(1, 1, 0), "encoded version");
	ASSERT_STREQ(c->name, "pod-net.1", "name");
	ASSERT_EQ(c->mtu, 1400, "mtu");
	ASSERT_STREQ(c->agent_socket, "/run/x.sock", "agent socket");
	ASSERT_STREQ(cni_ip_str(c->ipam.gw, a), "198.18.64.254", "gateway");
	ASSERT_STREQ(cni_ip_str(c->ipam.start, a), "198.18.64.10", "start");
	ASSERT_STREQ(cni_ip_str(c->ipam.end, a), "198.18.64.20", "end");
	ASSERT_STREQ(c->ipam.data_dir, "/tmp/d", "dataDir");
	ASSERT_NOT_NULL(c->dns, "dns");
	ASSERT_NOT_NULL(c->prev_result, "prevResult");
	cni_conf_free(c);

	/* Defaults: gateway .1, range .1-.254 (gateway skipped by IPAM), default dataDir. */
	j = HEAD IPAM_OK "}";
	c = cni_conf_parse(j, strlen(j), CNI_CMD_ADD, &e);
	if (!ASSERT_NOT_NULL(c, "defaults"))
		return;
	ASSERT_STREQ(cni_ip_str(c->ipam.gw, a), "198.18.64.1", "default gw");
	ASSERT_STREQ(cni_ip_str(c->ipam.end, a), "198.18.64.254", "default end");
	ASSERT_STREQ(c->ipam.data_dir, CNI_DEFAULT_DATA_DIR, "default dataDir");
	ASSERT_NULL(c->agent_socket, "no agent by default");
	cni_conf_free(c);
}

TEST(conf_errors)
{
	static const struct {
		const char *json;
		int code;
	} cases[] = {
		{"", 6},
		{"{", 6},
		{"[1,2]", 6},
		{"\"str\"", 6},
		{"{\"cniVersion\":\"1.0.0\"}x", 6},
		{"{}", 7},
		{"{\"cniVersion\":1}", 7},
		{"{\"cniVersion\":\"0.2.0\",\"name\":\"a\",\"type\":\"sluice-cni\"," IPAM_OK "}",
		 1},
		{"{\"cniVersion\":\"9.9.9\",\"name\":\"a\",\"type\":\"sluice-cni\"," IPAM_OK "}",
		 1},
		{"{\"cniVersion\":\"abc\",\"name\":\"a\",\"type\":\"sluice-cni\"," IPAM_OK "}", 1},
		{"{\"cniVersion\":\"1.0.0\",\"type\":\"sluice-cni\"," IPAM_OK "}", 7},
		{"{\"cniVersion\":\"1.0.0\",\"name\":\"-bad\",\"type\":\"sluice-cni\"," IPAM_OK "}",
		 7},
		{"{\"cniVersion\":\"1.0.0\",\"name\":\"a b\",\"type\":\"sluice-cni\"," IPAM_OK "}",
		 7},
		{"{\"cniVersion\":\"1.0.0\",\"name\":\"a\"," IPAM_OK "}", 7},
		{HEAD "\"type\":7}", 7},
		{HEAD "\"x\":1}", 7}, /* no ipam */
		{HEAD "\"ipam\":[]}", 7},
		{HEAD "\"ipam\":{\"subnet\":\"198.18.64.0/24\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"host-local\",\"subnet\":\"198.18.64.0/24\"}}", 2},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"ranges\":[]}}", 2},
		{HEAD "\"ipam\":{\"type\":\"sluice\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/24x\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/33\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/-1\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"300.18.64.0/24\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.1/24\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/31\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"10.0.0.0/7\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"fd00::/64\"}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":24}}", 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/24\",\"gateway\":"
		      "\"198.18.65.1\"}}",
		 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/24\",\"gateway\":"
		      "\"198.18.64.255\"}}",
		 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/24\",\"rangeStart\":"
		      "\"198.18.64.9\",\"rangeEnd\":\"198.18.64.8\"}}",
		 7},
		{HEAD "\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/24\",\"dataDir\":"
		      "\"rel\"}}",
		 7},
		{HEAD "\"mtu\":10," IPAM_OK "}", 7},
		{HEAD "\"mtu\":\"1500\"," IPAM_OK "}", 7},
		{HEAD "\"mtu\":99999999999," IPAM_OK "}", 7},
		{HEAD "\"agentSocket\":\"rel.sock\"," IPAM_OK "}", 7},
		{HEAD "\"agentTimeoutMs\":0," IPAM_OK "}", 7},
		{HEAD "\"dns\":[]," IPAM_OK "}", 7},
		{HEAD "\"prevResult\":\"x\"," IPAM_OK "}", 7},
		{"{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"plugins\":{}}", 7},
		{"{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"plugins\":[{\"type\":\"bridge\"}]}",
		 7},
	};
	size_t i;
	char name[32];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "case %zu", i);
		ASSERT_EQ(parse_code(cases[i].json, CNI_CMD_ADD), cases[i].code, name);
	}
}

TEST(conf_conflist_and_gc_list)
{
	const char *j =
		"{\"cniVersion\":\"1.1.0\",\"name\":\"lst\",\"plugins\":[{\"type\":"
		"\"portmap\"},{\"type\":\"sluice-cni\",\"mtu\":1300," IPAM_OK "}],"
		"\"cni.dev/valid-attachments\":[{\"containerID\":\"a\",\"ifname\":\"eth0\"},"
		"{\"containerID\":\"b\",\"ifname\":\"eth1\"}]}";
	struct cni_error e = {0};
	struct cni_conf *c = cni_conf_parse(j, strlen(j), CNI_CMD_GC, &e);

	if (!ASSERT_NOT_NULL(c, "conflist"))
		return;
	ASSERT_EQ(c->mtu, 1300, "our entry picked");
	ASSERT_STREQ(c->name, "lst", "list name");
	ASSERT_TRUE(c->has_valid, "valid list seen");
	ASSERT_EQ(c->n_valid, 2, "two attachments");
	ASSERT_STREQ(c->valid[1].ifname, "eth1", "second ifname");
	cni_conf_free(c);

	/* The key spec-v1.1.0's text used; an empty list; a malformed entry. */
	j = HEAD IPAM_OK ",\"cni.dev/attachments\":[]}";
	c = cni_conf_parse(j, strlen(j), CNI_CMD_GC, &e);
	if (ASSERT_NOT_NULL(c, "old key")) {
		ASSERT_TRUE(c->has_valid, "old key accepted");
		ASSERT_EQ(c->n_valid, 0, "empty");
	}
	cni_conf_free(c);
	ASSERT_EQ(parse_code(HEAD IPAM_OK ",\"cni.dev/valid-attachments\":[{\"containerID\":1}]}",
			     CNI_CMD_GC),
		  7, "bad attachment");
	ASSERT_EQ(parse_code(HEAD IPAM_OK ",\"cni.dev/valid-attachments\":{}}", CNI_CMD_GC), 7,
		  "not an array");
}

/* --- environment --------------------------------------------------------------------- */

static const char *env_vals[8][2];

static const char *env_get(const char *name)
{
	size_t i;

	for (i = 0; i < 8 && env_vals[i][0]; i++)
		if (!strcmp(env_vals[i][0], name))
			return env_vals[i][1];
	return NULL;
}

static void env_set(const char *cmd, const char *id, const char *netns, const char *ifname,
		    const char *path)
{
	int i = 0;

	memset(env_vals, 0, sizeof(env_vals));
	if (cmd)
		env_vals[i][0] = "CNI_COMMAND", env_vals[i++][1] = cmd;
	if (id)
		env_vals[i][0] = "CNI_CONTAINERID", env_vals[i++][1] = id;
	if (netns)
		env_vals[i][0] = "CNI_NETNS", env_vals[i++][1] = netns;
	if (ifname)
		env_vals[i][0] = "CNI_IFNAME", env_vals[i++][1] = ifname;
	if (path)
		env_vals[i][0] = "CNI_PATH", env_vals[i++][1] = path;
}

static int env_code(void)
{
	struct cni_error e = {0};
	struct cni_env env;

	return cni_env_parse(&env, env_get, &e) ? e.code : 0;
}

TEST(env_validation)
{
	env_set(NULL, "c1", "/run/netns/x", "eth0", "/bin");
	ASSERT_EQ(env_code(), 4, "no command");
	env_set("ATTACH", "c1", "/run/netns/x", "eth0", "/bin");
	ASSERT_EQ(env_code(), 4, "unknown command");
	env_set("ADD", "c1", "/run/netns/x", "eth0", "/bin");
	ASSERT_EQ(env_code(), 0, "complete ADD");
	env_set("ADD", NULL, "/run/netns/x", "eth0", "/bin");
	ASSERT_EQ(env_code(), 4, "ADD without id");
	env_set("ADD", "-c1", "/run/netns/x", "eth0", "/bin");
	ASSERT_EQ(env_code(), 4, "id starting with '-'");
	env_set("ADD", "c1;rm", "/run/netns/x", "eth0", "/bin");
	ASSERT_EQ(env_code(), 4, "id with ';'");
	env_set("ADD", "c1", NULL, "eth0", "/bin");
	ASSERT_EQ(env_code(), 4, "ADD without netns");
	env_set("CHECK", "c1", "", "eth0", "/bin");
	ASSERT_EQ(env_code(), 4, "CHECK with empty netns");
	env_set("DEL", "c1", NULL, "eth0", "/bin");
	ASSERT_EQ(env_code(), 0, "DEL without netns is fine");
	env_set("ADD", "c1", "/run/netns/x", NULL, "/bin");
	ASSERT_EQ(env_code(), 4, "no ifname");
	env_set("ADD", "c1", "/run/netns/x", "a-very-long-ifname", "/bin");
	ASSERT_EQ(env_code(), 4, "ifname > 15");
	env_set("ADD", "c1", "/run/netns/x", "..", "/bin");
	ASSERT_EQ(env_code(), 4, "ifname ..");
	env_set("ADD", "c1", "/run/netns/x", "a/b", "/bin");
	ASSERT_EQ(env_code(), 4, "ifname with /");
	env_set("ADD", "c1", "/run/netns/x", "eth 0", "/bin");
	ASSERT_EQ(env_code(), 4, "ifname with space");
	env_set("ADD", "c1", "/run/netns/x", "eth0", NULL);
	ASSERT_EQ(env_code(), 4, "ADD without CNI_PATH");
	env_set("VERSION", NULL, NULL, NULL, NULL);
	ASSERT_EQ(env_code(), 0, "VERSION needs nothing");
	env_set("STATUS", NULL, NULL, NULL, NULL);
	ASSERT_EQ(env_code(), 0, "STATUS needs nothing");
	env_set("GC", NULL, NULL, NULL, NULL);
	ASSERT_EQ(env_code(), 4, "GC needs CNI_PATH");
}

TEST(host_ifname)
{
	char a[16], b[16], c[16];

	cni_host_ifname("abc", "eth0", a);
	cni_host_ifname("abc", "eth0", b);
	cni_host_ifname("abc", "eth1", c);
	ASSERT_STREQ(a, b, "deterministic");
	ASSERT_FALSE(!strcmp(a, c), "ifname matters");
	ASSERT_EQ(strlen(a), 14, "fits IFNAMSIZ");
	cni_host_ifname("ab", "ceth0", b);
	cni_host_ifname("abc", "eth0", c);
	ASSERT_FALSE(!strcmp(b, c), "boundary matters");
}

/* --- cni_plugin_run ------------------------------------------------------------------ */

static int run(const char *cmd, const char *netns, const char *conf, struct sl_buf *out,
	       struct json_object **obj)
{
	int ret;

	env_set(cmd, "c1", netns, "eth0", "/usr/lib/cni");
	sl_buf_reset(out);
	ret = cni_plugin_run(env_get, conf, strlen(conf), out);
	if (obj)
		*obj = out->len ? sl_json_parse(out->data, out->len, NULL, 0) : NULL;
	return ret;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

TEST(run_version_and_errors)
{
	struct sl_buf out = SL_BUF_INIT;
	struct json_object *o = NULL;
	int64_t code = 0;

	ASSERT_OK(run("VERSION", NULL, "{\"cniVersion\":\"1.0.0\"}", &out, &o), "VERSION");
	ASSERT_STREQ(sl_json_get_str(o, "cniVersion"), "1.0.0", "echoes the version");
	ASSERT_EQ(json_object_array_length(sl_json_get(o, "supportedVersions")), 5, "5 versions");
	json_object_put(o);
	ASSERT_OK(run("VERSION", NULL, "", &out, &o), "VERSION without stdin");
	ASSERT_STREQ(sl_json_get_str(o, "cniVersion"), "1.1.0", "defaults to 1.1.0");
	json_object_put(o);
	ASSERT_EQ(run("VERSION", NULL, "{nope", &out, &o), -1, "VERSION with garbage");
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 6, "code 6");
	json_object_put(o);

	/* A bad config: error object with the request's version, code, msg and details. */
	ASSERT_EQ(run("ADD", "/run/netns/none", HEAD "\"ipam\":{\"type\":\"sluice\"}}", &out, &o),
		  -1, "ADD bad config");
	ASSERT_STREQ(sl_json_get_str(o, "cniVersion"), "1.0.0", "error carries the version");
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 7, "code 7");
	ASSERT_NOT_NULL(sl_json_get_str(o, "msg"), "msg");
	ASSERT_TRUE(strstr(sl_json_get_str(o, "details") ?: "", "ipam.subnet") != NULL,
		    "details name the field");
	json_object_put(o);
	ASSERT_EQ(run("ADD", "/run/netns/sluice-test-none", HEAD IPAM_OK "}", &out, &o), -1,
		  "ADD missing netns");
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 3, "code 3");
	json_object_put(o);
	ASSERT_EQ(run("CHECK", "/run/netns/x",
		      "{\"cniVersion\":\"0.3.1\",\"name\":\"a\",\"type\":\"sluice-cni\"," IPAM_OK
		      "}",
		      &out, &o),
		  -1, "CHECK at 0.3.1");
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 1, "code 1");
	json_object_put(o);
	ASSERT_EQ(run("STATUS", NULL, HEAD IPAM_OK "}", &out, &o), -1, "STATUS at 1.0.0");
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 1, "code 1 for STATUS");
	json_object_put(o);
	env_set(NULL, NULL, NULL, NULL, NULL);
	ASSERT_EQ(cni_plugin_run(env_get, "{}", 2, &out), -1, "no env");
	o = sl_json_parse(out.data, out.len, NULL, 0);
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 4, "code 4");
	json_object_put(o);
	sl_buf_fini(&out);
}

#define CONF11(dir, extra)                                                         \
	"{\"cniVersion\":\"1.1.0\",\"name\":\"sl\",\"type\":\"sluice-cni\"," extra \
	"\"ipam\":{\"type\":\"sluice\",\"subnet\":\"198.18.64.0/29\",\"dataDir\":\"" dir "\"}}"

TEST(run_status_gc_del)
{
	struct cni_ipam_conf ic = {0};
	struct sl_buf out = SL_BUF_INIT;
	struct json_object *o = NULL;
	char dir[] = "/tmp/sluice-test-cnirun";
	char conf[1024], path[256];
	struct stat st;
	int64_t code = 0;
	uint32_t ip;
	int i;

	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	ASSERT_OK(run("STATUS", NULL, CONF11("/tmp/sluice-test-cnirun", ""), &out, NULL),
		  "STATUS ok");
	ASSERT_EQ(out.len, 0, "STATUS prints nothing");
	ic.data_dir = dir;
	cni_cidr_parse("198.18.64.0/29", &ic.net, &i);
	ic.prefix = 29;
	ic.gw = ic.net + 1;
	ic.start = ic.net + 1;
	ic.end = ic.net + 6;
	for (i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "x%d", i);
		ASSERT_OK(cni_ipam_alloc(&ic, "sl", id, "eth0", &ip), "fill");
	}
	ASSERT_EQ(run("STATUS", NULL, CONF11("/tmp/sluice-test-cnirun", ""), &out, &o), -1,
		  "STATUS full");
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 50, "code 50 when exhausted");
	json_object_put(o);

	/* DEL without a netns releases the address and succeeds; twice. */
	ASSERT_OK(cni_ipam_release(&ic, "sl", "x0", "eth0", NULL), "free one");
	ASSERT_OK(cni_ipam_alloc(&ic, "sl", "c1", "eth0", &ip), "c1 holds one");
	ASSERT_OK(run("DEL", NULL, CONF11("/tmp/sluice-test-cnirun", ""), &out, NULL), "DEL");
	ASSERT_EQ(cni_ipam_find(&ic, "sl", "c1", "eth0", &ip), -ENOENT, "released");
	ASSERT_OK(run("DEL", "/run/netns/sluice-test-gone", CONF11("/tmp/sluice-test-cnirun", ""),
		      &out, NULL),
		  "DEL again, netns gone");

	/* GC keeps x1 only. */
	ASSERT_OK(run("GC", NULL,
		      CONF11("/tmp/sluice-test-cnirun",
			     "\"cni.dev/valid-attachments\":[{\"containerID\":\"x1\",\"ifname\":"
			     "\"eth0\"}],"),
		      &out, NULL),
		  "GC");
	ASSERT_OK(cni_ipam_find(&ic, "sl", "x1", "eth0", &ip), "x1 kept");
	ASSERT_EQ(cni_ipam_find(&ic, "sl", "x2", "eth0", &ip), -ENOENT, "x2 collected");
	ASSERT_EQ(run("GC", NULL, CONF11("/tmp/sluice-test-cnirun", ""), &out, &o), -1,
		  "GC without a list");
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 7, "code 7");
	json_object_put(o);

	/* Agent configured but down: STATUS 50, DEL queues the deregistration. */
	ASSERT_EQ(run("STATUS", NULL,
		      CONF11("/tmp/sluice-test-cnirun",
			     "\"agentSocket\":\"/tmp/sluice-test-cnirun/none.sock\","),
		      &out, &o),
		  -1, "STATUS agent down");
	ASSERT_TRUE(sl_json_get_int(o, "code", &code) && code == 50, "code 50 agent down");
	json_object_put(o);
	snprintf(conf, sizeof(conf), "%s",
		 CONF11("/tmp/sluice-test-cnirun",
			"\"agentSocket\":\"/tmp/sluice-test-cnirun/none.sock\","
			"\"agentQueueDir\":\"/tmp/sluice-test-cnirun/q\","));
	ASSERT_OK(run("DEL", NULL, conf, &out, NULL), "DEL with agent down succeeds");
	ASSERT_OK(run("DEL", NULL, conf, &out, NULL), "repeated DEL");
	snprintf(path, sizeof(path), "ls %s/q | grep -c '^del-.*json$' | grep -qx 1", dir);
	ASSERT_EQ(system(path), 0, "exactly one queued request (repeat replaced it)");
	ASSERT_EQ(stat("/tmp/sluice-test-cnirun/q", &st), 0, "queue dir");
	ASSERT_EQ(st.st_mode & 0777, 0700, "queue dir is 0700");
	sl_buf_fini(&out);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- agent client -------------------------------------------------------------------- */

struct fake_agent {
	int lfd;
	const char *reply; /* NULL: accept and close without answering */
	char got[512];
};

static void *fake_agent_main(void *p)
{
	struct fake_agent *a = p;
	int fd = accept(a->lfd, NULL, NULL);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, a->got, sizeof(a->got) - 1);
	if (n > 0)
		a->got[n] = '\0';
	if (a->reply && write(fd, a->reply, strlen(a->reply)) < 0)
		a->got[0] = '\0';
	close(fd);
	return NULL;
}

static int fake_agent_call(const char *reply, char *why, size_t whylen, char *got)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct fake_agent a = {.reply = reply};
	pthread_t th;
	int err;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/sluice-test-agent.%d.sock", getpid());
	unlink(sa.sun_path);
	a.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a.lfd < 0 || bind(a.lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(a.lfd, 4))
		return -999;
	pthread_create(&th, NULL, fake_agent_main, &a);
	err = cni_agent_call(sa.sun_path, 2000, "{\"op\":\"add\"}", why, whylen);
	pthread_join(th, NULL);
	close(a.lfd);
	unlink(sa.sun_path);
	if (got)
		strcpy(got, a.got);
	return err;
}

TEST(agent_client)
{
	char why[128], got[512];

	ASSERT_OK(fake_agent_call("{\"ok\":true}\n", why, sizeof(why), got), "ok reply");
	ASSERT_STREQ(got, "{\"op\":\"add\"}\n", "one request line");
	ASSERT_EQ(fake_agent_call("{\"ok\":false,\"error\":\"no such pod\"}\n", why, sizeof(why),
				  NULL),
		  -EREMOTEIO, "refusal");
	ASSERT_STREQ(why, "no such pod", "reason passed on");
	ASSERT_EQ(fake_agent_call("garbage\n", why, sizeof(why), NULL), -EPROTO, "bad reply");
	ASSERT_EQ(fake_agent_call(NULL, why, sizeof(why), NULL), -EPROTO, "closed silently");
	ASSERT_ERR(cni_agent_call("/tmp/sluice-test-agent-none.sock", 500, "{}", why, sizeof(why)),
		   "no agent");
	ASSERT_ERR(cni_agent_probe("/tmp/sluice-test-agent-none.sock", 500), "probe no agent");
}
