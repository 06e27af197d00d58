"""Email alerts on what got worse (issue 16): rules, planning after a scan's evaluation, and the
outbox a Celery task sends from.

- rules.py: checking a rule's fields and whether it covers a change;
- kinds.py: the kinds of rule and their parameters;
- planning.py: what each rule covers among a closed scan's changes, written as Notification rows;
- routing.py: who receives a rule's items (subscribers, distribution addresses) and the rows;
- messages.py: the message of a notification, from templates/emails/;
- smtp.py and delivery.py: the send, claimed with a conditional UPDATE, retried with backoff;
- outbox.py: the watchdog's part (rows whose message or worker was lost).
"""
