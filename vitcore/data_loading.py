"""``load_splits``: the one way to get a spec's data set, for training and every other command.

The engine, ``vitcore validate``, ``vitcore model summary``, ``vitcore export`` and the plugins'
commands all build the provider, hand it the same ``DataContext`` (cache folder, seed, the spec's
folder) and apply the same checks, so a data set a command accepts is one a run accepts.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from vitcore.components import DataContext, DataSplits
from vitcore.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vitcore.engine.distributed import DistInfo
    from vitcore.spec import ResolvedComponent, ResolvedSpec


def data_context(seed: int = 0, spec_dir: Path | None = None) -> DataContext:
    """The context every provider gets: vitcore's cache folder, the seed, the spec's folder."""
    from vitcore.paths import cache_dir

    return DataContext(cache_dir=cache_dir(), seed=seed, spec_dir=Path(spec_dir) if spec_dir else Path.cwd())


def load_splits(spec: "ResolvedSpec | Mapping[str, Any]", *, seed: int | None = None,
                dist_info: "DistInfo | None" = None, spec_dir: Path | None = None,
                source: str | None = None) -> DataSplits:
    """The data set of ``spec``, checked: at least 2 classes, a non-empty train and val split.

    ``spec`` is a resolved spec, or a run's spec.json as a dict: then only its ``data`` entry is
    resolved (a run stays usable when a plugin its sinks named is gone), relative paths against
    ``spec_dir`` (default: the working directory; spec.json holds absolute paths). ``seed``
    defaults to the spec's ``train.seed``. With ``dist_info`` of a torchrun world, rank 0 loads
    first and the other ranks after it, so a provider that writes a cache (shapes) does it once.
    Raises SpecError (exit 2) naming ``data`` for a data set no classifier can train on; the
    provider's own errors (a missing folder, a bad CSV) pass through as they are. ``source`` names
    a dict's file in those errors (default ``<spec>``).
    """
    entry, source, base, spec_seed = _data_entry(spec, spec_dir, source)
    ctx = data_context(spec_seed if seed is None else seed, base)
    provider = entry.instantiate()
    if dist_info is not None and dist_info.enabled:
        from vitcore.engine.distributed import leader_first

        splits = leader_first(dist_info, lambda: provider.load(ctx))
    else:
        splits = provider.load(ctx)
    check_splits(splits, source)
    return splits


def check_splits(splits: DataSplits, source: str = "<spec>") -> None:
    """The data rules every run needs; SpecError (exit 2) listing each broken one under ``data``."""
    problems = []
    if len(splits.classes) < 2:
        problems.append(f"found {len(splits.classes)} class(es) ({', '.join(map(str, splits.classes)) or 'none'}); "
                        "a classifier needs at least 2")
    if len(splits.train) == 0:  # type: ignore[arg-type]
        problems.append("the training split is empty")
    if len(splits.val) == 0:  # type: ignore[arg-type]
        problems.append("the validation split is empty (add images or raise val_fraction)")
    train_counts = _class_counts(splits.train, len(splits.classes))
    if train_counts is not None and not problems:
        empty = [str(splits.classes[i]) for i, n in enumerate(train_counts) if n == 0]
        if empty:
            problems.append(f"class(es) {', '.join(empty)} have no usable training images (none found, or every "
                            "file unreadable); add readable images or remove the class")
    if problems:
        raise SpecError("\n".join(f"{source}: data: {problem}" for problem in problems))
    val_counts = _class_counts(splits.val, len(splits.classes))
    if val_counts is not None:
        unseen = [str(splits.classes[i]) for i, n in enumerate(val_counts) if n == 0]
        if unseen:
            message = (f"class(es) {', '.join(unseen)} have no validation images: their accuracy cannot be "
                       "measured (add images to the validation split or raise val_fraction)")
            warnings.warn(f"data: {message}", stacklevel=2)
            splits.info.setdefault("warnings", []).append(message)  # kept in summary.json's data
    for message in shared_files_messages(splits):
        warnings.warn(f"data: {message}", stacklevel=2)
        splits.info.setdefault("warnings", []).append(message)


def shared_files_messages(splits: DataSplits, shown: int = 5) -> list[str]:
    """One message per pair of splits that hold the same file (validation or test figures would
    then measure images the model trained on, or the test set would be tuned on), naming the files.

    A file is the same when its path is, or when two paths lead to it (a symlink, a hard link: one
    ``stat`` per file); copies with other names are not looked for. Splits without file paths
    (``samples``) are not checked.
    """
    named = [("train", splits.train), ("val", splits.val), ("test", splits.test)]
    files = {name: _files_by_identity(split) for name, split in named if split is not None}
    messages = []
    for i, (first, _) in enumerate(named):
        for second, _ in named[i + 1:]:
            if files.get(first) is None or files.get(second) is None:
                continue
            shared = sorted(files[second][key] for key in files[first].keys() & files[second].keys())
            if shared:
                listed = ", ".join(shared[:shown]) + (f" and {len(shared) - shown} more" if len(shared) > shown else "")
                messages.append(f"{len(shared)} file(s) are in both the {first} and the {second} split: {listed}; "
                                f"its {second} figures are not honest until each file is in one split only")
    return messages


def _files_by_identity(split: Any) -> dict[Any, str] | None:
    """``{identity: path}`` of a split's files; the identity is (device, inode), else the path."""
    samples = getattr(split, "samples", None)
    if not isinstance(samples, (list, tuple)):
        return None
    found: dict[Any, str] = {}
    for item in samples:
        try:
            path = os.path.normpath(os.path.abspath(os.fspath(item[0])))
        except (TypeError, IndexError):
            return None
        try:
            info = os.stat(path)
            key: Any = (info.st_dev, info.st_ino)
        except OSError:
            key = path
        found.setdefault(key, path)
    return found


def _class_counts(split: Any, num_classes: int) -> list[int] | None:
    """Images per class of a split whose dataset lists its ``targets`` (None when it does not)."""
    targets = getattr(split, "targets", None)
    if targets is None:
        return None
    counts = [0] * num_classes
    for label in targets:
        if 0 <= int(label) < num_classes:
            counts[int(label)] += 1
    return counts


def _data_entry(spec: "ResolvedSpec | Mapping[str, Any]", spec_dir: Path | None,
                source: str | None = None) -> tuple["ResolvedComponent", str, Path | None, int]:
    from vitcore.spec import ResolvedSpec, resolve_component

    if isinstance(spec, ResolvedSpec):
        return spec.data, spec.source, spec_dir or spec.base_dir, spec.train.seed
    source = source or "<spec>"
    if "data" not in spec:
        raise SpecError(f"{source}: data: Field required")
    if not isinstance(spec["data"], Mapping):
        raise SpecError(f"{source}: data: expected an object such as {{\"type\": \"imagefolder\", \"root\": ...}}")
    entry = resolve_component(dict(spec["data"]), "datasets", "data", source=source, base_dir=spec_dir)
    return entry, source, spec_dir, int((spec.get("train") or {}).get("seed", 0))
