"""The change feed: every stored change, once, in the order it became visible (GET /api/v1/changes)."""
