"""Operators and their roles: who may run which command on a shared inventory."""
