#!/bin/sh
# Make sure the PostgreSQL server binaries (initdb, pg_ctl) are installed: the test
# suite starts a throwaway PostgreSQL server of its own (tests/postgres.py) and runs
# the store tests on it as well as on SQLite. Installs Debian/Ubuntu's `postgresql`
# package when they are missing and we are root or may use sudo; otherwise says how.
# Nothing is configured or started here. SLAENGINE_SKIP_POSTGRES=1 skips the check.
set -eu

bindir() {
    for dir in "${SLAENGINE_PG_BIN:-}" "$(pg_config --bindir 2>/dev/null || true)" \
        $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -rn) /usr/local/pgsql/bin; do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

[ "${SLAENGINE_SKIP_POSTGRES:-}" = 1 ] && exit 0
if dir=$(bindir); then
    echo "PostgreSQL server binaries: $dir"
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    as_root="none"
fi
if [ "$as_root" = none ] || ! command -v apt-get >/dev/null 2>&1; then
    cat >&2 <<MSG
PostgreSQL server binaries (initdb, pg_ctl) are missing and cannot be installed here
(this needs apt-get and root or password-less sudo). Install PostgreSQL yourself, e.g.
    sudo apt-get install postgresql        (Debian/Ubuntu)
    sudo dnf install postgresql-server     (Fedora/RHEL)
    brew install postgresql                (macOS)
and, if its bin directory is not found on its own, set SLAENGINE_PG_BIN to it. The
PostgreSQL tests fail until then; SLAENGINE_SKIP_POSTGRES=1 skips them knowingly.
MSG
    exit 1
fi

echo "installing PostgreSQL (apt-get install postgresql) for the test suite's own server"
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -qq
$as_root apt-get install -y -qq --no-install-recommends postgresql >/dev/null
dir=$(bindir) || { echo "postgresql installed but initdb/pg_ctl not found" >&2; exit 1; }
echo "PostgreSQL server binaries: $dir"
