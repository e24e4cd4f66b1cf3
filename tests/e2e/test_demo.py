"""`loginwatch demo` end to end through the installed CLI: no account, no network."""

from __future__ import annotations

import json
import os
import subprocess

from tests.support.cli import loginwatch_executable


def test_demo_alerts_on_the_disallowed_sign_ins_only(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [loginwatch_executable(), "demo", "--raw"],
        capture_output=True, text=True, env={**env, "COLUMNS": "160"}, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    start = out.index("----- raw Slack payload -----") + len("----- raw Slack payload -----")
    payload = json.loads(out[start : out.index("----- end of raw Slack payload -----")])
    text = json.dumps(payload)
    for outside in ("198.51.100.23", "192.0.2.77", "198.51.100.66", "192.0.2.200"):
        assert outside in text, outside
    for inside in ("203.0.113.10", "2001:db8:1::42", "bob", "carol"):
        assert inside not in text, inside
    assert "<!channel>" not in text  # the crafted user agent arrives escaped
    assert "ROOT account" in text
    # It says what was emulated, and it cleaned up after itself.
    assert "Emulated in this demo" in out and "moto" in out
    assert "S3 bucket" in out and "deleted" in out
    assert "Traceback" not in proc.stderr
