"""Rule-based triage: rule files (``*.rules.yaml``) are data, loaded and checked at start (``loader``); the
engine evaluates them on each stored version a trigger matches (``engine``, history from ``facts``); the
outbox handlers write the alerts, a Task and a Flag, as ``relais-triage`` (``triage``, ``alerts``).
Free-text complaints are matched by ``french_text``. Decision support, not diagnosis."""
