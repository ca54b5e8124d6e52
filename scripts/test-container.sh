#!/usr/bin/env bash
# Builds the Dockerfile for real and runs it: /health must answer 200 and a chat completion must
# come back from synthetic:tiny on lavapipe (Mesa's CPU Vulkan driver) inside the container.
#
# No container registry is needed: the base image (Debian bookworm plus this machine's Node >= 20
# in /usr/local, laid out like the official node:20-bookworm-slim) is built with debootstrap from
# the Debian mirror and imported into podman, then passed as --build-arg BASE. Needs root on
# Debian/Ubuntu; installs podman, runc and debootstrap when missing. Prints the image sizes, the
# time from `podman run` to /health 200, and its own duration.
#
#   scripts/test-container.sh            # reuses the base image when it exists
#   GPT_OSS_CONTAINER_FRESH=1 scripts/test-container.sh   # rebuilds the base too
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s%N)

die() { echo "test-container: $*" >&2; exit 1; }
say() { echo "test-container: $*" >&2; }
seconds_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

[ "$(id -u)" = 0 ] || die "run as root (podman builds and runs rootful here, debootstrap needs root)"
command -v node >/dev/null || die "node is needed (its binary becomes the base image's Node)"
node_version=$(node -p 'process.versions.node')
[ "${node_version%%.*}" -ge 20 ] || die "node >= 20 is needed, this is $node_version"

need=()
for tool in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

version=$(node -p 'require("./package.json").version')
work=${GPT_OSS_CONTAINER_WORK:-/var/tmp/gpt-oss-webgpu-container}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base_image=localhost/gpt-oss-webgpu-base:bookworm-node$node_version
image=localhost/gpt-oss-webgpu:$version
smoke_image=localhost/gpt-oss-webgpu:$version-lavapipe
container=gpt-oss-webgpu-test-$$
mkdir -p "$work"

# What is known to work in sandboxes like this one: runc, cgroupfs, no default ulimits (raising
# RLIMIT_NOFILE is not permitted here), host networking. A private file: the system's is untouched.
export CONTAINERS_CONF=$work/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF

# --- base image -------------------------------------------------------------------------------
if [ -n "${GPT_OSS_CONTAINER_FRESH:-}" ]; then podman rmi -f "$base_image" >/dev/null 2>&1 || true; fi
if podman image exists "$base_image"; then
  say "base image $base_image exists (GPT_OSS_CONTAINER_FRESH=1 rebuilds it)"
else
  t=$(date +%s%N)
  rootfs=$work/rootfs
  rm -rf "$rootfs"
  say "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || die "debootstrap failed; see $work/debootstrap.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # Node and npm where the official node image has them.
  node_bin=$(readlink -f "$(command -v node)")
  npm_dir=$(npm root -g)/npm
  [ -f "$npm_dir/bin/npm-cli.js" ] || die "npm not found at $npm_dir"
  install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # This machine's trusted roots, so `npm ci` in the build reaches the registry through whatever
  # TLS-inspecting egress this network has (the official base relies on Node's built-in roots).
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/build-host-roots.pem"
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/build-host-roots.pem' \
    --change 'CMD ["node"]' - "$base_image" >/dev/null
  rm -rf "$rootfs"
  say "base image built in $(seconds_since "$t") s"
fi

# --- build --------------------------------------------------------------------------------------
build() { # target tag
  local t log=$work/build-$1.log
  t=$(date +%s%N)
  podman build --network=host --build-arg "BASE=$base_image" --target "$1" -t "$2" . >"$log" 2>&1 ||
    { tail -30 "$log" >&2; die "podman build --target $1 failed; see $log"; }
  say "built $2 (target $1) in $(seconds_since "$t") s"
}
build nvidia "$image"
build lavapipe "$smoke_image"
size_of() { podman image inspect --format '{{.Size}}' "$1"; }
mb() { awk -v n="$1" 'BEGIN { printf "%.0f", n / 1e6 }'; }

# --- run ------------------------------------------------------------------------------------------
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cleanup() { podman rm -f "$container" >/dev/null 2>&1 || true; }
trap cleanup EXIT
t=$(date +%s%N)
podman run -d --name "$container" --network=host -e GPT_OSS_PORT="$port" "$smoke_image" \
  serve --model synthetic:tiny --context 1024 >/dev/null
health=000
for _ in $(seq 1 1200); do
  health=$(node -e 'fetch(process.argv[1]).then(r=>console.log(r.status),()=>console.log("000"))' "http://127.0.0.1:$port/health")
  [ "$health" = 200 ] && break
  [ "$(podman inspect --format '{{.State.Running}}' "$container")" = true ] || break
  sleep 0.1
done
start_to_health=$(seconds_since "$t")
[ "$health" = 200 ] || { podman logs "$container" >&2 || true; die "/health answered $health"; }
say "/health 200 after $start_to_health s"

uid=$(podman exec "$container" id -u)
[ "$uid" != 0 ] || die "the server runs as root"
podman exec "$container" sh -c 'touch "$HF_HOME/.writable" && rm "$HF_HOME/.writable"' || die "\$HF_HOME is not writable by uid $uid"

# The chat completion, checked for shape and for the token budget it was given.
node --input-type=module -e '
  const res = await fetch(process.argv[1], {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "synthetic:tiny", messages: [{ role: "user", content: "Hello" }], max_tokens: 8, seed: 1, ignore_eos: true }),
  });
  const body = await res.json();
  const ok = res.status === 200 && body.object === "chat.completion" && body.model === "synthetic:tiny" &&
    typeof body.choices?.[0]?.message?.content === "string" && body.usage?.completion_tokens === 8;
  console.error(`test-container: chat completion ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  process.exit(ok ? 0 : 1);
' "http://127.0.0.1:$port/v1/chat/completions" || { podman logs "$container" >&2; die "the chat completion failed"; }

# SIGTERM: the server closes and exits 0.
podman stop -t 60 "$container" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$container")
[ "$code" = 0 ] || { podman logs "$container" >&2; die "exit code $code after SIGTERM"; }

cat <<EOF
test-container: passed
  image $image: $(mb "$(size_of "$image")") MB ($(mb "$(size_of "$base_image")") MB of it the base image)
  image $smoke_image: $(mb "$(size_of "$smoke_image")") MB
  podman run -> /health 200 (synthetic:tiny, lavapipe): $start_to_health s
  script: $(seconds_since "$started") s
EOF
