"""The helpdesk: lost and stolen devices, recoveries, replacements and returns."""
