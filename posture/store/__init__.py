"""Storing: facts from collection (facts.py) over bulk loads (bulk.py), and evaluation output:
result rows, scores and score history (results.py), change events (changes.py) and the fleet
snapshot (snapshots.py)."""
