#!/usr/bin/env bash
# Installs the build and test dependencies from Debian's packages, if missing.
set -eu
# clang + libclang-rt-dev: the libFuzzer builds (scripts/fuzz.sh); Debian's
# clang only recommends the runtime holding libFuzzer, and recommends are off.
pkgs="build-essential autoconf automake libtool pkg-config libevent-dev libssl-dev
      libjson-c-dev zlib1g-dev valgrind clang-format clang libclang-rt-dev"
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
