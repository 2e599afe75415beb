"""The CLI shows every Python warning as one line, ``warning: <message>``, without Python's file:line echo."""

from __future__ import annotations

import re
import subprocess
import sys

from vitcore.testing import make_image_folder, run_cli, tiny_spec, write_spec
from vitcore.warning_format import format_warning, package_of

#: Python's default display: "/path/file.py:99: UserWarning: message".
PYTHON_DEFAULT = re.compile(r"\.py:\d+: \w*Warning")


def test_a_vitcore_warning_is_one_line_without_its_source(tmp_path):
    spec = tiny_spec(tmp_path)
    make_image_folder(tmp_path / "data")
    (tmp_path / "data" / "red" / "broken.png").write_bytes(b"not a picture")
    done = run_cli("validate", str(write_spec(tmp_path / "spec.json", spec)))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    warned = [line for line in lines if line.startswith("warning: skipping 1 unreadable image")]
    assert len(warned) == 1 and "broken.png" in warned[0], done.stderr
    assert not PYTHON_DEFAULT.search(done.stderr) and "warnings.warn" not in done.stderr


def test_a_librarys_warning_names_the_library_and_filters_still_apply():
    code = "import vitcore.cli, numpy; numpy.mean([])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["warning: Mean of empty slice [numpy]",
                                        "warning: invalid value encountered in scalar divide [numpy]"], done.stderr
    ignored = subprocess.run([sys.executable, "-W", "ignore::RuntimeWarning", "-c", code], capture_output=True,
                             text=True, timeout=120)
    assert ignored.returncode == 0 and ignored.stderr == ""


def test_the_format_keeps_the_message_on_one_line():
    assert format_warning(UserWarning("a\n  b   c"), UserWarning, "/x/site-packages/torch/nn/f.py") == \
        "warning: a b c [torch]"
    assert format_warning("data: 2 images", UserWarning, __file__.replace("tests", "vitcore")) == \
        "warning: data: 2 images"
    assert format_warning("", DeprecationWarning, "<string>") == "warning: DeprecationWarning"
    assert package_of("/venv/lib/python3.11/site-packages/six.py") == "six"
    assert package_of(subprocess.__file__) == "subprocess"
