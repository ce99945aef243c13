"""`python -m fraudops_dev.cli`: how `fraudops up` starts the stack's servers (and tests run the CLI in a
child process), so it must work without the `fraudops` entry point installed."""

import sys

from fraudops_dev.cli import main

sys.exit(main())
