"""Imported by the process pool's fork server: compiled kernels loaded once, inherited by every worker."""

from actors.executors.step import warm_up

warm_up()
