"""Built-in exporters: safetensors weights with a JSON of classes and preprocessing; a full .pt."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from vitcore import hookimpl
from vitcore.components import ExportContext, Exporter
from vitcore.runs import write_json_atomic


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename into place: never a half-written export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def model_description(ctx: ExportContext) -> dict:
    """What a consumer needs besides the weights: classes, preprocessing, how to rebuild the model."""
    return {
        "classes": ctx.classes,
        "preprocessing": ctx.preprocessing.to_dict(),
        "model": dict(ctx.spec.get("model", {})),
        "run": {"name": ctx.spec.get("name"), "version": ctx.run_dir.name, "run_dir": str(ctx.run_dir)},
    }


class SafetensorsExporter(Exporter):
    """exports/model.safetensors (weights) and exports/model.json (classes, preprocessing, hash)."""

    name = "safetensors"

    def export(self, ctx: ExportContext) -> list[Path]:
        from safetensors.torch import save_model

        description = model_description(ctx)
        metadata = {"format": "pt", "classes": json.dumps(ctx.classes),
                    "preprocessing": json.dumps(description["preprocessing"])}
        weights = write_atomically(ctx.out_dir / "model.safetensors",
                                   lambda tmp: save_model(ctx.model, tmp, metadata=metadata))
        description["weights"] = {"file": weights.name, "sha256": sha256(weights)}
        info = ctx.out_dir / "model.json"
        write_json_atomic(info, description)
        return [weights, info]


class TorchExporter(Exporter):
    """exports/model.pt: state dict, classes, preprocessing and model spec (weights_only-loadable)."""

    name = "torch"

    def export(self, ctx: ExportContext) -> list[Path]:
        import torch

        payload = {"state_dict": ctx.model.state_dict(), **model_description(ctx)}
        return [write_atomically(ctx.out_dir / "model.pt", lambda tmp: torch.save(payload, tmp))]


@hookimpl
def register_exporters(register) -> None:
    register(SafetensorsExporter)
    register(TorchExporter)
