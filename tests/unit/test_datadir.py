"""`mintlog.launch.datadir` and `mintlog.pidlock`: one holder per directory, named when refused; children of the
holder share its lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mintlog.launch.datadir import DATA_DIR_LOCK_NAME, hold_data_dir, uses_data_dir
from mintlog.pidlock import DirectoryInUse, PidLock
from mintlog.settings import load_settings

# Runs `hold_data_dir` for the data dir in argv[1] and says what it got; exits 1 when refused.
HOLD_SCRIPT = textwrap.dedent(
    """
    import sys
    from mintlog.launch.datadir import hold_data_dir
    from mintlog.pidlock import DirectoryInUse
    from mintlog.settings import load_settings

    settings = load_settings({}, env_file=None, overrides={"MINTLOG_DATA_DIR": sys.argv[1]})
    try:
        with hold_data_dir(settings) as lock:
            print("held" if lock is not None else "shared", flush=True)
    except DirectoryInUse as exc:
        print(exc, flush=True)
        sys.exit(1)
    """
)


# Takes the lock of the data dir in argv[1], says so, and keeps it until killed.
KEEP_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mintlog.pidlock import PidLock

    PidLock(Path(sys.argv[1]), "mintlog.lock", what="data directory", hint="").acquire()
    print("locked", flush=True)
    time.sleep(600)
    """
)


def lock_at(directory: Path) -> PidLock:
    return PidLock(directory, DATA_DIR_LOCK_NAME, what="data directory", hint="stop it first")


def test_a_second_holder_is_refused_with_the_directory_and_the_holder_pid(tmp_path: Path) -> None:
    first, second = lock_at(tmp_path / "data"), lock_at(tmp_path / "data")
    first.acquire()
    try:
        with pytest.raises(DirectoryInUse) as refused:
            second.acquire()
        assert refused.value.holder_pid == os.getpid()
        assert str(refused.value) == (
            f"the data directory {tmp_path / 'data'} is in use by another Mintlog process (pid {os.getpid()}); "
            "stop it first"
        )
        assert not second.held
    finally:
        first.release()
    second.acquire()  # released: the next holder gets it
    second.release()


def test_the_lock_dies_with_its_holder_process(tmp_path: Path) -> None:
    command = [sys.executable, "-c", KEEP_SCRIPT, str(tmp_path / "data")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            lock = lock_at(tmp_path / "data")
            with pytest.raises(DirectoryInUse) as refused:
                lock.acquire()
            assert refused.value.holder_pid == holder.pid
        finally:
            holder.kill()
    lock.acquire()  # SIGKILL released it: the file left behind blocks nothing
    lock.release()


def test_a_child_of_the_holder_shares_the_lock_and_any_other_process_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = load_settings({}, env_file=None, overrides={"MINTLOG_DATA_DIR": str(data_dir)})
    with hold_data_dir(settings) as lock:
        assert lock is not None
        assert lock.held
        hold_command = [sys.executable, "-c", HOLD_SCRIPT, str(data_dir)]
        child = subprocess.run(hold_command, capture_output=True, text=True)
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == "shared"
        # A grandchild's parent is not the holder: refused, naming this process.
        via_another_parent = f"import subprocess, sys; sys.exit(subprocess.run({hold_command!r}).returncode)"
        grandchild = subprocess.run([sys.executable, "-c", via_another_parent], capture_output=True, text=True)
        assert grandchild.returncode == 1
        assert f"in use by another Mintlog process (pid {os.getpid()})" in grandchild.stdout
    alone = subprocess.run([sys.executable, "-c", HOLD_SCRIPT, str(data_dir)], capture_output=True, text=True)
    assert alone.stdout.strip() == "held"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, True),
        ({"MINTLOG_NATS__URL": "nats://n:4222"}, True),
        (
            {
                "MINTLOG_NATS__URL": "nats://n:4222",
                "MINTLOG_STORE__URL": "https://os:9200",
                "MINTLOG_DATABASE__URL": "postgresql+asyncpg://u:p@db/m",
                "MINTLOG_BLOB__URL": "s3://bucket",
            },
            False,
        ),
    ],
    ids=["embedded", "external-nats-only", "all-external"],
)
def test_only_a_process_keeping_state_in_the_data_dir_locks_it(
    tmp_path: Path, overrides: dict[str, str], expected: bool
) -> None:
    settings = load_settings({}, env_file=None, overrides={"MINTLOG_DATA_DIR": str(tmp_path), **overrides})
    assert uses_data_dir(settings) is expected
    with hold_data_dir(settings) as lock:
        assert (lock is not None) is expected
