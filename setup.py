"""Build the compiled core: the SLA clocks and calendar arithmetic, compiled with Cython.

The modules stay plain Python (``clock.py``, ``calendar.py``); the ``.pxd``
files beside them declare their classes' fields and hot methods with C types,
and Cython compiles each module from its ``.py`` with those declarations.
Where no C compiler is at hand the build skips them (``optional``) and the
same source runs as Python, about 2.5 times slower.
``SLAENGINE_PURE_PYTHON=1`` runs the Python source even when the compiled
modules are installed (see ``slaengine/__init__.py``).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILED = ["clock", "calendar"]

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
