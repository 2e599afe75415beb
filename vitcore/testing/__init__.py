"""Helpers for tests of vitcore and of plugins: tiny real data and specs, the CLI in a child, the
contract checks (one per component kind), temporary plugin registration, a real training run and
the engine's optimizer. Its pytest plugin (``vitcore.testing.pytest_plugin``, active wherever vitcore
is installed) gives every test a private vitcore cache and a fresh plugin host.

Cheap to import (no torch at module level), so a plugin's own test suite can use it::

    from vitcore.testing import check_metric_sink

    def test_my_sink_keeps_the_contract(tmp_path):
        check_metric_sink(MySink, {"filename": "log.csv"}, tmp_path)
"""

from vitcore.testing.contracts import (
    check_augmentation,
    check_dataset,
    check_exporter,
    check_metric_sink,
    check_model_builder,
    check_visualizer,
)
from vitcore.testing.data import (
    COLOURS,
    TINY_VIT,
    colour_images,
    make_image_folder,
    metric_records,
    run_cli,
    tiny_spec,
    write_spec,
)
from vitcore.testing.engine import command_group, engine_optimizer, engine_param_groups, train_spec
from vitcore.testing.host import installed_plugin, isolated, registered_plugin
from vitcore.testing.hub import LoopbackHub

__all__ = [
    "COLOURS",
    "LoopbackHub",
    "TINY_VIT",
    "check_augmentation",
    "check_dataset",
    "check_exporter",
    "check_metric_sink",
    "check_model_builder",
    "check_visualizer",
    "colour_images",
    "command_group",
    "engine_optimizer",
    "engine_param_groups",
    "installed_plugin",
    "isolated",
    "make_image_folder",
    "metric_records",
    "registered_plugin",
    "run_cli",
    "tiny_spec",
    "train_spec",
    "write_spec",
]
