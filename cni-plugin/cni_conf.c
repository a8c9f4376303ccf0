// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-cni input handling: the CNI_* environment, the network config on stdin, versions,
 * addresses, and the spec's error object. Everything here is outside input, so every path
 * ends in either a fully validated struct or a cni_error naming the bad field; the config
 * parser is fuzzed (tests/fuzz/fuzz_cni_config.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"
#include "sluice/json.h"
#include "sluice/log.h"

const char *const cni_supported_versions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL};

int cni_error_set(struct cni_error *e, int code, const char *msg, const char *fmt, ...)
{
	va_list ap;

	if (!e || e->code)
		return -1;
	e->code = code;
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	va_start(ap, fmt);
	vsnprintf(e->details, sizeof(e->details), fmt, ap);
	va_end(ap);
	return -1;
}

void cni_error_json(const struct cni_error *e, const char *version, struct sl_buf *out)
{
	sl_buf_puts(out, "{\"cniVersion\":");
	sl_buf_json_str(out, version ? version : "1.1.0");
	sl_buf_printf(out, ",\"code\":%d,\"msg\":", e->code ? e->code : 999);
	sl_buf_json_str(out, e->msg[0] ? e->msg : "internal error");
	if (e->details[0]) {
		sl_buf_puts(out, ",\"details\":");
		sl_buf_json_str(out, e->details);
	}
	sl_buf_puts(out, "}\n");
}

int cni_version_parse(const char *s, unsigned *out, bool supported_only)
{
	unsigned maj, min, pat;
	int n = 0;

	if (!s || sscanf(s, "%3u.%3u.%3u%n", &maj, &min, &pat, &n) != 3 || s[n] || maj > 255 ||
	    min > 255 || pat > 255)
		return -EINVAL;
	if (supported_only) {
		const char *const *v;

		for (v = cni_supported_versions; *v; v++)
			if (!strcmp(*v, s))
				break;
		if (!*v)
			return -EINVAL;
	}
	*out = CNI_VERSION(maj, min, pat);
	return 0;
}

int cni_ip_parse(const char *s, uint32_t *addr)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*addr = ntohl(a.s_addr);
	return 0;
}

int cni_cidr_parse(const char *s, uint32_t *addr, int *prefix)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash;
	char *end;
	long p;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	if (!slash || slash == s || (size_t)(slash - s) >= sizeof(ip) || !slash[1])
		return -EINVAL;
	memcpy(ip, s, slash - s);
	ip[slash - s] = '\0';
	errno = 0;
	p = strtol(slash + 1, &end, 10);
	if (errno || *end || p < 0 || p > 32 || slash[1] == '+' || slash[1] == '-' ||
	    slash[1] == ' ')
		return -EINVAL;
	if (cni_ip_parse(ip, addr))
		return -EINVAL;
	*prefix = (int)p;
	return 0;
}

const char *cni_ip_str(uint32_t addr, char *buf)
{
	struct in_addr a = {.s_addr = htonl(addr)};

	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
	return buf;
}

void cni_host_ifname(const char *container_id, const char *ifname, char out[16])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *p;

	for (p = container_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	h = (h ^ 0) * 0x100000001b3ULL; /* separator so ("ab","c") != ("a","bc") */
	for (p = ifname; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	snprintf(out, 16, "sl%012llx", (unsigned long long)(h & 0xffffffffffffULL));
}

/* --- environment ------------------------------------------------------------------------ */

static bool cni_container_id_valid(const char *s)
{
	const char *p;

	/* skel: starts alphanumeric, then alphanumerics, '_', '.', '-' */
	if (!s || !s[0] ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (p = s; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return p - s <= 1024;
}

static bool cni_ifname_valid(const char *s)
{
	const char *p;

	if (!s || !s[0] || strlen(s) > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (p = s; *p; p++)
		if (*p == '/' || *p == ':' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
		    (unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			return false;
	return true;
}

static const struct {
	const char *name;
	enum cni_cmd cmd;
} cni_cmds[] = {
	{"ADD", CNI_CMD_ADD},	      {"DEL", CNI_CMD_DEL},	  {"CHECK", CNI_CMD_CHECK},
	{"VERSION", CNI_CMD_VERSION}, {"STATUS", CNI_CMD_STATUS}, {"GC", CNI_CMD_GC},
};

int cni_env_parse(struct cni_env *env, const char *(*get)(const char *name), struct cni_error *e)
{
	bool need_id, need_netns, need_ifname, need_path;
	size_t i;

	memset(env, 0, sizeof(*env));
	env->command = get("CNI_COMMAND");
	env->container_id = get("CNI_CONTAINERID");
	env->netns = get("CNI_NETNS");
	env->ifname = get("CNI_IFNAME");
	env->args = get("CNI_ARGS");
	env->path = get("CNI_PATH");
	if (!env->command || !env->command[0])
		return cni_error_set(
			e, CNI_ERR_INVALID_ENV, "missing CNI_COMMAND",
			"set CNI_COMMAND to one of ADD, DEL, CHECK, VERSION, STATUS, GC");
	for (i = 0; i < sizeof(cni_cmds) / sizeof(cni_cmds[0]); i++)
		if (!strcmp(cni_cmds[i].name, env->command))
			env->cmd = cni_cmds[i].cmd;
	if (env->cmd == CNI_CMD_NONE)
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "unknown CNI_COMMAND",
				     "CNI_COMMAND '%.64s' is not one of ADD, DEL, CHECK, VERSION, "
				     "STATUS, GC",
				     env->command);

	need_id = need_ifname =
		env->cmd == CNI_CMD_ADD || env->cmd == CNI_CMD_DEL || env->cmd == CNI_CMD_CHECK;
	need_netns = env->cmd == CNI_CMD_ADD || env->cmd == CNI_CMD_CHECK;
	need_path = need_id || env->cmd == CNI_CMD_GC;

	if (need_id && (!env->container_id || !env->container_id[0]))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "missing CNI_CONTAINERID",
				     "CNI_CONTAINERID is required for %s", env->command);
	if (need_id && !cni_container_id_valid(env->container_id))
		return cni_error_set(
			e, CNI_ERR_INVALID_ENV, "invalid CNI_CONTAINERID",
			"CNI_CONTAINERID '%.64s' must start with a letter or digit and "
			"contain only letters, digits, '_', '.', '-'",
			env->container_id);
	if (need_netns && (!env->netns || !env->netns[0]))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "missing CNI_NETNS",
				     "CNI_NETNS (path of the container's network namespace) is "
				     "required for %s",
				     env->command);
	if (need_ifname && (!env->ifname || !env->ifname[0]))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "missing CNI_IFNAME",
				     "CNI_IFNAME is required for %s", env->command);
	if (need_ifname && !cni_ifname_valid(env->ifname))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid CNI_IFNAME",
				     "CNI_IFNAME '%.32s' must be 1-15 bytes, not '.' or '..', "
				     "without '/', ':' or whitespace",
				     env->ifname);
	if (need_path && (!env->path || !env->path[0]))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "missing CNI_PATH",
				     "CNI_PATH is required for %s", env->command);
	if (env->netns && !env->netns[0])
		env->netns = NULL;
	return 0;
}

/* --- network config --------------------------------------------------------------------- */

static bool cni_name_valid(const char *s)
{
	const char *p;

	if (!s || !s[0] || strlen(s) > 253)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			return false;
	return true;
}

/* Optional string member: absent is fine, present-but-not-a-string is an error. */
static int cni_conf_str(struct json_object *o, const char *key, const char *where, const char **out,
			struct cni_error *e)
{
	struct json_object *v = sl_json_get(o, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "%s%s must be a string", where, key);
	*out = json_object_get_string(v);
	return 0;
}

static int cni_conf_ipam(struct cni_conf *c, struct json_object *ipam, struct cni_error *e)
{
	const char *type, *subnet, *start, *end, *gw, *dir;
	struct cni_ipam_conf *ic = &c->ipam;
	uint32_t addr, mask, bcast;
	int prefix;

	if (!json_object_is_type(ipam, json_type_object))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam must be an object");
	if (cni_conf_str(ipam, "type", "ipam.", &type, e) ||
	    cni_conf_str(ipam, "subnet", "ipam.", &subnet, e) ||
	    cni_conf_str(ipam, "rangeStart", "ipam.", &start, e) ||
	    cni_conf_str(ipam, "rangeEnd", "ipam.", &end, e) ||
	    cni_conf_str(ipam, "gateway", "ipam.", &gw, e) ||
	    cni_conf_str(ipam, "dataDir", "ipam.", &dir, e))
		return -1;
	if (!type)
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.type is required (use \"sluice\")");
	if (strcmp(type, "sluice") != 0)
		return cni_error_set(
			e, CNI_ERR_UNSUPPORTED_FIELD, "unsupported field",
			"ipam.type '%.64s' is not supported: sluice-cni has a built-in "
			"IPAM, use \"sluice\"",
			type);
	if (sl_json_get(ipam, "ranges"))
		return cni_error_set(
			e, CNI_ERR_UNSUPPORTED_FIELD, "unsupported field",
			"ipam.ranges is not supported; give one ipam.subnet (the node's "
			"pod CIDR)");
	if (!subnet)
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.subnet is required: the node's pod CIDR, e.g. "
				     "\"198.18.64.0/24\"");
	if (cni_cidr_parse(subnet, &addr, &prefix))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.subnet '%.64s' is not an IPv4 CIDR (a.b.c.d/len)",
				     subnet);
	if (prefix < 8 || prefix > 30)
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.subnet '%.64s': prefix length must be 8..30", subnet);
	mask = ~0u << (32 - prefix);
	if (addr & ~mask)
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.subnet '%.64s' has host bits set", subnet);
	bcast = addr | ~mask;
	ic->net = addr;
	ic->prefix = prefix;
	ic->gw = addr + 1;
	if (gw && (cni_ip_parse(gw, &ic->gw) || (ic->gw & mask) != addr || ic->gw == addr ||
		   ic->gw == bcast))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.gateway '%.64s' must be a host address inside %.64s", gw,
				     subnet);
	ic->start = addr + 1;
	ic->end = bcast - 1;
	if (start && (cni_ip_parse(start, &ic->start) || (ic->start & mask) != addr ||
		      ic->start == addr || ic->start == bcast))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.rangeStart '%.64s' must be a host address inside %.64s",
				     start, subnet);
	if (end && (cni_ip_parse(end, &ic->end) || (ic->end & mask) != addr || ic->end == addr ||
		    ic->end == bcast))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.rangeEnd '%.64s' must be a host address inside %.64s",
				     end, subnet);
	if (ic->start > ic->end)
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.rangeStart is after ipam.rangeEnd");
	if (dir && dir[0] != '/')
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "ipam.dataDir '%.64s' must be an absolute path", dir);
	ic->data_dir = dir ? dir : CNI_DEFAULT_DATA_DIR;
	c->has_ipam = true;
	return 0;
}

static int cni_conf_valid_list(struct cni_conf *c, struct cni_error *e)
{
	static const char *const keys[] = {"cni.dev/valid-attachments", "cni.dev/attachments"};
	struct json_object *list = NULL;
	size_t i, n;

	for (i = 0; i < 2 && !list; i++)
		list = sl_json_get(c->root, keys[i]);
	if (!list)
		return 0;
	if (!json_object_is_type(list, json_type_array))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "%s must be an array of {containerID, ifname}", keys[i - 1]);
	n = json_object_array_length(list);
	c->has_valid = true;
	if (!n)
		return 0;
	c->valid = calloc(n, sizeof(*c->valid));
	if (!c->valid)
		return cni_error_set(e, CNI_ERR_IO, "out of memory", "valid attachments");
	for (i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(list, i);
		const char *id = sl_json_get_str(a, "containerID");
		const char *ifn = sl_json_get_str(a, "ifname");

		if (!json_object_is_type(a, json_type_object) || !id || !ifn)
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
					     "valid attachment %zu needs string containerID and "
					     "ifname",
					     i);
		c->valid[i].container_id = id;
		c->valid[i].ifname = ifn;
	}
	c->n_valid = n;
	return 0;
}

/*
 * A runtime sends one plugin object; a conflist on stdin (someone testing by hand) is
 * accepted by using its first entry of our type with the list's name and cniVersion.
 */
static struct json_object *cni_conf_pick(struct json_object *root, struct cni_error *e)
{
	struct json_object *plugins = sl_json_get(root, "plugins");
	size_t i, n;

	if (!plugins)
		return root;
	if (!json_object_is_type(plugins, json_type_array)) {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "plugins must be an array");
		return NULL;
	}
	n = json_object_array_length(plugins);
	for (i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(plugins, i);
		const char *t = sl_json_get_str(p, "type");

		if (json_object_is_type(p, json_type_object) && t && !strcmp(t, CNI_PLUGIN_TYPE))
			return p;
	}
	cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
		      "conflist has no plugin of type \"" CNI_PLUGIN_TYPE "\"");
	return NULL;
}

struct cni_conf *cni_conf_parse(const char *buf, size_t len, enum cni_cmd cmd, struct cni_error *e)
{
	struct json_object *plugin, *ipam, *v;
	struct cni_conf *c;
	char perr[128];
	int64_t n;

	c = calloc(1, sizeof(*c));
	if (!c) {
		cni_error_set(e, CNI_ERR_IO, "out of memory", "parsing the network config");
		return NULL;
	}
	c->agent_timeout_ms = 10000;
	c->root = sl_json_parse(buf, len, perr, sizeof(perr));
	if (!c->root) {
		cni_error_set(e, CNI_ERR_DECODE, "decoding failure",
			      "network config on stdin is not valid JSON: %s", perr);
		goto fail;
	}
	if (!json_object_is_type(c->root, json_type_object)) {
		cni_error_set(e, CNI_ERR_DECODE, "decoding failure",
			      "network config on stdin must be a JSON object");
		goto fail;
	}
	if (cni_conf_str(c->root, "cniVersion", "", &c->cni_version, e))
		goto fail;
	if (!c->cni_version) {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "cniVersion is required");
		goto fail;
	}
	if (cni_version_parse(c->cni_version, &c->version, true)) {
		cni_error_set(e, CNI_ERR_INCOMPATIBLE, "incompatible CNI version",
			      "cniVersion '%.32s' is not supported; supported: 0.3.0, 0.3.1, "
			      "0.4.0, 1.0.0, 1.1.0",
			      c->cni_version);
		goto fail;
	}
	if (cni_conf_str(c->root, "name", "", &c->name, e))
		goto fail;
	if (!c->name) {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "name is required");
		goto fail;
	}
	if (!cni_name_valid(c->name)) {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "name '%.64s' must start with a letter or digit and contain only "
			      "letters, digits, '_', '.', '-'",
			      c->name);
		goto fail;
	}
	plugin = cni_conf_pick(c->root, e);
	if (!plugin)
		goto fail;
	if (cni_conf_str(plugin, "type", "", &c->type, e))
		goto fail;
	if (!c->type) {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "type is required (\"" CNI_PLUGIN_TYPE "\")");
		goto fail;
	}
	v = sl_json_get(plugin, "mtu");
	if (v) {
		if (!sl_json_get_int(plugin, "mtu", &n) || n < 68 || n > 65535) {
			cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				      "mtu must be an integer 68..65535");
			goto fail;
		}
		c->mtu = (int)n;
	}
	if (cni_conf_str(plugin, "agentSocket", "", &c->agent_socket, e) ||
	    cni_conf_str(plugin, "agentQueueDir", "", &c->agent_queue_dir, e))
		goto fail;
	if (c->agent_socket && (c->agent_socket[0] != '/' || strlen(c->agent_socket) > 107)) {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "agentSocket must be an absolute path of at most 107 bytes");
		goto fail;
	}
	if (c->agent_queue_dir && c->agent_queue_dir[0] != '/') {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "agentQueueDir must be an absolute path");
		goto fail;
	}
	if (sl_json_get(plugin, "agentTimeoutMs")) {
		if (!sl_json_get_int(plugin, "agentTimeoutMs", &n) || n < 1 || n > 600000) {
			cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
				      "agentTimeoutMs must be an integer 1..600000");
			goto fail;
		}
		c->agent_timeout_ms = (int)n;
	}
	c->dns = sl_json_get(plugin, "dns");
	if (c->dns && !json_object_is_type(c->dns, json_type_object)) {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "dns must be an object");
		goto fail;
	}
	c->prev_result = sl_json_get(plugin, "prevResult");
	if (c->prev_result && !json_object_is_type(c->prev_result, json_type_object)) {
		cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			      "prevResult must be an object");
		goto fail;
	}
	ipam = sl_json_get(plugin, "ipam");
	if (ipam && cni_conf_ipam(c, ipam, e))
		goto fail;
	/* Only commands that touch addresses need the IPAM section. */
	if (!c->has_ipam && cmd != CNI_CMD_VERSION) {
		cni_error_set(
			e, CNI_ERR_INVALID_CONFIG, "invalid network config",
			"ipam is required: {\"type\": \"sluice\", \"subnet\": \"<pod CIDR>\"}");
		goto fail;
	}
	if (cmd == CNI_CMD_GC && cni_conf_valid_list(c, e))
		goto fail;
	return c;
fail:
	cni_conf_free(c);
	return NULL;
}

void cni_conf_free(struct cni_conf *c)
{
	if (!c)
		return;
	json_object_put(c->root);
	free(c->valid);
	free(c);
}
