"""The HTTP ingestion benchmark itself (slow): a short open-loop run against a real server.

The figure in issue 7 comes from bench/bench_http.py; this checks that its
open-loop load really is offered at the rate asked, that latencies are
measured, and that every event the server acknowledged is in the store.
"""

from __future__ import annotations

import argparse

import pytest

from tests.conftest import load_bench

pytestmark = pytest.mark.slow


def test_an_open_loop_run_offers_its_rate_and_every_acknowledged_event_is_stored():
    bench = load_bench("bench_http")
    args = argparse.Namespace(
        seconds=6, warmup=1, clients=2, open=20, batch=1, rate=100, connections=4, retries=0.05
    )
    args.receiver_port = bench.start_receiver()  # escalations planned for the webhook
    result = bench.run_once(args, None, [])
    assert result.errors == 0 and result.unstored == 0
    assert 80 <= result.events_per_s <= 110  # offered 100/s, answered as they came
    assert 0 < result.p50_ms <= result.p99_ms
