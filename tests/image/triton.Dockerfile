# A stand-in for NVIDIA's Triton container, for the docker launch mode's tests: NGC (nvcr.io) cannot be reached
# here, so this image holds the same tritonserver the other tests run (the nvidia-pytriton wheel's 2.51.0, CPU
# only, with the Python backend) at the paths NVIDIA's image uses, and states its versions in the same variables
# (release 24.10 shipped server 2.51.0). scripts/build-image.sh --test-triton builds it and tags it as
# nvcr.io/nvidia/tritonserver:24.10-py3, so `--triton-version 24.10-py3` finds it without a pull.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# The Python backend's stub links the wheel's own libpython3.13, which expects a standard library with _struct as
# a module of its own; Debian's has it built into libpython3.13 instead, so the stub gets Debian's library (the
# same CPython 3.13 ABI) under the wheel's file name. Models import numpy from /opt/venv, the stub's python3.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpython3.13 \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: numpy==2.5.5 \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: --no-deps \
        nvidia-pytriton==0.7.0 \
    && server=/opt/venv/lib/python3.13/site-packages/pytriton/tritonserver \
    && cp "$server/python_backend_stubs/3.13/triton_python_backend_stub" "$server/backends/python/" \
    && ln -s "$server" /opt/tritonserver \
    && for lib in /opt/venv/lib/python3.13/site-packages/nvidia_pytriton.libs/libpython3-*.13.so.1.0; do \
        cp /usr/lib/x86_64-linux-gnu/libpython3.13.so.1.0 "$lib"; done

ENV PATH=/opt/tritonserver/bin:/opt/venv/bin:${PATH} \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.13/site-packages/nvidia_pytriton.libs \
    NVIDIA_TRITON_SERVER_VERSION=24.10 \
    TRITON_SERVER_VERSION=2.51.0
# Fail the build, not the tests, if the server or the Python backend's stub lacks a library.
RUN if ldd /opt/tritonserver/bin/tritonserver /opt/tritonserver/backends/python/triton_python_backend_stub \
        | grep "not found"; then exit 1; fi
CMD ["tritonserver", "--help"]
