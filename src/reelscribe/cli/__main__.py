"""``python -m reelscribe.cli``: the same as the ``reelscribe`` command."""

import sys

from reelscribe.cli import main

sys.exit(main())
