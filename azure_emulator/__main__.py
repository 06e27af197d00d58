"""CLI: python -m azure_emulator serve --clusters N --seed S [--port P] [--quota 15/5|off]
[--token-lifetime SECONDS] [--workdir DIR] [--redirect-uri URL ...]

Prints one JSON line (base_url, ca_file, credentials, subscription count, management groups) and
serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
from types import FrameType

from azure_emulator.emulator import Emulator, Quota


def _quota(text: str) -> Quota:
    if text.lower() == "off":
        return None
    try:
        limit, window = text.split("/")
        return int(limit), float(window)
    except ValueError as error:
        raise argparse.ArgumentTypeError("expected LIMIT/SECONDS (e.g. 15/5) or off") from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m azure_emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="generate a fleet and serve it over HTTPS")
    serve.add_argument("--clusters", type=int, default=200)
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--quota", type=_quota, default=(15, 5.0), help="LIMIT/SECONDS or off")
    serve.add_argument("--token-lifetime", type=int, default=3600)
    serve.add_argument("--workdir", default=None, help="where the CA and server certificate go")
    serve.add_argument("--log-bodies", action="store_true")
    serve.add_argument(
        "--redirect-uri", action="append", default=[], help="register a sign-in redirect URI (e.g. http://127.0.0.1:8000/oidc/callback/)"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = Emulator(
        args.clusters,
        args.seed,
        quota=args.quota,
        token_lifetime=args.token_lifetime,
        workdir=args.workdir,
        port=args.port,
        log_bodies=args.log_bodies,
    )
    # This process is the emulator's own: keep its fleet out of the cycle collector, whose full
    # collections over millions of rows would stall request threads for a second or more.
    gc.freeze()
    emulator.start()
    emulator.register_redirect_uri(*args.redirect_uri)
    try:
        sys.stdout.write(json.dumps(emulator.summary()) + "\n")
        sys.stdout.flush()
        stop.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
