#!/usr/bin/env bash
# `npm run package`: Debian packages of logship, built with dpkg-deb (no debhelper needed):
#   dist/logship_VERSION_amd64.deb  from dist/logship (built here when missing or stale)
#   dist/logship_VERSION_arm64.deb  from dist/logship-linux-arm64 (Bun cross-compiles it; the
#                                   arm64 runtime comes from the npm registry, then Bun's cache)
# Each holds /usr/bin/logship, the systemd unit (/lib/systemd/system/logship.service), the
# config /etc/logship/logship.yaml (a conffile), the docs, and maintainer scripts: postinst
# creates the user and the state directory, prerm stops the service, postrm purges.
#   ARCHES="amd64" bash scripts/package.sh     only some architectures
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version' 2>/dev/null || sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' package.json | head -n 1)
arches=${ARCHES:-"amd64 arm64"}
maintainer=${DEB_MAINTAINER:-"logship maintainers <logship@example.org>"}
bun=node_modules/.bin/bun

# The newest source file, to rebuild a binary older than it.
newest=$(find lib main.ts package.json scripts/build.ts -name '*.ts' -o -name package.json | xargs stat -c %Y | sort -n | tail -n 1)

binary_for() {
  case "$1" in
    amd64) echo dist/logship ;;
    arm64) echo dist/logship-linux-arm64 ;;
    *) echo "package: unknown architecture $1" >&2; exit 2 ;;
  esac
}

for arch in $arches; do
  bin=$(binary_for "$arch")
  if [ ! -x "$bin" ] || [ "$(stat -c %Y "$bin")" -lt "$newest" ]; then
    case "$arch" in
      amd64) "$bun" scripts/build.ts dist/logship >&2 ;;
      arm64) "$bun" scripts/build.ts dist/logship-linux-arm64 bun-linux-arm64 >&2 ;;
    esac
  fi

  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/logship" "$root/usr/share/doc/logship"
  install -m 0755 "$bin" "$root/usr/bin/logship"
  install -m 0644 packaging/logship.service "$root/lib/systemd/system/logship.service"
  install -m 0644 packaging/logship.yaml "$root/etc/logship/logship.yaml"
  install -m 0644 packaging/deb/copyright "$root/usr/share/doc/logship/copyright"
  install -m 0644 README.md conf.example.yaml "$root/usr/share/doc/logship/"
  printf 'logship (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
    "$version" "$version" "$maintainer" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" \
    | gzip -9n > "$root/usr/share/doc/logship/changelog.gz"
  chmod 0644 "$root/usr/share/doc/logship/changelog.gz"
  install -d -m 0755 "$root/usr/share/lintian/overrides"
  install -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/logship"
  install -m 0644 packaging/deb/conffiles "$root/DEBIAN/conffiles"
  install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s|@MAINTAINER@|$maintainer|" packaging/deb/control > "$root/DEBIAN/control"
  out="dist/logship_${version}_${arch}.deb"
  dpkg-deb --root-owner-group -Zgzip --build "$root" "$out" >&2
  rm -rf "$root"
  trap - EXIT
  echo "$out"
done
