#!/usr/bin/env bash
# Installs what building and running this project needs on Debian (run as root), then checks
# the Rust toolchain. Idempotent: packages already present are not reinstalled.
set -euo pipefail

# command -> Debian package that provides it
declare -A NEED=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [protoc]=protobuf-compiler
  [iptables]=iptables
  [ipset]=ipset
  [ip]=iproute2
  [bird]=bird2
  [gobgpd]=gobgpd
  [ping]=iputils-ping
  [python3]=python3
  [openssl]=openssl
  [/usr/lib/cni/portmap]=containernetworking-plugins
  [tcpdump]=tcpdump
  [iperf3]=iperf3
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's bird2 package starts a system BIRD; our tests run their own instances.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now bird >/dev/null 2>&1 || true; fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain (cargo) found; install Rust 1.85 or newer (rustup) first" >&2
  exit 1
fi
