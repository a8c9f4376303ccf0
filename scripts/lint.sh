#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make lint: clang-format check, cppcheck and clang-tidy (clang-analyzer and
# bugprone checks) on the C sources changed since LINT_BASE (default: all
# tracked sources). Exit status is non-zero on any finding.
#   LINT_BASE=origin/main make lint     # only what a branch changed
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ -n ${LINT_BASE:-} ]]; then
	mapfile -t files < <(git diff --name-only --diff-filter=AM "$LINT_BASE" -- '*.c' '*.h')
else
	mapfile -t files < <(git ls-files '*.c' '*.h')
fi
((${#files[@]})) || { echo "lint: nothing to check"; exit 0; }
rc=0

echo "lint: clang-format (${#files[@]} files)"
clang-format --dry-run --Werror "${files[@]}" || rc=1

cflags=(-std=gnu11 -D_GNU_SOURCE -Ilib/include -Icontrol/include -Iagent/include -Ibpf/include -Idns -Icni-plugin -Inetpol
	-isystem build/bpf -I.
	$(pkg-config --cflags json-c libevent libcurl sqlite3 libbpf libmnl libnftnl libnl-3.0 libnl-route-3.0 libnl-genl-3.0))
cfiles=()
# BPF programs build with clang -target bpf against vmlinux.h; the verifier
# and -Werror in that build are their static check.
for f in "${files[@]}"; do [[ $f == *.c && $f != *.bpf.c ]] && cfiles+=("$f"); done

# cppcheck reads the unit tests' ASSERT_* macros (statement expressions
# casting to long long) as type and null-pointer mistakes; the tests are
# checked instead by running them under ASan/UBSan in make test.
ccfiles=()
for f in "${cfiles[@]}"; do [[ $f != tests/unit/* ]] && ccfiles+=("$f"); done
echo "lint: cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	--inline-suppr --suppress=missingIncludeSystem -Ilib/include -Icontrol/include -Iagent/include \
	-Ibpf/include \
	"${ccfiles[@]}" || rc=1

echo "lint: clang-tidy"
# Off on purpose: house style (kernel/libbpf) writes !strcmp(a, b), does
# size arithmetic in size_t, and sizes arrays of pointers with sizeof(*p);
# those three checks flag the idiom, not bugs (clang-tidy 14 cannot be told
# that sizeof(*p) of a T ** is the element size).
checks='-*,clang-analyzer-*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-bugprone-narrowing-conversions,-bugprone-branch-clone,-bugprone-assignment-in-if-condition,-clang-analyzer-security.insecureAPI.*,-bugprone-suspicious-string-compare,-bugprone-implicit-widening-of-multiplication-result,-bugprone-sizeof-expression'
for f in "${cfiles[@]}"; do
	# Findings located in generated code (bpftool skeletons under build/)
	# are not ours to fix; everything else fails the lint.
	out=$(clang-tidy --quiet -checks="$checks" "$f" -- "${cflags[@]}" 2>&1 |
		grep -E 'warning:|error:' | grep -v '^build/' | grep -v "^$PWD/build/")
	if [[ -n $out ]]; then
		echo "$out" | head -20
		rc=1
	fi
done
((rc)) && echo "lint: findings above" || echo "lint: clean"
exit $rc
