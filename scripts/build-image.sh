#!/usr/bin/env bash
# Build the project's image (Dockerfile) with podman into local storage, as CI does, without any image
# registry: the Debian trixie base is made here by debootstrap and passed as BASE_IMAGE.
#
#   scripts/build-image.sh             # build if needed; prints the image name last, on stdout
#   scripts/build-image.sh --check     # exit 0 and print the name if the image is up to date, else exit 1
#   scripts/build-image.sh --force     # rebuild the image (not the base) even if it is up to date
#   scripts/build-image.sh --lock      # rewrite requirements-image.txt (after changing dependencies)
#   scripts/build-image.sh --test-triton  # the docker launch mode tests' Triton image (tests/image/triton.Dockerfile),
#                                         # tagged nvcr.io/nvidia/tritonserver:24.10-py3; prints its name last
#
# The image is localhost/modelanalysis:<key>, also tagged localhost/modelanalysis:dev, where <key> hashes
# everything it is built from (the build context the .dockerignore admits, the Dockerfile, the base's key).
# The same inputs give the same key, so a second run returns at once. Both the base and the image are also
# kept as archives in ${MODELANALYSIS_CACHE:-~/.cache/modelanalysis}/images/, so a CI that keeps that folder
# but not podman's storage loads them instead of building. Needs root (debootstrap, podman's storage); the
# Debian packages it needs (podman, buildah, runc, debootstrap) are installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --force) mode=force ;;
  --lock) mode=lock ;;
  --test-triton) mode=test-triton ;;
  -h | --help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

log() { echo "build-image: $*" >&2; }

export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/containers.conf}"
cache_dir="${MODELANALYSIS_CACHE:-$HOME/.cache/modelanalysis}/images"
repository=localhost/modelanalysis
ca_bundle=/etc/ssl/certs/ca-certificates.crt

# --- what the base and the image are built from, and their keys -------------------------------------------
suite=trixie
mirror=http://deb.debian.org/debian
base_packages=python3,python3-venv,ca-certificates
# The image config debian:trixie-slim has; an imported root filesystem has none (no PATH, no CMD).
base_changes=('ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["bash"]')
base_key=$(printf '%s\n' "debootstrap --variant=minbase --include=$base_packages $suite $mirror" "${base_changes[@]}" \
  | sha256sum | cut -c1-12)
base_image=localhost/modelanalysis-base:$suite-$base_key
base_archive=$cache_dir/base-$suite-$base_key.tar

# The build context as .dockerignore admits it (pyproject.toml, the lock, README.md, LICENSE, operator/ less build
# leftovers, the entrypoint), plus the Dockerfile, .dockerignore and the base. Untracked files count: they are in the context.
context_files() {
  find pyproject.toml requirements-image.txt README.md LICENSE Dockerfile .dockerignore operator \
    scripts/docker-entrypoint.sh -type f \
    ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' 2>/dev/null | LC_ALL=C sort
}
image_key=$( { context_files | xargs -d '\n' sha256sum; echo "base $base_key"; } | sha256sum | cut -c1-12)
image=$repository:$image_key
image_archive=$cache_dir/modelanalysis-$image_key.tar

image_present() { command -v podman >/dev/null && podman image exists "$image"; }

if [ "$mode" = check ]; then
  if image_present; then echo "$image"; exit 0; fi
  log "$image is not built"; exit 1
fi
if [ "$mode" = build ] && image_present; then
  log "$image is up to date (inputs unchanged), nothing to build"
  podman tag "$image" "$repository:dev"
  echo "$image"; exit 0
fi

# --- the tools ---------------------------------------------------------------------------------------------
apt_packages=(podman buildah runc debootstrap)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
mkdir -p "$cache_dir"

# --- the base: debootstrap once, then the archive, then podman's storage -----------------------------------
if ! podman image exists "$base_image"; then
  if [ ! -s "$base_archive" ]; then
    log "making the base: debootstrap --variant=minbase --include=$base_packages $suite (about 2 minutes)"
    rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
    # A debootstrap that fails may leave /proc and /sys mounted in the root filesystem: unmount, then remove
    # without crossing into another filesystem.
    remove_rootfs() {
      awk -v root="$rootfs/" 'index($2, root) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
      rm -rf --one-file-system "$rootfs" "$rootfs.log" "$base_archive.partial"
    }
    trap remove_rootfs EXIT
    debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
      || { tail -20 "$rootfs.log" >&2; exit 1; }
    # What a container gets from its runtime, and what only made the bootstrap: out of the image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
      "$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname "$rootfs"/etc/hosts
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$base_archive.partial" .
    mv "$base_archive.partial" "$base_archive"
    remove_rootfs
    trap - EXIT
  fi
  log "importing $base_archive as $base_image"
  podman import "${base_changes[@]/#/--change=}" "$base_archive" "$base_image" >/dev/null
fi

# --- the test Triton: NVIDIA's image cannot be pulled here, so a stand-in holding the wheel's tritonserver -----
if [ "$mode" = test-triton ]; then
  triton_file=tests/image/triton.Dockerfile
  triton_key=$( { sha256sum "$triton_file"; echo "base $base_key"; } | sha256sum | cut -c1-12)
  triton_image=localhost/modelanalysis-test-triton:$triton_key
  triton_archive=$cache_dir/test-triton-$triton_key.tar
  triton_tag=nvcr.io/nvidia/tritonserver:24.10-py3
  if ! podman image exists "$triton_image"; then
    if [ -s "$triton_archive" ]; then
      log "loading $triton_archive"
      podman load -q -i "$triton_archive" >/dev/null
    else
      log "building $triton_image from $triton_file on $base_image"
      podman build --runtime runc --network host --pull=never --volume "$ca_bundle:$ca_bundle:ro" \
        --build-arg "BASE_IMAGE=$base_image" --tag "$triton_image" --file "$triton_file" tests/image >&2
      rm -f "$cache_dir"/test-triton-*.tar
      podman save -q -o "$triton_archive.partial" "$triton_image"
      mv "$triton_archive.partial" "$triton_archive"
    fi
  fi
  podman tag "$triton_image" "$triton_tag"
  echo "$triton_tag"
  exit 0
fi

# --- the lock: what the image's pip installs, resolved in the base for its Python --------------------------
if [ "$mode" = lock ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["image"]))' >"$work/requirements.in"
  log "resolving $(wc -l <"$work/requirements.in") requirements (pyproject's dependencies and [image]) in $base_image"
  podman run --rm --network host --volume "$ca_bundle:$ca_bundle:ro" --volume "$work:/work" "$base_image" \
    sh -c 'python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -q --disable-pip-version-check --dry-run \
      --ignore-installed --only-binary=:all: --report /work/report.json -r /work/requirements.in'
  python3 - "$work/report.json" >requirements-image.txt <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
python = report["environment"]
print("# The Python packages the image installs, each pinned to one file by its hash. Generated by")
print("# `scripts/build-image.sh --lock` from pyproject.toml's dependencies and its [image] extra, resolved in")
print(f"# the image's base for CPython {python['python_full_version']} on {python['platform_machine']}. Do not edit; regenerate.")
rows = []
for item in report["install"]:
    meta, archive = item["metadata"], item["download_info"]["archive_info"]
    digest = archive.get("hashes", {}).get("sha256") or archive["hash"].split("=", 1)[1]
    rows.append((meta["name"].lower(), f"{meta['name'].lower()}=={meta['version']} \\\n    --hash=sha256:{digest}"))
for _, row in sorted(rows):
    print(row)
PY
  log "wrote requirements-image.txt ($(grep -c -- '--hash' requirements-image.txt) packages)"
  exit 0
fi

# --- the image: from its archive, else built -----------------------------------------------------------------
if [ "$mode" = build ] && [ -s "$image_archive" ]; then
  log "loading $image_archive"
  podman load -q -i "$image_archive" >/dev/null
  podman image exists "$image" || { log "$image_archive does not hold $image"; exit 1; }
else
  log "building $image from the Dockerfile on $base_image"
  # --network host: RUN steps reach Debian's and PyPI's mirrors as the host does; the host's CA bundle is
  # mounted over the image's because package downloads here pass through a proxy that only it trusts (the
  # mount is not part of any layer).
  podman build --runtime runc --network host --pull=never \
    --volume "$ca_bundle:$ca_bundle:ro" \
    --build-arg "BASE_IMAGE=$base_image" \
    --label "org.modelanalysis.inputs=$image_key" \
    --tag "$image" --file Dockerfile . >&2
  rm -f "$cache_dir"/modelanalysis-*.tar
  log "saving $image_archive"
  podman save -q -o "$image_archive.partial" "$image"
  mv "$image_archive.partial" "$image_archive"
fi
podman tag "$image" "$repository:dev"

# Older builds of this repository: untag them, so the storage holds one image per repository (layers the
# current image shares stay).
podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repository" \
  | grep -v -x -e "$image" -e "$repository:dev" | xargs -r podman rmi -f >/dev/null 2>&1 || true
log "$image ready after ${SECONDS} s ($(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$image"
