#!/usr/bin/env bash
# Smoke test of a built collection tarball, as a user gets it (run by `make tarball`):
#   1. contents: what an execution environment and ansible-doc need is there, dev/test files are not;
#   2. installed into an empty collections path: ansible-doc renders every plugin and role it lists;
#   3. a playbook using only FQCNs (tests/ci/tarball-smoke.yml) runs against the emulator from it.
#
# Usage: tests/ci/tarball-check.sh <tfe-audit-X.Y.Z.tar.gz>
# Tools come from PATH, else <repo>/.venv/bin (ansible-galaxy, ansible-doc, ansible-playbook).
set -euo pipefail
tarball=${1:?usage: $0 <collection tarball>}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH=$root/.venv/bin:$PATH
fail() { echo "tarball-check: ERROR: $*" >&2; exit 1; }

# --- 1. contents ---------------------------------------------------------------------------------
members=$(tar -tzf "$tarball" | sed 's|^\./||; s|/$||')
required=(MANIFEST.json FILES.json README.md meta/runtime.yml meta/execution-environment.yml requirements.txt
          changelogs/changelog.yaml plugins/doc_fragments/connection.py)
[ -d "$root/roles/audit_trail_token" ] && required+=(roles/audit_trail_token/meta/argument_specs.yml)
for f in "${required[@]}"; do
  grep -qxF "$f" <<<"$members" || fail "$f is missing from $tarball"
done
for f in "$root"/plugins/modules/*.py; do
  [ "$(basename "$f")" = __init__.py ] && continue
  grep -qxF "plugins/modules/$(basename "$f")" <<<"$members" || fail "plugins/modules/$(basename "$f") is missing"
done
# Emulator, tests output and helpers, benchmarks, molecule scenarios (with a test vault password),
# dev/CI files, caches, venvs, build trees.
forbidden='^(\.git|\.gitignore|\.ci|\.ansible-lint|\.ansible|\.venv[^/]*|\.pytest_cache|\.hypothesis|\.make[^/]*\.lock|build|demo|bench|benchmarks?|extensions/molecule|Makefile|requirements-dev\.txt|tests/(emulator|output|system|ci|benchmarks?)|tests/integration/integration_config\.yml)(/|$)|(^|/)(__pycache__|.*\.pyc|.*\.tar\.gz)(/|$)'
if leaked=$(grep -E "$forbidden" <<<"$members"); then
  echo "$leaked" >&2
  fail "the tarball contains files build_ignore in galaxy.yml should drop (above)"
fi
echo "tarball-check: contents OK ($(wc -l <<<"$members") entries; ${#required[@]} required present, nothing forbidden)"

# --- 2. install + ansible-doc of everything it lists ---------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tfe-audit-tarball.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export ANSIBLE_COLLECTIONS_PATH=$tmp/collections ANSIBLE_NOCOLOR=1
ansible-galaxy collection install "$tarball" -p "$tmp/collections" >/dev/null
cd "$tmp"   # no ansible.cfg, no playbook-adjacent collections
ansible-galaxy collection list tfe.audit 2>/dev/null | grep -q "^tfe.audit " || fail "tfe.audit not installed in $tmp/collections"
count=0
types=()  # only the plugin types the tarball has (each `ansible-doc -l` costs seconds)
for type in module lookup filter test callback inventory connection become cache vars strategy; do
  dir=$type; [ "$type" = module ] && dir=modules
  grep -q "^plugins/$dir/" <<<"$members" && types+=("$type")
done
grep -q '^roles/[^/]*/meta/' <<<"$members" && types+=(role)
for type in "${types[@]}"; do
  names=$(ansible-doc -t "$type" -l tfe.audit --json 2>/dev/null \
          | python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin))))' || true)
  for n in $names; do
    case $n in tfe.audit.*) ;; *) continue ;; esac
    out=$(ansible-doc -t "$type" "$n" 2>&1) || { echo "$out"; fail "ansible-doc -t $type $n failed"; }
    grep -q "$n" <<<"$out" || { echo "$out"; fail "ansible-doc -t $type $n rendered nothing useful"; }
    echo "ansible-doc -t $type $n: OK ($(wc -l <<<"$out") lines)"
    count=$((count + 1))
  done
done
if [ -d "$root/roles/audit_trail_token" ]; then
  ansible-doc -t role tfe.audit.audit_trail_token >/dev/null 2>&1 || fail "ansible-doc -t role tfe.audit.audit_trail_token failed"
fi
[ "$count" -gt 0 ] || fail "ansible-doc found no plugins in the installed collection"

# --- 3. FQCN playbook against the emulator, from the installed tarball ---------------------------
INTEGRATION_CONFIG=$tmp/integration_config.yml EMULATOR_LOG=$root/build/tarball-emulator.log \
  "$root/tests/ci/with-emulator.sh" ansible-playbook "$root/tests/ci/tarball-smoke.yml" \
  || fail "the smoke playbook failed against the installed tarball"
echo "tarball-check: OK ($count ansible-doc pages, smoke playbook passed)"
