/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Zeroed allocations for tables of megabytes (the backend id index, the
 * plan's backend records and hash buckets at a start), on 2 MiB transparent
 * huge pages where the kernel allows it (THP "madvise" or "always").
 *
 * Why: the first touch of a fresh 4 KiB page costs ~10-15 us on the VMs the
 * benchmarks run on (8 MiB touched = 70-120 ms of page faults); with huge
 * pages that is four faults. Sizes under 2 MiB, or a failed mmap, use
 * calloc. Free with sl_big_free() and the same size.
 */
#ifndef SLUICE_AGENT_BIGMEM_H
#define SLUICE_AGENT_BIGMEM_H

#include <stddef.h>

void *sl_big_calloc(size_t bytes);
void sl_big_free(void *p, size_t bytes);

/*
 * The heap's fresh pages mapped ahead of use, for a phase that grows it by
 * a lot (an agent start: ~140 MiB at 50,000 Services x 10). malloc is told
 * to extend the heap by `pad` bytes past each request (M_TOP_PAD), and a
 * thread maps every extension in with one MADV_POPULATE_WRITE: ~1 us a
 * page, plus 2-8 us on its first touch, instead of a fault of 11-22 us
 * (tools/bench/faultcost.c; -0.48 s of the agent's 2.18 s of CPU at that
 * start, on the benchmark VM). A kernel without
 * MADV_POPULATE_WRITE (< 5.14) keeps faulting as before. stop() ends the
 * thread and puts glibc's default pad back; both are idempotent.
 */
void sl_heap_warm_start(size_t pad);
void sl_heap_warm_stop(void);

#endif
