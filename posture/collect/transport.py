"""The HTTP transport under the Resource Graph client (client.py)."""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.transport import RequestsTransport


class HeadersFirstTransport(RequestsTransport):
    """The requests transport, handing each answer to the call's `on_headers` option as soon as
    its status and headers are in, before its body is read: the quota news in the headers of a
    large page reaches the other workers' pacers without waiting for the page to download."""

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        on_headers = kwargs.pop("on_headers", None)
        if on_headers is None or kwargs.get("stream"):
            return super().send(request, **kwargs)
        response = super().send(request, **{**kwargs, "stream": True})
        try:
            on_headers(response)
            response.read()  # as the unstreamed call would have
        finally:
            response.close()
        return response
