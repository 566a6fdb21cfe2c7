"""mdm: enrol, assign and manage a police force's smart devices over SSH."""

__version__ = "0.1.0"
