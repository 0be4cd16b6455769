"""pytest plugin: ruleset regression suites (``*.sla-test.yaml``) as pytest items.

Registered through the ``pytest11`` entry point, so ``pytest rulesets/``
collects every suite file: one item per case, version and parameter row,
named ``case[version]`` or ``case[version-row values]``. A case's tags are
markers and keywords (``-m urgent``, ``-k urgent``); ``skip: reason`` skips
it. A failure shows the case's file and line, the ticket, expected beside
actual values and the rule trace; a suite that cannot be loaded is a
collection error listing each problem as ``file:line:column``.

``--sla-coverage`` prints rule coverage at the end of the run, also under
pytest-xdist (the branches a case took travel with its test report to the
controlling process); ``--sla-fail-under PCT`` fails the run under PCT
percent of branches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slaengine.errors import RulesetError, RulesetErrors
from slaengine.library import RulesetLibrary, load_directory
from slaengine.suite import (
    TEST_SUFFIX,
    CaseResult,
    CaseRun,
    Workspace,
    format_failure,
    load_suite,
    run_case,
)
from slaengine.testrunner import CoverageReport, coverage_report, format_coverage

_WORKSPACE = pytest.StashKey[Workspace]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Coverage options for the regression suites."""
    group = parser.getgroup("slaengine", "slaengine ruleset regression suites")
    group.addoption(
        "--sla-coverage",
        action="store_true",
        help="print rule coverage of the *.sla-test.yaml suites run",
    )
    group.addoption(
        "--sla-fail-under",
        type=float,
        metavar="PCT",
        default=None,
        help="fail the run when rule branch coverage is under PCT percent",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Coverage is gathered on the controlling process (not on xdist workers)."""
    wanted = config.getoption("sla_coverage") or config.getoption("sla_fail_under") is not None
    if wanted and not hasattr(config, "workerinput"):  # not an xdist worker
        config.pluginmanager.register(CoverageCollector(config), "slaengine-coverage")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Free the engines."""
    workspace = config.stash.get(_WORKSPACE, None)
    if workspace is not None:
        workspace.close()


def _workspace(config: pytest.Config) -> Workspace:
    """One engine per ruleset directory for the whole session."""
    workspace = config.stash.get(_WORKSPACE, None)
    if workspace is None:
        workspace = config.stash[_WORKSPACE] = Workspace()
    return workspace


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A ``*.sla-test.yaml`` file is a suite."""
    if file_path.name.endswith(TEST_SUFFIX):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    """One suite file; its items are the case runs."""

    def collect(self) -> Iterator[pytest.Item]:
        """Load and check the suite (problems become one collection error), yield its runs."""
        try:
            suite = load_suite(self.path, _workspace(self.config))
        except RulesetErrors as exc:
            raise self.CollectError(_listing(exc.errors)) from None
        except RulesetError as exc:  # malformed YAML
            raise self.CollectError(_listing([exc])) from None
        for run in suite.runs:
            for tag in run.tags:  # so that --strict-markers accepts them
                self.config.addinivalue_line("markers", f"{tag}: a slaengine suite tag")
            yield CaseItem.from_parent(self, name=run.id, run=run)


def _listing(errors: list[RulesetError]) -> str:
    return "\n".join(str(e) for e in errors) + f"\n{len(errors)} problem(s) in this suite"


class CaseFailed(Exception):
    """A case's expectations did not hold; carries the result for the report."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.run.id)
        self.result = result


class CaseItem(pytest.Item):
    """One case for one version (and one parameter row)."""

    def __init__(self, *, run: CaseRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.result: CaseResult | None = None
        for tag in run.tags:
            self.add_marker(tag)
        self.extra_keyword_matches.update(run.tags)
        if run.skip is not None:
            self.add_marker(pytest.mark.skip(reason=run.skip))
        self.user_properties += [("ruleset", run.ruleset.ref), ("case", f"{run.file}:{run.line}")]

    def runtest(self) -> None:
        """Run the case; a mismatch raises CaseFailed."""
        engine = _workspace(self.config).engine(self.run.library)
        self.result = run_case(self.run, engine)
        if self.result.outcome == "failed":
            raise CaseFailed(self.result)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        """The case report for a failed expectation; pytest's own for anything else."""
        if isinstance(excinfo.value, CaseFailed):
            return format_failure(excinfo.value.result)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the case is written (pytest shows it in failure headers)."""
        return self.path, self.run.line - 1, f"{self.run.suite}: {self.run.id}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the branches a case took to its report (plain data, so it crosses xdist)."""
    report = yield
    if call.when == "call" and isinstance(item, CaseItem) and item.result is not None:
        rs = item.run.ruleset
        report.sla_suite = item.run.suite
        report.sla_version = [str(item.run.library), rs.name, rs.version]
        report.sla_branches = sorted(list(b) for b in item.result.branches)
    return report


class CoverageCollector:
    """Gathers the branches from every case report and reports coverage at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.versions: set[tuple[str, str, str]] = set()
        self.hits: list[tuple[str, tuple[str, str, str, str]]] = []
        self.report: CoverageReport | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the branches of each case report."""
        branches = getattr(report, "sla_branches", None)
        if branches is None:
            return
        library, name, version = report.sla_version
        self.versions.add((library, name, version))
        self.hits += [(report.sla_suite, (b[0], b[1], b[2], b[3])) for b in branches]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Compute coverage; under --sla-fail-under, an otherwise green run fails."""
        libraries: dict[str, RulesetLibrary] = {}
        versions = []
        for library, name, version in sorted(self.versions):
            if library not in libraries:
                libraries[library] = load_directory(library)
            versions.append(libraries[library].get(name, version))
        self.report = coverage_report(versions, self.hits)
        threshold = self.config.getoption("sla_fail_under")
        if threshold is not None and self.report.percent < threshold and exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the coverage table (and why the run failed, if coverage made it fail)."""
        if self.report is None:
            return
        terminalreporter.section("slaengine rule coverage")
        if self.config.getoption("sla_coverage"):
            terminalreporter.write_line(format_coverage(self.report))
        else:
            terminalreporter.write_line(f"branch coverage {self.report.percent}%")
        threshold = self.config.getoption("sla_fail_under")
        if threshold is not None and self.report.percent < threshold:
            terminalreporter.write_line(
                f"FAIL branch coverage {self.report.percent}% is under "
                f"--sla-fail-under {threshold}%",
                red=True,
            )
