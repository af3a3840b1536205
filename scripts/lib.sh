# Shared helpers for scripts/install (called by scripts/run, scripts/test and the Dockerfile): find
# Python >= 3.13, install apt packages, build the venv, create the sandbox user. Sourced, not executed.
# Every step is idempotent so the README commands can be re-run safely; each has a check_* twin that
# only reports (scripts/install --check).

GIG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GIG_VENV:-$GIG_ROOT/.venv}"
APT_PACKAGES="bubblewrap nftables iproute2 libseccomp2 ca-certificates curl procps util-linux"
# Only when no usable Python exists under /usr (the Docker image brings its own in /usr/local).
PYTHON_APT_PACKAGES="python3 python3-venv"

say() { printf '[gigmcp] %s\n' "$*" >&2; }
die() { printf '[gigmcp] error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "run this as root (it installs apt packages and creates network namespaces): sudo $0"
}

apt_missing() {
    # Prints the packages among "$@" that are not installed.
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
    done
}

apt_install() {
    # Install only what is missing, and run 'apt-get update' at most once per call.
    local missing=()
    mapfile -t missing < <(apt_missing "$@")
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]}"
    say "installing apt packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install failed for: ${missing[*]}"
}

find_python() {
    # Python >= 3.13 is required by the mcp 2.x + mitmproxy 12 dependency set.
    local c
    for c in "${GIG_PYTHON:-}" python3.13 python3.14 python3 /usr/local/bin/python3.13 \
             "$HOME"/.pyenv/versions/3.13*/bin/python3.13 "$HOME"/.pyenv/versions/3.14*/bin/python3.14; do
        [ -n "$c" ] || continue
        command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
        if "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 13) else 1)' >/dev/null 2>&1; then
            command -v "$c" 2>/dev/null || echo "$c"
            return 0
        fi
    done
    return 1
}

sandbox_python_ok() {
    # Sandboxed Python servers get venvs made by an interpreter under /usr (the only tree bound inside).
    local c
    for c in /usr/bin/python3 /usr/local/bin/python3; do
        [ -x "$c" ] && "$c" -c 'import venv, ensurepip' >/dev/null 2>&1 && return 0
    done
    return 1
}

venv_stamp() { echo "$VENV/.gigmcp-installed-${1:-base}"; }

venv_current() {
    # $1: extras; true when the venv exists with those extras installed from the current pyproject.toml.
    # The dev install is a superset of the base one, so it satisfies a request for the base.
    local stamp stamps=("$(venv_stamp "$1")")
    [ -n "$1" ] || stamps+=("$(venv_stamp dev)")
    for stamp in "${stamps[@]}"; do
        [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && ! [ "$GIG_ROOT/pyproject.toml" -nt "$stamp" ] && return 0
    done
    return 1
}

ensure_venv() {
    # $1: pip extras ("" or "dev")
    local py extras="$1" stamp
    py="$(find_python)" || die "Python >= 3.13 not found: install it (pyenv install 3.13, or apt on Debian 13) or use the Docker image"
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)'; then
        say "creating virtual environment $VENV with $py"
        rm -rf "$VENV"
        "$py" -m venv "$VENV" || die "could not create the virtual environment with $py"
    fi
    stamp="$(venv_stamp "$extras")"
    if ! venv_current "$extras"; then
        say "installing gigmcp${extras:+ [$extras]} into $VENV"
        # (grep drops the harmless "Location ... is ignored" notes some pip.conf setups print)
        "$VENV/bin/pip" install -q --disable-pip-version-check -e "$GIG_ROOT${extras:+[$extras]}" 2>&1 \
            | { grep -v "is ignored: it is neither a file nor a directory" || true; }
        [ "${PIPESTATUS[0]}" -eq 0 ] || die "pip install failed (see the output above)"
        if [ "$extras" = dev ]; then
            # The GitLab server's own tests import it; it is a separate distribution.
            "$VENV/bin/pip" install -q --disable-pip-version-check -e "$GIG_ROOT/servers/gitlab" 2>&1 \
                | { grep -v "is ignored: it is neither a file nor a directory" || true; }
            [ "${PIPESTATUS[0]}" -eq 0 ] || die "pip install of servers/gitlab failed"
        fi
        touch "$stamp"
    fi
}

ensure_sandbox_user() {
    # bwrap must run as an unprivileged uid: run as root it keeps host root inside the sandbox.
    id -u gigmcp-sb >/dev/null 2>&1 && return 0
    say "creating the unprivileged sandbox user gigmcp-sb"
    # GIG_SANDBOX_UID pins the uid (the Docker image does, so files it leaves on volumes are predictable).
    useradd --system ${GIG_SANDBOX_UID:+--uid "$GIG_SANDBOX_UID"} --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gigmcp-sb \
        || die "could not create user gigmcp-sb"
}

node_runtime_ok() { [ -f "$GIG_ROOT/runtime/node/node_modules/undici/package.json" ]; }

ensure_node_runtime() {
    # undici, mounted into Node sandboxes so that fetch() honours the egress proxy (Node 20 ignores it).
    command -v npm >/dev/null || apt_install nodejs npm
    local dir="$GIG_ROOT/runtime/node"
    node_runtime_ok && return 0
    say "installing the Node runtime support (undici) in $dir"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || die "npm ci failed in $dir"
    chmod -R a+rX "$dir"
}

setup_base() {
    need_root
    apt_install $APT_PACKAGES
    sandbox_python_ok || apt_install $PYTHON_APT_PACKAGES
    ensure_sandbox_user
    ensure_node_runtime
}

check_base() {
    # $1: extras. Reports every missing piece on stderr; returns 1 if any is missing. Changes nothing.
    local extras="$1" problems=0 missing
    missing="$(apt_missing $APT_PACKAGES | tr '\n' ' ')"
    [ -z "$missing" ] || { say "missing apt packages: $missing"; problems=1; }
    sandbox_python_ok || { say "missing: a Python with venv and ensurepip under /usr (apt: $PYTHON_APT_PACKAGES)"; problems=1; }
    find_python >/dev/null || { say "missing: Python >= 3.13"; problems=1; }
    id -u gigmcp-sb >/dev/null 2>&1 || { say "missing: the sandbox user gigmcp-sb"; problems=1; }
    command -v npm >/dev/null || { say "missing: npm"; problems=1; }
    node_runtime_ok || { say "missing: runtime/node/node_modules (npm ci)"; problems=1; }
    venv_current "$extras" || { say "missing or stale: the virtual environment $VENV${extras:+ with [$extras]}"; problems=1; }
    return "$problems"
}
