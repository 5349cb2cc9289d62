"""The load process of ``ageguard bench --http``: pre-signed requests sent at a fixed concurrency.

Run as ``python -m ageguard.eval.httpload JOB.json`` in its own process, so that the client's work never
shares an interpreter (or its GIL) with the server or the benchmark's bookkeeping. The job names the
server, one request body (a file: every request of a run carries the same image), the pre-signed
requests (path-and-query and digest each; signing is not timed) and the concurrency; the answer, one
JSON object on stdout, has per request the send time, the latency, the HTTP status and, for an error,
its ``error_code``, plus the first successful body as a sample.

Each of ``concurrency`` threads keeps one keep-alive connection and takes the next request until none is
left or the time limit has passed. Sending a body and waiting for the answer release the GIL, so one
process drives eight connections with a few percent of a core.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

#: HTTP status recorded for a request that got no answer (connection refused or reset, timeout).
NO_ANSWER = 0


def run_load(job: dict[str, Any]) -> dict[str, Any]:
    """Send ``job["requests"]`` at ``job["concurrency"]``; return the per-request results."""
    host, port = str(job["host"]), int(job["port"])
    body = Path(job["body_file"]).read_bytes()
    requests: list[dict[str, str]] = list(job["requests"])
    concurrency = max(1, int(job["concurrency"]))
    deadline = time.perf_counter() + float(job.get("max_seconds", 60.0))
    timeout = float(job.get("timeout_s", 120.0))
    headers = {str(k): str(v) for k, v in dict(job.get("headers", {})).items()}
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    results: list[dict[str, Any]] = []
    sample: dict[str, Any] = {}
    origin = time.perf_counter()

    def next_index() -> int | None:
        with lock:
            if time.perf_counter() >= deadline:
                return None
            return next(cursor, None)

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            while (index := next_index()) is not None:
                item = requests[index]
                sent = {
                    **headers,
                    "X-Yoti-Auth-Id": item["sdk_id"],
                    "X-Yoti-Auth-Digest": item["digest"],
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                }
                start = time.perf_counter()
                status, payload = NO_ANSWER, b""
                error: str | None = None
                try:
                    conn.request("POST", item["url_path"], body=body, headers=sent)
                    response = conn.getresponse()
                    payload = response.read()
                    status = response.status
                    if response.will_close:
                        conn.close()
                except (OSError, http.client.HTTPException) as exc:
                    error = type(exc).__name__
                    conn.close()
                end = time.perf_counter()
                if status != 200 and error is None:
                    error = _error_code(payload)
                row = {
                    "start_s": start - origin,
                    "latency_ms": (end - start) * 1000.0,
                    "status": status,
                    "error": error,
                }
                with lock:
                    results.append(row)
                    if status == 200 and not sample:
                        sample.update(json.loads(payload))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, name=f"load-{i}") for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"concurrency": concurrency, "results": results, "sample": sample}


def _error_code(payload: bytes) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        return "NOT_JSON"
    return str(data.get("error_code", "UNKNOWN")) if isinstance(data, dict) else "UNKNOWN"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ageguard.eval.httpload JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())
    sys.stdout.write(json.dumps(run_load(job)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
