"""What a pruned model keeps: per block, the attention heads and the MLP hidden channels.

Kept indices are written as compact range strings (``"0-3,5,8-11"``) so a spec stays readable:
a ViT-B block keeps hundreds of MLP channels, one JSON line each would bury the rest of it.
No torch here: the spec options and the command's choice both use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


def format_indices(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 5]`` -> ``"0-3,5"`` (ascending, no repeats)."""
    parts: list[str] = []
    values = sorted(set(int(i) for i in indices))
    start = prev = None
    for value in values:
        if start is None:
            start = prev = value
        elif value == prev + 1:
            prev = value
        else:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = value
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def parse_indices(text: str) -> list[int]:
    """``"0-3,5"`` -> ``[0, 1, 2, 3, 5]``; ValueError naming the bad part (ranges ascending, no repeats)."""
    out: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            raise ValueError(f"{text!r}: empty entry; write kept indices as e.g. \"0-3,5\"")
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise ValueError(f"{text!r}: {part!r} is not an index or a range a-b") from None
        if first < 0 or last < first:
            raise ValueError(f"{text!r}: {part!r} is not an ascending range of indices >= 0")
        if out and first <= out[-1]:
            raise ValueError(f"{text!r}: indices must ascend without repeats (at {part!r})")
        out.extend(range(first, last + 1))
    return out


def removed_count(share: float, total: int, what: str) -> int:
    """How many of ``total`` a ``share`` removes (rounded half up); at least one must stay."""
    count = math.floor(share * total + 0.5)
    if count >= total:
        raise ValueError(f"{what}: removing {share:g} of the {total} per block leaves none; ask for a smaller share")
    return count


def keep_most_important(scores: Sequence[float], remove: int) -> list[int]:
    """The indices of the ``len(scores) - remove`` highest scores, ascending (ties: the lower index)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[: len(scores) - remove])


@dataclass(frozen=True)
class Plan:
    """Per block the kept head and MLP channel indices (``None``: the block keeps all)."""

    heads: list[list[int]] | None
    mlp: list[list[int]] | None

    def to_options(self) -> dict[str, list[str] | None]:
        return {
            "heads": None if self.heads is None else [format_indices(h) for h in self.heads],
            "mlp": None if self.mlp is None else [format_indices(m) for m in self.mlp],
        }

    @classmethod
    def from_options(cls, heads: Sequence[str] | None, mlp: Sequence[str] | None) -> "Plan":
        return cls(None if heads is None else [parse_indices(h) for h in heads],
                   None if mlp is None else [parse_indices(m) for m in mlp])
