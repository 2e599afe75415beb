"""A small Hugging Face hub on a 127.0.0.1 port, for tests of pretrained downloads (no internet).

It answers what ``huggingface_hub.hf_hub_download`` asks (``HEAD``/``GET
/{repo_id}/resolve/{revision}/{filename}``) as the real hub does: ``X-Repo-Commit``, an ``ETag``
that is the file's SHA-256 for weight files (LFS on the hub) and its git blob SHA-1 for the others,
``Content-Length``, and the ``X-Error-Code`` headers huggingface_hub turns into
``RepositoryNotFoundError`` / ``EntryNotFoundError`` / ``RevisionNotFoundError``. Point
``HF_ENDPOINT`` at ``hub.endpoint`` in the process under test::

    with LoopbackHub({"org/tiny": {"config.json": b"{}", "model.safetensors": data}}) as hub:
        run_cli("run", spec, env={"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(cache)})
        assert ("GET", "/org/tiny/resolve/main/model.safetensors") in hub.requests
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping

#: Files the real hub stores in LFS (their ETag is the SHA-256 of the content).
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".npz", ".onnx", ".msgpack", ".h5")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def etag_of(filename: str, data: bytes) -> str:
    """The hash the hub names a file by: SHA-256 for LFS files, the git blob SHA-1 for the rest."""
    return hashlib.sha256(data).hexdigest() if filename.endswith(LFS_SUFFIXES) else git_blob_sha1(data)


class LoopbackHub:
    """``repos``: repo id -> {filename: bytes}. ``corrupt``: filenames served with one byte changed
    (their ETag still names the true content), to test hash checks. ``requests`` lists
    ``(method, path)`` in order."""

    def __init__(self, repos: Mapping[str, Mapping[str, bytes]], corrupt: set[str] | frozenset[str] = frozenset()):
        self.repos = {repo: dict(files) for repo, files in repos.items()}
        self.corrupt = set(corrupt)
        self.requests: list[tuple[str, str]] = []
        self.commits = {repo: hashlib.sha1(repr(sorted((n, etag_of(n, d)) for n, d in files.items())).encode())
                        .hexdigest() for repo, files in self.repos.items()}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "LoopbackHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve_this_process(self, monkeypatch: Any) -> None:
        """Point this test process at the hub, online (``HF_ENDPOINT`` set, ``HF_HUB_OFFLINE`` unset).

        huggingface_hub reads its environment once, when first imported: it refuses every request
        afterwards if ``HF_HUB_OFFLINE`` was set then (as vitcore's plugin suites set it for every test),
        and sends its own requests (the daily agent-harness registry of its user agent) to the
        ``HF_ENDPOINT`` of that moment, by default the internet. Its constants are brought in line
        with the environment, so nothing leaves 127.0.0.1. A child process needs only the variables."""
        import huggingface_hub.constants

        monkeypatch.setenv("HF_ENDPOINT", self.endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", self.endpoint)
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            self.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)

    def downloads(self) -> list[str]:
        """The repo files fetched with GET (their bodies), in order."""
        return [path for method, path in self.requests if method == "GET" and "/resolve/" in path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                path = self.path.split("?", 1)[0]
                hub.requests.append((self.command, path))
                if "/resolve/" not in path:
                    return self._error(404, "EntryNotFound")
                repo, rest = path[1:].split("/resolve/", 1)
                revision, _, filename = rest.partition("/")
                if repo not in hub.repos:
                    return self._error(401, "RepoNotFound")
                commit = hub.commits[repo]
                if revision not in ("main", commit):
                    return self._error(404, "RevisionNotFound")
                data = hub.repos[repo].get(filename)
                if data is None:
                    return self._error(404, "EntryNotFound", commit)
                etag = etag_of(filename, data)
                if filename in hub.corrupt:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, status: int, code: str, commit: str | None = None) -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                pass

        return Handler
