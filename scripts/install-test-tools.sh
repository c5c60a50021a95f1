#!/usr/bin/env bash
# Installs the system programs the tests drive: OpenSSH's sshd for brenda-tool's nodes, rsync,
# the shell linter that checks the node image script, and Chromium, which shows brenda-work's
# report headless. Does nothing where they are present.
# Then the Blenders of the version matrix (install-blenders.sh).
set -euo pipefail
missing=()
command -v sshd >/dev/null 2>&1 || [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
fi
# One virtual environment per other Blender version the tests run (see that script).
"$(dirname "$0")/install-blenders.sh"
