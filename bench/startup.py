"""Start-up of the installed `loginwatch` command against a bare interpreter.

    python bench/startup.py            # from the repo root, loginwatch installed (.venv)

Prints numbers; asserts nothing. Each run is a fresh process, timed from outside
(subprocess wall time: interpreter start, imports, the command, exit), the median
of RUNS after one warm-up run per command (OS file cache, .pyc files):

- `python -c pass`: the floor every command pays;
- `loginwatch --help` and `loginwatch status --help`: click only, nothing of AWS;
- `loginwatch validate`: the example config with a fake webhook in the
  environment, offline (the config, the allowlist, the rules, the rendering).

`python -X importtime -m loginwatch.cli --help` shows what a command loads;
`tests/unit/test_startup_imports.py` pins which modules `--help` may not import.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 15


def loginwatch() -> str:
    script = Path(sys.executable).parent / "loginwatch"
    if not script.exists():
        sys.exit(f"no {script}: install loginwatch into this interpreter's environment first")
    return str(script)


def one_run(argv: list[str], env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=True)
    return (time.perf_counter() - started) * 1000


def median_ms(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    one_run(argv, env, cwd)  # warm-up
    times = sorted(one_run(argv, env, cwd) for _ in range(RUNS))
    return statistics.median(times), times[0]


def main() -> None:
    exe = loginwatch()
    with tempfile.TemporaryDirectory(prefix="lw-startup-") as workdir:
        config = Path(workdir) / "loginwatch.yaml"
        config.write_text((ROOT / "config.example.yaml").read_text())
        env = {
            **os.environ,
            "LOGINWATCH_SLACK_WEBHOOK": "https://hooks.slack.com/services/T000/B000/benchXXXX",
            # Offline: nothing may reach AWS (validate makes no call anyway).
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "COLUMNS": "80",
        }
        env.pop("LOGINWATCH_CONFIG", None)
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("loginwatch --help", [exe, "--help"]),
            ("loginwatch status --help", [exe, "status", "--help"]),
            ("loginwatch validate", [exe, "validate"]),
        ]
        results = [(label, *median_ms(argv, env, workdir)) for label, argv in cases]
    floor = results[0][1]
    print(f"Start-up, wall time of a fresh process, median of {RUNS} ({sys.executable}):")
    print(f"  {'command':<26} {'median':>9} {'min':>9} {'over python':>12}")
    for label, median, fastest in results:
        over = "" if label.startswith("python") else f"+{median - floor:.0f} ms"
        print(f"  {label:<26} {median:>6.0f} ms {fastest:>6.0f} ms {over:>12}")


if __name__ == "__main__":
    main()
