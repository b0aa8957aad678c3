"""Check a make target's arguments and AWS credentials before anything slow runs.

``python scripts/preconditions.py diff --env dev --require-env --credentials`` exits 0 when the
target can go ahead, else prints one line (what is wrong, what to do) and exits 2. It runs
before the Lambda bundles are built and before the CDK CLI starts, so a missing ``ENV`` or
missing credentials fail in well under a second instead of after a bundle build and the
CLI's own retries. The environment name is checked against cdk.json with the standard library
only (the full validation is the app's, at synth); credentials are resolved with botocore's
credential chain, without a network call.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class PreconditionError(Exception):
    """A user error found before the target ran; its text is the one line to print."""


def read_environments(cdk_json: Path = ROOT / "cdk.json") -> dict[str, Any]:
    """``context.environments`` of cdk.json, or :class:`PreconditionError` saying why not."""
    try:
        text = cdk_json.read_text(encoding="utf-8")
    except OSError as err:
        raise PreconditionError(f"{cdk_json.name}: cannot read it ({err.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise PreconditionError(
            f"{cdk_json.name} line {err.lineno} column {err.colno}: not valid JSON ({err.msg})"
        ) from None
    environments = data.get("context", {}).get("environments") if isinstance(data, dict) else None
    if not isinstance(environments, dict) or not environments:
        raise PreconditionError(
            f"{cdk_json.name}: context.environments must define at least one environment"
        )
    return environments


def environment(
    name: str, required: bool, cdk_json: Path = ROOT / "cdk.json"
) -> dict[str, Any] | None:
    """The raw settings of environment ``name`` (None when no name and none is required)."""
    if not name and not required:
        return None
    environments = read_environments(cdk_json)
    defined = ", ".join(environments)
    if not name:
        raise PreconditionError(f"set ENV=<environment> (defined in cdk.json: {defined})")
    if name not in environments:
        raise PreconditionError(f"ENV={name}: no such environment in cdk.json; defined: {defined}")
    raw = environments[name]
    return raw if isinstance(raw, dict) else {}


DEFAULT_REMEDY = "run aws configure / set AWS_PROFILE"


def credentials_problem(region: str | None) -> tuple[str, str] | None:
    """(why no AWS credentials can be had, what to do), or None when the chain finds some.

    botocore's chain is the one the CDK CLI, boto3 and the Bedrock token generator use
    (environment, shared files and profiles, SSO, container and instance roles); resolving it
    makes no call to AWS (refreshable credentials are fetched later, when first used).
    """
    import botocore.exceptions
    import botocore.session

    session = botocore.session.Session()
    if region:
        session.set_config_variable("region", region)
    try:
        found = session.get_credentials()
    except botocore.exceptions.ProfileNotFound as err:
        profile = err.kwargs.get("profile", "")
        return (
            f"AWS profile '{profile}' is not configured",
            f"run aws configure --profile {profile} or set AWS_PROFILE to a configured profile",
        )
    except botocore.exceptions.BotoCoreError as err:
        return f"the AWS credentials cannot be read ({err})", DEFAULT_REMEDY
    if found is None:
        return "no AWS credentials found", DEFAULT_REMEDY
    return None


# AWS error codes that mean the credentials, not the request, are the problem.
AWS_AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "AccessDeniedException",
        "AccessDenied",
    }
)


def aws_access_problem(err: Exception, where: str) -> str | None:
    """The one line for what any AWS call of a script may meet through no fault of its
    request (credentials refused or missing, endpoint unreachable); None for anything else."""
    import botocore.exceptions

    if isinstance(err, botocore.exceptions.ClientError):
        error = err.response.get("Error", {})
        code = error.get("Code", "?")
        if code in AWS_AUTH_CODES:
            message = error.get("Message", "")
            return f"{where} refused your AWS credentials ({code}: {message}): {DEFAULT_REMEDY}"
        return None
    if isinstance(err, botocore.exceptions.NoCredentialsError):
        return f"no AWS credentials found: {DEFAULT_REMEDY}"
    unreachable = (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
    )
    if isinstance(err, unreachable):
        return f"cannot reach {where} ({err}): check the network and the region"
    return None


def read_json_parameter(ssm: Any, name: str) -> dict[str, Any] | None:
    """The JSON object in SSM parameter ``name`` (a job or model record), or None when there
    is no such parameter; :class:`PreconditionError` when it holds anything else."""
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except Exception as err:
        if getattr(err, "response", {}).get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise
    try:
        record = json.loads(value)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise PreconditionError(f"SSM parameter {name} does not hold a JSON object")
    return record


def check(
    env: str, require_env: bool, credentials: bool, cdk_json: Path = ROOT / "cdk.json"
) -> None:
    """Raise :class:`PreconditionError` with the line to print when the target cannot run."""
    raw = environment(env, require_env, cdk_json)
    if not credentials:
        return
    region = (raw or {}).get("region")
    problem = credentials_problem(region if isinstance(region, str) else None)
    if problem is None:
        return
    why, remedy = problem
    if raw is not None:
        account = raw.get("account") or "from the credentials"
        why += f" for environment '{env}' (account {account}, region {region or 'unset'})"
    raise PreconditionError(f"{why}: {remedy}")


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when ``make <target>`` can go ahead, else print one line and exit 2."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="the make target, named in the message")
    parser.add_argument("--env", default="", help="the ENV= value (empty: none given)")
    parser.add_argument("--require-env", action="store_true", help="ENV must be set")
    parser.add_argument("--credentials", action="store_true", help="AWS credentials are needed")
    args = parser.parse_args(argv)
    try:
        check(args.env.strip(), args.require_env, args.credentials)
    except PreconditionError as err:
        print(f"make {args.target}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
