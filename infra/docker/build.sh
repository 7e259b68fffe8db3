#!/usr/bin/env bash
# Build step of prefect.yaml: prints the image tag a deployment runs (its last line is
# what `{{ image.stdout }}` holds). Builds only with BOLT_BUILD_IMAGE=1 and pushes only
# with BOLT_PUSH_IMAGE=1, so `prefect deploy` works on a machine without Docker.
#   bash infra/docker/build.sh gpu|cpu
set -euo pipefail
kind=${1:?usage: build.sh gpu|cpu}
cd "$(dirname "$0")/../.."
registry=${BOLT_IMAGE_REGISTRY:-ghcr.io/bolt-pipeline}
version=$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
tag="$registry/bolt-$kind:$version"
if [ "${BOLT_BUILD_IMAGE:-0}" = 1 ]; then
  docker build -f "infra/docker/$kind.Dockerfile" -t "$tag" . >&2
  if [ "${BOLT_PUSH_IMAGE:-0}" = 1 ]; then docker push "$tag" >&2; fi
fi
echo "$tag"
