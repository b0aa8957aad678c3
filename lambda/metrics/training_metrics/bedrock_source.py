"""A native job's status (GetModelCustomizationJob) and training points (its S3 output).

A customization job writes under ``<outputDataConfig.s3Uri>/model-customization-job-<id>/``;
the documented metrics file is ``training_artifacts/step_wise_training_metrics.csv``. Which
files an RFT job writes there is [open], so every ``*.csv`` under the job's folder whose
name mentions "metric" is read. No file yet means no data yet, not an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from training_metrics.csv_metrics import parse_metrics_csv
from training_metrics.model import Cursor, Fetched, JobState, Point, normalize_bedrock_status
from training_metrics.points import first_per_step


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> ``("bucket", "key/prefix")``."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ValueError(f"outputDataConfig.s3Uri = {uri!r}: not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def job_folder(description: dict[str, Any]) -> tuple[str, str]:
    """Bucket and key prefix of the folder a job writes its artifacts to."""
    output = (description.get("outputDataConfig") or {}).get("s3Uri")
    if not output:
        raise ValueError(f"job {description.get('jobArn')}: no outputDataConfig.s3Uri")
    bucket, prefix = split_s3_uri(str(output))
    job_id = str(description["jobArn"]).rsplit("/", 1)[-1]
    prefix = f"{prefix.rstrip('/')}/" if prefix.strip("/") else ""
    return bucket, f"{prefix}model-customization-job-{job_id}/"


class BedrockSource:
    """:class:`~training_metrics.model.Source` for ``CreateModelCustomizationJob`` jobs."""

    def __init__(self, bedrock: Any, s3: Any) -> None:
        self._bedrock = bedrock
        self._s3 = s3
        self._described: dict[str, dict[str, Any]] = {}

    def _describe(self, job_id: str, *, fresh: bool) -> dict[str, Any]:
        if fresh or job_id not in self._described:
            response = self._bedrock.get_model_customization_job(jobIdentifier=job_id)
            self._described[job_id] = response
        return self._described[job_id]

    def state(self, job_id: str) -> JobState:
        """The job's current status, with training (not validation) counted as running."""
        job = self._describe(job_id, fresh=True)
        raw = str(job["status"])
        status = normalize_bedrock_status(raw, job.get("statusDetails"))
        created = job.get("creationTime")
        return JobState(
            job_id=job_id,
            backend="bedrock",
            status=status,
            raw_status=raw,
            fine_tuned_model=job.get("outputModelArn") or job.get("outputModelName"),
            # only a failed job's message means anything
            failure=(job.get("failureMessage") or None) if status == "failed" else None,
            created_at=_epoch(created) if created is not None else None,
        )

    def fetch(self, job_id: str, cursor: Cursor) -> Fetched:
        """Points above ``cursor`` from the job's metrics files (none until they exist)."""
        bucket, folder = job_folder(self._describe(job_id, fresh=False))
        points: list[Point] = []
        for key, modified in self._metrics_files(bucket, folder):
            try:
                body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except self._s3.exceptions.NoSuchKey:
                continue  # replaced between listing and reading: the next run reads it
            text = body.decode("utf-8-sig", errors="replace")
            found = parse_metrics_csv(text, source=f"s3://{bucket}/{key}", default_time=modified)
            points.extend(p for p in found if cursor.is_new(p))
        return Fetched(first_per_step(points))

    def _metrics_files(self, bucket: str, folder: str) -> list[tuple[str, float]]:
        files = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=folder):
            for item in page.get("Contents", []):
                name = str(item["Key"]).rsplit("/", 1)[-1].lower()
                if name.endswith(".csv") and "metric" in name:
                    files.append((str(item["Key"]), _epoch(item["LastModified"])))
        # the documented training file first, so its values win over any other file's
        files.sort(key=lambda f: (not f[0].endswith("step_wise_training_metrics.csv"), f[0]))
        return files


def _epoch(value: datetime) -> float:
    """Seconds since the epoch; a time without a zone is UTC (as AWS APIs mean it)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
