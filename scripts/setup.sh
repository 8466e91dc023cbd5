#!/usr/bin/env bash
# Install what nftwl and its tests need on a Debian machine, as root: the Debian packages and
# a virtualenv in .venv with nftwl installed (editable) and the test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(nftables libnftables1 iproute2 python3-venv ca-certificates)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# Quiet unless it fails; the pip log is kept for when it does.
if ! .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' >.venv/pip.log 2>&1; then
  cat .venv/pip.log >&2
  exit 1
fi
echo "setup: ready ($(.venv/bin/python -c 'import nftables, watchfiles, pydantic_settings; print("binding, watchfiles, pydantic-settings importable")'))"
