"""``make review``: what a change costs and risks, per environment, without AWS credentials.

The base ref is synthesized in a temporary git worktree with this checkout's tools
(:mod:`scripts.review.synth`), both cloud assemblies are compared by the CDK toolkit's own
template diff (``template_diff.js``, :mod:`scripts.review.infra`), the job custom resources
tell which environments start a new job (:mod:`scripts.review.retraining`), and
:mod:`scripts.review.render` writes the markdown report or the JSON document.
"""
