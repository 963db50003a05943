"""``python -m netc`` (also what ``torchrun -m netc`` runs)."""

import sys

from netc.cli import main

sys.exit(main())
