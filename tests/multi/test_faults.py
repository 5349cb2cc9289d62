"""Instances dying and stopping under signed traffic: what clients get, what the records say.

- SIGKILL under a steady load through nginx, then a restart: every answer is 200 or the documented 503,
  every answer given has its request record, the survivors keep serving, the restarted one serves again.
- An answer never goes out before its record is committed (else a kill right after answering loses it).
- SIGTERM: the instance stops accepting connections and finishes the requests it has before exiting.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from cluster import Cluster, Instance, admin_engine, error_code, metric_value, wait_for, waiting_backends

BALANCER_HEADER = "x-ageguard-balancer"
#: Requests the load keeps in flight through nginx (three instances share two cores in CI).
CONCURRENCY = 3


@dataclass
class Outcome:
    tag: str
    started: float
    status: int | None = None
    code: str | None = None
    balancer: bool = False  # the 503 came from nginx (no instance answered), not from an instance
    error: str | None = None


class Load:
    """Signed /age requests through nginx, CONCURRENCY at a time, each tagged by its Session-Id."""

    def __init__(self, cluster: Cluster, body: dict[str, Any]) -> None:
        self.cluster = cluster
        self.body = body
        self.run = uuid.uuid4().hex[:8]
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(CONCURRENCY)]

    @property
    def prefix(self) -> str:
        return f"load-{self.run}-"

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(120)

    def _loop(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                tag = self.prefix + uuid.uuid4().hex
                outcome = Outcome(tag, time.monotonic())
                signed = self.cluster.app.sign("/age", self.body, headers={"Session-Id": tag})
                try:
                    response = signed.send(client, self.cluster.nginx.url)
                    outcome.status = response.status_code
                    outcome.code = error_code(response)
                    outcome.balancer = BALANCER_HEADER in response.headers
                except httpx.HTTPError as exc:
                    outcome.error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.outcomes.append(outcome)

    def count_between(self, start: float, end: float) -> int:
        return sum(1 for o in self.outcomes if start <= o.started < end and o.status == 200)


def _records(cluster: Cluster, prefix: str) -> dict[str, str]:
    rows = cluster.query(
        "SELECT session_id, outcome FROM request_records WHERE session_id LIKE :p", p=prefix + "%"
    )
    return {str(r[0]): str(r[1]) for r in rows}


def _served(instance: Instance) -> float:
    text = httpx.get(instance.url + "/metrics", timeout=10).text
    return metric_value(text, "ageguard_requests_total", ageguard_instance=instance.name, code="OK")


def test_sigkill_under_load_loses_no_answered_record_and_the_survivors_serve(
    cluster: Cluster, face_body: dict[str, Any], report_counts: Callable[[str], None]
) -> None:
    a, b, c = cluster.instances
    load = Load(cluster, face_body)
    load.start()
    try:
        time.sleep(3)
        killed_at = time.monotonic()
        before = {i.name: _served(i) for i in (a, c)}
        b.signal(signal.SIGKILL)
        b.wait_exit(10)
        dead_at = time.monotonic()  # from here on no request can be in flight on B
        time.sleep(4.5)  # past nginx's fail_timeout (3 s): it tries B again while B is still dead
        during = {i.name: _served(i) for i in (a, c)}
        restarted_at = time.monotonic()
        b.start()
        b.wait_ready()
        ready_at = time.monotonic()
        time.sleep(4)  # past nginx's fail_timeout (3 s): the restarted instance is sent traffic again
    finally:
        load.stop()
        cluster.ensure_running()

    outcomes = load.outcomes
    records = _records(cluster, load.prefix)
    errors = [o for o in outcomes if o.error is not None]
    ok = [o for o in outcomes if o.status == 200]
    instance_503 = [o for o in outcomes if o.status == 503 and not o.balancer]
    balancer_503 = [o for o in outcomes if o.status == 503 and o.balancer]
    other = [o for o in outcomes if o.error is None and o.status not in (200, 503)]
    answered = ok + instance_503
    recorded_unanswered = [o for o in balancer_503 if o.tag in records]
    report_counts(
        f"SIGKILL under load: sent {len(outcomes)}, answered by an instance {len(answered)} "
        f"(200: {len(ok)}, instance 503: {len(instance_503)}), balancer 503 {len(balancer_503)} "
        f"(of which recorded before the kill: {len(recorded_unanswered)}), other {len(other)}, "
        f"client errors {len(errors)}; records {len(records)}; "
        f"200s while B was down {load.count_between(killed_at, restarted_at)}, "
        f"after B was ready {load.count_between(ready_at, time.monotonic())}"
    )
    assert not errors, errors[:5]
    assert not other, [(o.status, o.code) for o in other[:5]]
    assert all(o.code == "SERVICE_UNAVAILABLE" for o in instance_503 + balancer_503)
    # Every answer an instance gave has its record, with the outcome the client saw.
    missing = [o.tag for o in answered if o.tag not in records]
    assert not missing, f"{len(missing)} answered requests have no record"
    assert all(records[o.tag] == ("OK" if o.status == 200 else "SERVICE_UNAVAILABLE") for o in answered)
    # Nothing is recorded that was not sent; a record without an answer is a request the kill cut off
    # after its record was written (its answer was lost with the instance).
    assert set(records) <= {o.tag for o in outcomes}
    assert len(records) == len(answered) + len(recorded_unanswered)
    # Only requests in flight on the killed instance lose their answer: a request sent once B was dead
    # met a refused connection there, which nginx retried on a survivor.
    late = [round(o.started - dead_at, 3) for o in balancer_503 if o.started >= dead_at]
    assert not late, f"requests sent after the kill got the balancer's 503 (seconds after): {late}"
    assert len(balancer_503) <= CONCURRENCY, len(balancer_503)
    assert len(ok) >= 0.8 * len(outcomes), (len(ok), len(outcomes))
    # The survivors kept serving while B was down; B serves again after its restart.
    assert all(during[name] > before[name] for name in before), (before, during)
    assert load.count_between(killed_at, restarted_at) > 0
    assert _served(b) > 0


def _lock_records(cluster: Cluster) -> Any:
    """Hold an EXCLUSIVE lock on request_records: every record write waits until it is released."""
    engine = admin_engine(cluster.database)
    conn = engine.connect()
    conn.exec_driver_sql("BEGIN")  # the engine autocommits: this transaction is ours to end
    conn.exec_driver_sql("LOCK TABLE request_records IN EXCLUSIVE MODE")
    return engine, conn


def _release(engine: Any, conn: Any) -> None:
    conn.exec_driver_sql("ROLLBACK")
    conn.close()
    engine.dispose()


def _send_in_thread(signed: Any, url: str, into: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        try:
            into["response"] = signed.send(None, url, timeout=60)
        except httpx.HTTPError as exc:
            into["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_an_answer_goes_out_only_after_its_record_is_committed(
    cluster: Cluster, face_body: dict[str, Any]
) -> None:
    """The record of a request is written before its answer: an instance killed while the record write
    waits has given no answer, so no answer ever lacks its record."""
    c = cluster.instances[2]
    tag = f"durable-{uuid.uuid4().hex}"
    engine, conn = _lock_records(cluster)
    got: dict[str, Any] = {}
    try:
        thread = _send_in_thread(cluster.app.sign("/age", face_body, headers={"Session-Id": tag}), c.url, got)
        wait_for(
            lambda: waiting_backends(cluster.database, "%insert into request_records%") >= 1, 60, "the write"
        )
        thread.join(1.0)  # an answer that did not wait for its record would be out by now
        answered_before_record = "response" in got
        c.signal(signal.SIGKILL)
        c.wait_exit(10)
    finally:
        _release(engine, conn)
    thread.join(30)
    try:
        records = _records(cluster, tag)
        assert not answered_before_record, (
            f"answered {got['response'].status_code} before its record was written"
        )
        assert "error" in got, got  # the client got no answer: the instance died before giving one
        assert records == {}, records  # and its uncommitted record died with it
    finally:
        cluster.ensure_running()


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_sigterm_finishes_in_flight_requests_then_exits(cluster: Cluster, face_body: dict[str, Any]) -> None:
    a = cluster.instances[0]
    tags = [f"drain-{uuid.uuid4().hex}" for _ in range(2)]
    engine, conn = _lock_records(cluster)
    results: list[dict[str, Any]] = [{} for _ in tags]
    released = False
    try:
        threads = [
            _send_in_thread(cluster.app.sign("/age", face_body, headers={"Session-Id": tag}), a.url, into)
            for tag, into in zip(tags, results, strict=True)
        ]
        # Both requests are in flight: analysed, their records waiting for the lock.
        wait_for(lambda: waiting_backends(cluster.database, "%insert into request_records%") >= 2, 60, "both")
        a.signal(signal.SIGTERM)
        wait_for(lambda: _refuses_connections(a.port), 10, "the listener to close")
        time.sleep(1.0)
        assert a.running(), "exited with requests in flight"
        assert not any(results), results
        _release(engine, conn)
        released = True
        for t in threads:
            t.join(30)
        exit_code = a.wait_exit(30)
    finally:
        if not released:
            _release(engine, conn)
    try:
        assert [r.get("response") and r["response"].status_code for r in results] == [200, 200], results
        # uvicorn finishes its shutdown, then re-raises the SIGTERM it caught: the exit status says so.
        assert exit_code in (0, -signal.SIGTERM), a.log_text()[-2000:]
        assert "Application shutdown complete" in a.log_text().rsplit("--- start", 1)[-1]
        records = {tag: _records(cluster, tag).get(tag) for tag in tags}
        assert records == {tag: "OK" for tag in tags}
    finally:
        cluster.ensure_running()
