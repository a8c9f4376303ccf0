// SPDX-License-Identifier: Apache-2.0
/* The nftables script of the cluster-egress masquerade (agent/masq.h). */
#include <errno.h>

#include "agent/masq.h"
#include "harness.h"

TEST(render_lists_every_node_cidr_and_address)
{
	const struct node_peer peers[] = {
		{"n1", "198.18.64.0/24", "198.18.0.11"},
		{"n2", "198.18.65.0/24", "198.18.0.12"},
		{"n3", NULL, "198.18.0.13"}, /* no podCIDR yet: its address still counts */
		{"n4", "not-a-cidr", "not-an-address"}, /* skipped */
	};
	struct sl_buf b = SL_BUF_INIT;

	if (ASSERT_OK(masq_render("198.18.64.0/24", peers, 4, &b), "render")) {
		ASSERT_STREQ(
			b.data,
			"add table ip sluice_masq\ndelete table ip sluice_masq\n"
			"table ip sluice_masq {\n\tset cluster {\n\t\ttype ipv4_addr\n"
			"\t\tflags interval\n\t\telements = { 198.18.64.0/24, 198.18.0.11, "
			"198.18.65.0/24, 198.18.0.12, 198.18.0.13 }\n\t}\n\tchain post {\n"
			"\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
			"\t\tip saddr 198.18.64.0/24 ip daddr != @cluster masquerade\n\t}\n}\n",
			"script");
	}
	sl_buf_fini(&b);
}

TEST(render_without_pod_cidr_is_nothing)
{
	struct sl_buf b = SL_BUF_INIT;

	ASSERT_EQ(masq_render(NULL, NULL, 0, &b), -EINVAL, "no podCIDR");
	ASSERT_EQ(masq_render("198.18.64.0/33", NULL, 0, &b), -EINVAL, "bad podCIDR");
	ASSERT_EQ(masq_render("198.18.64.0/24; flush ruleset", NULL, 0, &b), -EINVAL,
		  "no injection into the script");
	sl_buf_fini(&b);
}
