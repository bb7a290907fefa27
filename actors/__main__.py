"""``python -m actors …``: see ``actors.cli``."""

import sys

from actors.cli import main

if __name__ == "__main__":
    sys.exit(main())
