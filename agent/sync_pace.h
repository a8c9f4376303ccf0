/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How long a change waits before the agent syncs it (agent.c, mark_dirty).
 *
 * The pause between syncs exists so that a stream of events is batched
 * instead of costing one sync each; what a sync costs is what it took last
 * time. A fixed pause made every change that arrived within sync_delay_ms of
 * the previous sync wait the whole pause, however cheap syncs were: a new
 * Service is two objects (its EndpointSlice and the Service, a few hundred
 * microseconds apart), the first one's sync took ~0.2 ms and the second
 * waited 5 ms, which was most of the ~9.5 ms a Service took end to end at
 * every scale from 1 to 50,000 Services (tools/bench/modes.sh). The pause is
 * now SYNC_PACE times the last sync's duration, capped at sync_delay_ms, and
 * counted from the end of that sync: syncs take at most 1 / (1 + SYNC_PACE)
 * of the loop during a stream, and a cheap sync delays the next change by
 * well under a millisecond.
 */
#ifndef SLUICE_AGENT_SYNC_PACE_H
#define SLUICE_AGENT_SYNC_PACE_H

#define SYNC_PACE 4

/*
 * The wait in microseconds before the next sync may start, for a sync that
 * ended since_end_s ago and took last_sync_s; max_delay_ms caps the pause
 * (the agent's sync_delay_ms). 0: sync at once.
 */
static inline long sync_pace_wait_us(double since_end_s, double last_sync_s, int max_delay_ms)
{
	double gap = SYNC_PACE * last_sync_s, cap = max_delay_ms / 1e3;

	if (gap > cap)
		gap = cap;
	if (since_end_s >= gap)
		return 0;
	if (since_end_s < 0)
		since_end_s = 0;
	return (long)((gap - since_end_s) * 1e6 + 0.5);
}

/*
 * After failed syncs the next (full) resync waits a back-off that doubles
 * per failure in a row, from SYNC_RETRY_MIN_S to SYNC_RETRY_MAX_S: a map
 * that stays full (more backends than it holds) was resynced in full every
 * second, forever, ~22% of a core at 500,000 backends. An event brings a
 * pending retry forward, but to no sooner than SYNC_RETRY_MIN_S after the
 * failed sync (agent.c, mark_dirty): a change that frees room waits at most
 * that, and churn against a full map costs one full resync a second, as
 * before. prev_s is the last retry's delay, 0 after a sync that succeeded;
 * returns the delay for this one.
 */
#define SYNC_RETRY_MIN_S 1
#define SYNC_RETRY_MAX_S 30

static inline unsigned sync_retry_delay_s(unsigned prev_s)
{
	if (!prev_s)
		return SYNC_RETRY_MIN_S;
	return prev_s >= SYNC_RETRY_MAX_S / 2 ? SYNC_RETRY_MAX_S : prev_s * 2;
}

#endif
