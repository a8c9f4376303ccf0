// SPDX-License-Identifier: Apache-2.0
/* Large zeroed tables on transparent huge pages, and the heap mapped ahead
 * of use (see bigmem.h). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

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

/* --- the heap mapped ahead ----------------------------------------------------------- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#define WARM_POLL_NS  2000000L	   /* 2 ms: a 16 MiB pad lasts ~50x that at a start */
#define GLIBC_TOP_PAD (128 * 1024) /* glibc's default M_TOP_PAD (DEFAULT_TOP_PAD) */

static struct {
	pthread_mutex_t mu; /* start/stop */
	pthread_t th;
	bool running;
	atomic_bool stop;
} warm = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *heap_warm_run(void *arg)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), done = (uintptr_t)sbrk(0);
	const struct timespec poll = {.tv_nsec = WARM_POLL_NS};

	(void)arg;
	while (!atomic_load(&warm.stop)) {
		/* The break only moves under malloc's lock; a stale read is
		 * caught on the next round. Populating pages malloc already
		 * wrote is a no-op, so racing its writes is harmless. */
		uintptr_t brk = (uintptr_t)sbrk(0);

		if (brk > done) {
			uintptr_t from = done & ~(page - 1);

			if (madvise((void *)from, brk - from, MADV_POPULATE_WRITE) &&
			    (errno == EINVAL || errno == ENOSYS))
				break; /* an older kernel: faults as before */
			done = brk;
		} else if (brk < done) {
			done = brk; /* trimmed */
		}
		nanosleep(&poll, NULL);
	}
	return NULL;
}

void sl_heap_warm_start(size_t pad)
{
	pthread_mutex_lock(&warm.mu);
	if (!warm.running) {
		atomic_store(&warm.stop, false);
		mallopt(M_TOP_PAD, (int)pad);
		warm.running = !pthread_create(&warm.th, NULL, heap_warm_run, NULL);
		if (!warm.running)
			mallopt(M_TOP_PAD, GLIBC_TOP_PAD);
	}
	pthread_mutex_unlock(&warm.mu);
}

void sl_heap_warm_stop(void)
{
	pthread_mutex_lock(&warm.mu);
	if (warm.running) {
		atomic_store(&warm.stop, true);
		pthread_join(warm.th, NULL);
		warm.running = false;
		mallopt(M_TOP_PAD, GLIBC_TOP_PAD);
	}
	pthread_mutex_unlock(&warm.mu);
}
