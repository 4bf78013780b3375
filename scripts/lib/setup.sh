# Shared by scripts/run and scripts/test: install what a fresh machine lacks.
# Sourced, not run. Debian/Ubuntu packages through apt; Python packages in .venv.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# QM_VENV: use an existing venv as it is (a worktree sharing one); nothing is installed into it.
VENV="${QM_VENV:-$ROOT/.venv}"

say() { printf '%s\n' "$*" >&2; }

# ensure_apt PKG... — install the Debian packages that are missing (needs root or sudo).
ensure_apt() {
  command -v dpkg-query >/dev/null || { say "setup: not a Debian system; install by hand: $*"; return 0; }
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "setup: please install as root: apt-get install ${missing[*]}"; return 1; }
    sudo="sudo"
  fi
  say "setup: installing ${missing[*]} (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv [EXTRAS] — create .venv if missing and install the project (editable) into it.
# Re-installs only when pyproject.toml changed since the last install.
ensure_venv() {
  if [ -n "${QM_VENV:-}" ]; then
    [ -x "$VENV/bin/python" ] || { say "setup: QM_VENV=$QM_VENV has no bin/python"; return 1; }
    return 0
  fi
  local extras=${1:-}
  local spec="$ROOT"
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  local python=${PYTHON:-python3}
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    say "setup: qm-station needs Python 3.11 or newer ($python is $("$python" -V 2>&1))"; return 1; }
  "$python" -c 'import venv, ensurepip' 2>/dev/null || ensure_apt python3-venv
  if [ ! -x "$VENV/bin/python" ]; then
    say "setup: creating $VENV"
    "$python" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "setup: installing qm-station${extras:+ [$extras]} into .venv (pip)"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$spec"
    touch "$stamp"
  fi
}

# ensure_npm DIR — install DIR's npm packages exactly as its package-lock.json pins them
# (again only when the lock file changed since the last install).
ensure_npm() {
  local dir="$ROOT/$1"
  command -v npm >/dev/null || ensure_apt nodejs npm
  local stamp="$dir/node_modules/.installed"
  if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
    say "setup: installing the npm packages of $1 (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$stamp"
  fi
}
