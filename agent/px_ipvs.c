// SPDX-License-Identifier: Apache-2.0
/*
 * kube-proxy's IPVS mode (agent/px_ipvs.h): virtual and real servers over
 * generic netlink (libnl-genl), the kube-ipvs0 dummy interface and its
 * addresses (libnl-route), kube-proxy's ipsets (`ipset -exist restore`) and
 * its fixed iptables rules (`iptables-restore --noflush`).
 *
 * Every sync compares with what the kernel holds (a dump of the virtual
 * servers and of each one's real servers, the addresses of kube-ipvs0) and
 * sends only the difference, like kube-proxy's syncService/syncEndpoint; the
 * ipsets are diffed against what the last sync wrote (a full sync flushes
 * and rewrites them).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#if __has_include(<linux/ip_vs.h>)
#include <linux/ip_vs.h>
#else
/* include/uapi/linux/ip_vs.h, the parts used here (stable ABI). */
#define IP_VS_SVC_F_PERSISTENT 0x0001
#define IP_VS_CONN_F_MASQ      0x0000
#define IPVS_GENL_NAME	       "IPVS"
#define IPVS_GENL_VERSION      0x1
struct ip_vs_flags {
	__u32 flags;
	__u32 mask;
};
enum {
	IPVS_CMD_UNSPEC = 0,
	IPVS_CMD_NEW_SERVICE,
	IPVS_CMD_SET_SERVICE,
	IPVS_CMD_DEL_SERVICE,
	IPVS_CMD_GET_SERVICE,
	IPVS_CMD_NEW_DEST,
	IPVS_CMD_SET_DEST,
	IPVS_CMD_DEL_DEST,
	IPVS_CMD_GET_DEST,
	IPVS_CMD_NEW_DAEMON,
	IPVS_CMD_DEL_DAEMON,
	IPVS_CMD_GET_DAEMON,
	IPVS_CMD_SET_CONFIG,
	IPVS_CMD_GET_CONFIG,
	IPVS_CMD_SET_INFO,
	IPVS_CMD_GET_INFO,
	IPVS_CMD_ZERO,
	IPVS_CMD_FLUSH,
};
enum {
	IPVS_CMD_ATTR_UNSPEC = 0,
	IPVS_CMD_ATTR_SERVICE,
	IPVS_CMD_ATTR_DEST,
	IPVS_CMD_ATTR_DAEMON,
	IPVS_CMD_ATTR_TIMEOUT_TCP,
	IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
	IPVS_CMD_ATTR_TIMEOUT_UDP,
	__IPVS_CMD_ATTR_MAX,
};
#define IPVS_CMD_ATTR_MAX      (__IPVS_CMD_ATTR_MAX - 1)
enum {
	IPVS_SVC_ATTR_UNSPEC = 0,
	IPVS_SVC_ATTR_AF,
	IPVS_SVC_ATTR_PROTOCOL,
	IPVS_SVC_ATTR_ADDR,
	IPVS_SVC_ATTR_PORT,
	IPVS_SVC_ATTR_FWMARK,
	IPVS_SVC_ATTR_SCHED_NAME,
	IPVS_SVC_ATTR_FLAGS,
	IPVS_SVC_ATTR_TIMEOUT,
	IPVS_SVC_ATTR_NETMASK,
	IPVS_SVC_ATTR_STATS,
	IPVS_SVC_ATTR_PE_NAME,
	IPVS_SVC_ATTR_STATS64,
	__IPVS_SVC_ATTR_MAX,
};
#define IPVS_SVC_ATTR_MAX      (__IPVS_SVC_ATTR_MAX - 1)
enum {
	IPVS_DEST_ATTR_UNSPEC = 0,
	IPVS_DEST_ATTR_ADDR,
	IPVS_DEST_ATTR_PORT,
	IPVS_DEST_ATTR_FWD_METHOD,
	IPVS_DEST_ATTR_WEIGHT,
	IPVS_DEST_ATTR_U_THRESH,
	IPVS_DEST_ATTR_L_THRESH,
	IPVS_DEST_ATTR_ACTIVE_CONNS,
	IPVS_DEST_ATTR_INACT_CONNS,
	IPVS_DEST_ATTR_PERSIST_CONNS,
	IPVS_DEST_ATTR_STATS,
	IPVS_DEST_ATTR_ADDR_FAMILY,
	__IPVS_DEST_ATTR_MAX,
};
#define IPVS_DEST_ATTR_MAX     (__IPVS_DEST_ATTR_MAX - 1)
#endif

#include "exec.h"
#include "lbinc.h"
#include "model.h"
#include "px_ipvs.h"
#include "sluice/log.h"

#define PX "ipvs"

/* The address attributes are a union nf_inet_addr: 16 bytes, IPv4 first. */
#define IPVS_ADDR_LEN 16

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_TCP	   ? "tcp"
	       : p == IPPROTO_UDP  ? "udp"
	       : p == IPPROTO_SCTP ? "sctp"
				   : "?";
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* libnl's error codes back to errno, for the ones that mean something here. */
static int nle_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case 0:
		return 0;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOADDR:
		return -EADDRNOTAVAIL;
	case NLE_INVAL:
	case NLE_RANGE:
		return -EINVAL;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_BUSY:
		return -EBUSY;
	default:
		return -EIO;
	}
}

/* Whether an executable named name is on PATH. */
static bool on_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[512];

	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		if (n && n < sizeof(buf) - strlen(name) - 2) {
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
			if (!access(buf, X_OK))
				return true;
		}
		path += n + (path[n] == ':');
	}
	return false;
}

/* Whether /proc/modules lists module name; -1 when /proc/modules is absent. */
static int module_loaded(const char *name)
{
	FILE *f = fopen("/proc/modules", "re");
	char line[256];
	size_t n = strlen(name);
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, name, n) && line[n] == ' ';
	fclose(f);
	return found;
}

/* Whether the running kernel ships an ip_vs module that could be loaded. */
static bool module_shipped(void)
{
	static const char *const sfx[] = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};
	struct utsname u;
	char p[256];
	struct stat st;

	if (uname(&u))
		return false;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "/lib/modules/%s/kernel/net/netfilter/ipvs/ip_vs%s",
			 u.release, sfx[i]);
		if (!stat(p, &st))
			return true;
	}
	return false;
}

/* Resolves the IPVS genl family on a fresh socket; the socket in *out when it does. */
static int ipvs_genl_open(struct nl_sock **out, int *family)
{
	struct nl_sock *s = nl_socket_alloc();
	int rc;

	if (!s)
		return -ENOMEM;
	rc = genl_connect(s);
	if (rc < 0) {
		nl_socket_free(s);
		return nle_errno(rc);
	}
	rc = genl_ctrl_resolve(s, IPVS_GENL_NAME);
	if (rc < 0) {
		nl_socket_free(s);
		return nle_errno(rc) == -ENOENT ? -EOPNOTSUPP : nle_errno(rc);
	}
	*family = rc;
	if (out)
		*out = s;
	else
		nl_socket_free(s);
	return 0;
}

int pxy_ipvs_probe(char *why, size_t len)
{
	int family, rc = ipvs_genl_open(NULL, &family), mod;
	bool proc;

	if (!rc) {
		/* IPVS is there; kube-proxy's IPVS mode also needs the ipset tool. */
		if (!on_path("ipset")) {
			snprintf(
				why, len,
				"the ipset tool is not installed (kube-proxy's IPVS mode keeps its "
				"service addresses in ipsets); install the ipset package");
			return -ENOENT;
		}
		if (len)
			why[0] = '\0';
		return 0;
	}
	if (rc != -EOPNOTSUPP) {
		snprintf(why, len, "cannot query generic netlink for the IPVS family: %s",
			 strerror(-rc));
		return rc;
	}
	proc = !access("/proc/net/ip_vs", F_OK);
	mod = module_loaded("ip_vs");
	if (proc || mod == 1) {
		/* Present but not answering: say so rather than guess. */
		snprintf(why, len,
			 "IPVS is not usable: generic netlink family 'IPVS' not found although %s; "
			 "use --dataplane nftables or iptables",
			 proc ? "/proc/net/ip_vs exists" : "/proc/modules lists ip_vs");
	} else {
		snprintf(why, len,
			 "IPVS is not available in this kernel: generic netlink family 'IPVS' not "
			 "found, /proc/net/ip_vs absent and %s (CONFIG_IP_VS unset?); use "
			 "--dataplane nftables or iptables",
			 module_shipped() ? "module ip_vs not loaded (sluice never loads modules: "
					    "run `modprobe ip_vs` yourself)"
			 : mod < 0	  ? "no loadable modules (/proc/modules absent)"
					  : "no ip_vs module for this kernel");
	}
	return -EOPNOTSUPP;
}

/* --- the model -> IPVS ---------------------------------------------------- */

static bool fe_local_ext(const struct lbm_frontend *f)
{
	return f->flags & SL_SVC_F_LOCAL_EXT;
}

/* Frontends this backend renders: owned, EXT scope (see px_ipvs.h on INT). */
static bool fe_rendered(const struct lbm_state *frag, const bool *owned, size_t k)
{
	return (!owned || owned[k]) && frag->frontends[k].key.scope == SL_SCOPE_EXT &&
	       frag->frontends[k].key.proto != 0;
}

void ipvs_vs_of(const struct lbm_state *frag, size_t fe, __be32 addr, struct ipvs_vs *out)
{
	const struct lbm_frontend *f = &frag->frontends[fe];

	memset(out, 0, sizeof(*out));
	out->addr = addr;
	out->port = f->key.port;
	out->proto = f->key.proto;
	snprintf(out->sched, sizeof(out->sched), "%s", IPVS_SCHED_DEFAULT);
	if (f->flags & SL_SVC_F_AFFINITY) {
		/* kube-proxy: FlagPersistent, Timeout = stickyMaxAgeSeconds */
		out->flags = IP_VS_SVC_F_PERSISTENT;
		out->timeout_s = f->affinity_s;
	}
}

int ipvs_dest_weight(const struct lbm_state *frag, size_t fe, const struct ipvs_dest *d)
{
	const struct lbm_frontend *f = &frag->frontends[fe];

	for (uint32_t i = 0; i < f->count; i++) {
		const struct lbm_backend *b = &frag->backends[f->be[i]];

		if (b->addr == d->addr && b->port == d->port && b->proto == f->key.proto)
			return 1;
	}
	if (d->active || d->inactive)
		return 0;
	for (size_t i = 0; i < frag->n_backends; i++) {
		const struct lbm_backend *b = &frag->backends[i];

		if (b->addr == d->addr && b->port == d->port && b->proto == f->key.proto &&
		    b->state == SL_BE_TERMINATING)
			return 0;
	}
	return -1;
}

static int put_svc_attrs(struct nl_msg *m, const struct ipvs_vs *vs, bool full)
{
	struct nlattr *n = nla_nest_start(m, IPVS_CMD_ATTR_SERVICE);
	uint8_t addr[IPVS_ADDR_LEN] = {0};

	if (!n)
		return -ENOMEM;
	memcpy(addr, &vs->addr, sizeof(vs->addr));
	if (nla_put_u16(m, IPVS_SVC_ATTR_AF, AF_INET) ||
	    nla_put_u16(m, IPVS_SVC_ATTR_PROTOCOL, vs->proto) ||
	    nla_put(m, IPVS_SVC_ATTR_ADDR, sizeof(addr), addr) ||
	    nla_put_u16(m, IPVS_SVC_ATTR_PORT, vs->port))
		return -ENOMEM;
	if (full) {
		/* The kernel wants all four on NEW/SET (ip_vs_genl_parse_service). */
		struct ip_vs_flags fl = {.flags = vs->flags, .mask = ~0U};

		if (nla_put_string(m, IPVS_SVC_ATTR_SCHED_NAME, vs->sched) ||
		    nla_put(m, IPVS_SVC_ATTR_FLAGS, sizeof(fl), &fl) ||
		    nla_put_u32(m, IPVS_SVC_ATTR_TIMEOUT, vs->timeout_s) ||
		    nla_put_u32(m, IPVS_SVC_ATTR_NETMASK, 0xffffffffU))
			return -ENOMEM;
	}
	nla_nest_end(m, n);
	return 0;
}

static int put_hdr(struct nl_msg *m, int family, uint8_t cmd, int flags)
{
	if (family <= 0)
		return -EINVAL;
	return genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, flags, cmd, IPVS_GENL_VERSION)
		       ? 0
		       : -ENOMEM;
}

int ipvs_msg_service(struct nl_msg *m, int family, uint8_t cmd, const struct ipvs_vs *vs)
{
	int err = put_hdr(m, family, cmd, 0);

	return err ? err
		   : put_svc_attrs(m, vs,
				   cmd == IPVS_CMD_NEW_SERVICE || cmd == IPVS_CMD_SET_SERVICE);
}

int ipvs_msg_dest(struct nl_msg *m, int family, uint8_t cmd, const struct ipvs_vs *vs,
		  const struct ipvs_dest *d)
{
	uint8_t addr[IPVS_ADDR_LEN] = {0};
	struct nlattr *n;
	int err = put_hdr(m, family, cmd, 0);

	if (!err)
		err = put_svc_attrs(m, vs, false);
	if (err)
		return err;
	n = nla_nest_start(m, IPVS_CMD_ATTR_DEST);
	if (!n)
		return -ENOMEM;
	memcpy(addr, &d->addr, sizeof(d->addr));
	if (nla_put(m, IPVS_DEST_ATTR_ADDR, sizeof(addr), addr) ||
	    nla_put_u16(m, IPVS_DEST_ATTR_PORT, d->port) ||
	    nla_put_u16(m, IPVS_DEST_ATTR_ADDR_FAMILY, AF_INET))
		return -ENOMEM;
	if (cmd != IPVS_CMD_DEL_DEST &&
	    (nla_put_u32(m, IPVS_DEST_ATTR_FWD_METHOD, IP_VS_CONN_F_MASQ) ||
	     nla_put_u32(m, IPVS_DEST_ATTR_WEIGHT, d->weight) ||
	     nla_put_u32(m, IPVS_DEST_ATTR_U_THRESH, 0) ||
	     nla_put_u32(m, IPVS_DEST_ATTR_L_THRESH, 0)))
		return -ENOMEM;
	nla_nest_end(m, n);
	return 0;
}

/* --- kube-ipvs0 ------------------------------------------------------------- */

static int push_addr(__be32 **a, size_t *n, __be32 v)
{
	__be32 *p = realloc(*a, (*n + 1) * sizeof(**a));

	if (!p)
		return -ENOMEM;
	p[(*n)++] = v;
	*a = p;
	return 0;
}

int ipvs_bind_addrs(const struct lbm_state *frag, const bool *owned, __be32 **addrs, size_t *n)
{
	for (size_t k = 0; k < frag->n_frontends; k++) {
		const struct lbm_frontend *f = &frag->frontends[k];

		if (!fe_rendered(frag, owned, k) || !f->key.addr || (f->flags & SL_SVC_F_NODEPORT))
			continue;
		if (push_addr(addrs, n, f->key.addr))
			return -ENOMEM;
	}
	return 0;
}

static int link_index(struct nl_sock *rt, const char *name)
{
	struct rtnl_link *l = NULL;
	int rc = rtnl_link_get_kernel(rt, 0, name, &l), idx;

	if (rc < 0)
		return nle_errno(rc) == -ENOENT ? -ENODEV : nle_errno(rc);
	idx = rtnl_link_get_ifindex(l);
	rtnl_link_put(l);
	return idx;
}

int ipvs_dummy_ensure(struct nl_sock *rt, int *ifindex)
{
	struct rtnl_link *l;
	int rc = link_index(rt, IPVS_DUMMY_DEV);

	if (rc > 0) {
		*ifindex = rc;
		return 0;
	}
	if (rc != -ENODEV)
		return rc < 0 ? rc : -ENODEV; /* 0 is no ifindex: they start at 1 */
	l = rtnl_link_alloc();
	if (!l)
		return -ENOMEM;
	rtnl_link_set_name(l, IPVS_DUMMY_DEV);
	rc = rtnl_link_set_type(l, "dummy");
	if (!rc)
		rc = rtnl_link_add(rt, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(l);
	if (rc < 0) {
		rc = nle_errno(rc);
		pr_err(PX, "interface '%s': creating the dummy device failed: %s%s", IPVS_DUMMY_DEV,
		       strerror(-rc), rc == -EOPNOTSUPP ? " (kernel without CONFIG_DUMMY)" : "");
		return rc;
	}
	rc = link_index(rt, IPVS_DUMMY_DEV);
	if (rc <= 0)
		return rc < 0 ? rc : -ENODEV;
	*ifindex = rc;
	return 0;
}

/* The IPv4 addresses of ifindex, as a malloc'd array. */
static int link_addrs(struct nl_sock *rt, int ifindex, __be32 **out, size_t *n)
{
	struct nl_cache *c = NULL;
	int rc = rtnl_addr_alloc_cache(rt, &c);

	*out = NULL;
	*n = 0;
	if (rc < 0)
		return nle_errno(rc);
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *loc = rtnl_addr_get_local(a);
		__be32 v;

		if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != AF_INET ||
		    !loc || nl_addr_get_len(loc) != 4)
			continue;
		memcpy(&v, nl_addr_get_binary_addr(loc), 4);
		if (push_addr(out, n, v)) {
			rc = -ENOMEM;
			break;
		}
	}
	nl_cache_free(c);
	if (rc < 0) {
		/* callers own *out only on success */
		free(*out);
		*out = NULL;
		*n = 0;
		return rc;
	}
	return 0;
}

static int addr_op(struct nl_sock *rt, int ifindex, __be32 v, bool add)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *loc = nl_addr_build(AF_INET, &v, 4);
	int rc = -ENOMEM;

	if (a && loc) {
		nl_addr_set_prefixlen(loc, 32);
		rtnl_addr_set_ifindex(a, ifindex);
		rtnl_addr_set_family(a, AF_INET);
		rtnl_addr_set_prefixlen(a, 32);
		rc = rtnl_addr_set_local(a, loc);
		if (!rc)
			rc = add ? rtnl_addr_add(rt, a, 0) : rtnl_addr_delete(rt, a, 0);
		rc = nle_errno(rc);
		if (add && rc == -EEXIST)
			rc = 0;
		if (!add && (rc == -EADDRNOTAVAIL || rc == -ENOENT))
			rc = 0;
	}
	nl_addr_put(loc);
	rtnl_addr_put(a);
	return rc;
}

static int cmp_addr(const void *a, const void *b)
{
	uint32_t x = ntohl(*(const __be32 *)a), y = ntohl(*(const __be32 *)b);

	return x < y ? -1 : x > y;
}

/* Sorts a[n] and drops duplicates (so lookups and merges are O(log n) / O(n));
 * returns the new count (by value: the analyzer then keeps count and array together). */
static size_t sort_addrs(__be32 *a, size_t n)
{
	size_t o = 0;

	if (!a || !n)
		return 0;
	qsort(a, n, sizeof(*a), cmp_addr);
	for (size_t i = 0; i < n; i++)
		if (!o || a[o - 1] != a[i])
			a[o++] = a[i];
	return o;
}

/* In a sorted array. */
static bool has_addr(const __be32 *a, size_t n, __be32 v)
{
	return a && n && bsearch(&v, a, n, sizeof(v), cmp_addr);
}

int ipvs_dummy_sync(struct nl_sock *rt, int ifindex, const __be32 *want, size_t n, size_t *changed)
{
	__be32 *have, *w = n ? malloc(n * sizeof(*w)) : NULL;
	size_t nh, nw = n, i = 0, j = 0;
	char s[INET_ADDRSTRLEN];
	int rc, err = 0;

	*changed = 0;
	if (n && !want) {
		free(w);
		return -EINVAL;
	}
	if (n && !w)
		return -ENOMEM;
	rc = link_addrs(rt, ifindex, &have, &nh);
	if (rc) {
		free(w);
		return rc;
	}
	if (w)
		memcpy(w, want, n * sizeof(*w));
	nw = w ? sort_addrs(w, nw) : 0;
	nh = have ? sort_addrs(have, nh) : 0;
	/* both sorted: bind what only w has, unbind what only have has */
	while (i < nw || j < nh) {
		int c = i == nw ? 1 : j == nh ? -1 : cmp_addr(&w[i], &have[j]);
		__be32 a = c < 0 ? w[i] : have[j];

		if (!c) {
			i++, j++;
			continue;
		}
		c < 0 ? i++ : j++;
		rc = addr_op(rt, ifindex, a, c < 0);
		if (rc) {
			pr_err(PX, "interface '%s': %s %s/32 failed: %s", IPVS_DUMMY_DEV,
			       c < 0 ? "binding" : "unbinding",
			       inet_ntop(AF_INET, &a, s, sizeof(s)), strerror(-rc));
			err = err ? err : rc;
		} else {
			(*changed)++;
		}
	}
	free(w);
	free(have);
	return err;
}

int ipvs_dummy_delete(struct nl_sock *rt)
{
	struct rtnl_link *l;
	int rc = link_index(rt, IPVS_DUMMY_DEV);

	if (rc == -ENODEV)
		return 1;
	if (rc < 0)
		return rc;
	l = rtnl_link_alloc();
	if (!l)
		return -ENOMEM;
	rtnl_link_set_ifindex(l, rc);
	rc = nle_errno(rtnl_link_delete(rt, l));
	rtnl_link_put(l);
	return rc;
}

/* --- ipsets ----------------------------------------------------------------- */

enum set_type { ST_IP_PORT, ST_IP_PORT_IP, ST_PORT, ST_IP };

static const struct {
	const char *name;
	enum set_type type;
	const char *comment;
} sets[IPVS_SET_N] = {
	/* kube-proxy's names and comments, pkg/proxy/ipvs/ipset.go */
	[IPVS_SET_LOOP_BACK] = {"KUBE-LOOP-BACK", ST_IP_PORT_IP,
				"Kubernetes endpoints dst ip:port, source ip for solving hairpin "
				"purpose"},
	[IPVS_SET_CLUSTER_IP] = {"KUBE-CLUSTER-IP", ST_IP_PORT,
				 "Kubernetes service cluster ip + port for masquerade purpose"},
	[IPVS_SET_EXTERNAL_IP] = {"KUBE-EXTERNAL-IP", ST_IP_PORT,
				  "Kubernetes service external ip + port for masquerade and "
				  "filter purpose"},
	[IPVS_SET_EXTERNAL_IP_LOCAL] = {"KUBE-EXTERNAL-IP-LOCAL", ST_IP_PORT,
					"Kubernetes service external ip + port with "
					"externalTrafficPolicy=local"},
	[IPVS_SET_LOAD_BALANCER] = {"KUBE-LOAD-BALANCER", ST_IP_PORT,
				    "Kubernetes service lb portal"},
	[IPVS_SET_LOAD_BALANCER_LOCAL] = {"KUBE-LOAD-BALANCER-LOCAL", ST_IP_PORT,
					  "Kubernetes service load balancer ip + port with "
					  "externalTrafficPolicy=local"},
	[IPVS_SET_NODE_PORT_TCP] = {"KUBE-NODE-PORT-TCP", ST_PORT,
				    "Kubernetes nodeport TCP port for masquerade purpose"},
	[IPVS_SET_NODE_PORT_LOCAL_TCP] = {"KUBE-NODE-PORT-LOCAL-TCP", ST_PORT,
					  "Kubernetes nodeport TCP port with "
					  "externalTrafficPolicy=local"},
	[IPVS_SET_NODE_PORT_UDP] = {"KUBE-NODE-PORT-UDP", ST_PORT,
				    "Kubernetes nodeport UDP port for masquerade purpose"},
	[IPVS_SET_NODE_PORT_LOCAL_UDP] = {"KUBE-NODE-PORT-LOCAL-UDP", ST_PORT,
					  "Kubernetes nodeport UDP port with "
					  "externalTrafficPolicy=local"},
	[IPVS_SET_NODE_PORT_SCTP] = {"KUBE-NODE-PORT-SCTP-HASH", ST_IP_PORT,
				     "Kubernetes nodeport SCTP port for masquerade purpose with "
				     "type 'hash ip:port'"},
	[IPVS_SET_NODE_PORT_LOCAL_SCTP] = {"KUBE-NODE-PORT-LOCAL-SCTP-HASH", ST_IP_PORT,
					   "Kubernetes nodeport SCTP port with "
					   "externalTrafficPolicy=local with type 'hash ip:port'"},
	[IPVS_SET_HEALTH_CHECK_NODE_PORT] = {"KUBE-HEALTH-CHECK-NODE-PORT", ST_PORT,
					     "Kubernetes health check node port"},
	[IPVS_SET_IPVS_IPS] = {"KUBE-IPVS-IPS", ST_IP, "IPVS service cluster IPs"},
};

const char *ipvs_set_name(enum ipvs_set s)
{
	return (unsigned)s < IPVS_SET_N ? sets[s].name : NULL;
}

static void set_add(struct ipvs_sets *s, enum ipvs_set k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_add(struct ipvs_sets *s, enum ipvs_set k, const char *fmt, ...)
{
	va_list ap;
	char *e;

	if (s->n[k] == s->cap[k]) {
		size_t cap = s->cap[k] ? 2 * s->cap[k] : 16;
		char **p = realloc(s->e[k], cap * sizeof(*p));

		if (!p) {
			s->oom = true;
			return;
		}
		s->e[k] = p;
		s->cap[k] = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&e, fmt, ap) < 0) {
		s->oom = true;
		e = NULL;
	}
	va_end(ap);
	if (e)
		s->e[k][s->n[k]++] = e;
}

/* "ip,proto:port" */
static void add_ip_port(struct ipvs_sets *s, enum ipvs_set k, __be32 a, __be16 port, uint8_t p)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	set_add(s, k, "%s,%s:%u", ip, proto_name(p), ntohs(port));
}

void ipvs_sets_add(struct ipvs_sets *s, const struct lbm_state *frag, const bool *owned,
		   const __be32 *node_addrs, size_t n_node_addrs)
{
	for (size_t k = 0; k < frag->n_frontends; k++) {
		const struct lbm_frontend *f = &frag->frontends[k];
		uint8_t p = f->key.proto;
		char ip[INET_ADDRSTRLEN];

		if (!fe_rendered(frag, owned, k))
			continue;
		if (f->flags & SL_SVC_F_CLUSTERIP) {
			add_ip_port(s, IPVS_SET_CLUSTER_IP, f->key.addr, f->key.port, p);
		} else if (f->flags & SL_SVC_F_EXTERNALIP) {
			add_ip_port(s,
				    fe_local_ext(f) ? IPVS_SET_EXTERNAL_IP_LOCAL
						    : IPVS_SET_EXTERNAL_IP,
				    f->key.addr, f->key.port, p);
		} else if (f->flags & SL_SVC_F_LOADBALANCER) {
			add_ip_port(s, IPVS_SET_LOAD_BALANCER, f->key.addr, f->key.port, p);
			if (fe_local_ext(f))
				add_ip_port(s, IPVS_SET_LOAD_BALANCER_LOCAL, f->key.addr,
					    f->key.port, p);
		} else if (f->flags & SL_SVC_F_NODEPORT) {
			if (p == IPPROTO_SCTP) {
				/* bitmap:port has no protocol: SCTP is per node address */
				for (size_t i = 0; i < n_node_addrs; i++) {
					add_ip_port(s, IPVS_SET_NODE_PORT_SCTP, node_addrs[i],
						    f->key.port, p);
					if (fe_local_ext(f))
						add_ip_port(s, IPVS_SET_NODE_PORT_LOCAL_SCTP,
							    node_addrs[i], f->key.port, p);
				}
			} else {
				bool tcp = p == IPPROTO_TCP;

				set_add(s, tcp ? IPVS_SET_NODE_PORT_TCP : IPVS_SET_NODE_PORT_UDP,
					"%u", ntohs(f->key.port));
				if (fe_local_ext(f))
					set_add(s,
						tcp ? IPVS_SET_NODE_PORT_LOCAL_TCP
						    : IPVS_SET_NODE_PORT_LOCAL_UDP,
						"%u", ntohs(f->key.port));
			}
		}
		if (f->key.addr && !(f->flags & SL_SVC_F_NODEPORT)) {
			inet_ntop(AF_INET, &f->key.addr, ip, sizeof(ip));
			set_add(s, IPVS_SET_IPVS_IPS, "%s", ip);
		}
		/* hairpin: a local endpoint reaching itself through the service */
		for (uint32_t i = 0; i < f->count; i++) {
			const struct lbm_backend *b = &frag->backends[f->be[i]];

			if (!b->local)
				continue;
			inet_ntop(AF_INET, &b->addr, ip, sizeof(ip));
			set_add(s, IPVS_SET_LOOP_BACK, "%s,%s:%u,%s", ip, proto_name(p),
				ntohs(b->port), ip);
		}
	}
	for (size_t i = 0; i < frag->n_services; i++)
		if (frag->services[i].hc_node_port)
			set_add(s, IPVS_SET_HEALTH_CHECK_NODE_PORT, "%u",
				frag->services[i].hc_node_port);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ipvs_sets_finish(struct ipvs_sets *s)
{
	for (int k = 0; k < IPVS_SET_N; k++) {
		size_t o = 0;

		if (!s->n[k])
			continue;
		qsort(s->e[k], s->n[k], sizeof(char *), cmp_str);
		for (size_t i = 0; i < s->n[k]; i++) {
			if (o && !strcmp(s->e[k][o - 1], s->e[k][i]))
				free(s->e[k][i]);
			else
				s->e[k][o++] = s->e[k][i];
		}
		s->n[k] = o;
	}
	return s->oom ? -ENOMEM : 0;
}

void ipvs_sets_fini(struct ipvs_sets *s)
{
	for (int k = 0; k < IPVS_SET_N; k++) {
		for (size_t i = 0; i < s->n[k]; i++)
			free(s->e[k][i]);
		free(s->e[k]);
	}
	memset(s, 0, sizeof(*s));
}

static const char *set_type_name(enum set_type t)
{
	return t == ST_IP_PORT	    ? "hash:ip,port"
	       : t == ST_IP_PORT_IP ? "hash:ip,port,ip"
	       : t == ST_PORT	    ? "bitmap:port"
				    : "hash:ip";
}

int ipvs_render_ipset(const struct ipvs_sets *prev, const struct ipvs_sets *next,
		      struct sl_buf *out)
{
	for (int k = 0; k < IPVS_SET_N; k++) {
		size_t i = 0, j = 0, np = prev ? prev->n[k] : 0;

		if (sets[k].type == ST_PORT)
			sl_buf_printf(out, "create %s bitmap:port range 0-65535 comment\n",
				      sets[k].name);
		else
			sl_buf_printf(out,
				      "create %s %s family inet hashsize 1024 maxelem 65536 "
				      "comment\n",
				      sets[k].name, set_type_name(sets[k].type));
		if (!prev)
			sl_buf_printf(out, "flush %s\n", sets[k].name);
		/* both sorted: a merge gives the difference */
		while (i < np || j < next->n[k]) {
			int c = i == np		  ? 1
				: j == next->n[k] ? -1
						  : strcmp(prev->e[k][i], next->e[k][j]);

			if (c < 0)
				sl_buf_printf(out, "del %s %s\n", sets[k].name, prev->e[k][i++]);
			else if (c > 0)
				sl_buf_printf(out, "add %s %s\n", sets[k].name, next->e[k][j++]);
			else
				i++, j++;
		}
	}
	return out->oom ? -ENOMEM : 0;
}

/* --- iptables --------------------------------------------------------------- */

/* kube-proxy's ipsetWithIptablesChain, minus the source-range sets (not modelled). */
static const struct {
	enum ipvs_set set;
	const char *from, *to, *match, *proto;
} set_rules[] = {
	{IPVS_SET_LOOP_BACK, "KUBE-POSTROUTING", "MASQUERADE", "dst,dst,src", NULL},
	{IPVS_SET_LOAD_BALANCER, "KUBE-SERVICES", "KUBE-LOAD-BALANCER", "dst,dst", NULL},
	{IPVS_SET_LOAD_BALANCER_LOCAL, "KUBE-LOAD-BALANCER", "RETURN", "dst,dst", NULL},
	{IPVS_SET_NODE_PORT_LOCAL_TCP, "KUBE-NODE-PORT", "RETURN", "dst", "tcp"},
	{IPVS_SET_NODE_PORT_TCP, "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst", "tcp"},
	{IPVS_SET_NODE_PORT_LOCAL_UDP, "KUBE-NODE-PORT", "RETURN", "dst", "udp"},
	{IPVS_SET_NODE_PORT_UDP, "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst", "udp"},
	{IPVS_SET_NODE_PORT_LOCAL_SCTP, "KUBE-NODE-PORT", "RETURN", "dst,dst", "sctp"},
	{IPVS_SET_NODE_PORT_SCTP, "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst,dst", "sctp"},
};

static void ext_ip_rules(struct sl_buf *b, enum ipvs_set k)
{
	static const char *const tails[] = {
		/* traffic from off the machine (not a bridge port, not a local source) */
		"-m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT",
		/* external IPs the node owns stay local */
		"-m addrtype --dst-type LOCAL -j ACCEPT",
	};

	for (int i = 0; i < 2; i++)
		sl_buf_printf(b,
			      "-A KUBE-SERVICES -m comment --comment \"%s\" -m set --match-set %s "
			      "dst,dst %s\n",
			      sets[k].comment, sets[k].name, tails[i]);
}

int ipvs_render_iptables(const struct pxy_cfg *cfg, const struct ipvs_sets *s, struct sl_buf *b)
{
	unsigned bit = cfg->masq_bit ? cfg->masq_bit : 14;
	char mark[16];

	if (bit > 31)
		return -EINVAL;
	snprintf(mark, sizeof(mark), "0x%x", 1U << bit);
	sl_buf_puts(b, "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
		       ":KUBE-NODE-PORT - [0:0]\n:KUBE-LOAD-BALANCER - [0:0]\n"
		       ":KUBE-MARK-MASQ - [0:0]\n");
	for (size_t i = 0; i < sizeof(set_rules) / sizeof(set_rules[0]); i++) {
		enum ipvs_set k = set_rules[i].set;

		if (!s->n[k])
			continue;
		sl_buf_printf(b, "-A %s -m comment --comment \"%s\"", set_rules[i].from,
			      sets[k].comment);
		if (set_rules[i].proto)
			sl_buf_printf(b, " -p %s", set_rules[i].proto);
		sl_buf_printf(b, " -m set --match-set %s %s -j %s\n", sets[k].name,
			      set_rules[i].match, set_rules[i].to);
	}
	if (s->n[IPVS_SET_CLUSTER_IP] && (cfg->masquerade_all || cfg->cluster_cidr)) {
		sl_buf_printf(b,
			      "-A KUBE-SERVICES -m comment --comment \"%s\" -m set --match-set %s "
			      "dst,dst",
			      sets[IPVS_SET_CLUSTER_IP].comment, sets[IPVS_SET_CLUSTER_IP].name);
		if (!cfg->masquerade_all)
			sl_buf_printf(b, " ! -s %s", cfg->cluster_cidr);
		sl_buf_puts(b, " -j KUBE-MARK-MASQ\n");
	}
	if (s->n[IPVS_SET_EXTERNAL_IP]) {
		sl_buf_printf(b,
			      "-A KUBE-SERVICES -m comment --comment \"%s\" -m set --match-set %s "
			      "dst,dst -j KUBE-MARK-MASQ\n",
			      sets[IPVS_SET_EXTERNAL_IP].comment, sets[IPVS_SET_EXTERNAL_IP].name);
		ext_ip_rules(b, IPVS_SET_EXTERNAL_IP);
	}
	if (s->n[IPVS_SET_EXTERNAL_IP_LOCAL])
		ext_ip_rules(b, IPVS_SET_EXTERNAL_IP_LOCAL);
	sl_buf_puts(b, "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT\n"
		       "-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ\n");
	/* acceptIPVSTraffic: nothing later in nat may undo IPVS's own decision */
	if (s->n[IPVS_SET_CLUSTER_IP])
		sl_buf_puts(b, "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j "
			       "ACCEPT\n");
	if (s->n[IPVS_SET_LOAD_BALANCER])
		sl_buf_puts(b, "-A KUBE-SERVICES -m set --match-set KUBE-LOAD-BALANCER dst,dst -j "
			       "ACCEPT\n");
	sl_buf_printf(b,
		      "-A KUBE-POSTROUTING -m mark ! --mark %s/%s -j RETURN\n"
		      "-A KUBE-POSTROUTING -j MARK --xor-mark %s\n"
		      "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic "
		      "requiring SNAT\" -j MASQUERADE --random-fully\n"
		      "-A KUBE-MARK-MASQ -j MARK --or-mark %s\nCOMMIT\n",
		      mark, mark, mark, mark);
	sl_buf_printf(
		b,
		"*filter\n:KUBE-FORWARD - [0:0]\n:KUBE-NODE-PORT - [0:0]\n"
		":KUBE-IPVS-FILTER - [0:0]\n"
		"-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark "
		"--mark %s/%s -j ACCEPT\n"
		"-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack "
		"rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
		"-A KUBE-NODE-PORT -m comment --comment \"%s\" -m set --match-set %s dst -j "
		"ACCEPT\n",
		mark, mark, sets[IPVS_SET_HEALTH_CHECK_NODE_PORT].comment,
		sets[IPVS_SET_HEALTH_CHECK_NODE_PORT].name);
	/* kubernetes/kubernetes#72236: a VIP must not reach the node's own ports */
	sl_buf_puts(b,
		    "-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN\n"
		    "-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN\n"
		    "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN\n"
		    "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j "
		    "RETURN\n"
		    "-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j "
		    "RETURN\n"
		    "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set "
		    "KUBE-IPVS-IPS dst -j REJECT\nCOMMIT\n");
	return b->oom ? -ENOMEM : 0;
}

/* The jumps from the built-in chains, ensured one by one as kube-proxy does. */
static const struct {
	const char *table, *chain, *comment, *target;
} jumps[] = {
	{"nat", "OUTPUT", "kubernetes service portals", "KUBE-SERVICES"},
	{"nat", "PREROUTING", "kubernetes service portals", "KUBE-SERVICES"},
	{"nat", "POSTROUTING", "kubernetes postrouting rules", "KUBE-POSTROUTING"},
	{"filter", "FORWARD", "kubernetes forwarding rules", "KUBE-FORWARD"},
	{"filter", "INPUT", "kubernetes health check rules", "KUBE-NODE-PORT"},
	{"filter", "INPUT", "kubernetes ipvs access filter", "KUBE-IPVS-FILTER"},
};

/* Runs argv (argv[0] on PATH) with input on stdin; 0 when it exits 0. The
 * tool's stderr goes to ours unless quiet (as its output always did). */
static int run(char *const argv[], const char *input, size_t len, bool quiet)
{
	struct sl_buf err = SL_BUF_INIT;
	int st = agent_exec((const char *const *)argv, input, input ? len : 0, NULL,
			    quiet ? NULL : &err);

	if (!quiet && err.len)
		fwrite(err.data, 1, err.len, stderr);
	sl_buf_fini(&err);
	if (st < 0)
		return st;
	return st ? -EPROTO : 0;
}

/* "iptables" for "iptables-restore", "iptables-nft" for "iptables-nft-restore". */
static void iptables_bin(const struct pxy_cfg *cfg, char *out, size_t len)
{
	const char *r = cfg->iptables_cmd ? cfg->iptables_cmd : "iptables-restore";
	size_t n = strlen(r);

	if (n > 8 && !strcmp(r + n - 8, "-restore"))
		n -= 8;
	snprintf(out, len, "%.*s", (int)n, r);
}

static int jump_op(const char *bin, size_t i, const char *op)
{
	char *argv[] = {(char *)bin, "-w",
			"-t",	     (char *)jumps[i].table,
			(char *)op,  (char *)jumps[i].chain,
			"-m",	     "comment",
			"--comment", (char *)jumps[i].comment,
			"-j",	     (char *)jumps[i].target,
			NULL,	     NULL};

	if (!strcmp(op, "-I")) {
		/* prepend, as kube-proxy's EnsureRule(Prepend) */
		memmove(&argv[7], &argv[6], 6 * sizeof(char *));
		argv[6] = "1";
	}
	return run(argv, NULL, 0, !strcmp(op, "-C") || !strcmp(op, "-D"));
}

int ipvs_apply_netfilter(const struct pxy_cfg *cfg, const struct ipvs_sets *prev,
			 const struct ipvs_sets *next, bool ensure_jumps)
{
	struct sl_buf b = SL_BUF_INIT;
	char bin[64];
	int rc = ipvs_render_ipset(prev, next, &b);

	if (!rc) {
		char *argv[] = {"ipset", "-exist", "restore", NULL};

		rc = run(argv, b.data, b.len, false);
		if (rc)
			pr_err(PX, "ipset restore of kube-proxy's sets failed: %s",
			       rc == -EPROTO ? "ipset refused the input" : strerror(-rc));
	}
	if (!rc) {
		char *argv[] = {
			(char *)(cfg->iptables_cmd ? cfg->iptables_cmd : "iptables-restore"), "-w",
			"--noflush", NULL};

		sl_buf_reset(&b);
		rc = ipvs_render_iptables(cfg, next, &b);
		if (!rc)
			rc = run(argv, b.data, b.len, false);
		if (rc)
			pr_err(PX, "%s of the KUBE-* chains failed: %s", argv[0],
			       rc == -EPROTO ? "it refused the rules" : strerror(-rc));
	}
	iptables_bin(cfg, bin, sizeof(bin));
	for (size_t i = 0; !rc && ensure_jumps && i < sizeof(jumps) / sizeof(jumps[0]); i++) {
		if (jump_op(bin, i, "-C"))
			rc = jump_op(bin, i, "-I");
		if (rc)
			pr_err(PX, "table %s chain %s: adding the jump to %s failed",
			       jumps[i].table, jumps[i].chain, jumps[i].target);
	}
	sl_buf_fini(&b);
	return rc;
}

/* --- the backend ------------------------------------------------------------ */

struct want_vs {
	struct ipvs_vs vs;
	size_t seq; /* collection order: the first of equal virtual servers wins */
	const struct lbm_state *frag;
	size_t fe;
};

struct pxy {
	struct pxy_cfg cfg;
	char *node_name, *cluster_cidr, *iptables_cmd;
	struct nl_sock *genl;
	int family;
	struct nl_sock *rt;
	__be32 *node_addrs;
	size_t n_node_addrs;
	struct ipvs_sets applied; /* what the last successful sync wrote to the ipsets */
	bool have_applied;
	bool jumps_ok;
	uint64_t *gens; /* fragment gens of the last sync, sorted */
	size_t n_gens;
	struct pxy_stats st;
};

static int genl_do(struct pxy *p, struct nl_msg *m)
{
	int rc = nl_send_auto(p->genl, m);

	if (rc >= 0)
		rc = nl_wait_for_ack(p->genl);
	return rc < 0 ? nle_errno(rc) : 0;
}

static int send_service(struct pxy *p, uint8_t cmd, const struct ipvs_vs *vs)
{
	struct nl_msg *m = nlmsg_alloc();
	int err = m ? ipvs_msg_service(m, p->family, cmd, vs) : -ENOMEM;

	if (!err)
		err = genl_do(p, m);
	nlmsg_free(m);
	return err;
}

static int send_dest(struct pxy *p, uint8_t cmd, const struct ipvs_vs *vs,
		     const struct ipvs_dest *d)
{
	struct nl_msg *m = nlmsg_alloc();
	int err = m ? ipvs_msg_dest(m, p->family, cmd, vs, d) : -ENOMEM;

	if (!err)
		err = genl_do(p, m);
	nlmsg_free(m);
	return err;
}

static struct nla_policy svc_policy[IPVS_SVC_ATTR_MAX + 1] = {
	[IPVS_SVC_ATTR_AF] = {.type = NLA_U16},
	[IPVS_SVC_ATTR_PROTOCOL] = {.type = NLA_U16},
	[IPVS_SVC_ATTR_ADDR] = {.type = NLA_UNSPEC, .maxlen = IPVS_ADDR_LEN},
	[IPVS_SVC_ATTR_PORT] = {.type = NLA_U16},
	[IPVS_SVC_ATTR_FWMARK] = {.type = NLA_U32},
	[IPVS_SVC_ATTR_SCHED_NAME] = {.type = NLA_STRING},
	[IPVS_SVC_ATTR_FLAGS] = {.type = NLA_UNSPEC, .minlen = sizeof(struct ip_vs_flags)},
	[IPVS_SVC_ATTR_TIMEOUT] = {.type = NLA_U32},
	[IPVS_SVC_ATTR_NETMASK] = {.type = NLA_U32},
};

static struct nla_policy dest_policy[IPVS_DEST_ATTR_MAX + 1] = {
	[IPVS_DEST_ATTR_ADDR] = {.type = NLA_UNSPEC, .maxlen = IPVS_ADDR_LEN},
	[IPVS_DEST_ATTR_PORT] = {.type = NLA_U16},
	[IPVS_DEST_ATTR_FWD_METHOD] = {.type = NLA_U32},
	[IPVS_DEST_ATTR_WEIGHT] = {.type = NLA_U32},
	[IPVS_DEST_ATTR_ACTIVE_CONNS] = {.type = NLA_U32},
	[IPVS_DEST_ATTR_INACT_CONNS] = {.type = NLA_U32},
	[IPVS_DEST_ATTR_ADDR_FAMILY] = {.type = NLA_U16},
};

struct dump {
	void *v;
	size_t n, size;
	int err;
};

static void *dump_slot(struct dump *d)
{
	void *p = realloc(d->v, (d->n + 1) * d->size);

	if (!p) {
		d->err = -ENOMEM;
		return NULL;
	}
	d->v = p;
	return (char *)p + d->n++ * d->size;
}

static int on_service(struct nl_msg *m, void *arg)
{
	struct dump *d = arg;
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1], *a[IPVS_SVC_ATTR_MAX + 1];
	struct ipvs_vs *vs;

	if (genlmsg_parse(nlmsg_hdr(m), 0, top, IPVS_CMD_ATTR_MAX, NULL) < 0 ||
	    !top[IPVS_CMD_ATTR_SERVICE] ||
	    nla_parse_nested(a, IPVS_SVC_ATTR_MAX, top[IPVS_CMD_ATTR_SERVICE], svc_policy) < 0)
		return NL_SKIP;
	/* only IPv4 address services: fwmark and IPv6 services are not ours */
	if (!a[IPVS_SVC_ATTR_AF] || nla_get_u16(a[IPVS_SVC_ATTR_AF]) != AF_INET ||
	    !a[IPVS_SVC_ATTR_ADDR] || !a[IPVS_SVC_ATTR_PORT] || !a[IPVS_SVC_ATTR_PROTOCOL])
		return NL_SKIP;
	vs = dump_slot(d);
	if (!vs)
		return NL_STOP;
	memset(vs, 0, sizeof(*vs));
	memcpy(&vs->addr, nla_data(a[IPVS_SVC_ATTR_ADDR]), 4);
	vs->port = nla_get_u16(a[IPVS_SVC_ATTR_PORT]);
	vs->proto = (uint8_t)nla_get_u16(a[IPVS_SVC_ATTR_PROTOCOL]);
	if (a[IPVS_SVC_ATTR_SCHED_NAME])
		snprintf(vs->sched, sizeof(vs->sched), "%s",
			 nla_get_string(a[IPVS_SVC_ATTR_SCHED_NAME]));
	if (a[IPVS_SVC_ATTR_FLAGS]) {
		struct ip_vs_flags fl;

		memcpy(&fl, nla_data(a[IPVS_SVC_ATTR_FLAGS]), sizeof(fl));
		vs->flags = fl.flags & IP_VS_SVC_F_PERSISTENT;
	}
	if (a[IPVS_SVC_ATTR_TIMEOUT] && vs->flags)
		vs->timeout_s = nla_get_u32(a[IPVS_SVC_ATTR_TIMEOUT]);
	return NL_OK;
}

static int on_dest(struct nl_msg *m, void *arg)
{
	struct dump *d = arg;
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1], *a[IPVS_DEST_ATTR_MAX + 1];
	struct ipvs_dest *e;

	if (genlmsg_parse(nlmsg_hdr(m), 0, top, IPVS_CMD_ATTR_MAX, NULL) < 0 ||
	    !top[IPVS_CMD_ATTR_DEST] ||
	    nla_parse_nested(a, IPVS_DEST_ATTR_MAX, top[IPVS_CMD_ATTR_DEST], dest_policy) < 0 ||
	    !a[IPVS_DEST_ATTR_ADDR] || !a[IPVS_DEST_ATTR_PORT])
		return NL_SKIP;
	e = dump_slot(d);
	if (!e)
		return NL_STOP;
	memset(e, 0, sizeof(*e));
	memcpy(&e->addr, nla_data(a[IPVS_DEST_ATTR_ADDR]), 4);
	e->port = nla_get_u16(a[IPVS_DEST_ATTR_PORT]);
	if (a[IPVS_DEST_ATTR_WEIGHT])
		e->weight = nla_get_u32(a[IPVS_DEST_ATTR_WEIGHT]);
	if (a[IPVS_DEST_ATTR_ACTIVE_CONNS])
		e->active = nla_get_u32(a[IPVS_DEST_ATTR_ACTIVE_CONNS]);
	if (a[IPVS_DEST_ATTR_INACT_CONNS])
		e->inactive = nla_get_u32(a[IPVS_DEST_ATTR_INACT_CONNS]);
	return NL_OK;
}

/* GET_SERVICE (vs NULL) or GET_DEST of vs, as a dump into d. */
static int genl_dump(struct pxy *p, const struct ipvs_vs *vs, struct dump *d)
{
	struct nl_msg *m = nlmsg_alloc();
	uint8_t cmd = vs ? IPVS_CMD_GET_DEST : IPVS_CMD_GET_SERVICE;
	int err;

	if (!m)
		return -ENOMEM;
	err = put_hdr(m, p->family, cmd, NLM_F_DUMP);
	if (!err && vs)
		err = put_svc_attrs(m, vs, false);
	if (!err) {
		/* a callback set of its own: the socket's stays clean for the acks */
		struct nl_cb *sc = nl_socket_get_cb(p->genl), *cb = sc ? nl_cb_clone(sc) : NULL;
		int rc = -NLE_NOMEM;

		nl_cb_put(sc);

		if (cb) {
			nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, vs ? on_dest : on_service, d);
			rc = nl_send_auto(p->genl, m);
			if (rc >= 0)
				rc = nl_recvmsgs(p->genl, cb);
			nl_cb_put(cb);
		}
		err = rc < 0 ? nle_errno(rc) : d->err;
	}
	nlmsg_free(m);
	return err;
}

static int cmp_vs(const void *a, const void *b)
{
	const struct ipvs_vs *x = a, *y = b;
	int c = cmp_addr(&x->addr, &y->addr);

	if (c)
		return c;
	if (x->port != y->port)
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return (x->proto > y->proto) - (x->proto < y->proto);
}

static int cmp_want(const void *a, const void *b)
{
	const struct want_vs *x = a, *y = b;
	int c = cmp_vs(&x->vs, &y->vs);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static void vs_name(const struct ipvs_vs *vs, char *out, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &vs->addr, ip, sizeof(ip));
	snprintf(out, len, "%s:%u/%s", ip, ntohs(vs->port), proto_name(vs->proto));
}

/* syncEndpoint: the real servers of one virtual server. */
static int sync_dests(struct pxy *p, const struct want_vs *w, uint64_t *n_dests)
{
	const struct lbm_frontend *f = &w->frag->frontends[w->fe];
	struct dump d = {.size = sizeof(struct ipvs_dest)};
	struct ipvs_dest *have;
	char name[64];
	int err = genl_dump(p, &w->vs, &d), rc;

	vs_name(&w->vs, name, sizeof(name));
	if (err) {
		pr_err(PX, "virtual server %s: listing real servers failed: %s", name,
		       strerror(-err));
		free(d.v);
		return err;
	}
	have = d.v;
	for (uint32_t i = 0; i < f->count; i++) {
		const struct lbm_backend *b = &w->frag->backends[f->be[i]];
		struct ipvs_dest want = {.addr = b->addr, .port = b->port, .weight = 1};
		size_t j;

		for (j = 0; j < d.n; j++)
			if (have[j].addr == b->addr && have[j].port == b->port)
				break;
		if (j < d.n && have[j].weight == 1)
			continue;
		rc = send_dest(p, j < d.n ? IPVS_CMD_SET_DEST : IPVS_CMD_NEW_DEST, &w->vs, &want);
		if (rc && rc != -EEXIST) {
			char ip[INET_ADDRSTRLEN];

			pr_err(PX, "virtual server %s: adding real server %s:%u failed: %s", name,
			       inet_ntop(AF_INET, &b->addr, ip, sizeof(ip)), ntohs(b->port),
			       strerror(-rc));
			err = err ? err : rc;
		}
	}
	*n_dests += f->count;
	for (size_t j = 0; j < d.n; j++) {
		int wt = ipvs_dest_weight(w->frag, w->fe, &have[j]);

		if (wt == 1 || (wt == 0 && have[j].weight == 0))
			continue;
		if (wt == 0) {
			/* graceful termination: no new connections, existing ones finish */
			have[j].weight = 0;
			rc = send_dest(p, IPVS_CMD_SET_DEST, &w->vs, &have[j]);
			(*n_dests)++;
		} else {
			rc = send_dest(p, IPVS_CMD_DEL_DEST, &w->vs, &have[j]);
		}
		if (rc && rc != -ENOENT) {
			pr_err(PX, "virtual server %s: %s a real server failed: %s", name,
			       wt == 0 ? "draining" : "deleting", strerror(-rc));
			err = err ? err : rc;
		}
	}
	free(d.v);
	return err;
}

struct collect {
	struct pxy *p;
	struct want_vs *w;
	size_t n, cap;
	__be32 *bind;
	size_t n_bind;
	struct ipvs_sets sets;
	uint64_t *gens;
	size_t n_gens;
	size_t changed;
	int err;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int add_want(struct collect *c, const struct lbm_state *frag, size_t fe, __be32 addr)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct want_vs *w = realloc(c->w, cap * sizeof(*w));

		if (!w)
			return -ENOMEM;
		c->w = w;
		c->cap = cap;
	}
	c->w[c->n].seq = c->n;
	c->w[c->n].frag = frag;
	c->w[c->n].fe = fe;
	ipvs_vs_of(frag, fe, addr, &c->w[c->n].vs);
	c->n++;
	return 0;
}

static int on_fragment(const struct lbm_state *frag, const bool *owned, uint64_t gen, void *arg)
{
	struct collect *c = arg;
	uint64_t *g = realloc(c->gens, (c->n_gens + 1) * sizeof(*g));

	if (!g)
		return c->err = -ENOMEM;
	c->gens = g;
	g[c->n_gens++] = gen;
	if (!bsearch(&gen, c->p->gens, c->p->n_gens, sizeof(gen), cmp_u64))
		c->changed++;
	for (size_t k = 0; k < frag->n_frontends; k++) {
		const struct lbm_frontend *f = &frag->frontends[k];

		if (!fe_rendered(frag, owned, k))
			continue;
		if (f->key.addr) {
			if (add_want(c, frag, k, f->key.addr))
				return c->err = -ENOMEM;
			continue;
		}
		/* NodePort: one virtual server per node address, as kube-proxy */
		for (size_t i = 0; i < c->p->n_node_addrs; i++)
			if (add_want(c, frag, k, c->p->node_addrs[i]))
				return c->err = -ENOMEM;
	}
	if (ipvs_bind_addrs(frag, owned, &c->bind, &c->n_bind))
		return c->err = -ENOMEM;
	ipvs_sets_add(&c->sets, frag, owned, c->p->node_addrs, c->p->n_node_addrs);
	return 0;
}

static int ipvs_sync(struct pxy *p, const struct lbi *l, bool full)
{
	struct collect c = {.p = p};
	struct dump have = {.size = sizeof(struct ipvs_vs)};
	__be32 *bound = NULL;
	size_t n_bound = 0, changed;
	uint64_t n_dests = 0;
	double t0 = now_s(), tp = 0, t;
	char name[64];
	int ifindex = 0, err, rc;

	err = lbi_foreach_fragment(l, on_fragment, &c);
	if (!err)
		err = c.err;
	if (!err)
		err = ipvs_sets_finish(&c.sets);
	if (err)
		goto out;

	t = now_s();
	/* 1. kube-ipvs0 and its addresses (the old ones say which services are ours) */
	err = ipvs_dummy_ensure(p->rt, &ifindex);
	if (!err)
		err = link_addrs(p->rt, ifindex, &bound, &n_bound);
	if (!err)
		err = ipvs_dummy_sync(p->rt, ifindex, c.bind, c.n_bind, &changed);
	if (err)
		goto out;

	/* 2. virtual servers and their real servers */
	err = genl_dump(p, NULL, &have);
	if (err) {
		pr_err(PX, "listing the IPVS virtual servers failed: %s", strerror(-err));
		goto out;
	}
	/* both sorted by (addr, port, proto): one merge finds new, changed and legacy */
	qsort(c.w, c.n, sizeof(*c.w), cmp_want);
	if (have.v)
		qsort(have.v, have.n, sizeof(struct ipvs_vs), cmp_vs);
	else
		have.n = 0;
	n_bound = sort_addrs(bound, n_bound);
	c.n_bind = sort_addrs(c.bind, c.n_bind);
	for (size_t i = 0, j = 0; i < c.n || j < have.n;) {
		const struct ipvs_vs *cur = j < have.n ? &((struct ipvs_vs *)have.v)[j] : NULL;
		const struct ipvs_vs *vs = i < c.n ? &c.w[i].vs : NULL;
		int cmp = !vs ? 1 : !cur ? -1 : cmp_vs(vs, cur);

		if (!vs && !cur)
			break; /* not reached (the loop condition); says so to the analyzer */
		if (i && vs && !cmp_vs(vs, &c.w[i - 1].vs)) {
			i++; /* an earlier frontend on the same address keeps it */
			continue;
		}
		if (cmp > 0) {
			/* cleanLegacyService: ours = on kube-ipvs0 (before or now) or on
			 * a node address; anything else belongs to someone else */
			j++;
			if (!has_addr(bound, n_bound, cur->addr) &&
			    !has_addr(c.bind, c.n_bind, cur->addr) &&
			    !has_addr(p->node_addrs, p->n_node_addrs, cur->addr))
				continue;
			rc = send_service(p, IPVS_CMD_DEL_SERVICE, cur);
			if (rc && rc != -ESRCH && rc != -ENOENT) {
				vs_name(cur, name, sizeof(name));
				pr_err(PX, "virtual server %s: deleting failed: %s", name,
				       strerror(-rc));
				err = err ? err : rc;
			}
			continue;
		}
		rc = 0;
		if (cmp < 0)
			rc = send_service(p, IPVS_CMD_NEW_SERVICE, vs);
		else if (strcmp(cur->sched, vs->sched) || cur->flags != vs->flags ||
			 cur->timeout_s != vs->timeout_s)
			rc = send_service(p, IPVS_CMD_SET_SERVICE, vs);
		if (!rc)
			rc = sync_dests(p, &c.w[i], &n_dests);
		if (rc) {
			vs_name(vs, name, sizeof(name));
			pr_err(PX, "virtual server %s: programming failed: %s", name,
			       strerror(-rc));
			err = err ? err : rc;
		}
		i++;
		j += cmp == 0;
	}

	/* 3. ipsets, then the iptables rules that match them */
	rc = ipvs_apply_netfilter(&p->cfg, full || !p->have_applied ? NULL : &p->applied, &c.sets,
				  full || !p->jumps_ok);
	if (!rc) {
		p->jumps_ok = true;
		ipvs_sets_fini(&p->applied);
		p->applied = c.sets;
		memset(&c.sets, 0, sizeof(c.sets));
		p->have_applied = true;
	} else {
		p->have_applied = false;
		p->jumps_ok = false;
	}
	err = err ? err : rc;
	tp = now_s() - t;

out:
	if (!err) {
		uint64_t entries = 0;

		for (int k = 0; k < IPVS_SET_N; k++)
			entries += p->applied.n[k];
		qsort(c.gens, c.n_gens, sizeof(*c.gens), cmp_u64);
		free(p->gens);
		p->gens = c.gens;
		p->n_gens = c.n_gens;
		c.gens = NULL;
		p->st.syncs++;
		p->st.rules = c.n + n_dests + entries;
		p->st.services_rendered = c.changed;
	} else {
		p->st.sync_errors++;
	}
	p->st.last_sync_s = now_s() - t0;
	p->st.last_program_s = tp;
	ipvs_sets_fini(&c.sets);
	free(c.gens);
	free(c.w);
	free(c.bind);
	free(bound);
	free(have.v);
	return err;
}

static void ipvs_close(struct pxy *p)
{
	if (!p)
		return;
	nl_socket_free(p->genl);
	nl_socket_free(p->rt);
	ipvs_sets_fini(&p->applied);
	free(p->node_addrs);
	free(p->gens);
	free(p->node_name);
	free(p->cluster_cidr);
	free(p->iptables_cmd);
	free(p);
}

static struct pxy *ipvs_open(const struct pxy_cfg *cfg)
{
	char why[400];
	struct pxy *p;
	int err = pxy_ipvs_probe(why, sizeof(why));
	FILE *f;

	if (err) {
		pr_err(PX, "%s", why);
		errno = -err;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto nomem;
	p->cfg = *cfg;
	p->node_name = cfg->node_name ? strdup(cfg->node_name) : NULL;
	p->cluster_cidr = cfg->cluster_cidr ? strdup(cfg->cluster_cidr) : NULL;
	p->iptables_cmd = cfg->iptables_cmd ? strdup(cfg->iptables_cmd) : NULL;
	if ((cfg->node_name && !p->node_name) || (cfg->cluster_cidr && !p->cluster_cidr) ||
	    (cfg->iptables_cmd && !p->iptables_cmd))
		goto nomem;
	p->cfg.node_name = p->node_name;
	p->cfg.cluster_cidr = p->cluster_cidr;
	p->cfg.iptables_cmd = p->iptables_cmd;
	err = ipvs_genl_open(&p->genl, &p->family);
	if (!err) {
		p->rt = nl_socket_alloc();
		err = !p->rt ? -ENOMEM : nle_errno(nl_connect(p->rt, NETLINK_ROUTE));
	}
	if (err) {
		pr_err(PX, "opening netlink for IPVS failed: %s", strerror(-err));
		ipvs_close(p);
		errno = -err;
		return NULL;
	}
	/* kube-proxy: netfilter must track IPVS connections for the SNAT rules */
	f = fopen("/proc/sys/net/ipv4/vs/conntrack", "we");
	if (!f || fputs("1\n", f) < 0)
		pr_warn(PX, "net.ipv4.vs.conntrack=1 failed: %s (masquerading may not work)",
			strerror(errno));
	if (f)
		fclose(f);
	return p;
nomem:
	ipvs_close(p);
	errno = ENOMEM;
	return NULL;
}

static int ipvs_set_node_addrs(struct pxy *p, const __be32 *addrs, size_t n)
{
	__be32 *a = n ? malloc(n * sizeof(*a)) : NULL;

	if (n && !a)
		return -ENOMEM;
	if (n)
		memcpy(a, addrs, n * sizeof(*a));
	n = sort_addrs(a, n);
	free(p->node_addrs);
	p->node_addrs = a;
	p->n_node_addrs = n;
	return 0;
}

static void ipvs_stats(const struct pxy *p, struct pxy_stats *out)
{
	*out = p->st;
}

/* Whether `ipset list -n` names any of kube-proxy's sets (so IPVS mode ran here). */
static bool any_kube_set(void)
{
	char *argv[] = {"ipset", "list", "-n", (char *)sets[IPVS_SET_CLUSTER_IP].name, NULL};

	return !run(argv, NULL, 0, true);
}

static int ipvs_cleanup(void)
{
	/* The chains ipvs_render_iptables writes; the shared names (KUBE-SERVICES,
	 * ...) only go when kube-proxy's IPVS sets show this mode ran here, and a
	 * chain another mode still jumps to stays (-X fails quietly). */
	static const char *const chains[][2] = {
		{"nat", "KUBE-SERVICES"},     {"nat", "KUBE-POSTROUTING"},
		{"nat", "KUBE-NODE-PORT"},    {"nat", "KUBE-LOAD-BALANCER"},
		{"nat", "KUBE-MARK-MASQ"},    {"filter", "KUBE-FORWARD"},
		{"filter", "KUBE-NODE-PORT"}, {"filter", "KUBE-IPVS-FILTER"},
	};
	struct nl_sock *rt = nl_socket_alloc(), *g = NULL;
	struct pxy_cfg none = {0};
	int family = 0, rc, err = 0, did = 0;
	char bin[64];

	if (!rt)
		return -ENOMEM;
	rc = nle_errno(nl_connect(rt, NETLINK_ROUTE));
	if (!rc)
		rc = ipvs_dummy_delete(rt);
	nl_socket_free(rt);
	if (rc < 0) {
		pr_err(PX, "interface '%s': deleting failed: %s", IPVS_DUMMY_DEV, strerror(-rc));
		err = rc;
	} else if (!rc) {
		did = 1;
	}
	/* the virtual servers, only where IPVS exists (kube-proxy flushes them all) */
	if (!ipvs_genl_open(&g, &family)) {
		struct nl_msg *m = nlmsg_alloc();
		struct pxy tmp = {.genl = g, .family = family};

		rc = m ? put_hdr(m, family, IPVS_CMD_FLUSH, 0) : -ENOMEM;
		if (!rc)
			rc = genl_do(&tmp, m);
		nlmsg_free(m);
		nl_socket_free(g);
		if (rc) {
			pr_err(PX, "flushing the IPVS virtual servers failed: %s", strerror(-rc));
			err = err ? err : rc;
		}
		did = 1;
	}
	/* rules and sets, only when the sets show IPVS mode ran in this netns */
	if (on_path("ipset") && any_kube_set()) {
		iptables_bin(&none, bin, sizeof(bin));
		for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++)
			while (!jump_op(bin, i, "-D"))
				;
		for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
			char *fl[] = {
				bin, "-w", "-t", (char *)chains[i][0], "-F", (char *)chains[i][1],
				NULL};
			char *x[] = {
				bin, "-w", "-t", (char *)chains[i][0], "-X", (char *)chains[i][1],
				NULL};

			if (!run(fl, NULL, 0, true))
				run(x, NULL, 0, true);
		}
		for (int k = 0; k < IPVS_SET_N; k++) {
			char *argv[] = {"ipset", "destroy", (char *)sets[k].name, NULL};

			run(argv, NULL, 0, true);
		}
		did = 1;
	}
	if (!err && did)
		pr_info(PX, "removed kube-proxy's IPVS state (%s, virtual servers, KUBE-* sets)",
			IPVS_DUMMY_DEV);
	return err;
}

const struct pxy_ops pxy_ipvs_ops = {
	.name = "ipvs",
	.open = ipvs_open,
	.set_node_addrs = ipvs_set_node_addrs,
	.sync = ipvs_sync,
	.stats = ipvs_stats,
	.close = ipvs_close,
	.cleanup = ipvs_cleanup,
};
