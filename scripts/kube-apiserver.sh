#!/usr/bin/env bash
# Builds the kube-apiserver that kubetest's tests and testnet's Kubernetes mode run, from the
# k8s.io/kubernetes Go module at the version pinned in scripts/go/kube-apiserver/go.mod (the
# one place for it: kubetest reads the same file), through that wrapper module and the Go
# module proxy; and the kubectl of the same release from scripts/go/kubectl (k8s.io/kubectl
# v0.<minor>.<patch>; Debian's kubernetes-client is 1.20, too old for this API server).
# The binaries are cached outside the repository, keyed by version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/calico-rs/kube-apiserver-<version>/{kube-apiserver,kubectl}
# Does nothing when they are already there. Prints the kube-apiserver path on stdout.
set -euo pipefail
cd "$(dirname "$0")/go/kube-apiserver"

version=$(sed -En 's#^(require)?[[:space:]]+k8s\.io/kubernetes (v[0-9][0-9.]*)$#\2#p' go.mod)
go_min=$(sed -n 's#^go \([0-9][0-9.]*\)$#\1#p' go.mod)
if [ -z "$version" ] || [ -z "$go_min" ]; then
  echo "kube-apiserver.sh: cannot read the k8s.io/kubernetes version or the go line from $PWD/go.mod" >&2
  exit 1
fi
dir="${XDG_CACHE_HOME:-$HOME/.cache}/calico-rs/kube-apiserver-$version"
bin="$dir/kube-apiserver"
kubectl_mod=../kubectl
# The kubectl wrapper names the staging release; it must be this version's.
staging="v0.${version#v1.}"
if ! grep -Eq "^[[:space:]]+k8s\.io/kubectl $staging\$" "$kubectl_mod/go.mod"; then
  echo "kube-apiserver.sh: $PWD/$kubectl_mod/go.mod must require k8s.io/kubectl $staging (the release of kube-apiserver $version)" >&2
  exit 1
fi
if [ -x "$bin" ] && [ -x "$dir/kubectl" ]; then
  echo "$bin"
  exit 0
fi

go=$(command -v go || true)
[ -z "$go" ] && [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go
have=$([ -n "$go" ] && "$go" env GOVERSION 2>/dev/null | sed 's/^go//' || true)
if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$go_min" "$have" | sort -V | head -n1)" != "$go_min" ]; then
  echo "kube-apiserver.sh: building kube-apiserver $version needs Go >= $go_min (found: ${have:-no go on PATH or in /usr/local/go/bin}); install it from https://go.dev/dl/ into /usr/local/go" >&2
  exit 1
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
minor=${version#v1.}
minor=${minor%%.*}
# Both version packages, so that `kubectl version` and the server report the release.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
# build NAME MODULE_DIR: -mod=readonly (go.sum is committed; the build must not change it),
# GOTOOLCHAIN=local (use the Go found above, never download another).
build() {
  [ -x "$dir/$1" ] && return 0
  echo "== building $1 $version with $("$go" env GOVERSION) into $dir (cold: several minutes)" >&2
  (cd "$2" && GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0 "$go" build -mod=readonly -buildvcs=false \
    -trimpath -ldflags="$ldflags" -o "$tmp/$1" .)
  mv -f "$tmp/$1" "$dir/$1"
}
build kube-apiserver .
build kubectl "$kubectl_mod"
echo "$bin"
