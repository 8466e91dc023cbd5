#!/usr/bin/env bash
# Set up (see setup.sh), then run every check: ruff, mypy --strict, and the whole test suite.
# Kernel tests need root; each runs in its own throwaway network namespace and never touches
# this machine's firewall. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check nftwl tests bench
.venv/bin/ruff format --check nftwl tests bench
echo "== mypy --strict"
.venv/bin/mypy nftwl
echo "== pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  # pytest's "no tests collected": not a failure of the code, but say so loudly.
  echo "pytest collected no tests" >&2
  exit 0
fi
exit $rc
