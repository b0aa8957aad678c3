"""Code shared by the Lambda functions that talk to Bedrock (copied into each bundle)."""
