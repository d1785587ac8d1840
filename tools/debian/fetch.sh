#!/usr/bin/env bash
# Real third-party clients from Debian's packages, for tests, without installing anything system-wide:
# the .debs (and the named libraries they need) are downloaded with `apt-get download` and unpacked
# under .cache/debian/<name>/root. Prints the path of the requested binary on stdout.
#
#   tools/debian/fetch.sh kcat        -> .cache/debian/kcat/root/usr/bin/kcat
#   tools/debian/fetch.sh prometheus-alertmanager -> .cache/debian/prometheus-alertmanager/root/usr/bin/prometheus-alertmanager
#   tools/debian/fetch.sh amtool      -> the same package's .../usr/bin/amtool
#   tools/debian/fetch.sh chromium    -> .cache/debian/chromium/root/usr/lib/chromium/chromium
#
# chromium needs many shared libraries; the ones this machine lacks are exactly what
# `apt-get install --simulate --no-install-recommends chromium` would install, so that list is
# downloaded (it differs between machines). Run it with LD_LIBRARY_PATH=<root>/usr/lib/x86_64-linux-gnu
# (tests/whatif/chromium.py does), headless and without a sandbox.
# Run the binary with LD_LIBRARY_PATH=<root>/usr/lib/x86_64-linux-gnu (tests/tools.py does).
# Debian's Alertmanager reads its default templates from /usr/share/prometheus/alertmanager and exits
# without them: run it in a private mount namespace with <root>/usr/share on /usr/share
# (`unshare --mount`, as tests/api/test_alertmanager.py does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

name=${1:?usage: fetch.sh kcat|prometheus-alertmanager|amtool|chromium}
case $name in
  kcat) packages=(kcat librdkafka1 libyajl2); binary=usr/bin/kcat ;;
  # Go binaries needing only libc6 (Debian 12: Alertmanager 0.25); amtool ships in the same package.
  prometheus-alertmanager|amtool) packages=(prometheus-alertmanager); binary=usr/bin/$name; name=prometheus-alertmanager ;;
  chromium)
    mapfile -t packages < <(apt-get install --simulate --no-install-recommends chromium 2>/dev/null | awk '/^Inst /{print $2}')
    [[ ${#packages[@]} -gt 0 ]] || packages=(chromium chromium-common)  # everything else already installed
    binary=usr/lib/chromium/chromium ;;
  *) echo "fetch.sh: unknown tool $name" >&2; exit 2 ;;
esac

dir=.cache/debian/$name
root=$dir/root
# Two test processes may ask for the same package at once (make test runs the live tests on two):
# one fetches, the other waits for it and then finds the binary.
mkdir -p .cache/debian
exec 9>".cache/debian/$name.lock"
flock 9
if [[ ! -x $root/$binary ]]; then
  rm -rf "$dir" && mkdir -p "$dir/debs"
  (cd "$dir/debs" && apt-get download -q "${packages[@]}" >&2) || {
    echo "fetch.sh: apt-get download ${packages[*]} failed (is Debian's package index reachable? try apt-get update)" >&2
    exit 1
  }
  for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
fi
echo "$PWD/$root/$binary"
