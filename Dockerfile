# syntax=docker/dockerfile:1
# gpt-oss-webgpu server image. Model weights never go into it: the Hugging Face cache is the
# volume at $HF_HOME (/data/huggingface), and a local checkpoint folder can be mounted anywhere
# and passed as --model /path.
#
#   docker build -t gpt-oss-webgpu:0.1.0 .                                  # NVIDIA (default target)
#   docker build --target lavapipe -t gpt-oss-webgpu:0.1.0-lavapipe .       # CPU smoke runs only
#
# NVIDIA: the image carries the Vulkan loader; the NVIDIA container toolkit mounts the driver's
# Vulkan ICD (libGLX_nvidia.so.0 + /etc/vulkan/icd.d/nvidia_icd.json) when the capabilities below
# include `graphics`. BASE must be Debian bookworm with Node >= 20 in /usr/local (the official
# node image); scripts/test-container.sh passes a locally built one.
ARG BASE=docker.io/library/node:20-bookworm-slim

# --- build: compile the TypeScript ------------------------------------------------------------
FROM ${BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: the root's `prepare` would compile before the sources are here; webgpu's
# only clears a macOS quarantine flag, and esbuild's and deno's set up tools this build never runs.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN node_modules/.bin/tsc -p tsconfig.json

# --- deps: production node_modules only -------------------------------------------------------
FROM ${BASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# webgpu ships dawn.node for five platforms (130 MB): only this one's is kept.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && keep="$(node -p 'process.platform + "-" + process.arch')" \
 && find node_modules/webgpu/dist -mindepth 1 -maxdepth 1 ! -name "$keep" -exec rm -rf {} + \
 && test -f "node_modules/webgpu/dist/$keep/dawn.node"

# --- runtime: what every target shares ----------------------------------------------------------
FROM ${BASE} AS runtime
# libvulkan1: the loader Dawn opens. libx11-6, libxext6, libglvnd0: what the NVIDIA driver's
# Vulkan library (libGLX_nvidia.so.0, mounted by the toolkit) links against, even headless.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 libx11-6 libxext6 libglvnd0 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 gptoss \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/gptoss --create-home --shell /usr/sbin/nologin gptoss \
 && mkdir -p /data/huggingface && chown 10001:10001 /data/huggingface
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY shaders ./shaders
# the chat page at GET / (served from /app/ui, beside dist/)
COPY ui ./ui
ENV NODE_ENV=production \
    HF_HOME=/data/huggingface \
    XDG_CACHE_HOME=/home/gptoss/.cache \
    XDG_RUNTIME_DIR=/tmp \
    GPT_OSS_HOST=0.0.0.0 \
    GPT_OSS_PORT=8000 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
USER 10001:10001
# The o200k_harmony tokenizer.json is generated here once instead of at every start (about a
# second). The rest of $XDG_CACHE_HOME is for the Vulkan drivers' shader caches.
RUN node --input-type=module -e "import { ensureHarmonyTokenizerJson } from '/app/dist/tokenizer/tokenizer-json.js'; ensureHarmonyTokenizerJson();" \
 && test -n "$(find "$XDG_CACHE_HOME" -name tokenizer.json)"
# Downloads land in the volume, never in a layer, even when none is mounted.
VOLUME ["/data/huggingface"]
EXPOSE 8000
# Node handles SIGTERM itself (graceful shutdown); no init process is needed in front of it.
ENTRYPOINT ["node", "/app/bin/gpt-oss-webgpu.js"]
CMD ["serve"]

# --- lavapipe: Mesa's software Vulkan driver, for CPU smoke runs (opt-in) -------------------------
FROM runtime AS lavapipe
USER root
# bookworm's Mesa 22 is too old for Dawn: lavapipe comes from bookworm-backports.
RUN echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/backports.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends -t bookworm-backports mesa-vulkan-drivers \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
USER 10001:10001

# --- nvidia: the default target (last stage) ----------------------------------------------------
FROM runtime AS nvidia
