#!/usr/bin/env bash
# Release build: static linux/amd64 and linux/arm64 binaries of cqlsniff in
# dist/, their SHA256SUMS, for the container image (deploy/container) and
# for people who install from a release.
#
#   scripts/release.sh [REF]        build REF (default HEAD)
#   VERSION=v0.2.0 scripts/release.sh   also tag REF as VERSION in the build's
#                                   own clone, before the tag is pushed
#
# The build is made from a fresh clone of REF in a temporary directory, so
# the working tree's uncommitted changes never end up in a release and the
# binary's VCS stamp is clean. `cqlsniff --version` prints what the Go
# toolchain stamps from the VCS: the tag when REF is tagged (v1.2.3), a
# pseudo-version (v0.0.0-DATE-COMMIT) when not, and the commit and its time.
# -buildvcs=true is explicit: GOFLAGS=-buildvcs=false on some machines would
# leave the version out.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
ref=${1:-HEAD}
commit=$(git rev-parse --verify "$ref^{commit}")
out=$repo/dist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

git clone --quiet --no-checkout "$repo" "$tmp/src"
git -C "$tmp/src" -c advice.detachedHead=false checkout --quiet "$commit"
# Tags of the repository that point at the commit come with the clone.
if [ -n "${VERSION:-}" ]; then
	[[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || { echo "VERSION must be a semantic version tag like v1.2.3, not $VERSION" >&2; exit 2; }
	git -C "$tmp/src" tag "$VERSION" "$commit"
fi

mkdir -p "$out"
rm -f "$out"/cqlsniff-linux-* "$out"/SHA256SUMS
for arch in amd64 arm64; do
	echo "== linux/$arch"
	(cd "$tmp/src" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch nice go build \
		-trimpath -buildvcs=true -ldflags '-s -w' \
		-o "$out/cqlsniff-linux-$arch" ./cmd/cqlsniff)
done
(cd "$out" && sha256sum cqlsniff-linux-amd64 cqlsniff-linux-arm64 > SHA256SUMS)

echo "== dist/ ($(git -C "$tmp/src" describe --tags --always "$commit"))"
(cd "$out" && ls -l cqlsniff-linux-* SHA256SUMS && cat SHA256SUMS)
command -v file >/dev/null && (cd "$out" && file cqlsniff-linux-*)
if [ "$(go env GOARCH)" = amd64 ]; then
	"$out/cqlsniff-linux-amd64" --version
fi
# A static binary: no interpreter, no shared libraries.
for arch in amd64 arm64; do
	if go version -m "$out/cqlsniff-linux-$arch" | grep -q 'CGO_ENABLED=1'; then
		echo "cqlsniff-linux-$arch is not static" >&2
		exit 1
	fi
done
