// SPDX-License-Identifier: Apache-2.0
/*
 * Validation of API objects with Kubernetes' rules and messages (see
 * validate.h). This is a port of the parts of
 * k8s.io/kubernetes/pkg/apis/{core,discovery,networking,coordination}/validation
 * and k8s.io/apimachinery/pkg/util/validation that matter for the kinds Sluice
 * serves, working directly on json-c trees instead of typed structs.
 *
 * Two things differ from upstream because of that:
 *  - a member of the wrong JSON type (a string where an integer belongs) is
 *    reported here as FieldValueInvalid "must be an integer" etc.; upstream
 *    fails earlier, in decoding, with a 400;
 *  - JSON null is the same as absent (as Go's decoder treats it).
 *
 * Messages are copied from upstream byte for byte (including the double space
 * in "(e.g. 'my-name',  or '123-abc', ..."), because clients and humans match
 * on them. Each finding is one cause: field path + reason + message body
 * ("Invalid value: 0: must be between 1 and 65535, inclusive").
 *
 * Deliberate simplifications are marked "simplified:" in the code; the
 * notable ones: Pod updates compare the whole spec with only the upstream
 * mutable fields masked; EndpointSlice/Endpoints addresses report only the
 * first special-range problem; IPv4 addresses with leading zeros (which Go's
 * legacy parser accepts) are rejected.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/json.h"
#include "sluice/selector.h"
#include "validate.h"

/* Not (yet) in causes.h: field.ErrorTypeTooMany. */
#ifndef CAUSE_TOO_MANY
#define CAUSE_TOO_MANY "FieldValueTooMany"
#endif

/* --- messages (k8s.io/apimachinery/pkg/util/validation) ------------------ */

#define MSG_DNS1123_LABEL                                                                        \
	"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " \
	"and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', " \
	"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
#define MSG_DNS1123_SUBDOMAIN                                                                     \
	"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' " \
	"or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "     \
	"regex used for validation is "                                                           \
	"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define MSG_DNS1035_LABEL                                                                         \
	"a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with " \
	"an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "   \
	"'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
#define MSG_QNAME_BODY                                                                           \
	"must consist of alphanumeric characters, '-', '_' or '.', and must start and end with " \
	"an "                                                                                    \
	"alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "   \
	"validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define MSG_LABEL_VALUE                                                                          \
	"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' " \
	"or "                                                                                    \
	"'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "       \
	"'my_value',  or '12345', regex used for validation is "                                 \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
#define MSG_CONFIG_KEY                                                                       \
	"a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. " \
	"'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "          \
	"'[-._a-zA-Z0-9]+')"
#define MSG_PORT_RANGE "must be between 1 and 65535, inclusive"
#define MSG_IP	       "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
#define MSG_CIDR       "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
#define MSG_IMMUTABLE  "field is immutable"
#define MSG_POD_UPDATE                                                                             \
	"pod updates may not change fields other than `spec.containers[*].image`,"                 \
	"`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "    \
	"additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be " \
	"set to 1 if it was previously negative)"

#define MAX_ANNOTATIONS_BYTES (256 * 1024)
#define MAX_CONFIGMAP_BYTES   (1024 * 1024)
#define MAX_AFFINITY_SECONDS  86400

static const char *const protocols[] = {"SCTP", "TCP", "UDP", NULL};

/* A short list of messages from one syntax check (upstream returns []string). */
struct msgs {
	const char *m[6];
	int n;
};

static void msgs_add(struct msgs *ms, const char *m)
{
	if (ms->n < (int)(sizeof(ms->m) / sizeof(ms->m[0])))
		ms->m[ms->n++] = m;
}

/* --- syntax checks -------------------------------------------------------- */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return isascii((unsigned char)c) && isalnum((unsigned char)c);
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..n) */
static bool match_dns_label(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool match_dns_subdomain(const char *s, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!match_dns_label(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return n > 0;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static bool match_qname(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static void check_dns1123_label(const char *s, struct msgs *ms)
{
	size_t n = strlen(s);

	if (n > 63)
		msgs_add(ms, "must be no more than 63 characters");
	if (!match_dns_label(s, n))
		msgs_add(ms, MSG_DNS1123_LABEL);
}

static void check_dns1123_subdomain(const char *s, struct msgs *ms, bool prefix_part)
{
	size_t n = strlen(s);

	if (n > 253)
		msgs_add(ms, prefix_part ? "prefix part must be no more than 253 characters"
					 : "must be no more than 253 characters");
	if (!match_dns_subdomain(s, n))
		msgs_add(ms, prefix_part ? "prefix part " MSG_DNS1123_SUBDOMAIN
					 : MSG_DNS1123_SUBDOMAIN);
}

static void check_dns1035_label(const char *s, struct msgs *ms)
{
	size_t n = strlen(s);

	if (n > 63)
		msgs_add(ms, "must be no more than 63 characters");
	if (!match_dns_label(s, n) || !(s[0] >= 'a' && s[0] <= 'z'))
		msgs_add(ms, MSG_DNS1035_LABEL);
}

/* IsQualifiedName: [prefix/]name with a DNS subdomain prefix. */
static void check_qualified_name(const char *s, struct msgs *ms)
{
	const char *slash = strchr(s, '/');
	const char *name = s;
	size_t n;

	if (slash && strchr(slash + 1, '/')) {
		msgs_add(ms, "a qualified name " MSG_QNAME_BODY
			     " with an optional DNS subdomain prefix and '/' (e.g. "
			     "'example.com/MyName')");
		return;
	}
	if (slash) {
		char prefix[300];
		size_t plen = (size_t)(slash - s);

		if (plen == 0) {
			msgs_add(ms, "prefix part must be non-empty");
		} else if (plen >= sizeof(prefix)) {
			msgs_add(ms, "prefix part must be no more than 253 characters");
		} else {
			memcpy(prefix, s, plen);
			prefix[plen] = '\0';
			check_dns1123_subdomain(prefix, ms, true);
		}
		name = slash + 1;
	}
	n = strlen(name);
	if (n == 0)
		msgs_add(ms, "name part must be non-empty");
	else if (n > 63)
		msgs_add(ms, "name part must be no more than 63 characters");
	if (!match_qname(name, n))
		msgs_add(ms, "name part " MSG_QNAME_BODY);
}

static void check_label_value(const char *s, struct msgs *ms)
{
	size_t n = strlen(s);

	if (n > 63)
		msgs_add(ms, "must be no more than 63 characters");
	if (n > 0 && !match_qname(s, n))
		msgs_add(ms, MSG_LABEL_VALUE);
}

/* IsValidPortName (IANA_SVC_NAME). */
static void check_port_name(const char *s, struct msgs *ms)
{
	size_t n = strlen(s);
	bool charset = n > 0, letter = false;

	if (n > 15)
		msgs_add(ms, "must be no more than 15 characters");
	for (size_t i = 0; i < n; i++) {
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			charset = false;
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
	}
	if (!charset)
		msgs_add(ms,
			 "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
	if (!letter)
		msgs_add(ms, "must contain at least one letter (a-z)");
	if (strstr(s, "--"))
		msgs_add(ms, "must not contain consecutive hyphens");
	if (n > 0 && (s[0] == '-' || s[n - 1] == '-'))
		msgs_add(ms, "must not begin or end with a hyphen");
}

static void check_config_key(const char *s, struct msgs *ms)
{
	size_t n = strlen(s);
	bool ok = n > 0;

	if (n > 253)
		msgs_add(ms, "must be no more than 253 characters");
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			ok = false;
	if (!ok)
		msgs_add(ms, MSG_CONFIG_KEY);
	if (!strcmp(s, "."))
		msgs_add(ms, "must not be '.'");
	else if (!strcmp(s, ".."))
		msgs_add(ms, "must not be '..'");
	else if (!strncmp(s, "..", 2))
		msgs_add(ms, "must not start with '..'");
}

const char *validate_dns1123_label(const char *s)
{
	struct msgs ms = {.n = 0};

	check_dns1123_label(s ? s : "", &ms);
	return ms.n ? ms.m[0] : NULL;
}

const char *validate_dns1123_subdomain(const char *s)
{
	struct msgs ms = {.n = 0};

	check_dns1123_subdomain(s ? s : "", &ms, false);
	return ms.n ? ms.m[0] : NULL;
}

/* --- IP addresses ----------------------------------------------------------- */

/* 4 or 6 for a valid address, 0 otherwise; bytes in addr (16, v4 in the first 4). */
static int ip_parse(const char *s, unsigned char addr[16])
{
	if (!s || !*s)
		return 0;
	if (inet_pton(AF_INET, s, addr) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, addr) == 1)
		return 6;
	return 0;
}

static int cidr_parse(const char *s, unsigned char addr[16], int *prefix)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *slash = s ? strchr(s, '/') : NULL;
	size_t len;
	int fam, p = 0;

	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return 0;
	len = (size_t)(slash - s);
	memcpy(ip, s, len);
	ip[len] = '\0';
	fam = ip_parse(ip, addr);
	if (!fam || !slash[1] || strlen(slash + 1) > 3)
		return 0;
	for (const char *c = slash + 1; *c; c++) {
		if (*c < '0' || *c > '9')
			return 0;
		p = p * 10 + (*c - '0');
	}
	if (p > (fam == 4 ? 32 : 128))
		return 0;
	*prefix = p;
	return fam;
}

/* Does a/ap contain address b (same family)? */
static bool cidr_contains(const unsigned char *a, int ap, const unsigned char *b)
{
	int full = ap / 8, rem = ap % 8;

	if (memcmp(a, b, (size_t)full))
		return false;
	if (rem) {
		unsigned char m = (unsigned char)(0xff << (8 - rem));
		return (a[full] & m) == (b[full] & m);
	}
	return true;
}

/* ValidateEndpointIP / ValidateNonSpecialIP: the first special-range problem. */
static const char *ip_special(const char *s)
{
	static const unsigned char zero[16];
	unsigned char a[16];
	int fam = ip_parse(s, a);

	if (fam == 4) {
		if (!memcmp(a, zero, 4))
			return "may not be unspecified";
		if (a[0] == 127)
			return "may not be in the loopback range (127.0.0.0/8, ::1/128)";
		if (a[0] == 169 && a[1] == 254)
			return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
		if (a[0] == 224 && a[1] == 0 && a[2] == 0)
			return "may not be in the link-local multicast range (224.0.0.0/24, "
			       "ff02::/10)";
	} else if (fam == 6) {
		if (!memcmp(a, zero, 16))
			return "may not be unspecified";
		if (!memcmp(a, zero, 15) && a[15] == 1)
			return "may not be in the loopback range (127.0.0.0/8, ::1/128)";
		if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
			return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
		if (a[0] == 0xff && (a[1] & 0x0f) == 0x02)
			return "may not be in the link-local multicast range (224.0.0.0/24, "
			       "ff02::/10)";
	}
	return NULL;
}

/* --- causes with field paths ---------------------------------------------- */

#define PATH_CAP 512

struct vctx {
	struct api_causes *out;
	char path[PATH_CAP]; /* current field path, e.g. "spec.ports[0]" */
	size_t len;
};

static size_t vp_fmt(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t vp_fmt(struct vctx *v, const char *fmt, ...)
{
	size_t old = v->len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(v->path + v->len, PATH_CAP - v->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	v->len += (size_t)n;
	if (v->len >= PATH_CAP)
		v->len = PATH_CAP - 1;
	return old;
}

static size_t vp_child(struct vctx *v, const char *name)
{
	return v->len ? vp_fmt(v, ".%s", name) : vp_fmt(v, "%s", name);
}

static size_t vp_index(struct vctx *v, size_t i)
{
	return vp_fmt(v, "[%zu]", i);
}

static size_t vp_key(struct vctx *v, const char *key)
{
	return vp_fmt(v, "[%s]", key);
}

static void vp_pop(struct vctx *v, size_t old)
{
	v->len = old;
	v->path[old] = '\0';
}

/* Go's %q for the value in "Invalid value: %q" (long values are cut). */
static void quote(struct sl_buf *b, const char *s)
{
	size_t n = 0;

	sl_buf_puts(b, "\"");
	for (; *s && n < 1024; s++, n++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '"':
			sl_buf_puts(b, "\\\"");
			break;
		case '\\':
			sl_buf_puts(b, "\\\\");
			break;
		case '\n':
			sl_buf_puts(b, "\\n");
			break;
		case '\t':
			sl_buf_puts(b, "\\t");
			break;
		case '\r':
			sl_buf_puts(b, "\\r");
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				sl_buf_printf(b, "\\x%02x", c);
			else
				sl_buf_append(b, s, 1);
		}
	}
	if (*s)
		sl_buf_puts(b, "...");
	sl_buf_puts(b, "\"");
}

/* Adds a cause at the current path plus `child` (NULL: the current path). */
static void v_add(struct vctx *v, const char *child, const char *reason, const char *msg)
{
	size_t old = child ? vp_child(v, child) : v->len;

	api_causes_add(v->out, reason, v->path, "%s", msg);
	vp_pop(v, old);
}

static void v_required(struct vctx *v, const char *child, const char *detail)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_puts(&b, "Required value");
	if (detail && *detail)
		sl_buf_printf(&b, ": %s", detail);
	if (!b.oom)
		v_add(v, child, CAUSE_REQUIRED, sl_buf_cstr(&b));
	sl_buf_fini(&b);
}

static void v_forbidden(struct vctx *v, const char *child, const char *detail)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_printf(&b, "Forbidden: %s", detail);
	if (!b.oom)
		v_add(v, child, CAUSE_FORBIDDEN, sl_buf_cstr(&b));
	sl_buf_fini(&b);
}

/* Invalid value: "<s>": detail */
static void v_invalid_s(struct vctx *v, const char *child, const char *val, const char *detail)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_puts(&b, "Invalid value: ");
	quote(&b, val ? val : "");
	sl_buf_printf(&b, ": %s", detail);
	if (!b.oom)
		v_add(v, child, CAUSE_INVALID, sl_buf_cstr(&b));
	sl_buf_fini(&b);
}

static void v_invalid_i(struct vctx *v, const char *child, int64_t val, const char *detail)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_printf(&b, "Invalid value: %lld: %s", (long long)val, detail);
	if (!b.oom)
		v_add(v, child, CAUSE_INVALID, sl_buf_cstr(&b));
	sl_buf_fini(&b);
}

/* Invalid value with a preformatted value (JSON text, "null", a Go struct). */
static void v_invalid_raw(struct vctx *v, const char *child, const char *raw, const char *detail)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_printf(&b, "Invalid value: %.1024s: %s", raw, detail);
	if (!b.oom)
		v_add(v, child, CAUSE_INVALID, sl_buf_cstr(&b));
	sl_buf_fini(&b);
}

static void v_not_supported(struct vctx *v, const char *child, const char *val,
			    const char *const *allowed)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_puts(&b, "Unsupported value: ");
	quote(&b, val);
	sl_buf_puts(&b, ": supported values: ");
	for (size_t i = 0; allowed[i]; i++)
		sl_buf_printf(&b, "%s\"%s\"", i ? ", " : "", allowed[i]);
	if (!b.oom)
		v_add(v, child, CAUSE_NOT_SUPPORTED, sl_buf_cstr(&b));
	sl_buf_fini(&b);
}

static void v_duplicate_s(struct vctx *v, const char *child, const char *val)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_puts(&b, "Duplicate value: ");
	quote(&b, val);
	if (!b.oom)
		v_add(v, child, CAUSE_DUPLICATE, sl_buf_cstr(&b));
	sl_buf_fini(&b);
}

static void v_duplicate_raw(struct vctx *v, const char *child, const char *raw)
{
	struct sl_buf b = SL_BUF_INIT;

	sl_buf_printf(&b, "Duplicate value: %s", raw);
	if (!b.oom)
		v_add(v, child, CAUSE_DUPLICATE, sl_buf_cstr(&b));
	sl_buf_fini(&b);
}

static void v_too_long(struct vctx *v, const char *child, int max)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "Too long: may not be more than %d bytes", max);
	v_add(v, child, CAUSE_TOO_LONG, msg);
}

static void v_too_many(struct vctx *v, const char *child, size_t actual, int max)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "Too many: %zu: must have at most %d items", actual, max);
	v_add(v, child, CAUSE_TOO_MANY, msg);
}

/* Emits one Invalid cause per message (upstream's `for _, msg := range ...`). */
static void v_invalid_msgs(struct vctx *v, const char *child, const char *val,
			   const struct msgs *ms)
{
	for (int i = 0; i < ms->n; i++)
		v_invalid_s(v, child, val, ms->m[i]);
}

/* --- typed member access -------------------------------------------------- */

static const char *type_word(enum json_type t)
{
	switch (t) {
	case json_type_string:
		return "a string";
	case json_type_int:
		return "an integer";
	case json_type_boolean:
		return "a boolean";
	case json_type_array:
		return "a list";
	case json_type_object:
		return "an object";
	default:
		return "a value";
	}
}

static void v_wrong_type(struct vctx *v, const char *child, struct json_object *m, const char *want)
{
	char detail[64];

	snprintf(detail, sizeof(detail), "must be %s", want);
	v_invalid_raw(v, child, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN), detail);
}

/*
 * Member `key` of o when it has type t. Returns NULL when absent (or null)
 * and, when present with another type, also adds an Invalid cause at
 * path.key and sets *bad (if non-NULL).
 */
static struct json_object *v_get(struct vctx *v, const struct json_object *o, const char *key,
				 enum json_type t, bool *bad)
{
	struct json_object *m = sl_json_get(o, key);

	if (!m)
		return NULL;
	if (json_object_is_type(m, t))
		return m;
	v_wrong_type(v, key, m, type_word(t));
	if (bad)
		*bad = true;
	return NULL;
}

static const char *v_str(struct vctx *v, const struct json_object *o, const char *key)
{
	struct json_object *m = v_get(v, o, key, json_type_string, NULL);

	return m ? json_object_get_string(m) : NULL;
}

/* "" when absent or mistyped: for enum-like fields that upstream treats as "". */
static const char *v_str0(struct vctx *v, const struct json_object *o, const char *key)
{
	const char *s = v_str(v, o, key);

	return s ? s : "";
}

static bool v_int(struct vctx *v, const struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *m = v_get(v, o, key, json_type_int, NULL);

	if (!m)
		return false;
	*out = json_object_get_int64(m);
	return true;
}

static size_t arr_len(const struct json_object *a)
{
	return a ? json_object_array_length(a) : 0;
}

static struct json_object *arr_at(const struct json_object *a, size_t i)
{
	return json_object_array_get_idx(a, i);
}

/* Element i of a list that must be an object; reports other types at path[i]. */
static struct json_object *v_elem_obj(struct vctx *v, const struct json_object *a, size_t i)
{
	struct json_object *e = arr_at(a, i);

	if (e && json_object_is_type(e, json_type_object))
		return e;
	if (e) {
		size_t old = vp_index(v, i);

		v_wrong_type(v, NULL, e, "an object");
		vp_pop(v, old);
	}
	return NULL;
}

/* Element i of a list that must be a string; "" (and a cause) otherwise. */
static const char *v_elem_str(struct vctx *v, const struct json_object *a, size_t i, bool *ok)
{
	struct json_object *e = arr_at(a, i);

	*ok = e && json_object_is_type(e, json_type_string);
	if (*ok)
		return json_object_get_string(e);
	if (e) {
		size_t old = vp_index(v, i);

		v_wrong_type(v, NULL, e, "a string");
		vp_pop(v, old);
	} else {
		*ok = false;
	}
	return "";
}

static bool str_in(const char *s, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (!strcmp(s, set[i]))
			return true;
	return false;
}

/* --- shared field validators -------------------------------------------- */

static void v_port_num(struct vctx *v, const char *child, int64_t port)
{
	if (port < 1 || port > 65535)
		v_invalid_i(v, child, port, MSG_PORT_RANGE);
}

static void v_port_name(struct vctx *v, const char *child, const char *name)
{
	struct msgs ms = {.n = 0};

	check_port_name(name, &ms);
	v_invalid_msgs(v, child, name, &ms);
}

static void v_dns_label(struct vctx *v, const char *child, const char *s)
{
	struct msgs ms = {.n = 0};

	check_dns1123_label(s, &ms);
	v_invalid_msgs(v, child, s, &ms);
}

static void v_dns_subdomain(struct vctx *v, const char *child, const char *s)
{
	struct msgs ms = {.n = 0};

	check_dns1123_subdomain(s, &ms, false);
	v_invalid_msgs(v, child, s, &ms);
}

static void v_qualified_name(struct vctx *v, const char *child, const char *s)
{
	struct msgs ms = {.n = 0};

	check_qualified_name(s, &ms);
	v_invalid_msgs(v, child, s, &ms);
}

/* Protocol: Required when absent, else one of SCTP/TCP/UDP. */
static void v_protocol(struct vctx *v, const struct json_object *o, bool required)
{
	const char *p = v_str(v, o, "protocol");

	if (!p || !*p) {
		if (required)
			v_required(v, "protocol", NULL);
	} else if (!str_in(p, protocols)) {
		v_not_supported(v, "protocol", p, protocols);
	}
}

/* int port 1-65535 or an IANA_SVC_NAME string (ValidatePortNumOrName). */
static void v_port_num_or_name(struct vctx *v, const struct json_object *o, const char *key)
{
	struct json_object *m = sl_json_get(o, key);

	if (!m)
		return;
	if (json_object_is_type(m, json_type_int))
		v_port_num(v, key, json_object_get_int64(m));
	else if (json_object_is_type(m, json_type_string))
		v_port_name(v, key, json_object_get_string(m));
	else
		v_wrong_type(v, key, m, "an integer or a string");
}

/* ValidateLabels on a {"k":"v"} map at path.child. */
static void v_labels(struct vctx *v, const struct json_object *o, const char *child)
{
	struct json_object *m = v_get(v, o, child, json_type_object, NULL);
	size_t old;

	if (!m)
		return;
	old = vp_child(v, child);
	json_object_object_foreach(m, k, val)
	{
		struct msgs ms = {.n = 0};

		check_qualified_name(k, &ms);
		v_invalid_msgs(v, NULL, k, &ms);
		if (!val || !json_object_is_type(val, json_type_string)) {
			size_t o2 = vp_key(v, k);

			if (val)
				v_wrong_type(v, NULL, val, "a string");
			else
				v_invalid_raw(v, NULL, "null", "must be a string");
			vp_pop(v, o2);
			continue;
		}
		ms.n = 0;
		check_label_value(json_object_get_string(val), &ms);
		v_invalid_msgs(v, NULL, json_object_get_string(val), &ms);
	}
	vp_pop(v, old);
}

/* ValidateLabelSelector at path.child (absent: nothing to check). */
static void v_label_selector(struct vctx *v, const struct json_object *sel)
{
	struct json_object *exprs;

	v_labels(v, sel, "matchLabels");
	exprs = v_get(v, sel, "matchExpressions", json_type_array, NULL);
	for (size_t i = 0; i < arr_len(exprs); i++) {
		struct json_object *e;
		struct json_object *vals;
		const char *op, *key;
		size_t old = vp_child(v, "matchExpressions"), o2;

		e = v_elem_obj(v, exprs, i);
		if (!e) {
			vp_pop(v, old);
			continue;
		}
		vp_index(v, i);
		op = v_str0(v, e, "operator");
		key = v_str0(v, e, "key");
		vals = v_get(v, e, "values", json_type_array, NULL);
		if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
			if (arr_len(vals) == 0)
				v_required(v, "values",
					   "must be specified when `operator` is 'In' or 'NotIn'");
		} else if (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) {
			if (arr_len(vals) > 0)
				v_forbidden(v, "values",
					    "may not be specified when `operator` is 'Exists' or "
					    "'DoesNotExist'");
		} else {
			v_invalid_s(v, "operator", op, "not a valid selector operator");
		}
		v_qualified_name(v, "key", key);
		o2 = vp_child(v, "values");
		for (size_t j = 0; j < arr_len(vals); j++) {
			bool ok;
			const char *s = v_elem_str(v, vals, j, &ok);
			struct msgs ms = {.n = 0};
			size_t o3;

			if (!ok)
				continue;
			check_label_value(s, &ms);
			o3 = vp_index(v, j);
			v_invalid_msgs(v, NULL, s, &ms);
			vp_pop(v, o3);
		}
		vp_pop(v, o2);
		vp_pop(v, old);
	}
}

/* IsValidIP for legacy fields, then the special-range checks when asked. */
static int v_ip(struct vctx *v, const char *child, const char *ip, bool non_special)
{
	unsigned char a[16];
	int fam = ip_parse(ip, a);
	const char *why;

	if (!fam) {
		v_invalid_s(v, child, ip, MSG_IP);
		return 0;
	}
	if (non_special && (why = ip_special(ip))) {
		if (!strcmp(why, "may not be unspecified")) {
			char msg[128];

			snprintf(msg, sizeof(msg), "may not be unspecified (%s)", ip);
			v_invalid_s(v, child, ip, msg);
		} else {
			v_invalid_s(v, child, ip, why);
		}
	}
	return fam;
}

static void v_cidr(struct vctx *v, const char *child, const char *s)
{
	unsigned char a[16];
	int p;

	if (!cidr_parse(s, a, &p))
		v_invalid_s(v, child, s, MSG_CIDR);
}

/* --- metadata --------------------------------------------------------------- */

enum name_kind { NAME_SUBDOMAIN, NAME_DNS1123_LABEL, NAME_DNS1035_LABEL };

static void check_name(enum name_kind nk, const char *s, bool prefix, struct msgs *ms)
{
	char buf[512];

	/* generateName may end in '-': upstream masks it (maskTrailingDash). */
	if (prefix) {
		size_t n = strlen(s);

		if (n > 1 && n < sizeof(buf) && s[n - 1] == '-') {
			memcpy(buf, s, n + 1);
			buf[n - 1] = 'a';
			s = buf;
		}
	}
	switch (nk) {
	case NAME_DNS1123_LABEL:
		check_dns1123_label(s, ms);
		break;
	case NAME_DNS1035_LABEL:
		check_dns1035_label(s, ms);
		break;
	default:
		check_dns1123_subdomain(s, ms, false);
		break;
	}
}

static void validate_meta(struct vctx *v, enum name_kind nk, bool namespaced,
			  const struct json_object *obj)
{
	struct json_object *meta = v_get(v, obj, "metadata", json_type_object, NULL);
	struct json_object *ann, *fins, *owners;
	const char *name, *gen, *ns;
	struct msgs ms = {.n = 0};
	int64_t generation;
	size_t old = vp_child(v, "metadata"), total = 0;

	gen = v_str(v, meta, "generateName");
	if (gen && *gen) {
		check_name(nk, gen, true, &ms);
		v_invalid_msgs(v, "generateName", gen, &ms);
	}
	name = v_str(v, meta, "name");
	if (!name || !*name) {
		v_required(v, "name", "name or generateName is required");
	} else {
		ms.n = 0;
		check_name(nk, name, false, &ms);
		v_invalid_msgs(v, "name", name, &ms);
	}
	ns = v_str(v, meta, "namespace");
	if (namespaced) {
		if (!ns || !*ns) {
			v_required(v, "namespace", NULL);
		} else {
			ms.n = 0;
			check_dns1123_label(ns, &ms);
			v_invalid_msgs(v, "namespace", ns, &ms);
		}
	} else if (ns && *ns) {
		v_forbidden(v, "namespace", "not allowed on this type");
	}
	if (v_int(v, meta, "generation", &generation) && generation < 0)
		v_invalid_i(v, "generation", generation, "must be greater than or equal to 0");
	v_labels(v, meta, "labels");

	ann = v_get(v, meta, "annotations", json_type_object, NULL);
	if (ann) {
		size_t o2 = vp_child(v, "annotations");

		json_object_object_foreach(ann, k, val)
		{
			/* Annotation keys are qualified names, case-insensitively. */
			char lower[512] = "";
			size_t n = strlen(k);

			ms.n = 0;
			if (n >= sizeof(lower)) {
				msgs_add(&ms, "name part must be no more than 63 characters");
			} else {
				for (size_t i = 0; i <= n; i++)
					lower[i] = (char)tolower((unsigned char)k[i]);
				check_qualified_name(lower, &ms);
			}
			v_invalid_msgs(v, NULL, k, &ms);
			total += n;
			if (val && json_object_is_type(val, json_type_string)) {
				total += (size_t)json_object_get_string_len(val);
			} else {
				size_t o3 = vp_key(v, k);

				if (val)
					v_wrong_type(v, NULL, val, "a string");
				else
					v_invalid_raw(v, NULL, "null", "must be a string");
				vp_pop(v, o3);
			}
		}
		if (total > MAX_ANNOTATIONS_BYTES)
			v_too_long(v, NULL, MAX_ANNOTATIONS_BYTES);
		vp_pop(v, o2);
	}

	fins = v_get(v, meta, "finalizers", json_type_array, NULL);
	if (fins) {
		size_t o2 = vp_child(v, "finalizers");

		for (size_t i = 0; i < arr_len(fins); i++) {
			bool ok;
			const char *f = v_elem_str(v, fins, i, &ok);
			size_t o3;

			if (!ok)
				continue;
			ms.n = 0;
			check_qualified_name(f, &ms);
			o3 = vp_index(v, i);
			v_invalid_msgs(v, NULL, f, &ms);
			vp_pop(v, o3);
		}
		vp_pop(v, o2);
	}

	owners = v_get(v, meta, "ownerReferences", json_type_array, NULL);
	if (owners) {
		size_t o2 = vp_child(v, "ownerReferences");

		for (size_t i = 0; i < arr_len(owners); i++) {
			struct json_object *r = v_elem_obj(v, owners, i);
			const char *av, *kind, *n, *uid, *slash;
			size_t o3;

			if (!r)
				continue;
			o3 = vp_index(v, i);
			av = v_str0(v, r, "apiVersion");
			kind = v_str0(v, r, "kind");
			n = v_str0(v, r, "name");
			uid = v_str0(v, r, "uid");
			slash = strrchr(av, '/');
			if (!*av || (slash && !slash[1]))
				v_invalid_s(v, "apiVersion", av, "version must not be empty");
			if (!*kind)
				v_invalid_s(v, "kind", kind, "must not be empty");
			if (!*n)
				v_invalid_s(v, "name", n, "must not be empty");
			if (!*uid)
				v_invalid_s(v, "uid", uid, "must not be empty");
			vp_pop(v, o3);
		}
		vp_pop(v, o2);
	}
	vp_pop(v, old);
}

/* ValidateObjectMetaUpdate, the parts the server does not already enforce. */
static void validate_meta_update(struct vctx *v, const struct json_object *obj,
				 const struct json_object *old)
{
	static const char *const immutable[] = {"name", "namespace", NULL};
	struct json_object *m = sl_json_get(obj, "metadata"), *om = sl_json_get(old, "metadata");
	const char *nu, *ou;
	size_t o = vp_child(v, "metadata");

	for (size_t i = 0; immutable[i]; i++) {
		const char *a = sl_json_get_str(m, immutable[i]);
		const char *b = sl_json_get_str(om, immutable[i]);

		if (strcmp(a ? a : "", b ? b : ""))
			v_invalid_s(v, immutable[i], a ? a : "", MSG_IMMUTABLE);
	}
	/* An update without uid keeps the stored one (rest.BeforeUpdate). */
	nu = sl_json_get_str(m, "uid");
	ou = sl_json_get_str(om, "uid");
	if (nu && *nu && strcmp(nu, ou ? ou : ""))
		v_invalid_s(v, "uid", nu, MSG_IMMUTABLE);
	vp_pop(v, o);
}

/* --- Service ------------------------------------------------------------------ */

static bool svc_externally_accessible(const char *type, const struct json_object *spec)
{
	return !strcmp(type, "LoadBalancer") || !strcmp(type, "NodePort") ||
	       (!strcmp(type, "ClusterIP") && arr_len(sl_json_get(spec, "externalIPs")) > 0);
}

static const char *svc_cluster_ip(const struct json_object *spec)
{
	const char *ip = sl_json_get_str(spec, "clusterIP");
	struct json_object *ips = sl_json_get(spec, "clusterIPs");

	if ((!ip || !*ip) && json_object_is_type(ips, json_type_array) && arr_len(ips) > 0 &&
	    json_object_is_type(arr_at(ips, 0), json_type_string))
		ip = json_object_get_string(arr_at(ips, 0));
	return ip ? ip : "";
}

static void validate_service_port(struct vctx *v, const struct json_object *p, size_t nports,
				  const char **names, size_t idx)
{
	const char *name = v_str(v, p, "name");
	const char *app;
	int64_t port;

	if (nports > 1 && (!name || !*name)) {
		v_required(v, "name", NULL);
	} else if (name && *name) {
		v_dns_label(v, "name", name);
		for (size_t j = 0; j < idx; j++) {
			if (names[j] && !strcmp(names[j], name)) {
				v_duplicate_s(v, "name", name);
				break;
			}
		}
	}
	names[idx] = name;
	if (v_int(v, p, "port", &port))
		v_port_num(v, "port", port);
	else if (!sl_json_get(p, "port"))
		v_invalid_i(v, "port", 0, MSG_PORT_RANGE);
	v_protocol(v, p, true);
	v_port_num_or_name(v, p, "targetPort");
	app = v_str(v, p, "appProtocol");
	if (app)
		v_qualified_name(v, "appProtocol", app);
}

/* Go's %#v of the duplicate key struct upstream reports for (protocol, port). */
static void svc_port_dup(struct vctx *v, const char *proto, int64_t port)
{
	char raw[256];

	snprintf(raw, sizeof(raw),
		 "core.ServicePort{Name:\"\", Protocol:\"%.16s\", AppProtocol:(*string)(nil), "
		 "Port:%lld, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, "
		 "NodePort:0}",
		 proto, (long long)port);
	v_duplicate_raw(v, NULL, raw);
}

static void validate_service_ips(struct vctx *v, const struct json_object *spec)
{
	static const char *const families[] = {"IPv4", "IPv6", NULL};
	static const char *const policies[] = {"PreferDualStack", "RequireDualStack", "SingleStack",
					       NULL};
	struct json_object *ips = v_get(v, spec, "clusterIPs", json_type_array, NULL);
	struct json_object *fams = v_get(v, spec, "ipFamilies", json_type_array, NULL);
	const char *ip = v_str0(v, spec, "clusterIP");
	const char *pol = v_str(v, spec, "ipFamilyPolicy");
	const char *famv[2] = {NULL, NULL};
	size_t old;

	if (*ip && arr_len(ips) > 0) {
		struct json_object *first = arr_at(ips, 0);

		if (!json_object_is_type(first, json_type_string) ||
		    strcmp(json_object_get_string(first), ip))
			v_invalid_raw(v, "clusterIPs",
				      json_object_to_json_string_ext(ips, JSON_C_TO_STRING_PLAIN),
				      "first value must match `clusterIP`");
	} else if (!*ip && arr_len(ips) > 0) {
		v_invalid_raw(v, "clusterIPs",
			      json_object_to_json_string_ext(ips, JSON_C_TO_STRING_PLAIN),
			      "must be empty when `clusterIP` is not specified");
	}

	old = vp_child(v, "ipFamilies");
	if (arr_len(fams) > 2)
		v_invalid_raw(v, NULL, json_object_to_json_string_ext(fams, JSON_C_TO_STRING_PLAIN),
			      "may only hold up to 2 values");
	for (size_t i = 0; i < arr_len(fams); i++) {
		bool ok;
		const char *f = v_elem_str(v, fams, i, &ok);
		size_t o2;

		if (!ok)
			continue;
		o2 = vp_index(v, i);
		if (!str_in(f, families))
			v_not_supported(v, NULL, f, families);
		for (size_t j = 0; j < i && j < 2; j++)
			if (famv[j] && !strcmp(famv[j], f))
				v_duplicate_s(v, NULL, f);
		if (i < 2)
			famv[i] = f;
		vp_pop(v, o2);
	}
	vp_pop(v, old);
	if (pol && !str_in(pol, policies))
		v_not_supported(v, "ipFamilyPolicy", pol, policies);

	/* Without the plural (an old client, or an IP the server set alone),
	 * check the singular under its own name. */
	if (!ips) {
		if (*ip && strcmp(ip, "None")) {
			unsigned char a[16];
			int fam = ip_parse(ip, a);

			if (!fam)
				v_invalid_s(v, "clusterIP", ip, MSG_IP);
			else if (famv[0] && strcmp(famv[0], fam == 4 ? "IPv4" : "IPv6"))
				v_invalid_s(v, "clusterIP", ip,
					    fam == 4 ? "expected an IPv6 value as indicated by "
						       "`ipFamilies[0]`"
						     : "expected an IPv4 value as indicated by "
						       "`ipFamilies[0]`");
		}
		return;
	}
	old = vp_child(v, "clusterIPs");
	if (arr_len(ips) > 2)
		v_invalid_raw(v, NULL, json_object_to_json_string_ext(ips, JSON_C_TO_STRING_PLAIN),
			      "may only hold up to 2 values");
	for (size_t i = 0; i < arr_len(ips); i++) {
		bool ok;
		const char *s = v_elem_str(v, ips, i, &ok);
		unsigned char a[16];
		size_t o2;
		int fam;

		if (!ok)
			continue;
		if (i == 0 && !strcmp(s, "None")) {
			if (arr_len(ips) > 1)
				v_invalid_raw(
					v, NULL,
					json_object_to_json_string_ext(ips, JSON_C_TO_STRING_PLAIN),
					"'None' must be the first and only value");
			continue;
		}
		o2 = vp_index(v, i);
		fam = ip_parse(s, a);
		if (!fam) {
			v_invalid_s(v, NULL, s, MSG_IP);
		} else if (i < 2 && famv[i] && strcmp(famv[i], fam == 4 ? "IPv4" : "IPv6")) {
			char msg[96];

			snprintf(msg, sizeof(msg),
				 "expected an %s value as indicated by `ipFamilies[%zu]`",
				 fam == 4 ? "IPv6" : "IPv4", i);
			v_invalid_s(v, NULL, s, msg);
		}
		vp_pop(v, o2);
	}
	vp_pop(v, old);
}

static void validate_service(struct vctx *v, const struct json_object *obj,
			     const struct json_object *oldobj)
{
	static const char *const types[] = {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort",
					    NULL};
	static const char *const affinities[] = {"ClientIP", "None", NULL};
	static const char *const traffic[] = {"Cluster", "Local", NULL};
	struct json_object *spec = v_get(v, obj, "spec", json_type_object, NULL);
	struct json_object *ports, *eips, *ranges;
	const char *type, *cip, *aff, *etp, *itp;
	const char **names = NULL;
	bool headless;
	size_t np, old = vp_child(v, "spec");
	int64_t hc = 0;

	type = v_str0(v, spec, "type");
	cip = svc_cluster_ip(spec);
	headless = !strcmp(cip, "None");
	ports = v_get(v, spec, "ports", json_type_array, NULL);
	np = arr_len(ports);

	if (np == 0 && !headless && strcmp(type, "ExternalName"))
		v_required(v, "ports", NULL);

	if (!strcmp(type, "LoadBalancer") || !strcmp(type, "NodePort")) {
		if (headless)
			v_invalid_s(v, "clusterIPs[0]", "None",
				    !strcmp(type, "NodePort")
					    ? "may not be set to 'None' for NodePort services"
					    : "may not be set to 'None' for LoadBalancer services");
	}
	if (!strcmp(type, "LoadBalancer")) {
		for (size_t i = 0; i < np; i++) {
			int64_t p;

			if (sl_json_get_int(arr_at(ports, i), "port", &p) && p == 10250) {
				size_t o2 = vp_child(v, "ports");

				vp_index(v, i);
				v_invalid_i(v, NULL, p,
					    "may not expose port 10250 externally since it is used "
					    "by kubelet");
				vp_pop(v, o2);
			}
		}
	} else if (!strcmp(type, "ExternalName")) {
		const char *en = v_str0(v, spec, "externalName");
		char cname[300];
		size_t n = strlen(en);

		if (arr_len(sl_json_get(spec, "clusterIPs")) > 0)
			v_forbidden(v, "clusterIPs", "may not be set for ExternalName services");
		else if (*v_str0(v, spec, "clusterIP"))
			v_forbidden(v, "clusterIP", "may not be set for ExternalName services");
		if (arr_len(sl_json_get(spec, "ipFamilies")) > 0)
			v_forbidden(v, "ipFamilies", "may not be set for ExternalName services");
		if (sl_json_get(spec, "ipFamilyPolicy"))
			v_forbidden(v, "ipFamilyPolicy",
				    "may not be set for ExternalName services");
		/* A trailing dot marks the name as fully qualified. */
		if (n > 0 && en[n - 1] == '.')
			n--;
		if (n == 0) {
			v_required(v, "externalName", NULL);
		} else if (n >= sizeof(cname)) {
			v_invalid_s(v, "externalName", en, "must be no more than 253 characters");
		} else {
			memcpy(cname, en, n);
			cname[n] = '\0';
			v_dns_subdomain(v, "externalName", cname);
		}
	}

	if (np) {
		names = calloc(np, sizeof(*names));
		if (!names) {
			vp_pop(v, old);
			return;
		}
	}
	for (size_t i = 0; i < np; i++) {
		size_t o2 = vp_child(v, "ports");
		struct json_object *p = v_elem_obj(v, ports, i);

		if (p) {
			vp_index(v, i);
			validate_service_port(v, p, np, names, i);
		}
		vp_pop(v, o2);
	}
	free(names);

	v_labels(v, spec, "selector");

	aff = v_str0(v, spec, "sessionAffinity");
	if (!*aff) {
		v_required(v, "sessionAffinity", NULL);
	} else if (!str_in(aff, affinities)) {
		v_not_supported(v, "sessionAffinity", aff, affinities);
	} else if (!strcmp(aff, "ClientIP")) {
		const char *req = "when session affinity type is ClientIP";
		struct json_object *cfg =
			v_get(v, spec, "sessionAffinityConfig", json_type_object, NULL);
		struct json_object *cip_cfg = v_get(v, cfg, "clientIP", json_type_object, NULL);
		int64_t t;
		size_t o2 = vp_child(v, "sessionAffinityConfig");

		if (!cfg) {
			v_required(v, NULL, req);
		} else if (!cip_cfg) {
			v_required(v, "clientIP", req);
		} else {
			vp_child(v, "clientIP");
			if (!v_int(v, cip_cfg, "timeoutSeconds", &t))
				v_required(v, "timeoutSeconds", req);
			else if (t <= 0 || t > MAX_AFFINITY_SECONDS)
				v_invalid_i(v, "timeoutSeconds", t,
					    "must be greater than 0 and less than 86400");
		}
		vp_pop(v, o2);
	} else if (sl_json_get(spec, "sessionAffinityConfig")) {
		v_forbidden(v, "sessionAffinityConfig",
			    "must not be set when session affinity is None");
	}

	if (strcmp(type, "ExternalName"))
		validate_service_ips(v, spec);

	eips = v_get(v, spec, "externalIPs", json_type_array, NULL);
	for (size_t i = 0; i < arr_len(eips); i++) {
		size_t o2 = vp_child(v, "externalIPs");
		bool ok;
		const char *s = v_elem_str(v, eips, i, &ok);

		if (ok) {
			vp_index(v, i);
			v_ip(v, NULL, s, true);
		}
		vp_pop(v, o2);
	}

	if (!*type)
		v_required(v, "type", NULL);
	else if (!str_in(type, types))
		v_not_supported(v, "type", type, types);

	/* nodePorts: only where a node port exists; range; no duplicates. */
	for (size_t i = 0; i < np; i++) {
		struct json_object *p = arr_at(ports, i);
		int64_t nodeport;
		size_t o2;

		if (!json_object_is_type(p, json_type_object) ||
		    !v_int(v, p, "nodePort", &nodeport) || nodeport == 0)
			continue;
		o2 = vp_child(v, "ports");
		vp_index(v, i);
		if (!strcmp(type, "ClusterIP") || !strcmp(type, "ExternalName")) {
			char msg[64];

			snprintf(msg, sizeof(msg), "may not be used when `type` is '%s'", type);
			v_forbidden(v, "nodePort", msg);
		} else if (nodeport < 1 || nodeport > 65535) {
			v_invalid_i(v, "nodePort", nodeport, MSG_PORT_RANGE);
		} else {
			const char *proto = sl_json_get_str(p, "protocol");

			for (size_t j = 0; j < i; j++) {
				struct json_object *q = arr_at(ports, j);
				const char *qp = sl_json_get_str(q, "protocol");
				int64_t qn;

				if (sl_json_get_int(q, "nodePort", &qn) && qn == nodeport &&
				    !strcmp(qp ? qp : "", proto ? proto : "")) {
					char raw[32];

					snprintf(raw, sizeof(raw), "%lld", (long long)nodeport);
					v_duplicate_raw(v, "nodePort", raw);
					break;
				}
			}
		}
		vp_pop(v, o2);
	}

	/* Duplicate (protocol, port) pairs. */
	for (size_t i = 0; i < np; i++) {
		struct json_object *p = arr_at(ports, i);
		const char *proto = sl_json_get_str(p, "protocol");
		int64_t port;

		if (!sl_json_get_int(p, "port", &port))
			continue;
		for (size_t j = 0; j < i; j++) {
			struct json_object *q = arr_at(ports, j);
			const char *qp = sl_json_get_str(q, "protocol");
			int64_t qport;

			if (sl_json_get_int(q, "port", &qport) && qport == port &&
			    !strcmp(qp ? qp : "", proto ? proto : "")) {
				size_t o2 = vp_child(v, "ports");

				vp_index(v, i);
				svc_port_dup(v, proto ? proto : "", port);
				vp_pop(v, o2);
				break;
			}
		}
	}

	ranges = v_get(v, spec, "loadBalancerSourceRanges", json_type_array, NULL);
	if (arr_len(ranges) > 0 && strcmp(type, "LoadBalancer"))
		v_forbidden(v, "loadBalancerSourceRanges",
			    "may only be used when `type` is 'LoadBalancer'");
	for (size_t i = 0; i < arr_len(ranges); i++) {
		size_t o2 = vp_child(v, "loadBalancerSourceRanges");
		bool ok;
		const char *s = v_elem_str(v, ranges, i, &ok);

		if (ok) {
			vp_index(v, i);
			v_cidr(v, NULL, s);
		}
		vp_pop(v, o2);
	}
	if (sl_json_get(spec, "allocateLoadBalancerNodePorts") && strcmp(type, "LoadBalancer"))
		v_forbidden(v, "allocateLoadBalancerNodePorts",
			    "may only be used when `type` is 'LoadBalancer'");
	else if (!strcmp(type, "LoadBalancer") &&
		 !v_get(v, spec, "allocateLoadBalancerNodePorts", json_type_boolean, NULL))
		v_required(v, "allocateLoadBalancerNodePorts", NULL);

	etp = v_str0(v, spec, "externalTrafficPolicy");
	if (!svc_externally_accessible(type, spec)) {
		if (*etp)
			v_invalid_s(v, "externalTrafficPolicy", etp,
				    "may only be set for externally-accessible services");
	} else if (!*etp) {
		v_required(v, "externalTrafficPolicy", NULL);
	} else if (!str_in(etp, traffic)) {
		v_not_supported(v, "externalTrafficPolicy", etp, traffic);
	}
	if (v_int(v, spec, "healthCheckNodePort", &hc) && hc != 0) {
		if (strcmp(type, "LoadBalancer") || strcmp(etp, "Local"))
			v_invalid_i(v, "healthCheckNodePort", hc,
				    "may only be set when `type` is 'LoadBalancer' and "
				    "`externalTrafficPolicy` is 'Local'");
		else
			v_port_num(v, "healthCheckNodePort", hc);
	}

	itp = v_str(v, spec, "internalTrafficPolicy");
	if (!itp) {
		if (!strcmp(type, "ClusterIP") || !strcmp(type, "NodePort") ||
		    !strcmp(type, "LoadBalancer"))
			v_required(v, "internalTrafficPolicy",
				   "must be specified when service type is ClusterIP, NodePort, "
				   "LoadBalancer");
	} else if (!str_in(itp, traffic)) {
		v_not_supported(v, "internalTrafficPolicy", itp, traffic);
	}

	/* Update: the ClusterIP stays once allocated, except across ExternalName. */
	if (oldobj) {
		struct json_object *ospec = sl_json_get(oldobj, "spec");
		const char *otype = sl_json_get_str(ospec, "type");
		const char *ocip = svc_cluster_ip(ospec);
		const char *ncip = sl_json_get_str(spec, "clusterIP");

		if (!ncip)
			ncip = "";

		if (strcmp(type, "ExternalName") && strcmp(otype ? otype : "", "ExternalName") &&
		    *ocip && strcmp(ocip, ncip))
			v_invalid_s(v, "clusterIP", ncip, MSG_IMMUTABLE);
	}
	vp_pop(v, old);
}

/* --- Pod ---------------------------------------------------------------------- */

static void validate_container_ports(struct vctx *v, const struct json_object *ports)
{
	size_t n = arr_len(ports);

	for (size_t i = 0; i < n; i++) {
		struct json_object *p = v_elem_obj(v, ports, i);
		const char *name;
		int64_t cp = 0, hp;
		size_t old;

		if (!p)
			continue;
		old = vp_index(v, i);
		name = v_str(v, p, "name");
		if (name && *name) {
			struct msgs ms = {.n = 0};

			check_port_name(name, &ms);
			if (ms.n) {
				v_invalid_msgs(v, "name", name, &ms);
			} else {
				for (size_t j = 0; j < i; j++) {
					const char *o = sl_json_get_str(arr_at(ports, j), "name");

					if (o && !strcmp(o, name)) {
						v_duplicate_s(v, "name", name);
						break;
					}
				}
			}
		}
		if (!v_int(v, p, "containerPort", &cp) || cp == 0) {
			if (!sl_json_get(p, "containerPort") || cp == 0)
				v_required(v, "containerPort", NULL);
		} else {
			v_port_num(v, "containerPort", cp);
		}
		if (v_int(v, p, "hostPort", &hp) && hp != 0)
			v_port_num(v, "hostPort", hp);
		v_protocol(v, p, true);
		vp_pop(v, old);
	}
}

static void validate_containers(struct vctx *v, const struct json_object *spec, const char *key,
				const char ***seen, size_t *nseen)
{
	static const char *const pull[] = {"Always", "IfNotPresent", "Never", NULL};
	static const char *const tmp[] = {"File", "FallbackToLogsOnError", NULL};
	struct json_object *ctrs = v_get(v, spec, key, json_type_array, NULL);
	size_t n = arr_len(ctrs), old = vp_child(v, key);
	const char **grown;

	if (!strcmp(key, "containers") && n == 0) {
		v_required(v, NULL, NULL);
		vp_pop(v, old);
		return;
	}
	grown = realloc(*seen, (*nseen + n + 1) * sizeof(**seen));
	if (!grown) {
		vp_pop(v, old);
		return;
	}
	*seen = grown;
	for (size_t i = 0; i < n; i++) {
		struct json_object *c = v_elem_obj(v, ctrs, i);
		const char *name, *image, *s;
		size_t o2;

		if (!c)
			continue;
		o2 = vp_index(v, i);
		name = v_str0(v, c, "name");
		if (!*name) {
			v_required(v, "name", NULL);
		} else {
			v_dns_label(v, "name", name);
			for (size_t j = 0; j < *nseen; j++) {
				if (!strcmp((*seen)[j], name)) {
					v_duplicate_s(v, "name", name);
					break;
				}
			}
			(*seen)[(*nseen)++] = name;
		}
		image = v_str0(v, c, "image");
		if (!*image)
			v_required(v, "image", NULL);
		else if (isspace((unsigned char)image[0]) ||
			 isspace((unsigned char)image[strlen(image) - 1]))
			v_invalid_s(v, "image", image,
				    "must not have leading or trailing whitespace");
		s = v_str(v, c, "imagePullPolicy");
		if (s && !str_in(s, pull))
			v_not_supported(v, "imagePullPolicy", s, pull);
		s = v_str(v, c, "terminationMessagePolicy");
		if (s && !str_in(s, tmp))
			v_not_supported(v, "terminationMessagePolicy", s, tmp);
		{
			struct json_object *ports = v_get(v, c, "ports", json_type_array, NULL);
			size_t o3 = vp_child(v, "ports");

			validate_container_ports(v, ports);
			vp_pop(v, o3);
		}
		vp_pop(v, o2);
	}
	vp_pop(v, old);
}

static void validate_taint_effect(struct vctx *v, const char *effect, bool allow_empty)
{
	static const char *const effects[] = {"NoSchedule", "PreferNoSchedule", "NoExecute", NULL};

	if (!*effect) {
		if (!allow_empty)
			v_required(v, "effect", NULL);
		return;
	}
	if (!str_in(effect, effects))
		v_not_supported(v, "effect", effect, effects);
}

static void validate_tolerations(struct vctx *v, const struct json_object *tols)
{
	static const char *const ops[] = {"Equal", "Exists", NULL};

	for (size_t i = 0; i < arr_len(tols); i++) {
		struct json_object *t = v_elem_obj(v, tols, i);
		const char *key, *op, *val, *effect;
		size_t old;

		if (!t)
			continue;
		old = vp_index(v, i);
		key = v_str0(v, t, "key");
		op = v_str0(v, t, "operator");
		val = v_str0(v, t, "value");
		effect = v_str0(v, t, "effect");
		if (*key)
			v_qualified_name(v, "key", key);
		if (!*key && strcmp(op, "Exists"))
			v_invalid_s(v, "operator", op,
				    "operator must be Exists when `key` is empty, which means "
				    "\"match all values and all keys\"");
		if (sl_json_get(t, "tolerationSeconds") && strcmp(effect, "NoExecute"))
			v_invalid_s(v, "effect", effect,
				    "effect must be 'NoExecute' when `tolerationSeconds` is set");
		if (!*op || !strcmp(op, "Equal")) {
			struct msgs ms = {.n = 0};
			char joined[600] = "";

			check_label_value(val, &ms);
			for (int j = 0; j < ms.n; j++) {
				if (j)
					strncat(joined, ";", sizeof(joined) - strlen(joined) - 1);
				strncat(joined, ms.m[j], sizeof(joined) - strlen(joined) - 1);
			}
			if (ms.n)
				v_invalid_s(v, "operator", val, joined);
		} else if (!strcmp(op, "Exists")) {
			if (*val)
				v_invalid_s(v, "operator", val,
					    "value must be empty when `operator` is 'Exists'");
		} else {
			v_not_supported(v, "operator", op, ops);
		}
		validate_taint_effect(v, effect, true);
		vp_pop(v, old);
	}
}

/* Removes the fields a Pod update may change, so the rest can be compared. */
static void pod_spec_mask(struct json_object *spec)
{
	static const char *const ctr_lists[] = {"containers", "initContainers", NULL};

	json_object_object_del(spec, "activeDeadlineSeconds");
	json_object_object_del(spec, "tolerations");
	json_object_object_del(spec, "terminationGracePeriodSeconds");
	for (size_t k = 0; ctr_lists[k]; k++) {
		struct json_object *a = sl_json_get(spec, ctr_lists[k]);

		if (!json_object_is_type(a, json_type_array))
			continue;
		for (size_t i = 0; i < arr_len(a); i++)
			if (json_object_is_type(arr_at(a, i), json_type_object))
				json_object_object_del(arr_at(a, i), "image");
	}
}

static void validate_pod_update(struct vctx *v, const struct json_object *spec,
				const struct json_object *ospec)
{
	struct json_object *a, *b, *tols, *otols;
	int64_t nd, od;
	bool has_nd, has_od;
	size_t old = vp_child(v, "spec");

	has_nd = sl_json_get_int(spec, "activeDeadlineSeconds", &nd);
	has_od = sl_json_get_int(ospec, "activeDeadlineSeconds", &od);
	if (has_nd && has_od && od < nd)
		v_invalid_i(v, "activeDeadlineSeconds", nd,
			    "must be less than or equal to previous value");
	else if (!has_nd && has_od)
		v_invalid_s(v, "activeDeadlineSeconds", "null",
			    "must not update from a positive integer to nil value");

	/* Tolerations may only be added (tolerationSeconds may change). */
	tols = sl_json_get(spec, "tolerations");
	otols = sl_json_get(ospec, "tolerations");
	for (size_t i = 0; i < arr_len(otols); i++) {
		struct json_object *ot = sl_json_clone(arr_at(otols, i));
		bool found = false;

		if (ot && json_object_is_type(ot, json_type_object)) {
			json_object_object_del(ot, "tolerationSeconds");
			for (size_t j = 0; j < arr_len(tols) && !found; j++) {
				struct json_object *nt = sl_json_clone(arr_at(tols, j));

				if (nt && json_object_is_type(nt, json_type_object)) {
					json_object_object_del(nt, "tolerationSeconds");
					found = sl_json_equal(ot, nt);
				}
				json_object_put(nt);
			}
		} else {
			found = true;
		}
		json_object_put(ot);
		if (!found) {
			v_forbidden(v, "tolerations",
				    "existing toleration can not be modified except its "
				    "tolerationSeconds");
			break;
		}
	}

	/* simplified: upstream prints a diff after the message; we compare the
	 * whole spec with the mutable fields masked and name none. */
	a = sl_json_clone((struct json_object *)spec);
	b = sl_json_clone((struct json_object *)ospec);
	if (a && b) {
		pod_spec_mask(a);
		pod_spec_mask(b);
		if (!sl_json_equal(a, b))
			v_forbidden(v, NULL, MSG_POD_UPDATE);
	}
	json_object_put(a);
	json_object_put(b);
	vp_pop(v, old);
}

static void validate_pod(struct vctx *v, const struct json_object *obj,
			 const struct json_object *oldobj)
{
	static const char *const restart[] = {"Always", "OnFailure", "Never", NULL};
	static const char *const dns[] = {"ClusterFirstWithHostNet", "ClusterFirst", "Default",
					  "None", NULL};
	struct json_object *spec = v_get(v, obj, "spec", json_type_object, NULL);
	const char **seen = NULL;
	const char *s;
	size_t nseen = 0, old = vp_child(v, "spec");
	int64_t i64;

	validate_containers(v, spec, "initContainers", &seen, &nseen);
	validate_containers(v, spec, "containers", &seen, &nseen);
	free(seen);

	s = v_str0(v, spec, "restartPolicy");
	if (!*s)
		v_required(v, "restartPolicy", NULL);
	else if (!str_in(s, restart))
		v_not_supported(v, "restartPolicy", s, restart);
	s = v_str0(v, spec, "dnsPolicy");
	if (!*s)
		v_required(v, "dnsPolicy", NULL);
	else if (!str_in(s, dns))
		v_not_supported(v, "dnsPolicy", s, dns);
	s = v_str0(v, spec, "nodeName");
	if (*s)
		v_dns_subdomain(v, "nodeName", s);
	s = v_str0(v, spec, "serviceAccountName");
	if (*s)
		v_dns_subdomain(v, "serviceAccountName", s);
	s = v_str0(v, spec, "schedulerName");
	if (*s)
		v_dns_subdomain(v, "schedulerName", s);
	s = v_str0(v, spec, "hostname");
	if (*s)
		v_dns_label(v, "hostname", s);
	s = v_str0(v, spec, "subdomain");
	if (*s)
		v_dns_label(v, "subdomain", s);
	if (v_int(v, spec, "activeDeadlineSeconds", &i64) && (i64 < 1 || i64 > 2147483647))
		v_invalid_i(v, "activeDeadlineSeconds", i64,
			    "must be between 1 and 2147483647, inclusive");
	v_int(v, spec, "terminationGracePeriodSeconds", &i64);
	v_get(v, spec, "hostNetwork", json_type_boolean, NULL);
	v_labels(v, spec, "nodeSelector");
	{
		struct json_object *tols = v_get(v, spec, "tolerations", json_type_array, NULL);
		size_t o2 = vp_child(v, "tolerations");

		validate_tolerations(v, tols);
		vp_pop(v, o2);
	}
	vp_pop(v, old);

	if (oldobj && spec)
		validate_pod_update(v, spec, sl_json_get(oldobj, "spec"));
}

/* --- EndpointSlice / Endpoints ---------------------------------------------- */

/* IsFullyQualifiedDomainName. */
static void v_fqdn(struct vctx *v, const char *name)
{
	char buf[512];
	struct msgs ms = {.n = 0};
	size_t n = strlen(name), start = 0;

	if (n == 0) {
		v_required(v, NULL, NULL);
		return;
	}
	if (name[n - 1] == '.')
		n--;
	if (n >= sizeof(buf)) {
		v_invalid_s(v, NULL, name, "must be no more than 253 characters");
		return;
	}
	memcpy(buf, name, n);
	buf[n] = '\0';
	check_dns1123_subdomain(buf, &ms, false);
	if (ms.n) {
		char joined[1024] = "";

		for (int j = 0; j < ms.n; j++) {
			if (j)
				strncat(joined, ",", sizeof(joined) - strlen(joined) - 1);
			strncat(joined, ms.m[j], sizeof(joined) - strlen(joined) - 1);
		}
		v_invalid_s(v, NULL, buf, joined);
		return;
	}
	if (!strchr(buf, '.')) {
		v_invalid_s(v, NULL, buf,
			    "should be a domain with at least two segments separated by dots");
		return;
	}
	/* The subdomain check passed, so only a label's length can still fail. */
	for (size_t i = 0; i <= n; i++) {
		if (i == n || buf[i] == '.') {
			if (i - start > 63) {
				buf[i] = '\0';
				v_invalid_s(v, NULL, buf + start,
					    "must be no more than 63 characters");
				return;
			}
			start = i + 1;
		}
	}
}

static void validate_endpointslice(struct vctx *v, const struct json_object *obj,
				   const struct json_object *oldobj)
{
	static const char *const addr_types[] = {"FQDN", "IPv4", "IPv6", NULL};
	static const char *const cond_keys[] = {"ready", "serving", "terminating", NULL};
	const char *at = v_str0(v, obj, "addressType");
	struct json_object *eps, *ports;
	size_t n;

	if (!oldobj) {
		/* Upstream answers only this when the type is wrong. */
		if (!*at) {
			v_required(v, "addressType", NULL);
			return;
		}
		if (!str_in(at, addr_types)) {
			v_not_supported(v, "addressType", at, addr_types);
			return;
		}
	} else {
		const char *oat = sl_json_get_str(oldobj, "addressType");

		if (strcmp(at, oat ? oat : ""))
			v_invalid_s(v, "addressType", at, MSG_IMMUTABLE);
	}

	eps = v_get(v, obj, "endpoints", json_type_array, NULL);
	n = arr_len(eps);
	if (n > 1000) {
		v_too_many(v, "endpoints", n, 1000);
	} else {
		for (size_t i = 0; i < n; i++) {
			size_t old = vp_child(v, "endpoints");
			struct json_object *ep = v_elem_obj(v, eps, i);
			struct json_object *addrs, *cond;
			const char *s;
			size_t na;

			if (!ep) {
				vp_pop(v, old);
				continue;
			}
			vp_index(v, i);
			addrs = v_get(v, ep, "addresses", json_type_array, NULL);
			na = arr_len(addrs);
			if (na == 0)
				v_required(v, "addresses", "must contain at least 1 address");
			else if (na > 100)
				v_too_many(v, "addresses", na, 100);
			for (size_t j = 0; j < na && j < 100; j++) {
				size_t o2 = vp_child(v, "addresses");
				bool ok;
				const char *a = v_elem_str(v, addrs, j, &ok);
				unsigned char bytes[16];

				if (ok) {
					vp_index(v, j);
					if (!strcmp(at, "IPv4")) {
						if (ip_parse(a, bytes) != 4)
							v_invalid_s(v, NULL, a,
								    "must be a valid IPv4 address");
						else
							v_ip(v, NULL, a, true);
					} else if (!strcmp(at, "IPv6")) {
						if (ip_parse(a, bytes) != 6)
							v_invalid_s(v, NULL, a,
								    "must be a valid IPv6 address");
						else
							v_ip(v, NULL, a, true);
					} else if (!strcmp(at, "FQDN")) {
						v_fqdn(v, a);
					}
				}
				vp_pop(v, o2);
			}
			s = v_str(v, ep, "nodeName");
			if (s)
				v_dns_subdomain(v, "nodeName", s);
			s = v_str(v, ep, "hostname");
			if (s)
				v_dns_label(v, "hostname", s);
			s = v_str(v, ep, "zone");
			if (s && *s) {
				struct msgs ms = {.n = 0};

				check_label_value(s, &ms);
				v_invalid_msgs(v, "zone", s, &ms);
			}
			cond = v_get(v, ep, "conditions", json_type_object, NULL);
			if (cond) {
				size_t o2 = vp_child(v, "conditions");

				for (size_t k = 0; cond_keys[k]; k++)
					v_get(v, cond, cond_keys[k], json_type_boolean, NULL);
				vp_pop(v, o2);
			}
			vp_pop(v, old);
		}
	}

	ports = v_get(v, obj, "ports", json_type_array, NULL);
	n = arr_len(ports);
	if (n > 20000) {
		v_too_many(v, "ports", n, 20000);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t old = vp_child(v, "ports");
		struct json_object *p = v_elem_obj(v, ports, i);
		const char *name, *app;
		int64_t port;

		if (!p) {
			vp_pop(v, old);
			continue;
		}
		vp_index(v, i);
		name = v_str0(v, p, "name");
		if (*name)
			v_dns_label(v, "name", name);
		/* Unnamed ports count as the name "", so two of them clash. */
		for (size_t j = 0; j < i; j++) {
			const char *o = sl_json_get_str(arr_at(ports, j), "name");

			if (!strcmp(o ? o : "", name)) {
				v_duplicate_s(v, "name", name);
				break;
			}
		}
		v_protocol(v, p, true);
		if (v_int(v, p, "port", &port))
			v_port_num(v, "port", port);
		app = v_str(v, p, "appProtocol");
		if (app)
			v_qualified_name(v, "appProtocol", app);
		vp_pop(v, old);
	}
}

static void validate_endpoint_address(struct vctx *v, const struct json_object *a)
{
	const char *ip = v_str0(v, a, "ip");
	const char *s;

	v_ip(v, "ip", ip, true);
	s = v_str(v, a, "hostname");
	if (s && *s)
		v_dns_label(v, "hostname", s);
	s = v_str(v, a, "nodeName");
	if (s)
		v_dns_subdomain(v, "nodeName", s);
}

static void validate_endpoints(struct vctx *v, const struct json_object *obj)
{
	struct json_object *subsets = v_get(v, obj, "subsets", json_type_array, NULL);
	static const char *const addr_lists[] = {"addresses", "notReadyAddresses", NULL};

	for (size_t i = 0; i < arr_len(subsets); i++) {
		size_t old = vp_child(v, "subsets");
		struct json_object *ss = v_elem_obj(v, subsets, i);
		struct json_object *ports;
		size_t np;

		if (!ss) {
			vp_pop(v, old);
			continue;
		}
		vp_index(v, i);
		if (arr_len(sl_json_get(ss, "addresses")) == 0 &&
		    arr_len(sl_json_get(ss, "notReadyAddresses")) == 0)
			v_required(v, NULL, "must specify `addresses` or `notReadyAddresses`");
		for (size_t k = 0; addr_lists[k]; k++) {
			struct json_object *addrs =
				v_get(v, ss, addr_lists[k], json_type_array, NULL);
			size_t o2 = vp_child(v, addr_lists[k]);

			for (size_t j = 0; j < arr_len(addrs); j++) {
				struct json_object *a = v_elem_obj(v, addrs, j);
				size_t o3;

				if (!a)
					continue;
				o3 = vp_index(v, j);
				validate_endpoint_address(v, a);
				vp_pop(v, o3);
			}
			vp_pop(v, o2);
		}
		ports = v_get(v, ss, "ports", json_type_array, NULL);
		np = arr_len(ports);
		for (size_t j = 0; j < np; j++) {
			size_t o2 = vp_child(v, "ports");
			struct json_object *p = v_elem_obj(v, ports, j);
			const char *name, *app;
			int64_t port = 0;

			if (!p) {
				vp_pop(v, o2);
				continue;
			}
			vp_index(v, j);
			name = v_str0(v, p, "name");
			if (np > 1 && !*name)
				v_required(v, "name", NULL);
			else if (*name)
				v_dns_label(v, "name", name);
			v_int(v, p, "port", &port);
			v_port_num(v, "port", port);
			v_protocol(v, p, true);
			app = v_str(v, p, "appProtocol");
			if (app)
				v_qualified_name(v, "appProtocol", app);
			vp_pop(v, o2);
		}
		vp_pop(v, old);
	}
}

/* --- Node ----------------------------------------------------------------------- */

static void validate_node(struct vctx *v, const struct json_object *obj)
{
	struct json_object *spec = v_get(v, obj, "spec", json_type_object, NULL);
	struct json_object *taints, *cidrs;
	const char *cidr;
	size_t old = vp_child(v, "spec");

	cidr = v_str(v, spec, "podCIDR");
	if (cidr && *cidr)
		v_cidr(v, "podCIDR", cidr);
	cidrs = v_get(v, spec, "podCIDRs", json_type_array, NULL);
	for (size_t i = 0; i < arr_len(cidrs); i++) {
		size_t o2 = vp_child(v, "podCIDRs");
		bool ok;
		const char *s = v_elem_str(v, cidrs, i, &ok);

		if (ok) {
			vp_index(v, i);
			v_cidr(v, NULL, s);
		}
		vp_pop(v, o2);
	}
	if (arr_len(cidrs) > 1) {
		unsigned char a[16], b[16];
		int pa, pb;
		int fa = cidr_parse(json_object_get_string(arr_at(cidrs, 0)), a, &pa);
		int fb = cidr_parse(json_object_get_string(arr_at(cidrs, 1)), b, &pb);

		if (arr_len(cidrs) > 2 || (fa && fb && fa == fb))
			v_invalid_raw(v, "podCIDRs",
				      json_object_to_json_string_ext(cidrs, JSON_C_TO_STRING_PLAIN),
				      "may specify no more than one CIDR for each IP family");
	}
	v_get(v, spec, "unschedulable", json_type_boolean, NULL);

	/* simplified: upstream reports taints under metadata.taints (a path bug);
	 * we use spec.taints. */
	taints = v_get(v, spec, "taints", json_type_array, NULL);
	for (size_t i = 0; i < arr_len(taints); i++) {
		size_t o2 = vp_child(v, "taints");
		struct json_object *t = v_elem_obj(v, taints, i);
		const char *key, *val, *effect;

		if (!t) {
			vp_pop(v, o2);
			continue;
		}
		vp_index(v, i);
		key = v_str0(v, t, "key");
		val = v_str0(v, t, "value");
		effect = v_str0(v, t, "effect");
		v_qualified_name(v, "key", key);
		{
			struct msgs ms = {.n = 0};
			char joined[600] = "";

			check_label_value(val, &ms);
			for (int j = 0; j < ms.n; j++) {
				if (j)
					strncat(joined, ";", sizeof(joined) - strlen(joined) - 1);
				strncat(joined, ms.m[j], sizeof(joined) - strlen(joined) - 1);
			}
			if (ms.n)
				v_invalid_s(v, "value", val, joined);
		}
		validate_taint_effect(v, effect, false);
		for (size_t j = 0; j < i; j++) {
			struct json_object *o = arr_at(taints, j);
			const char *ok = sl_json_get_str(o, "key");
			const char *oe = sl_json_get_str(o, "effect");

			if (!strcmp(ok ? ok : "", key) && !strcmp(oe ? oe : "", effect)) {
				char raw[640];

				snprintf(
					raw, sizeof(raw),
					"\"%.256s:%.32s\": taints must be unique by key and effect "
					"pair",
					key, effect);
				v_duplicate_raw(v, NULL, raw);
				break;
			}
		}
		vp_pop(v, o2);
	}
	vp_pop(v, old);
}

/* --- NetworkPolicy -------------------------------------------------------------- */

static void validate_np_port(struct vctx *v, const struct json_object *p)
{
	static const char *const np_protocols[] = {"TCP", "UDP", "SCTP", NULL};
	const char *proto = v_str(v, p, "protocol");
	struct json_object *port = sl_json_get(p, "port");
	int64_t end = 0;
	bool has_end = v_int(v, p, "endPort", &end);

	if (proto && !str_in(proto, np_protocols))
		v_not_supported(v, "protocol", proto, np_protocols);
	if (port && json_object_is_type(port, json_type_int)) {
		int64_t pn = json_object_get_int64(port);

		v_port_num(v, "port", pn);
		if (has_end) {
			if (end < pn)
				v_invalid_i(v, "endPort", pn,
					    "must be greater than or equal to `port`");
			v_port_num(v, "endPort", end);
		}
	} else if (port && json_object_is_type(port, json_type_string)) {
		if (has_end)
			v_invalid_i(v, "endPort", end,
				    "may not be specified when `port` is non-numeric");
		v_port_name(v, "port", json_object_get_string(port));
	} else if (port) {
		v_wrong_type(v, "port", port, "an integer or a string");
	} else if (has_end) {
		v_invalid_i(v, "endPort", end, "may not be specified when `port` is not specified");
	}
}

static void validate_ip_block(struct vctx *v, const struct json_object *ipb)
{
	const char *cidr = v_str0(v, ipb, "cidr");
	struct json_object *except;
	unsigned char net[16];
	int fam, prefix;

	if (!*cidr) {
		v_required(v, "cidr", NULL);
		return;
	}
	fam = cidr_parse(cidr, net, &prefix);
	if (!fam) {
		v_invalid_s(v, "cidr", cidr, MSG_CIDR);
		return;
	}
	except = v_get(v, ipb, "except", json_type_array, NULL);
	for (size_t i = 0; i < arr_len(except); i++) {
		size_t old = vp_child(v, "except");
		bool ok;
		const char *s = v_elem_str(v, except, i, &ok);
		unsigned char ex[16];
		int efam, ep;

		if (!ok) {
			vp_pop(v, old);
			continue;
		}
		vp_index(v, i);
		efam = cidr_parse(s, ex, &ep);
		if (!efam)
			v_invalid_s(v, NULL, s, MSG_CIDR);
		else if (efam != fam || !cidr_contains(net, prefix, ex) || prefix >= ep)
			v_invalid_s(v, NULL, s, "must be a strict subset of `cidr`");
		vp_pop(v, old);
	}
}

static void validate_np_peer(struct vctx *v, const struct json_object *peer)
{
	struct json_object *ps = v_get(v, peer, "podSelector", json_type_object, NULL);
	struct json_object *ns = v_get(v, peer, "namespaceSelector", json_type_object, NULL);
	struct json_object *ipb = v_get(v, peer, "ipBlock", json_type_object, NULL);
	int n = 0;

	if (ps) {
		size_t o = vp_child(v, "podSelector");

		n++;
		v_label_selector(v, ps);
		vp_pop(v, o);
	}
	if (ns) {
		size_t o = vp_child(v, "namespaceSelector");

		n++;
		v_label_selector(v, ns);
		vp_pop(v, o);
	}
	if (ipb) {
		size_t o = vp_child(v, "ipBlock");

		n++;
		validate_ip_block(v, ipb);
		vp_pop(v, o);
	}
	if (n == 0)
		v_required(v, NULL, "must specify a peer");
	else if (n > 1 && ipb)
		v_forbidden(v, NULL, "may not specify both ipBlock and another peer");
}

static void validate_np_rules(struct vctx *v, const struct json_object *spec, const char *dir,
			      const char *peers_key)
{
	struct json_object *rules = v_get(v, spec, dir, json_type_array, NULL);

	for (size_t i = 0; i < arr_len(rules); i++) {
		size_t old = vp_child(v, dir);
		struct json_object *r = v_elem_obj(v, rules, i);
		struct json_object *ports, *peers;

		if (!r) {
			vp_pop(v, old);
			continue;
		}
		vp_index(v, i);
		ports = v_get(v, r, "ports", json_type_array, NULL);
		for (size_t j = 0; j < arr_len(ports); j++) {
			size_t o2 = vp_child(v, "ports");
			struct json_object *p = v_elem_obj(v, ports, j);

			if (p) {
				vp_index(v, j);
				validate_np_port(v, p);
			}
			vp_pop(v, o2);
		}
		peers = v_get(v, r, peers_key, json_type_array, NULL);
		for (size_t j = 0; j < arr_len(peers); j++) {
			size_t o2 = vp_child(v, peers_key);
			struct json_object *p = v_elem_obj(v, peers, j);

			if (p) {
				vp_index(v, j);
				validate_np_peer(v, p);
			}
			vp_pop(v, o2);
		}
		vp_pop(v, old);
	}
}

static void validate_networkpolicy(struct vctx *v, const struct json_object *obj)
{
	static const char *const types[] = {"Ingress", "Egress", NULL};
	struct json_object *spec = v_get(v, obj, "spec", json_type_object, NULL);
	struct json_object *ps, *pt;
	bool bad = false;
	size_t old = vp_child(v, "spec");

	ps = v_get(v, spec, "podSelector", json_type_object, &bad);
	if (!ps && !bad) {
		v_required(v, "podSelector", NULL);
	} else if (ps) {
		size_t o2 = vp_child(v, "podSelector");

		v_label_selector(v, ps);
		vp_pop(v, o2);
	}
	validate_np_rules(v, spec, "ingress", "from");
	validate_np_rules(v, spec, "egress", "to");

	pt = v_get(v, spec, "policyTypes", json_type_array, NULL);
	if (arr_len(pt) > 2) {
		v_invalid_raw(v, "policyTypes",
			      json_object_to_json_string_ext(pt, JSON_C_TO_STRING_PLAIN),
			      "may not specify more than two policyTypes");
	} else {
		for (size_t i = 0; i < arr_len(pt); i++) {
			size_t o2 = vp_child(v, "policyTypes");
			bool ok;
			const char *t = v_elem_str(v, pt, i, &ok);

			if (ok) {
				vp_index(v, i);
				/* Upstream has no duplicate check; a repeated type is
				 * always a mistake, so say so. */
				if (!str_in(t, types))
					v_not_supported(v, NULL, t, types);
				else if (i == 1 &&
					 json_object_is_type(arr_at(pt, 0), json_type_string) &&
					 !strcmp(json_object_get_string(arr_at(pt, 0)), t))
					v_duplicate_s(v, NULL, t);
			}
			vp_pop(v, o2);
		}
	}
	vp_pop(v, old);
}

/* --- small kinds ------------------------------------------------------------------ */

static void validate_event(struct vctx *v, const struct json_object *obj)
{
	struct json_object *io;
	bool bad = false;

	io = v_get(v, obj, "involvedObject", json_type_object, &bad);
	if (!io) {
		if (!bad)
			v_required(v, "involvedObject", NULL);
		return;
	}
	{
		const char *evns = sl_json_get_str(sl_json_get(obj, "metadata"), "namespace");
		size_t old = vp_child(v, "involvedObject");
		const char *ions = v_str0(v, io, "namespace");

		vp_pop(v, old);

		if (!evns)
			evns = "";
		/* Events about cluster-scoped objects live in "default" (or nowhere). */
		if (!*ions ? (*evns && strcmp(evns, "default")) : strcmp(evns, ions))
			v_invalid_s(v, "involvedObject.namespace", ions,
				    "does not match event.namespace");
	}
}

static void validate_lease(struct vctx *v, const struct json_object *obj)
{
	struct json_object *spec = v_get(v, obj, "spec", json_type_object, NULL);
	size_t old = vp_child(v, "spec");
	int64_t n;

	if (v_int(v, spec, "leaseDurationSeconds", &n) && n <= 0)
		v_invalid_i(v, "leaseDurationSeconds", n, "must be greater than 0");
	if (v_int(v, spec, "leaseTransitions", &n) && n < 0)
		v_invalid_i(v, "leaseTransitions", n, "must be greater than or equal to 0");
	v_str(v, spec, "holderIdentity");
	vp_pop(v, old);
}

/* Decoded length of a base64 string (binaryData is sent base64-encoded). */
static size_t b64_decoded_len(const char *s, size_t n)
{
	while (n > 0 && s[n - 1] == '=')
		n--;
	return n * 3 / 4;
}

static bool b64_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (n % 4)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '=')
			break;
		if (!is_alnum(c) && c != '+' && c != '/')
			return false;
	}
	return n - i <= 2 && strspn(s + i, "=") == n - i;
}

static void validate_configmap(struct vctx *v, const struct json_object *obj)
{
	static const char *const bags[] = {"data", "binaryData", NULL};
	struct json_object *bin = sl_json_get(obj, "binaryData");
	size_t total = 0;

	for (size_t k = 0; bags[k]; k++) {
		struct json_object *m = v_get(v, obj, bags[k], json_type_object, NULL);
		size_t old;

		if (!m)
			continue;
		old = vp_child(v, bags[k]);
		json_object_object_foreach(m, key, val)
		{
			struct msgs ms = {.n = 0};
			size_t o2 = vp_key(v, key);

			check_config_key(key, &ms);
			v_invalid_msgs(v, NULL, key, &ms);
			if (k == 0 && json_object_is_type(bin, json_type_object) &&
			    json_object_object_get_ex(bin, key, NULL))
				v_invalid_s(v, NULL, key, "duplicate of key present in binaryData");
			if (!val || !json_object_is_type(val, json_type_string)) {
				if (val)
					v_wrong_type(v, NULL, val, "a string");
			} else if (k == 0) {
				total += (size_t)json_object_get_string_len(val);
			} else if (!b64_valid(json_object_get_string(val))) {
				v_invalid_s(v, NULL, key, "must be base64-encoded");
			} else {
				total += b64_decoded_len(json_object_get_string(val),
							 (size_t)json_object_get_string_len(val));
			}
			vp_pop(v, o2);
		}
		vp_pop(v, old);
	}
	if (total > MAX_CONFIGMAP_BYTES)
		v_too_long(v, NULL, MAX_CONFIGMAP_BYTES);
}

/* --- apps/v1: Deployment, ReplicaSet, DaemonSet ------------------------------------ */

/* An IntOrString of a rolling update: a non-negative integer or "N%". Returns
 * the integer value, or the percentage (flagged), or -1 after adding a cause. */
static int64_t v_int_or_percent(struct vctx *v, const struct json_object *o, const char *key,
				bool *percent)
{
	struct json_object *m = sl_json_get(o, key);
	char *end;
	long long n;

	*percent = false;
	if (!m)
		return 0;
	if (json_object_is_type(m, json_type_int)) {
		n = json_object_get_int64(m);
		if (n < 0) {
			v_invalid_i(v, key, n, "must be greater than or equal to 0");
			return -1;
		}
		return n;
	}
	if (json_object_is_type(m, json_type_string)) {
		const char *str = json_object_get_string(m);
		size_t len = strlen(str);
		errno = 0;
		n = strtoll(str, &end, 10);
		if (len < 2 || str[len - 1] != '%' || end != str + len - 1 || errno || n < 0) {
			v_invalid_s(v, key, str,
				    "a valid percent string must be a numeric string followed by "
				    "an ending '%' (e.g. '1%',  or '93%', regex used for "
				    "validation is '[0-9]+%')");
			return -1;
		}
		*percent = true;
		if (n > 100) {
			v_invalid_s(v, key, str, "must not be greater than 100%");
			return -1;
		}
		return n;
	}
	v_wrong_type(v, key, m, "an integer or a percent string");
	return -1;
}

static void v_rolling_update(struct vctx *v, const struct json_object *ru, bool surge_allowed)
{
	bool psurge = false, punavail = false;
	int64_t surge, unavail;
	size_t old = vp_child(v, "rollingUpdate");

	surge = v_int_or_percent(v, ru, "maxSurge", &psurge);
	unavail = v_int_or_percent(v, ru, "maxUnavailable", &punavail);
	if (surge == 0 && unavail == 0 && surge_allowed)
		v_invalid_i(v, "maxUnavailable", 0, "may not be 0 when `maxSurge` is 0");
	(void)psurge;
	(void)punavail;
	vp_pop(v, old);
}

/*
 * What the three kinds share (ValidateDeploymentSpec, ValidateReplicaSetSpec,
 * ValidateDaemonSetSpec): a non-empty selector that matches the template's
 * labels, a valid pod template with restartPolicy Always, replicas >= 0 and
 * an immutable selector.
 */
static void validate_workload(struct vctx *v, const char *kind, const struct json_object *obj,
			      const struct json_object *oldobj)
{
	struct json_object *spec = v_get(v, obj, "spec", json_type_object, NULL);
	struct json_object *sel, *tmpl, *labels, *pspec;
	size_t old = vp_child(v, "spec");
	int64_t i64;
	bool bad = false;

	if (!spec) {
		v_required(v, NULL, NULL);
		vp_pop(v, old);
		return;
	}
	if (strcmp(kind, "DaemonSet") && v_int(v, spec, "replicas", &i64) && i64 < 0)
		v_invalid_i(v, "replicas", i64, "must be greater than or equal to 0");
	if (v_int(v, spec, "minReadySeconds", &i64) && i64 < 0)
		v_invalid_i(v, "minReadySeconds", i64, "must be greater than or equal to 0");
	if (v_int(v, spec, "revisionHistoryLimit", &i64) && i64 < 0)
		v_invalid_i(v, "revisionHistoryLimit", i64, "must be greater than or equal to 0");
	sel = v_get(v, spec, "selector", json_type_object, &bad);
	tmpl = v_get(v, spec, "template", json_type_object, NULL);
	labels = tmpl ? sl_json_get(sl_json_get(tmpl, "metadata"), "labels") : NULL;
	if (!sel && !bad) {
		v_required(v, "selector", NULL);
	} else if (sel) {
		size_t o2 = vp_child(v, "selector");
		struct sl_labelsel *ls;
		size_t before = v->out->n;
		v_label_selector(v, sel);
		vp_pop(v, o2);
		ls = v->out->n == before ? sl_labelsel_from_json(sel, "spec.selector", NULL, 0)
					 : NULL;
		if (ls && sl_labelsel_empty(ls)) {
			v_invalid_raw(v, "selector",
				      json_object_to_json_string_ext(sel, JSON_C_TO_STRING_PLAIN),
				      "empty selector is invalid for deployment");
		} else if (ls && !sl_labelsel_match_json(ls, labels)) {
			size_t o3 = vp_child(v, "template");
			vp_child(v, "metadata");
			v_invalid_raw(v, "labels",
				      labels ? json_object_to_json_string_ext(
						       labels, JSON_C_TO_STRING_PLAIN)
					     : "null",
				      "`selector` does not match template `labels`");
			vp_pop(v, o3);
		}
		sl_labelsel_free(ls);
	}
	if (!tmpl) {
		v_required(v, "template", NULL);
	} else {
		size_t o2 = vp_child(v, "template");
		static const char *const always[] = {"Always", NULL};
		const char *rp;
		if (labels) {
			size_t o3 = vp_child(v, "metadata");
			v_labels(v, sl_json_get(tmpl, "metadata"), "labels");
			vp_pop(v, o3);
		}
		validate_pod(v, tmpl, NULL);
		pspec = sl_json_get(tmpl, "spec");
		rp = sl_json_get_str(pspec, "restartPolicy");
		if (rp && strcmp(rp, "Always")) {
			size_t o3 = vp_child(v, "spec");
			v_not_supported(v, "restartPolicy", rp, always);
			vp_pop(v, o3);
		}
		vp_pop(v, o2);
	}
	if (!strcmp(kind, "Deployment")) {
		static const char *const types[] = {"Recreate", "RollingUpdate", NULL};
		struct json_object *st = v_get(v, spec, "strategy", json_type_object, NULL);
		size_t o2 = vp_child(v, "strategy");
		const char *t = v_str0(v, st, "type");
		struct json_object *ru = v_get(v, st, "rollingUpdate", json_type_object, NULL);
		if (st && !str_in(t, types))
			v_not_supported(v, "type", t, types);
		else if (!strcmp(t, "Recreate") && ru)
			v_forbidden(v, "rollingUpdate",
				    "may not be specified when strategy `type` is 'Recreate'");
		else if (ru)
			v_rolling_update(v, ru, true);
		vp_pop(v, o2);
		if (v_int(v, spec, "progressDeadlineSeconds", &i64) && i64 < 0)
			v_invalid_i(v, "progressDeadlineSeconds", i64,
				    "must be greater than or equal to 0");
	} else if (!strcmp(kind, "DaemonSet")) {
		static const char *const types[] = {"OnDelete", "RollingUpdate", NULL};
		struct json_object *st = v_get(v, spec, "updateStrategy", json_type_object, NULL);
		size_t o2 = vp_child(v, "updateStrategy");
		const char *t = v_str0(v, st, "type");
		if (st && !str_in(t, types))
			v_not_supported(v, "type", t, types);
		vp_pop(v, o2);
	}
	if (oldobj) {
		struct json_object *osel = sl_json_get(sl_json_get(oldobj, "spec"), "selector");
		if (osel && sel && !sl_json_equal(sel, osel))
			v_invalid_raw(v, "selector",
				      json_object_to_json_string_ext(sel, JSON_C_TO_STRING_PLAIN),
				      "field is immutable");
	}
	vp_pop(v, old);
}

/* --- entry point ------------------------------------------------------------------ */

int validate_object(const char *kind, bool namespaced, const struct json_object *obj,
		    const struct json_object *old, struct api_causes *out)
{
	struct vctx v = {.out = out, .len = 0};
	size_t before = out->n;
	enum name_kind nk = NAME_SUBDOMAIN;

	v.path[0] = '\0';
	if (!kind)
		kind = "";
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		api_causes_add(out, CAUSE_INVALID, "", "Invalid value: %s: must be an object",
			       obj ? json_object_to_json_string_ext((struct json_object *)obj,
								    JSON_C_TO_STRING_PLAIN)
				   : "null");
		return (int)(out->n - before);
	}
	if (!strcmp(kind, "Namespace"))
		nk = NAME_DNS1123_LABEL;
	else if (!strcmp(kind, "Service"))
		nk = NAME_DNS1035_LABEL;
	validate_meta(&v, nk, namespaced, obj);
	if (old && json_object_is_type(old, json_type_object))
		validate_meta_update(&v, obj, old);
	else
		old = NULL;

	if (!strcmp(kind, "Service"))
		validate_service(&v, obj, old);
	else if (!strcmp(kind, "Pod"))
		validate_pod(&v, obj, old);
	else if (!strcmp(kind, "EndpointSlice"))
		validate_endpointslice(&v, obj, old);
	else if (!strcmp(kind, "Endpoints"))
		validate_endpoints(&v, obj);
	else if (!strcmp(kind, "Node"))
		validate_node(&v, obj);
	else if (!strcmp(kind, "NetworkPolicy"))
		validate_networkpolicy(&v, obj);
	else if (!strcmp(kind, "Event"))
		validate_event(&v, obj);
	else if (!strcmp(kind, "Lease"))
		validate_lease(&v, obj);
	else if (!strcmp(kind, "ConfigMap"))
		validate_configmap(&v, obj);
	else if (!strcmp(kind, "Deployment") || !strcmp(kind, "ReplicaSet") ||
		 !strcmp(kind, "DaemonSet"))
		validate_workload(&v, kind, obj, old);
	return (int)(out->n - before);
}
