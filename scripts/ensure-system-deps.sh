#!/usr/bin/env bash
# Make sure the programs and libraries this machine needs are installed.
#
#   scripts/ensure-system-deps.sh            what `make test` needs: mosquitto and the
#                                            libraries Qt loads even offscreen
#   scripts/ensure-system-deps.sh --gui      also what the window needs on X11 (`make run`)
#   scripts/ensure-system-deps.sh --xvfb     also a virtual screen (`make screenshots`)
#
# As root with apt-get the missing Debian/Ubuntu packages are installed; otherwise
# the script stops and prints the exact `sudo apt-get install` line. The
# broker-backed tests must never be skipped silently, and a window must never
# abort with Qt's "could not load the Qt platform plugin xcb" core dump.
set -euo pipefail

want_gui=0
want_xvfb=0
for arg in "$@"; do
    case "$arg" in
        --gui) want_gui=1 ;;
        --xvfb) want_gui=1; want_xvfb=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "ensure-system-deps: unknown option $arg (use --gui or --xvfb)" >&2; exit 2 ;;
    esac
done

missing_pkgs=()
# Read once into a variable: `ldconfig -p | grep -q` under pipefail fails at random
# when grep stops early and ldconfig dies of SIGPIPE.
libs="$(ldconfig -p 2>/dev/null || true)"
have_lib() { [[ "$libs" == *"$1 "* ]]; }
need_lib() {  # need_lib LIBRARY.so.N PACKAGE
    have_lib "$1" || missing_pkgs+=("$2")
}

command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing_pkgs+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing_pkgs+=(mosquitto-clients)
# Qt's offscreen platform still loads these shared libraries.
need_lib libEGL.so.1 libegl1
need_lib libxkbcommon.so.0 libxkbcommon0
need_lib libfontconfig.so.1 libfontconfig1
need_lib libdbus-1.so.3 libdbus-1-3
need_lib libGL.so.1 libgl1

if [ "$want_gui" = 1 ]; then
    # What Qt's xcb platform plugin (libqxcb.so, libQt6XcbQpa.so.6) links against,
    # found with `ldd` and `QT_DEBUG_PLUGINS=1 xvfb-run smartiot` on Debian 12.
    need_lib libX11.so.6 libx11-6
    need_lib libX11-xcb.so.1 libx11-xcb1
    need_lib libxcb.so.1 libxcb1
    need_lib libxcb-cursor.so.0 libxcb-cursor0
    need_lib libxcb-glx.so.0 libxcb-glx0
    need_lib libxcb-icccm.so.4 libxcb-icccm4
    need_lib libxcb-image.so.0 libxcb-image0
    need_lib libxcb-keysyms.so.1 libxcb-keysyms1
    need_lib libxcb-randr.so.0 libxcb-randr0
    need_lib libxcb-render-util.so.0 libxcb-render-util0
    need_lib libxcb-render.so.0 libxcb-render0
    need_lib libxcb-shape.so.0 libxcb-shape0
    need_lib libxcb-shm.so.0 libxcb-shm0
    need_lib libxcb-sync.so.1 libxcb-sync1
    need_lib libxcb-util.so.1 libxcb-util1
    need_lib libxcb-xfixes.so.0 libxcb-xfixes0
    need_lib libxcb-xkb.so.1 libxcb-xkb1
    need_lib libxkbcommon-x11.so.0 libxkbcommon-x11-0
    need_lib libGLX.so.0 libglx0
    # Without any font Qt draws empty boxes.
    fonts="$(fc-list 2>/dev/null || true)"
    [ -n "$fonts" ] || missing_pkgs+=(fonts-dejavu-core)
fi
if [ "$want_xvfb" = 1 ]; then
    command -v xvfb-run >/dev/null 2>&1 || missing_pkgs+=(xvfb)
    command -v xauth >/dev/null 2>&1 || missing_pkgs+=(xauth)
fi

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
The test suite runs a real mosquitto broker and real Qt widgets and will not skip them;
the console window needs Qt's X11 libraries.
MSG
exit 1
