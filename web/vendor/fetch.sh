#!/usr/bin/env bash
# Re-fetches the vendored client libraries from the npm registry, unmodified, and checks them
# against SHA256SUMS. `fetch.sh` writes them here; `fetch.sh --check` fetches into a temporary
# folder and fails if anything differs from what is committed (CI runs that).
#
# What is vendored (see README.md here): htm 3.1.1's `preact/standalone.module.js` (htm with
# Preact 10 and its hooks in one ES module with no imports), htm's and Preact's licences.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mode="${1:-write}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm pack checks each tarball against the registry's integrity hash.
(cd "$work" && npm pack --silent htm@3.1.1 preact@10.2.0 >/dev/null)
mkdir -p "$work/htm" "$work/preact" "$work/out/htm"
tar -xzf "$work/htm-3.1.1.tgz" -C "$work/htm"
tar -xzf "$work/preact-10.2.0.tgz" -C "$work/preact"
cp "$work/htm/package/preact/standalone.module.js" "$work/out/htm/standalone.module.js"
cp "$work/htm/package/LICENSE" "$work/out/htm/LICENSE.txt"
# The Preact that htm bundles (its build asks for ^10.2.0): its licence.
cp "$work/preact/package/LICENSE" "$work/out/htm/LICENSE-preact.txt"

(cd "$work/out" && sha256sum -c "$here/SHA256SUMS")
if [[ "$mode" == "--check" ]]; then
  for f in "$work/out/htm/"*; do cmp "$f" "$here/htm/$(basename "$f")"; done
  echo "vendor: the committed files are the registry's, byte for byte"
else
  cp "$work/out/htm/"* "$here/htm/"
  echo "vendor: fetched and verified"
fi
