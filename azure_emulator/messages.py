"""Transport-neutral request and response objects the services work with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from azure_emulator.kql.values import format_datetime


@dataclass
class Request:
    method: str
    raw_path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    client: str = "127.0.0.1"
    path: str = field(init=False)
    query: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.raw_path)
        self.path = unquote(parts.path)
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    payload: Any = None  # the JSON value behind `body`, for the request log
    drop: bool = False  # close the connection without answering


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default).encode("utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return Response(status, dumps(payload), all_headers, payload)
