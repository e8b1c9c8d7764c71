"""The fuzz suite's platform: every service as a process, started once for tests/fuzz."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.stack import Stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    platform = Stack(tmp_path_factory.mktemp("fuzz"))
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()
