// SPDX-License-Identifier: Apache-2.0
/*
 * What a fresh anonymous page costs on this machine: faulted in on its first
 * touch, against mapped ahead with MADV_POPULATE_WRITE (what agent/bigmem.c's
 * heap warm-up does) and then touched. Behind the figures in
 * docs/datapath.md ("Starting from empty") and tools/bench/datapath-analysis.md.
 *
 *   cc -O2 -o /tmp/faultcost tools/bench/faultcost.c && /tmp/faultcost [MiB] [rounds]
 *
 * Each round maps MiB (default 128) twice, fresh: once touched a byte per
 * page, once populated and then touched. Prints per round the milliseconds
 * and the microseconds per page of each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *fresh(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	/* 4 KiB pages, as the heap gets them: no transparent huge pages. */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void touch(volatile char *p, size_t len, size_t page)
{
	for (size_t o = 0; o < len; o += page)
		p[o] = 1;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 128;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = mib << 20, pages = len / page;

	if (!mib || rounds < 1) {
		fprintf(stderr, "usage: faultcost [MiB > 0] [rounds > 0]\n");
		return 2;
	}
	printf("%zu MiB, %zu pages of %zu bytes\n", mib, pages, page);
	for (int r = 1; r <= rounds; r++) {
		char *a = fresh(len), *b = fresh(len);
		double t0, t1, t2, t3;

		t0 = now_ms();
		touch(a, len, page);
		t1 = now_ms();
		if (madvise(b, len, MADV_POPULATE_WRITE)) {
			perror("madvise(MADV_POPULATE_WRITE)");
			return 1;
		}
		t2 = now_ms();
		touch(b, len, page);
		t3 = now_ms();
		printf("round %d: first touch %.0f ms (%.2f us/page); populate %.0f ms (%.2f "
		       "us/page) "
		       "+ touch after %.0f ms (%.2f us/page)\n",
		       r, t1 - t0, (t1 - t0) * 1e3 / pages, t2 - t1, (t2 - t1) * 1e3 / pages,
		       t3 - t2, (t3 - t2) * 1e3 / pages);
		munmap(a, len);
		munmap(b, len);
	}
	return 0;
}
