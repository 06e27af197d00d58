"""Request log and counters, readable from tests (Python API or GET /_emu/log, /_emu/stats)."""

from __future__ import annotations

import threading
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from azure_emulator.messages import Request, Response

_SECRET_FIELDS = ("client_secret", "client_assertion")


class Recorder:
    def __init__(self, *, log_bodies: bool, limit: int = 10_000, bodies: int = 500) -> None:
        self.log_bodies = log_bodies
        self._log: deque[dict[str, Any]] = deque(maxlen=limit)  # bounded for long benchmarks
        self._with_bodies: deque[dict[str, Any]] = deque()
        self._bodies = bodies  # response bodies (whole pages) are kept for the newest entries only
        self._counts: Counter[str] = Counter()
        self._principals: dict[str, Counter[str]] = {}
        self._span: dict[str, list[str]] = {}  # kind -> [first, last] answer time, for benchmarks
        self._lock = threading.Lock()

    def count(self, name: str, principal: str | None = None) -> None:
        with self._lock:
            self._counts[name] += 1
            if principal is not None:
                self._principals.setdefault(principal, Counter())[name] += 1

    def record(
        self,
        kind: str,
        request: Request,
        response: Response,
        *,
        principal: str | None,
        fault: str | None,
    ) -> None:
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(),
            "kind": kind,
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": {k: ("Bearer <redacted>" if k == "authorization" else v) for k, v in request.headers.items()},
            "body": _body(request),
            "status": None if response.drop else response.status,
            "response_headers": dict(response.headers),
            "principal": principal,
            "fault": fault,
        }
        if self.log_bodies:
            entry["response"] = response.payload
        with self._lock:
            self._counts[f"requests.{kind}"] += 1
            self._span.setdefault(kind, [entry["time"], entry["time"]])[1] = entry["time"]
            if response.status == 429 and not response.drop:
                self._counts["responses_429"] += 1
            self._log.append(entry)
            if self.log_bodies:
                self._with_bodies.append(entry)
                if len(self._with_bodies) > self._bodies:
                    self._with_bodies.popleft()["response"] = "<dropped: older than the newest bodies>"

    def log(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._log if kind is None or e["kind"] == kind]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            return {
                "requests": {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("requests.")},
                "arg_accepted": counts.get("arg_accepted", 0),
                "arg_throttled": counts.get("arg_throttled", 0),
                "arm_gets": counts.get("arm_gets", 0),
                "arm_throttled": counts.get("arm_throttled", 0),
                "responses_429": counts.get("responses_429", 0),
                "faults_applied": counts.get("faults_applied", 0),
                "tokens_issued": counts.get("tokens_issued", 0),
                "principals": {p: dict(c) for p, c in self._principals.items()},
                "span": {k: {"first": v[0], "last": v[1]} for k, v in self._span.items()},
            }

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._with_bodies.clear()
            self._counts.clear()
            self._principals.clear()
            self._span.clear()


def _body(request: Request) -> Any:
    if not request.body:
        return None
    content_type = request.header("content-type") or ""
    if "application/x-www-form-urlencoded" in content_type:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        return {k: ("<redacted>" if k in _SECRET_FIELDS else v) for k, v in form.items()}
    try:
        return request.json()
    except ValueError:
        return request.body.decode("utf-8", "replace")
