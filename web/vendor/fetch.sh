#!/usr/bin/env bash
# Re-fetches the vendored client libraries from the npm registry, unmodified, and checks them
# against SHA256SUMS. `fetch.sh` writes them here; `fetch.sh --check` fetches into a temporary
# folder and fails if anything differs from what is committed (CI runs that).
#
# What is vendored (see README.md here): htm 3.1.1's `preact/standalone.module.js` (htm with
# Preact 10 and its hooks in one ES module with no imports), htm's and Preact's licences;
# h3-js 4.5.0's browser ES module (H3 cells computed on the device, for nearby people) with
# its licence and notice.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mode="${1:-write}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm pack checks each tarball against the registry's integrity hash.
(cd "$work" && npm pack --silent htm@3.1.1 preact@10.2.0 h3-js@4.5.0 >/dev/null)
mkdir -p "$work/htm" "$work/preact" "$work/h3-js" "$work/out/htm" "$work/out/h3"
tar -xzf "$work/htm-3.1.1.tgz" -C "$work/htm"
tar -xzf "$work/preact-10.2.0.tgz" -C "$work/preact"
tar -xzf "$work/h3-js-4.5.0.tgz" -C "$work/h3-js"
cp "$work/htm/package/preact/standalone.module.js" "$work/out/htm/standalone.module.js"
cp "$work/htm/package/LICENSE" "$work/out/htm/LICENSE.txt"
# The Preact that htm bundles (its build asks for ^10.2.0): its licence.
cp "$work/preact/package/LICENSE" "$work/out/htm/LICENSE-preact.txt"
# h3-js: the build for browsers (plain JavaScript compiled from H3's C, no WebAssembly, no
# eval, so the client's CSP stays as it is), its Apache-2.0 licence and notice.
cp "$work/h3-js/package/dist/browser/h3-js.es.js" "$work/out/h3/h3-js.es.js"
cp "$work/h3-js/package/LICENSE" "$work/out/h3/LICENSE.txt"
cp "$work/h3-js/package/NOTICE" "$work/out/h3/NOTICE.txt"

(cd "$work/out" && sha256sum -c "$here/SHA256SUMS")
if [[ "$mode" == "--check" ]]; then
  for d in htm h3; do
    for f in "$work/out/$d/"*; do cmp "$f" "$here/$d/$(basename "$f")"; done
  done
  echo "vendor: the committed files are the registry's, byte for byte"
else
  mkdir -p "$here/h3"
  cp "$work/out/htm/"* "$here/htm/"
  cp "$work/out/h3/"* "$here/h3/"
  echo "vendor: fetched and verified"
fi
