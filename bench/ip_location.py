"""The notifier's zip size and cold start, with and without the IP location table.

"Without" is the same zip less ``ip_location.bin`` (what the package was before the
location data: its alerts then say "location unknown"). Each cold start is a fresh
interpreter, no ``.pyc`` files, boto3 imported first (the Lambda runtime ships it):
it times ``import handler`` plus the first ``describe()`` of a public address, which
is when the table is read. Limits (issue #24): zip ≤ 10 MB (Lambda takes 50 MB
through the API), cold start within 2× of the zip without the table.

    python bench/ip_location.py            # from the repo root
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from loginwatch import ip_location_data, notifier_package  # noqa: E402
from tests.notifier.conftest import BASE_SETTINGS  # noqa: E402

RUNS = 15
TABLE = f"{notifier_package.PACKAGE_NAME}/ip_location.bin"
PROBE = """
import time
import boto3  # noqa: F401  (pre-imported: the runtime provides it)
started = time.perf_counter()
import loginwatch_notifier.handler  # noqa: F401
from loginwatch_notifier import ip_location
ip_location.describe("80.152.1.1")
print((time.perf_counter() - started) * 1000)
"""


def without_table(package: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename != TABLE:
                target.writestr(info, source.read(info))
    return out.getvalue()


def cold_start_ms(package: bytes) -> float:
    with tempfile.TemporaryDirectory() as where:
        zipfile.ZipFile(io.BytesIO(package)).extractall(where)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": where}
        times = [
            float(
                subprocess.run(
                    [sys.executable, "-c", PROBE],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(RUNS)
        ]
    return statistics.median(times)


def main() -> None:
    started = time.perf_counter()
    ip_location_data.table_bytes()  # converted once (cached afterwards)
    print(f"table converted or read from cache in {time.perf_counter() - started:.1f} s")
    after = notifier_package.build_zip(BASE_SETTINGS)
    before = without_table(after)
    print(f"source: {ip_location_data.SOURCE_DISTRIBUTION} {ip_location_data.source_version()}")
    print(f"{'':28} {'zip bytes':>12} {'cold start (median of ' + str(RUNS) + ')':>28}")
    cold = {}
    for label, package in (("without location data", before), ("with location data", after)):
        cold[label] = cold_start_ms(package)
        print(f"{label:28} {len(package):>12,} {cold[label]:>25.1f} ms")
    ratio = cold["with location data"] / cold["without location data"]
    print(f"zip: {len(after) / 1e6:.2f} MB of 10 MB allowed; cold start ×{ratio:.2f} (≤ 2 allowed)")


if __name__ == "__main__":
    main()
