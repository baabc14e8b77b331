"""``python -m hearai.cli``: the same as the ``hearai`` command."""

import sys

from hearai.cli import main

sys.exit(main())
