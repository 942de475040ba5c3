"""The one ASL file: parses (moto's ASL parser), every state reachable, every Task guarded as intended,
only the agreed substitution variables."""

from __future__ import annotations

import itertools
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
    assert set(tasks) == {
        "ClaimRun",
        "ConvertWithLambda",
        "ConvertManifest",
        "Finalize",
        "Compensate",
        "Alert",
        "AlertUncompensated",
    }
    for name, state in tasks.items():
        assert state.get("Retry"), name
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name  # the catch-all comes last
        if name != "ConvertWithLambda":  # its named fallbacks are checked below
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


# ----------------------------------------------------------------------------- the engine choice (issue 26)

FALLBACK_ERRORS = [
    "Sandbox.Timedout",
    "Runtime.OutOfMemory",
    "Runtime.ExitError",
    "Lambda.Unknown",
    "States.Timeout",
    "ConverterDeadlineError",
    "WorkerDiedError",
    "Lambda.TooManyRequestsException",
]


def test_choose_engine_branches_on_the_claims_engine_and_defaults_to_glue() -> None:
    assert STATES["IsRunNeeded"]["Choices"][0]["Next"] == "ChooseEngine"
    choose = STATES["ChooseEngine"]
    assert choose["Type"] == "Choice"
    assert choose["Choices"] == [{"Variable": "$.claim.engine", "StringEquals": "lambda", "Next": "ConvertWithLambda"}]
    assert choose["Default"] == "ConvertManifest"  # anything but "lambda" (e.g. an older claim) is Glue
    selected = STATES["ClaimRun"]["ResultSelector"]
    assert selected["bytes.$"] == "$.Payload.bytes" and selected["engine.$"] == "$.Payload.engine"


def test_lambda_task_invokes_the_converter_with_the_agreed_payload() -> None:
    task = STATES["ConvertWithLambda"]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"] == "${ConverterFunctionArn}"
    assert task["Parameters"]["Payload"] == {
        "manifest_id.$": "$.manifest_id",
        "manifest_uri.$": "$.claim.manifest_uri",
        "execution_arn.$": "$$.Execution.Id",
        "run.$": "$.claim.run",
    }
    assert task["ResultSelector"] == {"engine": "lambda", "run_id.$": "$.Payload.run_id"}
    assert task["ResultPath"] == "$.convert" and task["Next"] == "Finalize"
    glue = STATES["ConvertManifest"]
    assert glue["ResultPath"] == "$.convert"
    assert glue["ResultSelector"]["engine"] == "glue" and glue["ResultSelector"]["run_id.$"] == "$.Id"


def test_lambda_timeouts_and_oom_fall_back_to_glue_before_the_catch_all_compensates() -> None:
    catches = STATES["ConvertWithLambda"]["Catch"]
    assert [c["ErrorEquals"] for c in catches] == [FALLBACK_ERRORS, ["States.ALL"]]  # order: by name first
    assert catches[0]["Next"] == "FallBackToGlue" and catches[1]["Next"] == "Compensate"
    assert catches[0]["ResultPath"] == "$.fallback" and catches[1]["ResultPath"] == "$.error"
    fallback = STATES["FallBackToGlue"]
    assert fallback["Type"] == "Pass" and fallback["Next"] == "ConvertManifest"  # no Compensate: no attempt spent
    assert fallback["ResultPath"] == "$.claim"
    params = fallback["Parameters"]
    # the Pass rewrites the claim: every key ClaimRun selected is carried over, the engine becomes glue
    claim_keys = {k.removesuffix(".$") for k in STATES["ClaimRun"]["ResultSelector"]}
    assert {k.removesuffix(".$") for k in params} == claim_keys | {"fallback"}
    assert all(params[k + ".$"] == f"$.claim.{k}" for k in claim_keys - {"engine"})
    assert params["engine"] == "glue"
    # a Pass cannot catch: it reads only what every error output has (Error; a Cause may be absent)
    assert params["fallback"] == {"from_engine.$": "$.claim.engine", "error.$": "$.fallback.Error"}
    retried = {e for r in STATES["ConvertWithLambda"]["Retry"] for e in r["ErrorEquals"]}
    assert retried == {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.TooManyRequestsException"}
    assert "Lambda.SdkClientException" not in retried  # may have started the function: never a second writer
    assert not retried & (set(FALLBACK_ERRORS) - {"Lambda.TooManyRequestsException"})


def test_the_lambda_task_outlasts_any_function_timeout_the_template_allows() -> None:
    from ndjson_parquet.infra_template import load_template

    params = load_template()["Parameters"]["ConverterTimeoutSeconds"]
    task_timeout = STATES["ConvertWithLambda"]["TimeoutSeconds"]
    assert task_timeout > int(params["Default"]) and task_timeout > int(params["MaxValue"])
    assert int(params["MaxValue"]) <= 900  # Lambda's own maximum


def _paths_to(target: str) -> list[list[str]]:
    """Every simple path from StartAt to ``target``."""
    out: list[list[str]] = []

    def walk(name: str, path: list[str]) -> None:
        if name == target:
            out.append([*path, name])
            return
        for nxt in sorted(_targets(STATES[name])):
            if nxt not in path:
                walk(nxt, [*path, name])

    walk(DEFN["StartAt"], [])
    return out


def _writes(state: dict, via: str | None) -> set[str]:
    """Top-level keys of the state data written when leaving ``state`` towards ``via``."""
    catches = [c for c in state.get("Catch", []) if c["Next"] == via]
    if catches and state.get("Next") != via:
        paths = {c.get("ResultPath") for c in catches}
    else:
        paths = {state.get("ResultPath")} if state["Type"] in ("Task", "Pass") else set()
    return {p.split(".")[1] for p in paths if p and p.startswith("$.")}


def test_every_path_into_finalize_and_compensate_carries_what_their_payloads_read() -> None:
    """A payload path missing from the state data fails the execution with States.Runtime, which
    no States.ALL catches: each read must be written on every path that reaches the state."""
    for target in ("Finalize", "Compensate"):
        reads = {
            v.split(".")[1]
            for v in STATES[target]["Parameters"]["Payload"].values()
            if isinstance(v, str) and v.startswith("$.")
        }
        paths = _paths_to(target)
        assert paths, target
        for path in paths:
            written = {"manifest_id", "event"}  # Normalize
            for here, nxt in itertools.pairwise(path):
                written |= _writes(STATES[here], nxt)
            assert reads <= written, (target, path, reads - written)
    assert STATES["Finalize"]["Parameters"]["Payload"]["run_id.$"] == "$.convert.run_id"
    assert STATES["Finalize"]["Parameters"]["Payload"]["engine.$"] == "$.convert.engine"
