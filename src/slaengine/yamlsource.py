"""YAML reading that remembers where every key and value came from.

Rulesets and contracts are read with PyYAML's safe composer (no object tags,
nothing executed) and built into plain Python data beside a table of
locations, so every later error can name ``file:line:column``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slaengine.errors import RulesetError

#: Files larger than this are refused before parsing.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Anchors and aliases may repeat nodes; past this many built nodes we stop
#: (guards against "billion laughs" documents).
MAX_NODES = 500_000

Path_ = tuple[str | int, ...]

_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
# libyaml's parser when PyYAML was built with it (about 10x faster), else Python's.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def format_path(path: Path_) -> str:
    """``("rules", 3, "then")`` -> ``rules[3].then``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Located:
    """Data read from a YAML document, with the line/column of each path."""

    data: Any
    file: str
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_) -> tuple[int | None, int | None]:
        """Line and column (1-based) of ``path``, or of its nearest known parent."""
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (None, None))

    def error(self, path: Path_, message: str) -> RulesetError:
        """A RulesetError located at ``path``."""
        line, column = self.where(path)
        return RulesetError(
            message, file=self.file, line=line, column=column, path=format_path(path)
        )


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[Path_, tuple[int, int]] = {}
        self.count = 0
        self.loader = yaml.SafeLoader("")

    def _fail(self, node: yaml.Node, message: str, path: Path_) -> RulesetError:
        mark = node.start_mark
        return RulesetError(
            message,
            file=self.file,
            line=mark.line + 1,
            column=mark.column + 1,
            path=format_path(path),
        )

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(node, f"document expands to more than {MAX_NODES} nodes", path)
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            raise self._fail(node, f"not allowed: the YAML tag {node.tag!r}", path)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node, path)
                if isinstance(key, (dict, list)):
                    raise self._fail(key_node, "a mapping key must be a plain value", path)
                if key in result:
                    raise self._fail(key_node, f"duplicate key {key!r}", (*path, key))
                child = (*path, key)
                self.marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self._fail(node, "a mapping key must be a plain value", path)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise self._fail(node, f"not allowed: {exc.problem}", path) from None


def read_yaml(text: str, file: str = "<string>") -> Located:
    """Parse one YAML document into data plus locations; YAML errors become RulesetError."""
    try:
        node = yaml.compose(text, Loader=_SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise RulesetError(
            f"malformed YAML: {exc.problem or exc.context}", file=file, line=line, column=column
        ) from None
    except yaml.YAMLError as exc:
        raise RulesetError(f"malformed YAML: {exc}", file=file) from None
    if node is None:
        raise RulesetError("the file is empty", file=file, line=1, column=1)
    builder = _Builder(file)
    data = builder.build(node, ())
    return Located(data=data, file=file, marks=builder.marks)


def read_yaml_file(path: Path) -> Located:
    """Read a YAML file, refusing files over MAX_FILE_BYTES and non-UTF-8 text."""
    file = str(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise RulesetError(
            f"file is {size / 1e6:.1f} MB; the limit for one ruleset file is "
            f"{MAX_FILE_BYTES / 1e6:.1f} MB (split it into several rulesets)",
            file=file,
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RulesetError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", file=file) from None
    return read_yaml(text, file)
