# syntax=docker/dockerfile:1
#
# The model-analyzer image: the kopf operator, the `model-analyzer` CLI and perf_analyzer, in one image.
# The operator's Deployment runs it with `kopf run ...`; the load-generator and results Jobs that the operator
# creates run it with `model-analyzer perf-point ...` and `model-analyzer copy-results ...`.
#
#   docker build -t ghcr.io/modelanalysis/modelanalysis:0.1.0 .
#   scripts/build-image.sh        # the same with podman, from a base made locally by debootstrap (CI does this)
#
# Base: Debian 13 (trixie), glibc 2.41, Debian's Python 3.13. perf_analyzer builds since tritonclient 2.55
# link GLIBC_2.38 and GLIBCXX_3.4.32 (GCC 13), which Debian 12 (glibc 2.36) does not have. BASE_IMAGE may be
# any trixie image: the default is the official debian:trixie-slim; scripts/build-image.sh passes a base it
# made with `debootstrap --variant=minbase trixie` (what debian:trixie-slim is made from) because no image
# registry is reachable there. A base without python3, venv or CA certificates gets them from Debian's
# archive in the `base` stage; the debootstrap base already has them. Both later stages start from `base`
# (the venv is copied between them); to pin it, give BASE_IMAGE with an @sha256:... digest.
ARG BASE_IMAGE=docker.io/library/debian:trixie-slim

# ---- base: Debian with Python 3 and venv ---------------------------------------------------------------
FROM ${BASE_IMAGE} AS base
RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null || [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# ---- build: a wheel of the project, then a virtual environment with it and the load-generator tools -----
FROM base AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# First the dependencies, exactly as requirements-image.txt pins them (each file by its hash, wheels only; a
# layer that changing the sources does not invalidate), then the project's wheel on top, without resolving
# anything more; `pip check` fails the build if the lock misses a dependency (regenerate it with
# `scripts/build-image.sh --lock`). The lock holds pyproject's [image] extra: tritonclient 2.60, the newest
# wheel that ships the perf_analyzer binary (perf_analyzer 2.60 links only libc, libstdc++, libssl and zlib,
# all in the base), and nvidia-cuda-runtime-cu12, whose libcudart.so.12 perf_analyzer dlopens for CUDA shared
# memory (linked below under the unversioned name too). It is resolved for linux/amd64 and CPython 3.13.
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY requirements-image.txt ./
RUN /opt/venv/bin/pip install --no-deps --only-binary=:all: --require-hashes -r requirements-image.txt

# .dockerignore admits only pyproject.toml, requirements-image.txt, README.md, LICENSE and operator/.
COPY . .
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /dist . \
    && /opt/venv/bin/pip install --no-deps /dist/*.whl \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes --quiet pip \
    && cudart="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/cuda_runtime/lib" \
    && mkdir /opt/venv/nvidia-lib \
    && ln -s "${cudart}/libcudart.so.12" /opt/venv/nvidia-lib/libcudart.so.12 \
    && ln -s libcudart.so.12 /opt/venv/nvidia-lib/libcudart.so

# ---- runtime -------------------------------------------------------------------------------------------
FROM base AS runtime

ARG VERSION=0.1.0
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="model-analyzer" \
      org.opencontainers.image.description="Profile models on NVIDIA Triton Inference Server: CLI, Kubernetes operator and perf_analyzer load generator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="modelanalysis" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# The user the chart and the operator's Jobs run as (runAsUser/runAsGroup 10001). HOME is /tmp, the one
# writable folder when the root filesystem is read-only.
RUN groupadd --system --gid 10001 modelanalysis \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin modelanalysis

COPY --from=build /opt/venv /opt/venv

COPY --chmod=755 scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

# No tritonserver here: a `model-analyzer profile` that names no server starts Triton's own image through the
# Docker Engine API (the original tool's procedure; mount the socket).
ENV PATH=/opt/venv/bin:${PATH} \
    LD_LIBRARY_PATH=/opt/venv/nvidia-lib \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    MODEL_ANALYZER_TRITON_LAUNCH_MODE=docker

# Fail the build, not the first profiling run, if a command is missing or perf_analyzer lacks a library.
RUN model-analyzer --help > /dev/null \
    && kopf --version \
    && python -c "import modelanalysis.kube.handlers" \
    && test -x /opt/venv/bin/perf_analyzer \
    && if ldd /opt/venv/bin/perf_analyzer | grep "not found"; then exit 1; fi

USER 10001:10001
WORKDIR /tmp

# The probes live in the Kubernetes manifests (kopf's /healthz in the chart); a Docker HEALTHCHECK cannot
# serve both the operator and the short-lived Jobs that run this image.
#checkov:skip=CKV_DOCKER_2:Kubernetes probes (kopf /healthz) check the operator; Jobs need no health check
# Flags alone go to model-analyzer (the original tool's `docker run IMAGE --batch ...`); a command runs as
# given. A pod's `command:` replaces the entrypoint, so the operator's pods run exactly what they name.
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["model-analyzer", "--help"]
