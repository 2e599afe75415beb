"""Safety: loopback by default, the token, nothing outside ROOT, read-only, bad uploads, broken run
folders, and a stop that leaves no child behind. Real servers, real requests, real signals."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image


def png_bytes(size=(40, 40), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(root.rglob("*"))}


TRAVERSALS = [
    "/files/../../../../etc/passwd",
    "/files/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/files/shapes-done/v1/../../../finished.json",
    "/files//etc/passwd",
    "/files/shapes-done/v1/checkpoints/best.pt",  # inside ROOT, but no picture
    "/files/shapes-done/v1/spec.json",
    "/api/runs/../v1",
    "/api/runs/..%2F..%2Ftmp/v1",
    "/api/runs/shapes-done/..",
    "/api/runs/shapes-done/v1%2F..%2F..%2F..",
    "/api/runs/%2e%2e/%2e%2e/v1/metrics",
    "/api/runs/nothing/v1",
    "/static/../app.py",
    "/static/..%2Fapp.py",
]


def test_nothing_outside_root_is_served(finished_dashboard):
    for path in TRAVERSALS:
        status, _headers, body = finished_dashboard.request(path)
        assert status == 404, f"{path}: {status} {body[:200]!r}"
    status, headers, body = finished_dashboard.request("/files/shapes-done/v1/plots/curves.png")
    assert status == 200 and headers["content-type"] == "image/png" and body.startswith(b"\x89PNG")
    assert headers["x-content-type-options"] == "nosniff" and "frame-ancestors 'none'" in headers[
        "content-security-policy"]


def test_a_loopback_dashboard_refuses_other_host_names(finished_dashboard):
    """A web page elsewhere cannot reach it by pointing a DNS name of its own at 127.0.0.1."""
    assert finished_dashboard.request("/api/runs", host="attacker.example")[0] == 400
    assert finished_dashboard.request("/api/runs", host="localhost")[0] == 200


def test_binds_loopback_by_default_and_warns_when_bound_elsewhere(tmp_path, start_dashboard):
    default = start_dashboard(tmp_path)
    listening = [c.laddr for c in psutil.Process(default.process.pid).net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN]
    assert [address.ip for address in listening] == ["127.0.0.1"]
    assert "Warning" not in default.printed
    default.stop()
    # Bound to every interface (only ever requested through loopback here), with a token.
    wide = start_dashboard(tmp_path, "--host", "0.0.0.0", "--token", "s3cret")
    assert "Warning: listening on 0.0.0.0, not 127.0.0.1" in wide.printed
    assert wide.request("/api/runs", headers={"Authorization": "Bearer s3cret"})[0] == 200
    wide.stop()
    from vitcore_dashboard.server import bind_warning

    assert "Give --token" in bind_warning("192.168.1.20", None)
    assert bind_warning("localhost", None) is None and bind_warning("::1", None) is None


def test_a_missing_root_or_a_busy_port_is_a_clear_error(tmp_path):
    import socket

    from vitcore.testing import run_cli

    missing = run_cli("dashboard", str(tmp_path / "nope"), "--port", "0")
    assert missing.returncode == 1 and "nope: no such folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = run_cli("dashboard", str(tmp_path), "--port", str(busy.getsockname()[1]))
    assert taken.returncode == 1 and "cannot listen on 127.0.0.1:" in taken.stderr and "choose another --port" in taken.stderr
    assert "Traceback" not in taken.stderr


def test_the_token_is_needed_on_every_request(finished_root, start_dashboard):
    dashboard = start_dashboard(finished_root, "--token", "s3cret")
    for path in ("/", "/api/runs", "/api/info", "/static/app.js", "/api/runs/shapes-done/v1/metrics",
                 "/files/shapes-done/v1/plots/curves.png"):
        status, _headers, body = dashboard.request(path)
        assert status == 401, path
        assert "needs its token" in json.loads(body)["error"]
        assert dashboard.request(path, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert dashboard.request(path + ("&" if "?" in path else "?") + "token=wrong")[0] == 401
    assert dashboard.request("/api/runs", headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert dashboard.request("/api/runs", headers={"X-Vitcore-Token": "s3cret"})[0] == 200
    status, headers, _body = dashboard.request("/?token=s3cret")
    assert status == 200 and "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    cookie = headers["set-cookie"].split(";")[0]
    assert dashboard.request("/files/shapes-done/v1/plots/curves.png", headers={"Cookie": cookie})[0] == 200
    assert dashboard.request("/api/runs", headers={"Cookie": "vitcore_dashboard_token=nope"})[0] == 401


def test_uploads_too_large_or_not_pictures_get_a_clear_4xx(finished_root, start_dashboard):
    dashboard = start_dashboard(finished_root, "--max-upload-mb", "0.05")
    upload = "/api/runs/shapes-done/v1/attention/upload"

    def post(data: bytes, name: str = "x.png", **headers):
        status, _h, body = dashboard.request(f"{upload}?filename={name}", method="POST", data=data, headers=headers)
        return status, json.loads(body)

    status, body = post(os.urandom(60_000))
    assert status == 413 and "larger than 51 kB" in body["error"]
    status, body = post(b"this is no picture at all")
    assert status == 400 and "not a picture vitcore can read" in body["error"] and "/tmp" not in body["error"]
    status, body = post(png_bytes()[:60], "cut.png")  # a PNG cut short: the header is there, the pixels not
    assert status == 400 and "the upload" in body["error"], body
    status, body = post(b"")
    assert status == 400 and "empty" in body["error"]
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000)).save(bomb, format="PNG")  # 64 Mpx that compress to a few kB
    status, body = post(bomb.getvalue(), "bomb.png")
    assert status == 400 and "pixels" in body["error"]
    status, body = post(png_bytes())
    assert status == 200 and body["width"] == 40 and body["upload"]
    picture = dashboard.json(f"/api/runs/shapes-done/v1/attention/map?upload={body['upload']}&layer=0&head=mean")
    assert picture["image"].startswith("data:image/png;base64,")
    assert dashboard.json("/api/runs/shapes-done/v1/attention/map?upload=nope", expect=400)["error"].startswith(
        "upload nope is not known")

    # Sent in chunks, without a Content-Length: cut off at the limit, not read to the end.
    host, port = dashboard.url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = (b"\0" * 16384 for _ in range(40))  # 640 kB
    connection.request("POST", upload, body=chunks, encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    assert response.status == 413 and "larger than" in json.loads(response.read())["error"]


def test_broken_run_folders_do_not_break_the_api(finished_root, tmp_path, start_dashboard):
    root = tmp_path / "runs"
    shutil.copytree(finished_root / "shapes-done", root / "good")
    (root / "good" / "v1" / "model_summary.json").unlink()  # an older run: described from its checkpoint
    (root / "torn" / "v1").mkdir(parents=True)
    (root / "torn" / "v1" / "summary.json").write_text('{"status": "run')
    (root / "torn" / "v1" / "metrics.jsonl").write_text('{"event": "train", "step": 1, "loss": 1.0}\n\x00\x01garbage\n{"ev')
    (root / "bare" / "v3").mkdir(parents=True)
    (root / "old" / "v1").mkdir(parents=True)
    (root / "old" / "v1" / "summary.json").write_text(json.dumps({"best_acc": 0.8}))
    (root / "old" / "v1" / "model_summary.json").write_text("[]")
    dashboard = start_dashboard(root)
    rows = {row["name"]: row for row in dashboard.json("/api/runs")["runs"]}
    assert set(rows) == {"good", "torn", "bare", "old"}
    assert rows["good"]["status"] == "completed" and not rows["good"]["problems"]
    assert rows["torn"]["status"] == "unknown" and rows["torn"]["problems"]
    assert "summary.json is missing" in rows["bare"]["problems"][0]
    torn = dashboard.json("/api/runs/torn/v1")
    assert "not valid JSON" in torn["summary"]["problem"]
    assert [r["step"] for r in dashboard.json("/api/runs/torn/v1/metrics")["records"]] == [1]
    assert dashboard.json("/api/runs/bare/v3/metrics")["records"] == []
    error = dashboard.json("/api/runs/old/v1/model", expect=409)["error"]
    assert "model_summary.json is not a table" in error and "no checkpoint" in error
    assert "no checkpoint yet" in dashboard.json("/api/runs/bare/v3/attention", expect=409)["error"]
    computed = dashboard.json("/api/runs/good/v1/model")
    assert computed["source"] == "computed from the checkpoint" and len(computed["blocks"]) == 2
    assert computed["geometry"]["tokens"] == 17
    assert dashboard.request("/")[0] == 200


def test_the_dashboard_never_writes_into_run_folders(finished_root, finished_dashboard):
    before = snapshot(finished_root)
    d = finished_dashboard
    d.json("/api/runs")
    d.json("/api/runs/shapes-done/v1")
    d.json("/api/runs/shapes-done/v1/metrics?after=3")
    d.json("/api/runs/shapes-done/v1/model")
    d.json("/api/runs/shapes-done/v1/attention")
    d.json("/api/runs/shapes-done/v1/attention/map?sample=1&layer=rollout&row=1&col=1")
    d.json("/api/runs/shapes-done/v1/attention/upload?filename=a.png", method="POST", data=png_bytes())
    d.request("/api/runs/shapes-done/v1/attention/samples/0.png")
    d.request("/files/shapes-done/v1/plots/curves.png")
    assert snapshot(finished_root) == before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_the_server_and_tensorboard(tmp_path, start_dashboard, free_port, sig):
    dashboard = start_dashboard(tmp_path, "--tensorboard", "--tensorboard-port", str(free_port()))
    process = psutil.Process(dashboard.process.pid)
    children = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not children:
        children = process.children(recursive=True)
        time.sleep(0.1)
    assert children, "TensorBoard was not started"
    assert any("tensorboard" in " ".join(c.cmdline()) for c in children)
    assert dashboard.json("/api/info")["tensorboard"].startswith("http://127.0.0.1:")
    output = dashboard.stop(sig)
    assert dashboard.process.returncode == 0, output
    assert f"Stopped ({signal.Signals(sig).name})" in output
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left behind: {[c.cmdline() for c in alive]}"


def test_tensorboard_dies_with_a_killed_dashboard(tmp_path, start_dashboard, free_port):
    """Even SIGKILL, which no handler sees: the child gets the parent-death signal (Linux)."""
    if not os.uname().sysname == "Linux":
        pytest.skip("the parent-death signal is Linux's")
    dashboard = start_dashboard(tmp_path, "--tensorboard", "--tensorboard-port", str(free_port()))
    process = psutil.Process(dashboard.process.pid)
    deadline = time.monotonic() + 60
    children = []
    while time.monotonic() < deadline and not children:
        children = process.children(recursive=True)
        time.sleep(0.1)
    assert children
    dashboard.stop(signal.SIGKILL)
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive
