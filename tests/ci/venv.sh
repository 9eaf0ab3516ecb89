#!/usr/bin/env bash
# Create or update a pinned virtualenv; a no-op when it is up to date. Every venv of the project is made here.
#
# Usage: tests/ci/venv.sh DIR PYTHON REQ...
#   PYTHON  a version: the newest $(pyenv root)/versions/<PYTHON>.*/bin/python<PYTHON>, else python<PYTHON> on PATH
#   REQ     a requirements file, or one requirement such as ansible-core==2.21.5
# The venv is rebuilt from scratch when the Python version or anything it was built from changed (a stamp in DIR
# records the hashes).
set -euo pipefail
dir=${1:?usage: $0 DIR PYTHON REQ...}
py=${2:?usage: $0 DIR PYTHON REQ...}
shift 2

want="python$py"
args=()
for req in "$@"; do
  if [ -f "$req" ]; then
    want+=" $req:$(sha256sum "$req" | cut -c1-16)"
    args+=(-r "$req")
  else
    want+=" $req"
    args+=("$req")
  fi
done
stamp=$dir/.tfe-audit-stamp
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && exit 0

find_python() {
  local pyenv_root candidate
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  candidate=$(find "$pyenv_root/versions" -maxdepth 3 -path "*/versions/$py.*/bin/python$py" 2>/dev/null \
              | sort -V | tail -n 1 || true)
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return; fi
  command -v "python$py" || { echo "venv: no Python $py (pyenv or PATH)" >&2; exit 2; }
}

# pip prints one "Location ... is ignored" warning per package for this machine's optional local indexes.
pip_quiet() { { grep --line-buffered -v -e 'is ignored: it is neither a file nor a directory' || true; }; }

echo "==== venv: $dir (Python $py) ===="
rm -rf "$dir"
"$(find_python)" -m venv "$dir"
"$dir/bin/python" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$py', sys.version"
"$dir/bin/python" -m pip install -q --upgrade pip 2>&1 | pip_quiet
"$dir/bin/python" -m pip install -q "${args[@]}" 2>&1 | pip_quiet
echo "$want" >"$stamp"
