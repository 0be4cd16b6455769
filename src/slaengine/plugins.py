"""The plugin host: discovers, configures and calls plugins, isolating their failures.

Plugins are found through the ``slaengine`` entry-point group. An entry
point names a module or a class (instantiated with no arguments); either is
registered with pluggy under the entry point's name. A plugin configuration
file (YAML) enables, disables and configures them::

    plugins:
      webhook:
        url: https://hooks.example.com/sla
        secret_env: SLA_WEBHOOK_SECRET
      smtp:
        enabled: false

Calls go through :meth:`PluginHost.call` and :meth:`PluginHost.first`,
which run each implementation on its own with a timeout: one that raises or
hangs is recorded as a :class:`PluginFailure` naming the plugin, and the
others still run.
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pluggy
from pydantic import BaseModel, ConfigDict

from slaengine import hookspecs
from slaengine.errors import SlaEngineError
from slaengine.yamlsource import read_yaml_file

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
#: Delivery hooks retry on their own (with backoff) before giving up, so they
#: get longer than observation hooks.
DELIVERY_TIMEOUT = 120.0
DELIVERY_HOOKS = ("slaengine_escalate", "slaengine_route")
#: The escalation plugins in call order, each with the action types it takes (None: all).
Escalators = tuple[tuple[str, frozenset[str] | None], ...]


class PluginError(SlaEngineError):
    """A plugin could not be loaded or configured; the message names it."""


class PluginFailure(BaseModel):
    """One plugin call that raised or timed out."""

    model_config = ConfigDict(frozen=True)

    plugin: str
    hook: str
    kind: str  # "error" or "timeout"
    error: str


class PluginInfo(BaseModel):
    """A loaded plugin, as ``slaengine plugins`` lists it."""

    model_config = ConfigDict(frozen=True)

    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]


def load_plugin_config(path: str | Path | None) -> dict[str, Any]:
    """The ``plugins:`` mapping of a YAML file (empty when ``path`` is None)."""
    if path is None:
        return {}
    located = read_yaml_file(Path(path))
    data = located.data
    if not isinstance(data, dict) or set(data) - {"plugins"}:
        raise located.error((), "a plugin config file holds one key, 'plugins'")
    plugins = data.get("plugins") or {}
    if not isinstance(plugins, dict):
        raise located.error(("plugins",), "'plugins' maps plugin names to their settings")
    for name, settings in plugins.items():
        if not isinstance(settings, dict):
            raise located.error(("plugins", name), "a plugin's settings are a mapping")
    return plugins


class PluginHost:
    """Loaded plugins and isolated calls into them."""

    def __init__(
        self,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        entry_points: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        delivery_timeout: float = DELIVERY_TIMEOUT,
    ) -> None:
        self.config = dict(config or {})
        self.timeout = timeout
        self.delivery_timeout = delivery_timeout
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._dists: dict[str, importlib.metadata.Distribution | None] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="slaengine-plugin")
        self._escalators: Escalators | None = None
        if entry_points:
            self.load_entry_points()

    def load_entry_points(self) -> None:
        """Register every enabled plugin of the ``slaengine`` entry-point group."""
        for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
            section = dict(self.config.get(ep.name, {}))
            if section.pop("enabled", True) is False or self.pm.has_plugin(ep.name):
                continue
            try:
                obj = ep.load()
                plugin = obj() if isinstance(obj, type) else obj
            except Exception as exc:
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
            self.register(plugin, ep.name, section, dist=ep.dist)

    def register(
        self,
        plugin: object,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        dist: importlib.metadata.Distribution | None = None,
    ) -> None:
        """Register ``plugin`` under ``name`` and hand it its configuration."""
        self.pm.register(plugin, name)
        self._dists[name] = dist
        self._escalators = None
        configure = getattr(plugin, "slaengine_configure", None)
        if configure is not None:
            try:
                configure(config=dict(config or {}))
            except Exception as exc:
                self.pm.unregister(name=name)
                raise PluginError(f"plugin {name!r} refused its configuration: {exc}") from exc

    def close(self) -> None:
        """Stop the worker threads (calls still running are abandoned)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        # pluggy's own call order: last registered first, tryfirst/trylast honoured.
        return list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))

    def _call_one(
        self,
        impl: pluggy.HookImpl,
        hook: str,
        kwargs: dict[str, Any],
        reraise: tuple[type[BaseException], ...] = (),
    ) -> Any:
        args = {name: kwargs[name] for name in impl.argnames}
        future = self._pool.submit(impl.function, **args)
        timeout = self._timeout(hook)
        try:
            return future.result(timeout=timeout)
        except reraise:
            raise
        except concurrent.futures.TimeoutError:
            self._fail(impl.plugin_name, hook, "timeout", f"no answer within {timeout:g} s")
        except Exception as exc:
            self._fail(impl.plugin_name, hook, "error", f"{type(exc).__name__}: {exc}")
        return _FAILED

    def _timeout(self, hook: str) -> float:
        return self.delivery_timeout if hook in DELIVERY_HOOKS else self.timeout

    def _fail(self, plugin: str, hook: str, kind: str, error: str) -> None:
        failure = PluginFailure(plugin=plugin, hook=hook, kind=kind, error=error)
        self.failures.append(failure)
        log.warning("plugin %s failed in %s (%s): %s", plugin, hook, kind, error)

    def call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation; (plugin name, result) for each that returned non-None."""
        results = []
        for impl in self._impls(hook):
            result = self._call_one(impl, hook, kwargs)
            if result is not _FAILED and result is not None:
                results.append((impl.plugin_name, result))
        return results

    def implementations(self, hook: str) -> list[str]:
        """Names of the plugins implementing ``hook``, in call order."""
        return [impl.plugin_name for impl in self._impls(hook)]

    def escalators(self) -> Escalators:
        """The plugins implementing ``slaengine_escalate``, in call order, each with the
        action types it takes (``slaengine_escalation_actions``; None: every type).

        Asked once per registration, not per planning: the answer depends on a
        plugin's configuration, which is handed over at registration. A plugin
        whose answer fails (or is not a collection of names) is recorded as
        failed and owed every action, as one without the hook.
        """
        if self._escalators is None:
            answers = {
                impl.plugin_name: self._call_one(impl, "slaengine_escalation_actions", {})
                for impl in self._impls("slaengine_escalation_actions")
            }
            escalators = []
            for name in self.implementations("slaengine_escalate"):
                answer = answers.get(name)
                takes: frozenset[str] | None = None
                if isinstance(answer, Collection) and not isinstance(answer, str | bytes):
                    takes = frozenset(str(kind) for kind in answer)
                elif answer is not None and answer is not _FAILED:
                    self._fail(
                        name,
                        "slaengine_escalation_actions",
                        "error",
                        f"answered {answer!r}, not a collection of action types",
                    )
                escalators.append((name, takes))
            self._escalators = tuple(escalators)
        return self._escalators

    def call_plugin(self, plugin: str, hook: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation; its exception (or a TimeoutError) propagates."""
        for impl in self._impls(hook):
            if impl.plugin_name == plugin:
                args = {name: kwargs[name] for name in impl.argnames}
                future = self._pool.submit(impl.function, **args)
                return future.result(timeout=self._timeout(hook))
        raise PluginError(f"plugin {plugin!r} does not implement {hook}")

    def first(
        self, hook: str, *, reraise: tuple[type[BaseException], ...] = (), **kwargs: Any
    ) -> Any:
        """The first non-None result, in call order (failures are recorded and skipped).

        Exceptions of the ``reraise`` types are the plugin's answer rather than its
        failure (an intake adapter's TicketError): they propagate to the caller.
        """
        for impl in self._impls(hook):
            result = self._call_one(impl, hook, kwargs, reraise)
            if result is not _FAILED and result is not None:
                return result
        return None

    def describe(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution, version and hooks."""
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())
            dist = self._dists.get(name)
            infos.append(
                PluginInfo(
                    name=name,
                    distribution=dist.metadata["Name"] if dist else None,
                    version=dist.version if dist else None,
                    hooks=hooks,
                )
            )
        return sorted(infos, key=lambda i: i.name)


_FAILED = object()
