"""A fleet of real OpenSSH devices on this machine, for the demo, the tests and rehearsals.

Each lab device is its own `sshd` on its own loopback address with its own host key and
an Android-like home directory whose stand-in `getprop`, `pm`, `settings`, `am` and DPC
keep the device's state in files, so a test can read what really happened.
"""
