"""sparklet.shuffle: the executor-side shuffle data plane.

Plain classes and functions, called from task worker threads: :class:`ShuffleWriter`
writes a map task's records partitioned (and combined) by key into one data file with
bounded memory; :func:`read_segment` serves one reduce partition's bytes of it;
:class:`ShuffleReader` reads a reduce partition's segments, aggregated and/or sorted,
with bounded memory. Moving the bytes between executors is the runtime's job.
"""

from sparklet.shuffle._format import decode_segment, read_segment
from sparklet.shuffle._reader import ShuffleReader
from sparklet.shuffle._writer import Aggregator, MapOutput, ShuffleWriter, remove_map_output

__all__ = [
    "Aggregator", "MapOutput", "ShuffleReader", "ShuffleWriter", "decode_segment", "read_segment",
    "remove_map_output",
]
