"""Where ``timm_vit`` finds pretrained weights: a local file or folder, or the Hugging Face hub.

Hub weights (``hf_hub_id``, or timm's default for ``pretrained: true``) come from the local HF cache
when it holds them, else are downloaded into it through huggingface_hub (``vitcore.api.HubRepo``:
HF_HUB_OFFLINE, HF_ENDPOINT, HF_HUB_CACHE / HF_HOME respected, the hub's hash checked); offline or
unreachable, the error says how to copy them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from vitcore.api import HubRepo, VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vitcore_vit_timm.options import TimmViTOptions

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".npz")
#: The weight files of a timm/HF folder or hub snapshot, in order of preference.
FOLDER_FILES = ("model.safetensors", "pytorch_model.bin")
#: Keys timm's checkpoint reader unwraps, in its order (EMA weights first).
_WRAPPERS = ("state_dict_ema", "model_ema", "state_dict", "model")

#: How to do without the hub, for the offline/unreachable message.
_BY_HAND = "set model.weights to a local weight file or folder"


@dataclass(frozen=True)
class Checkpoint:
    """A local weight file for timm to read, and the option that led to it (for messages)."""

    path: Path
    origin: str


def find_checkpoint(options: "TimmViTOptions", spec_dir: Path) -> Checkpoint | None:
    """The checkpoint the options ask for, or None for a randomly initialised model."""
    if options.weights is not None:
        path = Path(options.weights).expanduser()
        return Checkpoint(local_file(path if path.is_absolute() else spec_dir / path), "model.weights")
    if options.hf_hub_id is not None:
        return Checkpoint(hub_file(options.hf_hub_id, "model.hf_hub_id"), "model.hf_hub_id")
    if options.pretrained:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(options.name)
        if cfg is None or not cfg.hf_hub_id:
            raise VitcoreError(f"model.pretrained: timm knows no Hugging Face weights for {options.name}; "
                               "set model.weights to a local file instead")
        path = hub_file(cfg.hf_hub_id, "model.pretrained", cfg.hf_hub_filename)
        return Checkpoint(path, "model.pretrained")
    return None


def local_file(path: Path) -> Path:
    """A weight file, or the weight file of a timm/HF folder."""
    if path.is_dir():
        for name in FOLDER_FILES:
            if (path / name).is_file():
                return path / name
        raise VitcoreError(f"model.weights: folder {path} holds neither {' nor '.join(FOLDER_FILES)}; "
                           "point model.weights at the weight file itself")
    if not path.is_file():
        raise VitcoreError(f"model.weights: {path} not found: copy a checkpoint "
                           f"({', '.join(WEIGHT_SUFFIXES)} or a timm/HF folder) onto this machine and set "
                           "model.weights to its path (or use model.hf_hub_id / model.pretrained to download one)")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise VitcoreError(f"model.weights: {path} is not a weight file timm reads "
                           f"(expected {', '.join(WEIGHT_SUFFIXES)} or a folder)")
    return path


def hub_file(repo_id: str, origin: str, filename: str | None = None) -> Path:
    """The weight file of ``repo_id``'s main revision: cached, else downloaded (safetensors first, as timm)."""
    names = (filename,) if filename else FOLDER_FILES
    return HubRepo(repo_id, origin=origin, by_hand=_BY_HAND).first(names)


def checkpoint_classes(checkpoint: Checkpoint, classifier: Sequence[str]) -> int | None:
    """Rows of the checkpoint's classifier weight, None if it has none.

    Read from the safetensors header or a memory-mapped torch file, so timm alone loads the tensors.
    """
    key = f"{classifier[0]}.weight"
    path = checkpoint.path
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                return f.get_slice(key).get_shape()[0] if key in f.keys() else None
        state = _unwrap(_torch_load(path))
    except Exception as exc:  # corrupt file, or pickled objects weights_only refuses
        raise VitcoreError(f"{checkpoint.origin}: cannot read {path} as a state dict ({exc})") from exc
    tensor = state.get(key, state.get(f"module.{key}"))
    return None if tensor is None else int(tensor.shape[0])


def _torch_load(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # files saved by torch < 1.6 cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def _unwrap(checkpoint: Any) -> Mapping[str, Any]:
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"expected a state dict, got {type(checkpoint).__name__}")
    for wrapper in _WRAPPERS:
        if isinstance(checkpoint.get(wrapper), Mapping):
            return checkpoint[wrapper]
    return checkpoint
