"""``distill``: the loss of a student learning from an earlier run's model (the teacher).

The teacher is that run's best model, in eval mode, without gradients, under the run's
precision; it sees the student's batch brought to its own preprocessing (size, mean, std). It is
never part of the student's checkpoints or exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from vitcore.components import Preprocessing
from vitcore.errors import SpecError


class Teacher:
    """The teacher model and the conversion of the student's input batch to its input."""

    def __init__(self, model: torch.nn.Module, student: Preprocessing, teacher: Preprocessing,
                 device: torch.device) -> None:
        self.model = model.to(device).eval().requires_grad_(False)
        as_tensor = lambda v: torch.tensor(v, device=device).view(1, 3, 1, 1)  # noqa: E731
        self.student_mean, self.student_std = as_tensor(student.mean), as_tensor(student.std)
        self.mean, self.std = as_tensor(teacher.mean), as_tensor(teacher.std)
        self.size = teacher.image_size
        self.same_input = (student.image_size, student.mean, student.std) == (teacher.image_size, teacher.mean,
                                                                              teacher.std)

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        if not self.same_input:
            pixels = images * self.student_std + self.student_mean
            if pixels.shape[-1] != self.size or pixels.shape[-2] != self.size:
                pixels = F.interpolate(pixels, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                       antialias=True)
            images = (pixels - self.mean) / self.std
        return self.model(images)


def load_teacher(teacher: str, classes: list[str], student: Preprocessing, device: torch.device) -> Teacher:
    from vitcore.inference import load_run_model
    from vitcore.runs import resolve_run_dir

    path = Path(teacher)
    if not path.exists():
        raise SpecError(f"distill.teacher: {path} does not exist (give runs/<name>/v<N> or runs/<name>)")
    loaded = load_run_model(resolve_run_dir(path))
    if list(loaded.classes) != list(classes):
        raise SpecError(f"distill.teacher: {loaded.run_dir} was trained on classes {loaded.classes}, this run has "
                        f"{classes}; a teacher must know the student's classes, in the same order")
    return Teacher(loaded.model, student, loaded.preprocessing, device)


def distillation_loss(kind: str, temperature: float, weight: float,
                      base: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    """``loss(student_logits, targets, teacher_logits)``: ``weight`` x distillation + the rest x labels."""

    def loss(student: torch.Tensor, targets: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        teacher = teacher.float()
        if kind == "soft":
            t = temperature
            term = F.kl_div(F.log_softmax(student.float() / t, dim=1), F.log_softmax(teacher / t, dim=1),
                            reduction="batchmean", log_target=True) * (t * t)
        else:
            term = F.cross_entropy(student, teacher.argmax(dim=1))
        if weight >= 1.0:
            return term
        return weight * term + (1.0 - weight) * base(student, targets)

    return loss
