#!/usr/bin/env bash
# `make install` / `make uninstall`: Peon as systemd services on this machine.
#   install:   release binaries, plans, the nginx template and scripts into $PREFIX/lib/peon; the
#              `peon` system user; $SYSCONFDIR/peon/peon.env (0600, created once, never overwritten);
#              the units peon-api, peon-scheduler, peon-nginx and peon.target into $UNITDIR; the
#              data dir $STATEDIR.
#   uninstall: removes all of that but the data dir, the env file and the user.
# PREFIX (/usr/local), SYSCONFDIR (/etc), UNITDIR (/etc/systemd/system) and STATEDIR
# (/var/lib/peon) move it (the tests install into a temp dir); DESTDIR stages a package (no user,
# no ownership). PEON_BIN installs binaries from elsewhere instead of building a release.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local} SYSCONFDIR=${SYSCONFDIR:-/etc} UNITDIR=${UNITDIR:-/etc/systemd/system}
STATEDIR=${STATEDIR:-/var/lib/peon} DESTDIR=${DESTDIR:-}
lib=$PREFIX/lib/peon
units=(peon-api.service peon-scheduler.service peon-nginx.service peon-acme.service peon-acme.timer peon.target)
systemd_runs() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

if [ "${1:-install}" = uninstall ]; then
  if systemd_runs; then systemctl disable --now peon.target "${units[@]}" >/dev/null 2>&1 || true; fi
  for unit in "${units[@]}"; do rm -f "$DESTDIR$UNITDIR/$unit"; done
  rm -rf "$DESTDIR$lib" "$DESTDIR$PREFIX/bin/peon"
  if systemd_runs; then systemctl daemon-reload; fi
  echo "Peon uninstalled; kept the data in $STATEDIR and the configuration $SYSCONFDIR/peon/peon.env" >&2
  exit 0
fi

[ "$(id -u)" -eq 0 ] || [ -n "$DESTDIR" ] || { echo "make install needs root (or DESTDIR)" >&2; exit 1; }
bin=${PEON_BIN:-}
if [ -z "$bin" ]; then
  "$root/scripts/deps.sh" run
  (cd "$root" && swift build -c release --product peon-api && swift build -c release --product peon-scheduler \
    && swift build -c release --product peon)
  bin=$root/.build/release
fi

install -d -m 0755 "$DESTDIR$lib/bin" "$DESTDIR$lib/scripts" "$DESTDIR$lib/nginx" "$DESTDIR$lib/docs" "$DESTDIR$PREFIX/bin" \
  "$DESTDIR$UNITDIR" "$DESTDIR$SYSCONFDIR/peon"
for b in peon-api peon-scheduler peon; do install -m 0755 "$bin/$b" "$DESTDIR$lib/bin/$b"; done
install -m 0755 "$root/scripts/env.sh" "$root/scripts/render-nginx.sh" "$root/scripts/acme.sh" "$DESTDIR$lib/scripts/"
install -m 0644 "$root/nginx/peon.conf.template" "$root/nginx/api.conf.template" "$DESTDIR$lib/nginx/"
install -m 0644 "$root/docs/openapi.json" "$DESTDIR$lib/docs/"
install -m 0644 "$root/README.md" "$DESTDIR$lib/"
rm -rf "$DESTDIR$lib/web"
cp -R "$root/web" "$DESTDIR$lib/web"
chmod -R u=rwX,go=rX "$DESTDIR$lib/web"
rm -rf "$DESTDIR$lib/plans"
cp -R "$root/plans" "$DESTDIR$lib/plans"
chmod -R u=rwX,go=rX "$DESTDIR$lib/plans"

render() {
  sed -e "s|@LIBDIR@|$lib|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" -e "s|@STATEDIR@|$STATEDIR|g" "$1"
}
for unit in "${units[@]}"; do
  render "$root/systemd/$unit" > "$DESTDIR$UNITDIR/$unit"
  chmod 0644 "$DESTDIR$UNITDIR/$unit"
done
# The admin CLI, pointed at the installed data dir.
cat > "$DESTDIR$PREFIX/bin/peon" <<WRAPPER
#!/bin/sh
# Peon's admin CLI for the systemd install (\`peon key create --scope read\`).
PEON_DATA_DIR=\${PEON_DATA_DIR:-$STATEDIR} exec $lib/bin/peon "\$@"
WRAPPER
chmod 0755 "$DESTDIR$PREFIX/bin/peon"

env_file=$DESTDIR$SYSCONFDIR/peon/peon.env
if [ ! -e "$env_file" ]; then
  (umask 077 && render "$root/systemd/peon.env" > "$env_file")
fi
chmod 0600 "$env_file"

if [ -z "$DESTDIR" ]; then
  id -u peon >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin peon
  install -d -m 0711 -o peon -g peon "$STATEDIR"
fi
if systemd_runs; then systemctl daemon-reload; fi
echo "Peon installed in $lib; configure $SYSCONFDIR/peon/peon.env, then: systemctl enable --now peon.target" >&2
