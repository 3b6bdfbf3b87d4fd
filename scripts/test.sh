#!/usr/bin/env bash
# Install everything the test suite needs into a virtualenv and run the whole suite.
# This is the README's test command and what CI runs (.ci/run). Idempotent: a second
# run reuses the virtualenv. Set ADCORE_TEST_VENV to choose where it lives.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${ADCORE_TEST_VENV:-.venv-test}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip

# torch is pinned: 2.13.0 is the CPU build this project tests against (any other
# version pulls a multi-GB CUDA build).
EDITABLE=(-e ".[test,server,jobs,postgres,parquet,pandas,plot,lint,reference,tracing,deploy-check]")
for plugin in adcore-sklearn adcore-pyod adcore-torch adcore-kafka adcore-dask adcore-mlflow plugins/example plugins/template; do
    [ -f "$plugin/pyproject.toml" ] && EDITABLE+=(-e "./$plugin[test]")
done
if [ -f adcore-torch/pyproject.toml ]; then
    python -m pip install -q "torch==2.13.0"
fi
python -m pip install -q "${EDITABLE[@]}"

# System packages some service tests use (PostgreSQL ships with the machine; Chromium and
# redis-server do not).
if [ -f scripts/system-deps.sh ]; then
    bash scripts/system-deps.sh
fi

# Each distribution's tests run in their own pytest session: they are separate projects
# (their own conftest.py, test modules with the same basenames), as they are on PyPI.
TEST_PATHS=(tests)
for dir in adcore-*/tests plugins/*/tests; do
    [ -d "$dir" ] && TEST_PATHS+=("$dir")
done
failed=()
for path in "${TEST_PATHS[@]}"; do
    echo "== pytest $path"
    python -m pytest "$path" "$@" || failed+=("$path")
done
ruff check . || failed+=("ruff")
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
