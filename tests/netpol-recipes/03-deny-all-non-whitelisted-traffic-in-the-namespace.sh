# SPDX-License-Identifier: Apache-2.0
# Recipe 03: DENY all non-whitelisted traffic in the namespace (default, podSelector with
# empty matchLabels, no ingress rules). Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/web, other3/client     n2: default/db, default/client
{
	ns other3 'purpose: client'
	pod default web n1 'app: web'
	pod default db n2 'app: db'
	pod default client n2 'run: client'
	pod other3 client n1 'run: client'
} | apply pods
ready default/web default/db default/client other3/client

apply default-deny-all <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: default-deny-all
  namespace: default
spec:
  podSelector:
    matchLabels:
Y
changed
denied in-namespace-http-denied default/client http default/web
denied in-namespace-udp-denied default/client udp default/web
denied in-namespace-same-node-denied default/client tcp default/db
denied other-namespace-http-denied other3/client http default/db
denied other-namespace-udp-denied other3/client udp default/web
# Ingress-only: default's pods still reach out, other namespaces stay open.
allowed egress-untouched-http default/web http other3/client
allowed egress-untouched-udp default/db udp other3/client
late_ingress late-pod-isolated default/late n1 'app: late' other3/client udp
clean default other3
