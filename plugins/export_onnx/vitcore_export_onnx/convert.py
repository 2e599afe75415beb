"""PyTorch -> ONNX: explicit attention while exporting, a symbolic batch, failures that say what to do."""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from vitcore.api import VitcoreError
from vitcore_export_onnx.exporter import OnnxOptions
from vitcore_export_onnx.metadata import embed

INPUT, OUTPUT = "images", "logits"
#: ONNX has no attention operator before opset 14, so fused attention cannot be written below it.
FUSED_ATTENTION_MIN_OPSET = 14
#: Protobuf's limit: larger models keep their weights in an external ``.data`` file.
PROTOBUF_LIMIT = 2**31 - 1


@contextlib.contextmanager
def exportable_attention(model: torch.nn.Module, opset: int) -> Iterator[list[str]]:
    """Explicit (unfused) attention while exporting; the model's own setting is restored afterwards.

    timm's Attention (``fused_attn``) and transformers models (attention implementation) switch to
    explicit attention; torchvision's MultiheadAttention leaves its fast path but still runs
    scaled_dot_product_attention, which needs opset 14.
    Yields what was switched, for the export record.
    """
    if opset < FUSED_ATTENTION_MIN_OPSET:
        fused = [name for name, m in model.named_modules() if isinstance(m, torch.nn.MultiheadAttention)]
        if fused:
            raise VitcoreError(
                f"onnx: {fused[0]} is a torch.nn.MultiheadAttention, whose fused attention "
                f"(aten::scaled_dot_product_attention) ONNX supports from opset {FUSED_ATTENTION_MIN_OPSET}; "
                f"opset is {opset}. Set opset to {FUSED_ATTENTION_MIN_OPSET} or newer (e.g. --option opset=18)"
            )
    undo: list[Any] = []
    switched: list[str] = []
    if any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules()):
        # Without grad, MultiheadAttention takes a fused fast path that no ONNX exporter knows.
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        undo.append(lambda: torch.backends.mha.set_fastpath_enabled(fastpath))
        switched.append("torch.nn.MultiheadAttention: fast path off")
    try:
        for name, module in model.named_modules():
            if getattr(module, "fused_attn", None) is True:  # timm
                module.fused_attn = False
                undo.append(lambda m=module: setattr(m, "fused_attn", True))
                switched.append(f"{name or 'model'}: fused_attn off")
            config = getattr(module, "config", None)
            previous = getattr(config, "_attn_implementation", None)
            if hasattr(module, "set_attn_implementation") and previous not in (None, "eager"):  # transformers
                module.set_attn_implementation("eager")
                undo.append(lambda m=module, p=previous: m.set_attn_implementation(p))
                switched.append(f"{name or 'model'}: {previous} -> eager attention")
        yield switched
    finally:
        for restore in reversed(undo):
            restore()


def export_model(model: torch.nn.Module, example: torch.Tensor, folder: Path,
                 options: OnnxOptions) -> tuple[Path, list[str]]:
    """Write the raw ONNX file(s) into ``folder``; returns the .onnx path and the attention switches."""
    path = folder / "raw.onnx"
    with exportable_attention(model, options.opset) as switched, warnings.catch_warnings():
        # The torchscript exporter is chosen explicitly, and tracer warnings about shape asserts are
        # answered by the onnxruntime check that follows.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        try:
            if options.exporter == "dynamo":
                _dynamo(model, example, path, options)
            else:
                _torchscript(model, example, path, options)
        except VitcoreError:
            raise
        except Exception as exc:  # the exporters raise many types; each becomes one clear message
            raise VitcoreError(_explain(exc, options)) from exc
    return path, switched


def _torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path, options: OnnxOptions) -> None:
    axes = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}} if options.dynamic_batch else None
    with torch.no_grad():
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=options.opset,
                          input_names=[INPUT], output_names=[OUTPUT], dynamic_axes=axes)


def _dynamo(model: torch.nn.Module, example: torch.Tensor, path: Path, options: OnnxOptions) -> None:
    shapes = ({0: torch.export.Dim("batch")},) if options.dynamic_batch else None
    program = torch.onnx.export(model, (example,), dynamo=True, opset_version=options.opset, input_names=[INPUT],
                                output_names=[OUTPUT], dynamic_shapes=shapes, verbose=False)
    program.save(str(path))  # weights go to an external file by itself above 2 GB


def _explain(exc: Exception, options: OnnxOptions) -> str:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    # The dynamo exporter's message starts with the step that failed and names the operator further down.
    detail = next((line for line in lines if "aten" in line or "operator" in line.lower()), lines[0])
    detail = re.sub(r"^<class '[\w.]+'>:\s*", "", detail).rstrip(". ")
    other = "dynamo" if options.exporter == "torchscript" else "torchscript"
    newer = " or a newer opset" if options.opset < 20 else ""
    return (f"onnx: the {options.exporter} exporter (opset {options.opset}) cannot export this model: "
            f"{detail[:600]}. Try exporter: {other}{newer}, or change the model to avoid that operator")


def finalize(raw: Path, dest: Path, facts: Mapping[str, Any]) -> Path:
    """Write ``dest`` from the raw export: vitcore metadata embedded, every node named (int8 exclusions
    need names), one ``.data`` file for weights beyond protobuf's 2 GB; then the ONNX checker."""
    import onnx

    model = onnx.load(str(raw))
    embed(model, facts)
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
    if model.ByteSize() > PROTOBUF_LIMIT:
        onnx.save(model, str(dest), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=f"{dest.name}.data")
    else:
        onnx.save(model, str(dest))
    onnx.checker.check_model(str(dest))
    return dest


def batch_dimension(path: Path) -> str | int:
    """The saved input's batch dimension: a name when symbolic, else its fixed size."""
    import onnx

    dim = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_param or dim.dim_value


def require_symbolic_batch(path: Path) -> str:
    batch = batch_dimension(path)
    if not isinstance(batch, str):
        raise VitcoreError(f"onnx: the exported input's batch dimension is fixed at {batch}, not symbolic; the "
                           "model's forward must not depend on the batch size (dynamic_batch: false fixes it at 1)")
    return batch
