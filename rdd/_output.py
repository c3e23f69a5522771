"""Saving RDDs: ``saveAsTextFile`` and ``saveAsPickleFile``.

Like Hadoop's output committer: the directory must not exist; each task writes its
``part-NNNNN`` under ``_temporary`` and renames it into place when done (a re-run task
just replaces it); when the job succeeds ``_temporary`` is removed and ``_SUCCESS`` written;
when it fails ``_temporary`` is removed and the directory is left as it is.
"""

from __future__ import annotations

from typing import Any, Iterable

from sparklet.rdd import _files

__all__ = ["OutputMixin"]


class OutputMixin:
    def saveAsTextFile(self, path: str, compressionCodecClass: str | None = None) -> None:
        """Save this RDD as a directory of text files (``part-00000``, ...), using string
        representations of elements (``bytes`` are written as they are).

        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "text")
        ...     sc.parallelize(['', 'foo', '', 'bar', ''], 2).saveAsTextFile(path)
        ...     sorted(os.listdir(path)), sorted(sc.textFile(path).collect())
        (['_SUCCESS', 'part-00000', 'part-00001'], ['', '', '', 'bar', 'foo'])
        """
        return self._sync(self.saveAsTextFileAsync(path, compressionCodecClass))  # type: ignore[attr-defined]

    async def saveAsTextFileAsync(self, path: str, compressionCodecClass: str | None = None) -> None:
        """Awaitable twin of :meth:`saveAsTextFile`; cancelling the awaiting task cancels the
        job.

        >>> import asyncio, os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "gz")
        ...     codec = "org.apache.hadoop.io.compress.GzipCodec"
        ...     asyncio.run(sc.parallelize(['foo', 'bar'], 1).saveAsTextFileAsync(path, codec))
        ...     sorted(os.listdir(path)), sc.textFile(path).collect()
        (['_SUCCESS', 'part-00000.gz'], ['foo', 'bar'])
        """
        extension = _files.codec_extension(compressionCodecClass)
        self._require_driver("saveAsTextFile")  # type: ignore[attr-defined]
        out = _files.prepare_output_dir(path)

        def write(context: Any, iterator: Iterable) -> int:
            return _files.write_text_part(out, context.partitionId(), context.taskAttemptId(), iterator, extension)

        await _committed(self, out, write)

    def saveAsPickleFile(self, path: str, batchSize: int = 10) -> None:
        """Save this RDD as a directory of files of pickled batches of ``batchSize`` records,
        which :meth:`Context.pickleFile` reads back.

        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "pickled")
        ...     sc.parallelize(range(10)).saveAsPickleFile(path, 3)
        ...     sorted(sc.pickleFile(path, 3).collect())
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        """
        return self._sync(self.saveAsPickleFileAsync(path, batchSize))  # type: ignore[attr-defined]

    async def saveAsPickleFileAsync(self, path: str, batchSize: int = 10) -> None:
        """Awaitable twin of :meth:`saveAsPickleFile`; cancelling the awaiting task cancels the
        job.

        >>> import asyncio, os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "pickled")
        ...     asyncio.run(sc.parallelize([(1, 'a'), (2, 'b')]).saveAsPickleFileAsync(path))
        ...     sorted(sc.pickleFile(path).collect())
        [(1, 'a'), (2, 'b')]
        """
        self._require_driver("saveAsPickleFile")  # type: ignore[attr-defined]
        out = _files.prepare_output_dir(path)

        def write(context: Any, iterator: Iterable) -> int:
            name = f"part-{context.partitionId():05d}"
            return _files.write_frames(out, name, context.taskAttemptId(), iterator, batchSize)

        await _committed(self, out, write)


async def _committed(rdd: Any, out: str, write: Any) -> None:
    try:
        await rdd._run_job(write)
    except BaseException:
        _files.abort_output(out)
        raise
    _files.commit_output(out)
