"""Spark needs Java 17: say so in one clear line, before a 40-line JVM stack trace would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

REQUIRED_MAJOR = 17


def java_problem() -> str | None:
    """None when a usable Java is on PATH (or JAVA_HOME), else a one-line explanation."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        return (
            f"Java {REQUIRED_MAJOR} is required by Spark but no 'java' was found "
            f"(install openjdk-{REQUIRED_MAJOR}-jre-headless or set JAVA_HOME)"
        )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Java {REQUIRED_MAJOR} is required by Spark but '{java} -version' failed: {exc}"
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return f"Java {REQUIRED_MAJOR} is required by Spark; could not read the version of {java}"
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major not in (11, 17):
        return f"Java {REQUIRED_MAJOR} is required by Spark 3.5; found Java {major} at {java}"
    return None


def main() -> int:
    problem = java_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
