"""The training-metrics collector: job status and training curves into CloudWatch.

Modules: ``catalog`` (metric names and how the backends spell them), ``model`` (the data
passed between the parts), ``openai_source`` / ``bedrock_source`` (fetching a job's status
and points from either backend), ``csv_metrics`` (the native job's metrics files),
``store`` (the job record and the cursor in SSM), ``publish`` (CloudWatch and SNS) and
``collector`` (one run).
"""
