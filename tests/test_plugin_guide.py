"""docs/PLUGINS.md cannot rot: its tutorial runs block by block in a fresh virtual environment, and
its reference names every hook, component method, context field and test-kit function."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from vitcore import components, hookspecs, testing

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "PLUGINS.md"
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
#: Languages whose blocks must be exercised (written to a file or run).
CODE = {"python", "toml", "json", "bash", "sh", "shell", "console"}


@dataclass
class Block:
    language: str
    flags: set[str]
    options: dict[str, str]
    body: str
    line: int

    @property
    def where(self) -> str:
        return f"docs/PLUGINS.md:{self.line} ({self.language} block)"


def read_blocks() -> list[Block]:
    text = GUIDE.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        language, *words = match["info"].split() or [""]
        blocks.append(Block(language, {w for w in words if "=" not in w},
                            dict(w.split("=", 1) for w in words if "=" in w), match["body"],
                            text.count("\n", 0, match.start()) + 1))
    return blocks


def test_every_code_block_is_exercised():
    blocks = read_blocks()
    assert len(blocks) > 10
    for previous, block in zip([None, *blocks], blocks, strict=False):
        if block.language in CODE:
            assert "file" in block.options or "run" in block.flags, f"{block.where}: mark it file=PATH or run"
        if "output" in block.flags:
            assert previous is not None and "run" in previous.flags, f"{block.where}: no run block before it"


def test_the_reference_names_every_hook_method_context_field_and_kit_function():
    text = GUIDE.read_text(encoding="utf-8")
    names = {n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "vitcore_spec")}
    names |= {"name", "description", "Options", "needs_model", "every_epoch", "VitcoreError", "PLUGIN_API_VERSION",
              "VITCORE_PLUGIN_API"}
    for base, _hook in components.KINDS.values():
        names |= {base.__name__, *(n for n, v in vars(base).items() if inspect.isfunction(v) and not n.startswith("_"))}
    contexts = (components.DataContext, components.DataSplits, components.ModelContext, components.Preprocessing,
                components.AugmentationContext, components.SinkContext, components.VisualizerContext,
                components.ExportContext, components.ViTView)
    for context in contexts:
        names |= {context.__name__, *(f.name for f in dataclasses.fields(context))}
    names |= set(testing.__all__) - {"COLOURS"}
    assert len(names) > 60
    missing = sorted(n for n in names if f"`{n}" not in text)
    assert not missing, f"docs/PLUGINS.md does not describe: {', '.join(missing)}"


def layered_venv(folder: Path) -> dict[str, str]:
    """A new virtual environment that also sees this one's packages: `pip install -e` installs into
    it, as for a user, and leaves the environment running the tests untouched."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    parents = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    Path(purelib, "_parent_environment.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
    script = folder / "bin" / "vitcore"  # what pip writes for vitcore's console script
    script.write_text(f"#!{python}\nfrom vitcore.cli import main\n\nmain()\n")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(folder), "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> str:
    if block.language == "python":
        command = ["python", "-c", block.body]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.body]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    expected = int(block.options.get("exit", "0"))
    output = done.stdout + done.stderr
    assert done.returncode == expected, f"{block.where}: exit code {done.returncode}, not {expected}:\n{output}"
    return output


def test_the_tutorial_runs_as_written(tmp_path):
    env = layered_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    output = None
    for block in read_blocks():
        if "file" in block.options:
            path = work / block.options["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.body, encoding="utf-8")
        elif "run" in block.flags:
            output = run_block(block, work, env)
        elif "output" in block.flags:
            assert output is not None
            for line in filter(None, (line.strip() for line in block.body.splitlines())):
                assert line in output, f"{block.where}: {line!r} is not in the output of the block before:\n{output}"
    assert (work / "runs" / "stripes" / "v1" / "exports" / "model.safetensors").is_file()


def _section(title: str) -> str:
    """The guide's text under the heading ``title``, up to the next heading."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(title)}\n(?P<body>.*?)(?=^#)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/PLUGINS.md has no section {title!r}"
    return match["body"]


def _table_rows(section: str) -> dict[str, list[str]]:
    """A markdown table's rows by the first backticked name of their first cell."""
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.match(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if name:
            rows[name.group(1)] = cells
    return rows


def _constructor(cls: type) -> str:
    """``Name(a, b=1, c=Path.cwd())``: the call that builds ``cls``, with its real defaults."""
    parts = []
    for parameter in inspect.signature(cls).parameters.values():
        default = parameter.default
        factory = next((f.default_factory for f in dataclasses.fields(cls) if f.name == parameter.name),
                       dataclasses.MISSING) if dataclasses.is_dataclass(cls) else dataclasses.MISSING
        if factory is not dataclasses.MISSING:
            default = "Path.cwd()" if factory == Path.cwd else repr(factory())
        elif default is inspect.Parameter.empty:
            parts.append(parameter.name)
            continue
        else:
            default = f'"{default}"' if isinstance(default, str) else repr(default)
        parts.append(f"{parameter.name}={default}")
    return f"{cls.__name__}({', '.join(parts)})"


def test_the_constructors_shown_are_the_real_ones_with_their_defaults():
    rows = _table_rows(_section("Building contexts and `Preprocessing` yourself"))
    classes = (components.DataContext, components.DataSplits, components.ModelContext, components.Preprocessing,
               components.AugmentationContext, components.SinkContext, components.VisualizerContext,
               components.ExportContext, components.PreflightContext, components.EpochEnd, components.RunEnd,
               components.StopRun)
    assert sorted(rows) == sorted(cls.__name__ for cls in classes)
    for cls in classes:
        assert f"`{_constructor(cls)}`" in rows[cls.__name__][1], f"docs/PLUGINS.md: write `{_constructor(cls)}`"


def _raises_not_implemented(method) -> bool:
    """Whether a bound method of a bare base-class instance is left for the plugin to write."""
    try:
        method(*[None] * len(inspect.signature(method).parameters))
    except NotImplementedError:
        return True
    return False


def test_what_a_plugin_must_write_and_what_the_bases_already_do_is_true():
    rows = _table_rows(_section("What you must write, and what the base classes already do"))
    bases = [components.Component, *(base for base, _hook in components.KINDS.values())]
    assert sorted(rows) == sorted(base.__name__ for base in bases)
    for base in bases:
        instance = base()
        methods = {name: getattr(instance, name) for name, value in vars(base).items()
                   if inspect.isfunction(value) and not name.startswith("_")}
        required = {name for name, method in methods.items() if _raises_not_implemented(method)}
        named = lambda cell: set(re.findall(r"`(\w+)`", cell)) & set(methods)  # noqa: E731
        _, must, given = rows[base.__name__]
        assert named(must) == required, f"{base.__name__}: must write {sorted(required)}"
        assert named(given) == set(methods) - required, f"{base.__name__}: has {sorted(set(methods) - required)}"


def test_the_tutorial_pins_and_types_its_hook_as_the_scaffold_does():
    from vitcore import PLUGIN_API_VERSION
    from vitcore.scaffold import INIT, requirement

    init = next(b for b in read_blocks() if b.options.get("file") == "vitcore-stripes/vitcore_stripes/__init__.py")
    assert f'VITCORE_PLUGIN_API = "{requirement()}"' in init.body
    assert requirement().startswith(f">={PLUGIN_API_VERSION},")
    for line in ("from vitcore.api import Register", "(register: Register) -> None:"):
        assert line in INIT and line in init.body, line
