#!/usr/bin/env bash
# Prove that the changelog fragments render (run by `make changelog`), without touching the checkout:
# `antsibull-changelog release --version <V>` in a throwaway copy of the collection, then check that the
# generated changelog names the release and holds every fragment's first words.
#
# Usage: tests/ci/changelog-check.sh [version]   (default: galaxy.yml's version; ANTSIBULL_CHANGELOG: the tool)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH=$root/.venv/bin:$PATH   # antsibull-changelog runs ansible-doc from PATH
tool=${ANTSIBULL_CHANGELOG:-antsibull-changelog}
version=${1:-$(sed -n 's/^version: *//p' "$root/galaxy.yml")}
fail() { echo "changelog-check: ERROR: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tfe-audit-changelog.XXXXXX")
trap 'rm -rf "$work"' EXIT
coll=$work/ansible_collections/tfe/audit
"$root/tests/ci/copy-collection.sh" "$coll" >/dev/null
cp -r "$coll/changelogs/fragments" "$work/fragments"   # release deletes them (keep_fragments: false)
mapfile -t fragments < <(find "$work/fragments" -name '*.yml' -o -name '*.yaml' | sort)
[ ${#fragments[@]} -gt 0 ] || fail "no changelog fragments"

(cd "$coll" && ANSIBLE_COLLECTIONS_PATH=$work "$tool" release --version "$version")
out=$(sed -n 's/^ *- *file: *//p' "$coll/changelogs/config.yaml" | head -n 1)
[ -n "$out" ] && [ -s "$coll/$out" ] || fail "antsibull-changelog wrote no ${out:-changelog file}"
grep -q "v$version" "$coll/$out" || fail "$out does not name v$version"
# Every fragment's text must be in the rendered changelog (first 60 characters of each entry), except the
# trivial section's, which antsibull-changelog leaves out by design.
python=${PYTHON:-python3}
"$python" - "$coll/$out" "${fragments[@]}" <<'PY' || fail "a fragment is missing from the rendered changelog"
import re, sys, yaml
# Compare letters and digits only: rst/md markup and escaping differ from the fragments' rst.
norm = lambda t: re.sub(r"[^A-Za-z0-9]", "", re.sub(r"</?code>|<a [^>]*>|</a>", "", t))
text = norm(open(sys.argv[1], encoding="utf-8").read())
missing = []
for path in sys.argv[2:]:
    data = yaml.safe_load(open(path, encoding="utf-8")) or {}
    for section, entries in data.items():
        if section == "trivial":
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            if norm(str(entry))[:60] not in text:
                missing.append("%s: %s" % (path.rsplit("/", 1)[-1], str(entry)[:60]))
for m in missing:
    print("not rendered: " + m)
sys.exit(1 if missing else 0)
PY
echo "changelog-check: OK ($(wc -l <"$coll/$out") lines of $out for v$version from ${#fragments[@]} fragments; not committed)"
