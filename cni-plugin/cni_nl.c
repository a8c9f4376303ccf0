// SPDX-License-Identifier: Apache-2.0
/*
 * rtnetlink for sluice-cni on libmnl (interface in cni_nl.h). Every request asks for an ACK
 * so one receive loop serves requests, single GETs and dumps alike: the loop ends on the
 * ACK or NLMSG_DONE, and a kernel error comes back as libmnl's -1 with errno set.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "cni_nl.h"

/* libmnl sizes its buffer macros by getpagesize() (a VLA); fixed sizes are enough here. */
#define NL_MSG_SIZE  4096
#define NL_RECV_SIZE 32768

int cni_nl_open(struct cni_nl *nl, int netns_fd)
{
	int self = -1, err = 0;

	nl->sk = NULL;
	nl->seq = (unsigned int)time(NULL);
	if (netns_fd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return -errno;
		if (setns(netns_fd, CLONE_NEWNET) < 0) {
			err = -errno;
			close(self);
			return err;
		}
	}
	nl->sk = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sk)
		err = -errno;
	else if (mnl_socket_bind(nl->sk, 0, MNL_SOCKET_AUTOPID) < 0)
		err = -errno;
	if (self >= 0) {
		/* Back to where we were: the socket stays bound to the target netns. */
		if (setns(self, CLONE_NEWNET) < 0 && !err)
			err = -errno;
		close(self);
	}
	if (err) {
		cni_nl_close(nl);
		return err;
	}
	nl->portid = mnl_socket_get_portid(nl->sk);
	return 0;
}

void cni_nl_close(struct cni_nl *nl)
{
	if (nl && nl->sk) {
		mnl_socket_close(nl->sk);
		nl->sk = NULL;
	}
}

/* Sends nlh (with NLM_F_ACK added) and runs cb over the replies until ACK/DONE. */
static int nl_talk(struct cni_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[NL_RECV_SIZE];
	unsigned int seq;
	ssize_t n;
	int ret;

	if (!nl->sk)
		return -EBADF;
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq = ++nl->seq;
	if (mnl_socket_sendto(nl->sk, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl->sk, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		ret = mnl_cb_run(buf, n, seq, nl->portid, cb, data);
		if (ret < 0)
			return errno ? -errno : -EIO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

static int nl_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = ((const struct nlattr ***)data)[0];
	int max = (int)(long)((void **)data)[1];
	int type = mnl_attr_get_type(attr);

	if (type <= max)
		tb[type] = attr;
	return MNL_CB_OK;
}

static void nl_parse(const struct nlmsghdr *nlh, size_t hdr, const struct nlattr **tb, int max)
{
	void *arg[2] = {tb, (void *)(long)max};

	memset(tb, 0, sizeof(const struct nlattr *) * (max + 1));
	mnl_attr_parse(nlh, hdr, nl_attr_cb, arg);
}

static int nl_link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFLA_MAX + 1];
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	struct cni_nl_link *l = data;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	nl_parse(nlh, sizeof(*ifm), tb, IFLA_MAX);
	l->ifindex = ifm->ifi_index;
	l->up = ifm->ifi_flags & IFF_UP;
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6)
		memcpy(l->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
	if (tb[IFLA_MTU] && mnl_attr_get_payload_len(tb[IFLA_MTU]) == 4)
		l->mtu = (int)mnl_attr_get_u32(tb[IFLA_MTU]);
	return MNL_CB_OK;
}

int cni_nl_link_get(struct cni_nl *nl, const char *name, struct cni_nl_link *out)
{
	char buf[NL_MSG_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	int err;

	memset(out, 0, sizeof(*out));
	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	err = nl_talk(nl, nlh, nl_link_cb, out);
	if (!err && !out->ifindex)
		err = -ENODEV;
	return err;
}

int cni_nl_veth_add(struct cni_nl *nl, const char *host_name, const char *peer_name,
		    int peer_netns_fd, int mtu)
{
	char buf[NL_MSG_SIZE];
	struct nlattr *linkinfo, *data, *peer;
	struct ifinfomsg *ifm, *pifm;
	struct nlmsghdr *nlh;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, host_name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* The peer nest starts with its own ifinfomsg, then the peer's attributes. */
	pifm = mnl_nlmsg_get_payload_tail(nlh);
	memset(pifm, 0, sizeof(*pifm));
	pifm->ifi_family = AF_UNSPEC;
	nlh->nlmsg_len += MNL_ALIGN(sizeof(*pifm));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name);
	if (peer_netns_fd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	return nl_talk(nl, nlh, NULL, NULL);
}

int cni_nl_link_up(struct cni_nl *nl, int ifindex)
{
	char buf[NL_MSG_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	return nl_talk(nl, nlh, NULL, NULL);
}

int cni_nl_link_del(struct cni_nl *nl, const char *name)
{
	char buf[NL_MSG_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;

	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_DELLINK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nl_talk(nl, nlh, NULL, NULL);
}

int cni_nl_addr_add(struct cni_nl *nl, int ifindex, uint32_t ip, int prefix)
{
	char buf[NL_MSG_SIZE];
	uint32_t be = htonl(ip);
	struct ifaddrmsg *ifa;
	struct nlmsghdr *nlh;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_flags = IFA_F_PERMANENT;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned int)ifindex;
	mnl_attr_put_u32(nlh, IFA_LOCAL, be);
	mnl_attr_put_u32(nlh, IFA_ADDRESS, be);
	return nl_talk(nl, nlh, NULL, NULL);
}

int cni_nl_route_add(struct cni_nl *nl, int ifindex, uint32_t dst, int dst_len, uint32_t gw,
		     bool onlink, bool link_scope)
{
	char buf[NL_MSG_SIZE];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (unsigned char)dst_len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = link_scope ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	if (onlink)
		rtm->rtm_flags |= RTNH_F_ONLINK;
	if (dst_len)
		mnl_attr_put_u32(nlh, RTA_DST, htonl(dst));
	if (gw)
		mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(gw));
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	return nl_talk(nl, nlh, NULL, NULL);
}

struct nl_want {
	int ifindex;
	uint32_t addr; /* host order */
	int len;
	uint32_t gw;
	bool found;
};

static int nl_addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFA_MAX + 1];
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct nl_want *w = data;
	const struct nlattr *a;

	if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET ||
	    (int)ifa->ifa_index != w->ifindex || ifa->ifa_prefixlen != w->len)
		return MNL_CB_OK;
	nl_parse(nlh, sizeof(*ifa), tb, IFA_MAX);
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (a && mnl_attr_get_payload_len(a) == 4 && ntohl(mnl_attr_get_u32(a)) == w->addr)
		w->found = true;
	return MNL_CB_OK;
}

int cni_nl_addr_has(struct cni_nl *nl, int ifindex, uint32_t ip, int prefix)
{
	struct nl_want w = {.ifindex = ifindex, .addr = ip, .len = prefix};
	char buf[NL_MSG_SIZE];
	struct ifaddrmsg *ifa;
	struct nlmsghdr *nlh;
	int err;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	err = nl_talk(nl, nlh, nl_addr_cb, &w);
	return err ? err : w.found;
}

static int nl_route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RTA_MAX + 1];
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct nl_want *w = data;
	uint32_t table, dst = 0, gw = 0;

	if (nlh->nlmsg_type != RTM_NEWROUTE || rtm->rtm_family != AF_INET ||
	    rtm->rtm_dst_len != w->len)
		return MNL_CB_OK;
	nl_parse(nlh, sizeof(*rtm), tb, RTA_MAX);
	table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (table != RT_TABLE_MAIN)
		return MNL_CB_OK;
	if (!tb[RTA_OIF] || (int)mnl_attr_get_u32(tb[RTA_OIF]) != w->ifindex)
		return MNL_CB_OK;
	if (tb[RTA_DST])
		dst = ntohl(mnl_attr_get_u32(tb[RTA_DST]));
	if (tb[RTA_GATEWAY])
		gw = ntohl(mnl_attr_get_u32(tb[RTA_GATEWAY]));
	if (dst == w->addr && gw == w->gw)
		w->found = true;
	return MNL_CB_OK;
}

int cni_nl_route_has(struct cni_nl *nl, int ifindex, uint32_t dst, int dst_len, uint32_t gw)
{
	struct nl_want w = {.ifindex = ifindex, .addr = dst, .len = dst_len, .gw = gw};
	char buf[NL_MSG_SIZE];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int err;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_DUMP;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	err = nl_talk(nl, nlh, nl_route_cb, &w);
	return err ? err : w.found;
}

/* The sysctl file of (ifname, key); refuses anything that could leave conf/<ifname>/. */
static int if_sysctl_path(const char *ifname, const char *key, char *path, size_t len)
{
	int n;

	if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ || strchr(ifname, '/') ||
	    !strcmp(ifname, ".") || !strcmp(ifname, "..") || !key || strchr(key, '/'))
		return -EINVAL;
	n = snprintf(path, len, "/proc/sys/net/ipv4/conf/%s/%s", ifname, key);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cni_if_sysctl_set(const char *ifname, const char *key, const char *val)
{
	char path[128];
	size_t n = strlen(val);
	ssize_t w;
	int fd, err;

	err = if_sysctl_path(ifname, key, path, sizeof(path));
	if (err)
		return err;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	w = write(fd, val, n);
	err = w < 0 ? -errno : (size_t)w != n ? -EIO : 0;
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

int cni_if_sysctl_get(const char *ifname, const char *key, char *out, size_t len)
{
	char path[128];
	ssize_t n;
	int fd, err;

	if (!len)
		return -EINVAL;
	err = if_sysctl_path(ifname, key, path, sizeof(path));
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, out, len - 1);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	out[n] = '\0';
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
	return 0;
}
