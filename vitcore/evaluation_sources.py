"""What ``vitcore evaluate RUN_DIR`` evaluates: a split of the run's own data set, a folder, or the
``data`` entry of a spec file (any data set a run accepts, a plugin's included), with its labels
mapped onto the run's classes by name. The result is kept in the run (``evaluations/<name>.json``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from vitcore.errors import SpecError, VitcoreError

SPLITS = ("test", "val", "train")


@dataclass
class EvaluationSource:
    #: The default evaluation name (file name under evaluations/).
    name: str
    dataset: Any
    #: Where the images came from, kept in the evaluation: kind (split, folder, data_spec) and details.
    description: dict[str, Any]


def run_split(run_dir: Path, classes: Sequence[str], split: str | None) -> EvaluationSource:
    """A split of the data set the run trained on (its spec.json ``data``): test by default,
    else val."""
    from vitcore.runs import read_json

    spec = read_json(run_dir / "spec.json")
    splits = _load(spec, run_dir / "spec.json", None)
    split = _choose(splits, split, f"the run's data set ({run_dir / 'spec.json'})")
    return EvaluationSource(split, _relabelled(_split_of(splits, split), splits.classes, classes, split),
                            {"kind": "split", "split": split})


def data_spec(path: Path, classes: Sequence[str], split: str | None) -> EvaluationSource:
    """A split of the data set a JSON/YAML file's ``data`` entry describes (as a run spec's does;
    relative paths against the file's folder). A bad entry is a SpecError (exit 2) naming the field."""
    from vitcore.spec import read_spec_file

    spec = read_spec_file(path)
    splits = _load(spec, path, path.absolute().parent)
    split = _choose(splits, split, f"{path}'s data set")
    return EvaluationSource(f"{path.stem}_{split}",
                            _relabelled(_split_of(splits, split), splits.classes, classes, f"{path}: {split}"),
                            {"kind": "data_spec", "file": str(path.absolute()), "data": spec["data"],
                             "split": split})


def folder(root: Path, classes: Sequence[str], split: str | None) -> EvaluationSource:
    """A folder of class sub-folders named like the run's classes, or one split of a
    train/val/test root (``split``; default test, else val)."""
    from vitcore.builtin.datasets import labelled_folder, split_folder

    chosen, split = split_folder(root, classes, split)
    name = f"{root.absolute().name}_{split}" if split else root.absolute().name
    description: dict[str, Any] = {"kind": "folder", "folder": str(chosen.absolute())}
    if split:
        description["split"] = split
    return EvaluationSource(name, labelled_folder(chosen, list(classes)), description)


def _load(spec: Any, path: Path, spec_dir: Path | None) -> Any:
    from vitcore.data_loading import load_splits

    if not isinstance(spec, dict) or "data" not in spec:
        raise SpecError(f"{path}: data: Field required (the file holds a data set's entry as a run spec does, "
                        'e.g. {"data": {"type": "imagefolder", "root": "images"}})')
    return load_splits(spec, spec_dir=spec_dir, source=str(path))


def _choose(splits: Any, split: str | None, where: str) -> str:
    if split is None:
        return "test" if splits.test is not None and len(splits.test) else "val"
    if split not in SPLITS:
        raise VitcoreError(f"--split {split}: choose one of {', '.join(SPLITS)}")
    if split == "test" and (splits.test is None or not len(splits.test)):
        raise VitcoreError(f"--split test: {where} has no test split (an imagefolder test/ folder, a csv split "
                           "value 'test' or a provider's own); use --split val, --data or --data-spec")
    return split


def _split_of(splits: Any, split: str) -> Any:
    return {"train": splits.train, "val": splits.val, "test": splits.test}[split]


def _relabelled(dataset: Any, own: Sequence[str], classes: Sequence[str], where: str) -> Any:
    """``dataset`` (labelled by index into ``own``) labelled by index into the run's ``classes``.

    A class the run does not know cannot be scored: it is an error naming it. A file-backed
    dataset (``samples``) stays one, so the gallery can name each mistake's file."""
    own, classes = list(map(str, own)), list(map(str, classes))
    if own == classes:
        return dataset
    index = {name: i for i, name in enumerate(classes)}
    unknown = [name for name in own if name not in index]
    if unknown:
        raise VitcoreError(f"{where}: class(es) {', '.join(unknown)} are not among the run's classes "
                           f"({', '.join(classes)}); evaluate on images of the classes the model was trained on")
    mapping = [index[name] for name in own]
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, (list, tuple)) and len(samples) == len(dataset):
        from vitcore.builtin.datasets import ImageSamples

        return ImageSamples([(path, mapping[label]) for path, label in samples], classes)
    return _Relabel(dataset, mapping)


class _Relabel:
    """A map-style dataset with each label passed through ``mapping``."""

    def __init__(self, base: Any, mapping: list[int]) -> None:
        self.base, self.mapping = base, mapping

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.base[index]
        return image, self.mapping[int(label)]


def shared_with_run(run_dir: Path, source: EvaluationSource) -> list[str]:
    """Messages naming the files of ``source`` the run trained on, or validated on (the same path,
    or a link to the same file): figures on them are not honest held-out figures. Evaluating
    exactly the run's validation images again is not reported (those are validation figures, as
    named). Best effort: when the run's data set cannot be loaded any more (moved, a plugin gone)
    nothing is reported."""
    from vitcore.components import DataSplits
    from vitcore.data_loading import shared_files_messages
    from vitcore.runs import read_json

    try:
        with warnings.catch_warnings():  # the run's own warnings were shown when it ran
            warnings.simplefilter("ignore")
            own = _load(read_json(run_dir / "spec.json"), run_dir / "spec.json", None)
    except Exception:  # noqa: BLE001 - a data set that cannot be loaded only means the check cannot be made
        return []
    found = []
    for split in ("train", "val"):
        pair = {"train": own.train if split == "train" else (), "val": own.val if split == "val" else ()}
        for message in shared_files_messages(DataSplits(classes=list(own.classes), test=source.dataset, **pair)):
            if split == "val" and message.startswith(f"{len(source.dataset)} file(s) "):
                continue  # every evaluated image is a validation image: the validation split itself
            found.append(f"evaluate {source.name}: " + message.replace(
                f"the {split} and the test split", f"the run's {split} split and the evaluated images").replace(
                "its test figures", "these figures"))
    return found


def evaluate_run(run_dir: Path, *, split: str | None = None, data_dir: Path | None = None,
                 data_spec_file: Path | None = None, name: str | None = None,
                 device: str = "auto") -> tuple[dict[str, Any], Path]:
    """Evaluate the run's best model on one source (``data_spec_file``, else ``data_dir``, else the
    run's own ``split``), keep it as ``run_dir/evaluations/<name>.json`` with its pictures, and
    return ``(record, path)``. On a GPU it runs under the run's precision, on the CPU in fp32."""
    from vitcore.engine.device import resolve_precision, select_device
    from vitcore.evaluation import evaluate_split, write_evaluation
    from vitcore.inference import load_run_model
    from vitcore.runs import read_json

    if data_dir is not None and data_spec_file is not None:
        raise VitcoreError("give --data or --data-spec, not both")
    torch_device = select_device(device)
    loaded = load_run_model(run_dir, torch_device)
    if data_spec_file is not None:
        source = data_spec(data_spec_file, loaded.classes, split)
    elif data_dir is not None:
        source = folder(data_dir, loaded.classes, split)
    else:
        source = run_split(run_dir, loaded.classes, split)
    wanted = "fp32"
    if torch_device.type == "cuda":
        wanted = str(((read_json(run_dir / "spec.json").get("train") or {}).get("precision")) or "auto")
    precision = resolve_precision(wanted, torch_device)
    result = evaluate_split(loaded.model, source.dataset, loaded.preprocessing, loaded.classes, torch_device,
                            precision)
    result["source"] = source.description
    for key in ("split", "folder"):  # as `vitcore evaluate --json` printed them before
        if key in source.description:
            result[key] = source.description[key]
    result["checkpoint"] = loaded.checkpoint.name
    if source.description["kind"] != "split":  # the run's own splits were checked as they loaded
        shared = shared_with_run(run_dir, source)
        for message in shared:
            warnings.warn(message, stacklevel=2)
        if shared:
            result["warnings"] = shared
    path = write_evaluation(run_dir, name or source.name, result, dataset=source.dataset)
    return read_json(path), path
