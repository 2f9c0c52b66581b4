#!/usr/bin/env bash
# devservices.sh: a local PostgreSQL cluster and MinIO server for development
# and tests, with no Docker and no manual step.
#
#   scripts/devservices.sh up      start both (initialising them on first use)
#   scripts/devservices.sh down    stop both
#   scripts/devservices.sh status  say what runs
#
# State lives in .dev/ (git-ignored): the PostgreSQL cluster, MinIO data, the
# MinIO binary and generated credentials. `up` writes .dev/env, a file of
# `export` lines that `make run` and `make test` source.
#
# PostgreSQL refuses to run as root; when this script runs as root it runs the
# cluster as the `postgres` user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV_DIR=${SLIPWAY_DEV_DIR:-$ROOT/.dev}
PG_PORT=${SLIPWAY_DEV_PG_PORT:-54329}
MINIO_PORT=${SLIPWAY_DEV_MINIO_PORT:-9199}
MINIO_CONSOLE_PORT=${SLIPWAY_DEV_MINIO_CONSOLE_PORT:-9198}
# MinIO has no semver tags; this pins one commit of github.com/minio/minio.
MINIO_VERSION=${SLIPWAY_DEV_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}

log() { printf 'devservices: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

mkdir -p "$DEV_DIR"
chmod 755 "$DEV_DIR"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bindir() {
  if [ -n "${SLIPWAY_DEV_PG_BINDIR:-}" ]; then echo "$SLIPWAY_DEV_PG_BINDIR"; return; fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  die "no PostgreSQL server binaries found (install Debian's postgresql package, or set SLIPWAY_DEV_PG_BINDIR)"
}

# pg_state_dir picks where the cluster lives: .dev/pg, unless the postgres
# user cannot reach it (a checkout under /root, say), then a private folder
# under /var/tmp named after the checkout.
pg_state_dir() {
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$DEV_DIR"; then
    echo "$DEV_DIR/pg"
  else
    echo "/var/tmp/slipway-dev-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)/pg"
  fi
}

secret() { openssl rand -hex 24; }

secrets_file="$DEV_DIR/secrets.env"
ensure_secrets() {
  if [ ! -f "$secrets_file" ]; then
    umask 077
    {
      echo "DEV_PG_PASSWORD=$(secret)"
      echo "DEV_MINIO_USER=slipway-$(openssl rand -hex 4)"
      echo "DEV_MINIO_PASSWORD=$(secret)"
      echo "DEV_BOOTSTRAP_TOKEN=slw_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"
      echo "DEV_ADMIN_PASSWORD=$(openssl rand -base64 12 | tr '+/' 'xy' | tr -d '=\n')"
    } > "$secrets_file"
    umask 022
  fi
  # shellcheck disable=SC1090
  . "$secrets_file"
  # added by later versions of this script: appended to older files
  if [ -z "${DEV_WEBHOOK_KEY:-}" ]; then
    DEV_WEBHOOK_KEY=$(openssl rand -base64 32)
    echo "DEV_WEBHOOK_KEY=$DEV_WEBHOOK_KEY" >> "$secrets_file"
  fi
}

pg_up() {
  local bindir pgdir data
  bindir=$(pg_bindir)
  pgdir=$(pg_state_dir)
  data="$pgdir/data"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising PostgreSQL cluster in $data"
    mkdir -p "$pgdir"
    local pwfile="$pgdir/.pwfile"
    printf '%s\n' "$DEV_PG_PASSWORD" > "$pwfile"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$pgdir"
    chmod 700 "$pgdir"
    as_pg "$bindir/initdb" -D "$data" -U slipway --pwfile="$pwfile" -A scram-sha-256 -E UTF8 --no-locale >"$pgdir/initdb.log" 2>&1 \
      || { cat "$pgdir/initdb.log" >&2; die "initdb failed"; }
    rm -f "$pwfile"
    as_pg tee -a "$data/postgresql.conf" >/dev/null <<CONF
# written by scripts/devservices.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 300
synchronous_commit = off
CONF
  fi
  if as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$bindir/pg_ctl" -D "$data" -l "$pgdir/postgres.log" -o "-p $PG_PORT" -w -t 60 start >/dev/null \
      || { tail -n 20 "$pgdir/postgres.log" >&2; die "PostgreSQL did not start"; }
  fi
  PGPASSWORD=$DEV_PG_PASSWORD "$bindir/psql" -h 127.0.0.1 -p "$PG_PORT" -U slipway -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'slipway'" | grep -q 1 \
    || PGPASSWORD=$DEV_PG_PASSWORD "$bindir/psql" -h 127.0.0.1 -p "$PG_PORT" -U slipway -d postgres -qc "CREATE DATABASE slipway" >/dev/null
}

pg_down() {
  local bindir data
  bindir=$(pg_bindir)
  data="$(pg_state_dir)/data"
  if [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null && log "PostgreSQL stopped"
  fi
}

minio_bin="$DEV_DIR/bin/minio"
minio_live() { curl -fsS -o /dev/null "http://127.0.0.1:$MINIO_PORT/minio/health/live" 2>/dev/null; }

minio_up() {
  if [ ! -x "$minio_bin" ]; then
    log "installing MinIO $MINIO_VERSION with go install (the first time takes a few minutes)"
    GOBIN="$DEV_DIR/bin" GOFLAGS= go install "github.com/minio/minio@$MINIO_VERSION"
  fi
  if minio_live; then
    log "MinIO already running on 127.0.0.1:$MINIO_PORT"
    return
  fi
  log "starting MinIO on 127.0.0.1:$MINIO_PORT"
  mkdir -p "$DEV_DIR/minio"
  # a session of its own: Ctrl-C on `make run` stops Slipway, not MinIO
  # (make services-down does)
  detach=()
  command -v setsid >/dev/null 2>&1 && detach=(setsid)
  MINIO_ROOT_USER=$DEV_MINIO_USER MINIO_ROOT_PASSWORD=$DEV_MINIO_PASSWORD MINIO_BROWSER=off \
    "${detach[@]}" nohup "$minio_bin" server "$DEV_DIR/minio" --quiet \
      --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" \
      >"$DEV_DIR/minio.log" 2>&1 &
  echo $! > "$DEV_DIR/minio.pid"
  for _ in $(seq 1 120); do
    minio_live && return
    sleep 0.5
  done
  tail -n 20 "$DEV_DIR/minio.log" >&2
  die "MinIO did not start"
}

minio_down() {
  if [ -f "$DEV_DIR/minio.pid" ]; then
    kill "$(cat "$DEV_DIR/minio.pid")" 2>/dev/null && log "MinIO stopped" || true
    rm -f "$DEV_DIR/minio.pid"
  fi
}

write_env() {
  local pgurl="postgres://slipway:$DEV_PG_PASSWORD@127.0.0.1:$PG_PORT"
  umask 077
  cat > "$DEV_DIR/env" <<ENV
# generated by scripts/devservices.sh; sourced by make run and make test
export SLIPWAY_DATABASE_URL='$pgurl/slipway?sslmode=disable'
export SLIPWAY_S3_ENDPOINT='http://127.0.0.1:$MINIO_PORT'
export SLIPWAY_S3_BUCKET='slipway'
export SLIPWAY_S3_ACCESS_KEY='$DEV_MINIO_USER'
export SLIPWAY_S3_SECRET_KEY='$DEV_MINIO_PASSWORD'
export SLIPWAY_BOOTSTRAP_TOKEN='$DEV_BOOTSTRAP_TOKEN'
export SLIPWAY_BOOTSTRAP_PASSWORD='$DEV_ADMIN_PASSWORD'
export SLIPWAY_WEBHOOK_KEY='$DEV_WEBHOOK_KEY'
# a receiver on this machine (examples/serving-receiver) is allowed
export SLIPWAY_WEBHOOK_ALLOW_PRIVATE=true
export SLIPWAY_TEST_DATABASE_URL='$pgurl/postgres?sslmode=disable'
export SLIPWAY_TEST_S3_ENDPOINT='http://127.0.0.1:$MINIO_PORT'
export SLIPWAY_TEST_S3_ACCESS_KEY='$DEV_MINIO_USER'
export SLIPWAY_TEST_S3_SECRET_KEY='$DEV_MINIO_PASSWORD'
export SLIPWAY_DEV_PG_BINDIR='$(pg_bindir)'
export SLIPWAY_DEV_PG_DATA='$(pg_state_dir)/data'
ENV
  umask 022
}

case "${1:-}" in
  up)
    ensure_secrets
    pg_up
    minio_up
    write_env
    log "ready: PostgreSQL 127.0.0.1:$PG_PORT, MinIO http://127.0.0.1:$MINIO_PORT (settings in $DEV_DIR/env)"
    ;;
  down)
    pg_down
    minio_down
    ;;
  status)
    ensure_secrets
    if as_pg "$(pg_bindir)/pg_ctl" -D "$(pg_state_dir)/data" status >/dev/null 2>&1; then echo "postgres: running on 127.0.0.1:$PG_PORT"; else echo "postgres: stopped"; fi
    if minio_live; then echo "minio: running on 127.0.0.1:$MINIO_PORT"; else echo "minio: stopped"; fi
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
