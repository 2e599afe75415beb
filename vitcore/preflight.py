"""One preflight for ``vitcore validate`` and ``vitcore run``: every rule a run would enforce
after its spec validated, checked before any training step, reported as spec errors (exit 2)
with the field path: ``spec.json: train.augment: ...``.

Three groups of rules, by what they need (each in ``RULES``, each with a test in
tests/test_preflight.py):

* the spec and this machine: ``train.device`` exists here, ``train.precision`` fp16 has a GPU,
  ``train.batch_size`` divides among the torchrun processes, ``train.augment: device`` has a
  device version of every augmentation, ``model.init_from`` names a checkpoint;
* the data set (``splits``): at least 2 classes and non-empty splits, ``train.decode: device``
  has a file-backed data set, ``train.grad_accum_steps`` leaves at least one optimizer step
  per epoch;
* the components' own rules (``Component.preflight``), which may need the built model, e.g. a
  visualizer's patch inside the model's grid.

``vitcore run`` checks the first group before it loads anything, and the engine checks all of
them again once it holds the data and the model (``preflight(resolved, splits=..., model=...)``),
before the run folder exists. ``vitcore validate`` loads the data set and builds the model
(untrained, on the CPU) to check everything (``check_without_training``); ``--spec-only``
keeps to the first group.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from vitcore.components import AugmentationContext, DataSplits, PreflightContext, Preprocessing
from vitcore.errors import SpecError, VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    from vitcore.spec import ResolvedComponent, ResolvedSpec

#: A broken rule: (field path, what is wrong and what to do).
Problem = tuple[str, str]


def preflight(resolved: "ResolvedSpec", *, splits: DataSplits | None = None,
              preprocessing: Preprocessing | None = None, model: "torch.nn.Module | None" = None) -> None:
    """Raise SpecError listing every rule ``resolved`` breaks, each with its field path.

    Without ``splits`` the data rules are skipped; without ``model`` the components check what
    they can without it. ``preprocessing`` defaults to the model builder's.
    """
    problems = problems_of(resolved, splits=splits, preprocessing=preprocessing, model=model)
    if problems:
        raise SpecError("\n".join(f"{resolved.source}: {field}: {message}" for field, message in problems))


def problems_of(resolved: "ResolvedSpec", *, splits: DataSplits | None = None,
                preprocessing: Preprocessing | None = None,
                model: "torch.nn.Module | None" = None) -> list[Problem]:
    """Every broken rule, in the order of ``RULES`` (spec rules, then data rules, then components')."""
    facts = _Facts(resolved, splits, preprocessing, model)
    problems: list[Problem] = []
    for rule in RULES:
        problems.extend(rule(facts))
    return problems


def check_without_training(resolved: "ResolvedSpec", *, spec_only: bool = False) -> None:
    """``vitcore validate``: everything ``vitcore run`` checks before its first step, without training.

    The spec's rules first (cheap; nothing is loaded if they fail), then the data set is loaded
    and the model built on the CPU, as the run would (its pretrained weights and ``init_from``
    included), and every rule is checked again with them. A data set or a model that cannot be
    built fails with the provider's or builder's own error, as the run would.
    """
    preflight(resolved)
    if spec_only:
        return
    from vitcore.data_loading import load_splits

    with naming_source(resolved.source):
        splits = load_splits(resolved)
        net, pre = _build_model(resolved, list(splits.classes))
    preflight(resolved, splits=splits, preprocessing=pre, model=net)


@contextmanager
def naming_source(source: str) -> Iterator[None]:
    """SpecErrors raised inside (by the engine or a component: ``model.freeze_blocks: ...``) get
    the spec's name in front of each line, like the spec's own errors."""
    try:
        yield
    except SpecError as exc:
        lines = [line if line.startswith(f"{source}: ") else f"{source}: {line}" for line in str(exc).splitlines()]
        raise type(exc)("\n".join(lines)) from None


def _build_model(resolved: "ResolvedSpec", classes: list[str]) -> tuple["torch.nn.Module", Preprocessing]:
    """The untrained model as the run builds it, ``model.init_from`` applied, and its preprocessing."""
    from vitcore.components import ModelContext

    source = resolved.spec.model.init_from
    ctx = ModelContext(num_classes=len(classes), class_names=classes, spec_dir=resolved.base_dir,
                       load_pretrained=source is None)
    builder = resolved.model.instantiate()
    net = builder.build(ctx)
    if source is not None:
        from vitcore.engine.init_from import init_from

        init_from(net, source, classes)
    return net, builder.preprocessing()


# --------------------------------------------------------------------------------------------
# What the rules look at
# --------------------------------------------------------------------------------------------


class _Facts:
    """The spec and whatever is known of the run, computed once for all the rules."""

    def __init__(self, resolved: "ResolvedSpec", splits: DataSplits | None, preprocessing: Preprocessing | None,
                 model: "torch.nn.Module | None") -> None:
        self.resolved = resolved
        self.train = resolved.train
        self.splits = splits
        self.model = model
        self._preprocessing = preprocessing
        self._device: Any = None
        self._device_problem: Problem | None = None
        self._device_checked = False

    @property
    def preprocessing(self) -> Preprocessing | None:
        """The model's preprocessing: given, or the builder's (None if it cannot say without files)."""
        if self._preprocessing is None:
            try:
                self._preprocessing = self.resolved.model.instantiate().preprocessing()
            except VitcoreError:
                return None
        return self._preprocessing

    def device(self) -> tuple[Any, Problem | None]:
        """The training device as the run picks it on this machine (local rank 0), or the problem."""
        if not self._device_checked:
            from vitcore.engine.device import select_device

            self._device_checked = True
            try:
                self._device = select_device(self.train.device, _local_rank())
            except SpecError as exc:
                self._device_problem = _field_and_message(str(exc), "train.device")
        return self._device, self._device_problem

    def world_size(self) -> int:
        return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))

    def num_classes(self) -> int:
        return len(self.splits.classes) if self.splits is not None else 2

    def spec_dict(self) -> dict[str, Any]:
        return self.resolved.to_dict()


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def _field_and_message(text: str, default_field: str) -> Problem:
    """``"train.device: cuda was asked..."`` -> ("train.device", "cuda was asked...")."""
    head, sep, rest = text.partition(": ")
    if sep and head and " " not in head:
        return head, rest
    return default_field, text


# --------------------------------------------------------------------------------------------
# The rules (each returns its problems; one test each in tests/test_preflight.py)
# --------------------------------------------------------------------------------------------


def device_exists(facts: _Facts) -> list[Problem]:
    """``train.device``: cuda, cuda:N or mps must be there on this machine."""
    _device, problem = facts.device()
    return [problem] if problem else []


def precision_fits_device(facts: _Facts) -> list[Problem]:
    """``train.precision``: fp16 needs a GPU."""
    from vitcore.engine.device import resolve_precision

    device, problem = facts.device()
    if problem is not None:
        return []
    try:
        resolve_precision(facts.train.precision, device)
    except SpecError as exc:
        return [_field_and_message(str(exc), "train.precision")]
    return []


def batch_divides_among_processes(facts: _Facts) -> list[Problem]:
    """``train.batch_size``: under torchrun, a multiple of the process count."""
    batch, world = facts.train.batch_size, facts.world_size()
    if isinstance(batch, int) and batch % world:
        return [("train.batch_size", f"{batch} is not divisible by the {world} processes; "
                                     "choose a multiple of the process count")]
    return []


def augmentations_run_on_device(facts: _Facts) -> list[Problem]:
    """``train.augment: device``: every per-sample augmentation needs a device version."""
    if facts.train.augment != "device":
        return []
    from vitcore.engine.device_augment import device_steps

    entries = facts.resolved.augmentations
    ctx = AugmentationContext(preprocessing=facts.preprocessing or Preprocessing(224),
                              num_classes=facts.num_classes())
    augmentations = [entry.instantiate() for entry in entries]
    problems = []
    # One at a time, so every augmentation without a device version is named, not only the first.
    for index, (entry, augmentation) in enumerate(zip(entries, augmentations)):
        try:
            device_steps([augmentation], ctx, [entry.type])
        except VitcoreError as exc:
            field, message = _field_and_message(str(exc).replace("augmentations[0]", f"augmentations[{index}]"),
                                                "train.augment")
            problems.append((field, message))
    return problems


def init_from_has_a_checkpoint(facts: _Facts) -> list[Problem]:
    """``model.init_from``: an existing checkpoint file or run folder holding one."""
    source = facts.resolved.spec.model.init_from
    if source is None:
        return []
    from vitcore.engine.init_from import checkpoint_of

    try:
        checkpoint_of(source)
    except VitcoreError as exc:
        return [_field_and_message(str(exc), "model.init_from")]
    return []


def data_is_trainable(facts: _Facts) -> list[Problem]:
    """``data``: at least 2 classes, non-empty train and validation splits."""
    if facts.splits is None:
        return []
    from vitcore.data_loading import check_splits

    try:
        check_splits(facts.splits, facts.resolved.source)
    except SpecError as exc:
        prefix = f"{facts.resolved.source}: data: "
        return [("data", line.removeprefix(prefix)) for line in str(exc).splitlines()]
    return []


def device_decode_has_files(facts: _Facts) -> list[Problem]:
    """``train.decode: device``: the data set's splits must list their image files."""
    if facts.splits is None or facts.train.decode != "device":
        return []
    from vitcore.engine.device_decode import samples_of

    for split in (facts.splits.train, facts.splits.val):
        try:
            samples_of(split)
        except VitcoreError as exc:
            return [_field_and_message(str(exc), "train.decode")]
    return []


def an_optimizer_step_per_epoch(facts: _Facts) -> list[Problem]:
    """``train.grad_accum_steps``: at least one optimizer step per epoch from the training split."""
    if facts.splits is None:
        return []
    train_size = len(facts.splits.train)  # type: ignore[arg-type]
    world = facts.world_size()
    batch = facts.train.batch_size
    if batch == "auto":
        device, problem = facts.device()
        if problem is not None or device.type == "cuda":  # probed on the GPU by the run itself
            return []
        from vitcore.engine.batch_size import HOST_AUTO_BATCH, cap_to_data

        batch = cap_to_data(HOST_AUTO_BATCH * world, world, train_size)
    if train_size == 0 or batch % world:
        return []  # reported by data_is_trainable / batch_divides_among_processes
    micro_batches = train_size // batch if train_size >= batch else 1  # GlobalBatchSampler's length
    accum = facts.train.grad_accum_steps
    if micro_batches // accum < 1:
        return [("train.grad_accum_steps", f"{accum} micro-batches per step but only {micro_batches} per "
                                           f"epoch ({train_size} training images, batch_size {batch}); "
                                           "lower it or train.batch_size")]
    return []


def components_agree(facts: _Facts) -> list[Problem]:
    """Each component's own rules (``Component.preflight``), at its entry's field path."""
    ctx = PreflightContext(spec=facts.spec_dict(), classes=list(facts.splits.classes) if facts.splits else None,
                           preprocessing=facts.preprocessing, model=facts.model)
    problems: list[Problem] = []
    for location, entry in _entries(facts.resolved):
        for text in entry.instantiate().preflight(ctx) or []:
            head, sep, rest = str(text).partition(": ")
            if sep and head in type(entry.options).model_fields:
                problems.append((f"{location}.{head}", rest))
            else:
                problems.append((location, str(text)))
    return problems


def _entries(resolved: "ResolvedSpec") -> list[tuple[str, "ResolvedComponent"]]:
    from vitcore.spec import LIST_COMPONENTS, SINGLE_COMPONENTS

    found = [(name, getattr(resolved, name)) for name in SINGLE_COMPONENTS]
    for name in LIST_COMPONENTS:
        entries = getattr(resolved, name)
        # The always-on jsonl sink is put first when the spec does not list it: number as written.
        added = len(entries) - len(getattr(resolved.spec, name))
        found.extend((f"{name}[{i - added}]" if i >= added else name, entry) for i, entry in enumerate(entries))
    return found


#: Every rule, in the order problems are reported.
RULES: tuple[Callable[[_Facts], list[Problem]], ...] = (
    device_exists,
    precision_fits_device,
    batch_divides_among_processes,
    augmentations_run_on_device,
    init_from_has_a_checkpoint,
    data_is_trainable,
    device_decode_has_files,
    an_optimizer_step_per_epoch,
    components_agree,
)
