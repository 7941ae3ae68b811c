#!/usr/bin/env bash
# Opens the demo year's review HTML in headless Chromium (Debian's `chromium`) and saves a
# screenshot: proof that the self-contained page renders, charts included.
#   scripts/review-screenshot.sh [OUT.png]   (default docs/review-screenshot.png)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/review-screenshot.png}"
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium (needs root and the Debian mirror)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo run --quiet -- demo --review-out "$work" >/dev/null
html="$(ls "$work"/review-*.html | head -n 1)"
mkdir -p "$(dirname "$out")"
# The flags keep Chromium off the network this machine does not have, and out of any profile.
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars --window-size=1100,2600 \
  --screenshot="$PWD/$out" "file://$html" 2>/dev/null
test -s "$out"
echo "screenshot of $(basename "$html") saved to $out"
