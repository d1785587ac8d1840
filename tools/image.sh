#!/usr/bin/env bash
# Build the container image (Dockerfile) with whatever engine works on this machine:
# docker (when its daemon answers), podman, or buildah. Prints what it did.
#
#   tools/image.sh [TAG]     default tag: streamproc:<version from pyproject.toml>
#
# Exits 0 with a message, having built nothing, when no engine can build here (no engine
# installed, or a Docker client without a daemon) or when the base image cannot be pulled
# (machines that reach only package registries): say so, skip, and let `make helm-check`
# keep validating the chart. Any other build failure is an error.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
tag=${1:-streamproc:$version}

engine=""
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
elif command -v podman >/dev/null 2>&1; then
  engine=podman
elif command -v buildah >/dev/null 2>&1; then
  engine=buildah
fi
if [[ -z $engine ]]; then
  echo "image.sh: no container engine can build here (docker without a running daemon, no podman, no buildah): skipped" >&2
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "image.sh: building $tag with $engine" >&2
case $engine in
  buildah) cmd=(buildah bud -t "$tag" .) ;;
  *) cmd=("$engine" build -t "$tag" .) ;;
esac
if "${cmd[@]}" 2>&1 | tee "$log" >&2; then
  echo "image.sh: built $tag"
  exit 0
fi
if grep -qiE "pull access denied|failed to resolve|manifest unknown|dial tcp|no such host|i/o timeout|TLS handshake timeout|connection refused|error pulling image|failed to pull" "$log"; then
  echo "image.sh: the base image could not be pulled (this machine reaches only package registries?): skipped" >&2
  exit 0
fi
echo "image.sh: build failed" >&2
exit 1
