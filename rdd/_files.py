"""Files: which files an input path names, how they split, how records are read and written.

Input paths follow Hadoop's ``FileInputFormat``: comma-separated paths (commas inside
``{...}`` belong to the pattern), each a file, a directory (its files; names starting with
``_`` or ``.`` are hidden, a subdirectory is an error) or a glob (``*``, ``?``, ``[...]``,
``{a,b}``). A path that does not exist fails when the RDD's partitions are first computed
(at the first action), as in Spark.

Splits follow ``FileInputFormat.getSplits`` of the old ``mapred`` API, which ``textFile``
uses: goal size = total bytes // minPartitions, split size = max(1, min(goal, 32 MiB)),
a file is cut while the remainder is more than 1.1 split sizes; compressed files (``.gz``,
``.bz2``, ``.deflate``) are one split each; empty splits are dropped (Spark 3.2's
``spark.hadoopRDD.ignoreEmptySplits``). Lines follow ``LineRecordReader``: a split that does
not start at 0 skips through its first line terminator (``\\n``, ``\\r`` or ``\\r\\n``) and
every split reads the line that crosses its end, so each line is read exactly once.

Pickle files (``saveAsPickleFile``, checkpoints) are this package's own format: a magic
header, then frames ``<8-byte big-endian length><pickled list of records>``. A split owns the
frames that start inside it, so pickle files split like text files.
"""

from __future__ import annotations

import bz2
import dataclasses
import glob
import gzip
import io
import os
import pickle
import re
import shutil
import struct
import zlib
from typing import IO, Any, Iterable, Iterator

__all__ = [
    "list_input_files", "file_splits", "read_lines", "read_whole_file", "read_frames", "write_frames",
    "write_text_part", "prepare_output_dir", "commit_output", "abort_output", "codec_extension", "file_uri",
    "FileSplit", "PICKLE_MAGIC",
]

BLOCK_SIZE = 32 * 1024 * 1024  # Hadoop's fs.local.block.size
SPLIT_SLOP = 1.1
PICKLE_MAGIC = b"SPKLPKL1"
_COMPRESSED = (".gz", ".bz2", ".deflate")
_CODECS = {
    "org.apache.hadoop.io.compress.GzipCodec": ".gz",
    "org.apache.hadoop.io.compress.BZip2Codec": ".bz2",
    "org.apache.hadoop.io.compress.DefaultCodec": ".deflate",
    "org.apache.hadoop.io.compress.DeflateCodec": ".deflate",
}
_GLOB_CHARS = re.compile(r"[*?\[{]")


def file_uri(path: str) -> str:
    """Hadoop's string for a local path: ``file:/abs/path``."""
    return "file:" + os.path.abspath(path)


def _strip_scheme(path: str) -> str:
    if path.startswith("file://"):
        return path[len("file://"):]
    if path.startswith("file:"):
        return path[len("file:"):]
    return path


def _split_paths(name: str) -> list[str]:
    """Split on commas outside ``{...}`` (Hadoop's ``getPathStrings``)."""
    paths, depth, current = [], 0, []
    for ch in name:
        if ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        if ch == "," and depth == 0:
            paths.append("".join(current))
            current = []
        else:
            current.append(ch)
    paths.append("".join(current))
    return [p for p in paths if p]


def _expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[:match.start()], pattern[match.end():]
    return [out for alt in match.group(1).split(",") for out in _expand_braces(head + alt + tail)]


def _hidden(path: str) -> bool:
    base = os.path.basename(path.rstrip(os.sep))
    return base.startswith("_") or base.startswith(".")


def _directory_files(directory: str) -> list[str]:
    found = []
    for entry in sorted(os.listdir(directory)):
        child = os.path.join(directory, entry)
        if _hidden(child):
            continue
        if os.path.isdir(child):
            raise IsADirectoryError(f"Not a file: {file_uri(child)}")
        found.append(child)
    return found


def list_input_files(name: str) -> list[str]:
    """The files ``name`` denotes, in order (see the module notes)."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise ValueError(f"path must be a non-empty string, got {name!r}")
    files: list[str] = []
    for raw in _split_paths(name):
        path = os.path.abspath(os.path.expanduser(_strip_scheme(raw)))
        if _GLOB_CHARS.search(raw):
            matches = sorted({m for p in _expand_braces(path) for m in glob.glob(p)})
            matches = [m for m in matches if not _hidden(m)]
            if not matches:
                raise FileNotFoundError(f"Input Pattern {file_uri(path)} matches 0 files")
            for m in matches:
                files.extend(_directory_files(m) if os.path.isdir(m) else [m])
        elif not os.path.exists(path):
            raise FileNotFoundError(f"Input path does not exist: {file_uri(path)}")
        elif os.path.isdir(path):
            files.extend(_directory_files(path))
        else:
            files.append(path)
    return files


@dataclasses.dataclass(frozen=True)
class FileSplit:
    path: str
    start: int
    length: int


def _compressed(path: str) -> bool:
    return path.endswith(_COMPRESSED)


def file_splits(files: list[str], min_partitions: int, splittable: bool = True) -> list[FileSplit]:
    """Hadoop's ``FileInputFormat.getSplits`` (old API), without empty splits."""
    sizes = [(path, os.path.getsize(path)) for path in files]
    total = sum(size for _, size in sizes)
    goal = total // (min_partitions if min_partitions > 0 else 1)
    split_size = max(1, min(goal, BLOCK_SIZE))
    splits = []
    for path, size in sizes:
        if size == 0:
            continue
        if not splittable or _compressed(path):
            splits.append(FileSplit(path, 0, size))
            continue
        remaining = size
        while remaining / split_size > SPLIT_SLOP:
            splits.append(FileSplit(path, size - remaining, split_size))
            remaining -= split_size
        if remaining:
            splits.append(FileSplit(path, size - remaining, remaining))
    return splits


def _open_decompressed(path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".deflate"):
        with open(path, "rb") as f:
            return io.BytesIO(zlib.decompress(f.read()))
    return open(path, "rb")


class _LineReader:
    """Reads lines ended by ``\\n``, ``\\r`` or ``\\r\\n`` (Hadoop's ``LineReader``), telling how
    many bytes each consumed, terminator included."""

    _EOL = re.compile(rb"[\r\n]")

    def __init__(self, f: IO[bytes], chunk: int = 1 << 16) -> None:
        self._f, self._chunk = f, chunk
        self._buf, self._pos, self._eof = b"", 0, False

    def _fill(self) -> None:
        data = self._f.read(self._chunk)
        if not data:
            self._eof = True
        self._buf = self._buf[self._pos:] + data
        self._pos = 0

    def read_line(self) -> tuple[bytes, int]:
        while True:
            m = self._EOL.search(self._buf, self._pos)
            if m is not None:
                i = m.start()
                if self._buf[i] == 0x0D and i + 1 == len(self._buf) and not self._eof:
                    self._fill()  # a \r at the end of the buffer: is it \r\n?
                    continue
                end = i + 2 if self._buf[i] == 0x0D and self._buf[i + 1:i + 2] == b"\n" else i + 1
                line = self._buf[self._pos:i]
                consumed = end - self._pos
                self._pos = end
                return line, consumed
            if self._eof:
                line = self._buf[self._pos:]
                self._pos = len(self._buf)
                return line, len(line)
            self._fill()


def _decode(line: bytes, use_unicode: bool) -> Any:
    return line.decode("utf-8", "replace") if use_unicode else line


def read_lines(split: FileSplit, use_unicode: bool = True) -> Iterator[Any]:
    """The lines of ``split`` (see the module notes)."""
    if _compressed(split.path):
        with _open_decompressed(split.path) as f:
            reader = _LineReader(f)
            first = True
            while True:
                line, consumed = reader.read_line()
                if consumed == 0:
                    return
                if first and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                first = False
                yield _decode(line, use_unicode)
    yield from _read_split_lines(split.path, split.start, split.start + split.length, use_unicode)


_CHUNK = 1 << 20


def _split_complete_lines(body: bytes, use_unicode: bool) -> list[Any]:
    """The lines of ``body`` (whole lines, the last maybe unterminated at end of file).

    Decoding once and splitting once is exact: ``\\n`` and ``\\r`` never occur inside a
    UTF-8 multi-byte sequence, so replacement characters land where per-line decoding
    would put them. ``str.splitlines`` would also split on other Unicode line breaks,
    which Hadoop does not, hence the explicit normalisation.
    """
    if not body:
        return []
    text: Any = body.decode("utf-8", "replace") if use_unicode else body
    newline, cr = ("\n", "\r") if use_unicode else (b"\n", b"\r")
    if cr in text:
        text = text.replace(cr + newline, newline).replace(cr, newline)
    lines = text.split(newline)
    if lines and not lines[-1] and (body.endswith(b"\n") or body.endswith(b"\r")):
        lines.pop()
    return lines


def _read_split_lines(path: str, start: int, end: int, use_unicode: bool) -> Iterator[Any]:
    """Hadoop's LineRecordReader over ``[start, end]``, in chunks.

    ``bytes.splitlines`` ends lines at exactly Hadoop's terminators (``\\n``, ``\\r``,
    ``\\r\\n``) at C speed. A split that does not start at 0 skips its first line (the
    previous split reads it); lines are read while they start at or before ``end``.
    Positions are tracked line by line only in the chunk that reaches ``end``.
    """
    decode = (lambda b: b.decode("utf-8", "replace")) if use_unicode else (lambda b: b)
    with open(path, "rb") as f:
        f.seek(start)
        pos = start  # file offset of carry[0]
        carry = b""
        skip_first = start != 0
        first_line = start == 0
        while True:
            chunk = f.read(_CHUNK)
            data = carry + chunk
            if not data:
                return
            eof = not chunk
            with_ends = data.splitlines(keepends=True)
            last = with_ends[-1]
            # A last line without its terminator, or ending in \r (maybe \r\n across chunks), waits.
            if not eof and (last[-1:] not in (b"\n",)):
                carry = last
                with_ends.pop()
            else:
                carry = b""
            if skip_first and with_ends:
                pos += len(with_ends[0])
                with_ends = with_ends[1:]
                skip_first = False
            elif skip_first:
                continue
            if first_line and with_ends:
                if with_ends[0].startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                    pos += 3
                    with_ends[0] = with_ends[0][3:]
                first_line = False
            chunk_end = pos + sum(map(len, with_ends))
            if chunk_end <= end + 1 and not (eof and not with_ends):
                # every line of this chunk starts at or before `end`
                yield from _split_complete_lines(b"".join(with_ends), use_unicode)
                pos = chunk_end
            else:
                for line in with_ends:
                    if pos > end:
                        return
                    pos += len(line)
                    yield decode(line.rstrip(b"\r\n") if line[-1:] in (b"\n", b"\r") else line)
                return
            if eof:
                return


def read_whole_file(path: str) -> bytes:
    with _open_decompressed(path) as f:
        return f.read()


def read_frames(path: str, start: int = 0, end: int | None = None) -> Iterator[Any]:
    """The records of the frames of a pickle file that start in ``[start, end)``."""
    with open(path, "rb") as f:
        if f.read(len(PICKLE_MAGIC)) != PICKLE_MAGIC:
            raise ValueError(f"{file_uri(path)} is not a pickle file written by saveAsPickleFile or checkpoint")
        pos = len(PICKLE_MAGIC)
        while end is None or pos < end:
            f.seek(pos)
            header = f.read(8)
            if not header:
                return
            if len(header) < 8:
                raise ValueError(f"{file_uri(path)} is truncated at byte {pos}")
            (length,) = struct.unpack(">Q", header)
            if pos >= start:
                payload = f.read(length)
                if len(payload) < length:
                    raise ValueError(f"{file_uri(path)} is truncated at byte {pos}")
                yield from pickle.loads(payload)
            pos += 8 + length


def _batches(iterator: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in iterator:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_frames(directory: str, filename: str, attempt: int, iterator: Iterable, batch_size: int) -> int:
    """Write a pickle file atomically (temporary file, then rename); returns the record count."""
    tmp = os.path.join(directory, f".{filename}.attempt-{attempt}.tmp")
    count = 0
    try:
        with open(tmp, "wb") as f:
            f.write(PICKLE_MAGIC)
            for batch in _batches(iterator, batch_size if batch_size > 0 else 1024):
                payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
                f.write(struct.pack(">Q", len(payload)))
                f.write(payload)
                count += len(batch)
        os.replace(tmp, os.path.join(directory, filename))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return count


def codec_extension(codec_class: str | None) -> str:
    if not codec_class:
        return ""
    try:
        return _CODECS[codec_class]
    except KeyError:
        raise ValueError(f"compressionCodecClass {codec_class!r} is not supported; "
                         f"use one of {sorted(_CODECS)}") from None


def _text_line(x: Any) -> bytes:
    if isinstance(x, bytes):
        return x + b"\n"
    if isinstance(x, str):
        return x.encode("utf-8", "surrogatepass") + b"\n"
    return str(x).encode("utf-8", "surrogatepass") + b"\n"


def write_text_part(out_dir: str, index: int, attempt: int, iterator: Iterable, extension: str) -> int:
    """Write ``part-<index>`` (compressed per ``extension``) through ``_temporary``, then move
    it into place (the task commit). Returns the record count."""
    name = f"part-{index:05d}{extension}"
    tmp = os.path.join(out_dir, "_temporary", f"{name}.attempt-{attempt}")
    count = 0
    try:
        if extension == ".deflate":
            compressor = zlib.compressobj()
            with open(tmp, "wb") as f:
                for x in iterator:
                    f.write(compressor.compress(_text_line(x)))
                    count += 1
                f.write(compressor.flush())
        else:
            opener = {".gz": gzip.open, ".bz2": bz2.open}.get(extension, open)
            with opener(tmp, "wb") as f:
                for x in iterator:
                    f.write(_text_line(x))
                    count += 1
        os.replace(tmp, os.path.join(out_dir, name))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return count


def prepare_output_dir(path: str) -> str:
    """Create the output directory; it must not exist (Hadoop's ``checkOutputSpecs``)."""
    out = os.path.abspath(os.path.expanduser(_strip_scheme(os.fspath(path))))
    if os.path.exists(out):
        raise FileExistsError(f"Output directory {file_uri(out)} already exists")
    os.makedirs(os.path.join(out, "_temporary"))
    return out


def commit_output(out: str) -> None:
    shutil.rmtree(os.path.join(out, "_temporary"), ignore_errors=True)
    with open(os.path.join(out, "_SUCCESS"), "wb"):
        pass


def abort_output(out: str) -> None:
    shutil.rmtree(os.path.join(out, "_temporary"), ignore_errors=True)
