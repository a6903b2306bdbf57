"""The coordinator's duties as pure decisions over data (no I/O, ``now`` passed in).

``rule_match`` finds the rule for a segment (Druid's ``appliesTo``); ``planning`` turns used
segments, rules and a snapshot of the historicals into one cycle's plan (loads, drops, cancels,
segments to mark unused, balancing moves); ``status`` answers load status and handoff questions.
The thin I/O shell that runs them is ``services/coordinator/duty_loop.py``.
"""
