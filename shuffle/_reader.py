"""The reduce side: one reduce partition's segments, aggregated and/or sorted.

:class:`ShuffleReader` owns the spill runs of one reduce task attempt and removes them
when its iterator ends, fails or is closed. Modes:

* neither aggregator nor ordering: the records as they come, batch by batch (one decoded
  batch held: constant memory);
* aggregator: a dict ``key -> combiner`` (``mergeCombiners`` when the map side combined,
  else ``createCombiner``/``mergeValue``); past the budget it spills runs sorted by
  ``hash(key)`` and ends with an external merge that yields each key once;
* ``key_ordering``: records (or, with an aggregator, combined entries) sorted by
  ``key_ordering(key)``, descending when ``ascending`` is false; past the budget, sorted
  runs and an external merge sort. Equal sort keys of distinct keys are told apart by
  equality, so keys themselves are never compared.

The memory bound is the writer's (see ``_sizes.py``): the held estimate stays within
``memory_budget`` plus one check's granularity (one decoded input batch); the final
merge holds one batch per open run, at most ``FAN_IN`` of them, planned to fit the
budget (``batch_plan``). ``peak_memory`` and ``spills`` tell what happened.

Review checklist (tests in ``tests/test_shuffle_{roundtrip,memory,files}.py``):
``test_roundtrip_*`` against a plain-Python reference, ``test_forced_spills_*``,
``test_reader_memory_bound*``, ``test_reader_removes_runs_*``, ``test_sorted_*``,
``test_incomparable_keys_*``, ``test_hash_collisions_*``.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable, Iterator

from sparklet.shuffle._format import check_codec, iter_batches
from sparklet.shuffle._runs import FAN_IN, RunSet, batch_plan, keyed, keyed_entries, write_buffer
from sparklet.shuffle._sizes import (
    POINTER, SPILL_SLOT, TABLE_SLOT, MemoryMeter, check_positive, sample_entries, sample_size, sizeof,
)
from sparklet.shuffle._writer import DEFAULT_BATCH_SIZE, Aggregator

__all__ = ["ShuffleReader"]

class ShuffleReader:
    """Reads one reduce partition; see the module docstring. One :meth:`read` per reader."""

    def __init__(self, *, aggregator: Aggregator | None, map_side_combined: bool,
                 key_ordering: Callable[[Any], Any] | None, ascending: bool = True, memory_budget: int,
                 directory: str, batch_size: int = DEFAULT_BATCH_SIZE, compression: str | None = None) -> None:
        if map_side_combined and aggregator is None:
            raise ValueError("map_side_combined=True needs an aggregator, got aggregator=None")
        if key_ordering is not None and not callable(key_ordering):
            raise TypeError(f"key_ordering must be callable or None, got {key_ordering!r}")
        if not os.path.isdir(directory):
            raise ValueError(f"directory must be an existing directory, got {directory!r}")
        self.aggregator = aggregator
        self.map_side_combined = bool(map_side_combined)
        self.key_ordering = key_ordering
        self.ascending = bool(ascending)
        self._reverse = key_ordering is not None and not self.ascending  # runs by hash are always ascending
        self.memory_budget = check_positive("memory_budget", memory_budget)
        self.batch_size = check_positive("batch_size", batch_size)
        self.directory = directory
        self._codec_id = check_codec(compression)  # of the spill runs only: they stay on this machine
        self._meter = MemoryMeter(self.memory_budget)
        self._runs = RunSet(directory, RunSet.unique_prefix("shuffle-read"), 1, sort_key=key_ordering,
                            reverse=self._reverse,
                            combine=aggregator.mergeCombiners if aggregator is not None else None,
                            codec_id=self._codec_id, coalesce=write_buffer(self.memory_budget))
        self._started = False
        self.spills = 0
        self.merge_passes = 0
        self.records_read = 0  # records (or map-side combiners) taken from the segments

    @property
    def peak_memory(self) -> int:
        """Peak estimated bytes held while reading."""
        return self._meter.peak

    def read(self, segments: Iterable[bytes]) -> Iterator[tuple[Any, Any]]:
        """The partition's records from ``segments`` (the raw bytes of this partition's
        segment of every map output, any order); see the module docstring."""
        if self._started:
            raise RuntimeError("a ShuffleReader reads once; make a new reader per task attempt")
        self._started = True
        if self.aggregator is not None:
            return self._read_combined(segments)
        if self.key_ordering is not None:
            return self._read_sorted(segments)
        return self._read_plain(segments)

    def close(self) -> None:
        """Remove the spill runs now (the iterator was abandoned)."""
        self._runs.discard()

    def validate_state(self) -> None:
        """Check the invariants (tests call it after reading)."""
        self._meter.validate_state()
        self._runs.validate_state()

    def __repr__(self) -> str:
        return (f"ShuffleReader(aggregator={self.aggregator is not None}, ordered={self.key_ordering is not None}, "
                f"budget={self.memory_budget}, spills={self.spills})")

    # -- modes ----------------------------------------------------------------------------------------
    def _read_plain(self, segments: Iterable[bytes]) -> Iterator:
        meter = self._meter
        for segment in segments:
            for batch in iter_batches(segment):
                if meter.peak == 0 and batch:
                    sampled, count = sample_size(batch)
                    meter.learn(sampled, count, POINTER)
                meter.note(len(batch) * meter.per_record)
                self.records_read += len(batch)
                yield from batch

    def _read_combined(self, segments: Iterable[bytes]) -> Iterator:
        try:
            aggregator = self.aggregator
            assert aggregator is not None
            meter = self._meter
            combiners: dict = {}
            stretch = meter.first_stretch
            taken = 0
            estimate = 0
            combined = self.map_side_combined
            create, merge_value, merge_combiners = (
                aggregator.createCombiner, aggregator.mergeValue, aggregator.mergeCombiners)
            for segment in segments:
                for batch in iter_batches(segment):
                    size = len(batch)
                    self.records_read += size
                    start = 0
                    while start < size:  # in pieces that end where the next check is due
                        end = min(size, start + stretch - taken)
                        piece = batch if start == 0 and end == size else batch[start:end]
                        if combined:
                            for key, combiner in piece:
                                if key in combiners:
                                    combiners[key] = merge_combiners(combiners[key], combiner)
                                else:
                                    combiners[key] = combiner
                        else:
                            for key, value in piece:
                                if key in combiners:
                                    combiners[key] = merge_value(combiners[key], value)
                                else:
                                    combiners[key] = create(value)
                        taken += end - start
                        start = end
                        if taken >= stretch:
                            estimate = self._measure(combiners)
                            if meter.observe(estimate):
                                self._spill_combiners(combiners)
                                estimate = 0
                            stretch, taken = meter.stretch(estimate), 0
            estimate = self._measure(combiners)
            meter.observe(estimate)
            runs = self._runs
            order, reverse = self.key_ordering, self._reverse
            if not runs.runs:
                keys = list(combiners) if order is None else sorted(combiners, key=order, reverse=reverse)
                yield from zip(keys, map(combiners.__getitem__, keys))
                return
            per_batch, batch_bytes = batch_plan(self.memory_budget, meter.per_record, self.batch_size)
            if estimate + sum(run.batch_bytes for run in runs.runs[:FAN_IN]) > self.memory_budget:
                self._spill_combiners(combiners)
                estimate = 0
            self.merge_passes = runs.reduce_to_fan_in(per_batch, batch_bytes, meter.note)
            meter.note(estimate + sum(run.batch_bytes for run in runs.runs))
            keys = sorted(combiners, key=hash if order is None else order, reverse=reverse)
            yield from runs.stream(runs.cursors(), 0, keyed_entries(keys, combiners.__getitem__, order))
        finally:
            self._runs.discard()

    def _read_sorted(self, segments: Iterable[bytes]) -> Iterator:
        try:
            order = self.key_ordering
            assert order is not None
            reverse = self._reverse
            meter = self._meter
            held: list = []
            stretch = meter.first_stretch
            taken = 0
            estimate = 0
            for segment in segments:
                for batch in iter_batches(segment):
                    size = len(batch)
                    self.records_read += size
                    start = 0
                    while start < size:  # in pieces that end where the next check is due
                        end = min(size, start + stretch - taken)
                        held.extend(batch if start == 0 and end == size else batch[start:end])
                        taken += end - start
                        start = end
                        if taken >= stretch:
                            estimate = self._measure_records(held)
                            if meter.observe(estimate):
                                self._spill_records(held)
                                estimate = 0
                            stretch, taken = meter.stretch(estimate), 0
            estimate = self._measure_records(held)
            meter.observe(estimate)
            sort_key = self._record_sort_key()
            runs = self._runs
            if not runs.runs:
                held.sort(key=sort_key, reverse=reverse)
                yield from held
                return
            per_batch, batch_bytes = batch_plan(self.memory_budget, meter.per_record, self.batch_size)
            if estimate + sum(run.batch_bytes for run in runs.runs[:FAN_IN]) > self.memory_budget:
                self._spill_records(held)
                estimate = 0
            self.merge_passes = runs.reduce_to_fan_in(per_batch, batch_bytes, meter.note)
            meter.note(estimate + sum(run.batch_bytes for run in runs.runs))
            held.sort(key=sort_key, reverse=reverse)
            yield from runs.stream(runs.cursors(), 0, keyed(held, order))
        finally:
            self._runs.discard()

    # -- memory and spills ----------------------------------------------------------------------------

    def _ordering_extra(self, key: Any) -> int:
        """Bytes the sort key of ``key`` adds while sorting (nothing when ``key_ordering``
        returns the key itself)."""
        sort_key = self.key_ordering(key)  # type: ignore[misc]
        return 0 if sort_key is key else sizeof(sort_key)

    def _measure(self, combiners: dict) -> int:
        n = len(combiners)
        if n == 0:
            return 0
        extra = self._ordering_extra if self.key_ordering is not None else None
        sampled, count = sample_entries(combiners, extra=extra)
        self._meter.learn(sampled, count, max(sys.getsizeof(combiners) // n, TABLE_SLOT) + SPILL_SLOT)
        return n * self._meter.per_record

    def _measure_records(self, held: list) -> int:
        n = len(held)
        if n == 0:
            return 0
        picks = held if n <= 8 else [held[int(i * n / 8)] for i in range(8)]
        sampled = sum([sizeof(record) + self._ordering_extra(record[0]) for record in picks])
        self._meter.learn(sampled, len(picks), POINTER + 1 + SPILL_SLOT)
        return n * self._meter.per_record

    def _record_sort_key(self) -> Callable[[tuple], Any]:
        order = self.key_ordering
        assert order is not None
        return lambda record: order(record[0])

    def _spill_combiners(self, combiners: dict) -> None:
        if not combiners:
            return
        order = self.key_ordering
        keys = sorted(combiners, key=hash if order is None else order, reverse=self._reverse)
        per_batch, batch_bytes = batch_plan(self.memory_budget, self._meter.per_record, self.batch_size)
        self._runs.write_run([zip(keys, map(combiners.__getitem__, keys))], per_batch, batch_bytes)
        self.spills += 1
        combiners.clear()

    def _spill_records(self, held: list) -> None:
        if not held:
            return
        held.sort(key=self._record_sort_key(), reverse=self._reverse)
        per_batch, batch_bytes = batch_plan(self.memory_budget, self._meter.per_record, self.batch_size)
        self._runs.write_run([held], per_batch, batch_bytes)
        self.spills += 1
        held.clear()
