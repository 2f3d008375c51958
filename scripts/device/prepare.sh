#!/usr/bin/env bash
# device/prepare.sh: here, before a device call: the Debian packages the GPU machine lacks, unpacked and
# pruned (headers, shared libraries, pkg-config and CMake files; no static archives, docs or LAPACK) into
# .deps/deproot.tar.xz, and the golden fixtures (../shared does not travel) into .deps/fixtures. Both are
# git-ignored: carry ".deps/deproot.tar.xz" always, ".deps/fixtures" for the tests (the tree that travels is
# at most 64 MiB).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$root/.deps/fixtures" "$work/debs" "$work/root"
(cd "$work/debs" && apt-get download libyaml-dev libyaml-0-2 libarchive-dev libarchive13 libcmocka-dev libcmocka0 \
  nettle-dev libnettle8 libhogweed6 libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 \
  libgfortran5 libgmp-dev libgmp10 >/dev/null)
for f in "$work"/debs/*.deb; do dpkg -x "$f" "$work/root"; done
find "$work/root" -name '*.a' -delete
find "$work/root" -name 'liblapack*' ! -name '*.pc' -delete
rm -rf "$work"/root/usr/share/{doc,man,info,lintian}
tar -cJf "$root/.deps/deproot.tar.xz" -C "$work/root" .
rm -rf "$root/.deps/debs"
cp "$root/../shared/fixtures/"*.h5 "$root/.deps/fixtures/"
du -sh "$root/.deps/deproot.tar.xz" "$root/.deps/fixtures"
