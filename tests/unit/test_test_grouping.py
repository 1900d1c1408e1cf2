"""`make test`'s `pytest -n 4 --dist loadgroup` keeps each module on one worker (tests/conftest.py).

The e2e and distributed modules rely on it: a module-scoped `mintlog run` starts once, and the tests of the
shared NATS server's fixed streams run one after another. With pytest 9.2 and pytest-xdist 3.8 the grouping
silently stopped (xdist renames items through an attribute pytest 9.2 no longer reads): every module's
process started on every worker and shared-stream tests ran side by side. This runs the real hook under
xdist on two small modules and checks where their tests ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TESTS_DIR

MODULE = """
import json, os
from pathlib import Path

import pytest

OUT = Path(__file__).parent / "ran.jsonl"


@pytest.fixture(scope="module")
def started():
    with OUT.open("a") as out:
        out.write(json.dumps({{"module": "{name}", "setup": os.environ["PYTEST_XDIST_WORKER"]}}) + "\\n")


@pytest.mark.parametrize("number", range(6))
def test_runs(started, number):
    with OUT.open("a") as out:
        out.write(json.dumps({{"module": "{name}", "worker": os.environ["PYTEST_XDIST_WORKER"]}}) + "\\n")
"""


def test_the_tests_of_a_module_run_on_one_worker_and_its_module_fixture_starts_once(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    for name in ("test_first", "test_second"):
        (tmp_path / f"{name}.py").write_text(MODULE.format(name=name))
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR.parent)}
    env.pop("CI", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", "-q", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in (tmp_path / "ran.jsonl").read_text().splitlines()]
    for name in ("test_first", "test_second"):
        workers = {record["worker"] for record in records if record["module"] == name and "worker" in record}
        setups = [record for record in records if record["module"] == name and "setup" in record]
        assert len(workers) == 1, f"{name} ran on {sorted(workers)}"
        assert len(setups) == 1, f"{name}'s module fixture started {len(setups)} times"
