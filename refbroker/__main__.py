"""`python -m refbroker`: the same as the `refbroker` command."""

import sys

from .cli import main

sys.exit(main())
