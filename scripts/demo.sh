#!/usr/bin/env bash
# Main job: install dependencies, build, and run the demos against the bundled
# local HTTPS server: N concurrent GETs through one gapi loop, then 16 worker
# threads sharing one client (blocking calls and fanned-out futures).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -x configure ] || ./autogen.sh
mkdir -p _build/release
cd _build/release
[ -f Makefile ] || ../../configure --enable-werror CFLAGS="-O2 -g" >/dev/null
make -j"$(nproc)" >/dev/null
./examples/demo "$@"
echo
exec ./examples/workers
