"""Training before handover (the records and planning live in mdm/rollout/training.py)."""
