#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml (needs network access to PyPI):
#   requirements.lock        exact pins of runtime + dev dependencies, no hashes: the constraints
#                            file CI and scripts/test.sh install with (-c; hashes there would
#                            forbid the editable install of the project)
#   requirements-image.lock  runtime dependencies only, pinned the same way AND hash-checked:
#                            what scripts/build-env.sh installs into the container image
# tests/ship/test_locks.py fails when they disagree with each other or with pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
compile=(.venv/bin/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
         --no-emit-trusted-host --resolver=backtracking)
"${compile[@]}" --extra dev --output-file requirements.lock pyproject.toml
# The image set is resolved *from* requirements.lock so both files carry the same versions.
"${compile[@]}" --generate-hashes --constraint requirements.lock --output-file requirements-image.lock pyproject.toml
echo "wrote requirements.lock ($(grep -c '^[a-z]' requirements.lock) pins) and requirements-image.lock ($(grep -c '^[a-z]' requirements-image.lock) pins)"
