"""`python -m graft.cli` (as torchrun starts workers): the `graft` command."""

import sys

from graft.cli import main

sys.exit(main())
