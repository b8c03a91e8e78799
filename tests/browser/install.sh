#!/usr/bin/env bash
# Installs headless Chromium (Debian's `chromium`) for the dashboard's browser test
# (crates/drover-cli/tests/serve_dashboard.rs), unless a Chromium is already on PATH. Needs root
# and the Debian package mirrors; does nothing else.
set -euo pipefail
for browser in chromium chromium-browser google-chrome; do
    if command -v "$browser" >/dev/null 2>&1; then
        exit 0
    fi
done
if [ "$(id -u)" != 0 ]; then
    echo "the dashboard's browser test needs Chromium: run this as root, or install the chromium package" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
chromium --version
