"""The ``slaengine`` command line: validate, rulesets, evaluate, explain, replay."""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from slaengine.errors import RulesetErrors, SlaEngineError

DEFAULT_RULESETS = "rulesets"

#: Subcommands that live beside the code they drive: "module:function", where
#: the function takes the argparse subparsers object and adds its commands.
COMMAND_MODULES = (
    "slaengine.serve:add_serve_parsers",
    "slaengine.replay:add_replay_parser",
    "slaengine.credits:add_credits_parser",
    "slaengine.lint:add_lint_parser",
    "slaengine.impact:add_diff_parser",
    "slaengine.testrunner:add_test_parser",
)


def read_records(source: str, stdin: TextIO | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, JSON value) for each record of a JSON array, a JSON object or JSONL.

    ``-`` reads standard input. A JSONL line that is not JSON yields a
    ValueError in place of the value, so one bad line does not stop the rest.
    """
    handle = (stdin or sys.stdin) if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    with handle:
        number, head = 0, ""
        for number, head in enumerate(handle, start=1):  # noqa: B007
            if head.strip():
                break
        if not head.strip():
            return
        if head.lstrip().startswith("["):
            yield from _whole(head + handle.read(), number, array=True)
            return
        try:
            yield number, json.loads(head)
        except json.JSONDecodeError:
            if head.lstrip().startswith("{"):  # one pretty-printed object
                yield from _whole(head + handle.read(), number, array=False)
                return
            yield number, ValueError("not valid JSON")
        for index, line in enumerate(handle, start=number + 1):
            if not line.strip():
                continue
            try:
                yield index, json.loads(line)
            except json.JSONDecodeError as exc:
                yield index, ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})")


def _whole(text: str, first_line: int, array: bool) -> Iterator[tuple[int, Any]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        yield (
            first_line + exc.lineno - 1,
            ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})"),
        )
        return
    if array and isinstance(value, list):
        for i, record in enumerate(value):
            yield i + 1, record  # position in the array
    else:
        yield first_line, value


def _engine(args: argparse.Namespace) -> Any:
    from slaengine.engine import Engine

    return Engine.from_directory(args.rulesets)


def _print_ruleset_errors(exc: RulesetErrors, out: TextIO) -> None:
    for error in exc.errors:
        print(str(error), file=out)
    print(f"{len(exc.errors)} error(s)", file=out)


def cmd_validate(args: argparse.Namespace) -> int:
    from slaengine.library import load_directory, load_ruleset_file

    status = 0
    for target in args.paths or [DEFAULT_RULESETS]:
        path = Path(target)
        try:
            if path.is_dir():
                library = load_directory(path)
                count = len(library.all())
                print(
                    f"{path}: {count} ruleset version(s), {len(library.contracts)} contract(s) OK"
                )
            else:
                rs = load_ruleset_file(path)
                print(f"{path}: {rs.ref} OK")
        except RulesetErrors as exc:
            _print_ruleset_errors(exc, sys.stdout)
            status = 1
    return status


def cmd_rulesets(args: argparse.Namespace) -> int:
    engine = _engine(args)
    infos = engine.rulesets()
    if args.json:
        for info in infos:
            print(info.model_dump_json())
        return 0
    rows = [("NAME", "VERSION", "EFFECTIVE FROM", "REVISION", "RULES", "SOURCE")]
    rows += [
        (i.name, i.version, i.effective_from.isoformat(), i.revision, str(i.rules), i.source)
        for i in infos
    ]
    _table(rows)
    return 0


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


#: Tickets decided together by ``slaengine evaluate`` (one ``evaluate_many`` call).
EVALUATE_CHUNK = 1000


def cmd_evaluate(args: argparse.Namespace) -> int:
    engine = _engine(args)
    failures = 0
    for source in args.inputs or ["-"]:
        records = read_records(source)
        while chunk := list(itertools.islice(records, EVALUATE_CHUNK)):
            for (line, record), outcome in zip(chunk, _decide(engine, chunk, args), strict=True):
                if isinstance(outcome, Exception):
                    failures += 1
                    ident = record.get("id") if isinstance(record, dict) else None
                    problem = {
                        "input": f"{source}:{line}",
                        "ticket_id": ident,
                        "error": str(outcome),
                    }
                    print(json.dumps(problem, ensure_ascii=False), file=sys.stderr)
                else:
                    print(outcome.model_dump_json())
    if failures:
        print(f"{failures} ticket(s) failed", file=sys.stderr)
    return 1 if failures else 0


def _decide(engine: Any, chunk: list[tuple[int, Any]], args: argparse.Namespace) -> list[Any]:
    """Each record's decision, or the error that names what is wrong with it.

    Records are decided together (``evaluate_many``, about twice as fast)
    unless a version is forced or the chunk has a bad record: then one by
    one, so that every bad line is reported and the others still decided.
    """
    if args.ruleset is None and args.version is None:
        try:
            return engine.evaluate_many([record for _, record in chunk])  # type: ignore[no-any-return]
        except (SlaEngineError, ValueError, TypeError):
            pass
    outcomes: list[Any] = []
    for _, record in chunk:
        try:
            if isinstance(record, ValueError):
                raise record
            outcomes.append(engine.evaluate(record, ruleset=args.ruleset, version=args.version))
        except (SlaEngineError, ValueError) as exc:
            outcomes.append(exc)
    return outcomes


def cmd_explain(args: argparse.Namespace) -> int:
    engine = _engine(args)
    status = 0
    for line, record in read_records(args.input):
        try:
            if isinstance(record, ValueError):
                raise record
            explanation = engine.explain(record)
        except (SlaEngineError, ValueError) as exc:
            print(f"{args.input}:{line}: {exc}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(explanation.model_dump_json())
            continue
        d = explanation.decision
        print(f"ticket {explanation.ticket_id}: {explanation.ruleset} ({explanation.source})")
        print(f"  fields read: {json.dumps(explanation.values, ensure_ascii=False, default=str)}")
        current = None
        for trace in explanation.rules:
            if trace.table != current:
                current = trace.table
                print(f"  table {current}:")
            mark = "APPLIED" if trace.applied else ("matched" if trace.matched else "no")
            why = f"  ({trace.failed})" if trace.failed else ""
            print(f"    line {trace.line}: {trace.rule}: {mark}{why}")
        if d is None:
            print(f"  no decision: {explanation.error}")
            status = 1
            continue
        print(f"  decision: priority {d.priority}, calendar {d.calendar}, plan {d.escalation_plan}")
        for metric, target in d.targets.items():
            print(f"    {metric}: {target.target} -> due {target.due_at.isoformat()}")
    return status


def cmd_plugins(args: argparse.Namespace) -> int:
    from slaengine.plugins import PluginHost, load_plugin_config

    host = PluginHost(load_plugin_config(args.config))
    infos = host.describe()
    host.close()
    if args.json:
        for info in infos:
            print(info.model_dump_json())
        return 0
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "HOOKS")]
    rows += [(i.name, i.distribution or "-", i.version or "-", ", ".join(i.hooks)) for i in infos]
    _table(rows)
    return 0


def _default_plugin_config() -> str | None:
    path = Path(DEFAULT_RULESETS) / "plugins.yaml"
    return str(path) if path.exists() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slaengine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check ruleset files or directories; exit 1 on errors")
    p.add_argument("paths", nargs="*", help=f"files or directories (default: {DEFAULT_RULESETS})")
    p.set_defaults(func=cmd_validate)

    def with_rulesets(p: argparse.ArgumentParser) -> None:
        p.add_argument("--rulesets", default=DEFAULT_RULESETS, help="ruleset directory")

    p = sub.add_parser("rulesets", help="list loaded ruleset versions")
    with_rulesets(p)
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.set_defaults(func=cmd_rulesets)

    p = sub.add_parser("evaluate", help="decide tickets (JSON, JSON array or JSONL) -> JSONL")
    with_rulesets(p)
    p.add_argument("inputs", nargs="*", help="ticket files; '-' or none reads stdin")
    p.add_argument("--ruleset", help="judge every ticket by this ruleset (not by contract)")
    p.add_argument("--version", help="with --ruleset: this version (not the one in force)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("explain", help="show every rule for a ticket: matched or not, and why")
    with_rulesets(p)
    p.add_argument("input", help="a ticket file; '-' reads stdin")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("plugins", help="list loaded plugins, their versions and hooks")
    p.add_argument("--config", default=_default_plugin_config(), help="plugin settings YAML")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    for spec in COMMAND_MODULES:
        module_name, _, function = spec.partition(":")
        getattr(importlib.import_module(module_name), function)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slaengine`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RulesetErrors as exc:
        _print_ruleset_errors(exc, sys.stderr)
        return 2
    except SlaEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
