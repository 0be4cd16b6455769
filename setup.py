"""Build the compiled core: the SLA clocks and calendar arithmetic, compiled with Cython.

The modules stay plain Python (``clock.py``, ``calendar.py``, ``unchecked.py``);
the ``.pxd`` files beside them declare their classes' fields and hot methods
with C types, and Cython compiles each module from its ``.py`` with those
declarations. ``_instants.pyx`` converts instants to and from epoch
microseconds through the datetime C API (``clock.py`` has the same in
Python). Where no C compiler is at hand the build skips them (``optional``)
and the same source runs as Python, taking about 2.3 times the CPU time
(bench/bench_clock.py with SLAENGINE_PURE_PYTHON=1).
``SLAENGINE_PURE_PYTHON=1`` runs the Python source even when the compiled
modules are installed (``slaengine/_pure.py``); ``tests/test_compiled.py``
checks that both print the same replays.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILED = ["clock", "calendar", "unchecked"]

setup(
    ext_modules=cythonize(
        [
            Extension(f"slaengine.{name}", [f"src/slaengine/{name}.py"], optional=True)
            for name in COMPILED
        ]
        + [Extension("slaengine._instants", ["src/slaengine/_instants.pyx"], optional=True)],
        compiler_directives={"language_level": 3, "annotation_typing": False},
        quiet=True,
    )
)
