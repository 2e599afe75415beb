"""vitcore: train Vision Transformer image classifiers, composed from pluggy plugins."""

import pluggy

__version__ = "0.1.0"

#: Decorator plugins use to implement vitcore hooks: ``@vitcore.hookimpl``.
hookimpl = pluggy.HookimplMarker("vitcore")

__all__ = ["__version__", "hookimpl"]
