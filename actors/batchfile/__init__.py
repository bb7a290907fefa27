"""The batch language: a batch file parsed into passes, its settings, and the pre-flight that checks a run."""
