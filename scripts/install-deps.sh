#!/usr/bin/env bash
# Installs everything moescope builds and tests with, from Debian 12's archive.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(
  build-essential cmake pkg-config clang-format
  # The sanitizer and fuzz builds: clang, its runtimes (libFuzzer, sanitizers), OpenMP for clang
  # and llvm-symbolizer for readable stack traces.
  clang libclang-rt-dev libomp-dev llvm
  # Boost.Math (headers only): Student-t and normal quantiles of the statistics.
  libboost-dev
  libeigen3-dev libopenblas-dev libdnnl-dev libhdf5-dev hdf5-tools zlib1g-dev
  # Distributed runs (mpirun -np N moescope ...; docs/distributed.md).
  openmpi-bin libopenmpi-dev
  nlohmann-json3-dev catch2 libsentencepiece-dev sentencepiece libcli11-dev
  # tokenizer.json byte-level BPE: PCRE2 for the pre-tokenizer's regexes, ICU for NFC.
  libpcre2-dev libicu-dev
  qt6-base-dev libqt6opengl6-dev libimgui-dev xvfb xauth libgl1-mesa-dri
  python3-torch python3-numpy python3-scipy python3-h5py python3-matplotlib python3-pandas
  python3-sentencepiece pybind11-dev python3-dev
  python3-nbconvert python3-ipykernel python3-nbformat
)
# Node.js runs Hugging Face's tokenizers as the reference (tests/tokenizer_reference): Debian's
# nodejs and npm, unless a Node.js with npm is there already (a NodeSource nodejs carries its own
# npm and conflicts with Debian's).
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then packages+=(nodejs npm); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
# The tokenizer reference (Hugging Face's tokenizers through Node), at the versions of its lock
# file; the [tokenizer] tests run it.
npm ci --prefix "$(dirname "$0")/../tests/tokenizer_reference" --no-audit --no-fund
