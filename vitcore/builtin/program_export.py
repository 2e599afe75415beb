"""Built-in exporter ``torch_export``: a ``torch.export`` program (.pt2), verified before it counts.

A second portable format next to ONNX: it runs with PyTorch alone, without the model's Python
code (``torch.export.load(path).module()(images)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from vitcore import hookimpl
from vitcore.components import ExportContext, Exporter, Options
from vitcore.errors import VitcoreError


class ProgramOptions(Options):
    atol: float = Field(1e-4, gt=0, description="Largest allowed absolute difference of the logits.")
    max_batch: int = Field(4096, ge=2, description="Largest batch size the program accepts (dynamic batch).")


def compare(model: Any, program: Any, images: Any) -> dict[str, Any]:
    """Max absolute logit difference and top-1 agreement, at batch 1 and at the whole batch."""
    import torch

    worst, agree, checked = 0.0, 0, 0
    with torch.no_grad():
        for batch in (images[:1], images):
            expected, got = model(batch), program(batch)
            worst = max(worst, float((expected - got).abs().max()))
            agree += int((expected.argmax(1) == got.argmax(1)).sum())
            checked += batch.shape[0]
    return {"max_abs_diff": worst, "top1_agreement": agree / checked, "images_checked": checked,
            "batch_sizes": [1, int(images.shape[0])]}


class TorchExportExporter(Exporter):
    """exports/model.pt2 (torch.export program, dynamic batch) and its check in torch_export.json."""

    name = "torch_export"
    Options = ProgramOptions

    def export(self, ctx: ExportContext) -> list[Path]:
        import torch

        from vitcore.atomic import atomic_path
        from vitcore.hashing import sha256
        from vitcore.runs import write_json_atomic

        if ctx.example_inputs is None:
            raise VitcoreError("torch_export: no validation images to check the program on; "
                               "export from a run whose data set is still available")
        images = ctx.example_inputs
        if images.shape[0] < 2:  # a batch-1 example would freeze the batch dimension
            images = torch.cat([images, images])
        batch = torch.export.Dim("batch", min=1, max=self.options.max_batch)
        try:
            program = torch.export.export(ctx.model, (images,), dynamic_shapes=({0: batch},))
        except Exception as exc:
            raise VitcoreError(f"torch_export: torch.export cannot trace this model ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0]}); use the onnx or safetensors exporter") from None
        path = ctx.out_dir / "model.pt2"
        with atomic_path(path, suffix=".pt2") as tmp:
            torch.export.save(program, tmp)
            check = compare(ctx.model, torch.export.load(tmp).module(), images)
            if check["max_abs_diff"] > self.options.atol or check["top1_agreement"] < 1.0:
                raise VitcoreError(
                    f"torch_export: the saved program disagrees with the model (max abs diff "
                    f"{check['max_abs_diff']:.3g} > {self.options.atol} or top-1 agreement "
                    f"{check['top1_agreement']:.3f} < 1); nothing was written"
                )
        record = ctx.out_dir / "torch_export.json"
        write_json_atomic(record, {"exporter": "torch.export", "torch": torch.__version__,
                                   "file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size,
                                   "dynamic_batch": [1, self.options.max_batch], **check})
        return [path, record]


@hookimpl
def register_exporters(register) -> None:
    register(TorchExportExporter)
