/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `sluicectl flows`: streams the NetworkPolicy decisions of one node (the ring buffer
 * sl_np_flow_v1 that bpf/lib/sl_policy.h fills with the first packet of every decided flow)
 * as text lines or JSON lines, with pod names: addresses are resolved to namespace/name and
 * policy ids to namespace/name from the API server (--kubeconfig, $KUBECONFIG or --server),
 * re-listed when an unknown address or id shows up (at most once a second). Without an API
 * the addresses and ids are printed as they are.
 *
 * Records already in the ring when it starts are printed first (the recent past). The ring
 * has one read position: two readers at once split the records between them.
 */
#ifndef SLUICE_AGENT_FLOWS_H
#define SLUICE_AGENT_FLOWS_H

/* argv[0] = "flows". Returns the process exit status. */
int flows_main(int argc, char **argv);

#endif
