"""Fleet runs of every device feature: targets from device rows, results back into rows."""
