#!/usr/bin/env bash
# Regenerate every screenshot in docs/screenshots/: each page (and each tab of a page),
# a device's detail and the dialogs, in the light and the dark theme, from the real
# console running the demo fleet on a virtual screen. `make screenshots` runs this
# after installing xvfb and Qt's X11 libraries (scripts/ensure-system-deps.sh --xvfb).
#
#   scripts/screenshots.sh                      everything, into docs/screenshots/
#   scripts/screenshots.sh --themes dark        one theme
#   scripts/screenshots.sh --output /tmp/shots  somewhere else
set -euo pipefail
cd "$(dirname "$0")/.."

python=".venv/bin/python"
[ -x "$python" ] || python="${PYTHON:-python3}"
if ! command -v xvfb-run >/dev/null 2>&1; then
    echo "screenshots: xvfb-run is missing; run \`make screenshots\` (it installs xvfb)" \
         "or: sudo apt-get install xvfb xauth" >&2
    exit 1
fi
# Never the developer's real screen, config or keyring: a private virtual X server,
# and the script itself uses a throw-away config and data directory.
unset WAYLAND_DISPLAY
export SMARTIOT_SECRETS_BACKEND=file  # the demo's signing key stays in the throw-away dir
export QT_QPA_PLATFORM=xcb
exec xvfb-run -a -s "-screen 0 1600x1000x24" "$python" scripts/screenshot_all.py "$@"
