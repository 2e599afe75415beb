"""vitcore: train Vision Transformer image classifiers, composed from pluggy plugins."""

import pluggy

__version__ = "0.1.0"

#: Version of the plugin interface (hookspecs, component classes, contexts). A minor bump adds
#: (new hooks, optional methods, context fields); a major bump breaks. Plugins declare what they
#: need with a module attribute ``VITCORE_PLUGIN_API = ">=1.0,<2"`` (see docs/PLUGINS.md).
PLUGIN_API_VERSION = "1.3"

#: Decorator plugins use to implement vitcore hooks: ``@vitcore.hookimpl``.
hookimpl = pluggy.HookimplMarker("vitcore")

__all__ = ["PLUGIN_API_VERSION", "__version__", "hookimpl"]
