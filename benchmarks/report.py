"""One figure per measurement: printed as a JSON line and as a row of a readable table."""

from __future__ import annotations

import dataclasses
import json
import sys


@dataclasses.dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    higher_is_better: bool
    target: str = ""

    @property
    def ratio(self) -> float:
        """value / baseline: for throughputs higher is better, for latencies lower is."""
        return self.value / self.baseline if self.baseline else float("nan")

    def json_line(self) -> str:
        return json.dumps({
            "name": self.name, "value": round(self.value, 3), "unit": self.unit,
            "baseline": round(self.baseline, 3), "baseline_name": self.baseline_name,
            "ratio": round(self.ratio, 3), "target": self.target,
        })


def print_figures(figures: list[Figure], out=sys.stdout) -> None:
    for figure in figures:
        print(figure.json_line(), file=out)
    print(file=out)
    header = f"{'figure':38} {'value':>18} {'baseline':>18} {'ratio':>7}  target"
    print(header, file=out)
    print("-" * len(header), file=out)
    for f in figures:
        print(f"{f.name:38} {_number(f.value)} {f.unit:<5} {_number(f.baseline)} {f.unit:<5} {f.ratio:>7.2f}  {f.target}", file=out)


def _number(value: float) -> str:
    return f"{value:>12,.3f}" if abs(value) < 100 else f"{value:>12,.0f}"
