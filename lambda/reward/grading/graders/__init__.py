"""One module per grader family; :mod:`grading.registry` imports each only when used."""
