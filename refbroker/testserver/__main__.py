"""python -m refbroker.testserver ...: the same as refbroker --test-server ..."""

import sys

from ..cli import main

sys.exit(main(["--test-server", *sys.argv[1:]]))
