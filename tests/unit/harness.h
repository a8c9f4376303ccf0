/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal unit-test harness (modelled on the kernel's test_progs.h).
 * ASSERT_* macros print the failing expression and values, mark the current
 * test failed, and evaluate to false so a test reads
 *     if (!ASSERT_OK(err, "open")) goto cleanup;
 * Each test binary prints one TAP-like line per test ("ok - name" /
 * "not ok - name"); tests/run.sh counts them.
 */
#ifndef SLUICE_TEST_HARNESS_H
#define SLUICE_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int test_failed_current;

#define TEST_FAIL_AT(fmt, ...)                                                     \
	(fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__), \
	 test_failed_current = 1, false)

#define ASSERT_TRUE(cond, name) ((cond) ? true : TEST_FAIL_AT("%s: expected true: %s", name, #cond))
#define ASSERT_FALSE(cond, name) \
	(!(cond) ? true : TEST_FAIL_AT("%s: expected false: %s", name, #cond))
#define ASSERT_OK(err, name)                                                          \
	({                                                                            \
		long long _e = (long long)(err);                                      \
		_e == 0 ? true : TEST_FAIL_AT("%s: unexpected error %lld", name, _e); \
	})
#define ASSERT_ERR(err, name)                                                              \
	({                                                                                 \
		long long _e = (long long)(err);                                           \
		_e < 0 ? true : TEST_FAIL_AT("%s: expected an error, got %lld", name, _e); \
	})
#define ASSERT_EQ(a, b, name)                                                                 \
	({                                                                                    \
		long long _a = (long long)(a), _b = (long long)(b);                           \
		_a == _b ? true                                                               \
			 : TEST_FAIL_AT("%s: %lld != %lld (%s vs %s)", name, _a, _b, #a, #b); \
	})
#define ASSERT_NEQ(a, b, name)                                                                \
	({                                                                                    \
		long long _a = (long long)(a), _b = (long long)(b);                           \
		_a != _b ? true : TEST_FAIL_AT("%s: both %lld (%s vs %s)", name, _a, #a, #b); \
	})
#define ASSERT_STREQ(a, b, name)                                                         \
	({                                                                               \
		const char *_a = (a), *_b = (b);                                         \
		(_a && _b && !strcmp(_a, _b))                                            \
			? true                                                           \
			: TEST_FAIL_AT("%s: \"%s\" != \"%s\"", name, _a ? _a : "(null)", \
				       _b ? _b : "(null)");                              \
	})
#define ASSERT_NULL(p, name)	 ((p) == NULL ? true : TEST_FAIL_AT("%s: expected NULL", name))
#define ASSERT_NOT_NULL(p, name) ((p) != NULL ? true : TEST_FAIL_AT("%s: unexpected NULL", name))

/* Registers a test function; order of definition is run order. */
struct test_case {
	const char *name;
	void (*fn)(void);
};

#define TEST(fn_name)                                                                           \
	static void fn_name(void);                                                              \
	static const struct test_case __test_##fn_name __attribute__((                          \
		used, section("sluice_tests"), aligned(sizeof(void *)))) = {#fn_name, fn_name}; \
	static void fn_name(void)

#endif
