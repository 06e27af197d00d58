"""The change feed: every stored change, once, in the order it became visible (GET /api/v1/changes).

- `publish.py`: changes are copied into FeedEntry in the transaction that makes them final.
- `read.py`: `changes_after(cursor, limit)`, pages after a signed cursor.
- `prune.py`: entries older than ARC_FEED_RETENTION_DAYS go; older cursors get CursorExpired.
"""
