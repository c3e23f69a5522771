"""Shuffle codec and batch size, measured end to end on this machine.

For each workload, codec and batch size: a :class:`~sparklet.shuffle.ShuffleWriter`
writes the records for 8 reduce partitions (plain, no combine: every record crosses),
each segment is read back with :func:`~sparklet.shuffle.read_segment` and sent through a
loopback TCP connection (what a fetch between two local executors costs), and a
:class:`~sparklet.shuffle.ShuffleReader` decodes what arrived. Times are CPU seconds of
this process (all its threads, kernel time included), best of ``--repeat`` runs: on a
loopback machine the CPU is what the shuffle spends, and CPU time is steadier than the
wall clock on a shared machine.

Workloads: ``wordcount`` is ``(word, 1)`` with words drawn Zipf-like from a 50,000-word
vocabulary, each a distinct ``str`` object as ``line.split()`` makes them; ``numeric``
is ``(int, int)`` with 40-bit keys and 20-bit values.

Run: ``python benchmarks/shuffle_codec.py [--records N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import socket
import tempfile
import threading
import time

from sparklet.shuffle import ShuffleReader, ShuffleWriter, read_segment, remove_map_output

PARTITIONS = 8


def wordcount_records(n: int, seed: int = 1) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 12))) for _ in range(50_000)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    text = " ".join(rng.choices(vocabulary, weights, k=n))
    return [(word, 1) for word in text.split()]  # distinct str objects, as split() makes them


def numeric_records(n: int, seed: int = 2) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    return [(rng.getrandbits(40), rng.getrandbits(20)) for _ in range(n)]


def _codecs() -> list[str]:
    names = ["none", "zlib"]
    if importlib.util.find_spec("lz4") is not None:
        names.append("lz4")
    if importlib.util.find_spec("zstandard") is not None:
        names.append("zstd")
    return names


class Loopback:
    """A TCP connection to ourselves: ``send`` a payload, get it back from the other end."""

    def __init__(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as server:
            self._out = socket.create_connection(server.getsockname())
            self._in, _ = server.accept()

    def transfer(self, payload: bytes) -> bytes:
        received = bytearray()
        size = len(payload)

        def receive() -> None:
            while len(received) < size:
                chunk = self._in.recv(min(1 << 20, size - len(received)))
                if not chunk:
                    break
                received.extend(chunk)

        reader = threading.Thread(target=receive)
        reader.start()
        self._out.sendall(payload)
        reader.join()
        return bytes(received)

    def close(self) -> None:
        self._out.close()
        self._in.close()


def measure(records: list, codec: str, batch_size: int, directory: str, link: Loopback) -> dict:
    partition_of = lambda key: hash(key) % PARTITIONS  # noqa: E731 - what a HashPartitioner costs, roughly
    started = time.process_time()
    writer = ShuffleWriter(shuffle_id=0, map_id=0, num_partitions=PARTITIONS, partition_of=partition_of,
                           aggregator=None, map_side_combine=False, memory_budget=1 << 30, directory=directory,
                           batch_size=batch_size, compression=codec)
    output = writer.write(records)
    wrote = time.process_time()
    segments = [link.transfer(read_segment(output.path, output.offsets[r], output.sizes[r]))
                for r in range(PARTITIONS) if output.sizes[r]]
    moved = time.process_time()
    count = 0
    for segment in segments:
        reader = ShuffleReader(aggregator=None, map_side_combined=False, key_ordering=None,
                               memory_budget=1 << 30, directory=directory)
        for _ in reader.read([segment]):
            count += 1
    done = time.process_time()
    assert count == len(records), (count, len(records))
    remove_map_output(output)
    return {"write": wrote - started, "move": moved - wrote, "read": done - moved, "total": done - started,
            "bytes": output.bytes_written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-sizes", default="256,1024,4096")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    workloads = {"wordcount": wordcount_records(args.records), "numeric": numeric_records(args.records)}
    print(f"{args.records:,} records per workload, {PARTITIONS} partitions, best of {args.repeat}; "
          "CPU seconds; rate in million records per CPU second")
    print(f"{'workload':10} {'codec':5} {'batch':>6} {'write':>7} {'move':>7} {'read':>7} {'total':>7} "
          f"{'Mrec/s':>7} {'B/rec':>6}")
    link = Loopback()
    try:
        with tempfile.TemporaryDirectory() as directory:
            for name, records in workloads.items():
                for codec in _codecs():
                    for batch_size in batch_sizes:
                        runs = [measure(records, codec, batch_size, directory, link) for _ in range(args.repeat)]
                        best = {key: min(run[key] for run in runs) for key in runs[0]}
                        n = len(records)
                        print(f"{name:10} {codec:5} {batch_size:6d} {best['write']:7.3f} {best['move']:7.3f} "
                              f"{best['read']:7.3f} {best['total']:7.3f} {n / best['total'] / 1e6:7.2f} "
                              f"{best['bytes'] / n:6.2f}")
    finally:
        link.close()


if __name__ == "__main__":
    main()
