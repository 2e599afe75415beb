"""Creating the transformers model: from a config, or from a folder with a new head and image size.

A checkpoint is adapted in its state dict before transformers loads it: position embeddings are
resized to the new patch grid (so they keep what they learnt) and only the classifier may be
re-initialised; any other mismatch is an error rather than a silently random layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vitcore.api import SpecError, VitcoreError, load_state_dict_file, resize_pos_embed
from vitcore_vit_hf.models import STRUCTURE_FIELDS, TUNABLE_FIELDS, HFViTOptions
from vitcore_vit_hf.source import WEIGHT_FILES, read_json

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from transformers import PretrainedConfig, PreTrainedModel



def from_config(options: HFViTOptions, class_names: list[str]) -> "PreTrainedModel":
    """A randomly initialised model of the options' sizes."""
    from transformers import ViTConfig

    config = ViTConfig(**options.scratch_sizes())
    set_labels(config, class_names)
    return model_class(options.architecture, config)(config)


def _read_config(folder: Path) -> "PretrainedConfig":
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:  # unreadable JSON, a model type transformers does not know
        raise VitcoreError(f"model.pretrained: cannot read {folder / 'config.json'}: {exc}") from None


def architecture_only(folder: Path, options: HFViTOptions, class_names: list[str]) -> "PreTrainedModel":
    """The folder's architecture, randomly initialised: a checkpoint will replace every weight."""
    config = _read_config(folder)
    cls = model_class(options.architecture, config)
    adapt_config(config, options, folder)
    set_labels(config, class_names)
    return cls(config)


def from_pretrained(folder: Path, options: HFViTOptions, class_names: list[str]) -> "PreTrainedModel":
    """The folder's model with a head for ``class_names`` at the options' image size."""
    import torch

    config = _read_config(folder)
    cls = model_class(options.architecture, config)
    old_grid = patch_grid(config)
    adapt_config(config, options, folder)
    set_labels(config, class_names)
    state = read_checkpoint(folder)
    resize_position_embeddings(state, old_grid, patch_grid(config))
    # ignore_mismatched_sizes lets the classifier take the new class count; check_loading_info
    # rejects any other mismatch, which would otherwise be re-initialised silently. float32:
    # half-precision checkpoints must not make the trained master weights half precision.
    model, info = cls.from_pretrained(
        None, config=config, state_dict=state, ignore_mismatched_sizes=True, output_loading_info=True,
        dtype=torch.float32,
    )
    check_loading_info(info, folder)
    return model


def name_the_loss(hf_model: "PreTrainedModel") -> None:
    """Give the base models inside a classifier (``ViTModel`` in ``ViTForImageClassification``) its loss type.

    transformers leaves theirs unset, and anything that walks the modules' attributes (``torch.jit.trace``
    for TensorBoard's graph, ONNX export) reads their ``loss_function``, which then logs "loss_type=None
    was set in the config but it is unrecognized ... ForCausalLMLoss" to the user. They compute no loss.
    """
    from transformers import PreTrainedModel

    for module in hf_model.modules():
        if isinstance(module, PreTrainedModel) and getattr(module, "loss_type", None) is None:
            module.loss_type = hf_model.loss_type or "ForImageClassification"


def model_class(architecture: str, config: "PretrainedConfig") -> type["PreTrainedModel"]:
    if architecture == "ViTForImageClassification":
        if config.model_type != "vit":
            raise VitcoreError(
                f"model.architecture: the checkpoint is a {config.model_type!r} model, not 'vit'; "
                "set architecture: AutoModelForImageClassification to load it"
            )
        from transformers import ViTForImageClassification

        return ViTForImageClassification
    from transformers import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING

    if type(config) not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING:
        raise VitcoreError(f"model.pretrained: transformers has no image classifier for {config.model_type!r} models")
    classes = MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING[type(config)]
    if not isinstance(classes, (list, tuple)):
        return classes
    # Several heads for one config (DeiT, with and without teacher): the one the checkpoint names, as Auto does.
    named = [c for c in classes if c.__name__ in (config.architectures or [])]
    return (named or list(classes))[0]


def adapt_config(config: "PretrainedConfig", options: HFViTOptions, folder: Path) -> None:
    """Apply the options to a checkpoint's config; sizes that shape the weights must agree with it."""
    for name, value in options.set_sizes().items():
        current = getattr(config, name, None)
        if current is None:
            raise SpecError(f"model.{name}: the {config.model_type!r} config in {folder} has no {name}; leave it unset")
        if name in STRUCTURE_FIELDS and current != value:
            raise SpecError(
                f"model.{name}: {value} differs from the checkpoint's {current} ({folder}); "
                "leave it unset to use the checkpoint's"
            )
        if name in TUNABLE_FIELDS or name == "image_size":
            setattr(config, name, value)
    if _int(config.image_size) % _int(config.patch_size):
        raise SpecError(
            f"model.image_size: {config.image_size} is not divisible by the checkpoint's patch_size {config.patch_size}"
        )


def set_labels(config: "PretrainedConfig", class_names: list[str]) -> None:
    config.id2label = dict(enumerate(class_names))
    config.label2id = {name: i for i, name in enumerate(class_names)}


def patch_grid(config: "PretrainedConfig") -> int:
    """Patches per side of a square-input config."""
    return _int(config.image_size) // _int(config.patch_size)


def _int(size: int | list[int] | tuple[int, ...]) -> int:
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise VitcoreError(f"model: non-square sizes ({list(size)}) are not supported")
        return int(size[0])
    return int(size)


def read_checkpoint(folder: Path) -> dict[str, "torch.Tensor"]:
    """Every tensor of a save_pretrained folder, sharded or not, safetensors preferred."""
    for index_name, single in WEIGHT_FILES:
        index = read_json(folder / index_name)
        paths = [folder / name for name in sorted(set(index["weight_map"].values()))] if index else [folder / single]
        if all(path.is_file() for path in paths):
            state: dict[str, "torch.Tensor"] = {}
            for path in paths:
                state.update(load_state_dict_file(path))
            return state
    raise VitcoreError(f"model.pretrained: {folder} holds no model.safetensors or pytorch_model.bin weights")


def resize_position_embeddings(state: dict[str, "torch.Tensor"], old_grid: int, new_grid: int) -> None:
    """Resize absolute position tables in place to ``new_grid``; class/distillation entries are kept."""
    if old_grid == new_grid:
        return
    for key, table in state.items():
        if key.endswith("position_embeddings") and table.ndim == 3:
            state[key] = resize_pos_embed(table, new_grid, num_prefix_tokens=table.shape[1] - old_grid * old_grid)


def is_head(key: str) -> bool:
    """Classifier weights (``classifier``, DeiT's ``cls_classifier`` / ``distillation_classifier``)."""
    return key.split(".", 1)[0].endswith("classifier")


def check_loading_info(info: dict, folder: Path) -> None:
    missing = sorted(k for k in info["missing_keys"] if not is_head(k))
    mismatched = sorted(f"{k} {tuple(old)} vs {tuple(new)}" for k, old, new in info["mismatched_keys"] if not is_head(k))
    problems = [f"{label}: {', '.join(keys[:5])}" for label, keys in
                (("missing", missing), ("shape mismatch (checkpoint vs model)", mismatched)) if keys]
    if problems:
        raise VitcoreError(f"model.pretrained: the weights in {folder} do not fit the model; {'; '.join(problems)}")
