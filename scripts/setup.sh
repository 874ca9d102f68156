#!/usr/bin/env bash
# Set up a development machine (Debian 12 / Ubuntu): the system libraries the real Triton server and
# perf_analyzer need, then a virtual environment at .venv with the project, its CPU Triton and dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  libb64-0d       # perf_analyzer (tritonclient 2.50) links libb64
  libpython3.11   # the Python backend's stub links libpython3.11.so.1.0 (models then use .venv's packages)
  prometheus      # a real Prometheus server for the DCGM memory-utilization tests
  openssl         # certificates for the test cluster
  chromium        # headless, for the HTML report's browser test (tests/browser)
  podman buildah runc debootstrap  # the project's image, built and run by the image tests (scripts/build-image.sh)
)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[local]' --group dev
echo "Set up: .venv/bin/model-analyzer is ready."
