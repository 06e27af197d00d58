"""Login throttling is django-axes (AXES_* in web/settings/base.py); this module tells it who the client is.

Behind a proxy every request arrives from the proxy's address, so counting by REMOTE_ADDR would let
one client lock out everyone. X-Forwarded-For is read only when the request comes from one of
ARC_TRUSTED_PROXIES, and then only at the position those proxies wrote (AXES_IPWARE_PROXY_COUNT):
a direct client cannot claim another address, and a client behind the proxy cannot hide behind one.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from ipware import get_client_ip


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_address(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or ""
    trusted = {_address(proxy) for proxy in settings.ARC_TRUSTED_PROXIES}
    if _address(remote) in trusted - {None}:
        forwarded, _routable = get_client_ip(
            request,
            proxy_count=settings.AXES_IPWARE_PROXY_COUNT,
            request_header_order=settings.AXES_IPWARE_META_PRECEDENCE_ORDER,
            strict=False,  # entries a client wrote itself sit to the left of the proxies' and are ignored
        )
        if forwarded:
            return forwarded
    return remote or None  # e.g. a request built in code; axes stores no address then
