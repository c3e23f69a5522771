"""Spilled runs and their merge, shared by the writer and the reader.

A *run* is what one spill wrote: a :class:`~sparklet.shuffle._format.RunFile` with one
segment per partition (the reader has one partition), each sorted by the spill's *sort
key*: ``hash(key)`` when combining without an ordering, ``key_ordering(key)`` when an
ordering was asked.

Why the builtin ``hash`` is enough: a run never leaves the process that wrote it, and
within one process ``hash`` is stable and agrees with ``==`` for every key a dict accepts
(``1 == 1.0 == True`` hash alike), which a home-made portable hash would have to
reimplement. Keys need not be orderable: runs are merged on the sort key only
(``heapq.merge`` breaks ties by run, never by record) and records whose sort keys are
equal are told apart by equality (a small dict per group of equal sort keys).

Merging holds one decoded batch per open run. At most :data:`FAN_IN` runs are merged at
once; with more, the oldest ``FAN_IN`` are first merged into one (a pass), so the open
batches stay within what the caller planned whatever the number of spills.

Theory checklist (tests in ``tests/test_shuffle_*.py``):

* equal keys from different runs come out once, combined — ``test_forced_spills_*``;
* keys that are not mutually comparable merge — ``test_incomparable_keys_*``;
* more runs than ``FAN_IN`` merge in passes — ``test_many_runs_merge_in_passes``.
"""

from __future__ import annotations

import heapq
import os
import uuid
from operator import itemgetter
from typing import Any, Callable, Iterator

from sparklet.actors import SparkletInternalError
from sparklet.shuffle._format import RunCursor, RunFile, Sink, SpillFile

__all__ = ["FAN_IN", "RunSet", "batch_plan", "write_buffer", "merge_combining", "merge_ordered", "keyed", "keyed_entries"]

FAN_IN = 16
_first = itemgetter(0)


def keyed(records: list, sort_key: Callable[[Any], Any] | None) -> Iterator[tuple[Any, tuple]]:
    """``(sort_key(key), record)`` pairs for a list of records; ``sort_key=None`` means ``hash``."""
    if sort_key is None:
        return zip(map(hash, map(_first, records)), records)
    return zip(map(sort_key, map(_first, records)), records)


def keyed_entries(keys: list, values: Callable[[Any], Any], sort_key: Callable[[Any], Any] | None
                  ) -> Iterator[tuple[Any, tuple]]:
    """``(sort_key(key), (key, values(key)))`` for sorted ``keys`` of an in-memory map."""
    return zip(map(hash if sort_key is None else sort_key, keys), zip(keys, map(values, keys)))


def _keyed_batches(batches: Iterator[list], sort_key: Callable[[Any], Any] | None) -> Iterator[tuple[Any, tuple]]:
    for batch in batches:
        yield from keyed(batch, sort_key)


def merge_combining(streams: list[Iterator[tuple[Any, tuple]]], merge_combiners: Callable[[Any, Any], Any],
                    reverse: bool = False) -> Iterator[tuple[Any, Any]]:
    """Merge sorted ``(sort_key, (key, combiner))`` streams; each key comes out once, its
    combiners from every stream merged with ``merge_combiners``."""
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_first, reverse=reverse)
    pending_sort = pending_key = pending_value = None
    group: dict | None = None  # the keys of a group of equal sort keys, once it has two distinct keys
    started = False
    for sort, (key, value) in merged:
        if started and sort == pending_sort:
            if group is None:
                if key is pending_key or key == pending_key:
                    pending_value = merge_combiners(pending_value, value)
                    continue
                group = {pending_key: pending_value}
            if key in group:
                group[key] = merge_combiners(group[key], value)
            else:
                group[key] = value
            continue
        if started:
            if group is None:
                yield pending_key, pending_value
            else:
                yield from group.items()
                group = None
        started = True
        pending_sort, pending_key, pending_value = sort, key, value
    if started:
        if group is None:
            yield pending_key, pending_value
        else:
            yield from group.items()


def merge_ordered(streams: list[Iterator[tuple[Any, tuple]]], reverse: bool = False) -> Iterator[tuple]:
    """Merge sorted ``(sort_key, record)`` streams into records, in order."""
    if len(streams) == 1:
        return map(itemgetter(1), streams[0])
    return map(itemgetter(1), heapq.merge(*streams, key=_first, reverse=reverse))


class RunSet:
    """The runs one writer or reader spilled, all in one :class:`SpillFile` made at the
    first spill, and how to merge them.

    ``combine`` is the ``mergeCombiners`` function (runs hold combiners) or ``None``
    (runs hold records: merged in order, or concatenated when ``sort_key`` is
    ``"concat"``). :meth:`discard` removes the file.
    """

    def __init__(self, directory: str, prefix: str, parts: int, *, sort_key: Any, reverse: bool,
                 combine: Callable[[Any, Any], Any] | None, codec_id: int, coalesce: int = Sink.COALESCE) -> None:
        self.directory = directory
        self.prefix = prefix
        self.parts = parts
        self.sort_key = sort_key  # None (hash), a key_ordering function, or "concat"
        self.reverse = reverse
        self.combine = combine
        self.codec_id = codec_id
        self.coalesce = coalesce
        self.strict = os.environ.get("SPARKLET_STRICT") == "1"  # validate_state() after every change (tests)
        # Invariant: the live runs, oldest first, all in self.file (None until the first spill).
        self.runs: list[RunFile] = []
        self.file: SpillFile | None = None

    @property
    def path(self) -> str:
        return os.path.join(self.directory, f"{self.prefix}.spill")

    def _sink(self) -> Sink:
        if self.file is None:
            self.file = SpillFile(self.path, self.coalesce)
        return self.file.sink

    def write_run(self, parts: list, per_batch: int, batch_bytes: int) -> RunFile:
        """Spill ``parts``: per partition, its records already in the run's order, as a
        list or an iterator."""
        sink = self._sink()
        offsets = [sink.position]
        records = 0
        for records_of_part in parts:
            if isinstance(records_of_part, list):
                sink.write_batches(records_of_part, per_batch, self.codec_id)
                records += len(records_of_part)
            else:
                records += sink.write_stream(records_of_part, per_batch, self.codec_id)
            offsets.append(sink.position)
        run = RunFile(offsets, records, batch_bytes)
        self.runs.append(run)
        if self.strict:
            self.validate_state()
        return run

    # -- merging ----------------------------------------------------------------------------------------
    def cursors(self, runs: list[RunFile] | None = None) -> list[RunCursor]:
        """Cursors over ``runs`` (default: all live runs); nothing to close."""
        runs = self.runs if runs is None else runs
        if not runs:
            return []
        assert self.file is not None
        fd = self.file.read_fd()
        return [RunCursor(run, fd, self.file.path) for run in runs]

    def stream(self, cursors: list[RunCursor], part: int, extra: Iterator[tuple] | None = None) -> Iterator[Any]:
        """The merged records of partition ``part`` of the runs under ``cursors`` (and
        ``extra``, ``(sort key, record)`` pairs already sorted the same way)."""
        if self.sort_key == "concat":
            raise AssertionError("concatenated runs are copied, not streamed")
        streams = [_keyed_batches(cursor.batches(part), self.sort_key) for cursor in cursors]
        if extra is not None:
            streams.append(extra)
        if not streams:
            return iter(())
        if self.combine is not None:
            return merge_combining(streams, self.combine, self.reverse)
        return merge_ordered(streams, self.reverse)

    def copy_part(self, sink: Sink, part: int) -> None:
        """Append partition ``part`` of every live run to ``sink``, bytes as they are."""
        if not self.runs:
            return
        assert self.file is not None
        fd = self.file.read_fd()
        for run in self.runs:
            start, end = run.offsets[part], run.offsets[part + 1]
            sink.copy_from(self.file.path, start, end - start, fd)

    def reduce_to_fan_in(self, per_batch: int, batch_bytes: int, note_open: Callable[[int], None]) -> int:
        """Merge the oldest runs, ``FAN_IN`` at a time, until at most ``FAN_IN`` remain,
        telling ``note_open`` the estimated bytes each pass holds. Returns the passes.
        The merged run is appended to the same file (its space is freed with the file)."""
        passes = 0
        while len(self.runs) > FAN_IN:
            group, rest = self.runs[:FAN_IN], self.runs[FAN_IN:]
            if self.sort_key != "concat":  # concatenation copies in the kernel and holds nothing
                note_open(sum(run.batch_bytes for run in group) + batch_bytes)
            self.runs = rest + [self._merge_runs(group, per_batch)]
            passes += 1
            if self.strict:
                self.validate_state()
        return passes

    def _merge_runs(self, group: list[RunFile], per_batch: int) -> RunFile:
        assert self.file is not None
        sink = self.file.sink
        cursors = self.cursors(group)
        offsets = [sink.position]
        records = 0
        for part in range(self.parts):
            if self.sort_key == "concat":
                fd = self.file.read_fd()
                for run in group:
                    start, end = run.offsets[part], run.offsets[part + 1]
                    sink.copy_from(self.file.path, start, end - start, fd)
            else:
                records += sink.write_stream(self.stream(cursors, part), per_batch, self.codec_id)
            offsets.append(sink.position)
        if self.sort_key == "concat":
            records = sum(run.records for run in group)
        return RunFile(offsets, records, max(run.batch_bytes for run in group))

    def validate_state(self) -> None:
        """Check the invariants (strict mode runs it after every spill and pass)."""
        def check(condition: bool, what: str) -> None:
            if not condition:
                raise SparkletInternalError(f"shuffle spill state broken: {what}; runs={self.runs!r}. Please report it.")

        check(not self.runs or self.file is not None, "runs without a spill file")
        end = self.file.sink.position if self.file is not None else 0
        previous_end = 0
        for run in self.runs:
            check(len(run.offsets) == self.parts + 1, f"a run with {len(run.offsets) - 1} parts, not {self.parts}")
            check(all(a <= b for a, b in zip(run.offsets, run.offsets[1:])), "decreasing offsets in a run")
            check(previous_end <= run.offsets[0] and run.offsets[-1] <= end, "runs overlap or pass the file's end")
            check(run.records >= 0 and run.batch_bytes >= 0, "negative counts")
            previous_end = run.offsets[-1]

    def discard(self) -> None:
        """Remove the spill file; forget the runs."""
        if self.file is not None:
            self.file.discard()
            self.file = None
        self.runs = []

    @staticmethod
    def unique_prefix(stem: str) -> str:
        return f"{stem}-{uuid.uuid4().hex[:12]}"


def write_buffer(budget: int) -> int:
    """Bytes a sink may coalesce: 64 KiB, less for small budgets (at least 4 KiB)."""
    return max(4 << 10, min(Sink.COALESCE, budget // 16))


def batch_plan(budget: int, per_record: int, batch_size: int) -> tuple[int, int]:
    """Records per frame and the estimated bytes of one decoded frame, so that a merge
    of ``FAN_IN`` runs holds at most about ``budget * FAN_IN / (FAN_IN + 1)``."""
    per_batch = max(1, min(batch_size, budget // (FAN_IN + 1) // max(1, per_record)))
    return per_batch, per_batch * per_record
