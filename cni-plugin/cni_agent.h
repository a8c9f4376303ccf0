/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client side of the sluice-cni <-> node agent endpoint protocol (the agent side is
 * agent/endpoint.c; a config without agentSocket skips registration).
 *
 * Transport: a SOCK_STREAM unix socket (the agent creates it 0600, root only). The plugin
 * connects, writes one JSON request terminated by '\n', and reads one JSON reply line:
 *   request  {"op":"add"|"del"|"check", "containerID":..., "ifname":..., "netns":...,
 *             "network":..., "ip":"198.18.64.2", "gateway":..., "hostIfname":"sl...",
 *             "hostIfindex":N, "mac":"...", "args":"K8S_POD_NAME=...;..."}
 *   reply    {"ok":true} or {"ok":false,"error":"why"}
 * "add" returns only after the agent has set up the endpoint's datapath state, so a pod
 * never starts before its host side is programmed.
 *
 * When the agent is down a DEL must still succeed: the request is written to the queue
 * directory as del-<hash>.json (0600, atomically via rename, at most CNI_AGENT_QUEUE_MAX
 * files) for the agent to replay at start and delete.
 */
#ifndef SLUICE_CNI_AGENT_H
#define SLUICE_CNI_AGENT_H

#include <stddef.h>

#define CNI_AGENT_QUEUE_MAX 256

/*
 * Sends req (one JSON object, no newline) and waits up to timeout_ms for the reply.
 * Returns 0 when the agent answered ok; -ECONNREFUSED/-ENOENT/-ETIMEDOUT/... when it could
 * not be reached (the caller maps these to CNI code 11); -EREMOTEIO when it answered with
 * an error (its text in why); -EPROTO for an unreadable reply.
 */
int cni_agent_call(const char *sock_path, int timeout_ms, const char *req, char *why,
		   size_t whylen);

/* Connects and closes: 0 when something listens on sock_path (STATUS). */
int cni_agent_probe(const char *sock_path, int timeout_ms);

/* Queues req under dir (created 0700) named by key's hash; replaces an older entry for the
 * same key. -ENOSPC when the queue is full. */
int cni_agent_queue(const char *dir, const char *key, const char *req);

#endif
