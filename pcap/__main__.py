"""`python -m pcap`: see pcap/cli.py."""

import sys

from .cli import main

sys.exit(main())
