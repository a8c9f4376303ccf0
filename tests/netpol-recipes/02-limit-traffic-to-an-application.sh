# SPDX-License-Identifier: Apache-2.0
# Recipe 02: LIMIT traffic to an application (app=bookstore,role=api only from app=bookstore).
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/apiserver (app=bookstore,role=api), default/frontend-same (app=bookstore)
#   n2: default/test (no app label), default/frontend (app=bookstore,role=frontend)
{
	pod default apiserver n1 'app: bookstore, role: api'
	pod default test n2 'run: test'
	pod default frontend n2 'app: bookstore, role: frontend'
	pod default frontend-same n1 'app: bookstore, role: frontend'
} | apply pods
ready default/apiserver default/test default/frontend default/frontend-same

apply api-allow <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow
spec:
  podSelector:
    matchLabels:
      app: bookstore
      role: api
  ingress:
  - from:
      - podSelector:
          matchLabels:
            app: bookstore
Y
sleep 1
denied unlabeled-http-denied default/test http default/apiserver
denied unlabeled-tcp-denied default/test tcp default/apiserver
denied unlabeled-udp-denied default/test udp default/apiserver
allowed bookstore-http-allowed default/frontend http default/apiserver
allowed bookstore-tcp-allowed default/frontend tcp default/apiserver
allowed bookstore-udp-allowed default/frontend udp default/apiserver
allowed bookstore-same-node-allowed default/frontend-same http default/apiserver
# Ingress-only: the api server's egress and the frontends' ingress stay open.
allowed egress-untouched default/apiserver http default/test
allowed unselected-open default/test udp default/frontend
late_ingress late-pod-isolated default/apiserver-late n2 'app: bookstore, role: api' default/test http
clean default
