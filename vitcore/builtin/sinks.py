"""Built-in metric sinks: jsonl (always on), csv, tensorboard, console."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pydantic import Field

from vitcore import hookimpl
from vitcore.components import MetricSink, Options, SinkContext
from vitcore.metrics_file import FILENAME, truncate_after_step, write_text_atomic

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


def scalars(record: Mapping[str, Any]) -> dict[str, int | float]:
    """The numeric fields of a record (sinks that only show numbers ignore lists and flags)."""
    return {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


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
            existing = _header(path)  # a resumed run keeps its columns
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
    """Keep rows up to ``step``; a row torn by a kill (too few fields) goes too."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        fieldnames = list(reader.fieldnames or [])
    if not fieldnames:
        return
    whole = [r for r in rows if None not in r and None not in r.values()]
    kept = [r for r in whole if float(r.get("step") or 0) <= step]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(kept)
    write_text_atomic(path, text.getvalue())


class TensorBoardOptions(Options):
    flush_secs: int = Field(10, ge=1, description="Seconds between flushes of the event file.")
    log_graph: bool = Field(True, description="Add the model graph once at the start of a run.")


#: Record fields that are coordinates, not metrics.
_NOT_METRICS = frozenset({"event", "epoch", "step", "time"})


def tensorboard_tag(event: str, key: str) -> str | None:
    """``train/loss`` for train records; ``val/acc1`` and ``epoch/train_loss`` for epoch records.

    A rule rather than a table, so metrics a plugin adds to the records show up too.
    """
    if key in _NOT_METRICS:
        return None
    if event == "train":
        return f"train/{key}"
    if event == "epoch":
        return f"val/{key[4:]}" if key.startswith("val_") else f"epoch/{key}"
    return None


class TensorBoardSink(MetricSink):
    """Scalars, learning rate, pictures and the model graph in run_dir/tb."""

    name = "tensorboard"
    Options = TensorBoardOptions

    def open(self, ctx: SinkContext) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard drops events at steps >= purge_step; records at start_step itself were kept.
        purge = ctx.start_step + 1 if ctx.resumed else None
        self.writer = SummaryWriter(str(ctx.run_dir / "tb"), flush_secs=self.options.flush_secs,
                                    purge_step=purge)

    def log(self, record: Mapping[str, Any]) -> None:
        event = str(record.get("event"))
        step = int(record.get("step", 0))
        walltime = record.get("time") if isinstance(record.get("time"), (int, float)) else None
        for key, value in scalars(record).items():
            tag = tensorboard_tag(event, key)
            if tag is not None:
                self.writer.add_scalar(tag, value, step, walltime=walltime)
        if event == "epoch":
            self.writer.flush()

    def log_image(self, tag: str, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(tag, pixels, step, dataformats="HWC")
        self.writer.flush()

    def log_histogram(self, tag: str, values: Any, step: int) -> None:
        self.writer.add_histogram(tag, values, step)

    def log_graph(self, model: torch.nn.Module, example: torch.Tensor) -> None:
        if not self.options.log_graph:
            return
        import torch

        was_training = model.training
        model.eval()  # a deterministic graph, and no batch-norm statistics touched by the trace
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the tracer's deprecation and TracerWarnings
                # add_graph's own trace re-runs the model to check it, which rejects models with
                # shape asserts (torchvision's ViT) over a harmless difference; a module traced
                # here unchecked passes through add_graph as it is.
                traced = torch.jit.trace(model, example, check_trace=False)
                self.writer.add_graph(traced, example)
        except Exception as exc:  # noqa: BLE001 - a model that cannot be traced only loses its graph
            warnings.warn(f"tensorboard: the model graph could not be traced ({exc}); skipped", stacklevel=2)
        finally:
            model.train(was_training)

    def close(self) -> None:
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.close()
            self.writer = None


def _number(record: Mapping[str, Any], key: str, spec: str = ".4f") -> str:
    value = record.get(key)
    return format(value, spec) if isinstance(value, (int, float)) else "-"


class ConsoleSink(MetricSink):
    """One line per epoch on standard output."""

    name = "console"

    def log(self, record: Mapping[str, Any]) -> None:
        if record.get("event") != "epoch":
            return
        val = f"val loss {_number(record, 'val_loss')} acc1 {_number(record, 'val_acc1')}"
        if isinstance(record.get("val_acc5"), (int, float)):
            val += f" acc5 {_number(record, 'val_acc5')}"
        parts = [
            f"epoch {record.get('epoch', 0):>3}",
            f"train loss {_number(record, 'train_loss')} acc {_number(record, 'train_acc')}",
            val,
            f"{_number(record, 'images_per_sec', '.0f')} img/s",
            f"{_number(record, 'epoch_time', '.1f')}s",
        ]
        print(" | ".join(parts) + ("  * best" if record.get("best") else ""), flush=True)


@hookimpl
def register_metric_sinks(register) -> None:
    register(JsonlSink)
    register(CsvSink)
    register(TensorBoardSink)
    register(ConsoleSink)
