#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every check CI runs:
# formatting, clippy, the whole test suite (unit, real-etcd integration, network-namespace
# tests; run as root) and a build of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/kube-apiserver.sh  # kubetest's kube-apiserver: built from Go source once, then cached
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

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
