"""gunicorn settings from the environment; gunicorn reads ./gunicorn.conf.py by itself.

X-Forwarded-Proto counts only when it comes from ARC_TRUSTED_PROXIES, the list the app also reads
X-Forwarded-For by (web/throttle.py): a client that reaches gunicorn directly cannot claim HTTPS.
gunicorn takes exact addresses, not networks.
"""

import os

forwarded_allow_ips = os.environ.get("ARC_TRUSTED_PROXIES", "").strip() or "127.0.0.1,::1"
