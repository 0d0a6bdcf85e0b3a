#!/usr/bin/env bash
# The README's main command (as root): installs what is missing, builds, and runs a demo
# cluster in network namespaces (testnet): nodes, pods pinging across nodes,
# `calicoctl get nodes -o wide`, `calicoctl node status`, `calicoctl ipam show`.
# Everything it starts is stopped and removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/kube-apiserver.sh  # kubetest's kube-apiserver: built from Go source once, then cached
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --locked --bins -q

# A 3-node cluster in network namespaces: felix and bgpd on every node from etcd, pods
# wired by the CNI plugins, BGP full mesh; then the same with a route reflector; then
# Kubernetes mode.
./target/debug/testnet demo --nodes 3 --pods-per-node 2
./target/debug/testnet demo --nodes 3 --pods-per-node 2 --route-reflector
# Kubernetes mode: a real kube-apiserver and kube-controllers; pods are Pod objects with
# labels, and a Kubernetes NetworkPolicy is enforced across nodes and follows a relabel.
./target/debug/testnet demo --nodes 3 --pods-per-node 1 --kubernetes
# Overlay mode: nodes on two subnets joined by a router that knows no pod address; the
# pool in BGP-only mode (cross-subnet pods fail, and why), then VXLAN, then CrossSubnet.
./target/debug/testnet demo --overlay
