"""Shared test configuration: the tiers, their markers, and how `pytest -n` spreads them over workers.

A test's tier is the folder it lives in (docs/testing.md): `tests/unit` (fakes only, no service, no process),
`tests/contract` (every adapter of a port, real services included), `tests/integration` (real services),
`tests/e2e` (real `mintlog run` processes) and `tests/distributed` (the production topology). Each test gets
its folder's marker, so `-m unit`, `-m "not e2e"`, ... select tiers (`integration` and `e2e` are also set by
hand on tests of other folders that talk to real services or processes).

With pytest-xdist and `--dist loadgroup` (`make test`), the tests of one module run on one worker (module-
scoped fixtures such as a shared `mintlog run` start once), and every test of the shared NATS server's
fixed streams (`nats_url`, the distributed suite) runs on one worker, one after another: their role processes
consume the shared work-queue streams and would take each other's messages.

In CI (`CI` set), a skipped test fails the run: a test that cannot run there does not count as passing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
TIERS = ("unit", "contract", "integration", "e2e", "distributed")
SHARED_NATS_GROUP = "shared-nats"


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the folder of `tests/` it lives in, if that folder is a tier."""
    try:
        parts = path.resolve().relative_to(TESTS_DIR).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the `xdist_group` marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    grouping = config.pluginmanager.hasplugin("xdist")
    for item in items:
        tier = tier_of(item.path)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))
        if not grouping or item.get_closest_marker("xdist_group") is not None:
            continue
        if tier == "distributed" or "nats_url" in getattr(item, "fixturenames", ()):
            group = SHARED_NATS_GROUP
        else:
            group = item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"


pytest_plugins = ["tests.services"]
