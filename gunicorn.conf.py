"""gunicorn settings from the environment; gunicorn reads ./gunicorn.conf.py by itself.

X-Forwarded-Proto counts only when it comes from ARC_TRUSTED_PROXIES, the list the app also reads
X-Forwarded-For by (web/throttle.py): a client that reaches gunicorn directly cannot claim HTTPS.
gunicorn takes exact addresses, not networks.
"""

import os

forwarded_allow_ips = os.environ.get("ARC_TRUSTED_PROXIES", "").strip() or "127.0.0.1,::1"

# Django pages are CPU-bound Python: processes carry the load more than threads do. Within one
# process only one thread runs Python at a time, and a thread whose query has returned waits for
# the others' time slices. On two cores with 8 clients (bench/web.py, 50,000 clusters), four
# processes of two threads gave the cluster page a median about 15 % lower than two of four
# (87 vs 106 ms over five runs each; the p95s, 169 vs 176 ms, were within the runs' spread).
# Two threads per process still overlap one request's database waits with another's work.
# WEB_CONCURRENCY is gunicorn's own variable for the process count; the command line overrides both.
workers = int(os.environ.get("WEB_CONCURRENCY", "").strip() or 2 * (os.cpu_count() or 1))
threads = 2
worker_class = "gthread"


def post_worker_init(worker: object) -> None:
    """Move what importing the app allocated (modules, URL patterns, templates, the catalog) out of
    the garbage collector's sight: otherwise every full collection walks it again, and Django
    allocates enough per request to set off collections often."""
    import gc

    gc.freeze()
