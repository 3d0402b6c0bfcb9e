"""`python -m raptor`: the `raptor` command (raptor.commands.cli)."""

import sys

from raptor.commands.cli import main

sys.exit(main())
