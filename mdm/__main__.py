"""Allow `python -m mdm`."""

from mdm.cli import main

main()
