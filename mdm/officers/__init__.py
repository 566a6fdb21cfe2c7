"""Officers: the force's HR roster, imported and kept in step with later exports."""
