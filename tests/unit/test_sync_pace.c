// SPDX-License-Identifier: Apache-2.0
/*
 * The pause before a sync (agent/sync_pace.h): proportional to the last
 * sync's cost, capped at sync_delay_ms, counted from that sync's end, none
 * after a quiet period. The fixed pause it replaces made a new Service (its
 * slice, then the Service: two events) wait 5 ms behind a 0.2 ms sync. And
 * the back-off of the full resync after failed syncs.
 */
#include "agent/sync_pace.h"
#include "harness.h"

TEST(sync_pace_cheap_sync_short_pause)
{
	/* 0.2 ms sync just ended: 4 x 0.2 ms, not 5 ms. */
	ASSERT_EQ(sync_pace_wait_us(0.0, 0.0002, 5), 800, "right after a 0.2 ms sync");
	ASSERT_EQ(sync_pace_wait_us(0.0003, 0.0002, 5), 500, "0.3 ms after it");
	ASSERT_EQ(sync_pace_wait_us(0.001, 0.0002, 5), 0, "past 4 x its cost: at once");
}

TEST(sync_pace_expensive_sync_capped)
{
	/* A start at 50k Services (0.4 s sync) keeps the old 5 ms pause. */
	ASSERT_EQ(sync_pace_wait_us(0.0, 0.4, 5), 5000, "capped at sync_delay_ms");
	ASSERT_EQ(sync_pace_wait_us(0.002, 0.4, 5), 3000, "counted from the sync's end");
	ASSERT_EQ(sync_pace_wait_us(0.006, 0.4, 5), 0, "quiet past the cap: at once");
}

TEST(sync_pace_edges)
{
	ASSERT_EQ(sync_pace_wait_us(0.0, 0.4, 0), 0, "sync_delay_ms 0: never waits");
	ASSERT_EQ(sync_pace_wait_us(-1.0, 0.001, 5), 4000, "clock went back: the whole pause");
	ASSERT_EQ(sync_pace_wait_us(0.0, 0.0, 5), 0, "a sync that took no time: at once");
}

TEST(sync_retry_backs_off)
{
	unsigned d = 0, seq[8];

	for (int i = 0; i < 8; i++)
		seq[i] = d = sync_retry_delay_s(d);
	ASSERT_EQ(seq[0], 1, "first failure: 1 s");
	ASSERT_EQ(seq[1], 2, "doubles");
	ASSERT_EQ(seq[4], 16, "1, 2, 4, 8, 16");
	ASSERT_EQ(seq[5], SYNC_RETRY_MAX_S, "then the cap");
	ASSERT_EQ(seq[7], SYNC_RETRY_MAX_S, "and it stays there");
	ASSERT_EQ(sync_retry_delay_s(0), 1, "a success resets it");
	ASSERT_EQ(sync_retry_delay_s(1000), SYNC_RETRY_MAX_S, "never past the cap");
}
