# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: cd to the repo root, make .venv and install the
# project into it. Works on a fresh Debian machine; as root (CI) or with sudo.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="$REPO_ROOT/.venv"
PYTHON="${CHATOPS_PYTHON:-python3}"
STAMP="$VENV/.chatops-install-stamp"

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

_APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
    if [ "$_APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        _APT_UPDATED=1
    fi
    log "apt-get install $*"
    # Keep the packages' own services from starting: the tests start throwaway servers.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        made_policy=1
    fi
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null || rc=$?
    if [ "$made_policy" -eq 1 ]; then
        as_root rm -f /usr/sbin/policy-rc.d
    fi
    [ "$rc" -eq 0 ] || die "apt-get install $* failed (exit $rc)"
}

have_postgres() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && return 0
    done
    command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1
}

ensure_servers() {
    local pkgs=()
    have_postgres || pkgs+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || pkgs+=(redis-server)
    # Debian's prometheus package ships promtool too; the tests run both and a throwaway server.
    { [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || pkgs+=(prometheus)
    [ -x /usr/bin/prometheus-alertmanager ] || pkgs+=(prometheus-alertmanager)
    [ -x /usr/bin/chromium ] || pkgs+=(chromium) # the status page's browser tests (headless)
    # PgBouncer in transaction mode in front of the throwaway PostgreSQL (tests/pgbouncer_server.py).
    [ -x /usr/sbin/pgbouncer ] || pkgs+=(pgbouncer)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        apt_install "${pkgs[@]}"
    fi
}

_venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

_make_venv() {
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" >/dev/null 2>&1 && _venv_ok
}

ensure_venv() {
    command -v "$PYTHON" >/dev/null 2>&1 || apt_install python3
    if ! _venv_ok; then
        log "creating .venv with $("$PYTHON" --version 2>&1)"
        if ! _make_venv; then
            # Debian's python3 needs python3-venv for ensurepip.
            apt_install python3-venv
            _make_venv || die "could not create $VENV with $PYTHON"
        fi
    fi
    local want have=""
    want="$(sha256sum pyproject.toml | cut -d" " -f1)"
    [ -f "$STAMP" ] && have="$(cat "$STAMP")"
    if [ "$want" != "$have" ]; then
        log "pip install -e '.[dev,console]'"
        rm -f "$STAMP"
        # The filter drops pip's warnings about configured local indexes that do not exist.
        { PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
            "$VENV/bin/python" -m pip install -q -e '.[dev,console]' 2>&1; } |
            { grep -v "is ignored: it is neither a file nor a directory" || true; }
        printf '%s\n' "$want" >"$STAMP"
    else
        log ".venv up to date with pyproject.toml"
    fi
}
