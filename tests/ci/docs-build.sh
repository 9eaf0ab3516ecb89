#!/usr/bin/env bash
# Render the collection's documentation to HTML with antsibull-docs + Sphinx (run by `make docs`);
# fails on any antsibull-docs error or Sphinx warning (-W).
#
# Usage: tests/ci/docs-build.sh <collections-path holding ansible_collections/tfe/audit> <dest-dir>
#   HTML lands in <dest-dir>/html. Tools come from PATH (the docs venv's bin first).
set -euo pipefail
collections=${1:?usage: $0 <collections path> <dest dir>}
dest=${2:?usage: $0 <collections path> <dest dir>}
export ANSIBLE_COLLECTIONS_PATH=$collections ANSIBLE_NOCOLOR=1

rm -rf "$dest" && mkdir -p "$dest/src"
antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$dest/src" tfe.audit >/dev/null
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cat "$root/tests/ci/sphinx_conf_offline.py" >>"$dest/src/conf.py"   # no network: no intersphinx
# build.sh: antsibull-docs collection --fail-on-error, then sphinx-build -W --keep-going
(cd "$dest/src" && ./build.sh 2>&1) | tee "$dest/build.log"
if grep -Ei '(^|[^a-z])(warning|error)[: ]' "$dest/build.log" | grep -v 'build succeeded'; then
  echo "docs-build: ERROR: warnings or errors above" >&2; exit 1
fi
mv "$dest/src/build/html" "$dest/html"
for page in index.html collections/tfe/audit/index.html collections/tfe/audit/tfe_audit_trail_token_module.html; do
  [ -s "$dest/html/$page" ] || { echo "docs-build: ERROR: $page was not rendered" >&2; exit 1; }
done
echo "docs-build: OK: $(find "$dest/html" -name '*.html' | wc -l) HTML pages in $dest/html"
