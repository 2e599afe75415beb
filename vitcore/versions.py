"""Model versions: compare runs, tag them, check exported files against their recorded hashes, and
describe an export in a model card.

Every run directory is one model version (``runs/<name>/v<N>``). The SHA-256 of exported files is
recorded in ``exports/*.json`` as ``{"file": NAME, "sha256": HEX}`` entries (anywhere in the
record, ``file`` relative to the record): ``exports/manifest.json`` holds one for every file any
exporter returned (``vitcore.export_records``), and an exporter may keep its own too. That is
what ``verify_run`` and the model card read.
Cheap to import: no torch.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from vitcore.atomic import locked
from vitcore.errors import VitcoreError
from vitcore.runs import now_iso, read_json, resolve_run_dir, write_json_atomic

TAGS_FILE = "tags.json"
MODEL_CARD = "MODEL_CARD.md"
TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: summary.json fields ``vitcore runs compare`` shows side by side.
KEY_METRICS = ("status", "best_metric", "best_value", "best_epoch", "epochs_completed", "steps", "parameters",
               "images_per_sec", "wall_time_s", "precision", "device")


def label(run_dir: Path) -> str:
    return f"{run_dir.parent.name}/{run_dir.name}"


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    return read_json(path) if path.is_file() else {}


# -- tags --------------------------------------------------------------------------------------


def read_tags(run_dir: Path) -> list[str]:
    path = run_dir / TAGS_FILE
    return list(read_json(path)["tags"]) if path.is_file() else []


def tag_run(run_dir: Path, tag: str, remove: bool = False) -> list[str]:
    """Add (or remove) ``tag`` in ``run_dir/tags.json``; returns the run's tags."""
    if not TAG_RE.fullmatch(tag):
        raise VitcoreError(f"tag {tag!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    with locked(run_dir / TAGS_FILE):  # two `runs tag` at once must not lose either tag
        tags = read_tags(run_dir)
        if remove:
            if tag not in tags:
                raise VitcoreError(f"{run_dir}: has no tag {tag!r} (tags: {', '.join(tags) or 'none'})")
            tags.remove(tag)
        elif tag not in tags:
            tags.append(tag)
        write_json_atomic(run_dir / TAGS_FILE, {"tags": tags})
    return tags


# -- compare -----------------------------------------------------------------------------------


def _component_list(value: Any) -> bool:
    """A non-empty list of ``{"type": NAME, ...}`` entries (augmentations, sinks, exporters, ...)."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(item, Mapping) and isinstance(item.get("type"), str) for item in value))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A spec as flat keys: nested dicts dotted (``train.lr``), lists of components keyed by their
    type rather than their place (``augmentations[random_resized_crop].scale``, a second entry of
    one type ``[mixup#2]``), with the list's types in order under the list's own key
    (``augmentations``); other lists are one value (``train.betas``)."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if _component_list(value):
        flat = {prefix: [item["type"] for item in value]}
        seen: dict[str, int] = {}
        for item in value:
            seen[item["type"]] = seen.get(item["type"], 0) + 1
            label = item["type"] if seen[item["type"]] == 1 else f"{item['type']}#{seen[item['type']]}"
            options = {k: v for k, v in item.items() if k != "type"}
            flat.update(flatten(options, f"{prefix}[{label}]") if options else {})
        return flat
    return {prefix: value} if prefix else {}


def spec_group(key: str) -> tuple[str, str]:
    """``("augmentations[random_resized_crop]", "scale")``, ``("train", "lr")``, ``("", "name")``:
    the component or section a flat key belongs to ("" for top-level values), and its field."""
    depth = 0
    for index, char in enumerate(key):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "." and depth == 0:
            return key[:index], key[index + 1:]
    return "", key


def _group_order(key: str) -> tuple[str, str, str]:
    """Top-level values, sections and components alphabetically; a list's order beside its entries."""
    group, field = spec_group(key)
    return (group or field).split("[")[0], group, field


def compare_runs(run_dirs: Sequence[Path]) -> dict[str, Any]:
    """The spec fields that differ between runs (absent: None), grouped by component, and their
    key metrics, side by side."""
    if len(run_dirs) < 2:
        raise VitcoreError("runs compare: give two or more run directories")
    dirs = [resolve_run_dir(path) for path in run_dirs]
    specs = [flatten(read_json(d / "spec.json")) for d in dirs]
    summaries = [_summary(d) for d in dirs]
    absent = object()
    differing = [key for key in sorted(set().union(*specs), key=_group_order)
                 if len({json.dumps(s[key], sort_keys=True) if key in s else absent for s in specs}) > 1]
    metrics = {key: [s.get(key) for s in summaries] for key in KEY_METRICS if any(key in s for s in summaries)}
    if any("lineage" in s for s in summaries):
        metrics["init_from"] = [s.get("lineage", {}).get("init_from") for s in summaries]
    return {
        "runs": [{"run": label(d), "path": str(d), "tags": read_tags(d)} for d in dirs],
        "spec": {key: [s.get(key) for s in specs] for key in differing},
        "metrics": metrics,
    }


def _cell(value: Any, width: int = 36) -> str:
    if value is None:
        return "-"
    text = f"{value:.4g}" if isinstance(value, float) else value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def format_comparison(result: Mapping[str, Any]) -> str:
    """``compare_runs``'s result as a text table: one column per run, the spec's differing fields
    under the component or section they belong to."""
    count = len(result["runs"])
    rows: list[list[str]] = [["", *(r["run"] for r in result["runs"])],
                             ["tags", *(", ".join(r["tags"]) or "-" for r in result["runs"])]]
    rows.append(["spec (differing fields)", *[""] * count])
    group = None
    for key, values in result["spec"].items():
        section, field = spec_group(key)
        if section and section != group:
            rows.append([f"  {section}", *[""] * count])
        group = section
        rows.append([f"    {field}" if section else f"  {field}", *map(_cell, values)])
    if not result["spec"]:
        rows.append(["  (none)"])
    rows.append(["metrics", *[""] * count])
    rows += [[f"  {key}", *map(_cell, values)] for key, values in result["metrics"].items()]
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
    return table + (f"\ncurves (overlaid): {result['plot']}" if result.get("plot") else "")


# -- verify ------------------------------------------------------------------------------------


@dataclass
class FileCheck:
    record: Path
    file: Path
    expected: str
    actual: str | None  # None: the file is gone

    @property
    def status(self) -> str:
        return "missing" if self.actual is None else "ok" if self.actual == self.expected else "MISMATCH"


@dataclass
class Verification:
    run_dir: Path
    checks: list[FileCheck]
    #: Files under exports/ that no record hashes (not the records or the model card).
    unrecorded: list[Path]

    @property
    def failed(self) -> list[FileCheck]:
        return [c for c in self.checks if c.status != "ok"]

    def lines(self) -> list[str]:
        """One line per file and outcome: a file two records hash (its exporter's own record and
        exports/manifest.json) is one line naming both."""
        rel = self.run_dir
        merged: dict[tuple[Path, str], list[str]] = {}
        for c in self.checks:
            merged.setdefault((c.file, c.status), []).append(str(c.record.relative_to(rel)))
        out = [f"{status:<8} {file.relative_to(rel)}  (recorded in {', '.join(records)})"
               for (file, status), records in merged.items()]
        return out + [f"{'no hash':<8} {p.relative_to(rel)}" for p in self.unrecorded]

    def failure_message(self) -> str:
        parts = [f"{c.file.relative_to(self.run_dir)} ({c.status.lower()}: {c.record.name} records sha256 "
                 f"{c.expected[:12]}..., "
                 + ("the file is gone)" if c.actual is None else f"the file has {c.actual[:12]}...)")
                 for c in self.failed]
        return f"{self.run_dir}: {len(parts)} exported file(s) differ from their records: " + "; ".join(parts)


def _hashed(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        if isinstance(value.get("file"), str) and isinstance(value.get("sha256"), str):
            yield value
        for item in value.values():
            yield from _hashed(item)
    elif isinstance(value, list):
        for item in value:
            yield from _hashed(item)


def recorded_files(run_dir: Path) -> list[tuple[Path, Path, str]]:
    """``(record, file, sha256)`` for every hashed file named in ``exports/*.json``."""
    found = []
    for record in sorted((run_dir / "exports").glob("*.json")):
        found += [(record, record.parent / entry["file"], entry["sha256"]) for entry in _hashed(read_json(record))]
    return found


def verify_run(run_dir: Path) -> Verification:
    """Hash every recorded export file again; an error when nothing records a hash."""
    from vitcore.hashing import sha256

    entries = recorded_files(run_dir)
    if not entries:
        raise VitcoreError(f"{run_dir}: no exported file has a recorded SHA-256 (exports/*.json); export it first, "
                           f"e.g. `vitcore export {run_dir} --format safetensors`")
    checks = [FileCheck(record, file, expected, sha256(file) if file.is_file() else None)
              for record, file, expected in entries]
    known = {file for _, file, _ in entries} | {record for record, _, _ in entries}
    unrecorded = sorted(p for p in (run_dir / "exports").rglob("*")
                        if p.is_file() and p not in known and p.name != MODEL_CARD and not p.name.startswith("."))
    return Verification(run_dir, checks, unrecorded)


# -- model card ----------------------------------------------------------------------------------


def _options(component: Mapping[str, Any]) -> str:
    options = {k: v for k, v in component.items() if k != "type"}
    return f"`{component.get('type', '?')}`" + (f" with `{json.dumps(options)}`" if options else "")


def model_card(run_dir: Path, *, spec: Mapping[str, Any] | None = None, classes: Sequence[str] | None = None,
               preprocessing: Mapping[str, Any] | None = None, notes: Sequence[str] = ()) -> str:
    """A Markdown description of the run's model and exports; what is not given is read from the run."""
    from vitcore import __version__

    summary = _summary(run_dir)
    if spec is None:
        spec = read_json(run_dir / "spec.json") if (run_dir / "spec.json").is_file() else {}
    classes = list(classes if classes is not None else summary.get("classes", []))
    pre = preprocessing or summary.get("preprocessing")
    tags = read_tags(run_dir)
    lines = [f"# Model card: {label(run_dir)}", "",
             f"Written by vitcore {__version__} on {now_iso()}." + (f" Tags: {', '.join(tags)}." if tags else ""), "",
             "## Model", ""]
    if spec.get("model"):
        lines.append(f"- Builder: {_options(spec['model'])}")
    if summary.get("parameters"):
        lines.append(f"- Parameters: {summary['parameters']:,}")
    lines += [f"- Classes ({len(classes)}): {', '.join(classes)}", "", "## Data", ""]
    if spec.get("data"):
        lines.append(f"- Provider: {_options(spec['data'])}")
    lines += [f"- {key}: {value}" for key, value in (summary.get("data") or {}).items()]
    lines += ["", "## Metrics (summary.json)", "", "| metric | value |", "| --- | --- |"]
    if summary.get("best_value") is not None:
        lines.append(f"| best {summary.get('best_metric')} | {summary['best_value']:.4f} "
                     f"(epoch {summary.get('best_epoch')}) |")
    for key in ("status", "epochs_completed", "steps", "images_per_sec", "wall_time_s", "device", "precision"):
        if summary.get(key) is not None:
            lines.append(f"| {key} | {_cell(summary[key])} |")
    if pre:
        resize = round(pre["image_size"] / pre["crop_pct"])
        lines += ["", "## Preprocessing", "",
                  "1. Decode as RGB (EXIF orientation applied, transparency on white).",
                  (f"2. Resize the short side to {resize} px ({pre['interpolation']}, antialiased), centre-crop "
                   f"{pre['image_size']}x{pre['image_size']}."),
                  (f"3. Scale to [0, 1], subtract mean {list(pre['mean'])}, divide by std {list(pre['std'])}; "
                   "float32, NCHW.")]
    lines += ["", "## Lineage", ""]
    lineage = summary.get("lineage")
    if lineage:
        source = lineage.get("source_run")
        lines.append(f"- Started from `{lineage.get('init_from')}`"
                     + (f" (run {source['name']}/{source['version']})" if source else "")
                     + f": checkpoint `{lineage.get('checkpoint')}`, sha256 `{lineage.get('sha256')}`")
        lines += [f"- {key}: {', '.join(lineage[key])}" for key in ("new_head", "resized") if lineage.get(key)]
    else:
        lines.append("- Not started from an earlier vitcore run (no `model.init_from`); pretrained weights, if any, "
                     "are named in the builder's options.")
    from vitcore.export_records import card_notes

    recorded_notes = card_notes(run_dir / "exports")  # what exporters' records say about their checks
    notes = [*recorded_notes, *(note for note in notes if note not in recorded_notes)]
    if notes:
        lines += ["", "## Export checks", "", *(f"- {note}" for note in notes)]
    lines += ["", "## Files", "", "| file | bytes | sha256 |", "| --- | --- | --- |"]
    listed: set[tuple[Path, str]] = set()
    for _, file, digest in recorded_files(run_dir):
        if (file.resolve(), digest) in listed:  # also in exports/manifest.json
            continue
        listed.add((file.resolve(), digest))
        size = file.stat().st_size if file.is_file() else "missing"
        lines.append(f"| {Path(os.path.relpath(file, run_dir / 'exports')).as_posix()} | {size} | `{digest}` |")
    lines += ["", f"Check the files against these hashes with `vitcore runs verify {run_dir}`.", ""]
    return "\n".join(lines)


def write_model_card(run_dir: Path, **facts: Any) -> Path:
    """Write ``exports/MODEL_CARD.md`` atomically (see ``model_card`` for ``facts``)."""
    from vitcore.atomic import write_atomically

    text = model_card(run_dir, **facts)
    return write_atomically(run_dir / "exports" / MODEL_CARD, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
