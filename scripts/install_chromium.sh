#!/usr/bin/env bash
# Headless Chromium for the tests that render the HTML reports (tests/reporting/test_render.py,
# tests/tfx_pipeline/test_pipeline.py). Idempotent: does nothing when `chromium` is on PATH.
# Installs Debian's `chromium` package (no recommends: ~115 MB, ~15 s on a fast mirror).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: chromium is not on PATH and apt-get is unavailable here. Install Chromium by other means" \
         "(e.g. your distribution's chromium package) so that \`chromium\` is on PATH; the report tests need it." >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "error: installing chromium needs root: run \`apt-get install -y --no-install-recommends chromium\` as root." >&2
        exit 1
    fi
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "Installing Debian's chromium package for the report tests..."
# A fresh machine may have no package lists yet: update only when the install cannot find the package.
if ! $SUDO apt-get install -y -q --no-install-recommends chromium; then
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends chromium
fi
command -v chromium >/dev/null 2>&1 || { echo "error: chromium installed but not on PATH" >&2; exit 1; }
