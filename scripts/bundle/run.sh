#!/bin/sh
# gpt-oss-webgpu portable bundle launcher (written by scripts/build-bundle.mjs; see README.txt).
#
#   ./run.sh <subcommand> [args...]   gpt-oss-webgpu generate | bench | selftest | render | help ...
#   ./run.sh adapter-report [--compact] [--no-device]
#   ./run.sh env                      print the environment the engine would get, and exit
#   ./run.sh node [args...]           the bundled Node runtime itself
#
# Needs only a POSIX sh, tar, @DECOMPRESSOR@, mkdir, mv and rm, plus the GPU's Vulkan driver
# (libstdc++ too, normally present; a fallback copy is used when it is not). No Node, no network.
set -eu

PAYLOAD='@PAYLOAD@'
PAYLOAD_ID='@PAYLOAD_ID@'
DECOMPRESSOR='@DECOMPRESSOR@'

die() { echo "run.sh: $*" >&2; exit 1; }

case "$0" in
  */*) here=${0%/*} ;;
  *) here=. ;;
esac
here=$(CDPATH= cd -- "$here" && pwd -P) || die "cannot enter the bundle folder"

if command -v uname >/dev/null 2>&1; then
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *) die "this bundle is for linux-x64, not $(uname -s)/$(uname -m)" ;;
  esac
fi

# --- unpack the runtime once: node, dawn.node, the Vulkan loader and the bundled JS -------------
if [ -n "${GPT_OSS_WEBGPU_CACHE:-}" ]; then
  cache=$GPT_OSS_WEBGPU_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  cache=$XDG_CACHE_HOME/gpt-oss-webgpu
elif [ -n "${HOME:-}" ] && [ -d "$HOME" ] && [ -w "$HOME" ]; then
  cache=$HOME/.cache/gpt-oss-webgpu
else
  cache=${TMPDIR:-/tmp}/gpt-oss-webgpu-${USER:-user}
fi
rt=$cache/bundle-$PAYLOAD_ID
if [ ! -f "$rt/.complete" ]; then
  command -v "$DECOMPRESSOR" >/dev/null 2>&1 || die "$DECOMPRESSOR is needed to unpack $PAYLOAD (first run only)"
  command -v tar >/dev/null 2>&1 || die "tar is needed to unpack $PAYLOAD (first run only)"
  mkdir -p "$cache" || die "cannot create the cache folder $cache (set GPT_OSS_WEBGPU_CACHE)"
  tmp=$rt.tmp.$$
  rm -rf "$tmp"
  mkdir "$tmp"
  echo "run.sh: unpacking the runtime into $rt (first run only)" >&2
  if ! "$DECOMPRESSOR" -dc "$here/$PAYLOAD" | tar -xf - -C "$tmp"; then
    rm -rf "$tmp"
    die "unpacking $here/$PAYLOAD failed"
  fi
  : >"$tmp/.complete"
  if [ -f "$rt/.complete" ]; then
    rm -rf "$tmp" # another run unpacked the same payload meanwhile
  else
    rm -rf "$rt"
    mv "$tmp" "$rt" || { rm -rf "$tmp"; die "cannot move the runtime into $rt"; }
  fi
  [ -f "$rt/.complete" ] || die "unpacking into $rt failed"
fi

node=$rt/node/bin/node
[ -x "$node" ] || die "$node is missing: remove $rt and run again"

# --- environment for Dawn and the Vulkan loader ------------------------------------------------
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
export GPT_OSS_WEBGPU_SHADERS="${GPT_OSS_WEBGPU_SHADERS:-$here/shaders}"

# LD_LIBRARY_PATH: the bundled Vulkan loader first, then the caller's, then the driver's folders.
libpath=
add_lib() { libpath=${libpath:+$libpath:}$1; }
if [ "${GPT_OSS_WEBGPU_SYSTEM_VULKAN:-0}" != 1 ]; then add_lib "$rt/lib"; fi
# libstdc++/libgcc_s: the system's when it has them, else the bundled fallback copies.
have_libstdcxx=0
for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /usr/lib /lib; do
  if [ -e "$d/libstdc++.so.6" ]; then have_libstdcxx=1; break; fi
done
if [ "$have_libstdcxx" = 0 ] && [ -d "$rt/lib/fallback" ]; then add_lib "$rt/lib/fallback"; fi
if [ -n "${LD_LIBRARY_PATH:-}" ]; then add_lib "$LD_LIBRARY_PATH"; fi

# The Vulkan driver (ICD) manifest. VK_DRIVER_FILES / VK_ICD_FILENAMES set by the caller win, then
# GPT_OSS_WEBGPU_VK_ICD. Else, when no NVIDIA manifest sits where the loader looks by itself, probe
# the places where container runtimes and driver installers put it, and use the first found.
use_icd() {
  export VK_DRIVER_FILES="$1" VK_ICD_FILENAMES="$1"
  # Its library_path is usually a bare name (libGLX_nvidia.so.0): make the driver's own library
  # folders findable too (after ours and the caller's).
  root=${1%%/share/vulkan/*}
  root=${root%%/etc/vulkan/*}
  root=${root%%/vulkan/icd.d/*}
  root=${root%%/icd.d/*}
  for l in "$root/lib64" "$root/lib" "$root/lib/x86_64-linux-gnu"; do
    if [ "$root" != "${1}" ] && [ -d "$l" ]; then add_lib "$l"; fi
  done
}
if [ -n "${VK_DRIVER_FILES:-}" ] || [ -n "${VK_ICD_FILENAMES:-}" ]; then
  :
elif [ -n "${GPT_OSS_WEBGPU_VK_ICD:-}" ]; then
  [ -f "$GPT_OSS_WEBGPU_VK_ICD" ] || die "GPT_OSS_WEBGPU_VK_ICD=$GPT_OSS_WEBGPU_VK_ICD: no such file"
  use_icd "$GPT_OSS_WEBGPU_VK_ICD"
else
  std_nvidia=
  found_any=
  for d in ${XDG_CONFIG_HOME:-${HOME:-/nonexistent}/.config} ${XDG_CONFIG_DIRS:-/etc/xdg} /etc \
    ${XDG_DATA_HOME:-${HOME:-/nonexistent}/.local/share} \
    ${XDG_DATA_DIRS:-/usr/local/share:/usr/share}; do
    for dd in $(IFS=:; echo $d); do
      for f in "$dd"/vulkan/icd.d/*.json; do
        [ -e "$f" ] || continue
        found_any=1
        case "${f##*/}" in *nvidia*) std_nvidia=$f ;; esac
      done
    done
  done
  if [ -z "$std_nvidia" ]; then
    for f in \
      /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
      /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.x86_64.json \
      /usr/local/nvidia/etc/vulkan/icd.d/nvidia_icd.json \
      /usr/local/nvidia/vulkan/icd.d/nvidia_icd.json \
      /usr/local/nvidia/icd.d/nvidia_icd.json \
      /run/nvidia/driver/usr/share/vulkan/icd.d/nvidia_icd.json \
      /run/nvidia/driver/etc/vulkan/icd.d/nvidia_icd.json \
      /usr/share/nvidia/vulkan/icd.d/nvidia_icd.json \
      /opt/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
      if [ -f "$f" ]; then
        use_icd "$f"
        break
      fi
    done
  fi
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "$found_any" ]; then
    echo "run.sh: warning: no Vulkan driver manifest (ICD) found; install your GPU's driver, or Mesa's" \
      "lavapipe for CPU (mesa-vulkan-drivers), or set VK_DRIVER_FILES=/path/to/icd.json" >&2
  fi
fi
if [ -n "$libpath" ]; then export LD_LIBRARY_PATH="$libpath"; fi

case "${1:-}" in
  node)
    shift
    exec "$node" "$@"
    ;;
  adapter-report)
    shift
    exec "$node" "$rt/app/adapter-report.mjs" "$@"
    ;;
  env)
    echo "bundle=$here"
    echo "runtime=$rt"
    echo "node=$node"
    for v in XDG_RUNTIME_DIR GPT_OSS_WEBGPU_SHADERS LD_LIBRARY_PATH VK_DRIVER_FILES VK_ICD_FILENAMES GPT_OSS_WEBGPU_TOGGLES; do
      eval "val=\${$v:-}"
      echo "$v=$val"
    done
    exit 0
    ;;
  *)
    exec "$node" "$rt/app/cli.mjs" "$@"
    ;;
esac
