"""``SLAENGINE_PURE_PYTHON=1``: run the Python source of the compiled modules.

The clocks, the calendar arithmetic and ``unchecked`` are compiled with
Cython where a C compiler was at hand (see ``setup.py``); their ``.py``
files are the source of truth and run as they are without it. This finder
makes an import of any ``slaengine.NAME`` load ``NAME.py`` ahead of a
compiled ``NAME`` beside it, and a module that exists only compiled (the
datetime C-API helpers, ``_instants``) absent, so its Python fallback runs:
for telling whether a difference comes from the compiled build, and for the
test that checks the two give the same results.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parent


class SourceFirst(MetaPathFinder):
    """Finds ``slaengine.NAME`` as ``NAME.py``; a compiled-only NAME is not found."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != "slaengine":
            return None
        source = PACKAGE / f"{name}.py"
        if source.is_file():
            return importlib.util.spec_from_file_location(fullname, source)
        if any((PACKAGE / f"{name}{suffix}").is_file() for suffix in EXTENSION_SUFFIXES):
            raise ModuleNotFoundError(
                f"{fullname} exists only compiled, and SLAENGINE_PURE_PYTHON is set",
                name=fullname,
            )
        return None  # a subpackage or nothing: the usual finders decide


def install() -> None:
    """Put the finder first (once)."""
    if not any(isinstance(finder, SourceFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, SourceFirst())
