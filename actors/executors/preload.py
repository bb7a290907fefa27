"""Imported by the process pool's fork server: compiled kernels loaded once, inherited by every worker.

What is loaded here stays for the server's life, so it is moved out of the cyclic
collector's reach (``gc.freeze``): a worker's collections then neither walk nor
write to the objects it shares with the server (each write would copy a page into
the worker), and the server's exit does not tear them down one by one.
"""

import gc

from actors.executors.step import warm_up

warm_up()
gc.freeze()
