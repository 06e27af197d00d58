"""Remediation: the catalog's command templates filled with a cluster's values (commands.py),
and the shell script that fixes every failing cluster of a control (script.py)."""
