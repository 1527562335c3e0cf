"""Optional mypyc build of the QR fast path (docs/qr.md, Performance); the project itself is in pyproject.toml.

``gateway/qr/_scan.py`` is compiled to a C extension when mypyc and a C compiler are available and
``QRGW_NO_MYPYC`` is not set. Any failure (no mypy, no compiler, a compile error) leaves the install pure
Python: ``gateway.qr`` then decodes with its reference decoder (``gateway.qr._speedups.PATH`` says which).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

SCAN = "gateway/qr/_scan.py"
CONFIG_DIR = "config"  # the defaults, kept once at the repository root
PACKAGED_CONFIG = os.path.join("gateway", "_defaults")  # where a built package carries them


def _warn(msg: str) -> None:
    print(f"qrgw: {msg}; gateway.qr stays pure Python", file=sys.stderr)


# pip runs setup.py for metadata too (egg_info, dist_info): compile only for commands that build.
BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}


def ext_modules() -> list[Any]:
    if os.environ.get("QRGW_NO_MYPYC") or not BUILDS.intersection(sys.argv[1:]):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not installed")
        return []
    try:
        # Our mypy config (pydantic plugin, whole packages) is for linting; _scan imports only the standard
        # library, and the build environment lacks the packages its parent packages import.
        flags = ["--config-file=", "--follow-imports=skip", "--ignore-missing-imports"]
        return list(mypycify([*flags, SCAN], opt_level="3"))
    except BaseException as exc:  # mypy reports errors with SystemExit
        _warn(f"mypyc failed on {SCAN}: {exc!r}")
        return []


class OptionalBuildExt(build_ext):  # type: ignore[misc]
    """A C extension that fails to build is dropped, not fatal."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            _warn(f"building the C extension failed: {exc}")
            self.extensions: list[Any] = []

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            _warn(f"building {ext.name} failed: {exc}")

    def get_outputs(self) -> list[str]:
        return [p for p in super().get_outputs() if os.path.exists(p)]


class BuildPyWithDefaults(build_py):  # type: ignore[misc]
    """Copy ``config/*.toml`` into ``gateway/_defaults`` of the build, so a wheel ships its defaults
    (an editable checkout reads ``config/`` in place: ``gateway.config.config_dir``)."""

    def run(self) -> None:
        super().run()
        target = os.path.join(self.build_lib, PACKAGED_CONFIG)
        self.mkpath(target)
        for name in sorted(os.listdir(CONFIG_DIR)):
            if name.endswith(".toml"):
                self.copy_file(os.path.join(CONFIG_DIR, name), os.path.join(target, name))


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithDefaults})
