#!/usr/bin/env bash
# Validate the example decision environment (examples/de/) without a container engine, like ee-check.sh does
# for the execution environment:
#   1. the collection (tracked and untracked, not ignored, files) is built into a tarball;
#   2. `ansible-builder create` on a copy of examples/de/ next to it: the schema-3 file loads, and the build
#      context holds the tarball, ansible-rulebook, the Java runtime and the JVM signal setting;
#   3. `ansible-builder introspect` of the installed tarball yields requests (the event source's client).
#
# Usage: tests/ci/eda-de-check.sh       (ANSIBLE_BUILDER, ANSIBLE_GALAXY: the tools)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
builder=${ANSIBLE_BUILDER:-ansible-builder}
galaxy=${ANSIBLE_GALAXY:-ansible-galaxy}
fail() { echo "eda-de-check: ERROR: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tfe-audit-de.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. the tarball
"$root/tests/ci/copy-collection.sh" "$work/src/ansible_collections/tfe/audit" >/dev/null
"$galaxy" collection build "$work/src/ansible_collections/tfe/audit" --output-path "$work/dist" >/dev/null
tarball=$(ls "$work"/dist/tfe-audit-*.tar.gz)
name=$(basename "$tarball")
tar -tzf "$tarball" >"$work/files.txt"  # (not piped into grep -q: pipefail would catch tar's SIGPIPE)
for file in extensions/eda/plugins/event_source/audit_trail.py extensions/eda/rulebooks/audit_trail_token.yml \
            extensions/eda/rulebooks/watch_organization.yml playbooks/rotate_audit_trail_token.yml \
            playbooks/report_audit_event.yml; do
  grep -qx "$file" "$work/files.txt" || fail "$name lacks $file"
done
grep -q "src: $name\$" "$root/examples/de/decision-environment.yml" \
  || fail "examples/de/decision-environment.yml does not name $name (update it with galaxy.yml's version)"
grep -q "name: collections/$name\$" "$root/examples/de/requirements.yml" \
  || fail "examples/de/requirements.yml does not name collections/$name"

# 2. ansible-builder create
cp -r "$root/examples/de" "$work/de"
cp "$tarball" "$work/de/"
(cd "$work/de" && "$builder" create --file decision-environment.yml --context "$work/context" -v 1)
ctx=$work/context
containerfile=
for f in "$ctx/Containerfile" "$ctx/Dockerfile"; do [ -f "$f" ] && containerfile=$f && break; done
[ -n "$containerfile" ] || fail "no Containerfile in the generated context"
[ -f "$ctx/_build/collections/$name" ] || fail "the context lacks _build/collections/$name"
grep -q "collections/$name" "$ctx/_build/requirements.yml" || fail "the context's requirements.yml does not list $name"
grep -q '^ansible-rulebook==' "$ctx/_build/requirements.txt" || fail "the context's requirements.txt lacks ansible-rulebook"
grep -q '^java-17-openjdk-headless' "$ctx/_build/bindep.txt" || fail "the context's bindep.txt lacks the Java runtime"
grep -q 'JAVA_TOOL_OPTIONS=-Xrs' "$containerfile" || fail "the Containerfile does not leave signals to ansible-rulebook"
grep -q 'requirements.yml' "$containerfile" || fail "the Containerfile does not install requirements.yml"
echo "eda-de-check: context OK ($(basename "$containerfile"): ansible-rulebook, Java 17, $name)"

# 3. the collection's own Python requirements
ANSIBLE_COLLECTIONS_PATH=$work/collections "$galaxy" collection install "$tarball" -p "$work/collections" --force >/dev/null
"$builder" introspect --sanitize "$work/collections" >"$work/introspect.txt"
grep -Eq "^- '?requests(>=[0-9.]+)? +# from collection tfe\.audit" "$work/introspect.txt" \
  || fail "introspection of the installed collection does not yield requests from tfe.audit"
echo "eda-de-check: OK"
