#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every check CI runs:
# formatting, clippy, the whole test suite (unit, real-etcd integration, network-namespace
# tests; run as root) and a build of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/kube-apiserver.sh  # kubetest's kube-apiserver: built from Go source once, then cached
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

# A cold build of the workspace's tests needs several GB; a full disk shows up much later as a
# linker dying with SIGBUS, so say it plainly up front.
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "$free_kib" -lt $((8 * 1024 * 1024)) ]; then
  echo "warning: only $((free_kib / 1024)) MiB free on $(df -P . | awk 'NR == 2 { print $6 }'); a cold build needs about 8 GiB" >&2
fi

echo "== rustfmt"
cargo fmt --all --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== fuzz targets build"
for manifest in */fuzz/Cargo.toml; do
  [ -f "$manifest" ] || continue
  # Same target dir as the workspace: identical dependency builds are reused.
  cargo build --manifest-path "$manifest" --bins --target-dir target
done
echo "== tests"
# testnet's end-to-end tests drive the other crates' binaries.
cargo build --workspace --bins --locked
cargo test --workspace --locked --no-fail-fast
