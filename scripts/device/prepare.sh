#!/usr/bin/env bash
# device/prepare.sh: here, before a device call: fetch the Debian packages the GPU machine lacks and copy
# the golden fixtures (../shared does not travel) into .deps/, which is git-ignored and carried.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$root/.deps/debs" "$root/.deps/fixtures"
cd "$root/.deps/debs"
apt-get download libyaml-dev libyaml-0-2 libarchive-dev libarchive13 libcmocka-dev libcmocka0 nettle-dev \
  libnettle8 libhogweed6 libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libgfortran5 \
  libgmp-dev libgmp10 2>/dev/null
cp "$root/../shared/fixtures/"*.h5 "$root/.deps/fixtures/"
du -sh "$root/.deps"
