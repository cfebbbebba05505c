"""`python -m bench`: every benchmark, one summary table (bench/suite.py)."""

import sys

from bench.suite import main

sys.exit(main())
