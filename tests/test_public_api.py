"""vitcore.api is what plugins may import: the in-repo plugins keep to it, and it stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import vitcore
import vitcore.api as api

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
#: Names a plugin may take from the ``vitcore`` package itself.
PACKAGE_NAMES = {"hookimpl", "PLUGIN_API_VERSION", "__version__", "api", "testing"}


def _is_test(path: Path) -> bool:
    return "tests" in path.relative_to(PLUGINS).parts


def _allowed(module: str, test: bool) -> bool:
    return module in ("vitcore", "vitcore.api") or (test and (module == "vitcore.testing"
                                                              or module.startswith("vitcore.testing.")))


def private_imports(path: Path) -> list[str]:
    """``file:line: import`` for every vitcore import of ``path`` outside the public API."""
    test = _is_test(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module == "vitcore":
                names = [a.name for a in node.names if a.name not in PACKAGE_NAMES or (a.name == "testing" and not test)]
                bad = [f"from vitcore import {name}" for name in names]
            elif module.startswith("vitcore.") and not _allowed(module, test):
                bad = [f"from {module} import {', '.join(a.name for a in node.names)}"]
            else:
                bad = []
        elif isinstance(node, ast.Import):
            bad = [f"import {a.name}" for a in node.names
                   if a.name.startswith("vitcore.") and not _allowed(a.name, test)]
        else:
            continue
        found += [f"{path.relative_to(ROOT)}:{node.lineno}: {text}" for text in bad]
    return found


def plugin_sources() -> list[Path]:
    return sorted(p for p in PLUGINS.rglob("*.py") if not any(part.endswith(".egg-info") or part == "build"
                                                              for part in p.relative_to(PLUGINS).parts))


def test_plugins_import_vitcore_only_through_its_public_api():
    sources = plugin_sources()
    assert len(sources) > 40, "the plugin sources were not found"
    problems = [line for path in sources for line in private_imports(path)]
    assert not problems, ("plugins must import vitcore names from vitcore.api (tests also vitcore.testing); "
                          "add what is missing to vitcore/api.py:\n" + "\n".join(problems))


@pytest.mark.parametrize(("source", "test", "expected"), [
    ("from vitcore.api import save_figure\nimport vitcore\nfrom vitcore import hookimpl", False, []),
    ("from vitcore.builtin.plots import save_figure", False, ["from vitcore.builtin.plots import save_figure"]),
    ("def f():\n    from vitcore.engine.data import DeviceNormalize", False,
     ["from vitcore.engine.data import DeviceNormalize"]),
    ("import vitcore.plugins", False, ["import vitcore.plugins"]),
    ("from vitcore import plugins, hookimpl", False, ["from vitcore import plugins"]),
    ("from vitcore.testing import tiny_spec", False, ["from vitcore.testing import tiny_spec"]),
    ("from vitcore.testing import tiny_spec\nfrom vitcore import testing", True, []),
])
def test_the_import_check_names_what_it_refuses(tmp_path, source, test, expected, monkeypatch):
    folder = tmp_path / "plugins" / "demo" / ("tests" if test else "vitcore_demo")
    folder.mkdir(parents=True)
    (folder / "mod.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PLUGINS", tmp_path / "plugins")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = private_imports(folder / "mod.py")
    assert [line.split(": ", 1)[1] for line in found] == expected
    assert all(line.startswith(f"plugins/demo/{folder.name}/mod.py:") for line in found)


def test_importing_the_api_loads_neither_torch_nor_matplotlib():
    code = ("import sys, vitcore.api; "
            "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib', 'PIL', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves_and_is_listed():
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert api.PLUGIN_API_VERSION == vitcore.PLUGIN_API_VERSION
    assert set(dir(api)) >= set(api.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'DeviceNormalize'"):
        api.DeviceNormalize  # noqa: B018 - the engine's class is not public


def test_the_api_is_documented_in_the_plugin_guide():
    guide = (ROOT / "docs" / "PLUGINS.md").read_text(encoding="utf-8")
    section = guide[guide.index("## Public API"):]
    section = section[:section.index("\n## ", 1)]
    missing = [name for name in api.__all__ if f"`{name}" not in section]
    assert not missing, f"docs/PLUGINS.md 'Public API' does not list: {', '.join(missing)}"


def test_normalize_matches_the_engine():
    import torch

    from vitcore.engine.data import DeviceNormalize

    pre = api.Preprocessing(8, mean=(0.2, 0.4, 0.6), std=(0.1, 0.2, 0.3))
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    expected = DeviceNormalize(pre, torch.device("cpu"))(images)
    assert torch.equal(api.normalize(images, pre), expected)
    assert torch.allclose(expected[:, 0], (images[:, 0].float() / 255 - 0.2) / 0.1, atol=1e-5)
