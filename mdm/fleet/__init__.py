"""Reaching devices: SSH transport, device profiles and the bounded-concurrency executor.

This package knows no database: it takes targets and operations and returns results.
"""
