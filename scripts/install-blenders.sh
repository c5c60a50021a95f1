#!/usr/bin/env bash
# Makes one virtual environment per Blender version the tests run beside the main one (bpy 4.5
# on Python 3.11, installed by pip install -e '.[test]'), each with Brenda's brenda-blender:
#   .venvs/bpy-4.2, .venvs/bpy-5.0   Python 3.11, the bpy wheel only
#   .venvs/py3.13                    Python 3.13, the whole package and its tests (bpy 5.2 LTS)
#   .venvs/bpy-5.3                   Python 3.13, the bpy wheel only
# Python 3.13 is pyenv's ($(pyenv root)/versions/3.13.*) or python3.13 on PATH. An environment
# already made for its version is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
venvs=.venvs
mkdir -p "$venvs"

python313=""
if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.13.*/bin/python3.13; do
        [[ -x $candidate ]] && python313=$candidate
    done
fi
[[ -n $python313 ]] || python313=$(command -v python3.13 || true)
python311=$(command -v python3.11 || command -v python3)

# make_venv NAME PYTHON PACKAGES...: the environment NAME with PACKAGES and brenda-blender.
make_venv() {
    local name=$1 python=$2
    shift 2
    local folder=$venvs/$name wanted="$*"
    if [[ -x $folder/bin/brenda-blender && "$(cat "$folder/.made-with" 2>/dev/null)" == "$wanted" ]]; then
        return
    fi
    echo "install-blenders: making $folder ($wanted)"
    rm -rf "$folder"
    "$python" -m venv "$folder"
    "$folder/bin/python" -m pip install -q --disable-pip-version-check "$@"
    if [[ $wanted != *"-e .[test]"* ]]; then
        "$folder/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
    fi
    echo "$wanted" >"$folder/.made-with"
}

# The environments are made side by side (downloads and unpacking overlap); each logs to its
# own file, shown when it fails.
pids=() names=()
start() {
    local name=$1
    make_venv "$@" >"$venvs/$name.log" 2>&1 &
    pids+=($!) names+=("$name")
}
start bpy-4.2 "$python311" "bpy==4.2.*"
start bpy-5.0 "$python311" "bpy==5.0.*"
if [[ -n $python313 ]]; then
    start py3.13 "$python313" -e ".[test]"
    start bpy-5.3 "$python313" "bpy==5.3.*"
fi
failed=0
for index in "${!pids[@]}"; do
    if ! wait "${pids[$index]}"; then
        echo "install-blenders: making $venvs/${names[$index]} failed:" >&2
        tail -n 20 "$venvs/${names[$index]}.log" >&2
        failed=1
    fi
done
if [[ -z $python313 ]]; then
    echo "install-blenders: no Python 3.13, so Blender 5.2 and 5.3 are not tested: 'pyenv install 3.13' (or your system's python3.13) adds them" >&2
fi
exit "$failed"
