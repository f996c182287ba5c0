"""Extractor files: a trained extractor that works without the cache, a config or this repository.

    zsattr extractor export --preset cpu -o cpu.zsx        (shell)
    extractor = load_extractor("cpu.zsx")                  (Python)
    fingerprints = extractor.features(images)             (N, 3, S, S) in [0, 1] -> (N, D)

One file, no pickle: a NumPy `.npz` archive (read with `allow_pickle=False`) holding
- the arrays: the linear projection (`mean`, `pca`, `lda`) or the network's state dict
  (`net.<name>`), and the DnCNN's weights (`dncnn.<name>`) when the residual filter is one;
- `meta`, one JSON string: the format version, the kind (`linear` | `resnet`), the architecture,
  the input chain (residual filter, spectrum view), the image size it was trained at, where it
  came from (preset, training seed, git commit, package versions, creation time), the
  verification threshold calibrated on held-out synthetic models, and `checksum`.

`checksum` is a SHA-256 over every array (name, dtype, shape, bytes) in name order. It is the
extractor's identity: a gallery stores it and refuses fingerprints of any other extractor, and a
file whose arrays no longer match it (altered or damaged) is refused on load.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..core import arrayfile, provenance
from ..core.device import resolve_device
from ..extractor.linear import LinearExtractor, LinearProjection
from ..extractor.network import FingerprintExtractor
from ..fingerprint.chain import InputChain
from ..fingerprint.residual import DnCNN, HighPass
from .methods import ExtractorMethod

EXTRACTOR_FORMAT = 1
KINDS = ("linear", "resnet")
SUFFIX = ".zsx"  # a convention only: any name loads


class ExtractorFileError(ValueError):
    """An extractor file that cannot be used; the message says why and what to do."""


def checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _state_arrays(prefix: str, module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def _state_dict(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix + ".")}


def chain_spec(chain: InputChain) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The input chain as JSON settings plus its arrays (the DnCNN's weights, if any)."""
    spec: dict[str, Any] = {"spectrum": chain.spectrum}
    rf = chain.residual_filter
    if isinstance(rf, HighPass):
        return {**spec, "residual_filter": "highpass", "highpass_kernel": rf.kernel_size}, {}
    if isinstance(rf, DnCNN):
        return ({**spec, "residual_filter": "dncnn", "dncnn_depth": rf.depth, "dncnn_width": rf.width},
                _state_arrays("dncnn", rf))
    raise ExtractorFileError(f"cannot export a residual filter of type {type(rf).__name__}")


def chain_from_spec(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> InputChain:
    kind = spec.get("residual_filter")
    if kind == "highpass":
        residual_filter: torch.nn.Module = HighPass(int(spec["highpass_kernel"]))
    elif kind == "dncnn":
        residual_filter = DnCNN(int(spec["dncnn_depth"]), int(spec["dncnn_width"]))
        residual_filter.load_state_dict(_state_dict("dncnn", arrays))
        residual_filter.eval()
    else:
        raise ExtractorFileError(f"unknown residual filter {kind!r} in the extractor file")
    return InputChain(residual_filter, spec["spectrum"])


@dataclass
class PortableExtractor:
    """A loaded extractor file: `features(images)` like every method of the evaluation, and the
    metadata that identifies it (`id` is its checksum)."""

    method: Any  # LinearExtractor | ExtractorMethod
    meta: dict[str, Any]
    path: Path | None = None

    @property
    def id(self) -> str:
        return self.meta["checksum"]

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def verification_threshold(self) -> float | None:
        value = self.meta.get("verification", {}).get("threshold")
        return None if value is None else float(value)

    def features(self, images: torch.Tensor) -> np.ndarray:
        """(N, 3, S, S) images in [0, 1] at the extractor's size -> (N, D) fingerprints."""
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (self.image_size,) * 2:
            raise ValueError(f"this extractor reads (N, 3, {self.image_size}, {self.image_size}) crops, "
                             f"got {tuple(images.shape)}")
        return self.method.features(images)

    def to(self, device: str = "auto", batch_size: int | None = None) -> "PortableExtractor":
        """Run the network on `device` ("auto": CUDA, then MPS, then the CPU) with batches of
        `batch_size`; a linear extractor always runs on the CPU (an FFT and a product)."""
        if batch_size is not None:
            if batch_size < 1:
                raise ValueError(f"the batch size must be at least 1, got {batch_size}")
            self.method.batch_size = batch_size
        if isinstance(self.method, ExtractorMethod):
            self.method.model.to(resolve_device(device))
        return self

    def describe(self) -> dict[str, Any]:
        """What a user needs to know about the file (for `zsattr extractor show` and galleries)."""
        keys = ("name", "kind", "image_size", "chain", "preset", "training_seed", "git_commit", "created",
                "fingerprint_dim", "verification")
        return {"id": self.id, **{k: self.meta.get(k) for k in keys}}


def _method_arrays(method) -> tuple[str, dict[str, Any], dict[str, np.ndarray], InputChain]:
    if isinstance(method, LinearExtractor):
        p = method.projection
        arrays = {"mean": p.mean, "pca": p.pca}
        if p.lda is not None:
            arrays["lda"] = p.lda
        return "linear", {"shrinkage": p.shrinkage}, arrays, method.chain
    if isinstance(method, ExtractorMethod):
        net = method.model
        arch = {"backbone": net.backbone_name, "stem": net.stem, "n_classes": net.head.out_features}
        return "resnet", arch, _state_arrays("net", net), method.chain
    raise ExtractorFileError(f"cannot export a method of type {type(method).__name__}")


def save_extractor(path: str | Path, method, *, name: str, image_size: int, source: Mapping[str, Any] | None = None,
                   verification: Mapping[str, Any] | None = None) -> PortableExtractor:
    """Write `method` (a LinearExtractor or an ExtractorMethod) as an extractor file, atomically.
    `source`: where it came from (preset, training seed, ...); `verification`: the threshold
    calibrated on held-out synthetic models and how. Returns the file as loaded back."""
    kind, architecture, arrays, chain = _method_arrays(method)
    spec, chain_arrays = chain_spec(chain)
    arrays = {k: np.ascontiguousarray(v) for k, v in {**arrays, **chain_arrays}.items()}
    meta = {"format": EXTRACTOR_FORMAT, "kind": kind, "name": name, "architecture": architecture,
            "chain": spec, "image_size": int(image_size), **dict(source or {}),
            "verification": dict(verification or {}), "git_commit": provenance.git_commit(),
            "packages": provenance.package_versions(), "created": provenance.now_iso(),
            "checksum": checksum(arrays)}
    probe = PortableExtractor(_build(meta, arrays), meta)
    meta["fingerprint_dim"] = int(probe.features(torch.zeros(1, 3, image_size, image_size)).shape[1])
    arrayfile.write(path, meta, arrays)
    return load_extractor(path)


def _build(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
    chain = chain_from_spec(meta["chain"], arrays)
    if meta["kind"] == "linear":
        projection = LinearProjection(arrays["mean"], arrays["pca"], arrays.get("lda"),
                                      meta["architecture"].get("shrinkage"))
        return LinearExtractor(meta["name"], projection, chain)
    arch = meta["architecture"]
    net = FingerprintExtractor(int(arch["n_classes"]), arch["backbone"], stem=arch["stem"])
    net.load_state_dict(_state_dict("net", arrays))
    return ExtractorMethod(meta["name"], net.eval(), chain)


def load_extractor(path: str | Path) -> PortableExtractor:
    """Read and check an extractor file; every problem is an ExtractorFileError naming the file."""
    path = Path(path).expanduser()
    try:
        meta, arrays = arrayfile.read(path, "extractor file", "make one with `zsattr extractor export`")
        arrayfile.check_format(path, meta, EXTRACTOR_FORMAT, "extractor file",
                               "Export the extractor again with this version.")
    except arrayfile.ArrayFileError as exc:
        raise ExtractorFileError(str(exc)) from exc
    if meta.get("kind") not in KINDS:
        raise ExtractorFileError(f"{path}: unknown extractor kind {meta.get('kind')!r}; expected one of {KINDS}")
    if checksum(arrays) != meta.get("checksum"):
        raise ExtractorFileError(f"{path}: its weights do not match the checksum recorded at export; "
                                 "the file was altered or damaged. Export it again.")
    try:
        method = _build(meta, arrays)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ExtractorFileError(f"{path}: the weights do not fit the recorded architecture ({exc})") from exc
    return PortableExtractor(method, meta, path)
