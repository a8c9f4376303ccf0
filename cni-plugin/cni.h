/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-cni: a CNI 1.0.0/1.1.0 plugin (also answers 0.3.x/0.4.0 configs) that wires a pod
 * netns ptp-style: a veth pair, the container side renamed to CNI_IFNAME with the pod IP /32
 * and a default route via the node-side gateway (onlink), the host side with the gateway
 * /32 and a /32 route to the pod. Addresses come from a file-backed IPAM store
 * (cni_ipam.h) carved from the node's pod CIDR; endpoints are optionally registered with the
 * node agent over a unix socket (cni_agent.h).
 *
 * This header is the plugin's library interface: main.c fills a struct cni_env from the
 * process environment, hands stdin to cni_plugin_run() and prints what it returns. Every
 * failure comes back as a CNI error object (code + msg + details), never as a crash.
 *
 * Config (one plugin object, or a conflist whose entry of type "sluice-cni" is used):
 *   { "cniVersion": "1.0.0", "name": "sluice", "type": "sluice-cni", "mtu": 1500,
 *     "ipam": { "type": "sluice", "subnet": "198.18.64.0/24", "rangeStart": "...",
 *               "rangeEnd": "...", "gateway": "...", "dataDir": "/var/lib/cni/sluice" },
 *     "agentSocket": "/run/sluice/cni.sock", "agentQueueDir": "...", "agentTimeoutMs": 10000,
 *     "dns": { ... } }
 * In the full system the node agent writes this file with ipam.subnet = Node.spec.podCIDR.
 */
#ifndef SLUICE_CNI_H
#define SLUICE_CNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sluice/buf.h"

/* Error codes of the CNI spec (SPEC.md §"Error"), plus this plugin's own (>= 100). */
enum cni_code {
	CNI_ERR_INCOMPATIBLE = 1,      /* unsupported cniVersion */
	CNI_ERR_UNSUPPORTED_FIELD = 2, /* config field with a value we do not support */
	CNI_ERR_UNKNOWN_CONTAINER = 3, /* netns does not exist; nothing to clean up */
	CNI_ERR_INVALID_ENV = 4,       /* bad or missing CNI_* variable */
	CNI_ERR_IO = 5,		       /* I/O failure (IPAM store, queue dir) */
	CNI_ERR_DECODE = 6,	       /* stdin is not JSON */
	CNI_ERR_INVALID_CONFIG = 7,    /* JSON, but not a valid network config */
	CNI_ERR_TRY_AGAIN = 11,	       /* transient: agent down or busy */
	CNI_ERR_NOT_READY = 50,	       /* STATUS: cannot serve ADD */
	CNI_ERR_IF_EXISTS = 100, /* CNI_IFNAME already exists in the container (duplicate ADD) */
	CNI_ERR_DUPLICATE = 101, /* (containerID, ifname) already holds an address */
	CNI_ERR_EXHAUSTED = 102, /* no free address in the pod CIDR */
	CNI_ERR_NETLINK = 103,	 /* creating or configuring interfaces failed */
	CNI_ERR_AGENT = 104,	 /* the agent answered and refused the endpoint */
	CNI_ERR_CHECK = 105,	 /* CHECK found the attachment missing or changed */
};

enum cni_cmd {
	CNI_CMD_NONE = 0,
	CNI_CMD_ADD,
	CNI_CMD_DEL,
	CNI_CMD_CHECK,
	CNI_CMD_VERSION,
	CNI_CMD_STATUS,
	CNI_CMD_GC,
};

/* Filled by cni_plugin_fail(); rendered by cni_error_json(). */
struct cni_error {
	int code;	   /* enum cni_code; 0 = no error */
	char msg[256];	   /* short summary */
	char details[512]; /* what exactly was wrong and what to do */
};

/* The CNI_* environment; every string is borrowed (from environ or the test). */
struct cni_env {
	enum cni_cmd cmd;
	const char *command;	  /* CNI_COMMAND as given */
	const char *container_id; /* CNI_CONTAINERID */
	const char *netns;	  /* CNI_NETNS; may be NULL/empty for DEL */
	const char *ifname;	  /* CNI_IFNAME */
	const char *args;	  /* CNI_ARGS (K=V;K=V) */
	const char *path;	  /* CNI_PATH */
};

/* One (containerID, ifname) pair, e.g. an entry of cni.dev/valid-attachments. */
struct cni_attachment {
	const char *container_id; /* borrowed from the config's JSON */
	const char *ifname;
};

struct cni_ipam_conf {
	const char *data_dir; /* store root; the network's files live in <data_dir>/<name> */
	uint32_t net;	      /* host byte order */
	int prefix;	      /* subnet prefix length, 8..30 */
	uint32_t gw;	      /* gateway (node side of every veth) */
	uint32_t start, end;  /* allocation range, inclusive; excludes net, broadcast */
};

/* A parsed network config. Every string points into root, which the struct owns. */
struct cni_conf {
	struct json_object *root;  /* owned: the whole stdin document */
	const char *cni_version;   /* as requested; echoed in results */
	unsigned version;	   /* major<<16 | minor<<8 | patch */
	const char *name;	   /* network name */
	const char *type;	   /* plugin type */
	int mtu;		   /* 0 = kernel default */
	struct cni_ipam_conf ipam; /* valid when has_ipam */
	bool has_ipam;
	const char *agent_socket;	 /* NULL: no agent registration */
	const char *agent_queue_dir;	 /* where DELs wait while the agent is down */
	int agent_timeout_ms;		 /* connect + reply budget */
	struct json_object *dns;	 /* borrowed from root, or NULL */
	struct json_object *prev_result; /* borrowed from root, or NULL */
	struct cni_attachment *valid;	 /* GC: owned array */
	size_t n_valid;
	bool has_valid; /* GC: the list was given (an empty list means "release everything") */
};

#define CNI_VERSION(maj, min, pat) (((unsigned)(maj) << 16) | ((unsigned)(min) << 8) | (pat))
#define CNI_PLUGIN_TYPE		   "sluice-cni"
#define CNI_DEFAULT_DATA_DIR	   "/var/lib/cni/sluice"

/* Records code/msg/details in e (if e has no error yet) and returns -1. */
int cni_error_set(struct cni_error *e, int code, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Appends the spec's error object for e to out. version may be NULL ("1.1.0" then). */
void cni_error_json(const struct cni_error *e, const char *version, struct sl_buf *out);

/*
 * Parses "1.0.0" style versions; returns 0 and sets *out, or -EINVAL. Accepts only the
 * versions this plugin supports when supported_only is true.
 */
int cni_version_parse(const char *s, unsigned *out, bool supported_only);

/* The versions this plugin speaks, NULL-terminated, oldest first. */
extern const char *const cni_supported_versions[];

/*
 * Reads the CNI_* variables through get (getenv in main.c) and validates them for the
 * command, like libcni's skel: names missing or malformed variables in e (code 4).
 * Returns 0 or -1.
 */
int cni_env_parse(struct cni_env *env, const char *(*get)(const char *name), struct cni_error *e);

/*
 * Parses a network config for cmd. Returns a config the caller frees with cni_conf_free(),
 * or NULL with e filled (6 undecodable, 7 invalid, 1 version, 2 unsupported field).
 * Never crashes on any input (fuzzed by tests/fuzz/fuzz_cni_config.c).
 */
struct cni_conf *cni_conf_parse(const char *buf, size_t len, enum cni_cmd cmd, struct cni_error *e);
void cni_conf_free(struct cni_conf *c);

/* Parses "a.b.c.d/len" into host-order address and prefix; 0 or -EINVAL. */
int cni_cidr_parse(const char *s, uint32_t *addr, int *prefix);
int cni_ip_parse(const char *s, uint32_t *addr);
/* Formats a host-order address into buf (>= 16 bytes); returns buf. */
const char *cni_ip_str(uint32_t addr, char *buf);

/*
 * The host-side veth name for (containerID, ifname): "sl" + 12 hex digits of a 64-bit FNV-1a
 * hash, so a retried ADD, DEL or GC finds the same name without any stored state.
 */
void cni_host_ifname(const char *container_id, const char *ifname, char out[16]);

/*
 * Runs one plugin invocation: get reads the CNI_* variables (getenv in main.c), stdin_buf is
 * the config text. On success returns 0 with the result (empty for DEL, GC, STATUS) in out;
 * on failure returns -1 with the spec's error object in out. The caller prints out and exits
 * 0 or 1. It setns()es the calling thread temporarily, so run one invocation per thread.
 */
int cni_plugin_run(const char *(*get)(const char *name), const char *stdin_buf, size_t len,
		   struct sl_buf *out);

#endif
