"""Reading and writing files: textFile (files, directories, globs, .gz, byte-range splits),
wholeTextFiles, saveAsTextFile, pickle files, checkpoints."""

from __future__ import annotations

import bz2
import gzip
import os
import re
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparklet.rdd import HashPartitioner, StorageLevel
from sparklet.rdd._files import file_splits

from rdd_support import SerialContext


def write(path, data: bytes | str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return str(path)


# -- textFile --------------------------------------------------------------------------------------

def test_text_file_reads_a_file_a_directory_a_glob_and_comma_separated_paths(tmp_path):
    sc = SerialContext()
    a = write(tmp_path / "d" / "a.txt", "a1\na2\n")
    write(tmp_path / "d" / "b.txt", "b1\nb2")
    write(tmp_path / "d" / "_SUCCESS", "")
    write(tmp_path / "d" / ".hidden", "nope\n")
    write(tmp_path / "e" / "c.log", "c1\n")
    assert sc.textFile(a).collect() == ["a1", "a2"]
    assert sc.textFile(str(tmp_path / "d")).collect() == ["a1", "a2", "b1", "b2"]
    assert sc.textFile(str(tmp_path / "d" / "*.txt")).collect() == ["a1", "a2", "b1", "b2"]
    assert sc.textFile(str(tmp_path / "*" / "[bc].*")).collect() == ["b1", "b2", "c1"]
    assert sc.textFile(str(tmp_path / "{d,e}")).collect() == ["a1", "a2", "b1", "b2", "c1"]
    assert sc.textFile(f"{tmp_path / 'e'},{a}").collect() == ["c1", "a1", "a2"]
    assert sc.textFile("file://" + a).collect() == ["a1", "a2"]
    assert sc.textFile(a, use_unicode=False).collect() == [b"a1", b"a2"]


def test_missing_inputs_fail_at_the_first_action_naming_the_path(tmp_path):
    sc = SerialContext()
    rdd = sc.textFile(str(tmp_path / "missing"))  # lazy, as in Spark
    with pytest.raises(FileNotFoundError, match="Input path does not exist: file:.*missing"):
        rdd.count()
    with pytest.raises(FileNotFoundError, match=r"Input Pattern file:.*\*\.csv matches 0 files"):
        sc.textFile(str(tmp_path / "*.csv")).collect()
    write(tmp_path / "d" / "sub" / "x.txt", "x")
    with pytest.raises(IsADirectoryError, match="Not a file: file:.*sub"):
        sc.textFile(str(tmp_path / "d")).collect()


def test_gz_files_are_read_whole_one_partition_each(tmp_path):
    sc = SerialContext()
    lines = [f"line {i}" for i in range(1000)]
    with gzip.open(tmp_path / "a.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    with bz2.open(tmp_path / "b.bz2", "wt") as f:
        f.write("x\r\ny")
    write(tmp_path / "c.txt", "plain\n" * 100)
    rdd = sc.textFile(str(tmp_path), 10)
    parts = rdd.glom().collect()
    assert parts[0] == lines and parts[1] == ["x", "y"]
    assert [x for p in parts[2:] for x in p] == ["plain"] * 100
    assert len(parts) > 3  # the plain file is split


def test_splits_follow_hadoop_file_input_format(tmp_path):
    path = write(tmp_path / "f.txt", b"x" * 100)
    empty = write(tmp_path / "empty.txt", b"")
    assert [(s.start, s.length) for s in file_splits([path], 3)] == [(0, 33), (33, 33), (66, 34)]
    assert [(s.start, s.length) for s in file_splits([path], 2)] == [(0, 50), (50, 50)]
    assert [(s.start, s.length) for s in file_splits([path, empty], 1)] == [(0, 100)]  # empty splits dropped
    assert len(file_splits([path], 1000)) == 100  # goal size 0 -> splits of one byte
    sc = SerialContext(default_parallelism=8)
    assert sc.textFile(path).getNumPartitions() == 2  # default minPartitions = min(8, 2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="ab\u00e9\u4e2d", max_size=12), st.sampled_from(["\n", "\r\n", "\r"])),
                max_size=25),
       st.booleans(), st.integers(1, 40))
def test_every_line_is_read_exactly_once_whatever_the_splits(lines, final_terminator, min_partitions):
    body = "".join(text + end for text, end in lines)
    if lines and not final_terminator:
        body = body[:-len(lines[-1][1])]
    expected = re.split(r"\r\n|\r|\n", body)
    if expected[-1] == "":
        expected.pop()
    with tempfile.TemporaryDirectory() as d:
        path = write(os.path.join(d, "f.txt"), body)
        rdd = SerialContext().textFile(path, min_partitions)
        parts = rdd.glom().collect()
        assert [x for p in parts for x in p] == expected
        assert rdd.count() == len(expected)


def test_a_utf8_byte_order_mark_is_skipped(tmp_path):
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbfhello\nworld\n")
    assert SerialContext().textFile(str(path)).collect() == ["hello", "world"]


def test_whole_text_files_gives_file_uris_and_contents(tmp_path):
    sc = SerialContext()
    for i in range(5):
        write(tmp_path / f"{i}.txt", f"content {i}\n" * (i + 1))
    with gzip.open(tmp_path / "z.gz", "wt") as f:
        f.write("zipped")
    write(tmp_path / "_SUCCESS", "")
    rdd = sc.wholeTextFiles(str(tmp_path), 3)
    collected = rdd.collect()
    assert [p for p, _ in collected] == [f"file:{tmp_path}/{i}.txt" for i in range(5)] + [f"file:{tmp_path}/z.gz"]
    assert collected[2][1] == "content 2\n" * 3 and collected[-1][1] == "zipped"
    assert 2 <= rdd.getNumPartitions() <= 4
    assert sc.wholeTextFiles(str(tmp_path), 1).getNumPartitions() == 1


# -- saving -----------------------------------------------------------------------------------------

def test_save_as_text_file_then_text_file_round_trips(tmp_path):
    sc = SerialContext()
    data = ["a", "", "b c", 1, 2.5, (1, "x"), b"raw", "\u00e9\u4e2d"]
    out = str(tmp_path / "out")
    sc.parallelize(data, 3).saveAsTextFile(out)
    assert sorted(os.listdir(out)) == ["_SUCCESS", "part-00000", "part-00001", "part-00002"]
    assert sc.textFile(out).collect() == ["a", "", "b c", "1", "2.5", "(1, 'x')", "raw", "\u00e9\u4e2d"]
    with pytest.raises(FileExistsError, match="Output directory file:.*out already exists"):
        sc.parallelize([1]).saveAsTextFile(out)


@pytest.mark.parametrize("codec, suffix", [("org.apache.hadoop.io.compress.GzipCodec", ".gz"),
                                           ("org.apache.hadoop.io.compress.BZip2Codec", ".bz2"),
                                           ("org.apache.hadoop.io.compress.DefaultCodec", ".deflate")])
def test_compressed_text_output_round_trips(tmp_path, codec, suffix):
    sc = SerialContext()
    out = str(tmp_path / "out")
    sc.parallelize(range(100), 2).saveAsTextFile(out, codec)
    assert sorted(os.listdir(out)) == ["_SUCCESS", f"part-00000{suffix}", f"part-00001{suffix}"]
    assert sc.textFile(out).map(int).collect() == list(range(100))


def test_unknown_codecs_and_failed_jobs(tmp_path):
    sc = SerialContext()
    with pytest.raises(ValueError, match="compressionCodecClass 'com.example.Nope' is not supported"):
        sc.parallelize([1]).saveAsTextFile(str(tmp_path / "x"), "com.example.Nope")
    out = str(tmp_path / "failed")
    with pytest.raises(ZeroDivisionError):
        sc.parallelize([1, 0], 2).map(lambda x: 1 // x).saveAsTextFile(out)
    assert "_SUCCESS" not in os.listdir(out) and "_temporary" not in os.listdir(out)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.integers(), st.text(max_size=5), st.tuples(st.integers(), st.none())), max_size=60),
       st.integers(1, 6), st.integers(0, 7), st.integers(1, 30))
def test_pickle_files_round_trip_whatever_the_batches_and_splits(data, slices, batch_size, min_partitions):
    with tempfile.TemporaryDirectory() as d:
        sc = SerialContext()
        out = os.path.join(d, "p")
        sc.parallelize(data, slices).saveAsPickleFile(out, batch_size)
        assert sorted(os.listdir(out)) == ["_SUCCESS"] + [f"part-{i:05d}" for i in range(slices)]
        assert sc.pickleFile(out, min_partitions).collect() == data


def test_pickle_file_rejects_other_files(tmp_path):
    write(tmp_path / "p" / "part-00000", "not a pickle file\n")
    with pytest.raises(ValueError, match="is not a pickle file written by saveAsPickleFile"):
        SerialContext().pickleFile(str(tmp_path / "p")).collect()


# -- checkpoints ------------------------------------------------------------------------------------

def test_checkpoint_truncates_the_lineage_and_keeps_the_answer(tmp_path):
    source = write(tmp_path / "in.txt", "".join(f"{i}\n" for i in range(20)))
    sc = SerialContext(checkpoint_dir=str(tmp_path / "ck"))
    rdd = sc.textFile(source, 3).map(int).union(sc.parallelize(range(5), 2)).map(lambda x: x * 2)
    expected = rdd.collect()
    before = rdd.toDebugString()
    rdd.checkpoint()
    assert rdd.is_checkpointed and not rdd.isCheckpointed() and rdd.getCheckpointFile() is None
    assert rdd.count() == 25  # the first job computes it; the checkpoint job follows
    assert rdd.isCheckpointed()
    directory = rdd.getCheckpointFile()
    assert directory == str(tmp_path / "ck" / f"rdd-{rdd.id}")
    assert sorted(os.listdir(directory)) == [f"part-{i:05d}" for i in range(rdd.getNumPartitions())]
    assert rdd.getNumPartitions() == 4 + 2  # 50 bytes in 3 goal-size splits of 16 (+ 2 left) and 2 slices
    after = rdd.toDebugString()
    assert len(after.splitlines()) == 2 < len(before.splitlines())
    assert b"CheckpointRDD" in after and b"TextFileRDD" not in after
    os.unlink(source)  # the lineage is gone: the answer comes from the checkpoint
    assert rdd.collect() == expected
    assert rdd.map(lambda x: x + 1).collect() == [x + 1 for x in expected]
    assert [type(d.rdd).__name__ for d in rdd.dependencies] == ["CheckpointRDD"]


def test_checkpoint_reads_a_persisted_rdd_from_the_cache_and_keeps_the_partitioner(tmp_path):
    sc = SerialContext(checkpoint_dir=str(tmp_path))
    rdd = sc.parallelize([(i, i) for i in range(10)], 2).mapValues(lambda v: v + 1)
    rdd.partitioner = HashPartitioner(2)
    rdd.persist(StorageLevel.MEMORY_AND_DISK)
    rdd.checkpoint()
    assert rdd.collect() == [(i, i + 1) for i in range(10)]
    assert sc.env.computed == [(rdd.id, 0), (rdd.id, 1)]  # computed once, checkpointed from the cache
    assert rdd.isCheckpointed() and rdd.partitioner == HashPartitioner(2)
    assert rdd.getStorageLevel() == StorageLevel.MEMORY_AND_DISK


def test_checkpoint_needs_a_directory():
    with pytest.raises(RuntimeError, match="Checkpoint directory has not been set"):
        SerialContext().range(3).checkpoint()
