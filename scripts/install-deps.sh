#!/usr/bin/env bash
# Installs every build and test dependency of Shorthorn with apt-get.
# Safe to run again: apt-get skips what is already installed, and the package
# lists are refreshed only when a package is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git clang-format
  libfuse3-dev fuse3
  liburing-dev
  libboost-program-options1.81-dev libboost-json1.81-dev
  libxxhash-dev liblz4-dev libs3-dev
  libsdbus-c++-dev libsdbus-c++-bin
  libgtest-dev libgmock-dev
  python3 dbus e2fsprogs util-linux fio procps psmisc iproute2 kmod
  debhelper dpkg-dev devscripts fakeroot lintian
  # Integration tests and scripts/quickstart.sh: busctl (systemd; it does not
  # need systemd as PID 1), gdbus (prints D-Bus error names), losetup/mount.
  systemd libglib2.0-bin mount
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#packages[@]} packages present"
fi
