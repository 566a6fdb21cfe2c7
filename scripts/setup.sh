#!/usr/bin/env bash
# Set up a fresh machine for mdm: OpenSSH (for the lab fleet) and a virtualenv in .venv.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
  echo "setup: installing openssh-server and openssh-client (for the lab fleet)" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    openssh-server openssh-client >/dev/null
fi

# Debian packages the tests and the demo use, installed in one go when any is missing:
# chromium opens the rollout report in a real headless browser; aapt packages a manifest
# against Android's framework resources, zipalign aligns and apksigner signs the real
# APKs the tests and demo make (scripts/make-apks.sh).
if ! command -v chromium >/dev/null 2>&1 || ! command -v aapt >/dev/null 2>&1 \
    || ! command -v apksigner >/dev/null 2>&1 || ! command -v zipalign >/dev/null 2>&1 \
    || [ ! -f /usr/share/android-framework-res/framework-res.apk ]; then
  echo "setup: installing chromium, aapt, zipalign, apksigner and android-framework-res" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium aapt zipalign apksigner android-framework-res openssl >/dev/null
fi

# PostgreSQL's server binaries: the tests run the store against a throw-away cluster on
# loopback as well as against SQLite (scripts/pgcluster.sh starts it).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "setup: installing postgresql (the tests start a throw-away cluster on loopback)" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    postgresql >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then  # Debian splits venv out of python3
    rm -rf .venv
    echo "setup: installing python3-venv" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
  fi
fi
stamp=.venv/.mdm-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing mdm and its test tools into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# Byte-compile our own package too, so start-up is fast even where PYTHONDONTWRITEBYTECODE is set.
.venv/bin/python -m compileall -q mdm >/dev/null
