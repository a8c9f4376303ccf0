// SPDX-License-Identifier: Apache-2.0
/*
 * Small value helpers shared by everyone who reads Kubernetes objects:
 * resource.Quantity parsing (CPU in millicores, memory in bytes), RFC 3339
 * times as metav1.Time / MicroTime write them, and the string list / string
 * map containers used by the typed objects in sluice/k8s.h.
 *
 * All integer arithmetic is exact: quantities are parsed as a decimal
 * mantissa and exponents and scaled in 128 bits, so "0.1" CPU is exactly
 * 100m and "9223372036854775808" is ERANGE rather than a wrapped value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/k8s.h"

/* --- quantities --------------------------------------------------------------------------- */

struct k8s_qty_suffix {
	const char *s;
	int exp10;
	int exp2;
};

/* Longest first so "Ki" wins over a bare "k"-like prefix; "" must be last. */
static const struct k8s_qty_suffix k8s_qty_suffixes[] = {
	{"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
	{"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"k", 3, 0},   {"M", 6, 0},   {"G", 9, 0},
	{"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},  {"", 0, 0},
};

static bool k8s_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

/* Parses s and returns ceil(|value| * 10^scale10) with the sign of the value. */
static int k8s_quantity_scaled(const char *s, int scale10, int64_t *out)
{
	const char *p = s;
	unsigned __int128 v;
	uint64_t mant = 0;
	int exp10 = scale10, exp2 = 0;
	bool neg = false, digits = false, inexact = false;

	if (!s || !out)
		return -EINVAL;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	for (bool frac = false;; p++) {
		if (*p == '.' && !frac) {
			frac = true;
			continue;
		}
		if (!k8s_isdigit(*p))
			break;
		digits = true;
		if (mant <= (UINT64_MAX - 9) / 10) {
			mant = mant * 10 + (uint64_t)(*p - '0');
			exp10 -= frac;
		} else {
			/* Past 19 significant digits: integer digits scale, fraction digits round.
			 */
			exp10 += !frac;
			inexact |= *p != '0';
		}
	}
	if (!digits)
		return -EINVAL;
	if ((*p == 'e' || *p == 'E') &&
	    (k8s_isdigit(p[1]) || ((p[1] == '+' || p[1] == '-') && k8s_isdigit(p[2])))) {
		bool eneg = false;
		int e = 0;

		p++;
		if (*p == '+' || *p == '-')
			eneg = *p++ == '-';
		for (; k8s_isdigit(*p); p++)
			if (e < 100000)
				e = e * 10 + (*p - '0');
		exp10 += eneg ? -e : e;
	} else {
		const struct k8s_qty_suffix *sx = k8s_qty_suffixes;

		for (; sx->s[0]; sx++)
			if (!strcmp(p, sx->s))
				break;
		if (strcmp(p, sx->s))
			return -EINVAL;
		p += strlen(sx->s);
		exp10 += sx->exp10;
		exp2 = sx->exp2;
	}
	if (*p)
		return -EINVAL;
	if (!mant && !inexact) {
		*out = 0;
		return 0;
	}
	v = (unsigned __int128)mant << exp2;
	if (exp10 > 0) {
		for (int i = 0; i < exp10; i++) {
			if (v > (unsigned __int128)INT64_MAX / 10)
				return -ERANGE;
			v *= 10;
		}
		v += inexact;
	} else if (exp10 < 0) {
		unsigned __int128 div = 1;

		if (exp10 < -38) {
			v = 1; /* a positive amount below one unit rounds up to one */
		} else {
			for (int i = 0; i < -exp10; i++)
				div *= 10;
			v = v / div + (v % div || inexact);
		}
	} else {
		v += inexact;
	}
	if (v > INT64_MAX)
		return -ERANGE;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

int k8s_quantity_parse_milli(const char *s, int64_t *milli)
{
	return k8s_quantity_scaled(s, 3, milli);
}

int k8s_quantity_parse(const char *s, int64_t *value)
{
	return k8s_quantity_scaled(s, 0, value);
}

/* --- times -------------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t k8s_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void k8s_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool k8s_num(const char *p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!k8s_isdigit(p[i]))
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

static int k8s_days_in_month(int y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

int k8s_time_parse(const char *s, struct k8s_time *out)
{
	int y, mo, d, h, mi, sec, nsec = 0, oh = 0, om = 0, sign = 0;
	const char *p;

	if (!s || !out)
		return -EINVAL;
	/* Fixed prefix "YYYY-MM-DDTHH:MM:SS" is 19 bytes; check separators first. */
	if (strnlen(s, 19) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':')
		return -EINVAL;
	if (!k8s_num(s, 4, &y) || !k8s_num(s + 5, 2, &mo) || !k8s_num(s + 8, 2, &d) ||
	    !k8s_num(s + 11, 2, &h) || !k8s_num(s + 14, 2, &mi) || !k8s_num(s + 17, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > k8s_days_in_month(y, mo) || h > 23 || mi > 59 ||
	    sec > 59)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		int n = 0;

		/* Nanoseconds from the first 9 digits; further digits are truncated as in Go. */
		for (p++; k8s_isdigit(*p); p++, n++)
			if (n < 9)
				nsec = nsec * 10 + (*p - '0');
		if (!n)
			return -EINVAL;
		for (; n < 9; n++)
			nsec *= 10;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (strnlen(p, 6) < 6 || p[3] != ':' || !k8s_num(p + 1, 2, &oh) ||
		    !k8s_num(p + 4, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	out->sec = k8s_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
		   sign * (oh * 3600 + om * 60);
	out->nsec = nsec;
	return 0;
}

int k8s_time_format(const struct k8s_time *t, bool micro, char *buf, size_t len)
{
	int64_t days, rem, y;
	int m, d, n;

	if (!t || t->nsec < 0 || t->nsec > 999999999)
		return -ERANGE;
	/* Floor division so times before 1970 land on the right day. */
	days = t->sec / 86400;
	rem = t->sec % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	k8s_civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999)
		return -ERANGE;
	if (micro)
		n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", (int)y, m, d,
			     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60),
			     (int)(t->nsec / 1000));
	else
		n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, m, d,
			     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

/* --- string lists and maps ---------------------------------------------------------------- */

const char *k8s_strmap_get(const struct k8s_strmap *m, const char *key)
{
	if (!m || !key)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].key && !strcmp(m->v[i].key, key))
			return m->v[i].value;
	return NULL;
}

int k8s_strmap_set(struct k8s_strmap *m, const char *key, const char *value)
{
	struct k8s_kv *nv;
	char *k, *v = strdup(value);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].key && !strcmp(m->v[i].key, key)) {
			free(m->v[i].value);
			m->v[i].value = v;
			return 0;
		}
	}
	k = strdup(key);
	nv = k ? realloc(m->v, (m->n + 1) * sizeof(*m->v)) : NULL;
	if (!nv) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	m->v = nv;
	m->v[m->n].key = k;
	m->v[m->n].value = v;
	m->n++;
	return 0;
}

bool k8s_strmap_del(struct k8s_strmap *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].key && !strcmp(m->v[i].key, key)) {
			free(m->v[i].key);
			free(m->v[i].value);
			memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
			m->n--;
			return true;
		}
	}
	return false;
}

void k8s_strmap_fini(struct k8s_strmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].key);
		free(m->v[i].value);
	}
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

int k8s_strlist_push(struct k8s_strlist *l, const char *s)
{
	char *c = strdup(s);
	char **nv = c ? realloc(l->v, (l->n + 1) * sizeof(*l->v)) : NULL;

	if (!nv) {
		free(c);
		return -ENOMEM;
	}
	l->v = nv;
	l->v[l->n++] = c;
	return 0;
}

void k8s_strlist_fini(struct k8s_strlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
