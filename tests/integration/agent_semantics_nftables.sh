#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kube-proxy's service semantics (agent_semantics.sh) against the nftables
# dataplane: sluice-agent --dataplane nftables, agent and clients in one netns.
exec env SUITE=agent_semantics_nftables DATAPLANE=nftables bash "$(dirname "$0")/agent_semantics.sh" "$@"
