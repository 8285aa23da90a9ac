#!/usr/bin/env bash
# One-time set-up of WebGPU on a Linux machine without a GPU: Mesa's lavapipe
# (software Vulkan), which Dawn's Node binding (`webgpu`) then finds.
# Debian bookworm's own Mesa 22 is too old for Dawn (it lacks
# shaderUniformArrayDynamicIndexing); Mesa 25 from bookworm-backports works.
# Idempotent: running it again changes nothing.
set -euo pipefail

die() { echo "setup-lavapipe: $*" >&2; exit 1; }

[ "$(uname -s)" = "Linux" ] || die "this script is for Linux; on macOS WebGPU uses Metal and needs no set-up."
[ -r /etc/os-release ] || die "cannot read /etc/os-release, so cannot tell which distribution this is."
. /etc/os-release
if [ "${ID:-}" != "debian" ] || [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
  die "this script knows Debian 12 (bookworm) only; found '${PRETTY_NAME:-unknown}'.
Install Mesa >= 24 with its lavapipe Vulkan driver (often 'mesa-vulkan-drivers') and the Vulkan loader ('libvulkan1') from your distribution, then check that /usr/share/vulkan/icd.d/lvp_icd*.json exists."
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "needs root (or sudo) to install packages."
  SUDO="sudo"
fi

list=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "setup-lavapipe: adding the bookworm-backports suite ($list)"
  $SUDO tee "$list" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

installed_from_backports() {
  dpkg-query -W -f='${Version}\n' mesa-vulkan-drivers 2>/dev/null | grep -q 'bpo12'
}

if installed_from_backports && dpkg-query -W libvulkan1 >/dev/null 2>&1; then
  echo "setup-lavapipe: Mesa from bookworm-backports is already installed"
else
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    -t bookworm-backports mesa-vulkan-drivers libvulkan1
fi

ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 \
  || die "mesa-vulkan-drivers is installed but no lavapipe ICD file is in /usr/share/vulkan/icd.d/."
echo "setup-lavapipe: ready ($(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))"
