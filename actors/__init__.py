"""The actors: batch language, coordinator and workers, result table — no numeric loops here."""
