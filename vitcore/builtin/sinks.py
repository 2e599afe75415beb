"""Built-in metric sinks: jsonl (always on), csv, tensorboard, console."""

from __future__ import annotations

import csv
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

from pydantic import Field

from vitcore import hookimpl
from vitcore.components import MetricSink, Options, SinkContext
from vitcore.metrics_file import FILENAME, truncate_after_step


def scalars(record: Mapping[str, Any]) -> dict[str, int | float]:
    """The numeric fields of a record (sinks that only show numbers ignore lists and flags)."""
    return {
        k: v for k, v in record.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


class JsonlSink(MetricSink):
    """One JSON object per record in metrics.jsonl, flushed at once so it can be followed live."""

    name = "jsonl"

    def open(self, ctx: SinkContext) -> None:
        path = ctx.run_dir / FILENAME
        if ctx.resumed:
            truncate_after_step(path, ctx.start_step)
        self.handle = open(path, "a", encoding="utf-8", buffering=1)

    def log(self, record: Mapping[str, Any]) -> None:
        self.handle.write(json.dumps(dict(record)) + "\n")
        self.handle.flush()

    def close(self) -> None:
        if getattr(self, "handle", None) is not None and not self.handle.closed:
            self.handle.close()


class CsvSink(MetricSink):
    """Numeric fields as CSV, one file per event kind: metrics_train.csv, metrics_epoch.csv."""

    name = "csv"

    def open(self, ctx: SinkContext) -> None:
        self.run_dir = ctx.run_dir
        self.writers: dict[str, tuple[Any, csv.DictWriter]] = {}
        if ctx.resumed:
            for path in ctx.run_dir.glob("metrics_*.csv"):
                _truncate_csv(path, ctx.start_step)

    def log(self, record: Mapping[str, Any]) -> None:
        event = str(record.get("event", "other"))
        row = scalars(record)
        if event not in self.writers:
            path = self.run_dir / f"metrics_{event}.csv"
            existing = _header(path)
            handle = open(path, "a", encoding="utf-8", newline="")
            writer = csv.DictWriter(handle, fieldnames=existing or list(row), extrasaction="ignore")
            if not existing:
                writer.writeheader()
            self.writers[event] = (handle, writer)
        handle, writer = self.writers[event]
        writer.writerow(row)
        handle.flush()

    def close(self) -> None:
        for handle, _ in getattr(self, "writers", {}).values():
            handle.close()
        self.writers = {}


def _header(path: Path) -> list[str] | None:
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle), None)


def _truncate_csv(path: Path, step: int) -> None:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
        fieldnames = list(rows[0]) if rows else _header(path) or []
    kept = [r for r in rows if float(r.get("step") or 0) <= step]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(tmp, path)


class TensorBoardOptions(Options):
    flush_secs: int = Field(10, ge=1, description="Seconds between flushes of the event file.")
    log_graph: bool = Field(True, description="Add the model graph once at the start of a run.")


#: How record fields map to TensorBoard tags, per event kind.
_TAGS = {
    "train": {"loss": "train/loss", "acc": "train/acc", "lr": "train/lr",
              "images_per_sec": "train/images_per_sec"},
    "epoch": {"train_loss": "epoch/train_loss", "train_acc": "epoch/train_acc", "val_loss": "val/loss",
              "val_acc1": "val/acc1", "val_acc5": "val/acc5", "lr": "epoch/lr",
              "epoch_time": "epoch/time_s", "images_per_sec": "epoch/images_per_sec"},
}


class TensorBoardSink(MetricSink):
    """Scalars, learning rate, pictures and the model graph in run_dir/tb."""

    name = "tensorboard"
    Options = TensorBoardOptions

    def open(self, ctx: SinkContext) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = ctx.start_step + 1 if ctx.resumed else None
        self.writer = SummaryWriter(str(ctx.run_dir / "tb"), flush_secs=self.options.flush_secs,
                                    purge_step=purge)

    def log(self, record: Mapping[str, Any]) -> None:
        tags = _TAGS.get(str(record.get("event")), {})
        step = int(record.get("step", 0))
        for key, value in scalars(record).items():
            if key in tags:
                self.writer.add_scalar(tags[key], value, step)
        if record.get("event") == "epoch":
            self.writer.flush()

    def log_image(self, tag: str, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(tag, pixels, step, dataformats="HWC")
        self.writer.flush()

    def log_graph(self, model: Any, example: Any) -> None:
        if not self.options.log_graph:
            return
        import functools
        from unittest import mock

        import torch

        # TensorBoard traces with check_trace=True, which rejects models with shape asserts
        # (torchvision's ViT) for a harmless renaming difference; the graph itself is fine.
        unchecked = functools.partial(torch.jit.trace, check_trace=False)
        try:
            with warnings.catch_warnings(), mock.patch("torch.jit.trace", unchecked):
                warnings.simplefilter("ignore")
                self.writer.add_graph(model, example)
        except Exception as exc:  # noqa: BLE001 - a model that cannot be traced only loses its graph
            warnings.warn(f"tensorboard: the model graph could not be traced ({exc}); skipped", stacklevel=2)

    def close(self) -> None:
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.close()
            self.writer = None


class ConsoleSink(MetricSink):
    """One line per epoch on standard output."""

    name = "console"

    def log(self, record: Mapping[str, Any]) -> None:
        if record.get("event") != "epoch":
            return
        parts = [f"epoch {record['epoch']:>3}",
                 f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}",
                 f"val loss {record['val_loss']:.4f} acc1 {record['val_acc1']:.4f}"]
        if record.get("val_acc5") is not None:
            parts.append(f"acc5 {record['val_acc5']:.4f}")
        parts.append(f"{record.get('images_per_sec', 0):.0f} img/s")
        parts.append(f"{record.get('epoch_time', 0):.1f}s")
        line = " | ".join(parts)
        print(line + ("  * best" if record.get("best") else ""), flush=True)


@hookimpl
def register_metric_sinks(register) -> None:
    register(JsonlSink)
    register(CsvSink)
    register(TensorBoardSink)
    register(ConsoleSink)
