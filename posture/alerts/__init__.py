"""Email alerts on what got worse (issue 16): rules, planning after a scan's evaluation, and the
outbox a Celery task sends from.

- rules.py: checking a rule's fields and whether it covers a change;
- kinds.py: the kinds of rule, their parameters and the limits each applies;
- triggers.py: what a scan or a re-evaluation stored, read back as each kind's candidate items;
- planning.py: what each rule covers among a closed scan's changes, written as Notification rows;
- reevaluation.py: the same for re-evaluations without a scan, by a per-scope cursor;
- timed.py: stale or offline clusters and expiring attestations or exceptions, from the tick;
- preview.py: what a rule would send, rendered as sent, written nowhere;
- routing.py: who receives a rule's items (subscribers, distribution addresses) and the rows;
- digest.py, cap.py, unsubscribe.py: daily digests, the per-recipient daily cap and its
  summaries, one-click unsubscribe (RFC 8058); tick.py: beat's alert tick sending digests and
  cap summaries; footer.py: what every message carries for its recipient;
- messages.py: the message of a notification, from templates/emails/ (text.py: its helpers);
- smtp.py and delivery.py: the send, claimed with a conditional UPDATE, retried with backoff;
- outbox.py: the watchdog's part (rows whose message or worker was lost).
"""
