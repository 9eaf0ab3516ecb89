#!/usr/bin/env bash
# Validate an example environment for ansible-builder without a container engine (run by `make ee` and `make eda`):
#   ee: examples/ee/execution-environment.yml, the execution environment (AWX/AAP jobs);
#   de: examples/de/decision-environment.yml, the decision environment (the EDA controller).
#   1. the example names the tarball, and the tarball holds what that environment runs;
#   2. `ansible-builder create` on a copy of the example next to the tarball: the schema-3 file loads and the
#      build context holds the tarball, a requirements.yml naming it, and what the kind needs;
#   3. `ansible-builder introspect` of the installed tarball yields `requests` (the collection's one Python need).
#
# Usage: tests/ci/builder-check.sh ee|de <tfe-audit-X.Y.Z.tar.gz>   (ANSIBLE_BUILDER, ANSIBLE_GALAXY: the tools)
set -euo pipefail
kind=${1:?usage: $0 ee|de <collection tarball>}
tarball=${2:?usage: $0 ee|de <collection tarball>}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
builder=${ANSIBLE_BUILDER:-ansible-builder}
galaxy=${ANSIBLE_GALAXY:-ansible-galaxy}
name=$(basename "$tarball")
fail() { echo "builder-check $kind: ERROR: $*" >&2; exit 1; }
case $kind in
  ee) file=execution-environment.yml; needs=() ;;
  de) file=decision-environment.yml
      needs=(extensions/eda/plugins/event_source/audit_trail.py extensions/eda/rulebooks/audit_trail_token.yml
             extensions/eda/rulebooks/watch_organization.yml playbooks/rotate_audit_trail_token.yml
             playbooks/report_audit_event.yml) ;;
  *) fail "the kind is ee or de, not $kind" ;;
esac
work=$(mktemp -d "${TMPDIR:-/tmp}/tfe-audit-$kind.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. the example and the tarball
grep -q "src: $name\$" "$root/examples/$kind/$file" \
  || fail "examples/$kind/$file does not name $name (update it with galaxy.yml's version)"
grep -q "name: collections/$name\$" "$root/examples/$kind/requirements.yml" \
  || fail "examples/$kind/requirements.yml does not name collections/$name"
tar -tzf "$tarball" >"$work/files.txt"  # (not piped into grep -q: pipefail would catch tar's SIGPIPE)
for member in "${needs[@]}"; do
  grep -qx "$member" "$work/files.txt" || fail "$name lacks $member"
done
tar -xzf "$tarball" -O meta/execution-environment.yml >"$work/execution-environment.yml"
grep -q '^ *python: *requirements.txt' "$work/execution-environment.yml" \
  || fail "$name has no meta/execution-environment.yml naming requirements.txt"
tar -xzf "$tarball" -O requirements.txt >"$work/requirements.txt"  # (grep -q on a pipe: tar may get SIGPIPE)
grep -q '^requests' "$work/requirements.txt" || fail "$name does not require requests"

# 2. ansible-builder create
cp -r "$root/examples/$kind" "$work/$kind"
cp "$tarball" "$work/$kind/"
(cd "$work/$kind" && "$builder" create --file "$file" --context "$work/context" -v 1)
ctx=$work/context
containerfile=
for f in "$ctx/Containerfile" "$ctx/Dockerfile"; do [ -f "$f" ] && containerfile=$f && break; done
[ -n "$containerfile" ] || fail "no Containerfile in the generated context"
[ -f "$ctx/_build/collections/$name" ] || fail "the context lacks _build/collections/$name"
grep -q "collections/$name" "$ctx/_build/requirements.yml" || fail "the context's requirements.yml does not list $name"
grep -q 'requirements.yml' "$containerfile" || fail "the Containerfile does not install requirements.yml"
if [ "$kind" = ee ]; then
  grep -q '^hvac' "$ctx/_build/requirements.txt" || fail "the context's requirements.txt lacks the optional hvac"
else
  grep -q '^ansible-rulebook==' "$ctx/_build/requirements.txt" || fail "the context's requirements.txt lacks ansible-rulebook"
  grep -q '^java-17-openjdk-headless' "$ctx/_build/bindep.txt" || fail "the context's bindep.txt lacks the Java runtime"
  grep -q 'JAVA_TOOL_OPTIONS=-Xrs' "$containerfile" || fail "the Containerfile does not leave signals to ansible-rulebook"
fi
echo "builder-check $kind: context OK ($(basename "$containerfile"), _build/requirements.yml lists collections/$name)"

# 3. introspection of the installed tarball
ANSIBLE_COLLECTIONS_PATH=$work/collections "$galaxy" collection install "$tarball" -p "$work/collections" --force >/dev/null
"$builder" introspect --sanitize "$work/collections" >"$work/introspect.txt"
grep -Eq "^- '?requests(>=[0-9.]+)? +# from collection tfe\.audit" "$work/introspect.txt" \
  || fail "introspection of the installed collection does not yield requests from tfe.audit"
echo "builder-check $kind: OK"
