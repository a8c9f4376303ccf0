/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rtnetlink operations sluice-cni needs, on libmnl: veth creation straight into a
 * target netns, link lookup/up/delete, IPv4 address and route add, and the dumps CHECK uses
 * to verify them. A struct cni_nl is a netlink socket bound in one netns: a socket keeps the
 * netns it was created in, so cni_nl_open() setns()es the calling thread into the target
 * just long enough to create the socket and then switches back.
 *
 * All functions return 0 or a negative errno (-ENODEV for a missing link).
 * Addresses are IPv4, host byte order.
 */
#ifndef SLUICE_CNI_NL_H
#define SLUICE_CNI_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mnl_socket;

struct cni_nl {
	struct mnl_socket *sk; /* NULL when closed */
	unsigned int portid;   /* our netlink port id */
	unsigned int seq;      /* last sequence number used */
};

struct cni_nl_link {
	int ifindex;
	uint8_t mac[6];
	bool up; /* IFF_UP */
	int mtu;
};

/* Opens a socket in the netns of netns_fd (-1: the caller's current netns). */
int cni_nl_open(struct cni_nl *nl, int netns_fd);
void cni_nl_close(struct cni_nl *nl);

int cni_nl_link_get(struct cni_nl *nl, const char *name, struct cni_nl_link *out);

/* Creates veth host_name <-> peer_name with the peer created directly in peer_netns_fd;
 * mtu 0 leaves the kernel default. -EEXIST if either name is taken. */
int cni_nl_veth_add(struct cni_nl *nl, const char *host_name, const char *peer_name,
		    int peer_netns_fd, int mtu);
int cni_nl_link_up(struct cni_nl *nl, int ifindex);
/* Deletes a link by name; -ENODEV if it does not exist. */
int cni_nl_link_del(struct cni_nl *nl, const char *name);

int cni_nl_addr_add(struct cni_nl *nl, int ifindex, uint32_t ip, int prefix);
/* Route in the main table: dst/dst_len via gw (0 = none) dev ifindex; onlink sets
 * RTNH_F_ONLINK, link_scope selects RT_SCOPE_LINK (else universe). */
int cni_nl_route_add(struct cni_nl *nl, int ifindex, uint32_t dst, int dst_len, uint32_t gw,
		     bool onlink, bool link_scope);

/* 1 if ifindex carries ip/prefix, 0 if not, negative errno on failure. */
int cni_nl_addr_has(struct cni_nl *nl, int ifindex, uint32_t ip, int prefix);
/* 1 if the main table has dst/dst_len [via gw] dev ifindex, 0 if not. */
int cni_nl_route_has(struct cni_nl *nl, int ifindex, uint32_t dst, int dst_len, uint32_t gw);

/*
 * net.ipv4.conf.<ifname>.<key> in the calling thread's netns (procfs resolves /proc/sys/net
 * by the netns of the thread that opens it, so call these outside any temporary setns).
 * -EINVAL for a name that is not a plain interface name; else 0 or a negative errno.
 */
int cni_if_sysctl_set(const char *ifname, const char *key, const char *val);
/* Reads the value into out (size len, trailing newline removed). */
int cni_if_sysctl_get(const char *ifname, const char *key, char *out, size_t len);

#endif
