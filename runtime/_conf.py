"""Configuration: one table of keys, named after Spark's where the concept is the same.

Keys may be given with or without Spark's ``spark.`` prefix (``task.maxFailures`` or
``spark.task.maxFailures``). Unknown keys are refused with the closest known names, and
values are checked against the key's type, so a typo fails at ``Context(...)`` rather
than being silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, Iterator, Mapping

__all__ = ["Conf", "ConfKey", "KEYS", "parse_size"]


@dataclasses.dataclass(frozen=True)
class ConfKey:
    name: str
    default: Any
    kind: Callable[[Any], Any]
    doc: str


def parse_size(value: Any) -> int:
    """Bytes from an int or a Spark-style size string: ``512m``, ``2g``, ``64k``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size must not be negative, got {value}")
        return value
    text = str(value).strip().lower().removesuffix("b")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(float(number) * factor)
    except ValueError:
        raise ValueError(f"expected a size such as 512m or 2g, got {value!r}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return number


def _port(value: Any) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"expected a TCP port (0-65535), got {value!r}")
    return number


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected an integer seed, got {value!r}")
    return int(value)


def _non_negative_float(value: Any) -> float:
    number = float(str(value).removesuffix("s")) if isinstance(value, str) else float(value)
    if number < 0:
        raise ValueError(f"expected a non-negative number of seconds, got {value!r}")
    return number


def _seconds(value: Any) -> float:
    """Seconds from a number or a string such as ``100ms`` or ``2s``."""
    if isinstance(value, str) and value.strip().endswith("ms"):
        return _non_negative_float(value.strip()[:-2]) / 1000.0
    return _non_negative_float(value)


def _positive_seconds(value: Any) -> float:
    number = _seconds(value)
    if number <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return number


def _fraction(value: Any) -> float:
    number = float(value)
    if not 0.0 < number <= 1.0:
        raise ValueError(f"expected a fraction within (0, 1], got {value!r}")
    return number


def _at_least_one(value: Any) -> float:
    number = float(value)
    if number < 1.0:
        raise ValueError(f"expected a number >= 1, got {value!r}")
    return number


KEYS: dict[str, ConfKey] = {key.name: key for key in [
    ConfKey("task.maxFailures", 4, _positive_int, "Failures of one task (across its attempts) before the job fails."),
    ConfKey("stage.maxConsecutiveAttempts", 4, _positive_int, "Consecutive attempts of a stage (fetch failures) before the job fails."),
    ConfKey("locality.wait", 3.0, _non_negative_float, "Seconds to wait for a more local slot before relaxing locality (process -> node -> any)."),
    ConfKey("executor.cores", 1, _positive_int, "Task slots per executor."),
    ConfKey("executor.memory", "256m", parse_size, "Memory budget per executor's block manager (cached blocks)."),
    ConfKey("shuffle.memory", "256m", parse_size, "Memory per executor for shuffle buffers (map-side combine, sorting, merging), shared by its task slots; past it, data spills to disk."),
    ConfKey("reducer.maxSizeInFlight", "48m", parse_size, "Bytes of map outputs a reduce task requests from other executors and has not yet consumed."),
    ConfKey("executor.heartbeatInterval", 1.0, _non_negative_float, "Seconds between executor heartbeats."),
    ConfKey("network.timeout", 10.0, _non_negative_float, "Seconds without a heartbeat before an executor is declared lost."),
    ConfKey("shuffle.fetchTimeout", 120.0, _non_negative_float, "Seconds a reduce task waits for a shuffle fetch reply before it is a fetch failure (the map output is recomputed)."),
    ConfKey("executor.startupTimeout", 30.0, _non_negative_float, "Seconds an executor process may take to start and register."),
    ConfKey("local.dir", None, str, "Directory for block files (default: a fresh temporary directory per context)."),
    ConfKey("ui.showConsoleProgress", True, _bool, "Show the console progress bar while a job runs (only when stderr is a terminal)."),
    ConfKey("scheduler.mode", "FIFO", str, "Order across concurrent jobs (FIFO)."),
    ConfKey("speculation", False, _bool, "Run a copy of a slow task on another executor; the first to finish wins, the other is killed."),
    ConfKey("speculation.interval", 0.1, _positive_seconds, "Seconds between checks for tasks to speculate."),
    ConfKey("speculation.multiplier", 1.5, _at_least_one, "A task is slow when it has run this many times the median run time of its stage's successful tasks."),
    ConfKey("speculation.quantile", 0.75, _fraction, "Fraction of a stage's tasks that must have succeeded before speculation is considered."),
    ConfKey("speculation.minTaskRuntime", 0.1, _seconds, "Seconds a task must have run before it may be speculated (`100ms` works too)."),
    ConfKey("excludeOnFailure.enabled", False, _bool, "Stop scheduling on executors that keep failing tasks (Spark's excludeOnFailure)."),
    ConfKey("excludeOnFailure.task.maxTaskAttemptsPerExecutor", 1, _positive_int, "Failures of one task on one executor before that task may not run there again (in its stage attempt)."),
    ConfKey("excludeOnFailure.stage.maxFailedTasksPerExecutor", 2, _positive_int, "Different tasks failed on one executor before it gets no more tasks of that stage attempt."),
    ConfKey("excludeOnFailure.application.maxFailedTasksPerExecutor", 2, _positive_int, "Task failures on one executor (in stage attempts that succeeded, within the timeout) before it is excluded for every job."),
    ConfKey("excludeOnFailure.timeout", 3600.0, _positive_seconds, "Seconds an executor stays excluded, and a failure is remembered."),
    ConfKey("barrier.sync.timeout", 31536000.0, _non_negative_float, "Seconds a barrier task's barrier() or allGather() call waits for the other tasks of its stage before it fails (Spark's default: a year)."),
    ConfKey("tracing", False, _bool, "Record actor events in the driver (and executors) for tracing."),
    ConfKey("eventLog.enabled", False, _bool, "Write a Spark event log (JSON lines in Spark's format, for Spark's History Server) into `eventLog.dir`."),
    ConfKey("eventLog.dir", "/tmp/spark-events", str, "Directory (or `file:` URI) for Spark event logs; created if missing."),
    ConfKey("trace.dir", None, str, "Trace directory (implies `tracing`): the driver and every executor process write their actor events to `<system>-<pid>.jsonl`, the driver its listener events to `listener.jsonl` and the application's metadata to `app.json`; `sparklet trace export/report/show` read it."),
    ConfKey("ui.enabled", False, _bool, "Serve the live UI (pages and a JSON API) from the driver while the application runs."),
    ConfKey("ui.port", None, _port, "Port of the live UI; setting it turns the UI on (default: any free port; the address is `sc.uiWebUrl`)."),
    ConfKey("ui.host", "127.0.0.1", str, "Address the live UI listens on (loopback unless told otherwise)."),
    ConfKey("sim.seed", 0, _seed, "Seed of the simulated master `sim[N]`: the same seed replays the same run, message for message."),
]}


class Conf:
    """Validated configuration of one context."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {
            name: None if key.default is None else key.kind(key.default) for name, key in KEYS.items()
        }
        for name, value in (values or {}).items():
            self.set(name, value)

    @staticmethod
    def _canonical(name: str) -> str:
        bare = name.removeprefix("spark.")
        if bare not in KEYS:
            close = difflib.get_close_matches(bare, KEYS, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(sorted(KEYS))}"
            raise KeyError(f"unknown configuration key {name!r}{hint}")
        return bare

    def set(self, name: str, value: Any) -> "Conf":
        bare = self._canonical(name)
        key = KEYS[bare]
        try:
            self._values[bare] = None if value is None and key.default is None else key.kind(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"configuration {bare}: {exc}") from None
        return self

    def get(self, name: str) -> Any:
        return self._values[self._canonical(name)]

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self._values.items())

    @staticmethod
    def table_markdown() -> str:
        rows = ["| key | default | meaning |", "| --- | --- | --- |"]
        rows += [f"| `{k.name}` | `{k.default}` | {k.doc} |" for k in KEYS.values()]
        return "\n".join(rows)
