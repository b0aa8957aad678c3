"""The native backend: ``CreateModelCustomizationJob`` with ``REINFORCEMENT_FINE_TUNING``.

The job's physical id is its ARN (the API accepts ARN or name everywhere). Jobs of one
identity are named ``<prefix>-<digest16>-<attempt>`` so they can be listed by name, and each
create carries the idempotency token ``<digest>-<attempt>``: a create resent after a lost
response returns the job the first request started.

Whether the data was accepted: the service model documents ``statusDetails`` (validation,
data processing and training sub-task statuses) "for a Distillation job"; whether RFT jobs
fill it is not documented [open; settled by the first GetModelCustomizationJob of a real RFT
job]. With a validation sub-status, the job is validating until it is ``Completed``. Without
any sub-status, an ``InProgress`` job is taken as accepted at once and flagged
(``JobView.validation_reported``): waiting for details that may never come would cancel
every job at the deadline, and any fixed grace period would be a guess. A later rejection
shows as a ``Failed`` job (job-state notification, the collector's record).
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger

from rft_job import aws
from rft_job.deadline import Deadline
from rft_job.identity import Identity, attempt_of
from rft_job.model import JobError, JobView, Lookup, PendingFiles, Phase
from rft_job.spec import JobSpec

logger = Logger(service="job", child=True)

BACKEND = "bedrock"
JOB_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:([a-z0-9-]+):\d{12}:model-customization-job/.+$")
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$")
_STATUS_PHASE = {
    "Completed": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
    "Stopping": Phase.STOPPING,
    "Stopped": Phase.CANCELLED,
}
# Sub-statuses that mean the service is still checking the data.
_VALIDATING = ("NotStarted", "InProgress")
# The sub-tasks of ``statusDetails``, in the order a job runs them.
_SUB_TASKS = ("validationDetails", "dataProcessingDetails", "trainingDetails")


def sub_status(job: dict[str, Any], task: str) -> str | None:
    """The status of one sub-task (``validationDetails``, ...) of a job, if reported."""
    details = job.get("statusDetails") or {}
    status = (details.get(task) or {}).get("status")
    return str(status) if status else None


def validation_reported(job: dict[str, Any]) -> bool:
    """Whether the job says anything about its data checks: a validation sub-status, or a
    later sub-task that has one (it runs only on accepted data)."""
    return any(sub_status(job, task) for task in _SUB_TASKS)


def is_job_id(job_id: str) -> bool:
    """Whether ``job_id`` looks like a customization job ARN (this backend's physical ids)."""
    return bool(JOB_ARN.match(job_id))


def region_of(job_arn: str) -> str | None:
    """The region in a customization job ARN."""
    match = JOB_ARN.match(job_arn)
    return match.group(1) if match else None


def partition_of(region: str) -> str:
    """The ARN partition of ``region``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def phase_of(job: dict[str, Any]) -> Phase:
    """The lifecycle phase of a ``GetModelCustomizationJob`` response or list summary."""
    status = str(job.get("status", ""))
    if status in _STATUS_PHASE:
        return _STATUS_PHASE[status]
    if status != "InProgress":
        logger.warning("unknown customization job status; treating it as active", status=status)
        return Phase.VALIDATING
    validation = sub_status(job, "validationDetails")
    if validation in _VALIDATING:
        return Phase.VALIDATING
    if validation == "Failed":
        return Phase.FAILED
    # Validation completed, or no details at all: past the data checks as far as anything
    # here can tell (see the module docstring; ``validation_reported`` says which).
    return Phase.RUNNING


class BedrockBackend:
    """RFT jobs through Bedrock's native customization API."""

    name = BACKEND

    def __init__(self, region: str) -> None:
        self.region = region
        self._client = aws.client("bedrock", region)

    # -- the JobBackend protocol ----------------------------------------------------------

    def find(self, spec: JobSpec, identity: Identity) -> Lookup:
        """List the jobs named after ``identity``: the newest reusable one and the count."""
        candidates: list[tuple[int, str]] = []
        jobs: list[JobView] = []
        highest = 0
        paginator = self._client.get_paginator("list_model_customization_jobs")
        pages = paginator.paginate(
            nameContains=identity.name_stem, sortBy="CreationTime", sortOrder="Descending"
        )
        for page in pages:
            for summary in page.get("modelCustomizationJobSummaries", []):
                attempt = attempt_of(str(summary.get("jobName", "")), identity)
                if attempt is None:
                    continue
                highest = max(highest, attempt)
                jobs.append(self._view(summary))
                if phase_of(summary).reusable:
                    candidates.append((attempt, str(summary["jobArn"])))
        # The newest reusable job, unless it succeeded and its model was deleted since: adopting
        # it would record a model nobody can call, so an older one (or a new job) is taken.
        for _, job_arn in sorted(candidates, reverse=True):
            view = self.describe(job_arn)
            if view is None or not view.phase.reusable:
                continue
            if view.phase is Phase.SUCCEEDED and not self._model_exists(view.fine_tuned_model):
                logger.info(
                    "not adopting a completed job whose custom model was deleted",
                    job_id=job_arn,
                    model=view.fine_tuned_model,
                )
                continue
            return Lookup(reusable=view, attempts=highest, jobs=tuple(jobs))
        return Lookup(reusable=None, attempts=highest, jobs=tuple(jobs))

    def create(
        self, spec: JobSpec, identity: Identity, attempt: int, deadline: Deadline
    ) -> JobView:
        """Start the job; raises :class:`JobError` with the service's message.

        One request (botocore resends it with the same idempotency token on throttling and
        5xx): nothing to hand to ``is_complete``; ``deadline`` is not needed."""
        request = self.create_request(spec, identity, attempt)
        try:
            response = self._client.create_model_customization_job(**request)
        except Exception as err:
            raise JobError(
                f"CreateModelCustomizationJob {request['jobName']} failed: {err}"
            ) from err
        job_arn = str(response["jobArn"])
        logger.info("started customization job", job_id=job_arn, job_name=request["jobName"])
        described = self.describe(job_arn)
        if described is not None:
            return described
        # Read-after-write lag: the job exists (the API said so) but is not readable yet.
        return JobView(
            job_id=job_arn,
            backend=BACKEND,
            region=self.region,
            status="InProgress",
            phase=Phase.VALIDATING,
            name=str(request["jobName"]),
            validation_reported=False,
        )

    def resume(
        self, spec: JobSpec, identity: Identity, pending: PendingFiles, deadline: Deadline
    ) -> JobView | None:
        """Never pending: this backend uploads nothing."""
        raise JobError("the bedrock backend has no pending create to resume")

    def describe(self, job_id: str) -> JobView | None:
        """``GetModelCustomizationJob``; ``None`` if the job does not exist."""
        if not (is_job_id(job_id) or JOB_NAME.match(job_id)) or len(job_id) > 1011:
            return None
        try:
            job = self._client.get_model_customization_job(jobIdentifier=job_id)
        except Exception as err:
            if aws.error_code(err) == "ResourceNotFoundException":
                return None
            raise
        return self._view(job)

    def cancel(self, job: JobView) -> None:
        """``StopModelCustomizationJob``; a job that ended meanwhile is fine."""
        try:
            self._client.stop_model_customization_job(jobIdentifier=job.job_id)
        except Exception as err:
            if aws.error_code(err) not in ("ConflictException", "ValidationException"):
                if aws.error_code(err) == "ResourceNotFoundException":
                    return
                raise
            current = self.describe(job.job_id)
            if current is not None and current.phase.active:
                raise JobError(f"could not stop RFT job {job.job_id}: {err}") from err
        logger.info("stopped customization job", job_id=job.job_id)

    def release(self, job: JobView) -> None:
        """Nothing to release: the data stays in the stack's own bucket."""

    def delete_model(self, job: JobView) -> None:
        """``DeleteCustomModel`` of a succeeded job's output model."""
        if job.fine_tuned_model is None:
            return
        try:
            self._client.delete_custom_model(modelIdentifier=job.fine_tuned_model)
        except Exception as err:
            if aws.error_code(err) == "ResourceNotFoundException":
                return
            raise JobError(
                f"could not delete custom model {job.fine_tuned_model} of RFT job "
                f"{job.job_id}: {err} (delete its deployments first, or set "
                "job.delete_model_on_destroy to false)"
            ) from err
        logger.info("deleted custom model", model=job.fine_tuned_model, job_id=job.job_id)

    def _model_exists(self, model_arn: str | None) -> bool:
        """``GetCustomModel``: whether a succeeded job's output model still exists."""
        if model_arn is None:
            return False
        try:
            self._client.get_custom_model(modelIdentifier=model_arn)
        except Exception as err:
            if aws.error_code(err) == "ResourceNotFoundException":
                return False
            raise
        return True

    # -- request and response shapes --------------------------------------------------------

    def create_request(self, spec: JobSpec, identity: Identity, attempt: int) -> dict[str, Any]:
        """The ``CreateModelCustomizationJob`` parameters for ``spec``."""
        if spec.role_arn is None or spec.output_data_uri is None:
            raise JobError("the bedrock backend needs RoleArn and OutputDataUri")
        base_model = (
            spec.base_model
            if spec.base_model.startswith("arn:")
            else f"arn:{partition_of(spec.region)}:bedrock:{spec.region}::foundation-model/"
            f"{spec.base_model}"
        )
        tags = [{"key": k, "value": v} for k, v in sorted(spec.job_tags.items())]
        tags.append({"key": "rft:identity", "value": identity.digest})
        request: dict[str, Any] = {
            "jobName": identity.job_name(attempt),
            "customModelName": identity.model_name(attempt),
            "roleArn": spec.role_arn,
            "clientRequestToken": identity.request_token(attempt),
            "baseModelIdentifier": base_model,
            "customizationType": "REINFORCEMENT_FINE_TUNING",
            "trainingDataConfig": {"s3Uri": spec.training_data_uri},
            "outputDataConfig": {"s3Uri": spec.output_data_uri},
            "customizationConfig": {
                "rftConfig": {
                    "graderConfig": {"lambdaGrader": {"lambdaArn": spec.grader_function_arn}},
                    "hyperParameters": dict(spec.hyperparameters),
                }
            },
            "jobTags": tags,
            "customModelTags": tags,
        }
        if spec.validation_data_uri:
            request["validationDataConfig"] = {"validators": [{"s3Uri": spec.validation_data_uri}]}
        if spec.kms_key_arn:
            request["customModelKmsKeyId"] = spec.kms_key_arn
        if spec.vpc is not None:
            request["vpcConfig"] = {
                "subnetIds": list(spec.vpc.subnet_ids),
                "securityGroupIds": list(spec.vpc.security_group_ids),
            }
        return request

    def _view(self, job: dict[str, Any]) -> JobView:
        phase = phase_of(job)
        failure = job.get("failureMessage")
        return JobView(
            job_id=str(job["jobArn"]),
            backend=BACKEND,
            region=self.region,
            status=str(job.get("status", "")),
            phase=phase,
            name=str(job.get("jobName") or "") or None,
            validation_reported=phase is not Phase.RUNNING or validation_reported(job),
            # Only failed jobs carry a meaningful failure message.
            failure=str(failure) if failure and phase is Phase.FAILED else None,
            fine_tuned_model=(
                str(job["outputModelArn"])
                if phase is Phase.SUCCEEDED and job.get("outputModelArn")
                else None
            ),
        )
