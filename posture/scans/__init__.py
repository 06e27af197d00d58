"""The scan lifecycle, one way: request, start, collect batches, evaluate, finish; watchdog and schedules."""
