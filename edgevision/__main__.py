"""``python -m edgevision`` is the ``edgevision`` command."""
import sys

from .cli import main

sys.exit(main())
