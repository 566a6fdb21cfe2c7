"""Provisioning stations: USB-attached phones driven with adb, reached over SSH."""
