"""The job custom resource's properties, parsed and checked.

CloudFormation hands every scalar property to the handler as a string, so typed values travel
as strings too: ``Hyperparameters`` is a JSON object encoded as a string (numbers keep their
type), flags are ``"true"`` / ``"false"``. Each problem raises :class:`PropertyError` naming
the property, the value and what is allowed, in one line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Backend = Literal["openai", "bedrock"]
OnDelete = Literal["cancel", "retain"]

S3_URI = re.compile(r"^s3://([a-z0-9][-.a-z0-9]{1,61}[a-z0-9])/(.+)$")
LAMBDA_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:function:[a-zA-Z0-9-_.]+"
    r"(:(\$LATEST|[a-zA-Z0-9-_]+))?$"
)
ROLE_ARN = re.compile(r"^arn:aws(-[^:]+)?:iam::\d{12}:role/.+$")
KMS_KEY = re.compile(r"^arn:aws(-[^:]+)?:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# Bedrock job names: letters, digits and '-', ending in a letter or digit; the prefix leaves
# room for '-<16 hex>-<attempt>' within the 63 characters the API allows.
NAME_PREFIX = re.compile(r"^[a-zA-Z0-9](-?[a-zA-Z0-9])*$")
NAME_PREFIX_MAX = 40
PARAMETER_NAME = re.compile(r"^/[a-zA-Z0-9_.\-/]{1,1010}$")
VPC_ID = re.compile(r"^[-0-9a-zA-Z]{1,32}$")

# The reinforcement hyperparameters Bedrock documents for its OpenAI-compatible API (reference
# §9.3). Others (``eval_interval``, ``eval_samples``, ``compute_multiplier``,
# ``reasoning_effort``) and ``validation_file`` are OpenAI's, not documented by Bedrock: an
# endpoint that rejects unknown fields would fail every create, so they are sent only when the
# environment opted in (``SendUndocumentedFields``). Mirrors ``stacks.config``.
OPENAI_DOCUMENTED_HYPERPARAMETERS = frozenset(
    {"n_epochs", "batch_size", "learning_rate_multiplier"}
)

# Properties CloudFormation or the CDK add on their own.
_FRAMEWORK_KEYS = frozenset({"ServiceToken", "ServiceTimeout"})


class PropertyError(ValueError):
    """A custom resource property is missing or invalid (a construct/handler mismatch)."""


@dataclass(frozen=True)
class VpcConfig:
    """Subnets and security groups for a native customization job."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True)
class JobSpec:
    """Everything the handler needs to start, find or stop the environment's job."""

    environment: str
    backend: Backend
    region: str
    base_model: str
    name_prefix: str
    training_data_uri: str
    dataset_digest: str
    grader_function_arn: str
    hyperparameters: dict[str, Any]
    parameter_name: str
    grader_digest: str | None = None
    validation_data_uri: str | None = None
    output_data_uri: str | None = None
    role_arn: str | None = None
    kms_key_arn: str | None = None
    vpc: VpcConfig | None = None
    wait_for_validation: bool = True
    # OpenAI-compatible backend: send request fields Bedrock does not document (see above).
    send_undocumented_fields: bool = False
    on_delete: OnDelete = "cancel"
    delete_model_on_destroy: bool = False
    job_tags: dict[str, str] = field(default_factory=dict)


def _where(key: str) -> str:
    return f"ResourceProperties.{key}"


def _string(props: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = props.get(key)
    if value is None or value == "":
        if required:
            raise PropertyError(f"{_where(key)}: required property is missing")
        return None
    if not isinstance(value, str):
        raise PropertyError(f"{_where(key)} = {json.dumps(value)}: must be a string")
    return value


def _required(props: dict[str, Any], key: str) -> str:
    value = _string(props, key)
    assert value is not None  # _string raised otherwise
    return value


def _matching(props: dict[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = _required(props, key)
    if not pattern.match(value):
        raise PropertyError(f"{_where(key)} = {json.dumps(value)}: must be {what}")
    return value


def _optional_matching(
    props: dict[str, Any], key: str, pattern: re.Pattern[str], what: str
) -> str | None:
    if _string(props, key, required=False) is None:
        return None
    return _matching(props, key, pattern, what)


def _flag(props: dict[str, Any], key: str, default: bool) -> bool:
    value = props.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise PropertyError(f"{_where(key)} = {json.dumps(value)}: must be 'true' or 'false'")


def _choice(props: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = props.get(key, default)
    if value not in allowed:
        raise PropertyError(
            f"{_where(key)} = {json.dumps(value)}: must be one of {', '.join(allowed)}"
        )
    return str(value)


def _hyperparameters(props: dict[str, Any]) -> dict[str, Any]:
    raw = props.get("Hyperparameters", "{}")
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as err:
        raise PropertyError(f"{_where('Hyperparameters')}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise PropertyError(f"{_where('Hyperparameters')}: must be a JSON object")
    for name, item in value.items():
        if not isinstance(item, (int, float, str)) or isinstance(item, bool):
            raise PropertyError(
                f"{_where('Hyperparameters')}.{name} = {json.dumps(item)}: "
                "must be a number or a string"
            )
    return value


def _vpc(props: dict[str, Any]) -> VpcConfig | None:
    raw = props.get("VpcConfig")
    if raw in (None, "", {}):
        return None
    if not isinstance(raw, dict):
        raise PropertyError(f"{_where('VpcConfig')}: must be an object")
    lists: dict[str, tuple[str, ...]] = {}
    for key, most in (("SubnetIds", 16), ("SecurityGroupIds", 5)):
        items = raw.get(key)
        if not isinstance(items, list) or not 1 <= len(items) <= most:
            raise PropertyError(f"{_where('VpcConfig')}.{key}: must be a list of 1 to {most} ids")
        for item in items:
            if not isinstance(item, str) or not VPC_ID.match(item):
                raise PropertyError(
                    f"{_where('VpcConfig')}.{key}: {json.dumps(item)} is not a valid id"
                )
        lists[key] = tuple(items)
    return VpcConfig(subnet_ids=lists["SubnetIds"], security_group_ids=lists["SecurityGroupIds"])


def _tags(props: dict[str, Any]) -> dict[str, str]:
    raw = props.get("JobTags")
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise PropertyError(f"{_where('JobTags')}: must be an object of string values")
    return dict(raw)


KNOWN_KEYS = frozenset(
    {
        "Environment", "Backend", "Region", "BaseModel", "NamePrefix", "TrainingDataUri",
        "ValidationDataUri", "DatasetDigest", "OutputDataUri", "GraderFunctionArn", "GraderDigest",
        "Hyperparameters", "RoleArn", "KmsKeyArn", "VpcConfig", "WaitForValidation",
        "SendUndocumentedFields", "OnDelete", "DeleteModelOnDestroy", "ParameterName", "JobTags",
    }
)  # fmt: skip


def parse_spec(props: dict[str, Any] | None) -> JobSpec:
    """Parse ``ResourceProperties`` into a :class:`JobSpec` or raise :class:`PropertyError`."""
    if not isinstance(props, dict):
        raise PropertyError("ResourceProperties: must be an object")
    unknown = sorted(set(props) - KNOWN_KEYS - _FRAMEWORK_KEYS)
    if unknown:
        raise PropertyError(
            f"{_where(unknown[0])}: unknown property (the construct and the handler disagree)"
        )
    backend = _choice(props, "Backend", ("openai", "bedrock"), "openai")
    spec = JobSpec(
        environment=_required(props, "Environment"),
        backend=backend,  # type: ignore[arg-type]  # checked by _choice
        region=_matching(props, "Region", REGION, "an AWS region such as us-west-2"),
        base_model=_required(props, "BaseModel"),
        name_prefix=_matching(
            props, "NamePrefix", NAME_PREFIX, "letters, digits and single '-' between them"
        ),
        training_data_uri=_matching(props, "TrainingDataUri", S3_URI, "an s3://bucket/key URI"),
        validation_data_uri=_optional_matching(
            props, "ValidationDataUri", S3_URI, "an s3://bucket/key URI"
        ),
        dataset_digest=_required(props, "DatasetDigest"),
        output_data_uri=_optional_matching(
            props, "OutputDataUri", S3_URI, "an s3://bucket/prefix URI"
        ),
        grader_function_arn=_matching(
            props, "GraderFunctionArn", LAMBDA_ARN, "a Lambda function ARN"
        ),
        grader_digest=_string(props, "GraderDigest", required=False),
        hyperparameters=_hyperparameters(props),
        role_arn=_optional_matching(props, "RoleArn", ROLE_ARN, "an IAM role ARN"),
        kms_key_arn=_optional_matching(props, "KmsKeyArn", KMS_KEY, "a KMS key or alias ARN"),
        vpc=_vpc(props),
        wait_for_validation=_flag(props, "WaitForValidation", True),
        send_undocumented_fields=_flag(props, "SendUndocumentedFields", False),
        on_delete=_choice(props, "OnDelete", ("cancel", "retain"), "cancel"),  # type: ignore[arg-type]
        delete_model_on_destroy=_flag(props, "DeleteModelOnDestroy", False),
        parameter_name=_matching(
            props, "ParameterName", PARAMETER_NAME, "an SSM parameter name starting with '/'"
        ),
        job_tags=_tags(props),
    )
    if len(spec.name_prefix) > NAME_PREFIX_MAX:
        raise PropertyError(
            f"{_where('NamePrefix')} = {json.dumps(spec.name_prefix)}: "
            f"at most {NAME_PREFIX_MAX} characters (job names are limited to 63)"
        )
    if spec.backend == "bedrock":
        for key, value in (("OutputDataUri", spec.output_data_uri), ("RoleArn", spec.role_arn)):
            if value is None:
                raise PropertyError(f"{_where(key)}: required for backend 'bedrock'")
    elif not spec.send_undocumented_fields:
        _documented_only(spec)
    return spec


def _documented_only(spec: JobSpec) -> None:
    """Refuse what the OpenAI-compatible create would send beyond Bedrock's documentation."""
    opt_in = "sent only with SendUndocumentedFields 'true'"
    extra = sorted(set(spec.hyperparameters) - OPENAI_DOCUMENTED_HYPERPARAMETERS)
    if extra:
        raise PropertyError(
            f"{_where('Hyperparameters')}.{extra[0]}: not documented by Bedrock's "
            f"OpenAI-compatible API; {opt_in}"
        )
    if spec.validation_data_uri is not None:
        raise PropertyError(
            f"{_where('ValidationDataUri')}: validation_file is not documented by Bedrock's "
            f"OpenAI-compatible API; {opt_in}"
        )


@dataclass(frozen=True)
class DeletePolicy:
    """What Delete needs, read leniently: a stack must stay deletable even if a property
    went bad, so each field falls back to the safe default on its own."""

    backend: Backend | None
    region: str | None
    on_delete: OnDelete
    delete_model_on_destroy: bool
    parameter_name: str | None


def delete_policy(props: dict[str, Any] | None) -> DeletePolicy:
    """The Delete-relevant properties, each defaulting safely when missing or malformed."""
    props = props if isinstance(props, dict) else {}
    backend = props.get("Backend")
    region = props.get("Region")
    parameter = props.get("ParameterName")
    try:
        on_delete = _choice(props, "OnDelete", ("cancel", "retain"), "cancel")
    except PropertyError:
        on_delete = "cancel"  # a running job costs money: stop it unless clearly told not to
    try:
        delete_model = _flag(props, "DeleteModelOnDestroy", False)
    except PropertyError:
        delete_model = False  # never delete a trained model on a doubtful setting
    return DeletePolicy(
        backend=backend if backend in ("openai", "bedrock") else None,
        region=region if isinstance(region, str) and REGION.match(region) else None,
        on_delete=on_delete,  # type: ignore[arg-type]
        delete_model_on_destroy=delete_model,
        parameter_name=(
            parameter if isinstance(parameter, str) and PARAMETER_NAME.match(parameter) else None
        ),
    )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into bucket and key."""
    match = S3_URI.match(uri)
    if not match:
        raise PropertyError(f"{json.dumps(uri)}: not an s3://bucket/key URI")
    return match.group(1), match.group(2)
