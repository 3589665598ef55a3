"""``python -m pvc_core ...`` is ``dlpvc ...``."""

import sys

from pvc_core.cli import main

sys.exit(main())
