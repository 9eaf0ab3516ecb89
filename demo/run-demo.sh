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
  export TFE_HOSTNAME=$TFE_EMULATOR_URL TFE_TOKEN=$TFE_EMULATOR_TOKEN
  exec "$bin/ansible-playbook" -i localhost, -c local "$root/demo/demo.yml" "$@"
fi
"$root/tests/ci/with-emulator.sh" "$0" --inner "$@"
