"""The ``hf_pretrained`` exporter: a folder ``from_pretrained`` and ``AutoImageProcessor`` can load."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from vitcore.api import ExportContext, Exporter, VitcoreError
from vitcore_vit_hf.processor import image_processor


def replace_folder_atomically(folder: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_folder)`` on a hidden sibling, then rename it into place.

    Readers see the old folder or the new one, never a half-written one; a failed write leaves
    the old folder untouched.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old)
        else:
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """transformers' progress bars off for the block (and back on after, if they were on)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class HFPretrainedExporter(Exporter):
    """exports/hf/: save_pretrained config (id2label) and safetensors weights, plus an image processor."""

    name = "hf_pretrained"

    def export(self, ctx: ExportContext) -> list[Path]:
        from vitcore_vit_hf.classifier import HFImageClassifier
        from vitcore_vit_hf.loading import set_labels

        if not isinstance(ctx.model, HFImageClassifier):
            model_type = ctx.spec.get("model", {}).get("type", type(ctx.model).__name__)
            raise VitcoreError(
                f"exporters: hf_pretrained exports hf_vit models only, and this run's model is {model_type!r}; "
                "use the safetensors or torch exporter for it"
            )
        hf_model = ctx.model.hf_model
        set_labels(hf_model.config, ctx.classes)

        def write(tmp: Path) -> None:
            with _no_progress_bar():  # "Writing model shards" for one file in a fraction of a second
                hf_model.save_pretrained(tmp)
            image_processor(ctx.preprocessing).save_pretrained(tmp)

        folder = replace_folder_atomically(ctx.out_dir / "hf", write)
        return sorted(path for path in folder.iterdir() if path.is_file())
