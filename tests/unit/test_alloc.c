// SPDX-License-Identifier: Apache-2.0
/* control/alloc.c: ClusterIP and NodePort bitmap allocators. */
#include <errno.h>
#include <stddef.h> /* alloc.h uses size_t without including it */

#include "control/alloc.h"
#include "harness.h"
#include "sluice/err.h"

TEST(ipalloc_exhausts_a_slash29)
{
	char err[160], ip[16], seen[6][16];
	struct ipalloc *a = ipalloc_new("198.18.0.0/29", err, sizeof(err));
	int i;

	if (!ASSERT_NOT_NULL(a, "new"))
		return;
	ASSERT_EQ(ipalloc_size(a), 6, "6 usable in a /29");
	ASSERT_STREQ(ipalloc_cidr(a), "198.18.0.0/29", "cidr");
	for (i = 0; i < 6; i++) {
		if (!ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "next"))
			goto out;
		strcpy(seen[i], ip);
	}
	ASSERT_STREQ(seen[0], "198.18.0.1", "first after network");
	ASSERT_STREQ(seen[5], "198.18.0.6", "last before broadcast");
	ASSERT_EQ(ipalloc_used(a), 6, "all used");
	ASSERT_EQ(ipalloc_next(a, ip, sizeof(ip)), -SL_ERR_EXHAUSTED, "exhausted");
	ipalloc_release(a, "198.18.0.3");
	ASSERT_FALSE(ipalloc_in_use(a, "198.18.0.3"), "released");
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "next after release");
	ASSERT_STREQ(ip, "198.18.0.3", "the only free one");
	ASSERT_EQ(ipalloc_next(a, ip, sizeof(ip)), -SL_ERR_EXHAUSTED, "exhausted again");
out:
	ipalloc_free(a);
}

TEST(ipalloc_take_release_in_use)
{
	char err[160];
	struct ipalloc *a = ipalloc_new("198.18.128.0/20", err, sizeof(err));

	if (!ASSERT_NOT_NULL(a, "new"))
		return;
	ASSERT_EQ(ipalloc_size(a), 4094, "size");
	ASSERT_OK(ipalloc_take(a, "198.18.128.10"), "take");
	ASSERT_TRUE(ipalloc_in_use(a, "198.18.128.10"), "in use");
	ASSERT_EQ(ipalloc_take(a, "198.18.128.10"), -EEXIST, "take twice");
	ASSERT_EQ(ipalloc_used(a), 1, "used");
	ipalloc_release(a, "198.18.128.10");
	ASSERT_FALSE(ipalloc_in_use(a, "198.18.128.10"), "released");
	ASSERT_EQ(ipalloc_used(a), 0, "used after release");
	ipalloc_release(a, "198.18.128.10"); /* double release is harmless */
	ipalloc_release(a, "10.0.0.1");	     /* out of range is ignored */
	ipalloc_release(a, "garbage");
	ASSERT_EQ(ipalloc_used(a), 0, "still zero");
	ASSERT_OK(ipalloc_take(a, "198.18.143.254"), "last usable");
	ipalloc_free(a);
}

TEST(ipalloc_rejects_network_broadcast_outside_and_junk)
{
	char err[160];
	struct ipalloc *a = ipalloc_new("198.18.0.0/24", err, sizeof(err));

	if (!ASSERT_NOT_NULL(a, "new"))
		return;
	ASSERT_EQ(ipalloc_take(a, "198.18.0.0"), -ERANGE, "network");
	ASSERT_EQ(ipalloc_take(a, "198.18.0.255"), -ERANGE, "broadcast");
	ASSERT_EQ(ipalloc_take(a, "198.18.1.1"), -ERANGE, "outside");
	ASSERT_EQ(ipalloc_take(a, "10.0.0.1"), -ERANGE, "below");
	ASSERT_EQ(ipalloc_take(a, "198.18.0"), -EINVAL, "short");
	ASSERT_EQ(ipalloc_take(a, "fd00::1"), -EINVAL, "ipv6");
	ASSERT_EQ(ipalloc_take(a, ""), -EINVAL, "empty");
	ASSERT_EQ(ipalloc_take(a, NULL), -EINVAL, "NULL");
	ASSERT_FALSE(ipalloc_in_use(a, "198.18.0.0"), "network never in use");
	ASSERT_EQ(ipalloc_used(a), 0, "nothing taken");
	ipalloc_free(a);
}

TEST(ipalloc_nth_addresses)
{
	char err[160], ip[16];
	struct ipalloc *a = ipalloc_new("10.96.0.0/12", err, sizeof(err));

	if (!ASSERT_NOT_NULL(a, "new"))
		return;
	ASSERT_OK(ipalloc_nth(a, 1, ip, sizeof(ip)), "nth 1");
	ASSERT_STREQ(ip, "10.96.0.1", "kubernetes service IP");
	ASSERT_OK(ipalloc_nth(a, 10, ip, sizeof(ip)), "nth 10");
	ASSERT_STREQ(ip, "10.96.0.10", "dns IP");
	ASSERT_OK(ipalloc_nth(a, ipalloc_size(a), ip, sizeof(ip)), "last");
	ASSERT_STREQ(ip, "10.111.255.254", "last usable");
	ASSERT_EQ(ipalloc_nth(a, 0, ip, sizeof(ip)), -ERANGE, "zero");
	ASSERT_EQ(ipalloc_nth(a, ipalloc_size(a) + 1, ip, sizeof(ip)), -ERANGE, "broadcast");
	ASSERT_EQ(ipalloc_nth(a, 1, ip, 4), -ENOSPC, "small buffer");
	ipalloc_free(a);
}

TEST(ipalloc_cursor_rotates)
{
	char err[160], ip[16];
	struct ipalloc *a = ipalloc_new("198.18.0.0/28", err, sizeof(err));

	if (!ASSERT_NOT_NULL(a, "new"))
		return;
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "1");
	ASSERT_STREQ(ip, "198.18.0.1", "first");
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "2");
	ASSERT_STREQ(ip, "198.18.0.2", "second");
	ipalloc_release(a, "198.18.0.1");
	/* the just-freed .1 is not reused: the cursor moves on */
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "3");
	ASSERT_STREQ(ip, "198.18.0.3", "cursor moves on");
	/* take() of an address ahead of the cursor is skipped by next() */
	ASSERT_OK(ipalloc_take(a, "198.18.0.4"), "take ahead");
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "5");
	ASSERT_STREQ(ip, "198.18.0.5", "skips taken");
	/* fill to the end, then the cursor wraps to the freed .1 */
	for (int i = 6; i <= 14; i++)
		ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "fill");
	ASSERT_STREQ(ip, "198.18.0.14", "last");
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "wrap");
	ASSERT_STREQ(ip, "198.18.0.1", "wrapped to the freed address");
	ASSERT_EQ(ipalloc_next(a, ip, sizeof(ip)), -SL_ERR_EXHAUSTED, "full");
	ipalloc_free(a);
}

TEST(ipalloc_large_range_full_word_skip)
{
	char err[160], ip[16];
	struct ipalloc *a = ipalloc_new("10.0.0.0/16", err, sizeof(err));
	int rc = 0;

	if (!ASSERT_NOT_NULL(a, "new"))
		return;
	for (uint32_t i = 0; i < ipalloc_size(a) && !rc; i++)
		rc = ipalloc_next(a, ip, sizeof(ip));
	ASSERT_OK(rc, "fill a /16");
	ASSERT_STREQ(ip, "10.0.255.254", "last");
	ASSERT_EQ(ipalloc_next(a, ip, sizeof(ip)), -SL_ERR_EXHAUSTED, "full");
	ipalloc_release(a, "10.0.128.7");
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "finds the hole past full words");
	ASSERT_STREQ(ip, "10.0.128.7", "the hole");
	ipalloc_free(a);
}

TEST(ipalloc_bad_cidrs)
{
	static const struct {
		const char *cidr, *want;
	} cases[] = {
		{"", "not a valid IPv4 CIDR"},
		{"198.18.0.0", "not a valid IPv4 CIDR"},
		{"198.18.0.0/", "not a valid IPv4 CIDR"},
		{"198.18.0.0/x", "not a valid IPv4 CIDR"},
		{"198.18.0.0/33", "not a valid IPv4 CIDR"},
		{"198.18.0.0/-1", "not a valid IPv4 CIDR"},
		{"198.18.0/24", "not a valid IPv4 CIDR"},
		{"nonsense/24", "not a valid IPv4 CIDR"},
		{"198.18.0.0/31", "outside /8../30"},
		{"198.18.0.0/32", "outside /8../30"},
		{"10.0.0.0/7", "outside /8../30"},
		{"198.18.0.1/24", "host bits are set; did you mean 198.18.0.0/24?"},
		{"fd00::/108", "IPv6 service CIDRs are not supported yet"},
	};
	char err[160];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ipalloc *a;

		err[0] = '\0';
		errno = 0;
		a = ipalloc_new(cases[i].cidr, err, sizeof(err));
		if (!ASSERT_NULL(a, cases[i].cidr)) {
			ipalloc_free(a);
			continue;
		}
		ASSERT_EQ(errno, EINVAL, "errno");
		if (!ASSERT_TRUE(strstr(err, cases[i].want) != NULL, cases[i].cidr))
			fprintf(stderr, "    got: %s\n", err);
		ASSERT_TRUE(strstr(err, cases[i].cidr) != NULL, "message names the input");
	}
	ASSERT_NULL(ipalloc_new(NULL, err, sizeof(err)), "NULL cidr");
	ipalloc_free(NULL);
}

TEST(ipalloc_slash30_and_slash8)
{
	char err[160], ip[16];
	struct ipalloc *a = ipalloc_new("198.18.0.4/30", err, sizeof(err));

	if (!ASSERT_NOT_NULL(a, "/30"))
		return;
	ASSERT_EQ(ipalloc_size(a), 2, "two usable");
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "1");
	ASSERT_STREQ(ip, "198.18.0.5", "first");
	ASSERT_OK(ipalloc_next(a, ip, sizeof(ip)), "2");
	ASSERT_STREQ(ip, "198.18.0.6", "second");
	ASSERT_EQ(ipalloc_next(a, ip, sizeof(ip)), -SL_ERR_EXHAUSTED, "full");
	ipalloc_free(a);
	a = ipalloc_new("10.0.0.0/8", err, sizeof(err));
	if (!ASSERT_NOT_NULL(a, "/8"))
		return;
	ASSERT_EQ(ipalloc_size(a), (1u << 24) - 2, "size /8");
	ASSERT_OK(ipalloc_take(a, "10.255.255.254"), "last of /8");
	ipalloc_free(a);
}

TEST(portalloc_basics_and_exhaustion)
{
	char err[160];
	struct portalloc *a = portalloc_new("30000-30003", err, sizeof(err));
	int lo, hi, p = 0;

	if (!ASSERT_NOT_NULL(a, "new"))
		return;
	portalloc_range(a, &lo, &hi);
	ASSERT_EQ(lo, 30000, "lo");
	ASSERT_EQ(hi, 30003, "hi");
	ASSERT_OK(portalloc_take(a, 30001), "take");
	ASSERT_EQ(portalloc_take(a, 30001), -EEXIST, "take twice");
	ASSERT_EQ(portalloc_take(a, 29999), -ERANGE, "below");
	ASSERT_EQ(portalloc_take(a, 30004), -ERANGE, "above");
	ASSERT_TRUE(portalloc_in_use(a, 30001), "in use");
	ASSERT_FALSE(portalloc_in_use(a, 30000), "free");
	ASSERT_FALSE(portalloc_in_use(a, 80), "out of range");
	ASSERT_OK(portalloc_next(a, &p), "next");
	ASSERT_EQ(p, 30000, "first");
	ASSERT_OK(portalloc_next(a, &p), "next");
	ASSERT_EQ(p, 30002, "skips taken");
	ASSERT_OK(portalloc_next(a, &p), "next");
	ASSERT_EQ(p, 30003, "last");
	ASSERT_EQ(portalloc_next(a, &p), -SL_ERR_EXHAUSTED, "exhausted");
	portalloc_release(a, 30000);
	portalloc_release(a, 1);     /* ignored */
	portalloc_release(a, 70000); /* ignored */
	ASSERT_FALSE(portalloc_in_use(a, 30000), "released");
	ASSERT_OK(portalloc_next(a, &p), "after release");
	ASSERT_EQ(p, 30000, "wraps to freed port");
	portalloc_free(a);
	portalloc_free(NULL);
}

TEST(portalloc_cursor_rotates)
{
	char err[160];
	struct portalloc *a = portalloc_new("30000-30009", err, sizeof(err));
	int p = 0;

	if (!ASSERT_NOT_NULL(a, "new"))
		return;
	ASSERT_OK(portalloc_next(a, &p), "1");
	ASSERT_EQ(p, 30000, "first");
	portalloc_release(a, 30000);
	ASSERT_OK(portalloc_next(a, &p), "2");
	ASSERT_EQ(p, 30001, "freed port not reused at once");
	portalloc_free(a);
}

TEST(portalloc_range_forms_and_errors)
{
	static const struct {
		const char *range, *want; /* want NULL = valid */
		int lo, hi;
	} cases[] = {
		{"30000-32767", NULL, 30000, 32767},
		{"30000+767", NULL, 30000, 30767},
		{"8080", NULL, 8080, 8080},
		{"1-65535", NULL, 1, 65535},
		{"", "want LOW-HIGH", 0, 0},
		{"abc", "want LOW-HIGH", 0, 0},
		{"30000-", "want LOW-HIGH", 0, 0},
		{"-30000", "want LOW-HIGH", 0, 0},
		{"30000-32767x", "want LOW-HIGH", 0, 0},
		{"30000 - 32767", "want LOW-HIGH", 0, 0},
		{"3-2-1", "want LOW-HIGH", 0, 0},
		{"32767-30000", "start 32767 is after end 30000", 0, 0},
		{"0-100", "within 1-65535", 0, 0},
		{"60000-70000", "within 1-65535", 0, 0},
		{"65000+1000", "within 1-65535", 0, 0},
		{"99999999999-1", "want LOW-HIGH", 0, 0},
	};
	char err[160];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct portalloc *a;
		int lo = 0, hi = 0;

		err[0] = '\0';
		a = portalloc_new(cases[i].range, err, sizeof(err));
		if (!cases[i].want) {
			if (!ASSERT_NOT_NULL(a, cases[i].range))
				continue;
			portalloc_range(a, &lo, &hi);
			ASSERT_EQ(lo, cases[i].lo, cases[i].range);
			ASSERT_EQ(hi, cases[i].hi, cases[i].range);
			portalloc_free(a);
			continue;
		}
		if (!ASSERT_NULL(a, cases[i].range)) {
			portalloc_free(a);
			continue;
		}
		if (!ASSERT_TRUE(strstr(err, cases[i].want) != NULL, cases[i].range))
			fprintf(stderr, "    got: %s\n", err);
	}
	ASSERT_NULL(portalloc_new(NULL, err, sizeof(err)), "NULL");
}
