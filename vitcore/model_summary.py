"""An architecture overview of a model: a row per module with its output shape, parameters and
FLOPs, the totals, and the input/patch/token geometry when a plugin describes the model as a ViT.

torch is imported inside ``summarize``: importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _first_tensor(output: Any) -> "torch.Tensor | None":
    """The tensor a module returned, or the first one inside a tuple, list, dict or model output."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    items = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else ()
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def _extra_flop_formulas() -> dict[Any, Any]:
    """FLOP formulas the counter lacks: the CPU flash-attention kernel behind SDPA on the CPU."""
    import torch
    from torch.utils import flop_counter

    def sdpa(query_shape: Any, key_shape: Any, value_shape: Any, *_args: Any, **_kwargs: Any) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: sdpa} if op is not None else {}


def _geometry(model: "torch.nn.Module") -> dict[str, Any] | None:
    from vitcore.plugins import get_host

    view = get_host().vit_view(model)
    if view is None:
        return None
    patches = view.grid[0] * view.grid[1]
    return {
        "image_size": list(view.image_size),
        "patch_size": list(view.patch_size),
        "grid": list(view.grid),
        "patches": patches,
        "prefix_tokens": view.num_prefix_tokens,
        "tokens": patches + view.num_prefix_tokens,
        "blocks": view.num_blocks,
        "heads": view.num_heads,
        "pooling": view.pooling,
    }


def summarize(model: "torch.nn.Module", image_size: int | tuple[int, int], batch: int = 1) -> dict[str, Any]:
    """Run one ``(batch, 3, H, W)`` forward pass and describe every module; JSON-serialisable.

    ``rows``: one per module (``named_modules`` order) with ``name`` ("" for the model), ``type``,
    ``depth``, ``output_shape`` (recorded by forward hooks; None for modules the pass did not
    call), ``params`` (its own and its children's) and ``flops`` (counted by
    ``torch.utils.flop_counter.FlopCounterMode``, a multiply-add counting 2, for the whole
    batch). Totals: ``params``, ``trainable_params``, ``flops`` and ``flops_per_image``.
    ``geometry``: image, patch, grid and token counts from the model's ``ViTView``, or None.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    height, width = _pair(image_size)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    # An input that requires grad keeps nn.MultiheadAttention off its fused inference path, whose
    # single kernel the FLOP counter cannot see into (it would miss all attention FLOPs).
    images = torch.zeros(batch, 3, height, width, device=device, dtype=dtype, requires_grad=True)

    modules = list(model.named_modules())
    shapes: dict[str, list[int]] = {}

    def record(name: str):
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            tensor = _first_tensor(output)
            if tensor is not None:
                shapes.setdefault(name, list(tensor.shape))
        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in modules]
    counter = FlopCounterMode(display=False, custom_mapping=_extra_flop_formulas())
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), counter:
            model(images)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    root = type(model).__name__
    flops = {key: sum(counts.values()) for key, counts in counter.get_flop_counts().items()}
    rows = [
        {
            "name": name,
            "type": type(module).__name__,
            "depth": name.count(".") + 1 if name else 0,
            "output_shape": shapes.get(name),
            "params": sum(p.numel() for p in module.parameters()),
            "flops": int(flops.get(f"{root}.{name}" if name else root, 0)),
        }
        for name, module in modules
    ]
    total_flops = int(counter.get_total_flops())
    return {
        "model": root,
        "input_shape": [batch, 3, height, width],
        "rows": rows,
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "flops": total_flops,
        "flops_per_image": total_flops // batch,
        "geometry": _geometry(model),
    }


def _si(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def format_geometry(geometry: dict[str, Any]) -> str:
    """``64x64 input, 8x8 patches -> 8x8 grid = 64 patches + 1 prefix token = 65 tokens; ...``"""
    g = geometry

    def count(number: int, noun: str, plural: str = "s") -> str:
        return f"{number} {noun}{'' if number == 1 else plural}"

    return (f"{g['image_size'][0]}x{g['image_size'][1]} input, {g['patch_size'][0]}x{g['patch_size'][1]} "
            f"patches -> {g['grid'][0]}x{g['grid'][1]} grid = {count(g['patches'], 'patch', 'es')} + "
            f"{count(g['prefix_tokens'], 'prefix token')} = {count(g['tokens'], 'token')}; "
            f"{count(g['blocks'], 'block')}, {count(g['heads'], 'head')}, {g['pooling']} pooling")


def format_table(summary: dict[str, Any], max_depth: int | None = None) -> str:
    """The summary as a fixed-width text table, modules indented by depth (those deeper than
    ``max_depth`` left out), then the totals and the geometry."""
    rows = [r for r in summary["rows"] if max_depth is None or r["depth"] <= max_depth]
    labels = [("  " * r["depth"]) + (f"{r['name'].rsplit('.', 1)[-1]} ({r['type']})" if r["name"] else r["type"])
              for r in rows]
    shapes = [str(r["output_shape"]) if r["output_shape"] is not None else "-" for r in rows]
    width = max([len("Module")] + [len(label) for label in labels])
    shape_width = max([len("Output shape")] + [len(s) for s in shapes])
    lines = [f"{'Module':<{width}}  {'Output shape':<{shape_width}}  {'Params':>12}  {'FLOPs':>9}"]
    lines.append("-" * len(lines[0]))
    for row, label, shape in zip(rows, labels, shapes):
        lines.append(f"{label:<{width}}  {shape:<{shape_width}}  {row['params']:>12,}  {_si(row['flops']):>9}")
    lines.append("-" * len(lines[0]))
    lines.append(f"Parameters: {summary['params']:,} ({summary['trainable_params']:,} trainable)")
    lines.append(f"FLOPs per image: {_si(summary['flops_per_image'])} (forward, input {summary['input_shape']})")
    if summary.get("geometry"):
        lines.append(f"Geometry: {format_geometry(summary['geometry'])}")
    return "\n".join(lines)
