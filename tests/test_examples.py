"""The examples run as users run them, in their own process, and check their own outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_supervision_tree_example_recovers_and_writes_events(tmp_path):
    events = tmp_path / "events.jsonl"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "supervision_tree.py"), "--events", str(events)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "recovered from every fault: OK" in result.stdout
    kinds = [json.loads(line)["kind"] for line in events.read_text().splitlines()]
    assert kinds.count("restart") >= 3 and "failure" in kinds and "send" in kinds


def test_log_mining_demo_survives_a_killed_executor_and_checks_its_answers():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "log_mining.py"), "--master", "local[2]", "--lines", "20000"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "killed executor exec-" in result.stdout and "recount after the loss" in result.stdout
    assert "all answers match plain Python: OK" in result.stdout


def test_log_mining_demo_runs_in_process():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "log_mining.py"), "--master", "inproc[2]", "--lines", "5000"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "all answers match plain Python: OK" in result.stdout


def run_example(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_log_mining_second_count_reads_the_cache():
    out = run_example("log_mining.py", "--master", "inproc[2]", "--lines", "4000").stdout
    assert "read all 4000 lines of the file" in out and "read 0: every partition came from the cache" in out


def test_wordcount_counts_files_and_checks_against_counter(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text("the cat and the hat\nThe end\n")
    other = tmp_path / "b.txt"
    other.write_text("a cat\n")
    out = run_example("wordcount.py", str(text), str(other), "--master", "local[2]", "--top", "2").stdout
    assert out.splitlines()[:2] == ["       3 the", "       2 cat"]
    assert "6 distinct words; counts match collections.Counter: OK" in out
    missing = subprocess.run([sys.executable, str(EXAMPLES / "wordcount.py"), str(tmp_path / "nope.txt")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_pagerank_matches_plain_python():
    out = run_example("pagerank.py", "--master", "inproc[2]", "--pages", "60", "--iterations", "4").stdout
    assert "4 iterations; ranks match plain Python: OK" in out


def test_kmeans_finds_the_blobs_and_matches_plain_python():
    out = run_example("kmeans.py", "--master", "inproc[2]", "--points", "800", "--k", "3").stdout
    assert "3 clusters of 800 points; centers match plain Python and the blobs: OK" in out
    assert "iteration 1:" in out


def test_linear_regression_recovers_the_line():
    out = run_example("linear_regression.py", "--master", "inproc[2]", "--samples", "400", "--iterations", "60").stdout
    assert "weights match plain Python and the true line: OK" in out


def test_card_suits_sums_numeric_cards_per_suit():
    out = run_example("card_suits.py", "--master", "inproc[2]", "--decks", "2").stdout
    sums = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if line.split()[:1] and line.split()[0] in ("clubs", "diamonds", "hearts", "spades")}
    assert len(sums) == 4 and sum(sums.values()) <= 4 * 2 * 54 and max(sums.values()) <= 2 * 54
    assert "sums per suit match plain Python: OK" in out


def test_web_service_runs_many_jobs_at_once_and_stops_cleanly():
    import concurrent.futures
    import json as jsonlib
    import signal
    import urllib.error
    import urllib.request

    process = subprocess.Popen([sys.executable, str(EXAMPLES / "web_service.py"), "--master", "local[2]", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:"), first + process.stderr.read()
        base = first.split()[2]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy

        def get(path: str) -> tuple[int, dict]:
            try:
                with opener.open(base + path, timeout=60) as response:
                    return response.status, jsonlib.load(response)
            except urllib.error.HTTPError as error:
                return error.code, jsonlib.load(error)

        paths = [f"/primes?below={20000 + i}" for i in range(8)] + [f"/sum?n={1000 * i}" for i in range(8)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(get, paths))
        for i in range(8):
            below = 20000 + i
            assert answers[i] == (200, {"below": below, "primes": sum(1 for n in range(below) if _is_prime(n))})
            assert answers[8 + i] == (200, {"n": 1000 * i, "sum": sum(range(1000 * i))})
        assert get("/wordcount?text=to+be+or+not+to+be") == (200, {"counts": {"be": 2, "not": 1, "or": 1, "to": 2}})
        assert get("/sum?n=lots") == (400, {"error": "expected ?n=<integer>"})
        assert get("/nowhere")[0] == 404
        status, stats = get("/stats")
        assert status == 200 and stats["served"] == 17 and stats["most_at_once"] > 1, stats
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped after serving 18 requests" in out


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % f for f in range(2, int(n ** 0.5) + 1))


def test_trace_walkthrough_writes_a_trace_and_exports_both_formats(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "trace_walkthrough.py"), "--dir", str(tmp_path / "trace"), "--master", "inproc[2]"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "job 2: a sum on all executors, the restarted one included" in result.stdout
    trace = json.loads((tmp_path / "trace" / "trace.json").read_text())
    assert any(e["ph"] == "i" and e["cat"] == "FaultInjected" for e in trace["traceEvents"])
    assert (tmp_path / "trace" / "report.html").stat().st_size > 10_000
    assert f"HTML report:     {tmp_path / 'trace' / 'report.html'}" in result.stdout
