"""`mintlog import`: load log files into a running Mintlog through its ingest API (docs/import.md).

- `mintlog.importer.reading` finds the files (paths, directories, globs), opens them (gzip streamed), decides
  each file's format and turns its lines into native ingest events: pure, no network.
- `mintlog.importer.batching` groups encoded events into request bodies within the server's limits, each with
  a deterministic `Idempotency-Key`: pure.
- `mintlog.importer.sender` posts batches to `POST /v1/ingest/logs` with retries (aiohttp).
- `mintlog.importer.progress` shows progress (a rich bar on a terminal, plain lines otherwise) and the summary.
- `mintlog.importer.command` is the `mintlog import` subcommand: its arguments and the loop tying the above.
"""

from __future__ import annotations

__all__: list[str] = []
