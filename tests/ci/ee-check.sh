#!/usr/bin/env bash
# Validate the example execution environment (examples/ee/) and the collection's own EE metadata
# without a container engine:
#   1. `ansible-builder create` on a copy of examples/ee/ next to the built tarball: the schema-3 file
#      loads and the build context holds the collection tarball and a requirements.yml naming it;
#   2. `ansible-builder introspect` on the tarball installed into an empty collections path: the
#      collection's meta/execution-environment.yml yields `requests` (what the image will pip install).
#
# Usage: tests/ci/ee-check.sh <tfe-audit-X.Y.Z.tar.gz>   (ANSIBLE_BUILDER, ANSIBLE_GALAXY: the tools)
set -euo pipefail
tarball=${1:?usage: $0 <collection tarball>}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
builder=${ANSIBLE_BUILDER:-ansible-builder}
galaxy=${ANSIBLE_GALAXY:-ansible-galaxy}
name=$(basename "$tarball")
fail() { echo "ee-check: ERROR: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tfe-audit-ee.XXXXXX")
trap 'rm -rf "$work"' EXIT

grep -q "src: $name\$" "$root/examples/ee/execution-environment.yml" \
  || fail "examples/ee/execution-environment.yml does not name $name (update it with galaxy.yml's version)"
grep -q "name: collections/$name\$" "$root/examples/ee/requirements.yml" \
  || fail "examples/ee/requirements.yml does not name collections/$name"

# 1. ansible-builder create
cp -r "$root/examples/ee" "$work/ee"
cp "$tarball" "$work/ee/"
(cd "$work/ee" && "$builder" create --file execution-environment.yml --context "$work/context" -v 1)
ctx=$work/context
containerfile=
for f in "$ctx/Containerfile" "$ctx/Dockerfile"; do [ -f "$f" ] && containerfile=$f && break; done
[ -n "$containerfile" ] || fail "no Containerfile in the generated context"
[ -f "$ctx/_build/collections/$name" ] || fail "the context lacks _build/collections/$name"
grep -q "collections/$name" "$ctx/_build/requirements.yml" || fail "the context's requirements.yml does not list $name"
grep -q 'requirements.yml' "$containerfile" || fail "the Containerfile does not install requirements.yml"
grep -q '^hvac' "$ctx/_build/requirements.txt" || fail "the context's requirements.txt lacks the optional hvac"
# The image build introspects the collection in the context: its EE metadata must point at requests.
tar -xzf "$ctx/_build/collections/$name" -O meta/execution-environment.yml | grep -q '^ *python: *requirements.txt' \
  || fail "the tarball in the context has no meta/execution-environment.yml naming requirements.txt"
tar -xzf "$ctx/_build/collections/$name" -O requirements.txt | grep -q '^requests' \
  || fail "the tarball in the context does not require requests"
echo "ee-check: context OK ($(basename "$containerfile"), _build/requirements.yml lists collections/$name)"

# 2. ansible-builder introspect on the installed tarball
ANSIBLE_COLLECTIONS_PATH=$work/collections "$galaxy" collection install "$tarball" -p "$work/collections" --force >/dev/null
"$builder" introspect --sanitize "$work/collections" >"$work/introspect.txt"
cat "$work/introspect.txt"
grep -Eq "^- '?requests(>=[0-9.]+)? +# from collection tfe\.audit" "$work/introspect.txt" \
  || fail "introspection of the installed collection does not yield requests from tfe.audit"
echo "ee-check: OK"
