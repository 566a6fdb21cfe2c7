"""The operator's SSH key: create it, show it (`mdm keys`)."""
