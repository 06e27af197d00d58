"""The second process of a large findings export (posture/exports/parallel.py):
`python -m posture.exports.part_process`, its request as JSON on stdin, its progress and outcome
on stdout. Django is set up before the export layer is imported."""

from __future__ import annotations

import json
import sys


def main() -> int:
    request = json.load(sys.stdin)
    import django

    django.setup()
    from posture.exports.parallel import write_part

    return write_part(request, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
