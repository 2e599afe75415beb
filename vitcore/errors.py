"""User-facing errors: the CLI prints their message (no traceback) and exits with their code."""

from __future__ import annotations


class VitcoreError(Exception):
    """A problem the user can fix (bad spec, missing file, unknown component)."""

    exit_code = 1


class SpecError(VitcoreError):
    """The run spec (or an override) does not validate."""

    exit_code = 2


class UnknownComponentError(SpecError):
    """A spec names a component no plugin registered."""


class DuplicateComponentError(VitcoreError):
    """Two plugins registered a component under the same name."""


class TrainingDiverged(VitcoreError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""

    exit_code = 3
