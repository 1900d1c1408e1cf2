"""`python -m mintlog` is the same CLI as the `mintlog` console script."""

from __future__ import annotations

from mintlog.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
