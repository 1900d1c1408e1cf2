"""Writes an OpenSearch cluster refuses with a block: an outage of the store, never the fault of the events.

When a node's disk passes the flood-stage watermark (95 % by default), OpenSearch sets
`index.blocks.read_only_allow_delete` on every index with a shard there. Every write to such an index is then
refused with a `cluster_block_exception`: per bulk item, and for a whole request such as a mapping update,
answered `429` with `TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has
read-only-allow-delete block` (OpenSearch 2.x) or `403` with `FORBIDDEN/12/index read-only / allow delete
(api)` (older versions). OpenSearch 2.x lifts the block by itself once the disk falls below the high
watermark; on a single node an operator may have to clear it. Other blocks (`index.blocks.write`, a
cluster-wide `cluster.blocks.read_only`, the `create_index` block) refuse writes the same way until lifted.

Every such refusal is a `StoreDiskFailure` (`opensearch_client.translate_errors` for whole requests, the bulk
writer for items): the indexer retries the batch without a delivery limit and sets
`mintlog_store_write_failed`, and dead-letters nothing. `flood_stage_indices` lists the store's indices that
carry the flood-stage block, for `ping`, so `/readyz` names `store` while it lasts.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import msgspec
from opensearchpy.exceptions import OpenSearchException

from mintlog.adapters.logstore.opensearch_client import WRITES_RETRIED, describe_error, status_of
from mintlog.errors import StoreDiskFailure, StoreUnavailable

__all__ = ["FLOOD_STAGE_BLOCK", "IndicesClient", "blocked_items", "flood_stage_failure", "flood_stage_indices"]

logger = logging.getLogger(__name__)

FLOOD_STAGE_BLOCK = "index.blocks.read_only_allow_delete"
_SHOWN_INDICES = 5
_SETTINGS_PARAMS = {
    "flat_settings": "true",
    "allow_no_indices": "true",
    "ignore_unavailable": "true",
    "expand_wildcards": "open",
    "filter_path": "*.settings",
}


class IndicesClient(Protocol):
    """What `flood_stage_indices` needs of `opensearchpy.AsyncOpenSearch().indices`."""

    async def get_settings(self, *, index: Any = None, name: Any = None, params: Any = None) -> Any: ...


class _Index(msgspec.Struct):
    settings: dict[str, Any] = {}


def blocked_items(count: int, failure: str) -> StoreDiskFailure:
    """The `StoreDiskFailure` for `count` bulk items a block refused, the first of them with `failure`."""
    return StoreDiskFailure(
        f"opensearch store could not write {count} event(s), the cluster refuses writes: {failure}; {WRITES_RETRIED}"
    )


async def flood_stage_indices(indices: IndicesClient, pattern: str) -> list[str]:
    """The open indices matching `pattern` that carry the flood-stage block, sorted.

    Empty when the credentials may not read index settings (401/403: the writes still report the block);
    `StoreUnavailable` when the cluster fails otherwise.
    """
    try:
        response = await indices.get_settings(index=pattern, name=FLOOD_STAGE_BLOCK, params=dict(_SETTINGS_PARAMS))
    except OpenSearchException as exc:
        if status_of(exc) in (401, 403):
            logger.debug("cannot read the settings of the indices %s: %s", pattern, describe_error(exc))
            return []
        raise StoreUnavailable(
            f"opensearch store could not read the blocks of its indices: {describe_error(exc)}"
        ) from exc
    try:
        found = msgspec.convert(response or {}, dict[str, _Index])
    except msgspec.ValidationError:
        logger.warning("unexpected answer reading the blocks of the indices %s: %r", pattern, response)
        return []
    return sorted(name for name, index in found.items() if str(index.settings.get(FLOOD_STAGE_BLOCK)).lower() == "true")


def flood_stage_failure(blocked: list[str]) -> StoreDiskFailure:
    """What `ping` raises while the indices `blocked` (not empty) carry the flood-stage block."""
    shown = ", ".join(blocked[:_SHOWN_INDICES])
    if len(blocked) > _SHOWN_INDICES:
        shown += f" and {len(blocked) - _SHOWN_INDICES} more"
    return StoreDiskFailure(
        f"opensearch refuses writes to {shown}: {FLOOD_STAGE_BLOCK} is set (a node's disk passed the flood-stage "
        f"watermark; OpenSearch lifts it once usage falls below the high watermark); {WRITES_RETRIED}"
    )
