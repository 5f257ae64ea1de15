#!/usr/bin/env bash
# The whole test suite: installs dependencies, then builds and runs `make
# check` three times (optimised with -Werror, under ASan+UBSan with leak
# detection, and under TSan), the test programs once more under valgrind memcheck,
# `make distcheck`, and a short libFuzzer run of every harness (FUZZ_SECONDS each,
# default 60). The last line is the summary: "N passed, N failed,
# N skipped" (TAP test points over all runs, plus one per valgrind program
# and one for distcheck).
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
./autogen.sh >/dev/null 2>&1 || { echo "autogen failed"; echo "0 passed, 1 failed"; exit 1; }
jobs=$(nproc)
# Tests find ../shared through GAPI_SHARED_DIR; pin it to an absolute path so
# that `make distcheck` (which builds in a copy two levels down) sees it too.
if [ -z "${GAPI_SHARED_DIR:-}" ] && [ -d "$top/../shared" ]; then
    GAPI_SHARED_DIR=$(cd "$top/../shared" && pwd); export GAPI_SHARED_DIR
fi
status=0
extra_fail=0

run_build() { # name, configure args...
    local name=$1; shift
    local dir="$top/_build/$name"
    rm -rf "$dir"; mkdir -p "$dir"
    echo "=== $name: configure $*"
    ( cd "$dir" && "$top/configure" "$@" >configure.out 2>&1 ) || { cat "$dir/configure.out"; return 1; }
    echo "=== $name: make check"
    ( cd "$dir" && make -j"$jobs" >make.out 2>&1 ) || { tail -50 "$dir/make.out"; return 1; }
    local rc=0
    ( cd "$dir" && make -j"$jobs" check >check.out 2>&1 ) || rc=1
    grep -a -E '^(PASS|FAIL|ERROR|XPASS|SKIP|# )' "$dir/check.out"
    [ $rc -eq 0 ] && return 0
    {
        for f in $(grep -l -E ':test-result: (FAIL|ERROR|XPASS)' "$dir"/test/*.trs 2>/dev/null); do
            echo "--- ${f%.trs}.log"; grep -E -B2 -A8 '^not ok|Bail out|ERROR|Sanitizer|runtime error' "${f%.trs}.log" | head -80
        done
        return 1
    }
}

run_build release --enable-werror CFLAGS="-O2 -g" || status=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_build asan --enable-werror --enable-sanitizers=address,undefined CFLAGS="-O1 -g" || status=1
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    run_build tsan --enable-werror --enable-sanitizers=thread CFLAGS="-O1 -g" || status=1

echo "=== valgrind memcheck (release build)"
vg_pass=0; vg_fail=0
if ( cd "$top/_build/release" && make check-valgrind >valgrind.out 2>&1 ); then :; fi
while read -r line; do
    case "$line" in
        "== valgrind "*) prog=${line#== valgrind };;
        "FAIL: "*) echo "$line"; vg_fail=$((vg_fail+1)); prog="";;
        "ok points:"*) [ -n "$prog" ] && { echo "PASS: valgrind $prog"; vg_pass=$((vg_pass+1)); };;
    esac
done <"$top/_build/release/valgrind.out"
[ $vg_pass -gt 0 ] || { echo "FAIL: valgrind did not run"; vg_fail=$((vg_fail+1)); }
[ $vg_fail -eq 0 ] || status=1

echo "=== distcheck"
if ( cd "$top/_build/release" && make -j"$jobs" distcheck >distcheck.out 2>&1 ); then
    echo "PASS: make distcheck"; dist_pass=1
else
    tail -40 "$top/_build/release/distcheck.out"; echo "FAIL: make distcheck"; dist_pass=0; extra_fail=1; status=1
fi

echo "=== fuzz (libFuzzer, ${FUZZ_SECONDS:-60} s per harness)"
fz_pass=0; fz_fail=0
scripts/fuzz.sh "${FUZZ_SECONDS:-60}" >"$top/_build/fuzz.out" 2>&1
while read -r line; do
    case "$line" in
        "PASS: fuzz "*) echo "$line"; fz_pass=$((fz_pass+1));;
        "FAIL: fuzz"*) echo "$line"; fz_fail=$((fz_fail+1));;
        "# fuzz "*) echo "$line";;
    esac
done <"$top/_build/fuzz.out"
[ $fz_pass -gt 0 ] || { tail -20 "$top/_build/fuzz.out"; echo "FAIL: fuzz did not run"; fz_fail=$((fz_fail+1)); }
[ $fz_fail -eq 0 ] || status=1

count() { cat "$top"/_build/{release,asan,tsan}/test/*.trs 2>/dev/null | grep -c ":test-result: $1" ; }
pass=$(( $(count PASS) + dist_pass + vg_pass + fz_pass ))
fail=$(( $(count FAIL) + $(count ERROR) + $(count XPASS) + extra_fail + vg_fail + fz_fail ))
skip=$(count SKIP)
echo "${pass} passed, ${fail} failed, ${skip} skipped"
exit $status
