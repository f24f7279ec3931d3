"""Sends Python logging records with the OpenTelemetry SDK's real OTLP/HTTP exporter.

usage: otlp_push.py BASE_URL RUN_ID COMPRESSION(none|gzip|deflate)
Exports synchronously and exits non-zero unless the exporter reports success.
"""

import logging
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

base, run, compression = sys.argv[1], sys.argv[2], sys.argv[3]
results = []


class Checked(OTLPLogExporter):
    def export(self, batch):
        r = super().export(batch)
        results.append(r)
        return r


exporter = Checked(endpoint=base + "/otlp/v1/logs", compression=Compression(compression), timeout=10)
provider = LoggerProvider(
    resource=Resource.create(
        {"service.name": "py-otel", "k8s.namespace.name": "shop", "run.id": run, "host.name": "node-1"}
    )
)
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
logger = logging.getLogger("otel-e2e")
logger.setLevel(logging.INFO)
logger.propagate = False
logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
logger.warning("otel says hello", extra={"order.id": 42})
logger.error("otel failure")
provider.shutdown()
ok = [r for r in results if r == LogRecordExportResult.SUCCESS]
if len(ok) != 2:
    print(f"export results: {results}", file=sys.stderr)
    sys.exit(1)
