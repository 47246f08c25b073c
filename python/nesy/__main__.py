"""``python -m nesy ...``: the ``nesy`` command line (the console script's entry point,
:func:`nesy.cli.main`), for environments where the script is not on ``PATH``."""

import sys

from nesy.cli import main

if __name__ == "__main__":
    sys.exit(main())
