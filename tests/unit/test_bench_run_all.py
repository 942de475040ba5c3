"""``make bench`` discovers every bench module that exposes main()."""

from __future__ import annotations

import bench.run_all as run_all


def test_discover_finds_modules_with_main():
    names = run_all.discover()
    assert "engines" in names
    assert "run_all" not in names
    assert "load" not in names  # a long campaign with its own target
    assert "fast_moto" not in names  # the load run's server: it never returns


def test_one_failing_benchmark_fails_the_run_but_not_the_others(monkeypatch, capsys):
    calls = []

    class Ok:
        @staticmethod
        def main() -> int:
            calls.append("ok")
            return 0

    class Boom:
        @staticmethod
        def main() -> int:
            calls.append("boom")
            raise RuntimeError("broken bench")

    modules = {"bench.a_boom": Boom, "bench.b_ok": Ok}
    monkeypatch.setattr(run_all, "discover", lambda: ["a_boom", "b_ok"])
    monkeypatch.setattr(run_all.importlib, "import_module", lambda name: modules[name])
    assert run_all.main([]) == 1
    assert calls == ["boom", "ok"]
    assert "failed: a_boom" in capsys.readouterr().err
