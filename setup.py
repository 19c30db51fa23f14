"""Packs probes/ (the agents' manifests and RBAC) and reports/ (the JSON schema) into the wheel as
netcheck/bundled/, so an installed netcheck deploys without a checkout. Written by hand: the
files live at the repository's top level, where setuptools' package data cannot reach them
(its `package-dir` would have to move them under netcheck/)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TOP_LEVEL = ("probes", "reports")


class BuildWithBundled(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        for top in TOP_LEVEL:
            target = Path(self.build_lib) / "netcheck" / "bundled" / top
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(Path(__file__).parent / top, target)


setup(cmdclass={"build_py": BuildWithBundled})
