#!/usr/bin/env bash
# Turn a stock Ubuntu 24.04 LTS EC2 instance into a Brenda node image.
#
# Run as root on the instance, from a folder holding this script, brenda-node.service,
# brenda-sudoers and the Brenda wheel or source folder to install:
#   sudo ./build-node-image.sh ./brenda-0.1.0-py3-none-any.whl
# For GPU nodes (g4dn, g5, g6: jobs pushed with --device CUDA or OPTIX), on a GPU instance:
#   sudo NVIDIA_DRIVER=1 ./build-node-image.sh ./brenda-0.1.0-py3-none-any.whl
# installs Ubuntu's recommended NVIDIA server driver (nvidia-smi must then list the GPU).
# Several Blenders, each rendering the jobs whose files its version saved (BLENDERS):
#   sudo BLENDER_VERSIONS="4.5.5 5.2.4" ./build-node-image.sh ./brenda-0.1.0-py3-none-any.whl
# Each release is checked against the SHA-256 blender.org publishes beside it.
# Then make the image (from your machine): aws ec2 create-image --instance-id i-... --name brenda-node
# and put its id in AMI_ID. The image starts nothing by itself: a node's user data writes
# /etc/brenda/node.env and starts brenda-node.service.
set -euo pipefail

BLENDER_VERSIONS="${BLENDER_VERSIONS:-${BLENDER_VERSION:-4.5.5}}"
NVIDIA_DRIVER="${NVIDIA_DRIVER:-0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BRENDA_WHEEL_OR_SOURCE" >&2
    exit 2
fi
package="$1"
if [[ $(id -u) -ne 0 ]]; then
    echo "$0: run as root (sudo)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    python3 python3-venv ca-certificates curl xz-utils rsync \
    libxi6 libxxf86vm1 libxfixes3 libxrender1 libxkbcommon0 libsm6 libgl1 libegl1

if [[ "$NVIDIA_DRIVER" == 1 ]]; then
    echo "Installing the NVIDIA driver"
    apt-get install -y -q --no-install-recommends ubuntu-drivers-common
    ubuntu-drivers install --gpgpu
    echo "nvidia-smi lists the GPU once the image boots; check it before imaging"
fi

# install_blender VERSION: the official Linux release in /opt/blender-VERSION, checked.
install_blender() {
    local version=$1 series=${1%.*} folder=/opt/blender-$1 scratch
    local name="blender-${version}-linux-x64.tar.xz"
    local release="https://download.blender.org/release/Blender${series}"
    echo "Installing Blender ${version}"
    scratch="$(mktemp -d)"
    curl -fsSL --retry 3 -o "$scratch/$name" "$release/$name"
    curl -fsSL --retry 3 -o "$scratch/sums" "$release/blender-${version}.sha256"
    grep " ${name}\$" "$scratch/sums" >"$scratch/wanted"
    (cd "$scratch" && sha256sum --check --quiet wanted)
    rm -rf "$folder"
    mkdir -p "$folder"
    tar -xJf "$scratch/$name" -C "$folder" --strip-components=1
    rm -rf "$scratch"
    "$folder/blender" --version | head -n 1
}

blenders=()
for version in $BLENDER_VERSIONS; do
    install_blender "$version"
    blenders+=("/opt/blender-$version/blender")
done
ln -sf "${blenders[0]}" /usr/local/bin/blender
install -d -m 0755 /etc/brenda
# Read by brenda-node.service before the node's own settings (user data may override it).
(IFS=,; echo "BRENDA_BLENDERS=${blenders[*]}") >/etc/brenda/blenders.env

echo "Installing Brenda"
id -u brenda >/dev/null 2>&1 || useradd --system --home-dir /var/lib/brenda --shell /usr/sbin/nologin brenda
python3 -m venv /opt/brenda/venv
/opt/brenda/venv/bin/pip install --quiet --upgrade pip
/opt/brenda/venv/bin/pip install --quiet "$package"
install -m 0644 "$HERE/brenda-node.service" /etc/systemd/system/brenda-node.service
install -m 0440 "$HERE/brenda-sudoers" /etc/sudoers.d/brenda
visudo -cf /etc/sudoers.d/brenda
systemctl daemon-reload

echo "Cleaning up for imaging"
apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/* /root/.cache
rm -f /etc/ssh/ssh_host_*
truncate -s 0 /var/log/*.log 2>/dev/null || true
cloud-init clean --logs
echo "Done: stop this instance and create an image from it."
