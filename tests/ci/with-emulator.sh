#!/usr/bin/env bash
# Run a command against a freshly started TFE/HCP Terraform emulator; always stop it afterwards.
#
# Usage: tests/ci/with-emulator.sh <command> [args...]
#
# Starts tests/emulator/tfe_emulator.py on a free port (127.0.0.1) with a random API token,
# the entitled organization "acme" and the non-entitled organization "acme-unentitled", then:
#   * exports TFE_EMULATOR_URL, TFE_EMULATOR_TOKEN, TFE_EMULATOR_ORG, TFE_EMULATOR_PID
#   * writes an ansible-test integration config ($INTEGRATION_CONFIG) with the variables
#       tfe_emulator_url, tfe_api_token, tfe_organization, tfe_unentitled_organization,
#       tfe_validate_certs
#   * runs the command (from the current directory) and exits with its status.
# The emulator is killed on every exit path (success, failure, Ctrl-C).
#
# Environment:
#   PYTHON              interpreter for the emulator (default: <repo>/.venv/bin/python, else python3)
#   INTEGRATION_CONFIG  where to write the config
#                       (default: ./tests/integration/integration_config.yml if ./tests/integration
#                        exists, else <repo>/build/ansible_collections/tfe/audit/tests/integration/...)
#   EMULATOR_LOG        emulator request log (default: <repo>/build/emulator.log)
#   EMULATOR_ARGS       extra arguments for tfe_emulator.py (e.g. "--rate-limit 5")
set -euo pipefail

if [ $# -eq 0 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
emulator_py=$root/tests/emulator/tfe_emulator.py
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$root/.venv/bin/python" ]; then PYTHON=$root/.venv/bin/python; else PYTHON=python3; fi
fi
if [ -z "${INTEGRATION_CONFIG:-}" ]; then
  if [ -d tests/integration ]; then
    INTEGRATION_CONFIG=$PWD/tests/integration/integration_config.yml
  else
    INTEGRATION_CONFIG=$root/build/ansible_collections/tfe/audit/tests/integration/integration_config.yml
  fi
fi
EMULATOR_LOG=${EMULATOR_LOG:-$root/build/emulator.log}

[ -f "$emulator_py" ] || { echo "with-emulator: $emulator_py not found" >&2; exit 2; }

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tfe-emulator.XXXXXX")
ready=$workdir/ready.json
emu_pid=

# shellcheck disable=SC2329  # invoked through the EXIT trap
cleanup() {
  local rc=$?
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

token=$("$PYTHON" -c 'import secrets; print("it-" + secrets.token_urlsafe(24))')
mkdir -p "$(dirname "$EMULATOR_LOG")"

# The token goes through the environment, not argv (not visible in ps).
# shellcheck disable=SC2086  # EMULATOR_ARGS is intentionally word-split
TFE_EMULATOR_API_TOKENS=$token "$PYTHON" "$emulator_py" --port 0 --ready-file "$ready" \
  --org acme --org-without-entitlement acme-unentitled ${EMULATOR_ARGS:-} \
  >"$workdir/stdout" 2>"$EMULATOR_LOG" &
emu_pid=$!

for _ in $(seq 1 200); do  # up to 20 s
  [ -s "$ready" ] && break
  if ! kill -0 "$emu_pid" 2>/dev/null; then
    echo "with-emulator: emulator exited before becoming ready; log $EMULATOR_LOG:" >&2
    tail -n 30 "$EMULATOR_LOG" >&2 || true
    exit 1
  fi
  sleep 0.1
done
[ -s "$ready" ] || { echo "with-emulator: emulator not ready after 20 s" >&2; exit 1; }

url=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"])' "$ready")

export TFE_EMULATOR_URL=$url
export TFE_EMULATOR_TOKEN=$token
export TFE_EMULATOR_ORG=acme
export TFE_EMULATOR_PID=$emu_pid
export INTEGRATION_CONFIG

mkdir -p "$(dirname "$INTEGRATION_CONFIG")"
( umask 077
  cat >"$INTEGRATION_CONFIG" <<YAML
---
# Written by tests/ci/with-emulator.sh for one run; do not commit.
tfe_emulator_url: "$url"
tfe_api_token: "$token"
tfe_organization: acme
tfe_unentitled_organization: acme-unentitled
tfe_validate_certs: false
YAML
)

echo "with-emulator: emulator pid $emu_pid at $url (log: $EMULATOR_LOG)"
set +e
"$@"
rc=$?
set -e
exit "$rc"
