"""What a run leaves behind: result tables, persistence and checkpoints, JSON logs, and the locks on them."""
