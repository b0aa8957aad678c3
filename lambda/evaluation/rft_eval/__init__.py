"""The evaluation of a tuned model against its base model (one Lambda bundle, several handlers)."""
