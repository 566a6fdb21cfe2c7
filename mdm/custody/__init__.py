"""Custody: who holds which device, and who held it at any instant."""
