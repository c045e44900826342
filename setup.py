"""Build hook: ship the repository's top-level `vectors/` (the shipped dimensions) inside the
package as `steertui/data/vectors`, where `steertui.home.repo_vectors_dir` finds them in an
installed wheel. All other configuration is in pyproject.toml; a checkout (and an editable
install) reads `vectors/` in place."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("*.toml", "*.md")


class BuildPyWithVectors(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = Path(__file__).resolve().parent / "vectors"
        dest = Path(self.build_lib) / "steertui" / "data" / "vectors"
        if dest.exists():
            shutil.rmtree(dest)
        for pattern in SHIPPED:
            for file in source.rglob(pattern):
                target = dest / file.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)


setup(cmdclass={"build_py": BuildPyWithVectors})
