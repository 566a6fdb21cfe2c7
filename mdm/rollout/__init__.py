"""The phased rollout: the plan, the pilot, waves and gates, training, feedback, handover."""
