// SPDX-License-Identifier: Apache-2.0
/*
 * Host-gw routes of the node side (node.h): every route the agent installs carries its own
 * rtm_protocol (NODE_RTPROT), so a dump finds exactly ours after a restart and a reconcile
 * never touches routes the CNI plugin, the lab or an administrator made. libmnl, one socket
 * per call: this runs a few times per Node change, never per packet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "node.h"

#define NR_BUF 8192

struct nr_sock {
	struct mnl_socket *sk;
	unsigned portid, seq;
};

static int nr_open(struct nr_sock *s)
{
	s->sk = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!s->sk)
		return -errno;
	if (mnl_socket_bind(s->sk, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = -errno;

		mnl_socket_close(s->sk);
		s->sk = NULL;
		return err;
	}
	s->portid = mnl_socket_get_portid(s->sk);
	s->seq = (unsigned)time(NULL);
	return 0;
}

static void nr_close(struct nr_sock *s)
{
	if (s->sk)
		mnl_socket_close(s->sk);
	s->sk = NULL;
}

/* Sends nlh and runs the replies through cb until the ACK / DONE. */
static int nr_talk(struct nr_sock *s, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[NR_BUF];
	ssize_t n;
	int rc;

	nlh->nlmsg_seq = ++s->seq;
	nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(s->sk, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(s->sk, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		rc = mnl_cb_run(buf, (size_t)n, s->seq, s->portid, cb, data);
		if (rc < 0)
			return -errno;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

static struct nlmsghdr *nr_msg(char *buf, int type, int flags, const struct node_route *r)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = (unsigned short)type;
	nlh->nlmsg_flags = (unsigned short)(NLM_F_REQUEST | flags);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (unsigned char)r->prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = NODE_RTPROT;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = r->unreachable ? RTN_UNREACHABLE : RTN_UNICAST;
	mnl_attr_put_u32(nlh, RTA_DST, htonl(r->dst));
	if (!r->unreachable && r->gw)
		mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(r->gw));
	return nlh;
}

int node_route_replace(const struct node_route *r)
{
	char buf[NR_BUF];
	struct nr_sock s = {0};
	int err = nr_open(&s);

	if (err)
		return err;
	err = nr_talk(&s, nr_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, r), NULL, NULL);
	nr_close(&s);
	return err;
}

int node_route_delete(const struct node_route *r)
{
	char buf[NR_BUF];
	struct nr_sock s = {0};
	int err = nr_open(&s);

	if (err)
		return err;
	err = nr_talk(&s, nr_msg(buf, RTM_DELROUTE, 0, r), NULL, NULL);
	nr_close(&s);
	return err == -ESRCH ? 0 : err;
}

struct nr_dump {
	struct node_route *v;
	size_t n, cap;
	int err;
};

static int nr_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int t = mnl_attr_get_type(a);

	if (t <= RTA_MAX && mnl_attr_type_valid(a, RTA_MAX) >= 0)
		tb[t] = a;
	return MNL_CB_OK;
}

static int nr_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RTA_MAX + 1] = {0};
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct nr_dump *d = data;
	struct node_route r = {0};

	if (rtm->rtm_family != AF_INET || rtm->rtm_protocol != NODE_RTPROT ||
	    rtm->rtm_table != RT_TABLE_MAIN)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), nr_attr_cb, tb);
	if (tb[RTA_DST] && mnl_attr_get_payload_len(tb[RTA_DST]) == 4)
		r.dst = ntohl(mnl_attr_get_u32(tb[RTA_DST]));
	if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == 4)
		r.gw = ntohl(mnl_attr_get_u32(tb[RTA_GATEWAY]));
	r.prefix = rtm->rtm_dst_len;
	r.unreachable = rtm->rtm_type == RTN_UNREACHABLE;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct node_route *v = realloc(d->v, cap * sizeof(*v));

		if (!v) {
			d->err = -ENOMEM;
			return MNL_CB_OK;
		}
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = r;
	return MNL_CB_OK;
}

int node_route_dump(struct node_route **out, size_t *n)
{
	char buf[NR_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nr_dump d = {0};
	struct nr_sock s = {0};
	struct rtmsg *rtm;
	int err;

	*out = NULL;
	*n = 0;
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	err = nr_open(&s);
	if (err)
		return err;
	err = nr_talk(&s, nlh, nr_dump_cb, &d);
	nr_close(&s);
	if (!err)
		err = d.err;
	if (err) {
		free(d.v);
		return err;
	}
	*out = d.v;
	*n = d.n;
	return 0;
}

struct nr_link {
	bool veth, remote_peer;
};

static int nr_linkinfo_cb(const struct nlattr *a, void *data)
{
	struct nr_link *l = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && !mnl_attr_validate(a, MNL_TYPE_STRING))
		l->veth = !strcmp(mnl_attr_get_str(a), "veth");
	return MNL_CB_OK;
}

static int nr_link_attr_cb(const struct nlattr *a, void *data)
{
	struct nr_link *l = data;

	switch (mnl_attr_get_type(a)) {
	case IFLA_LINKINFO:
		mnl_attr_parse_nested(a, nr_linkinfo_cb, l);
		break;
	case IFLA_LINK_NETNSID: /* the link's peer is in another netns */
		l->remote_peer = true;
		break;
	}
	return MNL_CB_OK;
}

static int nr_link_cb(const struct nlmsghdr *nlh, void *data)
{
	mnl_attr_parse(nlh, sizeof(struct ifinfomsg), nr_link_attr_cb, data);
	return MNL_CB_OK;
}

int node_link_veth_peer_remote(int ifindex)
{
	char buf[NR_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nr_link l = {0};
	struct nr_sock s = {0};
	struct ifinfomsg *ifm;
	int err;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	err = nr_open(&s);
	if (err)
		return err;
	err = nr_talk(&s, nlh, nr_link_cb, &l);
	nr_close(&s);
	if (err)
		return err;
	return l.veth && l.remote_peer;
}
