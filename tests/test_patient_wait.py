"""Ranks wait for a leader's long one-off job (the decoded cache, a generated data set) past the
process group's own timeout, and still fail cleanly when the leader's job fails. Two real
processes on gloo, as torchrun would start them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vitcore.engine import distributed

TIMEOUT_S = 2  # the default group's timeout in these tests; the leader's job takes twice as long

CHILD = """
import os, sys, time
from datetime import timedelta
from pathlib import Path
import torch
import torch.distributed as dist
from vitcore.engine import distributed

rank, folder, mode = int(os.environ["RANK"]), Path(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", timeout=timedelta(seconds=%(timeout)d))
info = distributed.DistInfo(rank=rank, world_size=2, local_rank=rank)
distributed.init_process_group(info, torch.device("cpu"))  # adds the patient group
marker = folder / "built"

def build():
    if rank == 0:
        time.sleep(%(timeout)d * 2)
        if mode == "fail":
            raise RuntimeError("the leader's build failed")
        marker.write_text("ok")
    return marker.read_text()  # the followers reuse what the leader wrote

try:
    if mode == "plain":  # a barrier on the default group, as before
        if rank != 0:
            dist.barrier()
        result = build()
        if rank == 0:
            dist.barrier()
    else:
        result = distributed.leader_first(info, build)
    (folder / f"rank{rank}").write_text(result)
except Exception as error:
    (folder / f"rank{rank}").write_text(f"error: {type(error).__name__}: {error}")
finally:
    distributed.destroy_process_group()
""" % {"timeout": TIMEOUT_S}


def _run(tmp_path: Path, mode: str) -> list[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), mode], stderr=subprocess.PIPE,
                         env={**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                              "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"})
        for rank in range(2)
    ]
    for child in children:
        child.wait(timeout=120)
    return [(tmp_path / f"rank{rank}").read_text() if (tmp_path / f"rank{rank}").exists()
            else children[rank].stderr.read().decode()[-2000:] for rank in range(2)]


def test_followers_wait_for_a_leader_job_longer_than_the_process_group_timeout(tmp_path):
    assert _run(tmp_path, "patient") == ["ok", "ok"]


def test_a_plain_barrier_would_have_timed_out_there(tmp_path):
    follower = _run(tmp_path, "plain")[1]
    assert follower.startswith("error"), "the test above would not show the patient wait: " + follower


def test_when_the_leader_job_fails_the_followers_fail_too_instead_of_hanging(tmp_path):
    leader, follower = _run(tmp_path, "fail")
    assert "the leader's build failed" in leader
    assert follower.startswith("error: FileNotFoundError"), follower


@pytest.mark.parametrize("per_node, leaders", [(False, [0]), (True, [0, 2])])
def test_the_leaders_are_rank_zero_or_each_nodes_local_rank_zero(per_node, leaders, monkeypatch):
    events = []
    monkeypatch.setattr(distributed, "patient_barrier", lambda info: events.append("wait"))
    first = []
    for rank in range(4):  # two nodes of two ranks
        info = distributed.DistInfo(rank=rank, world_size=4, local_rank=rank % 2)
        events.clear()
        distributed.leader_first(info, lambda: events.append("job"), per_node=per_node)
        if events == ["job", "wait"]:
            first.append(rank)
        else:
            assert events == ["wait", "job"]
    assert first == leaders
