"""Imported by the process pool's fork server: compiled kernels loaded once, inherited by every worker.

What is loaded here stays for the server's life: it is loaded without the cyclic
collector and then frozen out of its reach (``actors.setup_time.collector_paused``),
so that a worker's collections neither walk nor write to the objects it shares with
the server (each write would copy a page into the worker), and the server's exit does
not tear them down one by one.
"""

from actors.setup_time import collector_paused

with collector_paused():
    from actors.executors.step import warm_up

    warm_up()
