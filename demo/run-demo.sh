#!/usr/bin/env bash
# make demo: start the emulator, run demo.yml against it, stop the emulator.
# Nothing here talks to a real HCP Terraform; the API token is random and lives only in this run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
bin=$(dirname "$python")

if [ "${1:-}" != "--inner" ]; then
  # ansible-playbook finds this checkout as tfe.audit through a throwaway collections path.
  collections=$(mktemp -d "${TMPDIR:-/tmp}/tfe-audit-demo.XXXXXX")
  trap 'rm -rf "$collections"' EXIT
  mkdir -p "$collections/ansible_collections/tfe"
  ln -s "$root" "$collections/ansible_collections/tfe/audit"
else
  collections=$ANSIBLE_COLLECTIONS_PATH
fi

export PYTHON=$python
export ANSIBLE_COLLECTIONS_PATH=$collections
export ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-}
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml
export ANSIBLE_LOCALHOST_WARNING=false
export ANSIBLE_INVENTORY_UNPARSED_WARNING=false
export INTEGRATION_CONFIG=$collections/emulator.yml
export EMULATOR_LOG=$collections/emulator.log

# with-emulator.sh starts the emulator, exports TFE_EMULATOR_URL / TFE_EMULATOR_TOKEN and runs this
# script again with --inner; the playbook then gets them as TFE_HOSTNAME / TFE_TOKEN, the way a
# user's environment would.
if [ "${1:-}" = "--inner" ]; then
  shift
  export TFE_HOSTNAME=$TFE_EMULATOR_URL TFE_TOKEN=$TFE_EMULATOR_TOKEN TFE_ORGANIZATION=acme
  playbook() { "$bin/ansible-playbook" -i localhost, -c local "$@"; }
  banner() { printf '\n######## %s\n' "$1"; }

  banner "Part 1: a token's life cycle with the module"
  playbook "$root/demo/demo.yml" "$@"

  banner "Part 2: the SIEM recipe (playbooks/export_audit_trail.yml): the role keeps the token in a vault file, then new audit events are exported"
  export_dir=$collections/export
  mkdir -p "$export_dir" && chmod 700 "$export_dir"
  "$python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$collections/vault-pass"
  chmod 600 "$collections/vault-pass"
  "$python" - "$TFE_EMULATOR_URL" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/_emulator/organizations/acme/events", method="POST",
                                 data=json.dumps({"count": 2500}).encode(), headers={"Content-Type": "application/json"})
print("seeded %s audit events in the emulator" % json.load(urllib.request.urlopen(request))["count"])
PY
  recipe=(tfe.audit.export_audit_trail --vault-password-file "$collections/vault-pass" -e "export_dir=$export_dir")
  playbook "${recipe[@]}" "$@"

  banner "Part 3: the same recipe again (as the next scheduled run): nothing to rotate, nothing new to export"
  playbook "${recipe[@]}" "$@"

  banner "Part 4: where the secret lives, and proof that it is the live token"
  playbook "$root/demo/prove.yml" --vault-password-file "$collections/vault-pass" -e "export_dir=$export_dir" "$@"
  exit 0
fi
"$root/tests/ci/with-emulator.sh" "$0" --inner "$@"
