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

#endif
