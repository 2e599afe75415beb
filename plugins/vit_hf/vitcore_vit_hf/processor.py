"""Translate between a Hugging Face image-processor config and vitcore's ``Preprocessing``.

Reading lets a pretrained folder bring its own normalisation; writing lets an exported folder be
used by ``AutoImageProcessor`` exactly as vitcore evaluates (short side resize, centre crop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from vitcore.api import Preprocessing

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import ViTImageProcessor

#: PIL resampling codes (what ``resample`` holds in preprocessor_config.json) and their names.
_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
_RESAMPLE_CODE = {**{name: code for code, name in _RESAMPLE.items()}, "nearest-exact": 0}


def _triple(value: Any, default: float) -> tuple[float, float, float]:
    if value is None:
        return (default, default, default)
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _side(size: Any) -> int | None:
    """The side a ``size``/``crop_size`` entry resizes to: an int, or a dict of edge/height keys."""
    if isinstance(size, (int, float)):
        return int(size)
    if isinstance(size, Mapping):
        for key in ("shortest_edge", "height"):
            if size.get(key):
                return int(size[key])
    return None


def preprocessing_from_config(config: Mapping[str, Any] | None, image_size: int) -> Preprocessing:
    """The run's preprocessing from a folder's ``preprocessor_config.json`` (0.5/0.5 without one).

    The model's ``image_size`` wins over the processor's; a processor that centre-crops keeps its
    resize/crop ratio as ``crop_pct`` so fine-tuning at another size evaluates the same way.
    """
    if not config:
        return Preprocessing(image_size)
    crop_pct = config.get("crop_pct")
    if crop_pct is None and config.get("do_center_crop"):
        resize, crop = _side(config.get("size")), _side(config.get("crop_size"))
        if resize and crop:
            crop_pct = crop / resize
    return Preprocessing(
        image_size,
        mean=_triple(config.get("image_mean"), 0.5),
        std=_triple(config.get("image_std"), 0.5),
        interpolation=_RESAMPLE.get(config.get("resample"), "bilinear"),
        crop_pct=min(1.0, float(crop_pct)) if crop_pct else 1.0,
    )


def image_processor(pre: Preprocessing) -> "ViTImageProcessor":
    """A ``ViTImageProcessor`` doing vitcore's evaluation transform: short side to
    ``image_size / crop_pct``, centre crop ``image_size``, scale to [0, 1], normalise."""
    from transformers import ViTImageProcessor

    return ViTImageProcessor(
        do_resize=True,
        size={"shortest_edge": round(pre.image_size / pre.crop_pct)},
        resample=_RESAMPLE_CODE.get(pre.interpolation, _RESAMPLE_CODE["bilinear"]),
        do_center_crop=True,
        crop_size={"height": pre.image_size, "width": pre.image_size},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(pre.mean),
        image_std=list(pre.std),
    )
