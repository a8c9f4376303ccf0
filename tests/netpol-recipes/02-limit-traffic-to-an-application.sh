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
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {namespace: default, name: apiserver}
spec:
  selector: {app: bookstore, role: api}
  ports:
  - {name: http, port: 80}
  - {name: echo, port: 9000}
  - {name: echo-udp, port: 9000, protocol: UDP}
---
Y
} | apply pods
ready default/apiserver default/test default/frontend default/frontend-same
API_SVC=$(kc get service apiserver -o jsonpath='{.spec.clusterIP}')
svc_ok() { [[ $(probe default/test http "$API_SVC" 80) == "ok pod=default/apiserver "* ]]; }
if until_ok 20 svc_ok; then ok "$(t open-service-http)"; else
	not_ok "$(t open-service-http)" "$(probe default/test http "$API_SVC" 80)"
fi

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
changed
denied unlabeled-http-denied default/test http default/apiserver
denied unlabeled-tcp-denied default/test tcp default/apiserver
denied unlabeled-udp-denied default/test udp default/apiserver
allowed bookstore-http-allowed default/frontend http default/apiserver
allowed bookstore-tcp-allowed default/frontend tcp default/apiserver
allowed bookstore-udp-allowed default/frontend udp default/apiserver
allowed bookstore-same-node-allowed default/frontend-same http default/apiserver
# Through the Service, as the recipe probes it.
reach unlabeled-service-denied default/test http "$API_SVC" 80 '^dropped$'
reach bookstore-service-allowed default/frontend http "$API_SVC" 80 '^ok pod=default/apiserver '
reach bookstore-service-udp-allowed default/frontend-same udp "$API_SVC" 9000 '^ok pod=default/apiserver '
# Ingress-only: the api server's egress and the frontends' ingress stay open.
allowed egress-untouched default/apiserver http default/test
allowed unselected-open default/test udp default/frontend
late_ingress late-pod-isolated default/apiserver-late n2 'app: bookstore, role: api' default/test http
kc delete service apiserver >/dev/null 2>&1
clean default
