#!/bin/sh
# Builds the image the docker-backend tests use (no registry is reachable here): a Debian
# bookworm minbase rootfs with python3, imported into podman. ~90 s. Needs root, debootstrap, podman.
set -eu
IMAGE=${1:-localhost/podium-python:test}
ROOTFS=$(mktemp -d)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3 bookworm "$ROOTFS"
tar -C "$ROOTFS" -c . | podman import --change 'CMD ["python3"]' - "$IMAGE"
