"""The Granian options every HTTP port is served with, embedded or by worker processes."""

from __future__ import annotations

from mintlog.http.server import granian_options
from mintlog.settings import HttpSettings


def test_the_connection_cap_is_split_among_the_workers_of_a_port() -> None:
    # Granian counts `backpressure` per worker, and each worker has its own accept queue.
    http = HttpSettings(max_connections=100)
    assert granian_options(http)["backpressure"] == 100
    assert granian_options(http, workers=3)["backpressure"] == 34


def test_ports_speak_http1_only_with_the_header_timeout_in_milliseconds() -> None:
    # Granian's `auto` mode waits for the first bytes with no timeout: an idle connection was held forever.
    options = granian_options(HttpSettings(header_read_timeout_seconds=2.5))
    assert str(options["http"]) == "1"
    assert options["http1_settings"].header_read_timeout == 2_500
    assert options["http1_settings"].keep_alive is True
