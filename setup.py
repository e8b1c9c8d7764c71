"""Build hook: the `dialtone` package is the services/ tree, and dialtone.v1 is
generated from the .proto files before packaging."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def dialtone_packages() -> list[str]:
    """Every folder under services/ with an __init__.py, named as dialtone.*."""
    names = []
    for init in sorted((HERE / "services").rglob("__init__.py")):
        rel = init.parent.relative_to(HERE / "services")
        names.append(".".join(("dialtone", *rel.parts)) if rel.parts else "dialtone")
    return names


class BuildWithProtos(build_py):
    def run(self) -> None:
        sys.path.insert(0, str(HERE / "proto"))
        import generate  # proto/generate.py

        generate.generate()
        super().run()


setup(packages=dialtone_packages(), cmdclass={"build_py": BuildWithProtos})
