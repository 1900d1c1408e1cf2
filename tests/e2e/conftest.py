from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import MintlogProcess


@pytest.fixture
def mintlog_factory(tmp_path: Path) -> Iterator[Callable[..., MintlogProcess]]:
    created: list[MintlogProcess] = []

    def make(data_dir: Path | None = None, **extra_env: str) -> MintlogProcess:
        process = MintlogProcess(data_dir=data_dir or tmp_path / "data", extra_env=dict(extra_env))
        created.append(process)
        return process

    yield make
    for process in created:
        process.cleanup()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MintlogProcess, str]]:
    """One all-in-one Mintlog shared by the tests of a module, with a bootstrapped key."""
    process = MintlogProcess(data_dir=tmp_path_factory.mktemp("mintlog") / "data")
    try:
        process.start()
        yield process, process.bootstrap("demo")
    finally:
        process.cleanup()
