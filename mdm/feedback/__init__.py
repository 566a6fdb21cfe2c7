"""Feedback from officers (the records live in mdm/rollout/feedback.py)."""
