"""`loginwatch demo` end to end through the installed CLI: no account, no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loginwatch.demo.run import FAST_REGION
from tests.support.cli import loginwatch_executable

ROOT = Path(__file__).resolve().parents[2]  # where `tests` is importable from


def test_demo_alerts_on_the_disallowed_sign_ins_only(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # The installed console script, its emulator reporting two regions enabled (home and
    # the one alice signs in through), as for the other tests: not 20 regions' left-overs.
    in_two_regions = [sys.executable, "-m", "tests.support.regions", f"us-east-1,{FAST_REGION}"]
    proc = subprocess.run(
        [*in_two_regions, loginwatch_executable(), "demo", "--raw"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**env, "COLUMNS": "160"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    marker, end = "----- raw Slack payload -----", "----- end of raw Slack payload -----"
    payloads = []
    rest = out
    while marker in rest:
        start = rest.index(marker) + len(marker)
        payloads.append(json.loads(rest[start : rest.index(end, start)]))
        rest = rest[rest.index(end, start) + len(end) :]
    fast, digest = payloads
    # The fast path reported alice's café sign-in in seconds, from eu-west-1 ...
    assert "198.51.100.23" in json.dumps(fast) and "fast path" in fast["text"]
    sent = json.dumps(fast).split("sent ")[1].split(" s after the sign-in")[0]
    assert 3 <= int(sent) < 30  # alice signed in 3 s before the demo's clock read "now"
    # ... and the alarm's digest lists the rest, not alice's again.
    text = json.dumps(digest)
    assert "198.51.100.23" not in text and "1 more already reported by the fast path" in text
    for outside in ("192.0.2.77", "198.51.100.66", "192.0.2.200"):
        assert outside in text, outside
    for inside in ("203.0.113.10", "2001:db8:1::42", "bob", "carol"):
        assert inside not in text + json.dumps(fast), inside
    assert "<!channel>" not in text  # the crafted user agent arrives escaped
    assert "ROOT account" in text
    # It leads with what Slack received: the first message within the first screen lines.
    lines = out.splitlines()
    assert next(i for i, line in enumerate(lines) if "#security (Slack)" in line) < 10
    # Its counts add up: 4 from outside, the filter counted the 3 successful ones; the
    # digest lists 3 (2 counted, the failure as context) and 1 went by the fast path.
    said = " ".join(out.split())
    assert "4 sign-ins came from outside the allowlist" in said
    assert "counted the 3 successful ones" in said and "digest lists 3" in said
    assert "as context, alice (wrong password)" in said
    assert "says the 1 more was already reported by the fast path" in said
    assert "alerts on successful sign-ins only" in said  # the failure's rules line, explained
    # It says what was emulated, and it cleaned up after itself.
    assert "Emulated here" in out and "moto" in out
    assert "teardown" in said and "removed" in said
    assert "Traceback" not in proc.stderr
