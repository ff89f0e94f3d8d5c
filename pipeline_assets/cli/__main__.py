"""`python -m pipeline_assets.cli ...`, as the `redset` console script."""

import sys

from pipeline_assets.cli.main import main

sys.exit(main())
