#!/usr/bin/env bash
# Copy the collection (git-tracked files + untracked files that are not ignored)
# to a real ansible_collections/<ns>/<name>/ path so ansible-test can run there.
#
# Usage: tests/ci/copy-collection.sh [DEST]
#   DEST defaults to <repo>/build/ansible_collections/tfe/audit
#
# The copy is recreated from scratch on every call (stale files never survive).
# It gets its own (empty) `git init`: ansible-test walks *up* from the content
# root looking for a .git directory; without one in the copy it would find the
# project's repository, where build/ is ignored, and see no files at all.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=${1:-$root/build/ansible_collections/tfe/audit}

case "$dest" in
  */ansible_collections/*/*) ;;
  *) echo "copy-collection: DEST must end in ansible_collections/<ns>/<name>: $dest" >&2; exit 2 ;;
esac

rm -rf "$dest"
mkdir -p "$dest"

cd "$root"
# -c tracked, -o untracked, --exclude-standard drops ignored files; skip files
# deleted from the work tree but still in the index.
git ls-files -z -co --exclude-standard \
  | while IFS= read -r -d '' f; do
      [ -e "$f" ] || [ -L "$f" ] || continue
      printf '%s\0' "$f"
    done \
  | tar --null -T - -cf - \
  | tar -C "$dest" -xf -

git -C "$dest" init -q
echo "copy-collection: $(git -C "$dest" ls-files -co --exclude-standard | wc -l) files -> $dest"
