"""A traced application with faults, run once per test session (in its own process, as a
user runs it) and shared by the trace tests: examples/trace_walkthrough.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_runs: dict[str, tuple[Path, str]] = {}


def walkthrough(tmp_path_factory, master: str = "local[2]") -> tuple[Path, str]:
    """(trace directory, stdout) of examples/trace_walkthrough.py on ``master``."""
    if master not in _runs:
        trace_dir = tmp_path_factory.mktemp("walkthrough") / "trace"
        result = subprocess.run([sys.executable, str(EXAMPLES / "trace_walkthrough.py"), "--dir", str(trace_dir),
                                 "--master", master], capture_output=True, text=True, timeout=150)
        assert result.returncode == 0, result.stdout + result.stderr
        _runs[master] = (trace_dir, result.stdout)
    return _runs[master]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
