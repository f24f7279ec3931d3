"""Pushes with python-logging-loki, the Python logging handler for Loki.

usage: logging_loki_push.py BASE_URL VERSION RUN_ID
VERSION "0" sends the legacy JSON form to /api/prom/push, "1" the current one to
/loki/api/v1/push. Exits non-zero when the handler reports an error.
"""

import logging
import sys

import logging_loki

base, version, run = sys.argv[1], sys.argv[2], sys.argv[3]
path = "/api/prom/push" if version == "0" else "/loki/api/v1/push"
failures = []


class Handler(logging_loki.LokiHandler):
    def handleError(self, record):  # noqa: N802 - logging's name
        failures.append(sys.exc_info()[1])


handler = Handler(url=base + path, tags={"app": "pyclient", "run": run}, version=version)
logger = logging.getLogger("kiroku-e2e")
logger.setLevel(logging.INFO)
logger.addHandler(handler)
logger.warning("python says hello", extra={"tags": {"attempt": "1"}})
logger.error("something broke: %s", "disk on fire")
if failures:
    print(f"push failed: {failures[0]!r}", file=sys.stderr)
    sys.exit(1)
