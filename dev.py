#!/usr/bin/env python3
"""Set up and run sparklet's everyday commands with nothing but Python 3.11+.

    python3 dev.py demo     # create .venv if missing, install, run the main demo (`sparklet demo`)
    python3 dev.py test     # create .venv if missing, install with test extras, run the suite
    python3 dev.py bench    # run the benchmarks (JSON lines + tables)
    python3 dev.py bench --peers   # also install the `bench` extra: PySpark, Dask, Ray

Extra arguments after the command go to the tool (pytest, the demo, the benchmarks).
The virtual environment is (re)installed when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SPARKLET_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"sparklet needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".sparklet-installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing sparklet[{extras}] (editable) into {VENV}", file=sys.stderr)
    run([PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    target = f".[{extras}]" if extras else "."
    run([PYTHON, "-m", "pip", "install", "--quiet", "-e", target], cwd=ROOT)
    stamp.write_text(digest)


def run(cmd: list, **kwargs) -> None:
    result = subprocess.run([str(c) for c in cmd], **kwargs)
    if result.returncode != 0:
        sys.exit(result.returncode)


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return
    command, rest = argv[0], argv[1:]
    if command == "test":
        ensure_venv("test,history")  # history: pyspark, for the Spark History Server test
        run([PYTHON, "-m", "pytest", *rest], cwd=ROOT)
    elif command == "demo":
        ensure_venv("")
        run([PYTHON, "-m", "sparklet.runtime.cli", "demo", *rest], cwd=ROOT)  # `sparklet demo`
    elif command == "bench":
        peers = "--peers" in rest  # the peers run whenever installed; --peers installs them
        ensure_venv("bench" if peers else "")
        run([PYTHON, ROOT / "benchmarks" / "run.py", *(a for a in rest if a != "--peers")], cwd=ROOT)
    else:
        sys.exit(f"unknown command {command!r}; try: demo, test, bench")


if __name__ == "__main__":
    main(sys.argv[1:])
