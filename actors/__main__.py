"""``python -m actors …``: see ``actors.cli``."""

import gc
import sys

from actors.cli import main

if __name__ == "__main__":
    code = main()
    # The process ends here: what is still alive goes back to the system with it.  Kept out
    # of the cyclic collector, it is not walked and torn down object by object on the way
    # out -- with numba's kernels loaded, about a third of a second.
    gc.freeze()
    sys.exit(code)
