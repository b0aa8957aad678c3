"""After a job succeeds: serve the tuned model, evaluate it against the base model with the
job's own grader, and gate its promotion (``lambda/evaluation/handler.py`` entry points).

One module per concern, each importable without the heavy packages (``openai``, ``matplotlib``)
that only some steps need: ``trigger`` (one execution per job), ``prepare`` (the state
machine's context), ``serving`` and ``cleanup`` (native on-demand deployments), ``ids`` (job and
prompt ids), ``settings`` (the context, parsed), ``sampling`` (model calls with retries),
``grading`` (the reward Lambda with Bedrock's event shape), ``records`` (one record per sample,
S3 parts), ``evaluate`` (a batch of prompts, end to end), ``stats`` (the figures), ``report``
(markdown and PNG), ``gate`` (the promotion decision), ``publish`` (CloudWatch metrics and the
notification).
"""
