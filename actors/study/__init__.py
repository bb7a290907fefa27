"""The study instrument: benchmarks, the thesis' figures, log inspection, prediction.

Every command here drives the runtime from the outside, as a user would: it writes
batch files, runs them with ``actors.runner.Runner`` and reads what the runner
reports.  Nothing in the runtime knows about it.
"""
