#!/usr/bin/env bash
# Creates .venv (Python 3.10) with the exact locked dependency set from uv.lock, and for each
# orchestrator named, .venv-<name> with the base set plus that extra (pyproject.toml says why
# they are apart: kfp and Airflow conflict, and each moves a few base packages).
# Idempotent: a second run checks the lock and changes nothing (a few seconds).
#   scripts/setup.sh                 .venv only (make run)
#   scripts/setup.sh kfp airflow     also .venv-kfp and .venv-airflow (make test, tfx_pipeline.compile)
#   PYTHON310=/path/to/python3.10 scripts/setup.sh   to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
TOOLS_DIR=.tools

is_python310() { [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

find_python310() {
  # The pyenv shim `python3.10` exists but fails unless pyenv selects 3.10, so each
  # candidate is run, not just found.
  local candidate
  for candidate in "${PYTHON310:-}" "$(command -v python3.10 || true)" \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 \
      /usr/local/bin/python3.10 /usr/bin/python3.10; do
    if is_python310 "$candidate"; then echo "$candidate"; return 0; fi
  done
  return 1
}

if ! PYTHON=$(find_python310); then
  cat >&2 <<'MSG'
error: Python 3.10 was not found.
TFX 1.16 (the newest TFX whose native wheels run here) needs Python 3.10. Install it, e.g.
  pyenv install 3.10.13        or        apt-get install python3.10 python3.10-venv
then run this again, or point PYTHON310 at the interpreter:
  PYTHON310=/path/to/python3.10 scripts/setup.sh
MSG
  exit 1
fi

# uv, pinned, in a project-local tools venv: plain pip cannot resolve tfx 1.16.
if ! { [ -x "$TOOLS_DIR/bin/uv" ] && [ "$("$TOOLS_DIR/bin/uv" --version | cut -d' ' -f2)" = "$UV_VERSION" ]; }; then
  echo "setup: installing uv $UV_VERSION into $TOOLS_DIR"
  "$PYTHON" -m venv "$TOOLS_DIR"
  "$TOOLS_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

# --frozen: install exactly what uv.lock says, never re-resolve. The project itself is
# rebuilt each time (a few seconds): its editable install maps each top-level package by
# name, and uv would keep a stale map when a package is added (tfx_pipeline importing a new
# package then fails in Airflow's worker, which does not run from the repo's root).
export UV_PYTHON_DOWNLOADS=never
SYNC=(sync --frozen --reinstall-package session-recommender --python "$PYTHON" --quiet)
"$TOOLS_DIR/bin/uv" "${SYNC[@]}"
echo "setup: .venv ready ($(.venv/bin/python --version), locked set from uv.lock)"
for extra in "$@"; do
  UV_PROJECT_ENVIRONMENT=".venv-$extra" "$TOOLS_DIR/bin/uv" "${SYNC[@]}" --extra "$extra"
  echo "setup: .venv-$extra ready (the locked set with the '$extra' extra)"
done
