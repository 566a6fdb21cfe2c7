"""Named groups of officers: the pilot group first, rollout waves later; policies target them."""
