#!/usr/bin/env bash
# Sourced by the scripts that run committed training in the background: installs the committed code (HEAD) into
# $SNAP (set by the caller), so edits in the checkout never reach the running process, and sets COMMIT to the code it holds.
# Refuses when the checkout has uncommitted code changes (the run records the commit it runs).
#   SNAP=/tmp/raptor-runner; source training/snapshot.sh
if ! git diff --quiet HEAD -- . ':!training'; then
  echo "the checkout has uncommitted code changes; commit them first (the run records the commit it runs)"; exit 2
fi
rm -rf "$SNAP" "$SNAP.src"
git worktree prune
git worktree add -q --detach "$SNAP.src" HEAD
pip install -q --no-deps --no-build-isolation --target "$SNAP" "$SNAP.src" >/dev/null 2>&1
git worktree remove --force "$SNAP.src"
COMMIT=$(git rev-parse HEAD)
