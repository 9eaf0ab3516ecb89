#!/usr/bin/env bash
# One cell of the support matrix: ansible-test sanity, units and integration on one ansible-core
# release and one Python, in its own virtualenv and its own copy of the collection.
#
# Usage: tests/ci/matrix.sh <ansible-core-version> <python-version> [step...]
#   e.g. tests/ci/matrix.sh 2.20.10 3.12            (steps default to: sanity units integration)
#        tests/ci/matrix.sh 2.18.19 3.11 units integration
#
# Virtualenv:  <repo>/.venv-matrix/<core major.minor>-py<python>  (tests/ci/venv.sh: ansible-core==<version>
#              + tests/ci/requirements-matrix.txt, rebuilt when either changes)
# Collection:  <repo>/build/matrix/<core>-py<python>/ansible_collections/tfe/audit (fresh copy)
# Extra arguments per step from SANITY_ARGS, UNITS_ARGS and INTEGRATION_ARGS (split at blanks), e.g. a test file.
# Prints one "matrix-time <cell> <step> <seconds> <ok|FAILED>" line per step (collected by `make matrix`).
# Runs every step even after a failure; exits non-zero if any step failed.
set -euo pipefail

core=${1:?usage: $0 <ansible-core-version> <python-version> [step...]}
py=${2:?usage: $0 <ansible-core-version> <python-version> [step...]}
shift 2
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(sanity units integration)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
minor=$(cut -d. -f1-2 <<<"$core")
cell=$minor-py$py
venv=$root/.venv-matrix/$cell
coll=$root/build/matrix/$cell/ansible_collections/tfe/audit
reqs=$root/tests/ci/requirements-matrix.txt

pip_quiet() { { grep --line-buffered -v -e 'is ignored: it is neither a file nor a directory' || true; }; }

"$root/tests/ci/venv.sh" "$venv" "$py" "ansible-core==$core" "$reqs"
actual=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
[ "$actual" = "$core" ] || { echo "matrix: $venv has ansible-core $actual, not $core" >&2; exit 1; }

# ansible-test bootstraps its own venvs with get-pip from an unreachable host: the stand-in.
"$venv/bin/python" "$root/tests/ci/write-get-pip.py" >/dev/null

# --- fresh collection copy ---------------------------------------------------------------------
"$root/tests/ci/copy-collection.sh" "$coll" >/dev/null

export PATH=$venv/bin:$PATH
cd "$coll"
rc=0
for step in "${steps[@]}"; do
  extra=()
  case $step in
    sanity) read -r -a extra <<<"${SANITY_ARGS:-}" ;;
    units) read -r -a extra <<<"${UNITS_ARGS:-}" ;;
    integration) read -r -a extra <<<"${INTEGRATION_ARGS:-}" ;;
  esac
  echo "==== [matrix $cell] ansible-test $step (ansible-core $core, Python $py) ===="
  start=$(date +%s)
  case $step in
    sanity)
      cmd=(ansible-test sanity --local --requirements --python "$py" --color no "${extra[@]}") ;;
    units)
      cmd=(ansible-test units --local --requirements --python "$py" --color no "${extra[@]}") ;;
    integration)
      cmd=(env PYTHON="$venv/bin/python" INTEGRATION_CONFIG="$coll/tests/integration/integration_config.yml"
           EMULATOR_LOG="$root/build/matrix/$cell/emulator.log"
           "$root/tests/ci/with-emulator.sh"
           ansible-test integration --local --python "$py" --color no --continue-on-error "${extra[@]}") ;;
    *) echo "matrix: unknown step $step (sanity, units, integration)" >&2; exit 2 ;;
  esac
  if "${cmd[@]}" 2>&1 | pip_quiet; then status=ok; else status=FAILED; rc=1; fi
  echo "matrix-time $cell $step $(( $(date +%s) - start )) $status"
done
exit "$rc"
