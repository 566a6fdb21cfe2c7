"""The audit log as users see it: read it, verify it, checkpoint it."""
