#!/usr/bin/env bash
# Install cp-pi as a systemd service on Raspberry Pi OS. Run as root from a cp-pi checkout:
#
#   sudo systemd/install.sh                   # the package from this checkout
#   sudo systemd/install.sh --source SOURCE   # a wheel, an sdist, a source tree or a pip
#                                             # requirement such as cp-pi==0.1.0
#
# Running it again changes only what is missing: the system user, the virtualenv
# (/opt/cp-pi/venv, with Debian's python3-lgpio visible), the package, the configuration
# /etc/cp-pi/cp-pi.toml (created from cp-pi.example.toml if absent, never overwritten; always
# root:cp-pi 0640), the unit in /etc/systemd/system, and the service enabled and started.
# pip leaves an installed wheel or requirement of the same version alone, but rebuilds and
# reinstalls a source tree every time, as it cannot tell whether the tree changed.
#
# DESTDIR=/some/dir puts every file under that directory and skips what needs the real system
# (apt, users, ownership, systemctl): a trial run into a scratch root. pip takes its usual
# PIP_* variables, so PIP_NO_INDEX=1 PIP_NO_DEPS=1 installs a local wheel without a network.
set -euo pipefail
umask 022 # the service user must be able to read the virtualenv

here=$(cd "$(dirname "$0")" && pwd)
package=$(dirname "$here")
while [ $# -gt 0 ]; do
    case $1 in
    --source)
        [ $# -ge 2 ] || { echo "install.sh: --source needs a path or a requirement" >&2; exit 2; }
        package=$2
        # pip would read a bare directory name as a package name: make it a path.
        [ -e "$package" ] && package=$(realpath -- "$package")
        shift 2
        ;;
    -h | --help)
        sed -n '2,18p' "$0"
        exit 0
        ;;
    *)
        echo "install.sh: unknown argument: $1 (see --help)" >&2
        exit 2
        ;;
    esac
done

root=${DESTDIR:-}
real_system() { [ -z "$root" ]; }
say() { echo "install.sh: $*"; }

if real_system && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo $0)" >&2
    exit 1
fi

# -- system packages and the service user --------------------------------------------------------

if real_system; then
    missing=()
    for debian_package in python3-venv python3-lgpio; do
        dpkg-query -W -f='${Status}' "$debian_package" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$debian_package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        apt-get install -y "${missing[@]}"
    fi
    # Raspberry Pi OS gives /dev/gpiochip* to the gpio group; the unit asks for it.
    getent group gpio >/dev/null || groupadd --system gpio
    if ! id -u cp-pi >/dev/null 2>&1; then
        say "creating the system user cp-pi"
        useradd --system --user-group --no-create-home --shell /usr/sbin/nologin cp-pi
    fi
    id -nG cp-pi | tr ' ' '\n' | grep -qx gpio || usermod -a -G gpio cp-pi
fi

# -- the virtualenv and the package ----------------------------------------------------------------

venv=$root/opt/cp-pi/venv
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    install -d -m 0755 "$root/opt/cp-pi"
    # --system-site-packages: lgpio comes from Debian's python3-lgpio, built for this kernel.
    python3 -m venv --system-site-packages "$venv"
fi
# pip leaves an installed package of the same version alone, so a second run changes nothing.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package"

# -- the configuration ---------------------------------------------------------------------------

config_dir=$root/etc/cp-pi
config=$config_dir/cp-pi.toml
install -d -m 0755 "$config_dir"
if [ ! -e "$config" ]; then
    say "creating $config from cp-pi.example.toml"
    draft=$(mktemp "$config_dir/.cp-pi.toml.XXXXXX")
    trap 'rm -f "$draft"' EXIT
    # cp-pi started by hand (check-wiring) reads this file but not the unit's Environment=, so
    # the file names the service's data directory (where the run lock lives) and pin factory.
    by_installer="  # set by install.sh: as the service has it"
    sed -e 's|^# \(data_dir = "/var/lib/cp-pi"\)$|\1'"$by_installer"'|' \
        -e 's|^# \(pin_factory = "lgpio"\)$|\1'"$by_installer"'|' \
        "$here/../cp-pi.example.toml" >"$draft"
    for setting in 'data_dir = "/var/lib/cp-pi"' 'pin_factory = "lgpio"'; do
        grep -qxF "$setting$by_installer" "$draft" || {
            echo "install.sh: cp-pi.example.toml has no '# $setting' line to enable" >&2
            exit 1
        }
    done
    chmod 0640 "$draft"
    mv "$draft" "$config"
    trap - EXIT
fi
# Readable by the service's group only: it may hold the central system's credentials.
real_system && chown root:cp-pi "$config"
chmod 0640 "$config"

# -- the unit ------------------------------------------------------------------------------------

unit_dir=$root/etc/systemd/system
install -d -m 0755 "$unit_dir"
if ! cmp -s "$here/cp-pi.service" "$unit_dir/cp-pi.service"; then
    say "installing $unit_dir/cp-pi.service"
    install -m 0644 "$here/cp-pi.service" "$unit_dir/cp-pi.service"
fi
chmod 0644 "$unit_dir/cp-pi.service"

if real_system; then
    systemctl daemon-reload
    systemctl enable --now cp-pi.service
    say "done: systemctl status cp-pi; after an upgrade: systemctl restart cp-pi"
else
    say "done in $root (skipped: apt, users, ownership, systemctl)"
fi
