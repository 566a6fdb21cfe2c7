"""Devices: the lifecycle, lookups, and the helpdesk's view of a device."""
