"""Evaluates each role's policy against every call of the map with moto's IAM policy evaluator
(moto/iam/access_control.py), and lists grants no call needs.

moto's evaluator matches actions and resources with IAM wildcards and checks ``StringEquals``
conditions against the values a call carries; other condition operators (``ForAnyValue:...``,
``ArnLike``) are not evaluated, so a statement's condition other than StringEquals is taken as met.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

from ndjson_parquet.iam import resources as r
from ndjson_parquet.iam.callmap import ROLES, Call, calls_of
from ndjson_parquet.iam.policies import role_policy

DEFAULT_STAGES = ("dev", "prod")


@dataclass
class RoleReport:
    role: str
    stage: str
    calls: int = 0
    missing: list[str] = field(default_factory=list)  # "action on arn (site: why)"
    unused_actions: list[str] = field(default_factory=list)
    unused_resources: list[str] = field(default_factory=list)  # "Sid: action-set on resource"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unused_actions or self.unused_resources)


def _context(call: Call, stage: str) -> dict[str, str]:
    ctx = dict(call.context)
    if call.service == "kms":
        ctx.setdefault("kms:ResourceAliases", r.alias(stage))
    return ctx


def permitted(policy: Mapping[str, Any], call: Call, stage: str) -> bool:
    evaluator = IAMPolicy(json.dumps(policy))
    result = evaluator.is_action_permitted(
        call.iam_action, r.arn(call.resource, stage), incoming_condition_values=_context(call, stage)
    )
    return result == PermissionResult.PERMITTED


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _action_matches(pattern: str, action: str) -> bool:
    # IAM action names are case-insensitive; moto's matcher supplies the wildcard semantics.
    return IAMPolicyStatement._match(pattern.lower(), action.lower()) is not None


def check_role(role: str, stage: str, policy: Mapping[str, Any] | None = None) -> RoleReport:
    """Missing grants (a call the policy refuses) and unused ones (an action or a statement's
    resource that no call of the role needs)."""
    policy = role_policy(stage, role) if policy is None else policy
    calls = list(calls_of(role))
    report = RoleReport(role, stage, calls=len(calls))
    for call in calls:
        if not permitted(policy, call, stage):
            report.missing.append(
                f"{call.iam_action} on {r.arn(call.resource, stage)} ({call.where}, path {call.path}: {call.why})"
            )
    needed = {c.iam_action for c in calls}
    for i, statement in enumerate(policy.get("Statement", [])):
        sid = statement.get("Sid", f"#{i}")
        actions = _as_list(statement.get("Action"))
        for action in actions:
            if not any(_action_matches(action, n) for n in needed):
                report.unused_actions.append(f"{sid}: {action}")
        for resource in _as_list(statement.get("Resource")):
            alone = {"Statement": [{**statement, "Resource": resource}]}
            if not any(permitted(alone, c, stage) for c in calls):
                report.unused_resources.append(f"{sid}: {resource}")
    return report


def check(stages: Iterable[str] = DEFAULT_STAGES, roles: Iterable[str] | None = None) -> list[RoleReport]:
    return [check_role(role, stage) for stage in stages for role in (roles or ROLES)]


def render(reports: Iterable[RoleReport]) -> str:
    lines = []
    for rep in reports:
        status = "ok" if rep.ok else "FAIL"
        lines.append(
            f"{status:4} {rep.stage:5} {rep.role:9} {rep.calls:3} calls  missing={len(rep.missing)} "
            f"unused_actions={len(rep.unused_actions)} unused_resources={len(rep.unused_resources)}"
        )
        lines += [f"       missing: {m}" for m in rep.missing]
        lines += [f"       unused action: {u}" for u in rep.unused_actions]
        lines += [f"       unused resource: {u}" for u in rep.unused_resources]
    return "\n".join(lines)
