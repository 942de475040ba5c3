"""Runs the converter from its unzipped artifact the way the Lambda runtime would, in an isolated
interpreter started as ``python -I -S -B artifact_driver.py TASK RUNTIME EVENTS_JSON``: sys.path is
the artifact (Lambda's /var/task), a folder holding only the runtime's own packages (boto3,
botocore, s3transfer, jmespath, dateutil, six, urllib3) and the standard library; no site-packages.
Prints one JSON line: the import time, each call's result and time, and any module loaded from
outside those three places (there must be none)."""

import json
import sys
import time


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def main() -> None:
    task, runtime, events = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    stdlib = [p for p in sys.path if p and "site-packages" not in p]
    sys.path[:] = [task, runtime, *stdlib]
    started = time.perf_counter()
    import converter.handler as h

    import_s = time.perf_counter() - started
    calls = []
    for event in events:
        t = time.perf_counter()
        out = h.handler(event, Context(300_000))
        calls.append({"result": out, "seconds": round(time.perf_counter() - t, 3)})
    h.reset()
    roots = (task, runtime, *stdlib)
    outside = sorted(
        f"{name}: {path}"
        for name, module in list(sys.modules.items())
        if (path := getattr(module, "__file__", None)) and not path.startswith(roots) and path != __file__
    )
    origins = {name: sys.modules[name].__file__ for name in ("boto3", "botocore", "pyarrow", "pyiceberg", "orjson")}
    print(json.dumps({"import_s": round(import_s, 3), "calls": calls, "outside": outside, "origins": origins}))


if __name__ == "__main__":
    main()
