"""`python -m deploystats` runs the command line."""

import sys

from deploystats.cli import main

sys.exit(main())
