"""The job's identity: a digest of every input that defines what the job trains.

Two deployments with the same identity would train the same model, so they share one job: a
retried Create finds the job the first attempt started, an Update that changes nothing
job-defining keeps it, and any job-defining change (backend, region, base model, dataset
content, grader version, hyperparameters, KMS key, VPC) gives a new identity and a new job.
Operational settings (wait for validation, what Delete does, tags, the output prefix, the
service role, the SSM parameter) are deliberately left out: changing them must not restart a
job that costs hours of training.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from rft_job.spec import JobSpec

# Bumped only if the digest's inputs change meaning; part of the digest so that old and new
# handler versions never mistake each other's jobs for their own.
IDENTITY_VERSION = 1
NAME_DIGEST_CHARS = 16
MAX_NAME = 63
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$")
MODEL_NAME = re.compile(r"^([0-9a-zA-Z][_-]?){1,63}$")
REQUEST_TOKEN = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?$")
# Uploaded files (OpenAI-compatible backend) are named '<prefix>-<digest>-<split>.jsonl'.
FILE_SPLITS = ("train", "validation")


def identity_inputs(spec: JobSpec) -> dict[str, Any]:
    """The job-defining inputs, as the plain data the digest is computed from."""
    return {
        "version": IDENTITY_VERSION,
        "environment": spec.environment,
        "backend": spec.backend,
        "region": spec.region,
        "base_model": spec.base_model,
        "dataset": spec.dataset_digest,
        # The staged object names are content-addressed too; they also say whether a
        # validation split is used.
        "training_data": spec.training_data_uri,
        "validation_data": spec.validation_data_uri,
        "grader": _grader(spec),
        "hyperparameters": spec.hyperparameters,
        "kms_key": spec.kms_key_arn,
        "vpc": (
            None
            if spec.vpc is None
            else {
                "subnets": sorted(spec.vpc.subnet_ids),
                "security_groups": sorted(spec.vpc.security_group_ids),
            }
        ),
    }


def _grader(spec: JobSpec) -> dict[str, str]:
    """The grader's part of the identity.

    With a content digest of the grader (code, pinned dependencies, definition) the digest
    and the unqualified function decide: a configuration-only change that publishes a new
    version (memory, timeout) keeps the job, which goes on invoking the version it started
    with. Without a digest, the published version ARN stands in for the grader's content.
    """
    if spec.grader_digest:
        function = spec.grader_function_arn
        if function.count(":") == 7:  # arn:aws:lambda:<region>:<account>:function:<name>:<q>
            function = function.rsplit(":", 1)[0]
        return {"function": function, "digest": spec.grader_digest}
    return {"function": spec.grader_function_arn}


@dataclass(frozen=True)
class Identity:
    """A job identity and the names derived from it."""

    digest: str
    name_prefix: str

    @property
    def name_stem(self) -> str:
        """The part every job name of this identity starts with (used to list them)."""
        return f"{self.name_prefix}-{self.digest[:NAME_DIGEST_CHARS]}"

    def job_name(self, attempt: int) -> str:
        """The native job name of the ``attempt``-th job of this identity (1-based).

        A job that failed or was stopped keeps its name; a later deployment of the same
        inputs needs a fresh one, hence the attempt number.
        """
        return _checked(f"{self.name_stem}-{attempt}", JOB_NAME, "job name")

    def model_name(self, attempt: int) -> str:
        """The custom model name of the ``attempt``-th job (same shape as the job name)."""
        return _checked(f"{self.name_stem}-{attempt}", MODEL_NAME, "custom model name")

    def request_token(self, attempt: int) -> str:
        """The idempotency token: a resent create of the same attempt is the same request."""
        token = f"{self.digest}-{attempt}"
        if not REQUEST_TOKEN.match(token):
            raise ValueError(f"client request token {token!r} does not match the API pattern")
        return token

    def file_name(self, split: str) -> str:
        """The name a dataset split is uploaded under (OpenAI-compatible backend).

        The Files API returns a file's ``filename`` and a job its ``training_file`` id, both
        documented: a later call finds the jobs of this identity through the files named
        after it, without the undocumented job ``metadata``.
        """
        if split not in FILE_SPLITS:
            raise ValueError(f"split {split!r}: must be one of {', '.join(FILE_SPLITS)}")
        return f"{self.name_prefix}-{self.digest}-{split}.jsonl"


def _checked(name: str, pattern: re.Pattern[str], what: str) -> str:
    if len(name) > MAX_NAME or not pattern.match(name):
        raise ValueError(f"{what} {name!r} is longer than {MAX_NAME} characters or malformed")
    return name


def identity_of(spec: JobSpec) -> Identity:
    """The identity of the job ``spec`` describes."""
    canonical = json.dumps(identity_inputs(spec), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return Identity(digest=digest, name_prefix=spec.name_prefix)


def attempt_of(job_name: str, identity: Identity) -> int | None:
    """The attempt number encoded in ``job_name`` if it belongs to ``identity``."""
    stem = identity.name_stem + "-"
    if not job_name.startswith(stem):
        return None
    tail = job_name[len(stem) :]
    return int(tail) if tail.isdigit() else None
