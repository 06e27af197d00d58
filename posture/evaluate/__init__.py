"""Facts → verdicts: the checks (checks.py), the rules around them (rules.py) and what they read
besides facts (context.py), scores (scoring.py), fleet aggregates (tally.py), and the scope's
evaluation lock (lock.py). The run over a scope is posture/scans/evaluation.py; what it stores,
posture/store/."""
