"""The numerical heart: layouts, connectomes, the thesis math (reference and fast kernels), data."""
