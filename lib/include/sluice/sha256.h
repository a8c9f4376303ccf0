/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 (FIPS 180-4), for names that must match another implementation
 * bit for bit: kube-proxy derives its iptables chain names from
 * base32(sha256("ns/name:port" + protocol [+ "ip:port"])) (agent/px_iptables.c).
 * Not for secrets: no constant-time guarantees are made or needed.
 * Thread-safe: all state is in the caller's struct.
 */
#ifndef SLUICE_SHA256_H
#define SLUICE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SL_SHA256_LEN 32

struct sl_sha256 {
	uint32_t h[8];	 /* chaining state */
	uint64_t n;	 /* bytes hashed so far */
	uint8_t blk[64]; /* pending partial block */
	size_t blk_len;	 /* bytes in blk */
};

void sl_sha256_init(struct sl_sha256 *c);
void sl_sha256_update(struct sl_sha256 *c, const void *p, size_t n);
void sl_sha256_final(struct sl_sha256 *c, uint8_t out[SL_SHA256_LEN]);
/* One-shot digest of p[0..n). */
void sl_sha256(const void *p, size_t n, uint8_t out[SL_SHA256_LEN]);

#endif
