"""docs/DASHBOARD.md documents every endpoint of the API, and only those."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[3] / "docs" / "DASHBOARD.md"


@pytest.mark.skipif(not DOCS.is_file(), reason="docs/ is not beside this plugin (installed alone)")
def test_every_api_route_is_documented(tmp_path):
    from starlette.routing import Route

    from vitcore_dashboard.app import Settings, create_app

    app = create_app(Settings(root=tmp_path))
    served = set()
    for route in app.routes:
        if isinstance(route, Route) and (route.path.startswith("/api/") or route.path.startswith("/files/")):
            path = route.path.replace("{name:path}", "{name}").replace("{index:int}", "{index}")
            path = path.replace("{path:path}", "{path}")
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                served.add(f"{method} {path}")
    documented = set(re.findall(r"^### `((?:GET|POST) /\S+)`$", DOCS.read_text(), re.M))
    assert documented == served
