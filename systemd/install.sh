#!/usr/bin/env bash
# Install cp-pi as a systemd service on Raspberry Pi OS. Run as root from a cp-pi checkout:
#
#   sudo systemd/install.sh                   # the package from this checkout
#   sudo systemd/install.sh --source SOURCE   # a wheel, an sdist, a source tree or a pip
#                                             # requirement such as cp-pi==0.1.0
#
# Running it again changes only what is missing: the system user, the side-by-side layout
# that UpdateFirmware installs new versions into (/opt/cp-pi/versions/<version>, a virtualenv
# each with Debian's python3-lgpio visible; /opt/cp-pi/current, the link to the one that runs;
# /opt/cp-pi/launch, the start-up check that rolls a failed update back), the package, the
# command /usr/local/bin/cp-pi (a link to the launcher), the configuration /etc/cp-pi/cp-pi.toml
# (created from cp-pi.example.toml if absent, never overwritten; always root:cp-pi 0640), the
# unit in /etc/systemd/system, and the service enabled. The service is started only once
# `cp-pi check-config`, run as the service user on the service's file and environment, accepts
# the configuration (a new one names no central system yet); until then the script says what
# to edit, and running it again after the edit starts the service.
# pip leaves an installed wheel or requirement of the same version alone, but rebuilds and
# reinstalls a source tree every time, as it cannot tell whether the tree changed.
#
# DESTDIR=/some/dir puts every file under that directory and skips what needs the real system
# (apt, users, ownership, systemctl: each systemctl command is printed instead): a trial run
# into a scratch root. pip takes its usual PIP_* variables, so PIP_NO_INDEX=1 PIP_NO_DEPS=1
# installs a local wheel without a network.
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
        sed -n '2,24p' "$0"
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
# A command of the real system, or in a trial run the line saying it was skipped.
on_system() {
    if real_system; then "$@"; else say "skipped: $*"; fi
}

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

# -- the side-by-side layout and the package ----------------------------------------------------

home=/opt/cp-pi
versions=$root$home/versions
install -d -m 0755 "$root$home"
install -d -m 0755 "$versions"
if [ -L "$root$home/current" ]; then
    # An upgrade by this script goes into the version that runs; UpdateFirmware installs beside.
    venv=$versions/$(basename "$(readlink "$root$home/current")")
else
    venv=$versions/.staging
    if [ ! -x "$venv/bin/python" ]; then
        say "creating $venv"
        # --system-site-packages: lgpio comes from Debian's python3-lgpio, built for this kernel.
        python3 -m venv --system-site-packages "$venv"
    fi
fi
# pip leaves an installed package of the same version alone, so a second run changes nothing.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package"
if [ "$venv" = "$versions/.staging" ]; then
    # Named after the version it holds; the service runs `python -m cp_pi`, never a script
    # whose first line would still name the staging path.
    version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("cp-pi"))')
    say "installing cp-pi $version as $home/versions/$version"
    rm -rf "${versions:?}/$version"
    mv "$venv" "$versions/$version"
    venv=$versions/$version
    ln -sfn "versions/$version" "$root$home/.current.new"
    mv -T "$root$home/.current.new" "$root$home/current"
fi
# The launcher belongs to no version (an update cannot break it): the one shipped in the package.
launcher=$("$venv/bin/python" -c 'import cp_pi.updates.launcher as m; print(m.__file__)')
if ! cmp -s "$launcher" "$root$home/launch"; then
    say "installing $home/launch"
    install -m 0755 "$launcher" "$root$home/launch"
fi
# UpdateFirmware writes new versions and switches the link as the service user: the layout is
# the service's (and ReadWritePaths= in the unit lets it write there).
real_system && chown cp-pi:cp-pi "$root$home" "$versions"

# `cp-pi` on the PATH, so that `sudo cp-pi check-config` and `sudo cp-pi check-wiring` work.
command_link=$root/usr/local/bin/cp-pi
install -d -m 0755 "$root/usr/local/bin"
if [ -e "$command_link" ] && [ ! -L "$command_link" ]; then
    say "warning: $command_link is not a link to $home/launch: left as it is"
elif [ "$(readlink "$command_link" || true)" != "$home/launch" ]; then
    say "linking $command_link to $home/launch"
    ln -sfn "$home/launch" "$command_link"
fi

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

on_system systemctl daemon-reload
on_system systemctl enable cp-pi.service

# -- start it only if it can run -----------------------------------------------------------------

# As the service would read it: its user, its file, and the unit's Environment= (%S is
# /var/lib), nothing of this shell's environment.
mapfile -t service_environment < <(
    sed -n 's|^Environment=||p' "$here/cp-pi.service" | sed 's|%S|/var/lib|g'
)
check=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${service_environment[@]}"
    "$venv/bin/python" -m cp_pi check-config --config "$config")
real_system && check=(runuser -u cp-pi -- "${check[@]}")
status=0
problems=$(cd / && "${check[@]}" 2>&1 >/dev/null) || status=$?
case $status in
0)
    on_system systemctl start cp-pi.service
    real_system && say "done: cp-pi runs (systemctl status cp-pi; journalctl -u cp-pi -f);" \
        "after a change or an upgrade: sudo systemctl restart cp-pi"
    ;;
2)
    say "installed and enabled, not started: the configuration cannot run yet:"
    while IFS= read -r line; do echo "  $line"; done <<<"$problems"
    say "next: edit /etc/cp-pi/cp-pi.toml, then \`sudo systemctl restart cp-pi\`"
    ;;
*)
    echo "install.sh: cp-pi check-config failed (exit status $status):" >&2
    printf '%s\n' "$problems" >&2
    exit 1
    ;;
esac
real_system || say "trial run done in $root (skipped: apt, users, ownership, systemctl)"
