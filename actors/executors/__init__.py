"""Where the numeric steps run: the executors, the process pool, the shared arena and the step's glue."""
