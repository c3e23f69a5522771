"""The map side: one task's records, partitioned (and combined) into one data file.

:class:`ShuffleWriter` is Spark's sort shuffle writer for Python records. It owns, for
one map task attempt, the data file ``shuffle_<shuffle>_<map>_<token>.data`` (written as
``.inprogress`` and renamed when complete) and its spill file. It keeps the records it
holds within ``memory_budget`` (estimated by sampling, see ``_sizes.py``):

* plain (no aggregator, or no map-side combine): one list per reduce partition,
  ``partition_of`` called once per record. A spill writes the lists as a run, partition
  by partition; the end concatenates, per partition, each run's segment (copied in the
  kernel, never decoded) and the in-memory rest.
* combining (aggregator and ``map_side_combine``): one dict ``key -> combiner`` with
  ``createCombiner``/``mergeValue``; ``partition_of`` is called once per key at a spill
  or the end. A spill writes, per partition, the entries sorted by ``hash(key)``; the end
  merges the runs partition by partition, combining equal keys with ``mergeCombiners``
  (see ``_runs.py``).

:meth:`ShuffleWriter.write_combining` takes a *feed* instead of records: the caller's
own loop folds records into the combining dict between the writer's memory checks (the
fused map-side combine, ``rdd/_combine.py``).

Invariants: a :class:`MapOutput` is returned only once its data file is complete and
renamed; offsets are non-decreasing, start at 0 and end at the file size; after
:meth:`abort` (or a failed :meth:`write`) no file of this writer remains.

Review checklist (tests in ``tests/test_shuffle_{roundtrip,memory,files}.py``):
``test_roundtrip_*`` (every mode against a plain-Python reference), ``test_forced_spills_*``,
``test_writer_memory_bound*``, ``test_abort_*`` and ``test_failed_write_*``,
``test_output_offsets_*``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import uuid
from itertools import islice
from typing import Any, Callable, Iterable

from sparklet.actors import SparkletInternalError
from sparklet.shuffle._format import DEFAULT_COMPRESSION, Sink, check_codec, remove_quietly
from sparklet.shuffle._runs import FAN_IN, RunSet, batch_plan, keyed_entries, write_buffer
from sparklet.shuffle._sizes import POINTER, SPILL_SLOT, TABLE_SLOT, MemoryMeter, check_positive, sample_entries, sizeof

__all__ = ["Aggregator", "MapOutput", "ShuffleWriter", "remove_map_output", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 1024  # records per frame; see benchmarks/shuffle_codec.py
_END = object()
_HITS_RATIO = 20  # combine with try/except while fewer than 1 record in 20 brings a new key
_getsizeof = sys.getsizeof


class Aggregator:
    """How to combine the values of a key (PySpark's): ``createCombiner(v) -> C``,
    ``mergeValue(C, v) -> C``, ``mergeCombiners(C, C) -> C``."""

    __slots__ = ("createCombiner", "mergeValue", "mergeCombiners")

    def __init__(self, createCombiner: Callable[[Any], Any], mergeValue: Callable[[Any, Any], Any],
                 mergeCombiners: Callable[[Any, Any], Any]) -> None:
        for name, fn in (("createCombiner", createCombiner), ("mergeValue", mergeValue),
                         ("mergeCombiners", mergeCombiners)):
            if not callable(fn):
                raise TypeError(f"Aggregator {name} must be callable, got {fn!r}")
        self.createCombiner = createCombiner
        self.mergeValue = mergeValue
        self.mergeCombiners = mergeCombiners

    def __getstate__(self) -> tuple:
        return (self.createCombiner, self.mergeValue, self.mergeCombiners)

    def __setstate__(self, state: tuple) -> None:
        self.createCombiner, self.mergeValue, self.mergeCombiners = state

    def __repr__(self) -> str:
        return f"Aggregator({self.createCombiner!r}, {self.mergeValue!r}, {self.mergeCombiners!r})"


@dataclasses.dataclass(frozen=True)
class MapOutput:
    """What one map task leaves behind: one data file, segment ``r`` (reduce partition
    ``r``) at ``[offsets[r], offsets[r + 1])``."""

    path: str
    # Invariant: len(offsets) == partitions + 1, offsets[0] == 0, non-decreasing, offsets[-1] == bytes_written.
    offsets: tuple[int, ...]
    records: int  # written, after the map-side combine
    bytes_written: int
    peak_memory: int  # the writer's peak estimated bytes held
    spills: int

    @property
    def sizes(self) -> tuple[int, ...]:
        """Bytes per reduce partition."""
        offsets = self.offsets
        return tuple(offsets[i + 1] - offsets[i] for i in range(len(offsets) - 1))


def remove_map_output(output: MapOutput) -> None:
    """Delete a map output's data file (gone already is fine)."""
    remove_quietly(output.path)


def _sample_buckets(buckets: list[list]) -> tuple[int, int]:
    """Sampled :func:`sizeof` of held records: the newest and a middle one of up to 8
    partitions spread over the range (of the one partition: 8 spread records)."""
    if len(buckets) == 1:
        bucket = buckets[0]
        n = len(bucket)
        if n == 0:
            return 0, 0
        picks = [bucket[int(i * n / 8)] for i in range(min(8, n))] if n > 8 else bucket
    else:
        picks = []
        for bucket in buckets[::max(1, len(buckets) // 8)]:
            if bucket:
                picks.append(bucket[-1])
                picks.append(bucket[len(bucket) // 2])
        if not picks:
            return 0, 0
    return sum([sizeof(record) for record in picks]), len(picks)


class ShuffleWriter:
    """Writes one map task's records for ``num_partitions`` reduce partitions; see the
    module docstring. Not thread-safe, except that :meth:`abort` may come from another
    thread: the running :meth:`write` then stops at its next check."""

    def __init__(self, *, shuffle_id: int, map_id: int, num_partitions: int, partition_of: Callable[[Any], int],
                 aggregator: Aggregator | None, map_side_combine: bool, memory_budget: int, directory: str,
                 batch_size: int = DEFAULT_BATCH_SIZE, compression: str | None = DEFAULT_COMPRESSION) -> None:
        self.num_partitions = check_positive("num_partitions", num_partitions)
        if not callable(partition_of):
            raise TypeError(f"partition_of must be callable, got {partition_of!r}")
        if map_side_combine and aggregator is None:
            raise ValueError("map_side_combine=True needs an aggregator, got aggregator=None")
        if not os.path.isdir(directory):
            raise ValueError(f"directory must be an existing directory, got {directory!r}")
        self.shuffle_id = shuffle_id
        self.map_id = map_id
        self.partition_of = partition_of
        self.aggregator = aggregator
        self.combining = bool(map_side_combine)
        self.memory_budget = check_positive("memory_budget", memory_budget)
        self.batch_size = check_positive("batch_size", batch_size)
        self.directory = directory
        self._codec_id = check_codec(compression)
        stem = f"shuffle_{shuffle_id}_{map_id}_{uuid.uuid4().hex[:12]}"
        self.path = os.path.join(directory, stem + ".data")
        self._temp_path = self.path + ".inprogress"
        self._runs = RunSet(directory, stem, self.num_partitions, sort_key="concat" if not self.combining else None,
                            reverse=False, combine=aggregator.mergeCombiners if self.combining else None,
                            codec_id=self._codec_id, coalesce=write_buffer(self.memory_budget))
        self._meter = MemoryMeter(self.memory_budget)
        self._lock = threading.Lock()
        self._started = False
        self._writing = False  # write() is running: only its thread touches the files
        # Invariant: once aborted and not writing, no file of this writer exists; write() raises.
        self._aborted = False
        self._sink: Sink | None = None
        self.spills = 0
        self.merge_passes = 0
        self.output: MapOutput | None = None

    # -- public ---------------------------------------------------------------------------------------
    def write(self, records: Iterable[tuple[Any, Any]]) -> MapOutput:
        """Consume ``(key, value)`` records and write the data file; see the module docstring."""
        return self._write(records, None)

    def write_combining(self, feed: Callable[[dict, int], bool]) -> MapOutput:
        """Write the data file of a combining writer from a *feed* instead of records:
        ``feed(combiners, limit)`` folds about ``limit`` records (or all that are left)
        into the ``key -> combiner`` dict with the aggregator's functions and returns True
        once its input is exhausted. The writer measures and maybe spills between calls,
        so a feed that stops near ``limit`` (past it by at most what one of its input
        records yields) keeps the memory bound.
        This lets the caller run its record loop and the combine as one loop (see
        ``rdd/_combine.py``) instead of handing over one record at a time."""
        if not self.combining:
            raise ValueError("write_combining needs a combining writer (an aggregator and map_side_combine=True)")
        if not callable(feed):
            raise TypeError(f"feed must be callable, got {feed!r}")
        return self._write(None, feed)

    def _write(self, records: Iterable[tuple[Any, Any]] | None, feed: Callable[[dict, int], bool] | None) -> MapOutput:
        with self._lock:
            self._check_not_aborted()
            if self._started:
                raise RuntimeError(f"ShuffleWriter for map {self.map_id} of shuffle {self.shuffle_id} "
                                   "can write once; make a new writer per task attempt")
            self._started = self._writing = True
        try:
            if feed is not None:
                offsets, count = self._write_fed(feed)
            elif self.combining:
                offsets, count = self._write_combined(records)
            else:
                offsets, count = self._write_plain(records)
            with self._lock:
                self._check_not_aborted()
                os.replace(self._temp_path, self.path)
                self._writing = False
        except BaseException as exc:
            self._remove_files()
            with self._lock:
                self._writing = False
                aborted = self._aborted
            if aborted and not isinstance(exc, RuntimeError):
                raise RuntimeError(f"ShuffleWriter for map {self.map_id} of shuffle {self.shuffle_id} "
                                   "was aborted") from exc
            raise
        self.output = MapOutput(self.path, tuple(offsets), count, offsets[-1], self._meter.peak, self.spills)
        return self.output

    def abort(self) -> None:
        """Throw this attempt away: remove its spill file and its data file, partial or
        complete (a map output already returned is removed too: the attempt failed).

        From another thread while :meth:`write` runs, it only raises a flag: the writing
        thread stops at its next check (within one stretch of records), removes its
        files and raises ``RuntimeError`` (files are touched by one thread only)."""
        with self._lock:
            self._aborted = True
            if self._writing:
                return
        self._remove_files()

    def validate_state(self) -> None:
        """Check the invariants (tests call it after writing or aborting)."""
        self._meter.validate_state()
        self._runs.validate_state()
        output = self.output
        broken = None
        if self._aborted and not self._writing:
            left = [p for p in (self.path, self._temp_path, self._runs.path) if os.path.exists(p)]
            broken = f"aborted, yet files remain: {left}" if left else None
        elif output is not None:
            offsets = output.offsets
            if not (len(offsets) == self.num_partitions + 1 and offsets[0] == 0 and offsets[-1] == output.bytes_written
                    and all(a <= b for a, b in zip(offsets, offsets[1:]))):
                broken = f"offsets {offsets} do not fit {self.num_partitions} partitions of {output.bytes_written} bytes"
            elif self._runs.runs or os.path.exists(self._runs.path):
                broken = "spill runs left after the write"
        if broken:
            raise SparkletInternalError(f"{self!r}: {broken}. Please report it.")

    def __repr__(self) -> str:
        mode = "combining" if self.combining else "plain"
        return (f"ShuffleWriter(shuffle={self.shuffle_id}, map={self.map_id}, partitions={self.num_partitions}, "
                f"{mode}, budget={self.memory_budget})")

    # -- plain ----------------------------------------------------------------------------------------
    def _write_plain(self, records: Iterable) -> tuple[list[int], int]:
        n = self.num_partitions
        partition_of = self.partition_of
        meter = self._meter
        buckets: list[list] = [[] for _ in range(n)]
        only = buckets[0]
        it = iter(records)
        stretch = meter.first_stretch
        held = 0
        written = 0
        while True:
            if n == 1:
                only.extend(islice(it, stretch))
            else:
                for record in islice(it, stretch):
                    buckets[partition_of(record[0])].append(record)
            if self._aborted:
                self._check_not_aborted()
            now = len(only) if n == 1 else sum(map(len, buckets))
            exhausted = now - held < stretch
            held = now
            sampled, count = _sample_buckets(buckets)
            meter.learn(sampled, count, POINTER + 1)
            estimate = held * meter.per_record
            if meter.observe(estimate) and not exhausted:
                per_batch, batch_bytes = batch_plan(self.memory_budget, meter.per_record, self.batch_size)
                self._runs.write_run(buckets, per_batch, batch_bytes)
                self.spills += 1
                written += held
                for bucket in buckets:
                    bucket.clear()
                held = estimate = 0
            if exhausted:
                break
            stretch = meter.stretch(estimate)
        self._check_not_aborted()
        runs = self._runs
        per_batch, batch_bytes = batch_plan(self.memory_budget, meter.per_record, self.batch_size)
        self.merge_passes = runs.reduce_to_fan_in(per_batch, batch_bytes, meter.note)
        self._sink = sink = Sink(self._temp_path, write_buffer(self.memory_budget))
        offsets = [0]
        try:
            for part, bucket in enumerate(buckets):
                runs.copy_part(sink, part)
                sink.write_batches(bucket, per_batch, self._codec_id)
                offsets.append(sink.position)
        finally:
            sink.close()
        runs.discard()
        return offsets, written + held

    # -- combining ------------------------------------------------------------------------------------
    def _write_combined(self, records: Iterable) -> tuple[list[int], int]:
        """Combine an iterator of pairs, as a feed for :meth:`_write_fed` (which measures
        and spills between stretches)."""
        aggregator = self.aggregator
        assert aggregator is not None
        create, merge = aggregator.createCombiner, aggregator.mergeValue
        it = iter(records)
        mostly_hits = False

        def feed(combiners: dict, stretch: int) -> bool:
            nonlocal mostly_hits
            keys_before = len(combiners)
            if mostly_hits:  # a missing key costs an exception here, a hit one lookup less
                for key, value in islice(it, stretch):
                    try:
                        old = combiners[key]
                    except KeyError:  # only the lookup is guarded: a KeyError from merge propagates
                        combiners[key] = create(value)
                    else:
                        combiners[key] = merge(old, value)
            else:
                for key, value in islice(it, stretch):
                    if key in combiners:
                        combiners[key] = merge(combiners[key], value)
                    else:
                        combiners[key] = create(value)
            mostly_hits = (len(combiners) - keys_before) * _HITS_RATIO < stretch
            record = next(it, _END)
            if record is _END:
                return True
            key, value = record
            if key in combiners:
                combiners[key] = merge(combiners[key], value)
            else:
                combiners[key] = create(value)
            return False

        return self._write_fed(feed)

    def _write_fed(self, feed: Callable[[dict, int], bool]) -> tuple[list[int], int]:
        meter = self._meter
        combiners: dict = {}
        stretch = meter.first_stretch
        while True:
            exhausted = feed(combiners, stretch)
            if self._aborted:
                self._check_not_aborted()
            estimate = self._measure(combiners)
            if meter.observe(estimate) and not exhausted:
                self._spill_combiners(combiners)
                estimate = 0
            if exhausted:
                break
            stretch = meter.stretch(estimate)
        return self._finish_combined(combiners, estimate)

    def _finish_combined(self, combiners: dict, estimate: int) -> tuple[list[int], int]:
        self._check_not_aborted()
        meter = self._meter
        runs = self._runs
        per_batch, batch_bytes = batch_plan(self.memory_budget, meter.per_record, self.batch_size)
        if runs.runs:
            # The merge holds one batch per open run and the output batch: with the rest it
            # must fit the budget, or the rest goes to disk too (batch_plan makes them fit).
            if estimate + sum(run.batch_bytes for run in runs.runs[:FAN_IN]) + batch_bytes > self.memory_budget:
                self._spill_combiners(combiners)
                estimate = 0
            self.merge_passes = runs.reduce_to_fan_in(per_batch, batch_bytes, meter.note)
            meter.note(estimate + sum(run.batch_bytes for run in runs.runs) + batch_bytes)
        parts = self._keys_by_partition(combiners, sort=bool(runs.runs))
        self._sink = sink = Sink(self._temp_path, write_buffer(self.memory_budget))
        offsets = [0]
        count = 0
        cursors = runs.cursors()
        try:
            for part, keys in enumerate(parts):
                if cursors:
                    stream = runs.stream(cursors, part, keyed_entries(keys, combiners.__getitem__, None))
                    count += sink.write_stream(stream, per_batch, self._codec_id)
                else:
                    count += sink.write_stream(zip(keys, map(combiners.__getitem__, keys)), per_batch, self._codec_id)
                offsets.append(sink.position)
        finally:
            sink.close()
        runs.discard()
        return offsets, count

    def _measure(self, combiners: dict) -> int:
        """Estimated bytes held by ``combiners``: its table plus sampled entries."""
        n = len(combiners)
        if n == 0:
            return 0
        table = _getsizeof(combiners)
        sampled, count = sample_entries(combiners)
        self._meter.learn(sampled, count, max(table // n, TABLE_SLOT) + SPILL_SLOT)
        return n * self._meter.per_record

    def _keys_by_partition(self, combiners: dict, sort: bool) -> list[list]:
        n = self.num_partitions
        if n == 1:
            parts = [list(combiners)]
        else:
            partition_of = self.partition_of
            parts = [[] for _ in range(n)]
            for key in combiners:
                parts[partition_of(key)].append(key)
        if sort:
            for keys in parts:
                keys.sort(key=hash)
        return parts

    def _spill_combiners(self, combiners: dict) -> None:
        if not combiners:
            return
        parts = self._keys_by_partition(combiners, sort=True)
        per_batch, batch_bytes = batch_plan(self.memory_budget, self._meter.per_record, self.batch_size)
        get = combiners.__getitem__
        self._runs.write_run([zip(keys, map(get, keys)) for keys in parts], per_batch, batch_bytes)
        self.spills += 1
        combiners.clear()

    # -- cleanup --------------------------------------------------------------------------------------
    def _check_not_aborted(self) -> None:
        if self._aborted:
            raise RuntimeError(f"ShuffleWriter for map {self.map_id} of shuffle {self.shuffle_id} was aborted")

    def _remove_files(self) -> None:
        sink = self._sink
        if sink is not None:
            sink.discard()
        self._runs.discard()
        remove_quietly(self._temp_path)
        remove_quietly(self.path)

