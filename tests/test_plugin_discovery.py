"""Plugins are found through the ``slaengine`` entry-point group, as third parties install them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slaengine.hookspecs import hookimpl
from slaengine.plugins import PluginError, PluginHost, load_plugin_config
from slaengine.ticket import parse_ticket
from tests.conftest import ROOT

DIST = Path(__file__).parent / "plugin_dist"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example distribution pip-installed (built as a wheel) into its own target dir."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(DIST),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=tmp_path_factory.mktemp("build"),
    )
    return target


def slaengine(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "slaengine", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_installed_third_party_plugin_is_listed_with_version_and_hooks(installed):
    result = slaengine(installed, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in map(json.loads, result.stdout.splitlines())}
    example = plugins["strategic-customers"]
    assert example["distribution"] == "slaengine-example-plugin"
    assert example["version"] == "0.3.1"
    assert example["hooks"] == ["slaengine_configure", "slaengine_facts"]


def test_installed_plugin_is_called_and_configured(installed, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(installed))
    config = tmp_path / "plugins.yaml"
    config.write_text("plugins:\n  strategic-customers:\n    customers: [lotus-retail]\n")
    host = PluginHost(load_plugin_config(config))
    try:
        t = parse_ticket(
            {
                "id": "T",
                "customer": "lotus-retail",
                "severity": "general",
                "created_at": "2026-11-23T10:00:00+08:00",
            }
        )
        assert ("strategic-customers", {"strategic": True}) in host.call(
            "slaengine_facts", ticket=t
        )
    finally:
        host.close()


def test_a_plugin_can_be_disabled_in_the_config(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    host = PluginHost({"strategic-customers": {"enabled": False}})
    try:
        assert "strategic-customers" not in {i.name for i in host.describe()}
    finally:
        host.close()


class Boom:
    @hookimpl
    def slaengine_facts(self, ticket):
        raise RuntimeError("CRM unreachable")


class Slow:
    @hookimpl
    def slaengine_facts(self, ticket):
        import time

        time.sleep(2)
        return {"late": True}


class Good:
    @hookimpl
    def slaengine_facts(self, ticket):
        return {"vip": True}


def test_failing_and_slow_plugins_are_isolated_and_named():
    host = PluginHost(entry_points=False, timeout=0.3)
    try:
        host.register(Good(), "good")
        host.register(Boom(), "boom")
        host.register(Slow(), "slow")
        results = host.call("slaengine_facts", ticket=None)
        assert results == [("good", {"vip": True})]
        failures = {(f.plugin, f.kind) for f in host.failures}
        assert failures == {("boom", "error"), ("slow", "timeout")}
        assert "CRM unreachable" in next(f.error for f in host.failures if f.plugin == "boom")
    finally:
        host.close()


class Picky:
    @hookimpl
    def slaengine_configure(self, config):
        if "url" not in config:
            raise ValueError("url is required")


def test_a_plugin_refusing_its_configuration_is_named():
    host = PluginHost(entry_points=False)
    with pytest.raises(
        PluginError, match="plugin 'picky' refused its configuration: url is required"
    ):
        host.register(Picky(), "picky", {})
    host.close()


def test_bad_plugin_config_file_names_the_location(tmp_path):
    path = tmp_path / "plugins.yaml"
    path.write_text("plugins:\n  webhook: [1, 2]\n")
    with pytest.raises(Exception, match="plugins.yaml:2:3"):
        load_plugin_config(path)
