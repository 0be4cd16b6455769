"""Shared fixtures: the shipped rulesets and a way to write small rulesets."""

from __future__ import annotations

import http.client
import importlib.util
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from slaengine.engine import Engine
from tests.postgres import database_url, postgres  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
RULESETS = ROOT / "rulesets"


def load_bench(name: str) -> ModuleType:
    """A script of ``bench/`` imported as a module (benchmarks are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


MINIMAL = """\
name: tiny
version: 1.0.0
effective_from: 2026-01-01
timezone: Asia/Shanghai
vocabularies:
  severity: [urgent, general]
metrics:
  resolution: {stop: [resolved]}
tables:
  - name: targets
    rules:
      - name: urgent
        when: {severity: urgent}
        then: {priority: P1, calendar: always, targets: {resolution: 4h}}
      - name: general
        when: {severity: general}
        then: {priority: P3, calendar: always, targets: {resolution: 2d}}
"""


@pytest.fixture(scope="session")
def shipped() -> Iterator[Engine]:
    """An engine over the repository's shipped rulesets."""
    with Engine.from_directory(RULESETS) as engine:
        yield engine


@pytest.fixture
def write(tmp_path: Path):
    """write("dir/file.yaml", text) -> Path, with the text dedented."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write


@contextmanager
def serving(data: Path, rulesets: Path, *options: str) -> Iterator[tuple[int, dict[str, str]]]:
    """A real ``slaengine serve`` on a free port (stopped at the end): (port, auth headers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "slaengine", "serve", "--data", str(data), "--port", str(port)]
    cmd += ["--rulesets", str(rulesets), *options]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            assert server.poll() is None and time.time() < deadline, "serve did not start"
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/readyz")
                if probe.getresponse().status == 200 and (data / "token").exists():
                    break
            except OSError:
                time.sleep(0.2)
        yield port, {"Authorization": f"Bearer {(data / 'token').read_text().strip()}"}
    finally:
        server.terminate()
        server.wait(20)
