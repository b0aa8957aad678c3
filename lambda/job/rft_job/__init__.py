"""The fine-tuning job custom resource: start, follow and stop one RFT job per environment.

Modules: ``spec`` (the custom resource's properties), ``identity`` (the job's deterministic
identity and the names derived from it), ``model`` (the backend-neutral job view),
``openai_backend`` / ``bedrock_backend`` (the two ways to run a job), ``record`` (the SSM
handover record) and ``lifecycle`` (what Create, Update and Delete do).
"""
