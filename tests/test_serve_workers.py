"""``serve --workers 2``: what one process is asked reaches the other."""

from __future__ import annotations

import http.client
import json
import shutil
import time

import pytest

from tests.conftest import RULESETS, serving
from tests.test_api import TICKET


@pytest.fixture
def two_workers(tmp_path):
    """(port, headers, rulesets dir) of a running ``serve --workers 2``."""
    rulesets = tmp_path / "rulesets"
    shutil.copytree(RULESETS, rulesets)
    with serving(tmp_path / "data", rulesets, "--workers", "2", "--no-scheduler") as (port, auth):
        yield port, auth, rulesets


def first_response_targets(port: int, headers: dict, connections: int = 8) -> set[str]:
    """The first-response target each of several new connections is answered with.

    Each connection is taken by one of the worker processes, so several of
    them reach both.
    """
    seen = set()
    for _ in range(connections):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/v1/evaluate", json.dumps(TICKET), headers)
        seen.add(json.loads(conn.getresponse().read())["targets"]["first_response"]["target"])
        conn.close()
    return seen


def test_a_reload_one_worker_accepts_is_in_force_in_every_worker(two_workers):
    port, headers, rulesets = two_workers
    assert first_response_targets(port, headers) == {"1h"}
    path = rulesets / "standard-support" / "2.0.0.yaml"
    path.write_text(path.read_text().replace("first_response: 1h,", "first_response: 45m,"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/rulesets/reload", headers=headers)
    assert conn.getresponse().status == 200
    deadline = time.time() + 10
    while (seen := first_response_targets(port, headers)) != {"45m"}:
        assert time.time() < deadline, f"still answered with {seen} after 10 s"
        time.sleep(0.5)
