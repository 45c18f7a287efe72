"""A CPU profile of kube-apiserver while the operator converges (``--apiserver-profile``).

The test bed serves ``/debug/pprof`` only when the bench asks for it (``PROFILING_ENV``). The
profile is Go's own (pprof protobuf, 100 Hz): read it with ``go tool pprof -top <file>``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import requests

from phonefleet_testbed.controlplane.cluster import PROFILING_ENV

__all__ = ["ProfileCapture", "enable_profiling"]


def enable_profiling() -> None:
    """Make the control plane started after this call serve ``/debug/pprof``."""
    os.environ[PROFILING_ENV] = "1"


class ProfileCapture:
    """Captures ``seconds`` of kube-apiserver's CPU profile on a thread, from ``start()``."""

    def __init__(self, server: str, pki_dir: Path, seconds: int, path: Path) -> None:
        self._url = f"{server.rstrip('/')}/debug/pprof/profile?seconds={seconds}"
        self._cert = (str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        self._ca = str(pki_dir / "ca.crt")
        self._seconds = seconds
        self.path = path
        self.error: str | None = None
        self._thread = threading.Thread(target=self._capture, name="apiserver-profile", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> dict[str, object]:
        """Wait for the profile; its file, seconds and any error, for the results."""
        self._thread.join(self._seconds + 60)
        return {"path": str(self.path), "seconds": self._seconds, "error": self.error}

    def _capture(self) -> None:
        try:
            # The API server answers after `seconds`: the read timeout is that plus a margin.
            answer = requests.get(
                self._url, cert=self._cert, verify=self._ca, timeout=(10, self._seconds + 30)
            )
            answer.raise_for_status()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(answer.content)
        except requests.RequestException as error:
            self.error = f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------- attribution

# What a CPU sample was serving: the first pattern (in this order) that some frame of its stack
# matches.
_REQUESTS: tuple[tuple[str, str], ...] = (
    (
        "watch: encode and send events",
        r"handlers\.\(\*WatchServer\)|handlers\.serveWatch|handleWatch",
    ),
    (
        "watch: etcd watch and cacher",
        r"etcd3\.\(\*watchChan\)|storage/cacher\.\(\*(Cacher|watchCache|cacheWatcher)\)|cacher\.\(\*Cacher\)",
    ),
    (
        "PATCH CR status",
        r"patchResource(?s:.*)customresource\.\(\*StatusREST\)|customresource\.\(\*StatusREST\)(?s:.*)patchResource",
    ),
    ("PATCH pod status", r"pod/storage\.\(\*StatusREST\)"),
    ("PATCH (other)", r"handlers\.\(\*patcher\)|PatchResource"),
    ("CREATE pods/binding", r"pod/storage\.\(\*BindingREST\)"),
    ("CREATE CR", r"createHandler(?s:.*)crdHandler|crdHandler(?s:.*)createHandler"),
    ("CREATE (core)", r"createHandler"),
    ("UPDATE", r"UpdateResource"),
    ("DELETE", r"DeleteResource|DeleteCollection"),
    ("LIST", r"ListResource"),
    ("GET", r"GetResource"),
    ("GC (background)", r"runtime\.gcBgMarkWorker"),
    ("filters before the handler (authn, APF, ...)", r"timeoutHandler|withAuthentication"),
    ("HTTP/2 and TLS connections", r"http2\.\(\*serverConn\)|net/http\.\(\*conn\)|crypto/tls"),
    ("etcd client connections (gRPC)", r"google\.golang\.org/grpc|go\.etcd\.io/etcd/client"),
    (
        "informers of the API server itself",
        r"client-go/tools/cache|client-go/rest/watch|StreamWatcher",
    ),
    ("write, stack cut at 64 frames (managedFields)", r"managedfields|structured-merge-diff"),
)

# Where within it: the frame nearest the leaf that matches one of these (first pattern wins).
_STAGES: tuple[tuple[str, str], ...] = (
    ("managedFields (field tracking)", r"managedfields|structured-merge-diff"),
    (
        "admission",
        r"pkg/admission|admission/plugin|validatingadmissionpolicy|mutatingadmissionpolicy",
    ),
    (
        "CRD validation (OpenAPI, CEL)",
        r"apiextensions-apiserver/pkg/apiserver/validation|kube-openapi/pkg/validation|apiextensions-apiserver/pkg/apiserver/schema/cel|k8s\.io/apiserver/pkg/cel|google/cel-go",
    ),
    (
        "CRD schema: coercion, pruning, defaulting",
        r"schemaCoercingDecoder|unstructuredSchemaCoercer|schema/pruning|schema/defaulting|schema/objectmeta",
    ),
    (
        "object validation/strategy (core)",
        r"pkg/apis/core/validation|registry/core/.*Strategy|apimachinery/pkg/api/validation",
    ),
    ("patch application", r"jsonPatcher|smpPatcher|strategicpatch|evanphx/json-patch|jsonpatch"),
    ("authentication", r"pkg/authentication|crypto/x509"),
    ("authorization (RBAC)", r"pkg/authorization|rbac"),
    ("etcd client (gRPC)", r"go\.etcd\.io/etcd/client|google\.golang\.org/grpc"),
    (
        "storage transform / decode from etcd",
        r"etcd3\.decodeObj|etcd3\.\(\*store\)\.(getState|updateState)|value\.Transformer",
    ),
    (
        "serialization: encode",
        r"\.Encode|doEncode|encoding/json\.\(\*encodeState\)|CacheEncode|protobuf.*Marshal",
    ),
    ("serialization: decode", r"\.Decode|json\.Unmarshal|protobuf.*Unmarshal|sigs\.k8s\.io/json"),
    ("metrics and tracing", r"prometheus|opentelemetry|endpoints/metrics|filterlatency"),
    ("priority and fairness", r"util/flowcontrol"),
    ("TLS and HTTP/2", r"crypto/tls|golang\.org/x/net/http2|net/http"),
    (
        "handlers, registry, cacher (other)",
        r"endpoints/handlers|registry/generic|storage/cacher|storage/etcd3",
    ),
    ("GC (background)", r"runtime\.gcBgMarkWorker"),
)


def _traces(path: Path) -> list[tuple[float, list[str]]]:
    """(seconds, frames leaf first) of every distinct stack in the profile."""
    text = subprocess.run(
        ["go", "tool", "pprof", "-traces", str(path)], capture_output=True, text=True, check=True
    ).stdout
    samples: list[tuple[float, list[str]]] = []
    for block in text.split("-----------+-------------------------------------------------------")[
        1:
    ]:
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        value, _, leaf = lines[0].strip().partition(" ")
        seconds = float(value[:-2]) / 1000 if value.endswith("ms") else float(value.rstrip("s"))
        samples.append((seconds, [leaf.strip(), *(line.strip() for line in lines[1:])]))
    return samples


def attribute(path: Path) -> dict[str, dict[str, float]]:
    """Seconds of CPU by what was served and by stage, and their total, from a profile."""
    by_request: dict[str, float] = {}
    by_stage: dict[str, float] = {}
    total = 0.0
    for seconds, frames in _traces(path):
        total += seconds
        stack = "\n".join(frames)
        request = next((name for name, rx in _REQUESTS if re.search(rx, stack)), "other")
        by_request[request] = by_request.get(request, 0.0) + seconds
        stage = next(
            (
                name
                for frame in frames
                for name, rx in _STAGES
                if not frame.startswith("runtime.") and re.search(rx, frame)
            ),
            "runtime and other",
        )
        if stage == "runtime and other" and "runtime.gcBgMarkWorker" in stack:
            stage = "GC (background)"
        by_stage[stage] = by_stage.get(stage, 0.0) + seconds
    return {"total": {"seconds": total}, "byRequest": by_request, "byStage": by_stage}


def _print(path: Path) -> None:
    figures = attribute(path)
    total = figures["total"]["seconds"]
    print(f"{path.name}: {total:.2f} CPU s sampled")
    for title in ("byRequest", "byStage"):
        print(f"\n| {title} | CPU s | % |\n|---|---:|---:|")
        for name, seconds in sorted(figures[title].items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {seconds:.2f} | {100 * seconds / total:.1f} |")


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        _print(Path(argument))
