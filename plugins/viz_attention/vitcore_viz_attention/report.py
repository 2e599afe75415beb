"""``vitcore report``: one self-contained HTML page about a run, pictures embedded.

It gathers what other steps made (summary.json, plots/, viz/) and the architecture overview, so
the page can be mailed or archived on its own. Nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any, Iterable

#: Sections of viz/ pictures: (title, file-name prefixes).
VIZ_SECTIONS = (
    ("Attention", ("attention_",)),
    ("Embeddings", ("position_embedding", "patch_embedding")),
    ("Fully connected layers", ("fc_",)),
)
#: Summary fields shown in the key-facts table, in order.
SUMMARY_FIELDS = ("status", "best_metric", "best_value", "best_epoch", "epochs_completed", "steps", "parameters",
                  "images_per_sec", "wall_time_s", "device", "precision", "started", "finished")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 2px 10px; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
img { max-width: 100%; border: 1px solid #ddd; } figcaption { font-size: 0.8em; color: #555; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; } .note { color: #777; }
"""


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}">'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>")


def _images(paths: Iterable[Path]) -> str:
    return "\n".join(_image(p) for p in paths)


def _facts(summary: dict[str, Any]) -> str:
    rows = [(key, summary[key]) for key in SUMMARY_FIELDS if summary.get(key) is not None]
    if summary.get("classes"):
        rows.append(("classes", ", ".join(map(str, summary["classes"]))))
    cells = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def architecture(run_dir: Path) -> dict[str, Any]:
    """The run's ``model_summary.json`` when it has one, else summarised from its best model."""
    saved = run_dir / "model_summary.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    from vitcore.api import timed_step

    with timed_step("summarise the architecture from the best model (the run has no model_summary.json)"):
        from vitcore.api import load_run_model, summarize

        loaded = load_run_model(run_dir)
        return summarize(loaded.model, loaded.preprocessing.image_size)


def _architecture_html(summary: dict[str, Any]) -> str:
    from vitcore.api import format_geometry

    head = "<tr><th>module</th><th>type</th><th>output shape</th><th>params</th><th>FLOPs</th></tr>"
    rows = "\n".join(
        f"<tr><td>{'&nbsp;' * 3 * r['depth']}{html.escape(r['name'].rsplit('.', 1)[-1] or summary['model'])}</td>"
        f"<td>{html.escape(r['type'])}</td><td>{html.escape(str(r['output_shape'] or '-'))}</td>"
        f"<td class='num'>{r['params']:,}</td><td class='num'>{r['flops']:,}</td></tr>"
        for r in summary["rows"]
    )
    facts = [f"Parameters: {summary['params']:,} ({summary['trainable_params']:,} trainable)",
             f"FLOPs per image (forward): {summary['flops_per_image']:,}"]
    if summary.get("geometry"):
        facts.append(f"Geometry: {format_geometry(summary['geometry'])}")
    items = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
    return f"<ul>{items}</ul><details><summary>Every module</summary><table>{head}{rows}</table></details>"


def _viz_sections(viz: Path) -> str:
    pictures = sorted(viz.glob("*.png")) if viz.is_dir() else []
    if not pictures:
        return (f"<h2>Inside the model</h2><p class='note'>No pictures in {html.escape(str(viz))}: "
                "run <code>vitcore visualize RUN_DIR</code> first.</p>")
    parts, shown = [], set()
    for title, prefixes in VIZ_SECTIONS:
        chosen = [p for p in pictures if p.name.startswith(prefixes)]
        shown.update(chosen)
        if chosen:
            parts.append(f"<h2>{html.escape(title)}</h2>{_images(chosen)}")
    rest = [p for p in pictures if p not in shown]
    if rest:
        parts.append(f"<h2>Other pictures</h2>{_images(rest)}")
    return "\n".join(parts)


def _evaluations_html(run_dir: Path) -> str:
    """Every evaluation kept in the run (the test split at the end of a run, each `vitcore
    evaluate`): key figures, per-class precision/recall/F1 and the pictures beside each JSON."""
    from vitcore.api import read_evaluations

    records = read_evaluations(run_dir)
    if not records:
        return ("<p class='note'>No evaluations yet: a data set with a test split is evaluated at the end of the "
                "run; <code>vitcore evaluate RUN_DIR</code> adds more.</p>")
    parts = []
    for r in records:
        source = r.get("source") or {}
        where = source.get("folder") or source.get("file") or "the run's data set"
        split = f", split {source['split']}" if source.get("split") else ""
        facts = [("images", r.get("images")), ("top-1", r.get("acc1")), ("top-5", r.get("acc5")),
                 ("loss", r.get("loss")), ("ECE", (r.get("calibration") or {}).get("ece"))]
        for average in ("macro", "weighted"):
            for key, value in (r.get(average) or {}).items():
                facts.append((f"{average} {key}", value))
        facts.append(("evaluated", r.get("evaluated_at")))
        cells = "".join(f"<tr><th>{html.escape(k)}</th><td class='num'>{html.escape(_fmt(v))}</td></tr>"
                        for k, v in facts if v is not None)
        head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>"
        rows = "".join(
            f"<tr><td>{html.escape(str(name))}</td>" + "".join(
                f"<td class='num'>{html.escape(_fmt(c.get(k)))}</td>" for k in ("precision", "recall", "f1", "support"))
            + "</tr>"
            for name, c in (r.get("per_class") or {}).items())
        pictures = [run_dir / "evaluations" / name for name in (r.get("pictures") or {}).values()]
        warned = "".join(f"<p class='note'>warning: {html.escape(str(w))}</p>" for w in r.get("warnings") or ())
        parts.append(f"<h3>{html.escape(str(r['name']))}</h3><p class='note'>{html.escape(str(where) + split)}</p>"
                     f"{warned}"
                     f"<table>{cells}</table><details open><summary>Per class</summary><table>{head}{rows}</table>"
                     f"</details>{_images(p for p in pictures if p.is_file())}")
    return "\n".join(parts)


def build_report(run_dir: Path, viz: Path | None = None) -> str:
    """The report page's HTML for ``run_dir`` (pictures from ``viz``, default ``run_dir/viz``)."""
    from vitcore.api import VitcoreError, read_json

    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
    title = f"{summary.get('name', run_dir.parent.name)} / {summary.get('version', run_dir.name)}"
    plots = sorted((run_dir / "plots").glob("*.png")) if (run_dir / "plots").is_dir() else []
    plots.sort(key=lambda p: (p.name != "curves.png", p.name != "confusion_matrix.png", p.name))
    try:
        arch = _architecture_html(architecture(run_dir))
    except VitcoreError as exc:  # no checkpoint yet: the rest of the report still helps
        arch = f"<p class='note'>Not available: {html.escape(str(exc))}</p>"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>{html.escape(str(run_dir))}, report written {time.strftime('%Y-%m-%d %H:%M:%S')}</p>",
        "<h2>Summary</h2>", _facts(summary),
        f"<details><summary>summary.json</summary><pre>{html.escape(json.dumps(summary, indent=2))}</pre></details>",
        "<h2>Training</h2>", _images(plots) or "<p class='note'>No plots (run <code>vitcore plot</code>).</p>",
        "<h2>Evaluations</h2>", _evaluations_html(run_dir),
        "<h2>Architecture</h2>", arch,
        _viz_sections(viz if viz is not None else run_dir / "viz"),
    ]
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(run_dir: Path, out: Path | None = None, viz: Path | None = None) -> Path:
    """Write the report (default ``run_dir/report.html``) atomically: never half a page."""
    from vitcore.api import timed_step, write_text_atomic

    path = out if out is not None else run_dir / "report.html"
    with timed_step(f"write the report of {run_dir}") as note:
        text = build_report(run_dir, viz)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
        note.detail = f"{text.count('<img ')} pictures embedded, {len(text.encode()) / 1e6:.1f} MB"
    return path
