"""The pod sandbox image, written as an OCI archive in Python: one static program, no registry."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["write_pause_archive"]


def _blob(archive: tarfile.TarFile, data: bytes, media_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    _add(archive, f"blobs/sha256/{digest}", data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def _add(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    archive.addfile(info, io.BytesIO(data))


def write_pause_archive(program: Path, image: str, destination: Path) -> Path:
    """Write an OCI image-layout tar holding ``program`` as ``/pause``, named ``image``."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        _add(tar, "pause", program.read_bytes(), mode=0o755)
    layer_bytes = layer.getvalue()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {
            "type": "layers",
            "diff_ids": [f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"],
        },
    }
    with tarfile.open(destination, mode="w") as archive:
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": _blob(
                archive, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"
            ),
            "layers": [_blob(archive, layer_bytes, "application/vnd.oci.image.layer.v1.tar")],
        }
        descriptor = _blob(
            archive, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json"
        )
        descriptor["annotations"] = {
            "io.containerd.image.name": image,
            "org.opencontainers.image.ref.name": image.rpartition(":")[2],
        }
        index = {"schemaVersion": 2, "manifests": [descriptor]}
        _add(archive, "index.json", json.dumps(index).encode())
        _add(archive, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    return destination
