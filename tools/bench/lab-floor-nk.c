// SPDX-License-Identifier: Apache-2.0
/*
 * lab-floor's netkit helper (tools/bench/lab-floor.sh builds it at run time): this machine's
 * iproute2 (6.1) and bpftool (7.1) predate netkit and its libbpf (1.1) has no netkit attach,
 * so both go through the raw APIs here.
 *
 *   lab-floor-nk add PRIMARY PEER NETNS_PATH
 *	a netkit pair in L2 mode (the floor's programs parse Ethernet), PRIMARY in the current
 *	netns, PEER in NETNS_PATH; both default policies "pass".
 *   lab-floor-nk hold OBJ PROG DEV peer|primary [PROG DEV peer|primary]...
 *	load OBJ, attach each PROG to netkit primary DEV (of the current netns) as
 *	BPF_NETKIT_PEER (runs in the peer's transmit) or BPF_NETKIT_PRIMARY, print "ready" and
 *	keep the links until killed: the links die with this process.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* uapi values of kernels 6.7+ (include/uapi/linux/if_link.h, bpf.h); absent from these headers */
#define NK_IFLA_PEER_INFO 1
#define NK_IFLA_MODE	  5
#define NK_MODE_L2	  0
#define NK_ATTACH_PRIMARY 54
#define NK_ATTACH_PEER	  55

static int nk_add(const char *primary, const char *peer, const char *nspath)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlattr *linkinfo, *data, *pinfo;
	struct ifinfomsg *ifm, *pifm;
	struct mnl_socket *nl;
	int nsfd, ret;

	nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		fprintf(stderr, "lab-floor-nk: netns '%s': %s\n", nspath, strerror(errno));
		return 1;
	}
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, primary);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "netkit");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	mnl_attr_put_u32(nlh, NK_IFLA_MODE, NK_MODE_L2);
	/* The peer's attributes: an ifinfomsg, then its own IFLA_* (as veth's VETH_INFO_PEER). */
	pinfo = mnl_attr_nest_start(nlh, NK_IFLA_PEER_INFO);
	pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
	memset(pifm, 0, sizeof(*pifm));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)nsfd);
	mnl_attr_nest_end(nlh, pinfo);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		fprintf(stderr, "lab-floor-nk: netlink: %s\n", strerror(errno));
		return 1;
	}
	ret = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (ret > 0)
		ret = mnl_cb_run(buf, (size_t)ret, 1, mnl_socket_get_portid(nl), NULL, NULL);
	if (ret < 0) {
		fprintf(stderr, "lab-floor-nk: netkit pair %s/%s: %s\n", primary, peer,
			strerror(errno));
		return 1;
	}
	mnl_socket_close(nl);
	close(nsfd);
	return 0;
}

static int nk_hold(int argc, char **argv)
{
	struct bpf_object *obj = bpf_object__open_file(argv[0], NULL);

	if (!obj || libbpf_get_error(obj) || bpf_object__load(obj)) {
		fprintf(stderr, "lab-floor-nk: %s: load failed\n", argv[0]);
		return 1;
	}
	for (int i = 1; i + 2 < argc; i += 3) {
		struct bpf_program *p = bpf_object__find_program_by_name(obj, argv[i]);
		int idx = (int)if_nametoindex(argv[i + 1]);
		int at = !strcmp(argv[i + 2], "peer") ? NK_ATTACH_PEER : NK_ATTACH_PRIMARY;

		if (!p || !idx ||
		    bpf_link_create(bpf_program__fd(p), idx, (enum bpf_attach_type)at, NULL) < 0) {
			fprintf(stderr, "lab-floor-nk: %s on %s (%s): %s\n", argv[i], argv[i + 1],
				argv[i + 2],
				!p     ? "no such program"
				: !idx ? "no such device"
				       : strerror(errno));
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "add"))
		return nk_add(argv[2], argv[3], argv[4]);
	if (argc >= 6 && (argc - 3) % 3 == 0 && !strcmp(argv[1], "hold"))
		return nk_hold(argc - 2, argv + 2);
	fprintf(stderr, "usage: lab-floor-nk add PRIMARY PEER NETNS_PATH\n"
			"       lab-floor-nk hold OBJ PROG DEV peer|primary...\n");
	return 2;
}
