#!/usr/bin/env bash
# Installs what SpecBench needs to build, run and test, checking first so that a second run does
# nothing. Used by the README's two commands and by .ci/run.
#   - Debian packages (apt): GNU readline (the REPL links it), ncursesw (the dashboard), zlib (NumPy's
#     .npz archives), HDF5 (Keras files' weights), OpenBLAS
#     (the fast backend, loaded at run time), tmux for the terminal tests, strace for the save
#     path's fault-injection tests, Python for the interop tests.
#   - Python packages (pip): numpy, safetensors, onnx and onnxruntime, keras and h5py, which the
#     interop tests run for real, and jax (CPU), which the jax engine's worker uses; torch (large) only under
#     CI=true or SPECBENCH_WITH_TORCH=1, for the tests against real PyTorch (with laplace-torch and
#     onnxscript, the ONNX exporter's own dependency). Where the
#     system Python refuses pip installs, they go into a venv at .venv/ (the tests look there).
# Prints what it installs; exits non-zero when the Swift build itself cannot work, and, under
# CI=true, when anything the tests need could not be installed (CI never skips a test).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# --- Swift ---------------------------------------------------------------------------------
if ! command -v swift >/dev/null 2>&1; then
  say "swift is not on PATH: install Swift 6.0 or newer from swift.org, then run this again"
  exit 1
fi

# --- Debian packages ---------------------------------------------------------------------------
# Each entry: a command or file whose presence shows the package is there, then the package.
apt_needed=()
need_apt() { apt_needed+=("$1"); }
[ -f /usr/include/readline/readline.h ] || need_apt libreadline-dev   # the REPL's line editor
[ -f /usr/include/ncursesw/curses.h ] || need_apt libncurses-dev       # the dashboard (ncursesw)
[ -f /usr/include/zlib.h ] || need_apt zlib1g-dev                      # .npz archives (inflate, CRC-32)
[ -f /usr/include/hdf5/serial/hdf5.h ] || need_apt libhdf5-dev       # Keras files (model.weights.h5)
# The fast backend's matrix products: OpenBLAS, which SpecBench loads when the backend is first used.
compgen -G '/usr/lib/*/libopenblas.so.0' >/dev/null || compgen -G '/lib/*/libopenblas.so.0' >/dev/null || need_apt libopenblas0
command -v tmux >/dev/null 2>&1 || need_apt tmux   # the terminal tests drive the real program in tmux
command -v strace >/dev/null 2>&1 || need_apt strace   # the save tests inject faults with strace
command -v python3 >/dev/null 2>&1 || need_apt python3
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt python3-venv
python3 -m pip --version >/dev/null 2>&1 || need_apt python3-pip

missing_tools() { for tool in tmux strace; do command -v "$tool" >/dev/null 2>&1 || printf '%s ' "$tool"; done; }
if ((${#apt_needed[@]})); then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      say "missing Debian packages: ${apt_needed[*]}; install them as root (apt-get install ${apt_needed[*]})"
      apt_needed=()
    fi
  fi
  if ((${#apt_needed[@]})); then
    say "installing Debian packages: ${apt_needed[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_needed[@]}" >/dev/null
  fi
fi

if [ "${CI:-}" = true ] && [ -n "$(missing_tools)" ]; then
  say "CI=true: the tests need $(missing_tools)but they could not be installed; failing"
  exit 1
fi

# --- Python packages for the interop tests ------------------------------------------------------
# jax is pinned to the version the jax engine's worker is tested with (docs/jax.md); optax only for
# the standalone JAX peer that Benchmarks/peers.sh runs beside the jax backend.
python_packages=(numpy safetensors onnx onnxruntime "jax[cpu]==0.10.2" "optax==0.2.8" "keras==3.15.1" h5py)
# (keras imports TensorFlow unless told its backend: the tests run it on jax.)
check='import os; os.environ["KERAS_BACKEND"] = "jax"; import numpy, safetensors.numpy, onnx, onnxruntime, jax, optax, keras, h5py'

# Installs packages ($2…) unless `python -c "$1"` already works, into the Python that has the
# others (.venv/ when it exists), else the system Python, else a new .venv/. Returns 1 on failure.
install_python() {
  local test=$1
  shift
  local python
  for python in .venv/bin/python3 python3; do
    if command -v "$python" >/dev/null 2>&1 && "$python" -c "$test" >/dev/null 2>&1; then return 0; fi
  done
  command -v python3 >/dev/null 2>&1 || return 1
  say "installing Python packages: $*"
  if [ ! -x .venv/bin/python3 ]; then
    if python3 -m pip install -q --disable-pip-version-check "$@" >/dev/null 2>&1 && python3 -c "$test" >/dev/null 2>&1; then
      return 0
    fi
    say "the system Python refused; installing into .venv/ instead"
    python3 -m venv .venv >/dev/null 2>&1 || return 1
  fi
  .venv/bin/python3 -m pip install -q --disable-pip-version-check "$@" >/dev/null 2>&1 && .venv/bin/python3 -c "$test" >/dev/null 2>&1
}

if ! install_python "$check" "${python_packages[@]}"; then
  say "could not install ${python_packages[*]}; the Python interop tests will be skipped (and say so)"
  if [ "${CI:-}" = true ]; then say "CI=true: the tests need them; failing"; exit 1; fi
  exit 0
fi

# Real PyTorch, the oracle of the L-BFGS and export tests (docs/testing.md): about 5 GB with its
# CUDA libraries, though it runs on the CPU, so only under CI=true or SPECBENCH_WITH_TORCH=1;
# without it those tests skip and say so.
if [ "${CI:-}" = true ] || [ "${SPECBENCH_WITH_TORCH:-}" = 1 ]; then
  # laplace-torch too: the Laplace posterior's tests compare against it (docs/bayes.md); and
  # onnxscript, which torch.onnx.export's default (dynamo) exporter needs (docs/interchange.md).
  if ! install_python 'import torch, safetensors.torch, laplace, onnxscript' torch laplace-torch onnxscript; then
    say "could not install torch; the tests against real PyTorch will be skipped (and say so)"
    if [ "${CI:-}" = true ]; then say "CI=true: the tests need it; failing"; exit 1; fi
  fi
fi
exit 0
