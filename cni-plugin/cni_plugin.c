// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-cni commands: ADD, DEL, CHECK, VERSION, STATUS, GC (CNI spec 1.0.0/1.1.0).
 *
 * ADD: refuse if CNI_IFNAME exists in the netns (duplicate ADD), reserve an address keyed by
 * (containerID, ifname), create the veth pair with the peer born inside the netns as
 * CNI_IFNAME, configure both ends, register with the agent, print the result. Any failure
 * undoes exactly what this invocation did, in reverse (agent, veth, address) - never what a
 * previous successful ADD owns.
 * DEL: release the address first (so a vanished netns cannot leak it), then delete the
 * interfaces if they are still there, then deregister (or queue the deregistration while the
 * agent is down). Idempotent; succeeds when nothing is left.
 * CHECK: verifies the reservation, the container interface (up, address, default route) and
 * the host side (gateway /32, route to the pod), and the agent when configured.
 * GC: releases reservations not in cni.dev/valid-attachments and removes their host veths.
 * STATUS: 50 when the pool is exhausted, the store unusable, or the agent unreachable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni.h"
#include "cni_agent.h"
#include "cni_ipam.h"
#include "cni_nl.h"
#include "sluice/err.h"
#include "sluice/json.h"
#include "sluice/log.h"

/* One invocation's state. */
struct plugin_run {
	struct cni_env env;
	struct cni_conf *conf; /* NULL for VERSION and before parsing */
	struct cni_error err;
	struct sl_buf *out;
	char host_if[16]; /* host-side veth name for (containerID, ifname) */
};

static void plugin_close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

static void plugin_mac_str(const uint8_t *m, char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* Opens CNI_NETNS; a missing or non-netns path is "container unknown" (code 3). */
static int plugin_netns_open(struct plugin_run *r, int *fd, struct cni_nl *nl)
{
	int err;

	*fd = open(r->env.netns, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return cni_error_set(&r->err, CNI_ERR_UNKNOWN_CONTAINER, "netns not found",
				     "CNI_NETNS '%.200s': open failed: %s", r->env.netns,
				     strerror(errno));
	err = cni_nl_open(nl, *fd);
	if (err)
		return cni_error_set(
			&r->err, CNI_ERR_UNKNOWN_CONTAINER, "netns unusable",
			"CNI_NETNS '%.200s' is not a network namespace we can enter: %s",
			r->env.netns, sl_strerror(err));
	return 0;
}

static const char *plugin_queue_dir(const struct cni_conf *c, char *buf, size_t len)
{
	if (c->agent_queue_dir)
		return c->agent_queue_dir;
	snprintf(buf, len, "%s/%s.agent-queue", c->ipam.data_dir, c->name);
	return buf;
}

/* Builds the agent request line for op. */
static void plugin_agent_req(struct plugin_run *r, const char *op, const char *id,
			     const char *ifname, uint32_t ip, const struct cni_nl_link *host,
			     struct sl_buf *b)
{
	char a[INET_ADDRSTRLEN], mac[18], hname[16];

	cni_host_ifname(id, ifname, hname);
	sl_buf_puts(b, "{\"op\":");
	sl_buf_json_str(b, op);
	sl_buf_puts(b, ",\"network\":");
	sl_buf_json_str(b, r->conf->name);
	sl_buf_puts(b, ",\"containerID\":");
	sl_buf_json_str(b, id);
	sl_buf_puts(b, ",\"ifname\":");
	sl_buf_json_str(b, ifname);
	sl_buf_puts(b, ",\"hostIfname\":");
	sl_buf_json_str(b, hname);
	if (r->env.netns) {
		sl_buf_puts(b, ",\"netns\":");
		sl_buf_json_str(b, r->env.netns);
	}
	if (ip) {
		sl_buf_puts(b, ",\"ip\":");
		sl_buf_json_str(b, cni_ip_str(ip, a));
		sl_buf_puts(b, ",\"gateway\":");
		sl_buf_json_str(b, cni_ip_str(r->conf->ipam.gw, a));
	}
	if (host) {
		plugin_mac_str(host->mac, mac);
		sl_buf_printf(b, ",\"hostIfindex\":%d,\"mac\":\"%s\"", host->ifindex, mac);
	}
	if (r->env.args) {
		sl_buf_puts(b, ",\"args\":");
		sl_buf_json_str(b, r->env.args);
	}
	sl_buf_puts(b, "}");
}

/*
 * Deregisters (id, ifname) with the agent; queues the request when the agent is down.
 * Returns 0 when the agent has it or it is queued.
 */
static int plugin_agent_del(struct plugin_run *r, const char *id, const char *ifname)
{
	struct sl_buf req = SL_BUF_INIT;
	char why[256], qbuf[4096], key[1200];
	const char *qdir;
	int err;

	if (!r->conf->agent_socket)
		return 0;
	plugin_agent_req(r, "del", id, ifname, 0, NULL, &req);
	if (req.oom) {
		sl_buf_fini(&req);
		return -ENOMEM;
	}
	err = cni_agent_call(r->conf->agent_socket, r->conf->agent_timeout_ms, sl_buf_cstr(&req),
			     why, sizeof(why));
	if (err == -EREMOTEIO) {
		/* The agent is alive and says no (e.g. unknown endpoint): nothing to replay. */
		pr_warn("cni", "agent '%s': del of %s/%s refused: %s", r->conf->agent_socket, id,
			ifname, why);
		err = 0;
	} else if (err) {
		qdir = plugin_queue_dir(r->conf, qbuf, sizeof(qbuf));
		snprintf(key, sizeof(key), "%s/%s/%s", r->conf->name, id, ifname);
		pr_warn("cni", "agent '%s': del of %s/%s failed: %s; queued in %s",
			r->conf->agent_socket, id, ifname, sl_strerror(err), qdir);
		err = cni_agent_queue(qdir, key, sl_buf_cstr(&req));
		if (err)
			pr_err("cni", "agent queue '%s': write failed: %s", qdir, sl_strerror(err));
	}
	sl_buf_fini(&req);
	return err;
}

/* --- result ----------------------------------------------------------------------------- */

static void plugin_result_add(struct plugin_run *r, uint32_t ip, const struct cni_nl_link *host,
			      const struct cni_nl_link *ct)
{
	struct json_object *res = json_object_new_object();
	struct json_object *ifs = json_object_new_array(), *ips = json_object_new_array();
	struct json_object *routes = json_object_new_array(), *o, *prev = r->conf->prev_result;
	struct json_object *pv;
	char a[INET_ADDRSTRLEN], cidr[32], mac[18];
	size_t i, base = 0;

	/* Chained after another plugin: keep what it reported, ours follow it. */
	pv = sl_json_get(prev, "interfaces");
	if (json_object_is_type(pv, json_type_array)) {
		base = json_object_array_length(pv);
		for (i = 0; i < base; i++)
			json_object_array_add(ifs, sl_json_clone(json_object_array_get_idx(pv, i)));
	}
	pv = sl_json_get(prev, "ips");
	if (json_object_is_type(pv, json_type_array))
		for (i = 0; i < json_object_array_length(pv); i++)
			json_object_array_add(ips, sl_json_clone(json_object_array_get_idx(pv, i)));
	pv = sl_json_get(prev, "routes");
	if (json_object_is_type(pv, json_type_array))
		for (i = 0; i < json_object_array_length(pv); i++)
			json_object_array_add(routes,
					      sl_json_clone(json_object_array_get_idx(pv, i)));

	o = json_object_new_object();
	sl_json_set_str(o, "name", r->host_if);
	plugin_mac_str(host->mac, mac);
	sl_json_set_str(o, "mac", mac);
	if (r->conf->version >= CNI_VERSION(1, 1, 0) && host->mtu)
		sl_json_set_int(o, "mtu", host->mtu);
	json_object_array_add(ifs, o);
	o = json_object_new_object();
	sl_json_set_str(o, "name", r->env.ifname);
	plugin_mac_str(ct->mac, mac);
	sl_json_set_str(o, "mac", mac);
	if (r->conf->version >= CNI_VERSION(1, 1, 0) && ct->mtu)
		sl_json_set_int(o, "mtu", ct->mtu);
	sl_json_set_str(o, "sandbox", r->env.netns);
	json_object_array_add(ifs, o);

	o = json_object_new_object();
	if (r->conf->version < CNI_VERSION(1, 0, 0))
		sl_json_set_str(o, "version", "4");
	snprintf(cidr, sizeof(cidr), "%s/32", cni_ip_str(ip, a));
	sl_json_set_str(o, "address", cidr);
	sl_json_set_str(o, "gateway", cni_ip_str(r->conf->ipam.gw, a));
	sl_json_set_int(o, "interface", (int64_t)base + 1);
	json_object_array_add(ips, o);

	o = json_object_new_object();
	sl_json_set_str(o, "dst", "0.0.0.0/0");
	sl_json_set_str(o, "gw", cni_ip_str(r->conf->ipam.gw, a));
	json_object_array_add(routes, o);

	sl_json_set_str(res, "cniVersion", r->conf->cni_version);
	json_object_object_add(res, "interfaces", ifs);
	json_object_object_add(res, "ips", ips);
	json_object_object_add(res, "routes", routes);
	if (r->conf->dns)
		json_object_object_add(res, "dns", sl_json_clone(r->conf->dns));
	else if (sl_json_get(prev, "dns"))
		json_object_object_add(res, "dns", sl_json_clone(sl_json_get(prev, "dns")));
	sl_json_append(r->out, res);
	sl_buf_puts(r->out, "\n");
	json_object_put(res);
}

/* --- commands --------------------------------------------------------------------------- */

static int plugin_add(struct plugin_run *r)
{
	struct cni_nl ct = {0}, host = {0};
	struct cni_nl_link ctl, hl;
	const struct cni_conf *c = r->conf;
	bool allocated = false, created = false;
	char a[INET_ADDRSTRLEN], why[256] = "";
	const char *step;
	uint32_t ip = 0;
	int nsfd = -1, err;

	if (plugin_netns_open(r, &nsfd, &ct))
		goto fail;
	err = cni_nl_open(&host, -1);
	if (err) {
		cni_error_set(&r->err, CNI_ERR_NETLINK, "netlink failure",
			      "opening a netlink socket in the host netns failed: %s",
			      sl_strerror(err));
		goto fail;
	}
	if (!cni_nl_link_get(&ct, r->env.ifname, &ctl)) {
		cni_error_set(&r->err, CNI_ERR_IF_EXISTS, "interface already exists",
			      "interface '%s' already exists in %s (duplicate ADD? DEL it first)",
			      r->env.ifname, r->env.netns);
		goto fail;
	}
	err = cni_ipam_alloc(&c->ipam, c->name, r->env.container_id, r->env.ifname, &ip);
	if (err == -EEXIST) {
		cni_error_set(&r->err, CNI_ERR_DUPLICATE, "duplicate allocation",
			      "container %.80s ifname %s already holds %s in network %s; DEL it "
			      "before adding again",
			      r->env.container_id, r->env.ifname, cni_ip_str(ip, a), c->name);
		goto fail;
	}
	if (err == -SL_ERR_EXHAUSTED) {
		cni_error_set(&r->err, CNI_ERR_EXHAUSTED, "no free address",
			      "every address of the pod CIDR in network %s is in use (dataDir %s)",
			      c->name, c->ipam.data_dir);
		goto fail;
	}
	if (err) {
		cni_error_set(&r->err, CNI_ERR_IO, "IPAM store failure",
			      "allocating from %s/%s failed: %s", c->ipam.data_dir, c->name,
			      sl_strerror(err));
		goto fail;
	}
	allocated = true;

	/* No reservation existed for this pair, so a host veth of its name is a leftover of
	 * an ADD that died half-way: remove it rather than fail every retry. */
	if (!cni_nl_link_get(&host, r->host_if, &hl)) {
		pr_warn("cni", "veth '%s': removing leftover of an earlier ADD", r->host_if);
		cni_nl_link_del(&host, r->host_if);
	}
	err = cni_nl_veth_add(&host, r->host_if, r->env.ifname, nsfd, c->mtu);
	if (err) {
		cni_error_set(&r->err, err == -EEXIST ? CNI_ERR_IF_EXISTS : CNI_ERR_NETLINK,
			      "creating veth failed", "veth %s <-> %s in %s: %s", r->host_if,
			      r->env.ifname, r->env.netns, sl_strerror(err));
		goto fail;
	}
	created = true;

	/* step names the operation that failed, so the error says what to look at. */
	step = "finding";
	err = cni_nl_link_get(&ct, r->env.ifname, &ctl);
	if (!err) {
		step = "adding the pod address to";
		err = cni_nl_addr_add(&ct, ctl.ifindex, ip, 32);
	}
	if (!err) {
		step = "bringing up";
		err = cni_nl_link_up(&ct, ctl.ifindex);
	}
	if (!err) {
		step = "adding the default route via the gateway on";
		err = cni_nl_route_add(&ct, ctl.ifindex, 0, 0, c->ipam.gw, true, false);
	}
	if (err) {
		cni_error_set(&r->err, CNI_ERR_NETLINK,
			      "configuring the container interface failed", "%s %s in %s (%s): %s",
			      step, r->env.ifname, r->env.netns, cni_ip_str(ip, a),
			      sl_strerror(err));
		goto fail;
	}
	step = "finding";
	err = cni_nl_link_get(&host, r->host_if, &hl);
	if (!err) {
		step = "adding the gateway address to";
		err = cni_nl_addr_add(&host, hl.ifindex, c->ipam.gw, 32);
	}
	if (!err) {
		step = "bringing up";
		err = cni_nl_link_up(&host, hl.ifindex);
	}
	if (!err) {
		step = "adding the route to the pod via";
		err = cni_nl_route_add(&host, hl.ifindex, ip, 32, 0, false, true);
	}
	if (err) {
		/* EEXIST on the route: the node already routes this address elsewhere, which
		 * happens when two networks hand out the same subnet on one node. */
		cni_error_set(&r->err, CNI_ERR_NETLINK, "configuring the host veth failed",
			      "%s %s (pod %s): %s%s", step, r->host_if, cni_ip_str(ip, a),
			      sl_strerror(err),
			      err == -EEXIST ? "; the node already has this route or address: does "
					       "another network use the same subnet on this node?"
					     : "");
		goto fail;
	}
	/* IPv4 forwards by the ingress device's flag: without it a pod reaches the node but
	 * not the pod next to it (the node's ip_forward is often 0). Only our own veth is
	 * touched, unlike ptp, which turns on forwarding for the whole host. */
	err = cni_if_sysctl_set(r->host_if, "forwarding", "1");
	if (err) {
		cni_error_set(&r->err, CNI_ERR_NETLINK, "configuring the host veth failed",
			      "enabling net.ipv4.conf.%s.forwarding: %s", r->host_if,
			      sl_strerror(err));
		goto fail;
	}
	/* Re-read: the MAC and MTU are final only now. */
	cni_nl_link_get(&ct, r->env.ifname, &ctl);
	cni_nl_link_get(&host, r->host_if, &hl);

	if (c->agent_socket) {
		struct sl_buf req = SL_BUF_INIT;

		plugin_agent_req(r, "add", r->env.container_id, r->env.ifname, ip, &hl, &req);
		err = req.oom ? -ENOMEM
			      : cni_agent_call(c->agent_socket, c->agent_timeout_ms,
					       sl_buf_cstr(&req), why, sizeof(why));
		sl_buf_fini(&req);
		if (err == -EREMOTEIO) {
			cni_error_set(&r->err, CNI_ERR_AGENT, "agent refused the endpoint",
				      "agent at %s: %s", c->agent_socket, why);
			goto fail;
		}
		if (err) {
			cni_error_set(&r->err, CNI_ERR_TRY_AGAIN, "node agent unavailable",
				      "registering with the agent at %s failed: %s%s%s; is "
				      "sluice-agent running? retry later",
				      c->agent_socket, sl_strerror(err), why[0] ? ": " : "", why);
			goto fail;
		}
	}
	plugin_result_add(r, ip, &hl, &ctl);
	cni_nl_close(&ct);
	cni_nl_close(&host);
	plugin_close_fd(nsfd);
	return 0;
fail:
	/* Undo only what this invocation did. Deleting the host end removes the peer. */
	if (created && (err = cni_nl_link_del(&host, r->host_if)) && err != -ENODEV)
		pr_warn("cni", "veth '%s': rollback delete failed: %s", r->host_if,
			sl_strerror(err));
	if (allocated &&
	    (err = cni_ipam_release(&c->ipam, c->name, r->env.container_id, r->env.ifname, NULL)))
		pr_warn("cni", "ipam '%s': rollback release failed: %s", c->name, sl_strerror(err));
	cni_nl_close(&ct);
	cni_nl_close(&host);
	plugin_close_fd(nsfd);
	return -1;
}

static int plugin_del(struct plugin_run *r)
{
	const struct cni_conf *c = r->conf;
	struct cni_nl ct = {0}, host = {0};
	int nsfd = -1, err;

	/* Address first: whatever happens to the netns below, it must not leak. */
	err = cni_ipam_release(&c->ipam, c->name, r->env.container_id, r->env.ifname, NULL);
	if (err)
		return cni_error_set(&r->err, CNI_ERR_IO, "IPAM store failure",
				     "releasing %s/%s in %s/%s failed: %s", r->env.container_id,
				     r->env.ifname, c->ipam.data_dir, c->name, sl_strerror(err));
	if (r->env.netns) {
		nsfd = open(r->env.netns, O_RDONLY | O_CLOEXEC);
		if (nsfd >= 0 && !cni_nl_open(&ct, nsfd)) {
			err = cni_nl_link_del(&ct, r->env.ifname);
			if (err && err != -ENODEV)
				pr_warn("cni", "interface '%s' in %s: delete failed: %s",
					r->env.ifname, r->env.netns, sl_strerror(err));
		} else {
			pr_debug("cni", "netns '%s' is gone; nothing to delete inside",
				 r->env.netns);
		}
	}
	/* Normally gone with its peer; still there when the netns outlived us. */
	if (!cni_nl_open(&host, -1)) {
		err = cni_nl_link_del(&host, r->host_if);
		if (err && err != -ENODEV)
			pr_warn("cni", "veth '%s': delete failed: %s", r->host_if,
				sl_strerror(err));
	}
	cni_nl_close(&ct);
	cni_nl_close(&host);
	plugin_close_fd(nsfd);
	if (plugin_agent_del(r, r->env.container_id, r->env.ifname))
		return cni_error_set(&r->err, CNI_ERR_TRY_AGAIN, "node agent unavailable",
				     "the agent at %s is down and the DEL could not be queued; "
				     "retry later",
				     c->agent_socket);
	return 0;
}

static int plugin_prev_has_ip(struct json_object *prev, uint32_t ip)
{
	struct json_object *ips = sl_json_get(prev, "ips");
	size_t i;

	if (!json_object_is_type(ips, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(ips); i++) {
		const char *s = sl_json_get_str(json_object_array_get_idx(ips, i), "address");
		uint32_t got;
		int plen;

		if (s && !cni_cidr_parse(s, &got, &plen) && got == ip)
			return 1;
	}
	return 0;
}

static int plugin_check(struct plugin_run *r)
{
	const struct cni_conf *c = r->conf;
	struct cni_nl ct = {0}, host = {0};
	struct cni_nl_link l;
	char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], why[256];
	uint32_t ip;
	int nsfd = -1, err, ret = -1;

	if (c->agent_socket) {
		struct sl_buf req = SL_BUF_INIT;

		plugin_agent_req(r, "check", r->env.container_id, r->env.ifname, 0, NULL, &req);
		err = req.oom ? -ENOMEM
			      : cni_agent_call(c->agent_socket, c->agent_timeout_ms,
					       sl_buf_cstr(&req), why, sizeof(why));
		sl_buf_fini(&req);
		if (err == -EREMOTEIO)
			return cni_error_set(&r->err, CNI_ERR_CHECK, "agent check failed",
					     "agent at %s: %s", c->agent_socket, why);
		if (err)
			return cni_error_set(&r->err, CNI_ERR_TRY_AGAIN, "node agent unavailable",
					     "cannot check with the agent at %s: %s; retry later",
					     c->agent_socket, sl_strerror(err));
	}
	err = cni_ipam_find(&c->ipam, c->name, r->env.container_id, r->env.ifname, &ip);
	if (err)
		return cni_error_set(&r->err, err == -ENOENT ? CNI_ERR_CHECK : CNI_ERR_IO,
				     "no address reserved",
				     "container %.80s ifname %s holds no address in network %s: %s",
				     r->env.container_id, r->env.ifname, c->name, sl_strerror(err));
	cni_ip_str(ip, a);
	cni_ip_str(c->ipam.gw, g);
	if (c->prev_result && !plugin_prev_has_ip(c->prev_result, ip))
		return cni_error_set(&r->err, CNI_ERR_CHECK, "prevResult mismatch",
				     "prevResult does not list the reserved address %s", a);
	if (plugin_netns_open(r, &nsfd, &ct))
		goto out;
	if (cni_nl_link_get(&ct, r->env.ifname, &l)) {
		cni_error_set(&r->err, CNI_ERR_CHECK, "interface missing",
			      "no interface '%s' in %s", r->env.ifname, r->env.netns);
		goto out;
	}
	if (!l.up) {
		cni_error_set(&r->err, CNI_ERR_CHECK, "interface down", "'%s' in %s is down",
			      r->env.ifname, r->env.netns);
		goto out;
	}
	if (cni_nl_addr_has(&ct, l.ifindex, ip, 32) != 1) {
		cni_error_set(&r->err, CNI_ERR_CHECK, "address missing",
			      "'%s' in %s does not carry %s/32", r->env.ifname, r->env.netns, a);
		goto out;
	}
	if (cni_nl_route_has(&ct, l.ifindex, 0, 0, c->ipam.gw) != 1) {
		cni_error_set(&r->err, CNI_ERR_CHECK, "route missing",
			      "no default route via %s dev %s in %s", g, r->env.ifname,
			      r->env.netns);
		goto out;
	}
	if (cni_nl_open(&host, -1) || cni_nl_link_get(&host, r->host_if, &l)) {
		cni_error_set(&r->err, CNI_ERR_CHECK, "host veth missing", "no host veth '%s'",
			      r->host_if);
		goto out;
	}
	if (!l.up || cni_nl_addr_has(&host, l.ifindex, c->ipam.gw, 32) != 1) {
		cni_error_set(&r->err, CNI_ERR_CHECK, "host veth changed",
			      "host veth '%s' is down or lacks the gateway %s/32", r->host_if, g);
		goto out;
	}
	if (cni_nl_route_has(&host, l.ifindex, ip, 32, 0) != 1) {
		cni_error_set(&r->err, CNI_ERR_CHECK, "host route missing",
			      "no route %s/32 dev %s in the host netns", a, r->host_if);
		goto out;
	}
	if (cni_if_sysctl_get(r->host_if, "forwarding", why, sizeof(why)) || strcmp(why, "1")) {
		cni_error_set(&r->err, CNI_ERR_CHECK, "host veth not forwarding",
			      "net.ipv4.conf.%s.forwarding is not 1: pods cannot reach each other",
			      r->host_if);
		goto out;
	}
	ret = 0;
out:
	cni_nl_close(&ct);
	cni_nl_close(&host);
	plugin_close_fd(nsfd);
	return ret;
}

static int plugin_status(struct plugin_run *r)
{
	const struct cni_conf *c = r->conf;
	size_t n = 0;
	int err;

	err = cni_ipam_free_count(&c->ipam, c->name, &n);
	if (err)
		return cni_error_set(&r->err, CNI_ERR_NOT_READY, "IPAM store unusable", "%s/%s: %s",
				     c->ipam.data_dir, c->name, sl_strerror(err));
	if (!n)
		return cni_error_set(&r->err, CNI_ERR_NOT_READY, "no free address",
				     "the pod CIDR of network %s is exhausted", c->name);
	if (c->agent_socket) {
		err = cni_agent_probe(c->agent_socket, c->agent_timeout_ms);
		if (err)
			return cni_error_set(&r->err, CNI_ERR_NOT_READY, "node agent unavailable",
					     "cannot connect to %s: %s", c->agent_socket,
					     sl_strerror(err));
	}
	return 0;
}

struct plugin_gc {
	struct plugin_run *r;
	struct cni_nl host; /* sk NULL when the host socket could not be opened */
	int err;
};

static void plugin_gc_one(const char *id, const char *ifname, uint32_t ip, void *arg)
{
	struct plugin_gc *g = arg;
	char hname[16], a[INET_ADDRSTRLEN];
	int err;

	pr_info("cni", "gc: released %s of %s/%s", cni_ip_str(ip, a), id, ifname);
	if (!id[0] || !ifname[0])
		return; /* legacy or unreadable owner: no veth name to derive */
	cni_host_ifname(id, ifname, hname);
	if (g->host.sk) {
		err = cni_nl_link_del(&g->host, hname);
		if (err && err != -ENODEV)
			pr_warn("cni", "gc: veth '%s': delete failed: %s", hname, sl_strerror(err));
	}
	err = plugin_agent_del(g->r, id, ifname);
	if (err && !g->err)
		g->err = err;
}

static int plugin_gc(struct plugin_run *r)
{
	const struct cni_conf *c = r->conf;
	struct plugin_gc g = {.r = r};
	unsigned n = 0;
	int err;

	if (!c->has_valid)
		return cni_error_set(&r->err, CNI_ERR_INVALID_CONFIG, "invalid network config",
				     "GC needs cni.dev/valid-attachments (an empty list releases "
				     "everything)");
	if (cni_nl_open(&g.host, -1))
		g.host.sk = NULL;
	err = cni_ipam_gc(&c->ipam, c->name, c->valid, c->n_valid, plugin_gc_one, &g, &n);
	cni_nl_close(&g.host);
	pr_debug("cni", "gc of network %s: %u released", c->name, n);
	if (err)
		return cni_error_set(&r->err, CNI_ERR_IO, "GC incomplete", "%s/%s: %s",
				     c->ipam.data_dir, c->name, sl_strerror(err));
	if (g.err)
		return cni_error_set(&r->err, CNI_ERR_TRY_AGAIN, "GC incomplete",
				     "the agent at %s could not be told and the queue failed: %s",
				     c->agent_socket, sl_strerror(g.err));
	return 0;
}

static int plugin_version(struct plugin_run *r, const char *buf, size_t len)
{
	const char *const *v;
	struct json_object *o = NULL;
	const char *ver = "1.1.0";
	char perr[128];
	size_t i;

	for (i = 0; i < len && strchr(" \t\r\n", buf[i]); i++)
		;
	if (i < len) {
		o = sl_json_parse(buf, len, perr, sizeof(perr));
		if (!o || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			return cni_error_set(&r->err, CNI_ERR_DECODE, "decoding failure",
					     "VERSION stdin is not a JSON object: %s",
					     o ? "not an object" : perr);
		}
		if (sl_json_get_str(o, "cniVersion"))
			ver = sl_json_get_str(o, "cniVersion");
	}
	sl_buf_puts(r->out, "{\"cniVersion\":");
	sl_buf_json_str(r->out, ver);
	sl_buf_puts(r->out, ",\"supportedVersions\":[");
	for (v = cni_supported_versions; *v; v++)
		sl_buf_printf(r->out, "%s\"%s\"", v == cni_supported_versions ? "" : ",", *v);
	sl_buf_puts(r->out, "]}\n");
	json_object_put(o);
	return 0;
}

/* The request's cniVersion when it is one we speak, for error objects. */
static void plugin_req_version(const char *buf, size_t len, char *out, size_t outlen)
{
	struct json_object *o = sl_json_parse(buf, len, NULL, 0);
	const char *v = sl_json_get_str(o, "cniVersion");
	unsigned x;

	snprintf(out, outlen, "%s", v && !cni_version_parse(v, &x, true) ? v : "1.1.0");
	json_object_put(o);
}

int cni_plugin_run(const char *(*get)(const char *name), const char *stdin_buf, size_t len,
		   struct sl_buf *out)
{
	struct plugin_run r = {.out = out};
	char ver[16];
	int ret = -1;

	if (cni_env_parse(&r.env, get, &r.err))
		goto fail;
	if (r.env.cmd == CNI_CMD_VERSION) {
		if (plugin_version(&r, stdin_buf, len))
			goto fail;
		return 0;
	}
	r.conf = cni_conf_parse(stdin_buf, len, r.env.cmd, &r.err);
	if (!r.conf)
		goto fail;
	if (r.env.cmd == CNI_CMD_CHECK && r.conf->version < CNI_VERSION(0, 4, 0)) {
		cni_error_set(&r.err, CNI_ERR_INCOMPATIBLE, "incompatible CNI version",
			      "config version %s does not allow CHECK (needs 0.4.0 or later)",
			      r.conf->cni_version);
		goto fail;
	}
	if ((r.env.cmd == CNI_CMD_STATUS || r.env.cmd == CNI_CMD_GC) &&
	    r.conf->version < CNI_VERSION(1, 1, 0)) {
		cni_error_set(&r.err, CNI_ERR_INCOMPATIBLE, "incompatible CNI version",
			      "config version %s does not allow %s (needs 1.1.0)",
			      r.conf->cni_version, r.env.command);
		goto fail;
	}
	if (r.env.container_id && r.env.ifname)
		cni_host_ifname(r.env.container_id, r.env.ifname, r.host_if);
	switch (r.env.cmd) {
	case CNI_CMD_ADD:
		ret = plugin_add(&r);
		break;
	case CNI_CMD_DEL:
		ret = plugin_del(&r);
		break;
	case CNI_CMD_CHECK:
		ret = plugin_check(&r);
		break;
	case CNI_CMD_STATUS:
		ret = plugin_status(&r);
		break;
	case CNI_CMD_GC:
		ret = plugin_gc(&r);
		break;
	default:
		cni_error_set(&r.err, CNI_ERR_INVALID_ENV, "unknown CNI_COMMAND", "internal");
		break;
	}
	if (ret)
		goto fail;
	cni_conf_free(r.conf);
	return 0;
fail:
	if (!r.err.code)
		cni_error_set(&r.err, CNI_ERR_IO, "internal error", "no detail recorded");
	plugin_req_version(stdin_buf, len, ver, sizeof(ver));
	sl_buf_reset(out);
	cni_error_json(&r.err, r.conf ? r.conf->cni_version : ver, out);
	cni_conf_free(r.conf);
	return -1;
}
