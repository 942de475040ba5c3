"""README's role table, generated from the call map: each role, its actions, on what, and why."""

from __future__ import annotations

from collections import defaultdict

from ndjson_parquet.iam.callmap import ROLES, calls_of

WHO = {
    "tracker": "Lambda `track_files` (.chalice/policy-<stage>-tracker.json)",
    "batching": "Lambdas `count_arrivals`, `flush_stale` (.chalice/policy-<stage>-batching.json)",
    "workflow": "Lambdas `claim_run`, `finalize`, `compensate`, `recover` (.chalice/policy-<stage>-workflow.json)",
    "states": "Step Functions `convert-manifest` (StateMachineRole, infra/pipeline.yaml)",
    "glue": "Glue job `convert` (GlueRole, infra/pipeline.yaml)",
    "events": "EventBridge rule target (EventsRole, infra/pipeline.yaml)",
    "optimizer": "Glue table optimizers (TableOptimizerRole, infra/pipeline.yaml; TableMaintenance not none)",
    "operator": "operator CLI user (`ndjson-parquet iam operator-policy`)",
}


def role_table(stage: str = "dev") -> str:
    lines = ["| Role | Action | Resources | Why (first call) |", "|---|---|---|---|"]
    for role in ROLES:
        rows: dict[str, list[str]] = defaultdict(list)
        why: dict[str, str] = {}
        for call in calls_of(role):
            if call.resource not in rows[call.iam_action]:
                rows[call.iam_action].append(call.resource)
            why.setdefault(call.iam_action, call.why)
        for i, (action, res) in enumerate(sorted(rows.items())):
            who = WHO[role] if i == 0 else ""
            lines.append(f"| {who} | `{action}` | {', '.join(res)} | {why[action]} |")
    return "\n".join(lines)
