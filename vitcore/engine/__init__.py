"""The training engine: composes registered components into a training run.

Heavy (imports torch): only commands that train, evaluate or export import it.
"""
