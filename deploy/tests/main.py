"""Runs the deploy tests quietly: one summary line on success, everything on failure.
`main.py update` rewrites deploy/kubernetes/kiroku.yaml from the chart instead."""

from __future__ import annotations

import io
import sys
import unittest

import chart


def main() -> int:
    if sys.argv[1:] == ["update"]:
        chart.MANIFEST.parent.mkdir(parents=True, exist_ok=True)
        chart.MANIFEST.write_text(chart.manifest_text())
        print(f"wrote {chart.MANIFEST.relative_to(chart.ROOT)}")
        return 0
    if sys.argv[1:]:
        print("usage: deploy/tests/run [update]", file=sys.stderr)
        return 2
    suite = unittest.defaultTestLoader.discover(str(chart.ROOT / "deploy" / "tests"), pattern="test_*.py")
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=1).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    if not result.wasSuccessful():
        sys.stdout.write(stream.getvalue())
    for test, why in result.skipped:
        print(f"deploy: skipped {test.id()}: {why}")
    line = f"deploy: {passed} passed, {failed} failed"
    print(line + (f", {skipped} skipped" if skipped else ""))
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
