# SPDX-License-Identifier: Apache-2.0
# Recipe 13 (from the fork that completes the series): ALLOW egress traffic to specific pods
# (app=frontend: DNS to kube-system's kube-dns, TCP 80 to app=backend-api, nothing else).
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/frontend (app=frontend,role=web)     n2: default/backend-api
#       (app=backend-api,role=api), default/database (app=database)
{
	pod default frontend n1 'app: frontend, role: web'
	pod default backend-api n2 'app: backend-api, role: api'
	pod default database n2 'app: database'
} | apply pods
ready default/frontend default/backend-api default/database
allowed open-database default/frontend http default/database

apply frontend-allow-egress-to-backend <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: frontend-allow-egress-to-backend
spec:
  podSelector:
    matchLabels:
      app: frontend
  policyTypes:
  - Egress
  egress:
  # Allow DNS resolution
  - to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  # Allow egress to backend-api pods
  - to:
    - podSelector:
        matchLabels:
          app: backend-api
    ports:
    - port: 80
      protocol: TCP
Y
changed
dns_allowed dns-udp-allowed default/frontend udp
dns_allowed dns-tcp-allowed default/frontend tcp
allowed backend-http-allowed default/frontend http default/backend-api
denied backend-other-port-denied default/frontend tcp default/backend-api
denied backend-udp-denied default/frontend udp default/backend-api
denied database-http-denied default/frontend http default/database
denied database-udp-denied default/frontend udp default/database
reach external-denied default/frontend tcp "$EXT_IP" 80 '^dropped$'
ext_dns_denied external-dns-denied default/frontend udp
# Egress-only: the frontend still accepts connections.
allowed ingress-untouched default/database http default/frontend
late_egress late-pod-first-packet-allowed default/frontend-late n2 'app: frontend' http \
	default/backend-api "ok pod=default/backend-api "
late_egress late-pod-first-packet-denied default/frontend-late2 n1 'app: frontend' http \
	default/database dropped
clean default
