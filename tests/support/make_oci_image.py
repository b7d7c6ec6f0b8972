#!/usr/bin/env python3
"""Writes an OCI image layout for tests: one uncompressed layer from a rootfs
directory plus an image config with the given Entrypoint, Cmd, Env and
Healthcheck. Deterministic (sorted entries, mtime 0, uid/gid 0).

--hardlink-layer LINK=TARGET (repeatable) adds a second layer that holds only
hard links, in the order given: LINK is a new name for TARGET, which may be a
file of the first layer (an OCI layer applies onto its parents) or an earlier
link of this layer.

usage: make_oci_image.py ROOTFS OUTDIR [--tag T] [--entrypoint JSON] [--cmd JSON]
                         [--env K=V]... [--healthcheck JSON]
                         [--hardlink-layer LINK=TARGET]...
"""
import argparse, hashlib, io, json, os, tarfile


def blob(out, data):
    d = hashlib.sha256(data).hexdigest()
    path = os.path.join(out, "blobs", "sha256")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def layer(rootfs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            for n in dirnames + filenames:
                full = os.path.join(dirpath, n)
                entries.append(os.path.relpath(full, rootfs))
        for rel in sorted(entries):
            info = tar.gettarinfo(os.path.join(rootfs, rel), arcname=rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isreg():
                with open(os.path.join(rootfs, rel), "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def hardlink_layer(links):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for spec in links:
            name, target = spec.split("=", 1)
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = tarfile.LNKTYPE, target, 0o644
            tar.addfile(info)
    return buf.getvalue()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("rootfs")
    p.add_argument("out")
    p.add_argument("--tag", default="latest")
    p.add_argument("--entrypoint")
    p.add_argument("--cmd")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--healthcheck")
    p.add_argument("--hardlink-layer", action="append", default=[])
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    layers = [blob(a.out, layer(a.rootfs))]
    if a.hardlink_layer:
        layers.append(blob(a.out, hardlink_layer(a.hardlink_layer)))
    cfg = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + a.env}
    if a.entrypoint:
        cfg["Entrypoint"] = json.loads(a.entrypoint)
    if a.cmd:
        cfg["Cmd"] = json.loads(a.cmd)
    if a.healthcheck:
        cfg["Healthcheck"] = json.loads(a.healthcheck)
    config = {"architecture": "amd64", "os": "linux", "config": cfg,
              "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]}}
    cdigest, csize = blob(a.out, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cdigest, "size": csize},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": d, "size": n} for d, n in layers]}
    mdigest, msize = blob(a.out, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": mdigest, "size": msize,
                            "annotations": {"org.opencontainers.image.ref.name": a.tag}}]}
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(mdigest)


if __name__ == "__main__":
    main()
