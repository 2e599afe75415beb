"""A pruned model version without fine-tuning: the run folder a training run would leave, minus
the training (no epochs, no optimizer state).

The model is rebuilt from the new spec.json (the ``pruned`` builder) and must take the pruned
weights exactly; it is evaluated on the whole validation split, saved as ``checkpoints/best.pt``
(what ``load_run_model`` reads), summarised, and exported with the spec's exporters. Without a
``last.pt``, ``vitcore resume RUN --set train.epochs=N`` trains it from ``init_from``: the
pruned source weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vitcore.api import LoadedRun, ModelContext, ResolvedSpec, VitcoreError


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: Any, pre: Any, batch_size: int = 64) -> dict[str, Any]:
    """Loss, top-1 and top-5 over every item of ``dataset`` (the evaluation transform)."""
    from vitcore.api import eval_transform, normalize

    transform = eval_transform(pre)
    model.eval()
    loss = correct1 = correct5 = count = 0.0
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        images = normalize(torch.stack([transform(image) for image, _ in items]), pre)
        labels = torch.tensor([label for _, label in items])
        logits = model(images).float()
        loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += float((top[:, 0] == labels).sum())
        correct5 += float((top == labels[:, None]).any(1).sum())
        count += len(items)
    return {"val_loss": loss / count, "val_acc1": correct1 / count,
            "val_acc5": correct5 / count if logits.shape[1] > 5 else None, "images": int(count)}


def lineage(source: Path, checkpoint: Path, classes: list[str]) -> dict[str, Any]:
    """What ``model.init_from`` records, for a version made without the engine."""
    from vitcore.api import sha256

    return {"init_from": str(source), "checkpoint": str(checkpoint), "sha256": sha256(checkpoint),
            "source_classes": classes, "new_head": [], "resized": [],
            "source_run": {"name": source.parent.name, "version": source.name, "path": str(source)}}


def write_version(resolved: ResolvedSpec, loaded: LoadedRun, source: Path) -> tuple[Path, dict[str, Any]]:
    """Make the next version of the run from ``loaded.model`` (already pruned); returns its folder
    and summary."""
    from vitcore.api import (
        atomic_path,
        create_version_dir,
        export_run,
        format_table,
        load_splits,
        now_iso,
        summarize,
        write_json_atomic,
        write_text_atomic,
    )

    started = now_iso()
    classes = list(loaded.classes)
    builder = resolved.model.instantiate()
    model = builder.build(ModelContext(num_classes=len(classes), class_names=classes, load_pretrained=False,
                                       spec_dir=resolved.base_dir))
    state = loaded.model.state_dict()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # a bug in the plan or the surgery, never the user's doing
        raise VitcoreError(f"the pruned spec does not rebuild the pruned model: {exc}") from exc
    pre = builder.preprocessing()
    splits = load_splits(resolved)
    metrics = evaluate(model, splits.val, pre)
    spec = resolved.spec
    metric = spec.train.best_metric
    value = metrics[metric] if metrics.get(metric) is not None else metrics["val_acc1"]

    run_dir = create_version_dir(Path(spec.output_dir), spec.name)
    write_json_atomic(run_dir / "spec.json", resolved.to_dict())
    payload = {"model": state, "classes": classes, "preprocessing": pre.to_dict(),
               "model_spec": resolved.to_dict()["model"], "epoch": 0, "metric": metric, "value": value,
               "val_acc1": metrics["val_acc1"], "val_loss": metrics["val_loss"], "weights": "raw"}
    with atomic_path(run_dir / "checkpoints" / "best.pt") as tmp:
        torch.save(payload, tmp)
    table = summarize(model, pre.image_size)
    write_json_atomic(run_dir / "model_summary.json", table)
    write_text_atomic(run_dir / "model_summary.txt", format_table(table) + "\n")
    summary: dict[str, Any] = {
        "name": spec.name, "version": run_dir.name, "run_dir": str(run_dir), "classes": classes,
        "preprocessing": pre.to_dict(), "parameters": sum(p.numel() for p in model.parameters()),
        "device": "cpu", "precision": "fp32", "world_size": 1, "data": splits.info, "meta": spec.meta,
        "lineage": lineage(source, loaded.checkpoint, classes), "flops_per_image": table["flops_per_image"],
        "started": started, "status": "running", "best_metric": metric, "epochs_completed": 0, "steps": 0,
        "best_epoch": 0, "best_value": value, "images_per_sec": None, "validation": metrics,
    }
    write_json_atomic(run_dir / "summary.json", summary)
    exports = export_run(run_dir, [e.type for e in resolved.exporters]) if resolved.exporters else []
    summary.update(status="completed", finished=now_iso(), plots=[], exports=[str(p) for p in exports])
    write_json_atomic(run_dir / "summary.json", summary)
    return run_dir, summary
