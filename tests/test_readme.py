"""Every ```python block in the README runs, in its own process, and prints what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def expected_outputs(code: str) -> list[str]:
    """The values promised by trailing `# 144`-style comments on print lines."""
    promised = []
    for line in code.splitlines():
        match = re.match(r"\s*print\(.*\)\s*#\s*(.+)$", line)
        if match:
            promised.append(match.group(1).strip())
    return promised


def _keeps(line: str, promise: str) -> bool:
    """A printed line keeps a `# promise`: equal, ends with it, or starts with it when it ends in '...'."""
    if promise.endswith("..."):
        return line.startswith(promise[:-3])
    return line == promise or line.endswith(promise)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path):
    code = BLOCKS[index]
    script = tmp_path / f"readme_{index}.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for promise in expected_outputs(code):
        assert any(_keeps(line.strip(), promise) for line in lines), (promise, result.stdout)


def test_readme_configuration_table_is_the_code_table():
    from sparklet.runtime import Conf

    assert Conf.table_markdown() in README.read_text()
