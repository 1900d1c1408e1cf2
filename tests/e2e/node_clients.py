"""Node.js client projects of `tests/clients/` (real npm client libraries that e2e tests drive), installed once.

Each project pins its libraries in `package-lock.json` and is installed with `npm ci` the first time a test needs
it, and again whenever the lockfile changed since (a stamp in `node_modules` holds the lockfile's digest), so a
bumped pin never runs against stale packages. Node.js and npm must be installed (`.ci/run` installs them with
apt-get); without them the tests fail, never skip.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["CLIENTS", "installed_node"]

CLIENTS = Path(__file__).parents[1] / "clients"
_STAMP = ".mintlog-lock-sha256"


def installed_node(project: Path) -> str:
    """The node binary, with `project`'s packages installed from its lockfile."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(f"node and npm are needed to run the client libraries of {project}: apt-get install -y nodejs npm")
    lockfile = project / "package-lock.json"
    stamp = project / "node_modules" / _STAMP
    with lockfile.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test workers may get here at once: one installs
        digest = hashlib.sha256(lockfile.read_bytes()).hexdigest()
        if not stamp.exists() or stamp.read_text() != digest:
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=project, check=True, timeout=600)
            stamp.write_text(digest)
    return node
