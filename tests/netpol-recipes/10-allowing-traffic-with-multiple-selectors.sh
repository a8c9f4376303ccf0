# SPDX-License-Identifier: Apache-2.0
# Recipe 10: ALLOW traffic from apps using multiple selectors (app=bookstore,role=db from
# three podSelectors, OR'ed). The db pod serves the TCP/UDP echo on 6379.
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/db, default/search, default/other     n2: default/api, default/catalog,
#       default/frontend (app=bookstore,role=frontend)
{
	pod default db n1 'app: bookstore, role: db' 80 6379
	pod default search n1 'app: bookstore, role: search'
	pod default api n2 'app: bookstore, role: api'
	pod default catalog n2 'app: inventory, role: web'
	pod default other n1 'app: other'
	pod default frontend n2 'app: bookstore, role: frontend'
} | apply pods
ready default/db default/search default/api default/catalog default/other default/frontend

apply redis-allow-services <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: redis-allow-services
spec:
  podSelector:
    matchLabels:
      app: bookstore
      role: db
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: bookstore
          role: search
    - podSelector:
        matchLabels:
          app: bookstore
          role: api
    - podSelector:
        matchLabels:
          app: inventory
          role: web
Y
changed
allowed catalog-allowed default/catalog tcp default/db 6379
allowed catalog-udp-allowed default/catalog udp default/db 6379
allowed search-same-node-allowed default/search tcp default/db 6379
allowed api-allowed default/api tcp default/db 6379
denied other-denied default/other tcp default/db 6379
denied other-udp-denied default/other udp default/db 6379
# Every label of a selector must match: app=bookstore,role=frontend is none of the three.
denied frontend-denied default/frontend tcp default/db 6379
allowed egress-untouched default/db http default/other
late_ingress late-pod-isolated default/db-late n2 'app: bookstore, role: db' default/other tcp
clean default
