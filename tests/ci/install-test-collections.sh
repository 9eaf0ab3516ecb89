#!/usr/bin/env bash
# Install the collections the tests use (not the collection's own dependencies) without Galaxy:
# PyPI's `ansible` package bundles them; extract just the ones needed into a collections path.
#
# Usage: tests/ci/install-test-collections.sh <dest-collections-path>
# Installs community.hashi_vault (the role's optional hashi_vault store) and ansible.posix
# (its json stdout callback, for the secret-leak tests). Idempotent (stamp file).
set -euo pipefail
ANSIBLE_PACKAGE=ansible==12.3.0
COLLECTIONS=(community/hashi_vault ansible/posix)

dest=${1:?usage: $0 <dest-collections-path>}
stamp=$dest/.installed-$ANSIBLE_PACKAGE
[ -f "$stamp" ] && exit 0
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/test-collections.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$python" -m pip download -q --no-deps -d "$work" "$ANSIBLE_PACKAGE" 2>&1 \
  | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
wheel=$(ls "$work"/ansible-*.whl)
patterns=()
for c in "${COLLECTIONS[@]}"; do patterns+=("ansible_collections/$c/*"); done
"$python" - "$wheel" "$work/x" "${patterns[@]}" <<'PY'
import fnmatch, sys, zipfile
wheel, out, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    members = [n for n in z.namelist() if any(fnmatch.fnmatch(n, p) for p in patterns)]
    z.extractall(out, members)
print("extracted %d files" % len(members))
PY
mkdir -p "$dest/ansible_collections"
for c in "${COLLECTIONS[@]}"; do
  rm -rf "${dest:?}/ansible_collections/$c"
  mkdir -p "$dest/ansible_collections/$(dirname "$c")"
  mv "$work/x/ansible_collections/$c" "$dest/ansible_collections/$c"
done
touch "$stamp"
