"""Files, frames and failures: what a writer leaves behind (and not), the segment format,
corrupt input, argument errors, and the package's layering."""

from __future__ import annotations

import ast
import os
import pickle
import struct
from pathlib import Path

import cloudpickle
import pytest

from sparklet.shuffle import (
    Aggregator, MapOutput, ShuffleReader, ShuffleWriter, decode_segment, read_segment, remove_map_output,
)
from sparklet.shuffle._format import encode_batch
from sparklet.shuffle._sizes import sizeof

from test_shuffle_support import SUM, check_output, files, partitioner, word_records


def writer(directory, *, budget=1 << 30, aggregator=None, map_side=False, partitions=3, **kwargs) -> ShuffleWriter:
    return ShuffleWriter(shuffle_id=3, map_id=kwargs.pop("map_id", 0), num_partitions=partitions,
                         partition_of=partitioner(partitions), aggregator=aggregator, map_side_combine=map_side,
                         memory_budget=budget, directory=str(directory), **kwargs)


class Boom(Exception):
    pass


def failing(records, after):
    for i, record in enumerate(records):
        if i == after:
            raise Boom("the task failed")
        yield record


# -- the data file and what it says ----------------------------------------------------------------------

@pytest.mark.parametrize("map_side", [False, True])
@pytest.mark.parametrize("budget", [1 << 30, 2048])
def test_output_offsets_sizes_and_records_match_the_file(map_side, budget, tmp_path):
    records = word_records(2000, vocabulary=300)
    output = writer(tmp_path, budget=budget, aggregator=SUM if map_side else None, map_side=map_side,
                    partitions=5).write(records)
    check_output(output)
    assert len(output.offsets) == 6 and len(output.sizes) == 5
    assert output.records == (len({k for k, _ in records}) if map_side else len(records))
    assert os.path.basename(output.path).startswith("shuffle_3_0_") and output.path.endswith(".data")
    assert files(tmp_path) == [os.path.basename(output.path)]  # no spill file left
    remove_map_output(output)
    remove_map_output(output)  # twice is fine
    assert files(tmp_path) == []


def test_map_output_is_a_frozen_value():
    output = MapOutput("/x", (0, 3, 3, 10), 4, 10, 100, 0)
    assert output.sizes == (3, 0, 7)
    with pytest.raises(Exception):
        output.records = 5  # type: ignore[misc]


def test_two_attempts_of_one_map_task_do_not_collide(tmp_path):
    first = writer(tmp_path).write([(1, 1)])
    second = writer(tmp_path).write([(1, 2)])
    assert first.path != second.path
    assert list(decode_segment(read_segment(first.path, 0, first.bytes_written))) == [(1, 1)]
    remove_map_output(first)
    remove_map_output(second)


def test_read_segment_is_a_plain_file_read(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert read_segment(str(path), 2, 5) == b"23456"
    assert read_segment(str(path), 10, 0) == b""
    with pytest.raises(ValueError, match="ends before"):
        read_segment(str(path), 8, 5)
    with pytest.raises(ValueError, match="non-negative"):
        read_segment(str(path), -1, 5)


# -- abort and failure -----------------------------------------------------------------------------------

@pytest.mark.parametrize("map_side", [False, True])
def test_failed_write_leaves_no_file(map_side, tmp_path):
    w = writer(tmp_path, budget=1024, aggregator=SUM if map_side else None, map_side=map_side)
    with pytest.raises(Boom):
        w.write(failing(word_records(3000), after=2500))
    assert w.spills > 0  # it had spilled before failing
    assert files(tmp_path) == []
    w.abort()  # what the runtime does on failure: harmless after the cleanup
    assert files(tmp_path) == []


def test_abort_after_a_write_removes_the_output(tmp_path):
    w = writer(tmp_path)
    output = w.write(word_records(100))
    assert os.path.exists(output.path)
    w.abort()
    assert files(tmp_path) == []
    w.validate_state()


@pytest.mark.parametrize("map_side", [False, True])
def test_abort_during_a_write_stops_it_and_removes_its_files(map_side, tmp_path):
    """abort() may come while write() runs (a task killed): write stops at its next
    check with an error, and no file remains."""
    w = writer(tmp_path, budget=1024, aggregator=SUM if map_side else None, map_side=map_side)
    records = word_records(4000)

    def records_then_abort():
        for i, record in enumerate(records):
            if i == 2000:
                w.abort()
            yield record

    with pytest.raises(RuntimeError, match="aborted"):
        w.write(records_then_abort())
    assert files(tmp_path) == []
    w.validate_state()
    with pytest.raises(RuntimeError, match="aborted"):
        w.write([])


def test_a_writer_writes_once(tmp_path):
    w = writer(tmp_path)
    output = w.write([])
    with pytest.raises(RuntimeError, match="once"):
        w.write([])
    remove_map_output(output)


# -- the reader's spill file -----------------------------------------------------------------------------

def _spilling_reader(tmp_path):
    output = writer(tmp_path, partitions=1).write(word_records(4000))
    segment = read_segment(output.path, 0, output.bytes_written)
    remove_map_output(output)
    reader = ShuffleReader(aggregator=SUM, map_side_combined=False, key_ordering=None, memory_budget=2048,
                           directory=str(tmp_path))
    return reader, segment


def test_reader_removes_runs_when_done(tmp_path):
    reader, segment = _spilling_reader(tmp_path)
    assert sum(1 for _ in reader.read([segment])) > 0
    assert reader.spills > 0 and files(tmp_path) == []


def test_reader_removes_runs_when_abandoned(tmp_path):
    reader, segment = _spilling_reader(tmp_path)
    records = reader.read([segment])
    next(records)
    assert len(files(tmp_path)) == 1  # the spill file, while merging
    records.close()
    assert files(tmp_path) == []
    reader.close()  # also fine


def test_reader_removes_runs_when_a_fetch_fails(tmp_path):
    reader, segment = _spilling_reader(tmp_path)

    def segments():
        yield segment
        raise Boom("fetch failed")

    with pytest.raises(Boom):
        list(reader.read(segments()))
    assert reader.spills > 0 and files(tmp_path) == []


def test_a_reader_reads_once(tmp_path):
    reader = ShuffleReader(aggregator=None, map_side_combined=False, key_ordering=None, memory_budget=1024,
                           directory=str(tmp_path))
    assert list(reader.read([])) == []
    with pytest.raises(RuntimeError, match="once"):
        reader.read([])


# -- the segment format ----------------------------------------------------------------------------------

def test_segments_concatenate_and_empty_is_empty():
    a, b = encode_batch([(1, "x")], 0), encode_batch([(None, 2), ((1,), 3)], 1)
    assert list(decode_segment(a + b)) == [(1, "x"), (None, 2), ((1,), 3)]
    assert list(decode_segment(b"")) == []


def test_frames_pickle_with_the_highest_protocol_and_fall_back_to_cloudpickle():
    frame = encode_batch([(1, 2)], 0)
    codec_id, length = struct.unpack_from("<BI", frame)
    assert codec_id == 0 and length == len(frame) - 5
    assert frame[5:] == pickle.dumps([(1, 2)], pickle.HIGHEST_PROTOCOL)
    value = lambda x: x + 1  # noqa: E731 - pickle refuses a lambda
    ((key, fn),) = list(decode_segment(encode_batch([("f", value)], 0)))
    assert key == "f" and fn(1) == 2


@pytest.mark.parametrize("damage", ["truncated header", "truncated payload", "unknown codec"])
def test_corrupt_segments_are_reported(damage):
    frame = encode_batch([(1, 2), (3, 4)], 0)
    data = {"truncated header": frame + frame[:3], "truncated payload": frame[:-2],
            "unknown codec": bytes([99]) + frame[1:]}[damage]
    with pytest.raises(ValueError, match="corrupt shuffle segment"):
        list(decode_segment(data))


def test_unknown_compression_is_refused_naming_the_argument(tmp_path):
    with pytest.raises(ValueError, match="compression must be one of"):
        writer(tmp_path, compression="brotli")


@pytest.mark.parametrize("bad", [
    dict(num_partitions=0), dict(memory_budget=0), dict(memory_budget=1.5), dict(batch_size=0),
    dict(map_side_combine=True), dict(directory="/does/not/exist"), dict(partition_of=3),
])
def test_writer_argument_errors_name_the_argument(bad, tmp_path):
    arguments = dict(shuffle_id=0, map_id=0, num_partitions=2, partition_of=partitioner(2), aggregator=None,
                     map_side_combine=False, memory_budget=1024, directory=str(tmp_path))
    arguments.update(bad)
    name = next(iter(bad))
    with pytest.raises((ValueError, TypeError), match=name if name != "map_side_combine" else "aggregator"):
        ShuffleWriter(**arguments)


def test_reader_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="map_side_combined"):
        ShuffleReader(aggregator=None, map_side_combined=True, key_ordering=None, memory_budget=1, directory=str(tmp_path))
    with pytest.raises(ValueError, match="memory_budget"):
        ShuffleReader(aggregator=None, map_side_combined=False, key_ordering=None, memory_budget=-1,
                      directory=str(tmp_path))
    with pytest.raises(TypeError, match="key_ordering"):
        ShuffleReader(aggregator=None, map_side_combined=False, key_ordering="up", memory_budget=1,
                      directory=str(tmp_path))


def test_aggregator_checks_and_pickles():
    with pytest.raises(TypeError, match="mergeValue"):
        Aggregator(len, None, len)
    local = Aggregator(lambda v: [v], lambda c, v: c + [v], lambda a, b: a + b)
    back = pickle.loads(cloudpickle.dumps(local))
    assert back.mergeCombiners(back.createCombiner(1), [2]) == [1, 2]


def test_sizeof_counts_what_is_held():
    assert sizeof(None) == sizeof(True) == sizeof(7) == 0  # shared singletons
    assert sizeof("abc") > 0 and sizeof(10 ** 30) > 0
    small, big = sizeof([1000 + i for i in range(10)]), sizeof([1000 + i for i in range(10_000)])
    assert 500 < big / small < 2000  # scaled from a sample
    assert sizeof({"k": list(range(1000, 1100))}) > 100 * 28

    class Slotted:
        __slots__ = ("a",)

        def __init__(self) -> None:
            self.a = "x" * 1000

    assert sizeof(Slotted()) > 1000


def test_shuffle_imports_only_the_standard_library_cloudpickle_the_kernel_and_itself():
    root = Path(__file__).resolve().parent.parent / "shuffle"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                top = name.split(".")[0]
                assert top in {"cloudpickle", "lz4", "zstandard", "__future__"} or name.startswith("sparklet.shuffle") \
                    or name == "sparklet.actors" or top in __import__("sys").stdlib_module_names, \
                    f"{path.name} imports {name}"


def test_concatenation_falls_back_to_reads_where_copy_file_range_is_refused(tmp_path, monkeypatch):
    def refuse(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    records = word_records(3000)
    output = writer(tmp_path, budget=2048).write(records)
    assert output.spills > 0
    check_output(output)
    got = [r for i in range(3) for r in decode_segment(read_segment(output.path, output.offsets[i], output.sizes[i]))]
    assert sorted(got) == sorted(records)
    remove_map_output(output)


def test_a_key_error_from_merge_value_is_not_taken_for_a_new_key(tmp_path):
    """The combine loop guards only its own dict lookup: an aggregator's KeyError
    propagates (and the attempt leaves no file)."""
    def merge(combiner, value):
        if value == 13:
            raise KeyError("the user's lookup failed")
        return combiner + value

    w = writer(tmp_path, aggregator=Aggregator(lambda v: v, merge, merge), map_side=True)
    records = [("hot", 1)] * 5000 + [("hot", 13)] + [("hot", 1)] * 10
    with pytest.raises(KeyError, match="user's lookup"):
        w.write(records)
    assert files(tmp_path) == []
