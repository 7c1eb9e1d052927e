#!/usr/bin/env bash
# Installs every build and test dependency of Shorthorn with apt-get, and
# s3rver (an S3 server for the backup tests) with npm into a fixed prefix,
# and unpacks prometheus-node-exporter (metrics test) into another.
# Safe to run again: apt-get skips what is already installed, and the package
# lists are refreshed only when a package is missing; npm runs only when the
# pinned s3rver version is not there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git clang-format
  libfuse3-dev fuse3
  liburing-dev
  libboost-program-options1.81-dev libboost-json1.81-dev
  libxxhash-dev liblz4-dev libs3-dev libsodium-dev
  libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev
  libgtest-dev libgmock-dev
  # scripts/fuzz.sh (CTest test `fuzz`): clang with libFuzzer and the sanitizer runtimes.
  clang libclang-rt-14-dev
  python3 dbus e2fsprogs util-linux fio procps psmisc iproute2 kmod
  debhelper dpkg-dev devscripts fakeroot lintian
  # Integration tests and scripts/quickstart.sh: busctl (systemd; it does not
  # need systemd as PID 1), gdbus (prints D-Bus error names), losetup/mount.
  systemd libglib2.0-bin mount
)

# The S3 tests run against s3rver, an npm package (below). Node.js may come
# from elsewhere (NodeSource, say, which bundles npm): add Debian's only for
# what is missing.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

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

# s3rver for the S3 backup store tests (tests/integration/s3rver.sh runs it
# from this prefix). Pinned; 3.7.1 runs on Node.js 18 and 20.
s3rver_version=3.7.1
s3rver_prefix=/opt/shorthorn-test/s3rver
s3rver_package=$s3rver_prefix/node_modules/s3rver/package.json
installed=$(node -p "require('$s3rver_package').version" 2>/dev/null || true)
if [[ $installed != "$s3rver_version" ]]; then
  echo "install-deps: installing s3rver@$s3rver_version into $s3rver_prefix"
  mkdir -p "$s3rver_prefix"
  npm install --prefix "$s3rver_prefix" --no-audit --no-fund --loglevel=error \
    "s3rver@$s3rver_version" >/dev/null
  [[ -x $s3rver_prefix/node_modules/.bin/s3rver ]] || {
    echo "install-deps: s3rver did not install into $s3rver_prefix" >&2
    exit 1
  }
fi

# prometheus-node-exporter's binary for the metrics test (its textfile
# collector parses the file fused writes). Unpacked from the Debian package
# into a fixed prefix rather than installed: installing would start the
# exporter as a system service.
exporter_prefix=/opt/shorthorn-test/node-exporter
if [[ ! -x $exporter_prefix/usr/bin/prometheus-node-exporter ]]; then
  echo "install-deps: unpacking prometheus-node-exporter into $exporter_prefix"
  tmp=$(mktemp -d)
  chmod 0755 "$tmp"  # apt-get download runs as _apt
  (cd "$tmp" && apt-get download -qq prometheus-node-exporter) || {
    apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus-node-exporter)
  }
  mkdir -p "$exporter_prefix"
  dpkg-deb -x "$tmp"/prometheus-node-exporter_*.deb "$exporter_prefix"
  rm -rf "$tmp"
  [[ -x $exporter_prefix/usr/bin/prometheus-node-exporter ]] || {
    echo "install-deps: prometheus-node-exporter did not unpack into $exporter_prefix" >&2
    exit 1
  }
fi
