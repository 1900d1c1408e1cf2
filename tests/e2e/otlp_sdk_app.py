"""An application instrumented with the OpenTelemetry Python SDK, configured only by the standard environment
variables (`OTEL_LOGS_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_COMPRESSION`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED`), as `opentelemetry-instrument` would configure it.

Run as a script by tests/e2e/test_otlp.py: it logs one record per `logging` level with `extra` attributes,
inside a span, flushes, and prints the span's `{"trace_id": ..., "span_id": ...}` on stdout; a failed export is
logged on stderr by the exporter.
"""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._configuration import _OTelSDKConfigurator


def main() -> None:
    _OTelSDKConfigurator().configure()  # what `opentelemetry-instrument` runs: everything from the environment
    # The exporter reports a failed export through `logging`: show it on stderr, where the test looks.
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    app_logger = logging.getLogger("shop.checkout")
    app_logger.setLevel(logging.DEBUG)
    tracer = trace.get_tracer("shop")
    with tracer.start_as_current_span("checkout") as span:
        context = span.get_span_context()
        app_logger.debug("cart loaded", extra={"cart.items": 3})
        app_logger.info("payment authorized", extra={"order.id": "o-42", "amount": 19.99})
        app_logger.warning("stock low", extra={"sku": "A-1"})
        app_logger.error("shipping quote failed", extra={"carrier": "acme"})
        app_logger.critical("order lost", extra={"order.id": "o-43"})
    get_logger_provider().shutdown()  # type: ignore[attr-defined]  # flushes the batch processor
    print(json.dumps({"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}))


if __name__ == "__main__":
    main()
