#!/usr/bin/env python3
"""Writes an OCI image layout (tag "1") whose one layer has files of several
owners: 5:7, a setuid file of 1000:1000, a file of 70000:70000 (outside a
65536-id mapping), a directory of 5:5 mode 0700, and a character device.
usage: make_owners_image.py OUTDIR"""
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    open(os.path.join(out, "blobs", "sha256", d), "wb").write(data)
    return "sha256:" + d, len(data)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    def add(name, type_, uid, gid, mode, data=b"", link="", dev=(0, 0)):
        i = tarfile.TarInfo(name); i.type = type_; i.uid = uid; i.gid = gid; i.mode = mode; i.mtime = 0
        i.size = len(data); i.linkname = link; i.devmajor, i.devminor = dev
        t.addfile(i, io.BytesIO(data) if data else None)
    add("bin", tarfile.DIRTYPE, 0, 0, 0o755)
    busybox = open("/bin/busybox", "rb").read()
    add("bin/busybox", tarfile.REGTYPE, 0, 0, 0o755, busybox)
    for a in ("sh", "ls", "stat", "cat", "id"):
        add("bin/" + a, tarfile.SYMTYPE, 0, 0, 0o777, link="busybox")
    add("data", tarfile.DIRTYPE, 0, 0, 0o755)
    add("data/f5", tarfile.REGTYPE, 5, 7, 0o644, b"five\n")
    add("data/suid", tarfile.REGTYPE, 1000, 1000, 0o4755, b"x")
    add("data/far", tarfile.REGTYPE, 70000, 70000, 0o644, b"far\n")
    add("data/d5", tarfile.DIRTYPE, 5, 5, 0o700)
    add("data/d5/inner", tarfile.REGTYPE, 5, 5, 0o600, b"in\n")
    add("dev", tarfile.DIRTYPE, 0, 0, 0o755)
    add("dev/mynull", tarfile.CHRTYPE, 0, 0, 0o666, dev=(1, 3))
layer = buf.getvalue()
ld, ls = blob(layer)
diff = "sha256:" + hashlib.sha256(layer).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
                  "rootfs": {"type": "layers", "diff_ids": [diff]}}, sort_keys=True).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]},
                 sort_keys=True).encode()
md, ms = blob(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "1"}}]},
          open(os.path.join(out, "index.json"), "w"))
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
