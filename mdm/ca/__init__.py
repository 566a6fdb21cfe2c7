"""The force's SSH user certificate authority: operators reach devices with short-lived
certificates it signs, and a leaver's certificates are revoked in an OpenSSH KRL."""
