# SPDX-License-Identifier: Apache-2.0
# Recipe 01: DENY all traffic to an application (app=web,env=prod, no ingress rules).
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/web (app=web,env=prod), default/test-same, default/web-other (app=web)
#   n2: default/test
{
	pod default web n1 'app: web, env: prod'
	pod default web-other n1 'app: web'
	pod default test n2 'run: test'
	pod default test-same n1 'run: test'
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {namespace: default, name: web}
spec:
  selector: {app: web, env: prod}
  ports:
  - {name: http, port: 80}
  - {name: echo, port: 9000}
  - {name: echo-udp, port: 9000, protocol: UDP}
---
Y
} | apply pods
ready default/web default/web-other default/test default/test-same

allowed open-http default/test http default/web
allowed open-udp default/test udp default/web
# The recipe probes through the Service: policy applies after its translation.
WEB_SVC=$(kc get service web -o jsonpath='{.spec.clusterIP}')
svc_ok() { [[ $(probe default/test http "$WEB_SVC" 80) == "ok pod=default/web "* ]]; }
if until_ok 20 svc_ok; then ok "$(t open-service-http)"; else
	not_ok "$(t open-service-http)" "$(probe default/test http "$WEB_SVC" 80)"
fi

apply web-deny-all <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-deny-all
spec:
  podSelector:
    matchLabels:
      app: web
      env: prod
Y
changed
denied deny-http-cross-node default/test http default/web
denied deny-tcp-cross-node default/test tcp default/web
denied deny-udp-cross-node default/test udp default/web
denied deny-http-same-node default/test-same http default/web
denied deny-udp-same-node default/test-same udp default/web
reach deny-service-http default/test http "$WEB_SVC" 80 '^dropped$'
reach deny-service-udp default/test-same udp "$WEB_SVC" 9000 '^dropped$'
# Both labels must match: app=web alone is not selected.
allowed not-selected-reachable default/test http default/web-other
# Ingress-only: web's own egress stays open.
allowed egress-untouched-http default/web http default/test
allowed egress-untouched-udp default/web udp default/test
late_ingress late-pod-isolated default/web-late n2 'app: web, env: prod' default/test-same http
kc delete service web >/dev/null 2>&1
clean default
