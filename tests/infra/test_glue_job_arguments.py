"""The Glue job installs orjson and pyiceberg (not preinstalled on Glue 5.0) at the versions the tests run with."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from ndjson_parquet import infra_template as it
from tests.conftest import client

ROOT = Path(__file__).resolve().parents[2]
MODULES_ARG = "--additional-python-modules"


def _pinned(package: str) -> str:
    """``package==version`` as requirements-dev.txt pins it."""
    text = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    # Extras (pyiceberg[sql-sqlite]) are for the local catalog; the job installs the bare package.
    [version] = re.findall(rf"^{re.escape(package)}(?:\[[^\]]*\])?==([^\s#]+)", text, flags=re.MULTILINE)
    return f"{package}=={version}"


def _modules(default_arguments: dict[str, str]) -> list[str]:
    return [m.strip() for m in default_arguments[MODULES_ARG].split(",")]


@pytest.mark.parametrize("package", ["orjson", "pyiceberg"])
def test_glue_job_installs_the_package_pinned_as_in_requirements_dev(package: str) -> None:
    pin = _pinned(package)
    for template in (it.load_template(), it.render_template_dict("prod", allow_placeholder=True)):
        args = template["Resources"]["GlueJob"]["Properties"]["DefaultArguments"]
        assert pin in _modules(args), f"{MODULES_ARG}={args.get(MODULES_ARG)!r}, requirements-dev.txt has {pin}"


@pytest.mark.slow
def test_local_deploy_creates_the_glue_job_with_the_module_argument(aws: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto warns once per unsupported type
        outputs = it.deploy_to_endpoint(
            client("cloudformation"),
            "ndjson-parquet-local",
            it.stack_parameters("local"),
            template_body=it.render_template("local", allow_placeholder=True),
        )
    job = client("glue").get_job(JobName=outputs["GlueJobName"])["Job"]
    assert {_pinned("orjson"), _pinned("pyiceberg")} <= set(_modules(job["DefaultArguments"]))
