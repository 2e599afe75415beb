"""Built-in exporters: safetensors weights with a JSON of classes and preprocessing; a full .pt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitcore import hookimpl
from vitcore.atomic import write_atomically
from vitcore.components import ExportContext, Exporter
from vitcore import hashing
from vitcore.runs import write_json_atomic

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


def model_description(ctx: ExportContext) -> dict[str, Any]:
    """What a consumer needs besides the weights: classes, preprocessing, how to rebuild the model.

    Plain JSON values only (a round trip through JSON), so ``torch.load(weights_only=True)`` accepts it.
    """
    return json.loads(json.dumps({
        "classes": list(ctx.classes),
        "preprocessing": ctx.preprocessing.to_dict(),
        "model_spec": ctx.spec.get("model", {}),
        "run": {"name": ctx.spec.get("name"), "version": ctx.run_dir.name},
    }, default=str))


def standalone_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as contiguous CPU tensors that share no memory.

    safetensors refuses tensors sharing storage (tied weights, views); copying them keeps every
    key, so ``load_file`` + ``load_state_dict(strict=True)`` works without safetensors' helpers.
    """
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in storages:
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        tensors[name] = tensor
    return tensors


class SafetensorsExporter(Exporter):
    """exports/model.safetensors (weights) and exports/model.json (classes, preprocessing, hash)."""

    name = "safetensors"

    def export(self, ctx: ExportContext) -> list[Path]:
        from safetensors.torch import save_file

        description = model_description(ctx)
        metadata = {"format": "pt", **{key: json.dumps(value) for key, value in description.items()}}
        tensors = standalone_tensors(ctx.model)
        weights = write_atomically(ctx.out_dir / "model.safetensors",
                                   lambda tmp: save_file(tensors, tmp, metadata=metadata))
        description["weights"] = {"file": weights.name, "format": "safetensors", "sha256": hashing.sha256(weights)}
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
