"""`mintlog run` with every role runs each pipeline stage (normalize, index) in a supervised child process, so
intake, normalizing and indexing use every core, and still starts, reports, survives and stops as one."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.harness import MintlogProcess


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return children


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def pipeline_children(mintlog: MintlogProcess) -> dict[str, int]:
    """The `mintlog run` children that run the pipeline role: their pid by stage."""
    assert mintlog.process is not None
    children: dict[str, int] = {}
    for pid in _children(mintlog.process.pid):
        environment = _environ(pid)
        if environment.get("MINTLOG_ROLES") == "pipeline" and _alive(pid):
            children[environment.get("MINTLOG_PIPELINE__STAGES", "?")] = pid
    return children


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def metric(text: str, series: str) -> float:
    """The value of `series` (a name, with its labels if it has any) in a Prometheus exposition (0 if absent)."""
    found = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _wait(condition: Callable[[], bool], timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_seconds}s: {what}"
        time.sleep(0.1)


def _events(tag: str, count: int) -> dict[str, object]:
    return {"events": [{"message": f"{tag} {i}", "service": tag, "fields": {"n": i}} for i in range(count)]}


def test_the_pipeline_runs_in_a_child_and_metrics_report_both_processes(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory()
    mintlog.start()
    key = mintlog.bootstrap("child")
    children = pipeline_children(mintlog)
    assert set(children) == {"normalize", "index"}

    assert mintlog.ingest(key, _events("first", 50)).status_code == 202
    assert mintlog.wait_for_total(key, {"service": "first"}, 50, timeout_seconds=20)["total"] == 50

    # The parent's /metrics holds its own intake and the child's indexing, on both ports.
    for url in (mintlog.ingest_url, mintlog.api_url):
        text = httpx.get(f"{url}/metrics", timeout=5).text
        assert metric(text, "mintlog_ingest_events_accepted_total") == 50
        assert metric(text, "mintlog_indexer_events_total") == 50
        assert metric(text, "mintlog_pipeline_events_total") == 50
        assert text.count("# TYPE mintlog_indexer_events_total counter") == 1
    assert mintlog.stop() == 0
    _wait(lambda: not any(_alive(pid) for pid in children.values()), 10, "the pipeline children exit with it")


def test_killed_children_are_restarted_and_nothing_accepted_meanwhile_is_lost(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory()
    mintlog.start()
    key = mintlog.bootstrap("restart")
    first = pipeline_children(mintlog)

    for pid in first.values():
        os.kill(pid, signal.SIGKILL)
    # Intake keeps answering 202 while no pipeline runs: the events wait in the durable streams.
    for batch in range(5):
        assert mintlog.ingest(key, _events(f"during{batch}", 20)).status_code == 202

    def restarted() -> bool:
        now = pipeline_children(mintlog)
        return set(now) == set(first) and not set(now.values()) & set(first.values())

    _wait(restarted, 30, "a new child for each stage")
    answer = mintlog.wait_for_total(key, {"query": "during0 OR during1 OR during2 OR during3 OR during4"}, 100, 30)
    assert answer["total"] == 100
    text = httpx.get(f"{mintlog.api_url}/metrics", timeout=5).text
    assert metric(text, 'mintlog_pipeline_child_restarts_total{stage="index"}') == 1
    assert metric(text, 'mintlog_pipeline_child_restarts_total{stage="normalize"}') == 1
    assert mintlog.stop() == 0


def test_killing_the_parent_takes_the_child_down_and_a_restart_indexes_the_rest(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory()
    mintlog.start()
    key = mintlog.bootstrap("parent")
    children = pipeline_children(mintlog)
    assert len(children) == 2
    assert mintlog.ingest(key, _events("parent", 200)).status_code == 202
    mintlog.kill9()
    _wait(lambda: not any(_alive(pid) for pid in children.values()), 10, "the children die with their parent")

    mintlog.start()
    assert mintlog.wait_for_total(key, {"service": "parent", "size": 1}, 200, timeout_seconds=30)["total"] == 200
    assert mintlog.stop() == 0


def test_own_process_off_keeps_one_process(mintlog_factory: Callable[..., MintlogProcess]) -> None:
    mintlog = mintlog_factory(MINTLOG_PIPELINE__OWN_PROCESS="false")
    mintlog.start()
    key = mintlog.bootstrap("single")
    assert pipeline_children(mintlog) == {}
    assert mintlog.ingest(key, _events("single", 10)).status_code == 202
    assert mintlog.wait_for_total(key, {"service": "single"}, 10, timeout_seconds=20)["total"] == 10
    assert mintlog.stop() == 0
