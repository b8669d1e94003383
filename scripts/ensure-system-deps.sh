#!/usr/bin/env bash
# Make sure the programs and libraries the test suite needs are on this machine.
# The broker-backed tests must never be skipped silently: if mosquitto is
# missing we install it (as root, through apt-get) or stop with a clear message.
set -euo pipefail

missing_pkgs=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing_pkgs+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing_pkgs+=(mosquitto-clients)
# Qt's offscreen platform still loads these shared libraries.
for lib in libEGL.so.1 libxkbcommon.so.0 libfontconfig.so.1 libdbus-1.so.3 libGL.so.1; do
    if ! ldconfig -p 2>/dev/null | grep -q "$lib"; then
        case "$lib" in
            libEGL.so.1) missing_pkgs+=(libegl1) ;;
            libxkbcommon.so.0) missing_pkgs+=(libxkbcommon0) ;;
            libfontconfig.so.1) missing_pkgs+=(libfontconfig1) ;;
            libdbus-1.so.3) missing_pkgs+=(libdbus-1-3) ;;
            libGL.so.1) missing_pkgs+=(libgl1) ;;
        esac
    fi
done

if [ ${#missing_pkgs[@]} -eq 0 ]; then
    exit 0
fi

echo "system-deps: missing ${missing_pkgs[*]}"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}"
    # The Debian package starts a system broker; our tests start their own on free ports.
    exit 0
fi
cat >&2 <<MSG
system-deps: cannot install ${missing_pkgs[*]} (not root, or no apt-get).
Install them with your package manager, e.g.:
    sudo apt-get install ${missing_pkgs[*]}
The test suite runs a real mosquitto broker and real Qt widgets and will not skip them.
MSG
exit 1
