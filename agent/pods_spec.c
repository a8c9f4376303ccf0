// SPDX-License-Identifier: Apache-2.0
/*
 * The pure parts of the pod runtime (agent/pods.h): what goes into a pod's
 * resolv.conf, hosts and environment, how a probe is configured, how pod
 * conditions move, and when containers restart. No I/O, so unit tests cover
 * them directly (tests/unit/test_pods.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>

#include "pods.h"
#include "sluice/json.h"

int pods_fmt(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!dst || !len)
		return -EINVAL;
	va_start(ap, fmt);
	n = vsnprintf(dst, len, fmt, ap);
	va_end(ap);
	return n < 0 ? -EINVAL : (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pods_reap(pid_t pid, int *status)
{
	pid_t r = waitpid(pid, status, WNOHANG);

	if (r == pid)
		return 1;
	if (r < 0 && errno == ECHILD) {
		/* Reaped elsewhere (SIGCHLD ignored): the pidfd said it exited, the
		 * status is lost. */
		*status = 255 << 8;
		return 1;
	}
	return 0;
}

void pods_rfc3339(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void pods_resolv_conf(struct sl_buf *out, const char *ns, const char *dns, const char *domain)
{
	sl_buf_printf(out, "nameserver %s\nsearch %s.svc.%s svc.%s %s\noptions ndots:5\n", dns, ns,
		      domain, domain, domain);
}

void pods_hosts_file(struct sl_buf *out, const char *ip, const char *hostname,
		     const char *subdomain, const char *ns, const char *domain)
{
	sl_buf_puts(out, "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
			 "::1\tlocalhost ip6-localhost ip6-loopback\n"
			 "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n"
			 "fe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n");
	if (!ip || !*ip)
		return;
	if (subdomain && *subdomain)
		sl_buf_printf(out, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, hostname, subdomain, ns, domain,
			      hostname);
	else
		sl_buf_printf(out, "%s\t%s\n", ip, hostname);
}

void pods_hostname(const struct json_object *pod, char *out, size_t outlen)
{
	const char *h = sl_json_get_str(sl_json_get(pod, "spec"), "hostname");

	if (!h || !*h)
		h = sl_json_get_str(sl_json_get(pod, "metadata"), "name");
	/* A hostname is one DNS label: kubelet truncates longer pod names. */
	pods_fmt(out, outlen, "%.63s", h ? h : "");
	for (size_t n = strlen(out); n && (out[n - 1] == '-' || out[n - 1] == '.'); n--)
		out[n - 1] = '\0';
}

void pods_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

struct strv {
	char **v;
	size_t n, cap;
};

static int strv_push(struct strv *s, char *str)
{
	if (!str)
		return -ENOMEM;
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof(*v));
		if (!v) {
			free(str);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
	return 0;
}

/* Sets NAME=value, replacing an earlier NAME (a later env entry wins, as in
 * Kubernetes). */
static int env_set(struct strv *s, const char *name, const char *value)
{
	size_t nl = strlen(name);
	char *kv = malloc(nl + strlen(value) + 2);

	if (!kv)
		return -ENOMEM;
	sprintf(kv, "%s=%s", name, value);
	for (size_t i = 0; i < s->n; i++) {
		if (!strncmp(s->v[i], name, nl) && s->v[i][nl] == '=') {
			free(s->v[i]);
			s->v[i] = kv;
			return 0;
		}
	}
	return strv_push(s, kv);
}

static const char *env_lookup(char *const *env, const char *name, size_t nl)
{
	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], name, nl) && env[i][nl] == '=')
			return env[i] + nl + 1;
	return NULL;
}

char *pods_expand(const char *s, char *const *env)
{
	struct sl_buf b = SL_BUF_INIT;

	while (*s) {
		if (s[0] == '$' && s[1] == '$') {
			sl_buf_puts(&b, "$");
			s += 2;
		} else if (s[0] == '$' && s[1] == '(') {
			const char *end = strchr(s + 2, ')');
			const char *v = end ? env_lookup(env, s + 2, (size_t)(end - s - 2)) : NULL;
			if (v) {
				sl_buf_puts(&b, v);
				s = end + 1;
			} else {
				/* Undefined references stay verbatim, as Kubernetes leaves them. */
				sl_buf_append(&b, s, 2);
				s += 2;
			}
		} else {
			sl_buf_append(&b, s, 1);
			s++;
		}
	}
	if (b.oom) {
		sl_buf_fini(&b);
		return NULL;
	}
	sl_buf_cstr(&b);
	return sl_buf_steal(&b, NULL);
}

/* "metadata.labels['k']" → the label value ("" when absent). */
static const char *map_ref(const struct json_object *meta, const char *path, const char *field,
			   char *key, size_t keylen)
{
	size_t fl = strlen(field);
	const char *k, *e;

	if (strncmp(path, field, fl) || strncmp(path + fl, "['", 2))
		return NULL;
	k = path + fl + 2;
	e = strstr(k, "']");
	if (!e || e[2] || (size_t)(e - k) >= keylen)
		return NULL;
	memcpy(key, k, (size_t)(e - k));
	key[e - k] = '\0';
	k = sl_json_get_str(sl_json_get(meta, field + strlen("metadata.")), key);
	return k ? k : "";
}

static const char *field_ref(const struct json_object *pod, const struct pods_env_ctx *c,
			     const char *path)
{
	const struct json_object *meta = sl_json_get(pod, "metadata");
	const struct json_object *spec = sl_json_get(pod, "spec");
	static __thread char key[256];
	const char *v;

	if (!strcmp(path, "metadata.name"))
		v = sl_json_get_str(meta, "name");
	else if (!strcmp(path, "metadata.namespace"))
		v = sl_json_get_str(meta, "namespace");
	else if (!strcmp(path, "metadata.uid"))
		v = sl_json_get_str(meta, "uid");
	else if (!strcmp(path, "spec.nodeName"))
		v = sl_json_get_str(spec, "nodeName") ? sl_json_get_str(spec, "nodeName")
						      : c->node_name;
	else if (!strcmp(path, "spec.serviceAccountName"))
		v = sl_json_get_str(spec, "serviceAccountName");
	else if (!strcmp(path, "status.podIP") || !strcmp(path, "status.podIPs"))
		v = c->pod_ip;
	else if (!strcmp(path, "status.hostIP") || !strcmp(path, "status.hostIPs"))
		v = c->host_ip;
	else if ((v = map_ref(meta, path, "metadata.labels", key, sizeof(key))))
		return v;
	else if ((v = map_ref(meta, path, "metadata.annotations", key, sizeof(key))))
		return v;
	else
		return NULL;
	return v ? v : "";
}

int pods_env_build(const struct json_object *pod, const struct json_object *ctr,
		   const struct pods_env_ctx *c, char ***envp, char *err, size_t errlen)
{
	struct json_object *env = sl_json_get(ctr, "env");
	const char *cname = sl_json_get_str(ctr, "name");
	struct strv s = {0};
	char host[64];
	int rc = 0;

	*envp = NULL;
	pods_hostname(pod, host, sizeof(host));
	/* What a container runtime sets before the spec's env. */
	rc = env_set(&s, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!rc)
		rc = env_set(&s, "HOSTNAME", host);
	if (env && !json_object_is_type(env, json_type_array)) {
		pods_fmt(err, errlen, "container '%s': env: expected a list", cname ? cname : "");
		rc = -EINVAL;
	}
	for (size_t i = 0; !rc && env && i < json_object_array_length(env); i++) {
		struct json_object *e = json_object_array_get_idx(env, i);
		const char *name = sl_json_get_str(e, "name");
		struct json_object *vf = sl_json_get(e, "valueFrom");
		const char *val = sl_json_get_str(e, "value");
		char *x;

		if (!name || !*name || strchr(name, '=')) {
			pods_fmt(err, errlen, "container '%s': env[%zu].name: %s",
				 cname ? cname : "", i,
				 name ? "must not be empty or contain '='" : "required");
			rc = -EINVAL;
			break;
		}
		if (vf) {
			struct json_object *fr = sl_json_get(vf, "fieldRef");
			const char *fp = sl_json_get_str(fr, "fieldPath");
			if (!fr || !fp) {
				pods_fmt(err, errlen,
					 "container '%s': env[%zu] (%s).valueFrom: only fieldRef "
					 "with a fieldPath is supported",
					 cname ? cname : "", i, name);
				rc = -EINVAL;
				break;
			}
			val = field_ref(pod, c, fp);
			if (!val) {
				pods_fmt(err, errlen,
					 "container '%s': env[%zu] "
					 "(%s).valueFrom.fieldRef.fieldPath: "
					 "unsupported value \"%s\"",
					 cname ? cname : "", i, name, fp);
				rc = -EINVAL;
				break;
			}
			rc = env_set(&s, name, val);
			continue;
		}
		/* References resolve against what is defined so far. */
		x = pods_expand(val ? val : "", s.v);
		rc = x ? env_set(&s, name, x) : -ENOMEM;
		free(x);
	}
	if (rc) {
		if (rc == -ENOMEM)
			pods_fmt(err, errlen, "out of memory");
		pods_strv_free(s.v);
		return rc;
	}
	*envp = s.v;
	return 0;
}

int pods_argv_build(const struct json_object *ctr, char *const *env, char ***argv, char *err,
		    size_t errlen)
{
	static const char *const keys[] = {"command", "args"};
	const char *cname = sl_json_get_str(ctr, "name");
	struct strv s = {0};

	*argv = NULL;
	for (int k = 0; k < 2; k++) {
		struct json_object *a = sl_json_get(ctr, keys[k]);
		if (!a)
			continue;
		if (!json_object_is_type(a, json_type_array)) {
			pods_fmt(err, errlen, "container '%s': %s: expected a list of strings",
				 cname ? cname : "", keys[k]);
			pods_strv_free(s.v);
			return -EINVAL;
		}
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *e = json_object_array_get_idx(a, i);
			if (!json_object_is_type(e, json_type_string)) {
				pods_fmt(err, errlen, "container '%s': %s[%zu]: expected a string",
					 cname ? cname : "", keys[k], i);
				pods_strv_free(s.v);
				return -EINVAL;
			}
			if (strv_push(&s, pods_expand(json_object_get_string(e), env))) {
				pods_fmt(err, errlen, "out of memory");
				pods_strv_free(s.v);
				return -ENOMEM;
			}
		}
	}
	if (!s.n) {
		/* Host binaries have no image entry point to fall back to. */
		pods_fmt(err, errlen,
			 "container '%s': command: required (containers run host binaries, "
			 "there is no image entrypoint)",
			 cname ? cname : "");
		pods_strv_free(s.v);
		return -EINVAL;
	}
	*argv = s.v;
	return 0;
}

/* --- probes ------------------------------------------------------------------------ */

static int probe_int(const struct json_object *p, const char *key, int def, int min, int *out,
		     char *err, size_t errlen)
{
	struct json_object *v = sl_json_get(p, key);
	int64_t x;

	if (!v) {
		*out = def;
		return 0;
	}
	if (!sl_json_get_int(p, key, &x) || x < min || x > 86400) {
		pods_fmt(err, errlen, "%s: must be an integer between %d and 86400", key, min);
		return -EINVAL;
	}
	*out = (int)x;
	return 0;
}

/* A port: a number 1-65535, or the name of one of the container's ports. */
static int probe_port(const struct json_object *h, const struct json_object *ctr, const char *what,
		      int *port, char *err, size_t errlen)
{
	struct json_object *p = sl_json_get(h, "port");
	struct json_object *ports = sl_json_get(ctr, "ports");

	if (p && json_object_is_type(p, json_type_int)) {
		int64_t v = json_object_get_int64(p);
		if (v < 1 || v > 65535) {
			pods_fmt(err, errlen, "%s.port: %lld: must be between 1 and 65535", what,
				 (long long)v);
			return -EINVAL;
		}
		*port = (int)v;
		return 0;
	}
	if (p && json_object_is_type(p, json_type_string)) {
		const char *name = json_object_get_string(p);
		char *end;
		long v = strtol(name, &end, 10);
		if (*name && !*end && v >= 1 && v <= 65535) {
			*port = (int)v;
			return 0;
		}
		for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
			struct json_object *cp = json_object_array_get_idx(ports, i);
			int64_t n;
			if (!strcmp(sl_json_get_str(cp, "name") ? sl_json_get_str(cp, "name") : "",
				    name) &&
			    sl_json_get_int(cp, "containerPort", &n) && n >= 1 && n <= 65535) {
				*port = (int)n;
				return 0;
			}
		}
		pods_fmt(err, errlen, "%s.port: \"%s\": no containerPort with that name", what,
			 name);
		return -EINVAL;
	}
	pods_fmt(err, errlen, "%s.port: required (a number or a containerPort name)", what);
	return -EINVAL;
}

void probe_spec_fini(struct probe_spec *p)
{
	if (!p)
		return;
	pods_strv_free(p->cmd);
	free(p->path);
	for (size_t i = 0; p->headers && i < p->n_headers; i++) {
		free(p->headers[i].name);
		free(p->headers[i].value);
	}
	free(p->headers);
	memset(p, 0, sizeof(*p));
}

int probe_spec_parse(const struct json_object *probe, const struct json_object *ctr,
		     struct probe_spec *out, char *err, size_t errlen)
{
	struct json_object *ex = sl_json_get(probe, "exec");
	struct json_object *tcp = sl_json_get(probe, "tcpSocket");
	struct json_object *http = sl_json_get(probe, "httpGet");
	struct probe_spec p = {0};
	int rc = 0;

	if (!json_object_is_type(probe, json_type_object)) {
		pods_fmt(err, errlen, "expected an object");
		return -EINVAL;
	}
	if (!!ex + !!tcp + !!http != 1 || sl_json_get(probe, "grpc")) {
		pods_fmt(err, errlen, "%s",
			 sl_json_get(probe, "grpc")
				 ? "grpc: unsupported (use exec, tcpSocket or httpGet)"
				 : "exactly one of exec, tcpSocket or httpGet is required");
		return -EINVAL;
	}
	if (probe_int(probe, "initialDelaySeconds", 0, 0, &p.initial_delay_s, err, errlen) ||
	    probe_int(probe, "periodSeconds", 10, 1, &p.period_s, err, errlen) ||
	    probe_int(probe, "timeoutSeconds", 1, 1, &p.timeout_s, err, errlen) ||
	    probe_int(probe, "successThreshold", 1, 1, &p.success_threshold, err, errlen) ||
	    probe_int(probe, "failureThreshold", 3, 1, &p.failure_threshold, err, errlen))
		return -EINVAL;
	if (ex) {
		struct json_object *cmd = sl_json_get(ex, "command");
		struct strv s = {0};
		p.kind = PROBE_EXEC;
		if (!cmd || !json_object_is_type(cmd, json_type_array) ||
		    !json_object_array_length(cmd)) {
			pods_fmt(err, errlen, "exec.command: required (a non-empty list)");
			return -EINVAL;
		}
		for (size_t i = 0; i < json_object_array_length(cmd); i++) {
			struct json_object *e = json_object_array_get_idx(cmd, i);
			if (!json_object_is_type(e, json_type_string)) {
				pods_fmt(err, errlen, "exec.command[%zu]: expected a string", i);
				pods_strv_free(s.v);
				return -EINVAL;
			}
			if (strv_push(&s, strdup(json_object_get_string(e)))) {
				pods_strv_free(s.v);
				return -ENOMEM;
			}
		}
		p.cmd = s.v;
		*out = p;
		return 0;
	}
	if (tcp) {
		p.kind = PROBE_TCP;
		rc = probe_port(tcp, ctr, "tcpSocket", &p.port, err, errlen);
		if (!rc)
			pods_fmt(p.host, sizeof(p.host), "%s",
				 sl_json_get_str(tcp, "host") ? sl_json_get_str(tcp, "host") : "");
		if (!rc)
			*out = p;
		return rc;
	}
	p.kind = PROBE_HTTP;
	rc = probe_port(http, ctr, "httpGet", &p.port, err, errlen);
	if (rc)
		return rc;
	if (sl_json_get_str(http, "scheme") && strcmp(sl_json_get_str(http, "scheme"), "HTTP")) {
		pods_fmt(err, errlen, "httpGet.scheme: \"%s\": only HTTP is supported",
			 sl_json_get_str(http, "scheme"));
		return -EINVAL;
	}
	pods_fmt(p.host, sizeof(p.host), "%s",
		 sl_json_get_str(http, "host") ? sl_json_get_str(http, "host") : "");
	p.path = strdup(sl_json_get_str(http, "path") ? sl_json_get_str(http, "path") : "/");
	if (!p.path)
		return -ENOMEM;
	if (p.path[0] != '/' || strpbrk(p.path, " \r\n")) {
		pods_fmt(err, errlen,
			 "httpGet.path: \"%s\": must start with '/' and hold no spaces", p.path);
		probe_spec_fini(&p);
		return -EINVAL;
	}
	{
		struct json_object *hs = sl_json_get(http, "httpHeaders");
		size_t n = hs && json_object_is_type(hs, json_type_array)
				   ? json_object_array_length(hs)
				   : 0;
		p.headers = n ? calloc(n, sizeof(*p.headers)) : NULL;
		for (size_t i = 0; i < n; i++) {
			struct json_object *h = json_object_array_get_idx(hs, i);
			const char *hn = sl_json_get_str(h, "name"),
				   *hv = sl_json_get_str(h, "value");
			if (!p.headers) {
				probe_spec_fini(&p);
				return -ENOMEM;
			}
			if (!hn || !*hn || strpbrk(hn, ": \r\n") || (hv && strpbrk(hv, "\r\n"))) {
				pods_fmt(err, errlen,
					 "httpGet.httpHeaders[%zu]: invalid name or value", i);
				probe_spec_fini(&p);
				return -EINVAL;
			}
			p.headers[i].name = strdup(hn);
			p.headers[i].value = strdup(hv ? hv : "");
			p.n_headers++;
		}
	}
	*out = p;
	return 0;
}

/* --- conditions and restarts --------------------------------------------------------- */

bool pods_cond_set(struct json_object *conds, const char *type, bool status, const char *reason,
		   const char *now)
{
	const char *want = status ? "True" : "False";
	struct json_object *c = NULL;
	bool changed = false;

	for (size_t i = 0; i < json_object_array_length(conds); i++) {
		struct json_object *x = json_object_array_get_idx(conds, i);
		const char *t = sl_json_get_str(x, "type");
		if (t && !strcmp(t, type)) {
			c = x;
			break;
		}
	}
	if (!c) {
		c = json_object_new_object();
		if (!c)
			return false;
		sl_json_set_str(c, "type", type);
		json_object_array_add(conds, c);
		changed = true;
	}
	if (!sl_json_get_str(c, "status") || strcmp(sl_json_get_str(c, "status"), want)) {
		sl_json_set_str(c, "status", want);
		sl_json_set_str(c, "lastTransitionTime", now);
		changed = true;
	}
	if (!sl_json_get(c, "lastProbeTime"))
		json_object_object_add(c, "lastProbeTime", NULL);
	if (reason && *reason) {
		const char *r = sl_json_get_str(c, "reason");
		if (!r || strcmp(r, reason)) {
			sl_json_set_str(c, "reason", reason);
			changed = true;
		}
	} else if (sl_json_get(c, "reason")) {
		json_object_object_del(c, "reason");
		changed = true;
	}
	return changed;
}

const char *pods_phase(bool sandbox_ready, const struct pods_ctr_phase *c, size_t n)
{
	size_t running = 0, ok = 0, failed = 0;

	if (!sandbox_ready)
		return "Pending";
	for (size_t i = 0; i < n; i++) {
		if (c[i].state == PODS_CTR_RUNNING ||
		    (c[i].state == PODS_CTR_WAITING && c[i].restarting))
			running++;
		else if (c[i].state == PODS_CTR_TERMINATED)
			*(c[i].exit_code ? &failed : &ok) += 1;
	}
	if (running)
		return "Running";
	if (n && ok + failed == n)
		return failed ? "Failed" : "Succeeded";
	return "Pending";
}

unsigned pods_backoff_s(unsigned n)
{
	unsigned d = 10;

	if (n <= 1)
		return 0;
	for (unsigned i = 2; i < n && d < 300; i++)
		d *= 2;
	return d > 300 ? 300 : d;
}

bool pods_should_restart(const char *policy, int exit_code)
{
	if (!policy || !strcmp(policy, "Always"))
		return true;
	if (!strcmp(policy, "OnFailure"))
		return exit_code != 0;
	return false;
}
