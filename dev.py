#!/usr/bin/env python3
"""One command to set up a fresh environment and run loginwatch's main job or its checks.

    python3 dev.py demo      # create .venv, install loginwatch, run the no-account demo
    python3 dev.py test    # create .venv, install with test extras, run ruff, mypy and pytest

Needs only Python 3.11+: it makes its own virtual environment in .venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_env(extra: str) -> None:
    marker = VENV / f".installed-{extra}"
    stamp = str((ROOT / "pyproject.toml").stat().st_mtime)
    if marker.exists() and marker.read_text() == stamp:
        return
    if not (BIN / "python").exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print(f"Installing loginwatch[{extra}] ...", flush=True)
    run([str(BIN / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    run([str(BIN / "python"), "-m", "pip", "install", "-q", "-e", f".[{extra}]"])
    marker.write_text(stamp)


def run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def main() -> None:
    task = sys.argv[1] if len(sys.argv) > 1 else "help"
    args = sys.argv[2:]
    if task == "demo":
        ensure_env("demo")
        run([str(BIN / "loginwatch"), "demo", *args])
    elif task == "test":
        ensure_env("test")
        run([str(BIN / "ruff"), "check", "."])
        run([str(BIN / "ruff"), "format", "--check", "."])
        run([str(BIN / "mypy")])  # what [tool.mypy] in pyproject.toml names: src/
        # Compiled once here: the end-to-end tests start the installed CLI ~150 times,
        # and where PYTHONDONTWRITEBYTECODE is set (as on some CI images) each start
        # would otherwise compile loginwatch's sources again (an editable install
        # leaves them uncompiled). compileall writes whatever that variable says.
        run([str(BIN / "python"), "-m", "compileall", "-q", "src", "tests"])
        # worksteal: an idle worker takes queued tests from the busy one, so a few long
        # end-to-end tests do not leave one core idle at the end (324 s → 220 s).
        run([str(BIN / "python"), "-m", "pytest", "-n", "2", "--dist", "worksteal", "-q", *args])
    else:
        print(__doc__)
        sys.exit(0 if task == "help" else 2)


if __name__ == "__main__":
    main()
