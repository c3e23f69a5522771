"""The live UI: served by the driver while the application runs, off by default, on
loopback, a JSON API behind the page, and nothing left behind after stop."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request

import pytest

from sparklet import Context

from headless_chromium import HeadlessChromium, chromium_available

QUIET = {"ui.showConsoleProgress": False}


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_ui_is_off_by_default():
    with Context("inproc[1]", "no-ui", QUIET) as sc:
        assert sc.uiWebUrl is None


def test_the_json_api_and_the_page_follow_the_running_application():
    with Context("inproc[2]", "live", {**QUIET, "tracing": True}, ui=True) as sc:
        url = sc.uiWebUrl
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1].strip("/"))
        status, kind, body = get(url + "api/counts")
        assert (status, kind, json.loads(body)["jobs"]) == (200, "application/json", 0)
        pairs = sc.parallelize(range(100), 4).map(lambda x: (x % 3, x))
        assert sorted(pairs.reduceByKey(lambda a, b: a + b).collect()) == [(0, 1683), (1, 1617), (2, 1650)]
        assert sc.parallelize(range(10), 2).count() == 10
        counts = json.loads(get(url + "api/counts")[2])
        assert (counts["jobs"], counts["succeeded_jobs"], counts["stages"], counts["tasks"], counts["executors"]) == (2, 2, 3, 10, 2)
        assert counts["messages"] > 0  # tracing is on: the actor events are there too
        jobs = json.loads(get(url + "api/jobs")[2])
        assert [(j["job_id"], j["status"], j["tasks"]) for j in jobs] == [(0, "succeeded", 8), (1, "succeeded", 2)]
        stages = json.loads(get(url + "api/stages")[2])
        assert stages[0]["shuffle_write_bytes"] > 0 and stages[1]["shuffle_read_bytes"] > 0
        report = json.loads(get(url + "api/report")[2])
        assert report["app"]["app_name"] == "live" and report["app"]["live"] is True
        assert report["tree"]["name"] == "/" and len(report["tasks"]) == 10
        status, kind, page = get(url)
        assert status == 200 and kind.startswith("text/html") and b"const LIVE = true;" in page
        status, _, body = get(url + "api/nothing")
        assert status == 404 and "try /api/report" in json.loads(body)["error"]
        request = urllib.request.Request(url + "api/jobs", method="POST", data=b"{}")
        status, _, body = get(request)  # type: ignore[arg-type]
        assert status == 405 and "read-only" in json.loads(body)["error"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"garbage\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.1 400 Bad Request")
        assert sc.parallelize(range(5), 1).sum() == 10  # the runtime kept serving through all that
    assert refused(port)


def test_a_port_in_the_conf_turns_the_ui_on_and_is_used():
    port = free_port()
    with Context("inproc[1]", "port", {**QUIET, "ui.port": port}) as sc:
        assert sc.uiWebUrl == f"http://127.0.0.1:{port}/"
        assert json.loads(get(sc.uiWebUrl + "api/app")[2])["app_name"] == "port"
    assert refused(port)


async def test_embedded_the_ui_answers_on_the_applications_own_loop_while_a_job_runs():
    async with Context("inproc[2]", "embedded", QUIET, ui=0) as sc:
        port = int(sc.uiWebUrl.rsplit(":", 1)[1].strip("/"))

        async def fetch(path: str) -> dict:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = await reader.read()
            writer.close()
            await writer.wait_closed()
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK"), head
            return json.loads(body)

        slow = asyncio.ensure_future(sc.parallelize(range(4), 4).map(lambda x: __import__("time").sleep(0.3) or x).collectAsync())
        seen_running = False
        while not slow.done():
            counts = await fetch("/api/counts")
            seen_running |= counts["running_tasks"] > 0
            await asyncio.sleep(0.05)
        assert await slow == [0, 1, 2, 3]
        assert seen_running  # the API answered while tasks were running
        assert (await fetch("/api/counts"))["tasks"] == 4
    assert refused(port)


@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
def test_the_live_page_renders_in_chromium_and_updates():
    with Context("inproc[2]", "live-page", QUIET, ui=True) as sc:
        assert sc.parallelize(range(10), 2).sum() == 45
        with HeadlessChromium() as browser:
            browser.open(sc.uiWebUrl)
            assert browser.wait_for("document.body.dataset.rendered === 'true'")
            assert browser.evaluate("Number(document.getElementById('count-jobs').dataset.value)") == 1
            assert sc.parallelize(range(10), 5).count() == 10
            assert browser.wait_for("Number(document.getElementById('count-jobs').dataset.value) === 2", timeout=15)
            assert browser.evaluate("document.querySelectorAll('#jobs tbody tr.job').length") == 2
            assert browser.evaluate("Number(document.getElementById('count-tasks').dataset.value)") == 7
            assert browser.errors() == []
