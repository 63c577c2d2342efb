"""Build the optional compiled search kernel; everything else is in pyproject.toml.

``nashcli/_hamming.c`` is marked optional: without a C compiler (or if it fails to build) the
package still installs, and ``nashcli.search`` falls back to numpy (``search.BACKEND``). The
kernel picks AVX-512, popcnt or portable code at run time, so it is never built with
``-march=native`` and one build runs on any CPU of its architecture.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Adds optimisation and thread flags for GCC/Clang-like compilers only."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args += ["-O3", "-pthread"]
                ext.extra_link_args += ["-pthread"]
        super().build_extensions()


setup(
    ext_modules=[Extension("nashcli._hamming", ["nashcli/_hamming.c"], optional=True)],
    cmdclass={"build_ext": BuildExt},
)
