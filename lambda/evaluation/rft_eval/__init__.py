"""After a job succeeds: serve the tuned model, evaluate it against the base model with the
job's own grader, and gate its promotion (``lambda/evaluation/handler.py`` entry points)."""
