"""Enrolment: the supplier's delivery manifest, identity checks and SSH enrolment."""
