#!/bin/sh
# Build the container image's runtime environment: a virtualenv with the hash-checked runtime
# lock and the project wheel, nothing else. The Dockerfile's build stage runs exactly this, and
# tests/ship/test_image_env.py runs it too, so the image environment is tested without Docker.
#
# Usage: scripts/build-env.sh VENV_DIR [SOURCE_DIR]
#   SOURCE_DIR (default .) holds pyproject.toml, requirements-image.lock and the packages.
# The pip cache is used when present (set PIP_NO_CACHE_DIR=1 to skip it, as the Dockerfile does).
set -eu
venv="$1"
src="${2:-.}"
python="${PYTHON:-python3}"

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
# Runtime dependencies: exact versions, every file's hash checked, no resolver surprises.
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes \
  -r "$src/requirements-image.lock"
# The project itself, as a wheel (what users get), without touching the locked set.
dist="$(mktemp -d)"
"$venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$dist" "$src"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "$dist"/acrcheck-*.whl
rm -rf "$dist"
# The lock must cover every dependency of the wheel: fail the build, not the first request.
"$venv/bin/pip" check
