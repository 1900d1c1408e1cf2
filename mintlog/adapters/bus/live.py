"""`LiveMessage`: a message delivered by `EventBus.subscribe` (at-most-once, nothing to settle)."""

from __future__ import annotations

__all__ = ["LiveMessage"]


class LiveMessage:
    """A live (non-durable) message; `ack`, `nak` and `term` do nothing."""

    __slots__ = ("_data", "_headers", "_subject")

    def __init__(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        self._subject = subject
        self._data = data
        self._headers = headers

    @property
    def subject(self) -> str:
        return self._subject

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def headers(self) -> dict[str, str]:
        return self._headers

    @property
    def num_delivered(self) -> int:
        return 1

    async def ack(self) -> None:
        return None

    async def nak(self, delay_seconds: float = 0.0) -> None:
        return None

    async def term(self) -> None:
        return None
