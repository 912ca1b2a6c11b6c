#!/usr/bin/env bash
# Builds kubegate's container image as an OCI image layout, without a
# container engine (none runs on the machines this project builds on):
#
#   bash scripts/build-image.sh OUT_DIR [KUBEGATE_BIN] [TAG]
#
# OUT_DIR gets an OCI image layout (oci-layout, index.json, blobs/sha256/)
# and OUT_DIR.tar, the same as an oci-archive. Push it with any OCI tool,
# e.g. `skopeo copy oci-archive:OUT_DIR.tar docker://REGISTRY/kubegate:TAG`.
#
# The image has one layer and no shell or package manager: the stripped
# kubegate binary, exactly the shared libraries `ldd` names for it (from
# this Debian bookworm machine) and the dynamic loader, the system CA
# bundle (OIDC discovery), /etc/passwd and /etc/group naming user 65532
# (the Deployment's runAsUser), and an empty /tmp (the Deployment mounts
# an emptyDir there; the root file system is read-only). The entrypoint is
# /usr/bin/kubegate; the Deployment gives its arguments. The layer is
# reproducible: sorted names, owner 0, mtime 0, gzip without a timestamp.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: scripts/build-image.sh OUT_DIR [KUBEGATE_BIN] [TAG]}"
BIN="${2:-build/src/kubegate}"
TAG="${3:-0.1.0}"
[ -x "$BIN" ] || { echo "build-image: no kubegate binary at $BIN" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT/usr/bin" "$ROOT/etc/ssl/certs" "$ROOT/tmp"
chmod 1777 "$ROOT/tmp"
objcopy --strip-debug "$BIN" "$ROOT/usr/bin/kubegate"
chmod 0755 "$ROOT/usr/bin/kubegate"
# Every library the binary loads, at the path the loader finds it, and the
# loader itself (the absolute path ldd prints last).
ldd "$BIN" | awk '/=> \// {print $3} /^\t\// {print $1}' | while read -r lib; do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done
if ldd "$BIN" | grep -q "not found"; then
  echo "build-image: a library of $BIN is missing here:" >&2
  ldd "$BIN" | grep "not found" >&2
  exit 1
fi
cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nkubegate:x:65532:65532:kubegate:/nonexistent:/usr/sbin/nologin\n' \
  > "$ROOT/etc/passwd"
printf 'root:x:0:\nkubegate:x:65532:\n' > "$ROOT/etc/group"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$ROOT" -cf "$WORK/layer.tar" .
gzip -9 -n -c "$WORK/layer.tar" > "$WORK/layer.tar.gz"
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
DIFF_ID=$(sha "$WORK/layer.tar")
rm -rf "$OUT"
mkdir -p "$OUT/blobs/sha256"
LAYER=$(sha "$WORK/layer.tar.gz")
cp "$WORK/layer.tar.gz" "$OUT/blobs/sha256/$LAYER"
# The image configuration: who runs it, what it runs, its one layer.
printf '%s' '{"architecture":"amd64","os":"linux","config":{"User":"65532:65532","Entrypoint":["/usr/bin/kubegate"],"Env":["PATH=/usr/bin"],"WorkingDir":"/","Labels":{"org.opencontainers.image.title":"kubegate","org.opencontainers.image.version":"'"$TAG"'"}},"rootfs":{"type":"layers","diff_ids":["sha256:'"$DIFF_ID"'"]},"history":[{"created_by":"scripts/build-image.sh"}]}' \
  > "$WORK/config.json"
CONFIG=$(sha "$WORK/config.json")
cp "$WORK/config.json" "$OUT/blobs/sha256/$CONFIG"
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$CONFIG"'","size":'"$(size "$WORK/config.json")"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$LAYER"'","size":'"$(size "$WORK/layer.tar.gz")"'}]}' \
  > "$WORK/manifest.json"
MANIFEST=$(sha "$WORK/manifest.json")
cp "$WORK/manifest.json" "$OUT/blobs/sha256/$MANIFEST"
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$MANIFEST"'","size":'"$(size "$WORK/manifest.json")"',"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"'"$TAG"'"}}]}' \
  > "$OUT/index.json"
printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$OUT/oci-layout"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$OUT" -cf "$OUT.tar" .
echo "image $TAG: manifest sha256:$MANIFEST, layer $(( $(size "$WORK/layer.tar.gz") / 1024 )) KiB compressed, in $OUT and $OUT.tar"
