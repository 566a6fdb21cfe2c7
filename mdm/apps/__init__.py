"""App builds: APKs registered by sha256, released channel by channel, installed over SSH."""
