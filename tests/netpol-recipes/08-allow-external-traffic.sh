# SPDX-License-Identifier: Apache-2.0
# Recipe 08: ALLOW traffic from external clients (app=web `ingress: [{}]`) in a namespace
# denying everything else (recipe 03), and the variant opening only port 80. The external
# client is the lab's L-ext (198.18.0.250), through a NodePort Service on either node.
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/web (app=web)     n2: default/test
N1=198.18.0.11 N2=198.18.0.12
{
	pod default web n1 'app: web'
	pod default test n2 'run: test'
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {namespace: default, name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 80, nodePort: 30880}
  - {name: echo, port: 9000, targetPort: 9000, nodePort: 30900}
---
Y
} | apply pods
ready default/web default/test
ext_http_ok() { [[ $(probe ext http "$N1" 30880) == "ok pod=default/web "* ]]; }
if until_ok 30 ext_http_ok; then ok "$(t nodeport-open)"; else
	not_ok "$(t nodeport-open)" "$(probe ext http "$N1" 30880)"
fi
reach nodeport-open-other-node ext http "$N2" 30880 "^ok pod=default/web "

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
reach deny-all-external-denied ext http "$N1" 30880 '^dropped$'
reach deny-all-external-other-node-denied ext http "$N2" 30880 '^dropped$'
denied deny-all-pod-denied default/test http default/web

apply web-allow-external <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-external
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - {}
Y
changed
reach external-http-allowed ext http "$N1" 30880 "^ok pod=default/web "
reach external-http-other-node-allowed ext http "$N2" 30880 "^ok pod=default/web "
reach external-tcp-allowed ext tcp "$N1" 30900 "^ok pod=default/web "
allowed pod-http-allowed default/test http default/web
allowed pod-udp-allowed default/test udp default/web

# The variant: only port 80 is opened.
apply web-allow-external-80 <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-external
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - port: 80
Y
changed
reach port80-external-http-allowed ext http "$N1" 30880 "^ok pod=default/web "
reach port80-external-other-node-allowed ext http "$N2" 30880 "^ok pod=default/web "
reach port80-external-tcp-9000-denied ext tcp "$N1" 30900 '^dropped$'
allowed port80-pod-http-allowed default/test http default/web
denied port80-pod-tcp-9000-denied default/test tcp default/web
denied port80-pod-udp-denied default/test udp default/web
# A pod created now is isolated (but for port 80) before its first packet.
late_ingress late-pod-isolated default/web-late n2 'app: web' default/test tcp
allowed late-pod-port80-allowed default/test http default/web-late
kc delete service web >/dev/null 2>&1
clean default
