#!/usr/bin/env bash
# Fuzzes every libFuzzer harness in fuzz/ for SECONDS each (default 60):
# configures a clang build with --enable-fuzzers (ASan + UBSan) in
# _build/fuzz when there is none, builds it, and runs `make fuzz`. Prints one
# "PASS: fuzz NAME" or "FAIL: fuzz NAME (crash input: PATH, ...)" line per
# harness, each after a "# fuzz NAME: ..." line with runs, exec/s and
# coverage. Exits 0 when every harness passed. The corpora grow in
# _build/fuzz/fuzz/corpus/ from one run to the next.
set -u
secs=${1:-60}
cd "$(dirname "$0")/.."
top=$(pwd)
dir=$top/_build/fuzz

if ! command -v clang >/dev/null 2>&1; then
    echo "FAIL: fuzz (clang is not installed; scripts/deps.sh installs it)"
    exit 1
fi
if [ ! -x configure ]; then
    ./autogen.sh >/dev/null 2>&1 || { echo "FAIL: fuzz (autogen.sh failed)"; exit 1; }
fi
if [ -z "${GAPI_SHARED_DIR:-}" ] && [ -d "$top/../shared" ]; then
    GAPI_SHARED_DIR=$(cd "$top/../shared" && pwd); export GAPI_SHARED_DIR
fi
mkdir -p "$dir"
if [ ! -f "$dir/Makefile" ]; then
    ( cd "$dir" && "$top/configure" CC=clang CFLAGS="-O1 -g" --enable-fuzzers >configure.out 2>&1 ) ||
        { tail -20 "$dir/configure.out"; echo "FAIL: fuzz (configure --enable-fuzzers failed)"; exit 1; }
fi
make -C "$dir" -j2 fuzz-build >"$dir/fuzz-build.out" 2>&1 ||
    { tail -30 "$dir/fuzz-build.out"; echo "FAIL: fuzz (build failed, see $dir/fuzz-build.out)"; exit 1; }
make -s -C "$dir" fuzz FUZZ_SECONDS="$secs"
