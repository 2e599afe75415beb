"""`vitcore runs compare` draws the runs' curves overlaid into one PNG and prints its path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from vitcore.testing import metric_records, run_cli

#: matplotlib's tab10, the first two: one colour per run.
RUN_COLOURS = [(31, 119, 180), (255, 127, 14)]


def _run(root: Path, version: int, lr: float, records: bool = True) -> Path:
    run_dir = root / "tiny" / f"v{version}"
    run_dir.mkdir(parents=True)
    spec = {"name": "tiny", "data": {"type": "shapes"}, "model": {"type": "torchvision_vit"},
            "augmentations": [{"type": "random_resized_crop", "scale": [0.08 * version, 1.0]}],
            "train": {"lr": lr}}
    (run_dir / "spec.json").write_text(json.dumps(spec))
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "best_metric": "val_acc1",
                                                      "best_value": 0.5 + 0.1 * version}))
    if records:
        lines = []
        for record in metric_records(["a", "b", "c"], epochs=3):
            if "loss" in record:
                record["loss"] *= version
            if "val_loss" in record:
                record["val_loss"] *= version
            lines.append(json.dumps(record))
        (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


def _share_of(picture: Path, colour: tuple[int, int, int]) -> float:
    pixels = np.asarray(Image.open(picture).convert("RGB")).astype(int)
    return float((np.abs(pixels - np.array(colour)).sum(axis=2) < 30).mean())


def test_the_curves_of_the_runs_are_drawn_overlaid_and_the_path_printed(tmp_path):
    a, b = _run(tmp_path, 1, 0.001), _run(tmp_path, 2, 0.003)
    result = run_cli("runs", "compare", str(a), str(b))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    picture = tmp_path / "compare" / "tiny-v1_vs_tiny-v2.png"
    assert lines[-1] == f"curves (overlaid): {picture}"
    assert picture.is_file()
    for colour in RUN_COLOURS:  # both runs have their own line, in every panel
        assert _share_of(picture, colour) > 0.002, colour
    # The spec rows are grouped by component type, not list index.
    spec_rows = lines[lines.index("spec (differing fields)") + 1:lines.index("metrics")]
    assert [row.strip().split()[0] for row in spec_rows] == [
        "augmentations[random_resized_crop]", "scale", "train", "lr"]

    chosen = tmp_path / "elsewhere" / "both.png"
    as_json = run_cli("runs", "compare", str(a), str(b), "--json", "--plot", str(chosen))
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["plot"] == str(chosen) and chosen.is_file()
    skipped = run_cli("runs", "compare", str(a), str(b), "--json", "--no-plot")
    assert "plot" not in json.loads(skipped.stdout)


def test_a_run_without_records_is_left_out_of_the_picture(tmp_path):
    a, b = _run(tmp_path, 1, 0.001), _run(tmp_path, 2, 0.003, records=False)
    result = run_cli("runs", "compare", str(a), str(b), "--json")
    assert result.returncode == 0, result.stderr
    picture = Path(json.loads(result.stdout)["plot"])
    assert _share_of(picture, RUN_COLOURS[0]) > 0.002
    assert _share_of(picture, RUN_COLOURS[1]) == 0.0, "no line, and no legend entry, for the run without records"

    none = _run(tmp_path / "other", 3, 0.01, records=False), _run(tmp_path / "other", 4, 0.02, records=False)
    nothing = run_cli("runs", "compare", *map(str, none))
    assert nothing.returncode == 0 and "curves" not in nothing.stdout


def test_augmentations_are_compared_by_type_whatever_their_order_and_number(tmp_path):
    """Two real runs whose augmentation lists differ in order and length: each type's options are
    set against the same type's, never against whatever sat at the same list index."""
    from vitcore.testing import tiny_spec, train_spec

    first = tiny_spec(tmp_path, epochs=1)
    first["sinks"], first["visualizers"], first["exporters"] = [], [], []
    first["augmentations"] = [{"type": "rand_augment", "magnitude": 5}, {"type": "horizontal_flip", "p": 0.5}]
    second = {**first, "augmentations": [{"type": "horizontal_flip", "p": 0.2},
                                         {"type": "rand_augment", "magnitude": 9},
                                         {"type": "vertical_flip"}]}
    a, b = train_spec(first).run_dir, train_spec(second).run_dir

    result = run_cli("runs", "compare", str(a), str(b), "--no-plot")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines[lines.index("spec (differing fields)") + 1:lines.index("metrics")]]
    assert [row[0] for row in rows] == [
        "augmentations",  # the types in order, one row
        "augmentations[horizontal_flip]", "p",
        "augmentations[rand_augment]", "magnitude",
        "augmentations[vertical_flip]", "p",
    ]
    assert rows[2][1:] == ["0.5", "0.2"]  # horizontal_flip against horizontal_flip
    assert rows[4][1:] == ["5", "9"]  # rand_augment against rand_augment
    assert rows[6][1:] == ["-", "0.5"]  # only the second run has a vertical_flip
    assert not any("[0]" in line or "augmentations.0" in line for line in lines)

    as_json = json.loads(run_cli("runs", "compare", str(a), str(b), "--json", "--no-plot").stdout)
    assert as_json["spec"]["augmentations"] == [["rand_augment", "horizontal_flip"],
                                                ["horizontal_flip", "rand_augment", "vertical_flip"]]
    assert as_json["spec"]["augmentations[rand_augment].magnitude"] == [5, 9]
