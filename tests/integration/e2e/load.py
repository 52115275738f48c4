"""A bounded HTTP load generator for release tests: steady requests through the routers.

It sends GETs with a Host header to every node's router in turn, from a few threads, until
stopped or until ``max_seconds`` — so it always stops by itself — and records each answer's
time, status and body (the webapp images answer their version). Targets are testbed
addresses only (10.77.0.0/24).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    at: float
    status: int  # 0: no HTTP answer (connection error or timeout)
    body: str


@dataclass
class Load:
    routers: list[str]  # "10.77.0.11:9080", ...
    host: str
    threads: int = 4
    max_seconds: float = 300.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(10)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, offset: int) -> None:
        end = time.monotonic() + self.max_seconds
        i = offset
        while not self._stop.is_set() and time.monotonic() < end:
            addr, port = self.routers[i % len(self.routers)].rsplit(":", 1)
            i += 1
            status, body = 0, ""
            conn = http.client.HTTPConnection(addr, int(port), timeout=5)
            try:
                conn.request("GET", "/", headers={"Host": self.host})
                resp = conn.getresponse()
                status, body = resp.status, resp.read().decode(errors="replace").strip()
            except (OSError, http.client.HTTPException) as e:
                body = f"{type(e).__name__}: {e}"
            finally:
                conn.close()
            with self._lock:
                self.answers.append(Answer(time.monotonic(), status, body))
            time.sleep(0.005)

    # ------------------------------------------------------------------ reading the record

    def since(self, t0: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.at >= t0]

    def failures(self, answers: list[Answer] | None = None) -> list[Answer]:
        return [a for a in (self.answers if answers is None else answers) if a.status != 200]

    def shares(self, answers: list[Answer]) -> dict[str, float]:
        ok = [a.body for a in answers if a.status == 200]
        counts = Counter(ok)
        return {k: v / len(ok) for k, v in counts.items()} if ok else {}

    def answered_window(self, seconds: float, timeout: float = 60.0) -> list[Answer]:
        """Record windows of ``seconds`` until one holds any answer (bounded by ``timeout``):
        on a loaded machine a short window can close before a request of the load came back,
        and an empty window says nothing (its shares are {})."""
        end = time.monotonic() + timeout
        while True:
            answers = self.window(seconds)
            if answers or time.monotonic() > end:
                return answers

    def window(self, seconds: float) -> list[Answer]:
        """Record for ``seconds`` more, return what was answered meanwhile."""
        t0 = time.monotonic()
        time.sleep(seconds)
        return self.since(t0)
