"""Facts → verdicts: the checks (checks.py), the rules around them (rules.py), the run (run.py)."""
