#!/usr/bin/env bash
# Packs the built paas-rproxy checkout SRC into SRC/dist/paas-rproxy.tar for role rproxy_listener: dist/,
# ansible/, roles/, README.md, package*.json and node_modules with the production dependencies only
# (a copy pruned with `npm prune --omit=dev`, offline). Deterministic: same inputs, same bytes (sorted names,
# mtime 0, owner root), so the copy task reports a change only when the package changed.
set -euo pipefail
src=$(cd "$1" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -a "$src/package.json" "$src/package-lock.json" "$stage/"
cp -a "$src/node_modules" "$stage/node_modules"
(cd "$stage" && npm prune --omit=dev --ignore-scripts --offline --no-audit --no-fund --loglevel=error >/dev/null)
# npm's own bookkeeping differs between a pruned and a fresh tree: not part of the package
rm -rf "$stage/node_modules/.package-lock.json" "$stage/node_modules/.cache"
find "$stage/node_modules" -depth -type d -empty -delete
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$src/dist/paas-rproxy.tar.new" \
  --exclude=dist/paas-rproxy.tar --exclude=dist/paas-rproxy.tar.new --exclude=dist/.tsbuildinfo --exclude='*.map' \
  --exclude=__pycache__ \
  -C "$src" dist ansible roles README.md \
  -C "$stage" package.json package-lock.json node_modules
mv "$src/dist/paas-rproxy.tar.new" "$src/dist/paas-rproxy.tar"
du -k "$src/dist/paas-rproxy.tar" | awk '{printf "packed %s KiB\n", $1}'
