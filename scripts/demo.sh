#!/usr/bin/env bash
# The quick start: set up, then run nftwl on the shipped example whitelists inside a throwaway
# network namespace (this machine's own firewall is never touched) and show it working:
# live sets, a whitelist edit picked up by the watcher, and real connections on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--inside" ]]; then
  [[ $EUID -eq 0 ]] || { echo "demo: run as root (it creates a network namespace)" >&2; exit 2; }
  bash scripts/setup.sh
  echo "demo: entering a throwaway network namespace (unshare -n)"
  exec unshare --net -- "$0" --inside
fi

# --- from here on we are inside the new network namespace ---
# Refuse to go on in a namespace that has more than loopback (i.e. not a fresh one), whatever
# argument the script was given.
if [[ $(ip -o link show | wc -l) -ne 1 ]]; then
  echo "demo: not in a fresh network namespace; run it as: bash scripts/demo.sh" >&2
  exit 2
fi
ip link set lo up
work=$(mktemp -d /tmp/nftwl-demo.XXXXXX)
cp examples/nftwl.toml examples/whiteiplist.txt examples/whiteportlist.txt "$work/"
export NFTWL_STATE_DIR="$work/state"
export PATH="$PWD/.venv/bin:$PATH"
cfg="$work/nftwl.toml"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
probe() { python scripts/probe.py "$@" || true; }

cleanup() {
  if [[ -n "${daemon:-}" ]]; then kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; fi
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
servers=()
trap cleanup EXIT

step "the example whitelists ($work)"
grep -v '^#' "$work/whiteiplist.txt"; grep -v '^#' "$work/whiteportlist.txt"
nftwl validate "$work/whiteiplist.txt" "$work/whiteportlist.txt"

step "nftwl run --config $cfg (daemon in the background)"
nftwl run --config "$cfg" &
daemon=$!
for _ in $(seq 50); do nft list table inet nftwl >/dev/null 2>&1 && break; sleep 0.1; done

step "nftwl-ctl show: the live whitelist, read back from the kernel"
nftwl-ctl --config "$cfg" show

step "a listener on 127.0.0.1:8080 (protected) and 127.0.0.1:8081 (not protected)"
for port in 8080 8081; do
  python -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1 &
  servers+=($!)
done
sleep 0.5
probe 127.0.0.2 127.0.0.1 8080   # whitelisted source
probe 127.0.0.3 127.0.0.1 8080   # not whitelisted: dropped
probe 127.0.0.3 127.0.0.1 8081   # port not protected: untouched

step "edit the whitelist: add 127.0.0.3 (written to a temp file and renamed over it, as confd does)"
printf '127.0.0.3   # added by the demo\n' | cat "$work/whiteiplist.txt" - > "$work/.whiteiplist.txt.tmp"
mv "$work/.whiteiplist.txt.tmp" "$work/whiteiplist.txt"
sleep 1
nftwl-ctl --config "$cfg" show
probe 127.0.0.3 127.0.0.1 8080   # now allowed

step "a bad line is refused as a whole; the last good whitelist stays in force"
printf '10.0.0.1/8\n' >> "$work/whiteiplist.txt"
sleep 1
nftwl-ctl --config "$cfg" status || true
probe 127.0.0.3 127.0.0.1 8080

step "SIGTERM: the daemon stops, the rules stay in force"
kill "$daemon"; wait "$daemon" || true; daemon=
nft list chain inet nftwl input
probe 127.0.0.2 127.0.0.1 8080   # still whitelisted
probe 127.0.0.4 127.0.0.1 8080   # never whitelisted: still dropped with no daemon running
step "done: the namespace and everything in it disappear on exit"
