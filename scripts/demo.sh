#!/usr/bin/env bash
# Main job: install dependencies, build, and run the demo (N concurrent GETs
# through one gapi loop against the bundled local HTTPS server).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -x configure ] || ./autogen.sh
mkdir -p _build/release
cd _build/release
[ -f Makefile ] || ../../configure --enable-werror CFLAGS="-O2 -g" >/dev/null
make -j"$(nproc)" >/dev/null
exec ./examples/demo "$@"
