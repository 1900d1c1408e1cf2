"""What one attempt of any sender got, in the terms the delivery worker decides with."""

from __future__ import annotations

from dataclasses import dataclass

from mintlog.ports.outbound import AttemptResult
from mintlog.ports.smtp import SmtpResult

__all__ = ["SendResult", "from_http", "from_smtp"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """One attempt's result. `status_code` is the HTTP status or the SMTP reply code (None without an answer);
    `permanent`: sending again cannot succeed (an SMTP 5xx), so the delivery is dead at once; `gone`: the
    receiver answered 410 Gone, so the channel is disabled too."""

    status_code: int | None
    duration_seconds: float
    error: str | None
    retry_after_seconds: float | None = None
    permanent: bool = False
    gone: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def from_http(result: AttemptResult) -> SendResult:
    """An HTTP attempt (webhook, chat webhook): 410 is `gone`; every other failure is retried."""
    return SendResult(
        result.status_code,
        result.duration_seconds,
        result.error,
        retry_after_seconds=result.retry_after_seconds,
        gone=result.status_code == 410,
    )


def from_smtp(result: SmtpResult) -> SendResult:
    """An SMTP attempt: a 5xx reply is permanent; 4xx replies and network failures are retried."""
    return SendResult(result.reply_code, result.duration_seconds, result.error, permanent=result.permanent)
