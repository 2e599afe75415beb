"""The attention explorer: a run's best model, its ``ViTView`` and pictures of where a patch looks.

Everything goes through the ``vit_view`` hook, so any model a plugin describes (torchvision,
timm, Hugging Face) works, and a model nobody describes gets a clear "no view" answer. The
rollout and the statistics are vitcore-viz-attention's own functions. Loaded models are cached
per run (and reloaded when the checkpoint changes); nothing is written anywhere.

torch, numpy, PIL and matplotlib are imported inside the functions.
"""

from __future__ import annotations

import base64
import io
import math
import os
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

#: Side, in pixels, of the pictures the page shows (small model inputs are scaled up).
DISPLAY = 288
#: Validation images offered per run.
SAMPLES = 8
#: Decoded uploads larger than this many pixels are refused before decoding.
MAX_UPLOAD_PIXELS = 40_000_000


class ExplorerError(ValueError):
    """A request the explorer cannot answer: the message says why and what to do (HTTP 400, or
    409 for "not yet": the run has no checkpoint so far)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LoadedModel:
    """One run's model, view and validation images, with a lock: one forward pass at a time."""

    checkpoint: tuple[str, int]
    model: Any
    classes: list[str]
    preprocessing: Any
    view: Any
    no_view_reason: str | None
    samples: list[tuple[Any, int]]
    lock: threading.Lock = field(default_factory=threading.Lock)


def _checkpoint(run_dir: Path) -> tuple[str, int]:
    for name in ("best.pt", "last.pt"):
        path = run_dir / "checkpoints" / name
        try:
            return name, path.stat().st_mtime_ns
        except OSError:
            continue
    raise ExplorerError(f"{run_dir.name}: no checkpoint yet (checkpoints/best.pt or last.pt); the attention "
                        "explorer works once the run has finished its first epoch", status=409)


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_pil(image: "torch.Tensor", size: int = DISPLAY) -> Any:
    """A ``(3, H, W)`` uint8 tensor as a PIL image scaled to ``size`` on its longer side."""
    from PIL import Image

    array = image.permute(1, 2, 0).contiguous().numpy()
    picture = Image.fromarray(array, "RGB")
    scale = size / max(picture.size)
    resample = Image.Resampling.NEAREST if scale >= 3 else Image.Resampling.BILINEAR
    return picture.resize((round(picture.width * scale), round(picture.height * scale)), resample)


def overlay(image: "torch.Tensor", weights: "torch.Tensor", patch: tuple[int, int] | None) -> bytes:
    """The image with ``weights`` (grid-shaped) in colour over it, patch lines and the query patch."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    base = to_pil(image).convert("RGBA")
    values = weights.float().numpy()
    top = float(values.max()) if values.size else 0.0
    scaled = values / top if top > 0 else values
    colours = (colormaps["inferno"](scaled) * 255).astype(np.uint8)
    colours[..., 3] = 150
    heat = Image.fromarray(colours, "RGBA").resize(base.size, Image.Resampling.NEAREST)
    picture = Image.alpha_composite(base, heat)
    draw = ImageDraw.Draw(picture)
    rows, cols = values.shape
    cell_w, cell_h = picture.width / cols, picture.height / rows
    for c in range(1, cols):
        draw.line([(c * cell_w, 0), (c * cell_w, picture.height)], fill=(255, 255, 255, 60))
    for r in range(1, rows):
        draw.line([(0, r * cell_h), (picture.width, r * cell_h)], fill=(255, 255, 255, 60))
    if patch is not None:
        r, c = patch
        draw.rectangle([c * cell_w, r * cell_h, (c + 1) * cell_w - 1, (r + 1) * cell_h - 1],
                       outline=(0, 255, 255, 255), width=3)
    return _png(picture.convert("RGB"))


class AttentionExplorer:
    """Loads run models on demand (a few at a time) and answers the explorer's questions."""

    def __init__(self, max_models: int = 3, max_uploads: int = 32) -> None:
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._uploads: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.max_models, self.max_uploads = max_models, max_uploads

    # -- the model of a run ----------------------------------------------------------------

    def loaded(self, run_dir: Path) -> LoadedModel:
        key = os.fspath(run_dir)
        checkpoint = _checkpoint(run_dir)
        with self._lock:
            current = self._models.get(key)
            if current is not None and current.checkpoint == checkpoint:
                self._models.move_to_end(key)
                return current
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # two first requests for one run load it once
            with self._lock:
                current = self._models.get(key)
                if current is not None and current.checkpoint == checkpoint:
                    return current
            fresh = self._load(run_dir, checkpoint)
            with self._lock:
                self._models[key] = fresh
                self._models.move_to_end(key)
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            return fresh

    @staticmethod
    def _load(run_dir: Path, checkpoint: tuple[str, int]) -> LoadedModel:
        import torch

        from vitcore.api import VitcoreError, load_run_model, read_json, validation_samples, vit_view

        try:
            run = load_run_model(run_dir, torch.device("cpu"))
        except VitcoreError as exc:
            raise ExplorerError(str(exc)) from None
        view = vit_view(run.model)
        reason = None
        if view is None:
            reason = (f"no installed plugin describes a {type(run.model).__name__} as a ViT (the vit_view hook), "
                      "so there is no attention to show; install the model's vitcore plugin")
        samples: list[tuple[Any, int]] = []
        try:
            spec = read_json(run_dir / "spec.json")
            samples = [(image, int(label)) for image, label in validation_samples(spec, run.preprocessing, SAMPLES)]
        except (VitcoreError, OSError, KeyError, TypeError, ValueError):
            samples = []  # the data set is gone: uploads still work
        return LoadedModel(checkpoint, run.model, list(run.classes), run.preprocessing, view, reason, samples)

    def info(self, run_dir: Path) -> dict[str, Any]:
        """What the page needs to draw the controls: grid, blocks, heads, classes, samples."""
        loaded = self.loaded(run_dir)
        view = loaded.view
        base: dict[str, Any] = {
            "available": view is not None,
            "reason": loaded.no_view_reason,
            "checkpoint": loaded.checkpoint[0],
            "classes": loaded.classes,
            "samples": [{"index": i, "label": loaded.classes[label] if 0 <= label < len(loaded.classes) else None}
                        for i, (_, label) in enumerate(loaded.samples)],
            "image_size": loaded.preprocessing.image_size,
        }
        if view is not None:
            base.update(grid=list(view.grid), patch_size=list(view.patch_size), blocks=view.num_blocks,
                        heads=view.num_heads, prefix_tokens=view.num_prefix_tokens, pooling=view.pooling)
        return base

    def sample_png(self, run_dir: Path, index: int) -> bytes:
        loaded = self.loaded(run_dir)
        if not 0 <= index < len(loaded.samples):
            raise ExplorerError(f"sample {index} does not exist: this run offers {len(loaded.samples)} "
                                "validation images")
        return _png(to_pil(loaded.samples[index][0]))

    # -- uploads ---------------------------------------------------------------------------

    def add_upload(self, run_dir: Path, data: bytes, filename: str = "upload") -> dict[str, Any]:
        """Decode an uploaded picture as the data sets do, prepared for this run's model."""
        from PIL import Image

        from vitcore.api import VitcoreError, eval_transform, load_rgb

        if not data:
            raise ExplorerError("the upload is empty: send the picture's bytes as the request body")
        loaded = self.loaded(run_dir)
        suffix = Path(filename).suffix.lower()[:8] if filename else ""
        handle = tempfile.NamedTemporaryFile(prefix="vitcore-dashboard-", suffix=suffix, delete=False)
        try:
            with handle:
                handle.write(data)
            try:
                with Image.open(handle.name) as probe:
                    pixels = probe.size[0] * probe.size[1]
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                reason = str(exc).replace(handle.name, "the upload").replace("'the upload'", "the upload")
                raise ExplorerError(f"the upload is not a picture vitcore can read ({reason}); "
                                    "send a PNG, JPEG, BMP, GIF, TIFF or WebP file") from None
            if pixels > MAX_UPLOAD_PIXELS:
                raise ExplorerError(f"the upload has {pixels:,} pixels; at most {MAX_UPLOAD_PIXELS:,} are decoded")
            try:
                image = load_rgb(handle.name)
            except VitcoreError as exc:
                message = str(exc).replace(handle.name, "the upload").replace(" Remove or replace it.", "")
                raise ExplorerError(f"{message}; send a PNG, JPEG, BMP, GIF, TIFF or WebP file") from None
        finally:
            os.unlink(handle.name)
        tensor = eval_transform(loaded.preprocessing)(image)
        token = uuid.uuid4().hex
        with self._lock:
            self._uploads[token] = (os.fspath(run_dir), tensor)
            while len(self._uploads) > self.max_uploads:
                self._uploads.popitem(last=False)
        return {"upload": token, "width": image.width, "height": image.height,
                "image": data_url(_png(to_pil(tensor)))}

    def _image(self, run_dir: Path, loaded: LoadedModel, sample: int | None, upload: str | None) -> Any:
        if upload:
            with self._lock:
                found = self._uploads.get(upload)
            if found is None or found[0] != os.fspath(run_dir):
                raise ExplorerError(f"upload {upload} is not known (uploads are kept in memory for a while "
                                    "and per run): upload the picture again")
            return found[1]
        index = 0 if sample is None else sample
        if not 0 <= index < len(loaded.samples):
            raise ExplorerError(f"sample {index} does not exist: this run offers {len(loaded.samples)} "
                                "validation images; upload a picture instead")
        return loaded.samples[index][0]

    # -- the answer ------------------------------------------------------------------------

    def explain(self, run_dir: Path, *, sample: int | None = None, upload: str | None = None,
                layer: int | str = "rollout", head: int | str = "mean",
                patch: tuple[int, int] | None = None) -> dict[str, Any]:
        """Where ``patch`` (or the class token when None) looks, in ``layer``/``head`` or by rollout.

        ``layer`` is a block index or ``"rollout"`` (all blocks composed); ``head`` a head index,
        or ``"mean"``, ``"max"`` or ``"min"`` over the heads (rollout takes only these). Without a
        patch, rollout shows what feeds the output the classifier reads (the class token, or the
        mean of the patch tokens of an average-pooled model). The answer holds the picture (a PNG data URL), the weights on the grid,
        the prediction with probabilities and the layer's per-head statistics.
        """
        import torch

        from vitcore.api import normalize
        from vitcore_viz_attention.attention_viz import query_token
        from vitcore_viz_attention.metrics import attention_entropy, mean_attention_distance, query_attention
        from vitcore_viz_attention.rollout import attention_rollout, fuse_heads, rollout

        loaded = self.loaded(run_dir)
        view = loaded.view
        if view is None:
            raise ExplorerError(loaded.no_view_reason or "this model gives no ViT view")
        image = self._image(run_dir, loaded, sample, upload)
        rows, cols = view.grid
        if patch is not None and not (0 <= patch[0] < rows and 0 <= patch[1] < cols):
            raise ExplorerError(f"patch {list(patch)} lies outside the model's {rows}x{cols} patch grid")
        if layer != "rollout" and not (isinstance(layer, int) and 0 <= layer < view.num_blocks):
            raise ExplorerError(f"layer must be a block from 0 to {view.num_blocks - 1}, or rollout; got {layer}")
        fusions = ("mean", "max", "min")
        if layer == "rollout" and head not in fusions:
            raise ExplorerError(f"rollout combines the heads of every block: head must be mean, max or min; got {head}")
        if head not in fusions and not (isinstance(head, int) and 0 <= head < view.num_heads):
            raise ExplorerError(f"head must be from 0 to {view.num_heads - 1}, or mean, max or min; got {head}")
        parameter = next(loaded.model.parameters())
        batch = normalize(image[None], loaded.preprocessing, parameter.device).to(parameter.dtype)
        with loaded.lock, torch.no_grad():
            maps = [a.float().cpu() for a in view.capture_attention(batch)]
            was_training = loaded.model.training
            loaded.model.eval()
            try:
                probabilities = loaded.model(batch).float().softmax(dim=1)[0]
            finally:
                loaded.model.train(was_training)
        prefix = view.num_prefix_tokens
        share: float | None = None
        if layer == "rollout" and patch is None:  # what feeds the output the classifier reads
            weights = attention_rollout(maps, prefix, view.pooling, head)[0]
            chosen = None
            who = ("the class token" if view.pooling == "token" and prefix
                   else "the pooled output (the mean of the patch tokens)")
        else:
            query, chosen = query_token(view, patch)
            who = "the class token" if chosen is None else f"patch (row {chosen[0]}, column {chosen[1]})"
        if layer == "rollout" and patch is not None:
            row = rollout(maps, head)[0, query, prefix:]
            weights = row / row.sum().clamp_min(torch.finfo(row.dtype).tiny)
        elif layer != "rollout":
            per_head = query_attention(maps[layer], query, prefix)[0]  # (heads, N)
            weights = fuse_heads(per_head[None], head)[0] if head in fusions else per_head[head]
            share = float(weights.sum())
        grid = weights.reshape(rows, cols)
        stats_layer = view.num_blocks - 1 if layer == "rollout" else layer
        attention = maps[stats_layer]
        stats = {
            "layer": stats_layer,
            "entropy": [round(float(v), 4) for v in attention_entropy(attention)],
            "uniform_entropy": round(math.log(attention.shape[-1]), 4),
            "distance_px": [round(float(v), 3) for v in
                            mean_attention_distance(attention, view.grid, view.patch_size, prefix)],
        }
        k = min(5, len(loaded.classes))
        top = probabilities.topk(k)
        return {
            "layer": layer,
            "head": head,
            "patch": list(chosen) if chosen else None,
            "query": who,
            "grid": [rows, cols],
            "weights": [[round(float(v), 6) for v in row] for row in grid],
            "share_on_patches": share,
            "image": data_url(overlay(image, grid, chosen)),
            "prediction": [{"label": loaded.classes[i], "probability": round(float(p), 6)}
                           for p, i in zip(top.values.tolist(), top.indices.tolist())],
            "stats": stats,
        }
