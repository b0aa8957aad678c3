"""The CDK side of the project: the typed config, the stack, one construct per concern."""
