"""Operator access by SSH certificates: the force's user CA, and what devices trust of it."""
