"""The evaluation after a fine-tuning job: both models sampled on the validation prompts,
graded by the job's own reward Lambda version, summarized, reported and gated.

One module per concern, each importable without the heavy packages (``openai``, ``matplotlib``)
that only some steps need: ``ids`` (job and prompt ids), ``settings`` (the state machine's
context), ``sampling`` (model calls with retries), ``grading`` (the reward Lambda with Bedrock's
event shape), ``records`` (one record per sample, S3 parts), ``evaluate`` (a batch of prompts,
end to end), ``stats`` (the figures), ``report`` (markdown and PNG), ``gate`` (the promotion
decision), ``publish`` (CloudWatch metrics and the notification).
"""
