"""Shuffle frames sized as PySpark's AutoBatchedSerializer sizes batches, within the
writer's memory plan."""

from __future__ import annotations

from sparklet.shuffle._format import FRAME_BYTES, Sink, decode_segment


def test_frames_of_big_records_shrink_and_stay_within_the_plan(tmp_path):
    big = [("k%d" % i, "x" * (64 << 10)) for i in range(200)]  # 1,024 of these would make a 64 MiB frame
    path = str(tmp_path / "frames")
    sink = Sink(path)
    sink.write_batches(big, 64, 0)
    small = [(i, i) for i in range(5000)]
    sink.write_stream(iter(small), 1024, 0)
    sink.close()
    with open(path, "rb") as f:
        data = f.read()
    frames, position = [], 0
    while position < len(data):  # a frame: codec id (1 byte), payload length (4 bytes, little-endian), payload
        length = int.from_bytes(data[position + 1:position + 5], "little")
        frames.append(length)
        position += 5 + length
    assert list(decode_segment(data)) == big + small
    big_frames = frames[:-5]  # 5,000 small records: 5 frames of up to 1,024
    assert len(big_frames) >= 200 // 16  # halved from 64 records (4 MiB) to 16 (1 MiB)
    assert max(big_frames[2:]) <= 4 * FRAME_BYTES + (65 << 10)
    assert frames[-5:] and len(frames) - len(big_frames) == 5
