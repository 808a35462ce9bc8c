#!/usr/bin/env bash
# Set up a fresh clone: Debian data packages, .venv with torch, the six packages (editable), dev tools.
# `make run` / `make test` call it once (and again when a pyproject changes); safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
DEBIAN_PACKAGES=(wordnet-base dataset-fashion-mnist)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install.sh: apt-get not found; install the Debian packages ${missing[*]} by other means," \
            "then rerun" >&2
        exit 1
    fi
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "install.sh: $PYTHON is older than Python 3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --upgrade pip
.venv/bin/python -m pip install torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install \
    -e "packages/intern-app[slurm]" \
    -e "packages/intern-arch[text]" \
    -e "packages/intern-data[app]" \
    -e packages/intern-transfer \
    -e "packages/intern-pretrain[loggers]" \
    -e "packages/intern-bench[loggers]" \
    -r requirements-dev.txt
