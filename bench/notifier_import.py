"""Median time to import the notifier's handler module, boto3 excluded.

Each run is a fresh interpreter that imports boto3 first (the Lambda runtime
ships it, and the handler only imports it lazily anyway), then times
``import loginwatch.notifier.handler``. Target: well under 50 ms.

    python bench/notifier_import.py            # from the repo root
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

RUNS = 20
SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import time
import boto3  # noqa: F401  (pre-imported: the runtime provides it)
started = time.perf_counter()
import loginwatch.notifier.handler  # noqa: F401
print((time.perf_counter() - started) * 1000)
"""


def one_run() -> float:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    # No .pyc, as in Lambda: /var/task is read-only, so a cold start compiles the source.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


def main() -> None:
    one_run()  # warm the OS file cache
    times = sorted(one_run() for _ in range(RUNS))
    print(f"import loginwatch.notifier.handler (boto3 pre-imported), {RUNS} fresh interpreters:")
    print(f"  median {statistics.median(times):.1f} ms")
    print(f"  min    {times[0]:.1f} ms")
    print(f"  max    {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
