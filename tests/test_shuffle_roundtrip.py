"""Writer-to-reader round trips in every mode against plain-Python references, with and
without spills, for awkward keys, any segment order and every codec."""

from __future__ import annotations

import random
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_shuffle_support import (
    MODES, SETTINGS, check_run, files, keys, records, run_shuffle, skewed_records, word_records,
)

maps_of = st.lists(records, min_size=1, max_size=3)


@pytest.mark.parametrize("mode", sorted(MODES))
@SETTINGS
@given(maps=maps_of, partitions=st.integers(1, 5), ascending=st.booleans())
def test_roundtrip_every_mode(mode, maps, partitions, ascending):
    with tempfile.TemporaryDirectory() as directory:
        run = run_shuffle(maps, partitions, mode, directory, ascending=ascending)
        check_run(run, maps, partitions, mode, ascending)
        assert all(output.spills == 0 for output in run.outputs)
        run.cleanup()
        assert files(directory) == []


@pytest.mark.parametrize("mode", sorted(MODES))
@SETTINGS
@given(maps=st.lists(skewed_records(), min_size=1, max_size=3), partitions=st.integers(1, 4),
       budget=st.sampled_from([512, 2048, 8192]))
def test_forced_spills_give_the_same_answers(mode, maps, partitions, budget):
    with tempfile.TemporaryDirectory() as directory:
        run = run_shuffle(maps, partitions, mode, directory, budget=budget)
        check_run(run, maps, partitions, mode)
        run.cleanup()
        assert files(directory) == []


@pytest.mark.parametrize("mode", sorted(MODES))
def test_forced_spills_happen_on_both_sides(mode, tmp_path):
    maps = [word_records(3000, seed=seed, vocabulary=2000) for seed in range(3)]
    run = run_shuffle(maps, 3, mode, str(tmp_path), budget=4096)
    check_run(run, maps, 3, mode)
    assert all(output.spills > 0 for output in run.outputs)
    if MODES[mode][0] is not None or MODES[mode][2] is not None:
        assert all(reader.spills > 0 for reader in run.readers)
    run.cleanup()
    assert files(str(tmp_path)) == []


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("budget", [1 << 30, 2048])
def test_edge_shapes(mode, budget, tmp_path):
    directory = str(tmp_path)
    cases = [
        ([[]], 1),                                # empty input, one partition
        ([[], []], 4),                            # empty maps
        ([[(1, 1)]], 1),                          # one record
        ([[("a", 1), ("b", 2)]], 9),              # more partitions than records
        ([[(None, 1), (None, 2)], [(None, 3)]], 2),  # None as a key, in two maps
        ([[((1, "a"), 1), ((1, "a"), 2), ((), 3)]], 3),  # tuple keys, the empty tuple
    ]
    for maps, partitions in cases:
        run = run_shuffle(maps, partitions, mode, directory, budget=budget)
        check_run(run, maps, partitions, mode)
        assert len(run.outputs[0].offsets) == partitions + 1
        run.cleanup()
    assert files(directory) == []


@pytest.mark.parametrize("mode", sorted(MODES))
@SETTINGS
@given(maps=st.lists(records, min_size=2, max_size=4), seed=st.integers(0, 1000),
       budget=st.sampled_from([512, 1 << 30]))
def test_segments_in_any_order(mode, maps, seed, budget):
    shuffle_segments = lambda segments: random.Random(seed).sample(segments, len(segments))  # noqa: E731
    with tempfile.TemporaryDirectory() as directory:
        run = run_shuffle(maps, 3, mode, directory, budget=budget, segment_order=shuffle_segments)
        check_run(run, maps, 3, mode)
        run.cleanup()


@pytest.mark.parametrize("mode", ["plain", "combine_map_side", "combine_reduce_side", "group_map_side"])
@pytest.mark.parametrize("budget", [1 << 30, 300])
def test_incomparable_keys_without_ordering(mode, budget, tmp_path):
    mixed = [1, "a", None, (1, "a"), ("a", 1), (None,), "1", -7, b"x", frozenset({1})]
    maps = [[(mixed[(i * 7 + j) % len(mixed)], i) for i in range(200)] for j in range(3)]
    run = run_shuffle(maps, 2, mode, str(tmp_path), budget=budget)
    check_run(run, maps, 2, mode)
    if budget < 1000:
        assert sum(output.spills for output in run.outputs) + sum(reader.spills for reader in run.readers) > 0
    run.cleanup()


class Collides:
    """Equal when the names are; every instance hashes alike."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collides) and other.name == self.name

    def __hash__(self) -> int:
        return 42

    def __repr__(self) -> str:
        return f"Collides({self.name!r})"


@pytest.mark.parametrize("mode", ["combine_map_side", "combine_reduce_side", "group_map_side"])
def test_hash_collisions_are_told_apart_by_equality(mode, tmp_path):
    # hash(-1) == hash(-2) in CPython; Collides are all 42, like the int 42 itself.
    pool = [-1, -2, 42, Collides("x"), Collides("y"), Collides("z"), "q"]
    rng = random.Random(5)
    maps = [[(rng.choice(pool), rng.randint(0, 9)) for _ in range(400)] for _ in range(3)]
    run = run_shuffle(maps, 2, mode, str(tmp_path), budget=256)
    check_run(run, maps, 2, mode)
    assert sum(reader.spills for reader in run.readers) > 0
    run.cleanup()


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("mode", ["sorted", "sorted_combined", "sorted_grouped_reduce_side"])
@pytest.mark.parametrize("budget", [1 << 30, 2048])
def test_sorted_reads(mode, ascending, budget, tmp_path):
    maps = [word_records(800, seed=seed, vocabulary=300) for seed in range(3)]
    run = run_shuffle(maps, 3, mode, str(tmp_path), budget=budget, ascending=ascending)
    check_run(run, maps, 3, mode, ascending=ascending)
    run.cleanup()


def test_sorted_with_a_key_function_and_equal_sort_keys(tmp_path):
    """key_ordering may map distinct keys to one sort key (here: by length); with an
    aggregator they must still come out once each, combined."""
    from sparklet.shuffle import ShuffleReader, ShuffleWriter, read_segment, remove_map_output
    from test_shuffle_support import SUM
    words = word_records(2000, seed=3, vocabulary=400)
    writer = ShuffleWriter(shuffle_id=1, map_id=0, num_partitions=1, partition_of=lambda k: 0, aggregator=SUM,
                           map_side_combine=False, memory_budget=1024, directory=str(tmp_path))
    output = writer.write(words)
    reader = ShuffleReader(aggregator=SUM, map_side_combined=False, key_ordering=len, ascending=False,
                           memory_budget=1024, directory=str(tmp_path))
    got = list(reader.read([read_segment(output.path, 0, output.bytes_written)]))
    expected: dict = {}
    for key, value in words:
        expected[key] = expected.get(key, 0) + value
    assert dict(got) == expected and len(got) == len(expected)
    assert [len(k) for k, _ in got] == sorted((len(k) for k, _ in got), reverse=True)
    assert reader.spills > 0
    remove_map_output(output)


@pytest.mark.parametrize("compression", ["none", "zlib", "lz4", "zstd", None])
@pytest.mark.parametrize("mode", ["plain", "combine_map_side", "sorted"])
def test_every_codec_round_trips(compression, mode, tmp_path):
    if compression == "lz4":
        pytest.importorskip("lz4.block")
    if compression == "zstd":
        pytest.importorskip("zstandard")
    maps = [word_records(1500, seed=seed) for seed in range(2)]
    run = run_shuffle(maps, 3, mode, str(tmp_path), budget=8192, compression=compression)
    check_run(run, maps, 3, mode)
    run.cleanup()


@SETTINGS
@given(maps=st.lists(st.lists(st.tuples(keys, st.integers()), max_size=60), min_size=1, max_size=2),
       batch_size=st.integers(1, 7))
def test_small_batches(maps, batch_size):
    with tempfile.TemporaryDirectory() as directory:
        run = run_shuffle(maps, 2, "combine_map_side", directory, batch_size=batch_size, budget=700)
        check_run(run, maps, 2, "combine_map_side")
        run.cleanup()


@pytest.mark.parametrize("mode", ["plain", "combine_map_side", "group_map_side", "sorted", "sorted_combined"])
def test_many_runs_merge_in_passes(mode, tmp_path):
    """More runs than one merge opens at once (FAN_IN): merged in passes, same answers."""
    from sparklet.shuffle._runs import FAN_IN
    maps = [word_records(5000, seed=9, vocabulary=4000)]
    run = run_shuffle(maps, 2, mode, str(tmp_path), budget=2048)
    check_run(run, maps, 2, mode)
    assert run.writers[0].spills > FAN_IN and run.writers[0].merge_passes > 0
    if MODES[mode][0] is not None or MODES[mode][2] is not None:
        assert all(reader.spills > FAN_IN and reader.merge_passes > 0 for reader in run.readers)
    run.cleanup()
    assert files(str(tmp_path)) == []
