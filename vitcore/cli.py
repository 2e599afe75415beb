"""The ``vitcore`` command line: thin click commands over the modules that do the work.

Only commands that train or run a model import torch, and only inside their functions, so
``vitcore --help`` and ``vitcore plugins list`` stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from vitcore import __version__, lazy_dynamo, warning_format
from vitcore.errors import VitcoreError

lazy_dynamo.install()  # torchvision without torch._dynamo: seconds off every command that runs a model
warning_format.install()  # every warning as one line, "warning: <message>", from plugin loading on


class VitcoreGroup(click.Group):
    """Prints a VitcoreError as one clear message and exits with its code: no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VitcoreError as exc:
            # 130: an interrupted run says where it is and how to continue; no "Error" about it.
            click.secho(str(exc) if exc.exit_code == 130 else f"Error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:  # before a run folder exists (a run's own says where it is)
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=VitcoreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vitcore")
def main() -> None:
    """Train Vision Transformer image classifiers from one spec file.

    \b
    Quick start:
      vitcore run examples/quickstart.json
      vitcore dashboard runs
    """


# -- run / validate / resume ---------------------------------------------------------------

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="FIELD=VALUE",
    help="Override one spec field, e.g. --set train.epochs=3 (repeatable; values are JSON or text).",
)


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=False, path_type=Path))
@set_option
def run(spec_file: Path, overrides: tuple[str, ...]) -> None:
    """Train the model described by SPEC_FILE (JSON or YAML).

    Relative paths in SPEC_FILE are relative to its folder; those given with --set to the
    working directory.
    """
    from vitcore import spec as spec_module
    from vitcore.preflight import preflight

    resolved = spec_module.load(spec_file, list(overrides))
    preflight(resolved)  # the spec's rules now; the engine checks the data's before the run folder exists
    _train_and_report(resolved, None)


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option("--print", "print_spec", is_flag=True,
              help="Print the resolved spec (defaults filled in, paths absolute, bases merged) on stdout, "
                   "and on stderr where each value came from (file, --set or default).")
@click.option("--spec-only", is_flag=True,
              help="Check only what needs no data set or model (skip loading and building them).")
def validate(spec_file: Path, overrides: tuple[str, ...], print_spec: bool, spec_only: bool) -> None:
    """Check SPEC_FILE without training: whatever `vitcore run` would refuse.

    Loads the data set and builds the model on the CPU, as the run would before its first step;
    a broken rule exits 2 naming its field.
    """
    from vitcore import spec as spec_module
    from vitcore.preflight import check_without_training

    from vitcore import spec_extends

    resolved, merged = spec_module.load_merged(spec_file, list(overrides))
    check_without_training(resolved, spec_only=spec_only)
    if print_spec:
        click.echo(json.dumps(resolved.to_dict(), indent=2))
        rows = spec_extends.provenance(resolved.to_dict(), merged)
        click.echo("where each value came from:\n" + spec_extends.format_provenance(rows), err=True)
    else:
        click.echo(f"{spec_file}: valid")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@set_option
def resume(run_dir: Path, overrides: tuple[str, ...]) -> None:
    """Continue RUN_DIR from its last checkpoint (after a crash, a kill or Ctrl-C).

    --set may change what leaves the checkpoint valid (a diverged run: a lower train.lr,
    train.clip_grad_norm; more train.epochs for a finished run); see docs/ARCHITECTURE.md.
    """
    from vitcore import spec as spec_module
    from vitcore.engine.resume_changes import resume_spec
    from vitcore.preflight import preflight
    from vitcore.runs import read_json, resolve_run_dir

    run_dir = resolve_run_dir(run_dir)
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
    source = str(run_dir / "spec.json")
    data, changes = resume_spec(read_json(run_dir / "spec.json"), list(overrides), source)
    if summary.get("status") in {"completed", "early_stopped"}:
        # A completed version that trained fewer epochs than its spec plans (vitcore prune's, made
        # without fine-tuning) continues to the spec's count; otherwise only --set train.epochs does.
        planned = data.get("train", {}).get("epochs") if summary.get("status") == "completed" else 0
        more = changes.get("train.epochs", [None, planned])[1] or 0
        if not (isinstance(more, int) and more > int(summary.get("epochs_completed") or 0)):
            raise VitcoreError(f"{run_dir}: this run already finished ({summary['status']}); nothing to resume "
                               "(--set train.epochs=N with more epochs continues it)")
    resolved = spec_module.resolve(data, source=source)
    preflight(resolved)
    _train_and_report(resolved, run_dir, changes)


def _train_and_report(resolved, run_dir: Path | None, changes: dict[str, list] | None = None) -> None:
    from vitcore.engine.trainer import train

    result = train(resolved, run_dir, changes=changes)
    if result.summary and _is_main_process():
        _print_summary(result.summary)


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _print_summary(summary: dict[str, Any]) -> None:
    run_dir = Path(summary["run_dir"])
    metric, value = summary.get("best_metric"), summary.get("best_value")
    ips = summary.get("images_per_sec")
    lines = [
        "",
        click.style(f"Run {summary['name']}/{summary['version']}: {summary['status']}", bold=True),
        f"  run directory  {run_dir}",
        f"  best {metric:<9} {value:.4f} (epoch {summary.get('best_epoch')})" if value is not None else "",
        f"  epochs         {summary.get('epochs_completed')}   throughput {ips:.0f} images/s" if ips else "",
        _test_line(summary),
        f"  checkpoints    {run_dir / 'checkpoints'}",
        f"  plots          {run_dir / 'plots'}",
        f"  exports        {run_dir / 'exports'}",
        f"  TensorBoard    vitcore dashboard {run_dir.parent.parent}",
    ]
    click.echo("\n".join(line for line in lines if line))


def _test_line(summary: dict[str, Any]) -> str:
    """The test split's key figures (summary.json's ``test``), why there are none
    (``test_error``), or nothing without a test split."""
    test = summary.get("test")
    if not test:
        return f"  test           not evaluated: {summary['test_error']}" if summary.get("test_error") else ""
    return (f"  test           top-1 {test['acc1']:.4f}, macro F1 {test['macro']['f1']:.4f}, "
            f"ECE {test['calibration']['ece']:.4f} on {test['images']} images ({test.get('file', 'evaluations')})")


# -- model ----------------------------------------------------------------------------------------


@main.group()
def model() -> None:
    """The model a spec or a run describes."""


@model.command("summary")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--depth", type=click.IntRange(min=0), default=None, help="Show modules down to this depth.")
@click.option("--num-classes", type=click.IntRange(min=2), default=None,
              help="Class count for a spec (default: count the spec's data set).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def model_summary(source: Path, depth: int | None, num_classes: int | None, as_json: bool) -> None:
    """Modules with output shapes, parameters and FLOPs, and the patch/token geometry.

    SOURCE is a spec file (the model is built untrained) or a run directory (its best model).
    """
    from vitcore.model_summary import format_table, summarize

    if source.is_dir():
        from vitcore.inference import load_run_model
        from vitcore.runs import resolve_run_dir

        loaded = load_run_model(resolve_run_dir(source))
        net, pre = loaded.model, loaded.preprocessing
    else:
        net, pre = _model_from_spec(source, num_classes)
    result = summarize(net, pre.image_size)
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result, max_depth=depth))


def _model_from_spec(path: Path, num_classes: int | None):
    from vitcore import spec as spec_module
    from vitcore.components import ModelContext

    resolved = spec_module.load(path)
    if num_classes is None:
        from vitcore.data_loading import load_splits

        classes = list(load_splits(resolved).classes)
    else:
        classes = [f"class{i}" for i in range(num_classes)]
    builder = resolved.model.instantiate()
    net = builder.build(ModelContext(num_classes=len(classes), class_names=classes, load_pretrained=False,
                                     spec_dir=resolved.base_dir))
    return net, builder.preprocessing()


# -- recipes ------------------------------------------------------------------------------------


@main.group()
def recipes() -> None:
    """Built-in recipes: measured spec presets to extend ("extends": "recipe:NAME"; docs/RECIPES.md)."""


@recipes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def recipes_list(as_json: bool) -> None:
    """The built-in recipes and what each is for."""
    from vitcore.spec_extends import recipes as found

    rows = found()
    if as_json:
        click.echo(json.dumps([{"name": r.name, "purpose": r.purpose, "file": str(r.path)} for r in rows], indent=2))
        return
    width = max((len(r.name) for r in rows), default=0)
    for r in rows:
        click.echo(f"{r.name:<{width}}  {r.purpose}")


@recipes.command("show")
@click.argument("name")
def recipes_show(name: str) -> None:
    """Print recipe NAME's spec (extend it with "extends": "recipe:NAME")."""
    from vitcore.spec_extends import RECIPE_PREFIX, recipe_path

    click.echo(recipe_path(name.removeprefix(RECIPE_PREFIX)).read_text(encoding="utf-8").rstrip())


# -- plugins ------------------------------------------------------------------------------------


@main.group()
def plugins() -> None:
    """Installed plugins and the components they provide."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "include_builtin", is_flag=True, help="Include the built-in plugins.")
@click.option("--strict", is_flag=True, help="Exit 1 when any plugin failed to load (for CI).")
def plugins_list(as_json: bool, include_builtin: bool, strict: bool) -> None:
    """List plugins: distribution, version, components by kind, load status."""
    from vitcore import PLUGIN_API_VERSION
    from vitcore.plugins import get_host

    infos = get_host().plugins(include_builtin=include_builtin)
    failed = sorted(i.name for i in get_host().plugins(include_builtin=True) if i.status != "ok")
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        _strict_failure(strict, failed)
        return
    click.echo(f"vitcore {__version__}, plugin API {PLUGIN_API_VERSION}")
    if not infos:
        click.echo("No plugins installed. `vitcore plugins list --all` shows the built-in components.")
        return
    for info in infos:
        status = click.style("ok", fg="green") if info.status == "ok" else click.style("ERROR", fg="red")
        click.echo(f"{info.name} {info.version or ''}  [{status}]".replace("  [", " [").strip())
        for kind, names in info.components.items():
            click.echo(f"  {kind:<14} {', '.join(names)}")
        for error in info.errors:
            click.echo(f"  error: {error}")
    _strict_failure(strict, failed)


def _strict_failure(strict: bool, failed: list[str]) -> None:
    if strict and failed:
        raise VitcoreError(f"plugins list --strict: {len(failed)} plugin(s) failed to load: {', '.join(failed)} "
                           "(their errors are listed above)")


@plugins.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_show(name: str, as_json: bool) -> None:
    """A component's kind, plugin, description and options with their types, defaults and meaning.

    NAME is what a spec writes in {"type": NAME}; plugins' components included.
    """
    from vitcore.component_info import describe_component, format_description

    found = describe_component(name)
    if as_json:
        click.echo(json.dumps(found if len(found) > 1 else found[0], indent=2))
    else:
        click.echo("\n\n".join(format_description(item) for item in found))


@plugins.command("new")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(["dataset", "model", "augmentation", "sink",
                                                          "visualizer", "exporter"]),
              help="The kind of component the plugin provides.")
@click.option("--dir", "parent", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder in which to create vitcore-NAME/.")
def plugins_new(name: str, kind: str, parent: Path) -> None:
    """Create vitcore-NAME/, a plugin package with one KIND component called NAME and its tests.

    It installs, is listed and passes its own tests as it is; edit it into the real thing.
    """
    from vitcore.scaffold import new_plugin

    root = new_plugin(name, kind, parent)
    click.echo(f"Created {root}:")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        click.echo(f"  {path.relative_to(root)}")
    click.echo(f"Next: python -m pip install -e {root}, then `vitcore plugins list` and "
               f"`python -m pytest {root / 'tests'}`. The guide: docs/PLUGINS.md")


# -- runs -------------------------------------------------------------------------------------


@main.group()
def runs() -> None:
    """Run directories (model versions)."""


@runs.command("list")
@click.argument("root", default="runs", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def runs_list(root: Path, as_json: bool) -> None:
    """List every run version under ROOT (default: runs), also those in folders below it, such as
    a sweep's trials (named SWEEP/trial-N)."""
    from vitcore.runs import run_summaries

    rows = run_summaries(root)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"No runs under {root}.")
        return
    click.echo(f"{'name':<24} {'version':<8} {'status':<14} {'best':<18} {'epochs':<7} {'started':<26} tags")
    for row in rows:
        best = f"{row['best_metric']}={row['best_value']:.4f}" if row["best_value"] is not None else "-"
        click.echo(
            f"{row['name']:<24} v{row['version']:<7} {row['status']:<14} {best:<18} "
            f"{row['epochs'] if row['epochs'] is not None else '-':<7} {row['started'] or '-':<26} "
            f"{', '.join(row['tags']) or '-'}"
        )


@runs.command("show")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def runs_show(run_dir: Path) -> None:
    """Show RUN_DIR's summary, tags and resolved spec as JSON."""
    from vitcore.runs import read_json, resolve_run_dir
    from vitcore.versions import read_tags

    run_dir = resolve_run_dir(run_dir)
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
    click.echo(json.dumps({"summary": summary, "tags": read_tags(run_dir), "spec": read_json(run_dir / "spec.json")},
                          indent=2))


@runs.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to draw the runs' curves overlaid (default: RUNS_ROOT/compare/<runs>.png).")
@click.option("--no-plot", is_flag=True, help="Do not draw the curves.")
def runs_compare(run_dirs: tuple[Path, ...], as_json: bool, plot_path: Path | None, no_plot: bool) -> None:
    """Side by side: the spec fields that differ between RUN_DIRS (grouped by component), their
    key metrics, and their curves overlaid in one PNG (its path is printed)."""
    from vitcore.versions import compare_runs, format_comparison

    result = compare_runs(run_dirs)
    if not no_plot:
        from vitcore.compare_plot import draw_comparison

        drawn = draw_comparison([Path(r["path"]) for r in result["runs"]], plot_path)
        if drawn is not None:
            result["plot"] = str(drawn)
    click.echo(json.dumps(result, indent=2) if as_json else format_comparison(result))


@runs.command("tag")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("tag")
@click.option("--remove", is_flag=True, help="Remove TAG instead of adding it.")
def runs_tag(run_dir: Path, tag: str, remove: bool) -> None:
    """Tag RUN_DIR (e.g. production, baseline); tags show in `runs list` and `runs show`."""
    from vitcore.runs import resolve_run_dir
    from vitcore.versions import tag_run

    run_dir = resolve_run_dir(run_dir)
    tags = tag_run(run_dir, tag, remove=remove)
    click.echo(f"{run_dir}: {', '.join(tags) or 'no tags'}")


@runs.command("verify")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def runs_verify(run_dir: Path) -> None:
    """Check RUN_DIR's exported files against the SHA-256 their export records hold."""
    from vitcore.runs import resolve_run_dir
    from vitcore.versions import verify_run

    verification = verify_run(resolve_run_dir(run_dir))
    click.echo("\n".join(verification.lines()))
    if verification.failed:
        raise VitcoreError(verification.failure_message())


# -- using a run -------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of class sub-folders (the run's class names), or a root holding train/, val/ "
                   "and test/ ones.")
@click.option("--data-spec", "data_spec", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON/YAML file with a `data` entry as a run spec has (any data set, a plugin's too).")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default=None,
              help="The split to evaluate: of the run's own data set (without --data/--data-spec), of a "
                   "train/val/test root or of the --data-spec data set (default: test if there is one, else val).")
@click.option("--name", default=None, help="Name of the evaluation kept in RUN_DIR/evaluations/ "
                                          "(default: the split, or the folder's or file's name).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate(run_dir: Path, data_dir: Path | None, data_spec: Path | None, split: str | None, name: str | None,
             device: str, as_json: bool) -> None:
    """Evaluate RUN_DIR's best model and keep the result in RUN_DIR/evaluations/NAME.json.

    \b
    vitcore evaluate RUN_DIR                     the run's test split (else val)
    vitcore evaluate RUN_DIR --split val         a split of the run's own data set
    vitcore evaluate RUN_DIR --data DIR          a folder of class folders, or a split of a train/val/test root
    vitcore evaluate RUN_DIR --data-spec FILE    a split of the data set FILE's `data` entry describes

    Top-1/top-5, per-class precision, recall and F1 (macro and weighted), the confusion matrix,
    expected calibration error; a reliability diagram, the confusion matrix and the most
    confident mistakes are drawn beside the JSON. `vitcore report` shows every evaluation.
    """
    from vitcore.evaluation_sources import evaluate_run
    from vitcore.runs import resolve_run_dir

    result, path = evaluate_run(resolve_run_dir(run_dir), split=split, data_dir=data_dir, data_spec_file=data_spec,
                                name=name, device=device)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo("\n".join(format_evaluation(result, path)))


def format_evaluation(result: dict[str, Any], path: Path | None = None) -> list[str]:
    """The key figures of an evaluation, for the terminal."""
    source = result.get("source") or {}
    where = source.get("folder") or source.get("file") or "the run's data set"
    lines = [f"{result['name']}: {result['images']} images from {where}"
             + (f", split {source['split']}" if source.get("split") else ""),
             f"  loss {result['loss']:.4f}  top-1 {result['acc1']:.4f}"
             + (f"  top-5 {result['acc5']:.4f}" if result.get("acc5") is not None else "")
             + f"  ECE {result['calibration']['ece']:.4f}",
             f"  macro    P {result['macro']['precision']:.4f}  R {result['macro']['recall']:.4f}  "
             f"F1 {result['macro']['f1']:.4f}",
             f"  weighted P {result['weighted']['precision']:.4f}  R {result['weighted']['recall']:.4f}  "
             f"F1 {result['weighted']['f1']:.4f}",
             f"  {'class':<20} {'precision':>9} {'recall':>9} {'f1':>9} {'images':>7}"]
    for label, row in result["per_class"].items():
        lines.append(f"  {label:<20} {row['precision']:>9.4f} {row['recall']:>9.4f} {row['f1']:>9.4f} "
                     f"{row['support']:>7}")
    lines.append("confusion (rows: true, columns: predicted)")
    for label, row in zip(result["classes"], result["confusion"]):
        lines.append(f"  {label:<20} " + " ".join(f"{v:>5}" for v in row))
    if path is not None:
        lines.append(f"kept in {path} (pictures beside it)")
    return lines


@main.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict(model: Path, images: tuple[Path, ...], top_k: int, as_json: bool) -> None:
    """Top-k labels with probabilities for IMAGES.

    MODEL is a run directory (its best model) or an exported model file that a plugin can run
    (e.g. model.onnx with vitcore-export-onnx, which needs no torch).
    """
    failed = {str(p): f"image file {p} does not exist" for p in images if not p.is_file()}
    present = [p for p in images if p.is_file()]
    results: list[dict[str, Any]] = []
    if present:
        if model.is_file():
            from vitcore.plugins import get_host

            predictor = get_host().pm.hook.model_file_predictor(path=model)
            if predictor is None:
                raise VitcoreError(f"{model}: no installed plugin can run this model file; give a run directory "
                                   "or install the plugin for its format (e.g. vitcore-export-onnx for .onnx)")
        else:
            from vitcore.inference import load_run_model
            from vitcore.inference import predict as run_predict
            from vitcore.runs import resolve_run_dir

            loaded = load_run_model(resolve_run_dir(model))
            predictor = lambda paths, k: run_predict(loaded, paths, k)  # noqa: E731
        results, bad = _predict_isolating(predictor, present, top_k)
        failed.update(bad)
    if as_json:
        click.echo(json.dumps(results + [{"image": p, "error": e} for p, e in failed.items()], indent=2))
    else:
        for item in results:
            click.echo(item["image"])
            for top in item["top"]:
                click.echo(f"  {top['label']:<20} {top['probability']:.4f}")
    if failed:
        for message in failed.values():
            click.secho(f"Error: {message}", fg="red", err=True)
        raise SystemExit(1)


def _predict_isolating(predictor, images: list[Path], top_k: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """All images at once; if one cannot be read, each alone, so the good ones still get answers."""
    try:
        return predictor(images, top_k), {}
    except VitcoreError:
        results, failed = [], {}
        for image in images:
            try:
                results.extend(predictor([image], top_k))
            except VitcoreError as exc:
                failed[str(image)] = str(exc)
        return results, failed


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def plot(run_dir: Path) -> None:
    """Redraw RUN_DIR's metric plots from metrics.jsonl."""
    from vitcore.plotting import plot_run
    from vitcore.runs import resolve_run_dir

    for path in plot_run(resolve_run_dir(run_dir)):
        click.echo(path)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "formats", multiple=True, required=True, metavar="NAME",
              help="An exporter (see `vitcore plugins list --all`), e.g. safetensors; repeatable.")
@click.option("--option", "options", multiple=True, metavar="FIELD=VALUE",
              help="An option of the exporter(s), e.g. --option opset=17.")
def export(run_dir: Path, formats: tuple[str, ...], options: tuple[str, ...]) -> None:
    """Export RUN_DIR's best model with the named exporters (into RUN_DIR/exports)."""
    from vitcore.exporting import export_run
    from vitcore.runs import resolve_run_dir

    for path in export_run(resolve_run_dir(run_dir), formats, options):
        click.echo(path)


@main.command()
@click.argument("root", default="runs", type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", default=6006, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
def dashboard(root: Path, port: int, host: str) -> None:
    """Start TensorBoard on ROOT's runs for live monitoring (Ctrl-C stops it). The vitcore-dashboard
    plugin replaces this command with the web dashboard."""
    import os

    if not root.is_dir():
        raise VitcoreError(f"{root}: no such folder (run `vitcore run SPEC` first, or give the runs folder)")
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(root), "--port", str(port),
               "--host", host]
    click.echo(f"TensorBoard on http://{host}:{port}/ (logdir {root})")
    sys.stdout.flush()
    # TensorBoard takes this process's place, so Ctrl-C and SIGTERM reach it: no child left behind.
    os.execv(sys.executable, command)


def _add_plugin_commands() -> None:
    """Plugins add their own commands (llm's register_commands idiom); a failing one is reported
    by `vitcore plugins list` and leaves the rest of the CLI working."""
    from vitcore.plugins import get_host

    get_host().call("register_commands", cli=main)


_add_plugin_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
