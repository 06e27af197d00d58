"""gunicorn settings from the environment; gunicorn reads ./gunicorn.conf.py by itself.

X-Forwarded-Proto counts only when it comes from ARC_TRUSTED_PROXIES, the list the app also reads
X-Forwarded-For by (web/throttle.py): a client that reaches gunicorn directly cannot claim HTTPS.
gunicorn takes exact addresses, not networks.
"""

import os

forwarded_allow_ips = os.environ.get("ARC_TRUSTED_PROXIES", "").strip() or "127.0.0.1,::1"

# Sync workers, one request at a time each, one more process than there are CPUs. Pages and API
# calls are CPU-bound Python (a few ms each, nothing that waits long), so threads within a
# process only take turns with the GIL. A sync worker accepts a connection only when it is free,
# so requests wait in one queue and each runs at nearly a full core, where a gthread worker
# accepts while busy and its requests share the process: on two cores with 8 clients and 50,000
# clusters (bench/web.py, docs/performance.md) 3 sync workers gave the slowest page a p95 of
# 76-83 ms at 213-220 requests/s, 4 gthread workers of 2 threads 139 ms at 183/s. The
# extra process keeps the cores busy while one waits for PostgreSQL or Redis. Sync workers need
# a buffering proxy in front against slow clients, as docker-compose.yml asks for anyway.
# WEB_CONCURRENCY is gunicorn's own variable for the process count; the command line overrides both.
workers = int(os.environ.get("WEB_CONCURRENCY", "").strip() or (os.cpu_count() or 1) + 1)
threads = 1
worker_class = "sync"


def post_worker_init(worker: object) -> None:
    """Move what importing the app allocated (modules, URL patterns, templates, the catalog) out of
    the garbage collector's sight: otherwise every full collection walks it again, and Django
    allocates enough per request to set off collections often."""
    import gc

    gc.freeze()
