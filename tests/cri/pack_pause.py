"""Pack a static pause binary as an OCI image archive (an OCI image layout
in a tar file) that `ctr images import` reads, for the CRI plugin's
sandbox_image. Offline and deterministic: one layer holding /pause, a
config whose entrypoint it is, a manifest and an index that names the image.

usage: pack_pause.py BINARY NAME OUT.tar
"""
import hashlib
import io
import json
import os
import sys
import tarfile

ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm",
        "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def tar_bytes(members):
    """An uncompressed tar of (name, bytes, mode), owned by root, mtime 0."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uname = info.gname = "root"
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def blob(blobs, media_type, data):
    """Keep DATA as a blob and return its descriptor."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def main(binary, name, out):
    with open(binary, "rb") as f:
        pause = f.read()
    blobs = {}
    layer = tar_bytes([("pause", pause, 0o755)])
    layer_desc = blob(blobs, "application/vnd.oci.image.layer.v1.tar", layer)
    config = {
        "architecture": ARCH.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        # 65535 is the user the usual pause image runs as; the kubelet's
        # pod securityContext (runAsUser) overrides it.
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
    }
    config_desc = blob(blobs, "application/vnd.oci.image.config.v1+json",
                       json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]}
    manifest_desc = blob(blobs, manifest["mediaType"],
                         json.dumps(manifest, sort_keys=True).encode())
    # containerd names the imported image after this annotation.
    manifest_desc["annotations"] = {"io.containerd.image.name": name}
    index = {"schemaVersion": 2,
             "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [manifest_desc]}
    members = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', 0o644),
               ("index.json", json.dumps(index).encode(), 0o644)]
    members += [("blobs/sha256/" + d[7:], data, 0o644)
                for d, data in sorted(blobs.items())]
    with open(out, "wb") as f:
        f.write(tar_bytes(members))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(*sys.argv[1:])
