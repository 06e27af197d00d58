"""The scan lifecycle, one way, one module per step in the order a scan runs:

- `request.py`: `scan_request` creates a pending Scan (one unfinished scan per scope).
- `start.py`: `start_scan` claims it, lists the scope's subscriptions and plans them in batches.
- `batches.py`: `collect_batch` collects one batch (`sweep.py` asks Azure) and stores it whole;
  a failed attempt is retried, a refused batch split, a hopeless one failed.
- `finish.py`: `evaluate_batch` evaluates a stored batch early while others are collected;
  `finish_scan` marks removals, runs the final evaluation (`evaluation.py`) and closes the scan.
  `evaluation.py` is the one evaluation run (read facts, evaluate, store), also used without a
  scan: governance changes and the catalog re-evaluate stored facts through it.
- `watchdog.py`: hands out again the work of dead workers and lost messages.
- `progress.py` is what the pages read; `schedules.py` keeps beat's entries in step with scopes.

Steps queue the next one by its task name (posture/task_queue.py) once their transaction
commits; posture/tasks.py registers the tasks and is the only module that imports the steps.
Every step takes ids, re-reads state and claims its work with a conditional UPDATE, so a message
delivered twice, late, or to a second worker does nothing the second time.
"""
