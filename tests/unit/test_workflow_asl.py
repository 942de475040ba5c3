"""The one ASL file: parses (moto's ASL parser), every state reachable, every Task guarded as intended,
only the agreed substitution variables."""

from __future__ import annotations

import json
import re

import pytest

from ndjson_parquet.infra_template import ASL_PATH, ASL_VARIABLES, DefinitionError, render_definition

DEFN = json.loads(ASL_PATH.read_text())
STATES = DEFN["States"]


def _targets(state: dict) -> set[str]:
    out = {state["Next"]} if "Next" in state else set()
    out |= {c["Next"] for c in state.get("Catch", [])}
    out |= {c["Next"] for c in state.get("Choices", [])}
    if "Default" in state:
        out.add(state["Default"])
    return out


def test_every_state_is_reachable_and_every_target_exists() -> None:
    seen, todo = set(), [DEFN["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert name in STATES, f"transition to unknown state {name}"
        todo.extend(_targets(STATES[name]))
    assert seen == set(STATES)


def test_tasks_have_retry_and_catch_as_intended() -> None:
    tasks = {n: s for n, s in STATES.items() if s["Type"] == "Task"}
    assert set(tasks) == {"ClaimRun", "ConvertManifest", "Finalize", "Compensate", "Alert", "AlertUncompensated"}
    for name, state in tasks.items():
        assert state.get("Retry"), name
        assert [c["ErrorEquals"] for c in state["Catch"]] == [["States.ALL"]], name
        for r in state["Retry"]:
            assert r["MaxAttempts"] <= 6 and r["BackoffRate"] > 1 and r["JitterStrategy"] == "FULL", (name, r)
    # failures after the claim go through the saga; a failed claim or compensation alerts for recover
    assert STATES["ConvertManifest"]["Catch"][0]["Next"] == "Compensate"
    assert STATES["Finalize"]["Catch"][0]["Next"] == "Compensate"
    assert STATES["ClaimRun"]["Catch"][0]["Next"] == "AlertUncompensated"
    assert STATES["Compensate"]["Catch"][0]["Next"] == "AlertUncompensated"
    assert STATES["Alert"]["Next"] == "Failed" and STATES["Failed"]["Type"] == "Fail"
    glue_retry = {e for r in STATES["ConvertManifest"]["Retry"] for e in r["ErrorEquals"]}
    assert {"Glue.ConcurrentRunsExceededException", "Glue.ThrottlingException"} <= glue_retry
    assert "States.TaskFailed" not in glue_retry  # a failed job run is not retried blindly: the saga re-pends
    assert STATES["ConvertManifest"]["Resource"] == "arn:aws:states:::glue:startJobRun.sync"


def test_only_agreed_substitutions_and_rendered_definition_parses_in_moto() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))
    assert used <= set(ASL_VARIABLES)
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    text = render_definition({n: f"arn:aws:lambda:us-east-1:123456789012:function:{n}" for n in ASL_VARIABLES})
    program, _ = AmazonStateLanguageParser.parse(text)
    assert program is not None
    with pytest.raises(DefinitionError, match="GlueJobName"):
        render_definition({n: "x" for n in ASL_VARIABLES if n != "GlueJobName"})
