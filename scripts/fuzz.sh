#!/usr/bin/env bash
# Runs every Go fuzz target in both Go modules (the product and test/) for the
# given time each (default 60s). New crashers land in the package's
# testdata/fuzz/ and fail the run.
set -euo pipefail
fuzztime="${1:-60s}"
cd "$(dirname "$0")/.."
status=0
for mod in . test; do
  for pkg in $(go -C "$mod" list ./...); do
    dir=$(go -C "$mod" list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      echo "== $pkg $target ($fuzztime)"
      if ! go -C "$mod" test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"; then
        status=1
      fi
    done
  done
done
exit $status
