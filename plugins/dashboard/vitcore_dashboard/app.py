"""The dashboard's web application (Starlette): the pages, the JSON API and the run pictures.

Read-only by construction: every handler reads files under ROOT and none opens one for writing.
Unknown runs, paths outside ROOT and traversal attempts all get the same 404.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vitcore_dashboard import __version__
from vitcore_dashboard.attention import AttentionExplorer, ExplorerError
from vitcore_dashboard.compare import spec_differences
from vitcore_dashboard.explorer import model_view
from vitcore_dashboard.metrics import DEFAULT_LIMIT, MetricsFollower
from vitcore_dashboard.runs import RunNotFound, RunStore

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_COOKIE = "vitcore_dashboard_token"
#: Uploads larger than this are refused (413) before they are read to the end.
DEFAULT_MAX_UPLOAD_BYTES = 8 * 1024 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
     b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
]


@dataclass
class Settings:
    root: Path
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    tensorboard_url: str | None = None
    allowed_hosts: tuple[str, ...] | None = None


# -- responses ---------------------------------------------------------------------------------

def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_response(data: Any, status: int = 200) -> Response:
    """JSON that browsers parse: NaN and infinities (a diverged run logs them) become null."""
    try:
        body = json.dumps(data, allow_nan=False, separators=(",", ":"), default=str)
    except ValueError:
        body = json.dumps(_finite(data), allow_nan=False, separators=(",", ":"), default=str)
    return Response(body, status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def not_found(_request: Request | None = None, _exc: Exception | None = None) -> Response:
    return error(404, "not found")


# -- the token and the headers -------------------------------------------------------------------

class Guard:
    """Every request needs the token when one is set (header, ``?token=`` or the cookie the first
    ``?token=`` visit sets); every answer gets headers that keep other sites out."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    def _presented(self, scope: Scope) -> tuple[str | None, bool]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        if "x-vitcore-token" in headers:
            return headers["x-vitcore-token"].strip(), False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            return None, False
        morsel = cookie.get(TOKEN_COOKIE)
        return (morsel.value if morsel else None), False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        set_cookie = False
        if self.token is not None:
            presented, from_query = self._presented(scope)
            if presented is None or not secrets.compare_digest(presented.encode(), self.token.encode()):
                response = error(401, "this dashboard needs its token: open the address `vitcore dashboard` "
                                      "printed (it ends in ?token=...), or send the header "
                                      "'Authorization: Bearer TOKEN'")
                await response(scope, receive, self._with_headers(send, False))
                return
            set_cookie = from_query
        await self.app(scope, receive, self._with_headers(send, set_cookie))

    def _with_headers(self, send: Send, set_cookie: bool) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if set_cookie and self.token is not None:
                    headers.append((b"set-cookie", f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; "
                                                   "SameSite=Strict".encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)
        return wrapped


# -- the handlers ----------------------------------------------------------------------------------

class Handlers:
    """The endpoints, over one RunStore, one MetricsFollower and one AttentionExplorer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = RunStore(settings.root)
        self.follower = MetricsFollower()
        self.explorer = AttentionExplorer()

    def _ref(self, request: Request):
        return self.store.ref(request.path_params["name"], request.path_params["version"])

    def index(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    def info(self, _request: Request) -> Response:
        return json_response({"root": str(self.store.root), "version": __version__,
                              "tensorboard": self.settings.tensorboard_url,
                              "max_upload_bytes": self.settings.max_upload_bytes,
                              "token_required": self.settings.token is not None})

    def runs(self, request: Request) -> Response:
        rows = self.store.rows(request.query_params.get("name"), request.query_params.get("tag"))
        return json_response({"root": str(self.store.root), "count": len(rows), "runs": rows})

    def run(self, request: Request) -> Response:
        return json_response(self.store.detail(self._ref(request)))

    def metrics(self, request: Request) -> Response:
        ref = self._ref(request)
        params = request.query_params
        try:
            after = int(params["after"]) if params.get("after") not in (None, "") else None
            limit = int(params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return error(400, "after and limit must be whole numbers, e.g. ?after=120")
        if limit < 1:
            return error(400, "limit must be at least 1")
        answer = self.follower.answer(ref.path / "metrics.jsonl", after, min(limit, DEFAULT_LIMIT))
        # The records go out as the file's own JSON text: no parsing and encoding of each poll.
        head = json.dumps({"run": ref.key, "after": after, **answer.meta()}, separators=(",", ":"))
        body = head[:-1].encode() + b',"records":' + answer.records_json + b"}"
        return Response(body, media_type="application/json", headers={"cache-control": "no-store"})

    def model(self, request: Request) -> Response:
        ref = self._ref(request)
        table, problem = self.store.cache.read(ref.path / "model_summary.json")
        source = "model_summary.json"
        if problem or not isinstance(table, dict):
            try:
                table = self._computed_summary(ref.path)
            except ExplorerError as exc:
                return error(409, f"{problem or 'model_summary.json is not a table'}, and the model cannot "
                                  f"be described from a checkpoint either: {exc}")
            source = "computed from the checkpoint"
        return json_response({"run": ref.key, "source": source,
                              **model_view(table, self.store.pictures(ref))})

    def _computed_summary(self, run_dir: Path) -> dict[str, Any]:
        from vitcore.api import summarize

        loaded = self.explorer.loaded(run_dir)
        with loaded.lock:
            return summarize(loaded.model, loaded.preprocessing.image_size)

    def attention_info(self, request: Request) -> Response:
        ref = self._ref(request)
        return json_response({"run": ref.key, **self.explorer.info(ref.path)})

    def attention_sample(self, request: Request) -> Response:
        png = self.explorer.sample_png(self._ref(request).path, int(request.path_params["index"]))
        return Response(png, media_type="image/png", headers={"cache-control": "no-cache"})

    def attention_map(self, request: Request) -> Response:
        params = request.query_params
        try:
            layer: int | str = params.get("layer", "rollout")
            layer = int(layer) if str(layer).lstrip("-").isdigit() else layer
            head: int | str = params.get("head", "mean")
            head = int(head) if str(head).lstrip("-").isdigit() else head
            sample = int(params["sample"]) if params.get("sample") not in (None, "") else None
            patch = None
            if params.get("row") not in (None, "") or params.get("col") not in (None, ""):
                patch = (int(params["row"]), int(params["col"]))
        except (ValueError, KeyError):
            return error(400, "sample, row and col are whole numbers (row and col together); layer is a "
                              "block number or rollout; head a head number or mean, max, min")
        answer = self.explorer.explain(self._ref(request).path, sample=sample, upload=params.get("upload"),
                                       layer=layer, head=head, patch=patch)
        return json_response(answer)

    async def attention_upload(self, request: Request) -> Response:
        ref = self._ref(request)
        limit = self.settings.max_upload_bytes
        shown = f"{limit / 1048576:.1f} MB" if limit >= 1048576 else f"{limit / 1024:.0f} kB"
        too_big = error(413, f"the upload is larger than {shown}, the dashboard's limit "
                             "(`vitcore dashboard --max-upload-mb`)")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return too_big
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                return too_big
        name = request.query_params.get("filename", "upload")
        answer = await run_in_threadpool(self.explorer.add_upload, ref.path, bytes(body), name)
        return json_response(answer)

    def compare(self, request: Request) -> Response:
        keys = [k for value in request.query_params.getlist("run") for k in value.split(",") if k.strip()]
        if len(keys) < 2:
            return error(400, "name at least two runs: /api/compare?run=NAME/v1&run=NAME/v2")
        refs = [self.store.ref_from_key(k) for k in keys]
        specs = []
        for ref in refs:
            spec, _problem = self.store.cache.read(ref.path / "spec.json")
            specs.append(spec if isinstance(spec, dict) else {})
        return json_response({"runs": [self.store.row(r) for r in refs],
                              "spec_differences": spec_differences(specs)})

    def picture(self, request: Request) -> Response:
        path = self.store.picture_path(request.path_params["path"])
        return FileResponse(path, headers={"cache-control": "no-cache"})


def create_app(settings: Settings) -> Starlette:
    """The dashboard for ``settings.root``; ``allowed_hosts`` guards a loopback server against DNS
    rebinding (a web page elsewhere reaching it under a name of its own)."""
    h = Handlers(settings)
    run = "/api/runs/{name:path}/{version}"
    routes = [
        Route("/", h.index),
        Route("/api/info", h.info),
        Route("/api/runs", h.runs),
        Route("/api/compare", h.compare),
        Route(run + "/metrics", h.metrics),
        Route(run + "/model", h.model),
        Route(run + "/attention", h.attention_info),
        Route(run + "/attention/samples/{index:int}.png", h.attention_sample),
        Route(run + "/attention/map", h.attention_map),
        Route(run + "/attention/upload", h.attention_upload, methods=["POST"]),
        Route(run, h.run),
        Route("/files/{path:path}", h.picture),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]

    async def bad_request(_request: Request, exc: Exception) -> Response:
        return error(getattr(exc, "status", 400), str(exc))

    async def vitcore_error(_request: Request, exc: Exception) -> Response:
        return error(400, str(exc))

    async def internal(_request: Request, exc: Exception) -> Response:
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    from vitcore.api import VitcoreError

    middleware = [Middleware(Guard, token=settings.token)]
    if settings.allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts)))
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: not_found, RunNotFound: not_found, ExplorerError: bad_request,
                            VitcoreError: vitcore_error, Exception: internal},
    )
