#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kube-proxy's service semantics (agent_semantics.sh) against the iptables
# dataplane: sluice-agent --dataplane iptables, agent and clients in one netns.
exec env SUITE=agent_semantics_iptables DATAPLANE=iptables bash "$(dirname "$0")/agent_semantics.sh" "$@"
