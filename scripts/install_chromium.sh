#!/usr/bin/env bash
# Install Debian's `chromium` for tests/workflow/test_report_render.py, which renders the HTML report in
# headless Chromium (pvc_core/report/render.py) and checks that every embedded figure loads.
# Debian/Ubuntu, run as root (or with password-less sudo).
#
#   bash scripts/install_chromium.sh     # install (once); prints the browser's version
#
# Idempotent: does nothing but print the version when a Chromium is already found ($DLPVC_CHROMIUM,
# or chromium / chromium-browser / google-chrome / headless_shell on PATH, the same search as
# pvc_core.report.render.find_chromium). Otherwise apt-get update + apt-get install
# --no-install-recommends chromium, quietly and non-interactively, each bounded to 10 minutes.
set -euo pipefail

say() { echo "install_chromium: $*"; }
die() { echo "install_chromium: error: $*" >&2; exit 1; }

find_browser() {
    if [[ -n ${DLPVC_CHROMIUM:-} ]]; then
        command -v "$DLPVC_CHROMIUM" 2>/dev/null && return 0
        return 1
    fi
    local name
    for name in chromium chromium-browser google-chrome headless_shell; do
        command -v "$name" 2>/dev/null && return 0
    done
    return 1
}

if browser=$(find_browser); then
    say "found $browser: $("$browser" --version 2>/dev/null || echo 'version unknown')"
    exit 0
fi
[[ -n ${DLPVC_CHROMIUM:-} ]] && die "DLPVC_CHROMIUM=$DLPVC_CHROMIUM is not an executable"

SUDO=""
if [[ $EUID -ne 0 ]]; then
    if ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
        die "run as root (or with password-less sudo)"
    fi
    SUDO="sudo -n"
fi

say "installing chromium (apt-get)"
t0=$SECONDS
$SUDO timeout 600 apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
    chromium >/dev/null
browser=$(find_browser) || die "apt-get installed chromium, but no chromium is on PATH"
say "installed $browser in $(( SECONDS - t0 )) s: $("$browser" --version 2>/dev/null || echo 'version unknown')"
