"""``python -m slaengine``: the same as the ``slaengine`` command."""

import sys

from slaengine.cli import main

sys.exit(main())
