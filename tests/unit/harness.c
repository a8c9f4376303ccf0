// SPDX-License-Identifier: Apache-2.0
/*
 * Unit-test runner: runs every TEST() in the binary (collected in the
 * "sluice_tests" section) or only those named on the command line, printing
 * "ok - <binary>/<test>" or "not ok - ...". Exit status 1 if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int test_failed_current;

extern const struct test_case __start_sluice_tests[];
extern const struct test_case __stop_sluice_tests[];

int main(int argc, char **argv)
{
	const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (const struct test_case *t = __start_sluice_tests; t < __stop_sluice_tests; t++) {
		if (argc > 1) {
			int want = 0;
			for (int i = 1; i < argc; i++)
				want |= !strcmp(argv[i], t->name);
			if (!want)
				continue;
		}
		test_failed_current = 0;
		t->fn();
		printf("%s - %s/%s\n", test_failed_current ? "not ok" : "ok", prog, t->name);
		failed |= test_failed_current;
	}
	return failed;
}
