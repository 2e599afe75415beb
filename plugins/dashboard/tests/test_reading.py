"""Reading run folders and following metrics.jsonl, on real files: every layout the engine, a
sweep, an older vitcore or a crash leaves behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vitcore_dashboard.compare import spec_differences
from vitcore_dashboard.explorer import mark_blocks, model_view
from vitcore_dashboard.metrics import MetricsFollower
from vitcore.api import RunLock
from vitcore_dashboard.runs import RunNotFound, RunStore


def write(path: Path, content: str | dict | list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def version(root: Path, name: str, number: int = 1, *, status: str = "completed", epochs: int = 3, **summary) -> Path:
    folder = root / name / f"v{number}"
    write(folder / "summary.json", {"status": status, "best_metric": "val_acc1", "best_value": 0.5,
                                    "epochs_completed": epochs, "device": "cpu", "started": "2026-12-01T10:00:00+00:00",
                                    "images_per_sec": 321.0, **summary})
    write(folder / "spec.json", {"name": name, "train": {"epochs": 5}})
    return folder


def test_rows_describe_each_version_and_group_sweep_trials(tmp_path):
    version(tmp_path, "flowers", 1)
    version(tmp_path, "flowers", 2, status="running", epochs=1)
    write(tmp_path / "flowers" / "v2" / "tags.json", {"tags": ["production"]})
    for trial, status in ((0, "completed"), (1, "pruned"), (2, "running")):  # as vitcore-sweep lays them out
        version(tmp_path, f"lr-sweep/trial-{trial}", 1, status=status,
                meta={"sweep": {"name": "lr-sweep", "trial": trial, "params": {"train.lr": 0.01}}})
    version(tmp_path, "other/t7", 1, sweep="grid")  # a sweep named in summary.json, a trial number in the folder
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "flowers" / "vx").mkdir()  # not a version folder
    version(tmp_path, "killed", 1, status="running", epochs=1)  # marked running, its process gone

    with RunLock(tmp_path / "flowers" / "v2"), RunLock(tmp_path / "lr-sweep" / "trial-2" / "v1"):
        rows = {row["key"]: row for row in RunStore(tmp_path).rows()}  # the two live runs hold their folders
    assert sorted(rows) == ["flowers/v1", "flowers/v2", "killed/v1", "lr-sweep/trial-0/v1", "lr-sweep/trial-1/v1",
                            "lr-sweep/trial-2/v1", "other/t7/v1"]
    assert rows["killed/v1"]["status"] == "interrupted"  # the core's rule, as `vitcore runs list` shows it
    assert (rows["other/t7/v1"]["sweep"], rows["other/t7/v1"]["trial"]) == ("grid", 7)
    running = rows["flowers/v2"]
    assert (running["status"], running["epochs_completed"], running["epochs_total"]) == ("running", 1, 5)
    assert running["tags"] == ["production"] and running["device"] == "cpu" and running["images_per_sec"] == 321.0
    assert running["sweep"] is None and running["problems"] == []
    assert [rows[f"lr-sweep/trial-{t}/v1"]["status"] for t in range(3)] == ["completed", "pruned", "running"]
    assert {rows[f"lr-sweep/trial-{t}/v1"]["sweep"] for t in range(3)} == {"lr-sweep"}
    assert rows["lr-sweep/trial-2/v1"]["trial"] == 2

    store = RunStore(tmp_path)
    assert [r["key"] for r in store.rows(name="sweep")] == ["lr-sweep/trial-0/v1", "lr-sweep/trial-1/v1",
                                                           "lr-sweep/trial-2/v1"]
    assert [r["key"] for r in store.rows(tag="production")] == ["flowers/v2"]


def test_a_broken_half_written_or_old_run_folder_gets_a_row_that_says_so(tmp_path):
    version(tmp_path, "good", 1)
    write(tmp_path / "torn" / "v1" / "summary.json", '{"status": "runn')  # killed mid-write (no atomic rename)
    (tmp_path / "starting" / "v1").mkdir(parents=True)  # claimed, nothing written yet
    write(tmp_path / "empty-spec" / "v1" / "spec.json", "")
    write(tmp_path / "old" / "v1" / "summary.json", {"best_acc": 0.9})  # an older layout: no status
    write(tmp_path / "list" / "v1" / "summary.json", [1, 2, 3])
    version(tmp_path, "badtags", 1)
    write(tmp_path / "badtags" / "v1" / "tags.json", "{nope")

    rows = {row["name"]: row for row in RunStore(tmp_path).rows()}
    assert rows["good"]["problems"] == []
    assert rows["torn"]["status"] == "unknown"
    assert any("summary.json is not valid JSON" in p for p in rows["torn"]["problems"])
    assert any("summary.json is missing" in p for p in rows["starting"]["problems"])
    assert any("spec.json is empty" in p for p in rows["empty-spec"]["problems"])
    assert any("no status" in p for p in rows["old"]["problems"]) and rows["old"]["status"] == "unknown"
    assert any("not a JSON object" in p for p in rows["list"]["problems"])
    assert rows["badtags"]["tags"] == [] and rows["badtags"]["status"] == "completed"
    assert any("tags.json" in p for p in rows["badtags"]["problems"])
    detail = RunStore(tmp_path).detail(RunStore(tmp_path).ref("torn", "v1"))
    assert "not valid JSON" in detail["summary"]["problem"]


def test_a_rewritten_file_is_read_again(tmp_path):
    folder = version(tmp_path, "run", 1, status="running")
    store = RunStore(tmp_path)
    with RunLock(folder):
        assert store.rows()[0]["status"] == "running"
    write(folder / "summary.json", {"status": "completed", "epochs_completed": 5})
    os.utime(folder / "summary.json", ns=(1, 1))  # even with an old mtime, the size differs
    assert store.rows()[0]["status"] == "completed"


@pytest.mark.parametrize("name, number", [("..", "v1"), ("../..", "v1"), ("run/../..", "v1"), ("", "v1"),
                                          ("run", "../v1"), ("run", "1"), (".hidden", "v1"), ("a/b/c", "v1"),
                                          ("run", "v2")])
def test_refs_outside_root_or_not_versions_are_not_found(tmp_path, name, number):
    version(tmp_path, "run", 1)
    (tmp_path / ".hidden" / "v1").mkdir(parents=True)
    with pytest.raises(RunNotFound):
        RunStore(tmp_path / "").ref(name, number)


def test_a_symlink_out_of_root_is_not_followed(tmp_path):
    outside = version(tmp_path / "elsewhere", "secret", 1)
    write(outside / "plots" / "curves.png", "png")
    root = tmp_path / "runs"
    version(root, "run", 1)
    (root / "run" / "v2").symlink_to(outside, target_is_directory=True)
    (root / "run" / "v1" / "plots").mkdir()
    (root / "run" / "v1" / "plots" / "leak.png").symlink_to(outside / "plots" / "curves.png")
    store = RunStore(root)
    with pytest.raises(RunNotFound):
        store.ref("run", "v2")
    with pytest.raises(RunNotFound):
        store.picture_path("run/v1/plots/leak.png")
    with pytest.raises(RunNotFound):
        store.picture_path("run/v1/summary.json")  # inside, but not a picture


def records(start: int, count: int) -> str:
    return "".join(json.dumps({"event": "train", "epoch": 1, "step": s, "loss": 1.0 / s}) + "\n"
                   for s in range(start, start + count))


def test_each_poll_reads_only_the_bytes_written_since_the_last(tmp_path):
    path = write(tmp_path / "metrics.jsonl", records(1, 1000))
    follower = MetricsFollower()
    first = follower.read(path)
    assert first["count"] == 1000 and first["last_step"] == 1000 and len(first["records"]) == 1000
    size = path.stat().st_size
    with open(path, "a") as handle:
        handle.write(records(1001, 3) + json.dumps({"event": "epoch", "epoch": 1, "step": 1003, "val_acc1": 0.5}) + "\n")
    new_bytes = path.stat().st_size - size
    second = follower.read(path, after=1000)
    assert [r["step"] for r in second["records"]] == [1001, 1002, 1003, 1003]
    assert second["records"][-1]["event"] == "epoch"
    # The poll read the appended bytes to index them and the same bytes again to answer: nothing else.
    assert second["bytes_read"] == 2 * new_bytes
    assert follower.read(path, after=1003)["records"] == []
    assert follower.read(path, after=1003)["bytes_read"] == 0
    assert [r["step"] for r in follower.read(path, after=1002)["records"]] == [1003, 1003]


def test_a_torn_last_line_waits_and_a_corrupt_line_is_skipped(tmp_path):
    path = write(tmp_path / "metrics.jsonl", records(1, 2) + "not json\n" + '{"event": "train", "st')
    follower = MetricsFollower()
    assert [r["step"] for r in follower.read(path)["records"]] == [1, 2]
    with open(path, "a") as handle:
        handle.write('ep": 3}\n')
    assert [r["step"] for r in follower.read(path, after=2)["records"]] == [3]


def test_a_replaced_file_gets_a_new_generation(tmp_path):
    path = write(tmp_path / "metrics.jsonl", records(1, 10))
    follower = MetricsFollower()
    before = follower.read(path)
    replacement = write(tmp_path / "tmp.jsonl", records(1, 4))  # resume keeps records up to its checkpoint
    os.replace(replacement, path)
    after = follower.read(path)
    assert after["generation"] != before["generation"] and after["count"] == 4
    assert follower.read(tmp_path / "missing.jsonl") == {"records": [], "last_step": None, "count": 0,
                                                         "generation": None, "more": False, "bytes_read": 0}


def test_limit_and_steps_out_of_order(tmp_path):
    path = write(tmp_path / "metrics.jsonl", records(1, 5) + records(3, 2))  # two writers (issue 14's fault)
    follower = MetricsFollower()
    page = follower.read(path, limit=3)
    assert [r["step"] for r in page["records"]] == [1, 2, 3] and page["more"]
    assert [r["step"] for r in follower.read(path, after=3)["records"]] == [4, 5, 4]


def test_spec_differences_match_components_by_type_not_position():
    a = {"model": {"type": "torchvision_vit", "depth": 2}, "train": {"lr": 0.001, "epochs": 5}, "exporters": [],
         "augmentations": [{"type": "horizontal_flip"}, {"type": "random_resized_crop", "scale": [0.5, 1]}]}
    b = {"model": {"type": "torchvision_vit", "depth": 4}, "train": {"lr": 0.001, "epochs": 5},
         "exporters": [{"type": "onnx"}],
         "augmentations": [{"type": "mixup", "alpha": 0.2}, {"type": "horizontal_flip"},
                           {"type": "random_resized_crop", "scale": [0.8, 1]}]}
    groups = {g["group"]: {row["key"]: row["values"] for row in g["rows"]} for g in spec_differences([a, b])}
    assert groups == {
        "model": {"depth": [2, 4]},
        "augmentations: random_resized_crop": {"scale": [[0.5, 1], [0.8, 1]]},
        "augmentations: mixup": {"(listed)": [None, "yes"], "alpha": [None, 0.2]},
        "exporters: onnx": {"(listed)": [None, "yes"]},
    }
    assert spec_differences([a, a]) == []


def test_the_model_tree_finds_the_blocks_of_each_model_family():
    def rows(names: list[tuple[str, str]]) -> list[dict]:
        return [{"name": n, "type": t, "params": 1, "flops": 0, "output_shape": [1, 4]} for n, t in names]

    timm = rows([("", "VisionTransformer"), ("patch_embed", "PatchEmbed"), ("patch_embed.proj", "Conv2d"),
                 ("blocks", "Sequential"), *[(f"blocks.{i}", "Block") for i in range(3)],
                 *[(f"blocks.{i}.attn", "Attention") for i in range(3)], ("head", "Linear")])
    view = model_view({"rows": timm, "geometry": {"blocks": 3}}, [
        {"folder": "viz", "name": "attention_entropy.png", "url": "/files/x/v1/viz/attention_entropy.png"}])
    assert view["blocks"] == ["blocks.0", "blocks.1", "blocks.2"]
    assert view["block_pictures"]["attention"] == [{"name": "attention_entropy",
                                                    "url": "/files/x/v1/viz/attention_entropy.png"}]
    blocks = view["tree"]["children"][1]["children"]
    assert [b["block"] for b in blocks] == [0, 1, 2] and blocks[0]["children"][0]["name"] == "blocks.0.attn"

    hf = rows([("", "ViTForImageClassification"), ("vit", "ViTModel"), ("vit.encoder", "ViTEncoder"),
               ("vit.encoder.layer", "ModuleList"), *[(f"vit.encoder.layer.{i}", "ViTLayer") for i in range(2)],
               *[(f"vit.encoder.layer.{i}.attention", "ViTAttention") for i in range(2)],
               ("classifier", "Linear")])
    from vitcore_dashboard.explorer import build_tree

    assert mark_blocks(build_tree(hf), 2) == ["vit.encoder.layer.0", "vit.encoder.layer.1"]
    assert mark_blocks(build_tree(hf), 5) == []  # a count that matches nothing marks nothing


def test_records_holding_nan_reach_the_browser_as_null(tmp_path):
    """A diverged run logs NaN; browsers' JSON.parse refuses it, so the answer carries null."""
    path = write(tmp_path / "metrics.jsonl", json.dumps({"event": "train", "step": 1, "loss": float("nan")}) + "\n"
                 + json.dumps({"event": "train", "step": 2, "loss": float("inf"), "note": "fine"}) + "\n")
    answer = MetricsFollower().answer(path)

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    records = json.loads(answer.records_json, parse_constant=refuse)
    assert [r["loss"] for r in records] == [None, None] and records[1]["note"] == "fine"
