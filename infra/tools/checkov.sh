#!/usr/bin/env bash
# Runs checkov's Bicep checks on infra/ from a private virtual environment.
#
# checkov pins its own dependency versions (an older pycep-parser among them) that clash with the
# app's, so it lives in <repo>/.venv-checkov, created on first use and reused afterwards. The venv
# ignores itself for git (a '*' .gitignore inside it, as Python 3.13's venv does).
#
#   infra/tools/checkov.sh                 scan infra/, print failures only
#   infra/tools/checkov.sh -o json         extra arguments replace that terse output (full report)
#   infra/tools/checkov.sh --install-only  just create or update the venv
#
# graph-permissions.bicep and app-roles.bicep are not scanned: checkov's pycep-parser cannot read the `extension`
# keyword, and the file holds only Microsoft Graph resources, which checkov has no checks for.
# The scan runs offline: no guideline download, no update check.
set -euo pipefail

CHECKOV_VERSION="3.3.30"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
PYTHON="${PYTHON:-python3}"

installed_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null || true
}

if [ "$(installed_version)" != "$CHECKOV_VERSION" ]; then
  echo "checkov.sh: installing checkov $CHECKOV_VERSION into $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  printf '*\n' > "$VENV/.gitignore"
  log="$VENV/pip-install.log"
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
fi

if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

export CKV_SKIP_PACKAGE_UPDATE_CHECK=True BC_SKIP_MAPPING=TRUE
if [ "$#" -eq 0 ]; then
  set -- --quiet --compact
fi
exec "$VENV/bin/checkov" --framework bicep --skip-download \
  --directory "$ROOT/infra" --skip-path '(graph-permissions|app-roles)\.bicep$' "$@"
