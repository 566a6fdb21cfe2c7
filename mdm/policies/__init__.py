"""Security policies: layered YAML the force owns, compiled to Android Management API JSON."""
