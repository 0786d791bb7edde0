#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (run as root, or with sudo available): installs what is
# missing and skips what is there. System packages: ngspice, libngspice0, espeak-ng,
# python3-venv. Then a virtualenv in .venv with this package installed editable, with its test
# extras. Re-running after a change of pyproject.toml or of this script reinstalls; otherwise
# it does nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in ngspice libngspice0 espeak-ng python3-venv; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
else
  command -v ngspice >/dev/null 2>&1 || {
    echo "setup: ngspice is missing and this is not a Debian system; install ngspice (>= 39)," \
         "libngspice and espeak-ng with your package manager, then re-run." >&2
    exit 1
  }
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version 2>&1)"
  "$python" -m venv .venv
fi
stamp=.venv/.rram-cosim-installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing rram-cosim and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  # test-only: tonic's N-MNIST reader as a cross-check; without its dependencies (its package
  # imports a whole dataset zoo), the test loads only its numpy-only io module
  .venv/bin/python -m pip install -q --no-deps "tonic==1.7.0"
  echo "$want" > "$stamp"
fi
