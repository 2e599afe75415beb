"""``vitcore prune RUN_DIR --heads 0.25 --mlp 0.5 [--finetune-epochs N]``.

Scores every head and MLP channel of the run's best model, keeps the most important ones (the
same share in every block), and makes the next version of the run from the pruned model:
with fine-tuning epochs the engine trains it (a spec whose model is ``pruned`` with
``init_from`` the source run, so summary.json's ``lineage`` names it); without, the pruned
weights are evaluated and saved as that version's best model (``vitcore_prune.version``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import click

from vitcore.api import VitcoreError



def add_commands(cli: click.Group) -> None:
    cli.add_command(prune_command)


@click.command("prune")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--heads", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Share of each block's attention heads to remove (rounded to whole heads).")
@click.option("--mlp", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Share of each block's MLP hidden channels to remove.")
@click.option("--finetune-epochs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Epochs to train the pruned model (the source's train settings, no warm-up).")
@click.option("--criterion", type=click.Choice(["taylor", "magnitude"]), default="taylor", show_default=True,
              help="taylor: loss change estimated on training batches; magnitude: weight norms (no data).")
@click.option("--batches", type=click.IntRange(min=1), default=8, show_default=True,
              help="Training batches the taylor criterion is measured on.")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Change the new version's spec, e.g. --set train.lr=0.0003 (repeatable).")
def prune_command(run_dir: Path, heads: float, mlp: float, finetune_epochs: int, criterion: str, batches: int,
                  overrides: tuple[str, ...]) -> None:
    """Remove the least important attention heads and MLP channels of RUN_DIR's best model.

    Makes the next version of the run (runs/NAME/v<N+1>) from the pruned model, with its
    lineage to RUN_DIR; it trains (vitcore resume --set train.epochs=N), evaluates, visualises
    and exports like any other.
    """
    from vitcore.api import resolve_run_dir

    if heads == 0 and mlp == 0:
        raise VitcoreError("nothing to prune: give --heads and/or --mlp, e.g. --heads 0.25 --mlp 0.5")
    source = resolve_run_dir(run_dir)
    result = prune_run(source, heads, mlp, finetune_epochs, criterion, batches, list(overrides))
    facts = result["pruning"]
    click.echo(f"Pruned {source} -> {result['run_dir']}: heads {facts['heads_before']} -> {facts['heads_after']} "
               f"per block, MLP channels {facts['mlp_before']} -> {facts['mlp_after']} per block, parameters "
               f"{facts['parameters_before']:,} -> {facts['parameters_after']:,} "
               f"({facts['parameters_after'] / facts['parameters_before']:.1%})")
    summary = result["summary"]
    if summary.get("best_value") is not None:
        click.echo(f"  {summary['best_metric']} {summary['best_value']:.4f} after {summary['epochs_completed']} "
                   f"fine-tuning epoch(s); source {facts['source_value']:.4f}" if facts.get("source_value") is not None
                   else f"  {summary['best_metric']} {summary['best_value']:.4f}")


def prune_run(source: Path, heads: float, mlp: float, finetune_epochs: int = 0, criterion: str = "taylor",
              batches: int = 8, overrides: list[str] | None = None) -> dict[str, Any]:
    """Prune ``source``'s best model and make the next version from it; returns
    ``{"run_dir", "summary", "pruning"}``."""
    from vitcore.api import load_dict, load_run_model, preflight, read_json, train

    source = Path(source).absolute()  # init_from and lineage name it from any folder
    spec = read_json(source / "spec.json")
    if spec["model"].get("type") == "pruned":
        raise VitcoreError(f"{source}: is already a pruned run; prune its source run "
                           f"({spec['model'].get('init_from')}) with the larger shares instead")
    loaded = load_run_model(source)
    plan, facts = choose(loaded, spec, heads, mlp, criterion, batches)
    source_summary = read_json(source / "summary.json") if (source / "summary.json").is_file() else {}
    facts["source_value"] = source_summary.get("best_value")
    new_spec = pruned_spec(spec, source, plan, facts, finetune_epochs)
    resolved = load_dict(new_spec, list(overrides or []), source=f"the pruned spec of {source}", base_dir=source)
    preflight(resolved)
    if finetune_epochs > 0:
        result = train(resolved)
        return {"run_dir": result.run_dir, "summary": result.summary, "pruning": facts}
    from vitcore_prune.version import write_version

    run_dir, summary = write_version(resolved, loaded, source)
    return {"run_dir": run_dir, "summary": summary, "pruning": facts}


def choose(loaded: Any, spec: dict[str, Any], heads: float, mlp: float, criterion: str,
           batches: int) -> tuple[Any, dict[str, Any]]:
    """Score and prune ``loaded.model`` in place; returns the plan and what was done."""
    from vitcore_prune import importance
    from vitcore_prune.plan import Plan, keep_most_important, removed_count
    from vitcore_prune.surgery import describe, parameter_count, prune

    model = loaded.model
    layouts = describe(model)
    before = parameter_count(model)
    if criterion == "taylor":
        head_scores, channel_scores = importance.taylor(model, layouts, training_batches(spec, loaded, batches))
    else:
        head_scores, channel_scores = importance.magnitude(model, layouts)
    try:
        drop_heads = [removed_count(heads, b.num_heads, "--heads") for b in layouts]
        drop_mlp = [removed_count(mlp, b.hidden, "--mlp") for b in layouts]
    except ValueError as exc:
        raise VitcoreError(str(exc)) from None
    plan = Plan([keep_most_important(s, n) for s, n in zip(head_scores, drop_heads)],
                [keep_most_important(s, n) for s, n in zip(channel_scores, drop_mlp)])
    prune(model, plan)
    facts = {
        "source_run": str(loaded.run_dir), "criterion": criterion, "batches": batches if criterion == "taylor" else 0,
        "heads_share": heads, "mlp_share": mlp,
        "heads_before": layouts[0].num_heads, "heads_after": len(plan.heads[0]),
        "mlp_before": layouts[0].hidden, "mlp_after": len(plan.mlp[0]),
        "parameters_before": before, "parameters_after": parameter_count(model),
    }
    return plan, facts


def training_batches(spec: dict[str, Any], loaded: Any, count: int, batch_size: int = 32):
    """``count`` batches of the run's training images (evaluation transform, seeded choice), normalised."""
    import torch

    from vitcore.api import eval_transform, load_splits, normalize

    splits = load_splits(spec)
    size = spec.get("train", {}).get("batch_size")
    batch_size = size if isinstance(size, int) else batch_size
    total = min(len(splits.train), count * batch_size)
    order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))[:total].tolist()
    transform = eval_transform(loaded.preprocessing)
    for start in range(0, total, batch_size):
        items = [splits.train[i] for i in order[start:start + batch_size]]
        images = torch.stack([transform(image) for image, _ in items])
        yield normalize(images, loaded.preprocessing), torch.tensor([label for _, label in items])


def pruned_spec(spec: dict[str, Any], source: Path, plan: Any, facts: dict[str, Any],
                finetune_epochs: int) -> dict[str, Any]:
    """The source's spec.json with the pruned model (``init_from`` the source) and fine-tuning
    settings, as the next version of the same run."""
    out = copy.deepcopy(spec)
    base = {k: v for k, v in spec["model"].items() if k != "init_from"}
    out["model"] = {"type": "pruned", "base": base, **plan.to_options(), "init_from": str(source)}
    out["name"], out["output_dir"] = source.parent.name, str(source.parent.parent)
    train = out.setdefault("train", {})
    train["epochs"] = max(1, finetune_epochs)
    # From trained weights: no warm-up; the source's peak rate (a tenth of it recovered less
    # in an earlier quickstart measurement: 90.0% vs 94.8% after 3 and 6 epochs).
    train["warmup_epochs"] = 0
    # A new model version, not a sweep trial of the source: its own meta.
    out["meta"] = {"pruning": facts}
    # Unset sections are left out, so --set distill.teacher=RUN or train.ema.decay=... can add them.
    for section, key in ((out, "distill"), (train, "ema")):
        if key in section and section[key] is None:
            del section[key]
    return out
