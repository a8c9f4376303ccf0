// SPDX-License-Identifier: Apache-2.0
/* Large zeroed tables on transparent huge pages (see bigmem.h). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bigmem.h"

#define BIG_PAGE (2UL << 20)

static size_t big_len(size_t bytes)
{
	return (bytes + BIG_PAGE - 1) & ~(BIG_PAGE - 1);
}

void *sl_big_calloc(size_t bytes)
{
	size_t len = big_len(bytes);
	char *p, *a;

	if (bytes < BIG_PAGE)
		return calloc(1, bytes);
	/* Over-map by one huge page and trim to a 2 MiB aligned range: THP
	 * only backs aligned 2 MiB extents. */
	p = mmap(NULL, len + BIG_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return calloc(1, bytes);
	a = (char *)(((uintptr_t)p + BIG_PAGE - 1) & ~(uintptr_t)(BIG_PAGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + len < p + len + BIG_PAGE)
		munmap(a + len, (size_t)(p + len + BIG_PAGE - (a + len)));
	madvise(a, len, MADV_HUGEPAGE); /* best effort: 4 KiB pages otherwise */
	return a;
}

void sl_big_free(void *p, size_t bytes)
{
	if (!p)
		return;
	if (bytes < BIG_PAGE)
		free(p);
	else
		munmap(p, big_len(bytes));
}
