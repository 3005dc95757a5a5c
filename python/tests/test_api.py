"""`agentopt.train / resume / evaluate / grade`, `Run` and `Registry` from Python, against a real
scripted HTTP server, the real sandbox and real files: the same run files as the CLI, the CLI's
errors as exceptions, lists of dicts and in-memory config lists, interrupts that leave a run resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import agentopt
from conftest import SECRET, TEST, TRAIN, problems, run_cli, write_jsonl
from scripted_server import ScriptedServer

VOLATILE = {"created_at", "updated_at", "time", "duration_ms", "timing", "name", "run", "run_dir"}


def stable(value):
    """A run file without what differs between two runs of the same job (times, names)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def run_files(root: Path) -> dict:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".jsonl") and path.name != "calls.jsonl":
            text = path.read_text(encoding="utf-8")
            rows = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" else json.loads(text)
            if path.name == "events.jsonl":  # conversations complete in any order
                rows = sorted(rows, key=lambda e: json.dumps(stable(e), sort_keys=True))
            out[str(path.relative_to(root))] = stable(rows)
    return out


def test_train_gives_the_same_run_files_as_the_cli(workdir, server, cli):
    train, test = write_jsonl(workdir / "train.jsonl", TRAIN), write_jsonl(workdir / "test.jsonl", TEST)
    config = workdir / "OAI_CONFIG_LIST.json"
    config.write_text(json.dumps(server.config_list()))
    flags = ["--train", str(train), "--test", str(test), "--config", str(config), "--epochs", "3",
             "--concurrency", "1", "--no-cache", "--runs-dir", str(workdir / "runs")]
    done = run_cli(cli, "train", *flags, "--run", "from-cli", cwd=workdir)
    assert done.returncode == 0, done.stderr
    run = agentopt.train(train=str(train), test=str(test), config=str(config), epochs=3, concurrency=1,
                         cache=False, run="from-python", progress=False)
    assert run.status == "completed" and run.name == "from-python"
    assert run.best_registry.names == ["arith", "square"]
    assert [h["decision"] for h in run.summary["history"]] == ["accept", "accept", "rollback"]
    ours, theirs = run_files(run.path), run_files(workdir / "runs" / "from-cli")
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        assert ours[name] == theirs[name], name
    assert run.epochs[1].registry == run.best_registry
    assert [r["correct"] for r in run.epochs[0].records] == [True, False, True, False]
    assert len(run.eval_records("after")) == len(TEST)


def test_lists_of_problems_and_an_in_memory_config_list(workdir, server):
    # A budget for about half the job: the run stops (resumable) partway.
    run = agentopt.train(train=TRAIN, test=TEST, config=server.config_list(), epochs=2, concurrency=2,
                         cache=False, run="lists", max_usd=0.002, progress=False)
    assert run.status == "budget"
    assert run.info["models"]["config_inline"] is True and run.info["models"]["config"] is None
    for path in workdir.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), f"the key reached {path}"
    # The list was never saved: resuming without it again must not fall back to another model.
    with pytest.raises(agentopt.InputError, match="given in memory"):
        agentopt.resume("lists", progress=False)
    done = agentopt.resume("lists", config=server.config_list(), max_usd=1.0, progress=False)
    assert done.status == "completed" and done.summary["eval"]["after"]["correct"] == 2


def test_the_clis_errors_are_exceptions_with_its_messages(workdir, server):
    bad = workdir / "bad.jsonl"
    bad.write_text('{"id": "a", "problem": "Compute 1 + 1.", "answer": "2"}\n{"id": "b", "answer": "3"}\n')
    with pytest.raises(agentopt.InputError) as caught:
        agentopt.train(train=str(bad), config=server.config_list(), progress=False)
    assert "bad.jsonl" in str(caught.value) and "line 2" in str(caught.value)
    with pytest.raises(agentopt.InputError, match="--concurrency"):
        agentopt.train(train=TRAIN, config=server.config_list(), concurrency=0, progress=False)
    with pytest.raises(agentopt.InputError, match="missing.jsonl"):
        agentopt.evaluate("missing.jsonl", config=server.config_list(), progress=False)
    with pytest.raises(agentopt.InputError, match="entry 1"):
        agentopt.evaluate(TEST, config=[{"model": 3}], progress=False)
    with pytest.raises(agentopt.InputError, match="invalid value '-1'"):
        agentopt.train(train=TRAIN, config=server.config_list(), epochs=-1, progress=False)
    with pytest.raises(agentopt.InputError, match="cannot be used with"):
        agentopt.evaluate(TEST, config=server.config_list(), cache=False, cache_seed=3, progress=False)
    assert issubclass(agentopt.InputError, agentopt.Error) and issubclass(agentopt.InputError, ValueError)
    assert issubclass(agentopt.Interrupted, KeyboardInterrupt) and issubclass(agentopt.RunError, agentopt.Error)


def test_evaluate_a_registry_object_and_a_run(workdir, server):
    run = agentopt.train(train=TRAIN, config=server.config_list(), epochs=2, no_eval=True, cache=False,
                         run="r", progress=False)
    before = agentopt.evaluate(TEST, config=server.config_list(), cache=False, progress=False)
    after = agentopt.evaluate(TEST, functions=run.best_registry, config=server.config_list(), cache=False, progress=False)
    by_run = agentopt.evaluate(TEST, run="r", config=server.config_list(), cache=False, progress=False)
    assert (before.correct, before.total, before.errored) == (1, 2, 0)
    assert (after.correct, after.rate, after.functions) == (2, 1.0, ["arith", "square"])
    assert by_run.correct == 2 and [r["id"] for r in after.records] == ["tp0", "tp1"]
    assert after.records[0]["answer"] == "36"


def test_grade():
    assert agentopt.grade("\\frac{1}{2}", "0.5") is True
    assert agentopt.grade("\\boxed{3}", "4") is False
    assert agentopt.grade("x^2+1", "1+x^2") is True


ROOTS = {
    "name": "quadratic_roots",
    "description": "The real roots of a*x^2 + b*x + c, smallest first.",
    "parameters": {"type": "object", "properties": {k: {"type": "number"} for k in "abc"}, "required": list("abc")},
    "packages": [],
    "code": "def quadratic_roots(a, b, c):\n    d = (b * b - 4 * a * c) ** 0.5\n    return sorted([(-b - d) / (2 * a), (-b + d) / (2 * a)])\n",
}


def test_registry_load_save_export_and_call(workdir):
    registry = agentopt.Registry([ROOTS, {**ROOTS, "name": "fails", "code": "def fails():\n    raise ValueError('no')\n",
                                          "parameters": {"type": "object", "properties": {}}}])
    registry.save(workdir / "r.json")
    loaded = agentopt.Registry.load(workdir / "r.json")
    assert loaded == registry and loaded.names == ["quadratic_roots", "fails"]
    assert loaded.call("quadratic_roots", a=1, b=-3, c=2) == [1.0, 2.0]
    with pytest.raises(agentopt.FunctionError, match="ValueError: no"):
        loaded.call("fails")
    with pytest.raises(agentopt.InputError, match="no function named `nope`"):
        loaded.call("nope")
    exported = loaded.to_autogen()
    assert [f["func_sig"]["name"] for f in exported["register_for_llm"]] == loaded.names
    # AG2's function-list format reads back the same.
    ag2 = [{"name": f["name"], "description": f["description"], "arguments": f["parameters"]["properties"],
            "packages": "", "code": f["code"]} for f in registry.functions]
    (workdir / "ag2.json").write_text(json.dumps(ag2))
    assert agentopt.Registry.load(workdir / "ag2.json").names == registry.names
    with pytest.raises(agentopt.InputError, match="line 1"):
        (workdir / "broken.json").write_text("{ nope")
        agentopt.Registry.load(workdir / "broken.json")


def test_registry_check_refuses_what_the_cli_refuses(workdir):
    shadow = {**ROOTS, "name": "print", "code": "def print(a, b, c):\n    return 1\n"}
    with pytest.raises(agentopt.InputError, match="print"):
        agentopt.Registry([shadow]).check()
    agentopt.Registry([ROOTS]).check()


INTERRUPTED_TRAINING = """
import json, sys
sys.path.insert(0, {tests!r})
import agentopt
from scripted_server import ScriptedServer
from conftest import TRAIN
with ScriptedServer(delay=0.05) as server:
    print("ready", flush=True)
    try:
        agentopt.train(train=TRAIN * 3, config=server.config_list(), epochs=50, patience=50, concurrency=1,
                       cache=False, run="stopped", no_eval=True)
    except agentopt.Interrupted as e:
        print(json.dumps({{"run_dir": e.run_dir, "message": str(e)}}), flush=True)
"""


def test_keyboard_interrupt_stops_at_a_safe_point_and_the_run_resumes(workdir, server):
    rows = [dict(p, id=f"{p['id']}-{k}") for k in range(3) for p in TRAIN]
    script = INTERRUPTED_TRAINING.format(tests=str(Path(__file__).parent)).replace("TRAIN * 3", json.dumps(rows))
    # The child gets SIGINT's default disposition whatever this process inherited: a test runner
    # started in the background by a non-interactive shell ignores SIGINT, and an ignored signal
    # stays ignored across exec, so Python would never raise KeyboardInterrupt for it.
    child = subprocess.Popen([sys.executable, "-c", script], cwd=workdir, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert child.stdout.readline().strip() == "ready"
    # Wait until training has really started (the first epoch's records exist), then Ctrl-C.
    records = workdir / "runs" / "stopped" / "epochs" / "000" / "conversations.jsonl"
    for _ in range(600):
        if records.exists() and records.read_text().count("\n") >= 2:
            break
        subprocess.run(["sleep", "0.05"])
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    stopped = json.loads(out.strip().splitlines()[-1])
    assert stopped["run_dir"].endswith("runs/stopped") and "agentopt.resume" in stopped["message"]
    run = agentopt.Run(stopped["run_dir"])
    assert run.status == "stopped"
    kept = [(r["id"], r["messages"]) for r in run.epochs[0].records]
    assert 0 < len(kept) < len(rows)
    resumed = agentopt.resume("stopped", config=server.config_list(), progress=False)
    assert resumed.status == "completed"
    # What was done before the interrupt is kept as it was, not run again.
    records = resumed.epochs[0].records
    assert len(records) == len(rows)
    by_id = {r["id"]: r["messages"] for r in records}
    assert all(by_id[i] == messages for i, messages in kept)


def test_progress_reaches_sys_stderr(workdir, server, capsys):
    agentopt.evaluate(TEST, config=server.config_list(), cache=False)
    assert "eval: 2/2 done" in capsys.readouterr().err


def test_the_type_stubs_ship_with_the_package():
    package = Path(agentopt.__file__).parent
    assert (package / "py.typed").exists() and (package / "_agentopt.pyi").exists()


def test_long_calls_release_the_gil(workdir):
    """While an evaluation waits on the model, other Python threads keep running."""
    import threading

    with ScriptedServer(delay=0.1) as slow:
        done = threading.Event()
        ticks = 0

        def evaluate():
            agentopt.evaluate(TEST, config=slow.config_list(), cache=False, concurrency=1, progress=False)
            done.set()

        worker = threading.Thread(target=evaluate)
        worker.start()
        while not done.is_set():
            ticks += 1
            done.wait(0.001)
        worker.join()
    assert ticks > 100  # the evaluation took several 100 ms model calls, all with the GIL free


def test_evaluate_and_grade_agree_with_the_cli(workdir, server, cli):
    test = write_jsonl(workdir / "test.jsonl", TRAIN + TEST)
    config = workdir / "OAI_CONFIG_LIST.json"
    config.write_text(json.dumps(server.config_list()))
    done = run_cli(cli, "eval", "--test", str(test), "--config", str(config), "--no-cache", "--json",
                   "--out", str(workdir / "cli.jsonl"), cwd=workdir)
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    ours = agentopt.evaluate(str(test), config=str(config), cache=False, out=workdir / "py.jsonl", progress=False)
    assert (ours.correct, ours.total, ours.errored, ours.rate) == (theirs["correct"], theirs["total"],
                                                                   theirs["errored"], theirs["rate"])
    read = lambda name: [stable(json.loads(line)) for line in (workdir / name).read_text().splitlines()]  # noqa: E731
    assert read("py.jsonl") == read("cli.jsonl") == [stable(r) for r in ours.records]
    for given, reference in [("\\frac{1}{2}", "0.5"), ("3", "4"), ("\\$12.50", "12.5"), ("x^2+1", "1+x^2")]:
        verdict = run_cli(cli, "grade", given, reference, "--json", cwd=workdir)
        assert agentopt.grade(given, reference) is json.loads(verdict.stdout)["equal"], (given, reference)


def test_an_evaluation_with_nothing_scored_is_a_run_error(workdir):
    with ScriptedServer(lambda body: {"status": 400, "content": "bad request"}) as refusing:
        with pytest.raises(agentopt.RunError, match="every problem errored"):
            agentopt.evaluate(TEST, config=refusing.config_list(), cache=False, progress=False)


def test_repeatable_flags_are_given_once_per_item():
    from agentopt._api import _flag

    argv: list = []
    _flag(argv, "subject", ["Algebra", "-odd"])
    _flag(argv, "subject", "Geometry")
    _flag(argv, "no_cache", True)
    _flag(argv, "max_usd", None)
    assert argv == ["--subject=Algebra", "--subject=-odd", "--subject=Geometry", "--no-cache"]


def closeness(answer, reference, example):
    """A metric given as a function: it runs in the sandbox, from its source."""
    if answer is None:
        return 0.0
    return 1.0 if float(answer) == float(reference) else 0.5


def test_a_general_task_scored_by_a_python_function(workdir, server):
    ev = agentopt.evaluate(TEST, task="general", metric=closeness, config=server.config_list(), cache=False,
                           progress=False)
    assert [(r["id"], r["answer"], r["score"]) for r in ev.records] == [("tp0", "0", 0.5), ("tp1", "10", 1.0)]
    assert (ev.correct, ev.total, ev.rate) == (1, 2, 0.75)
    written = list((workdir / "runs" / ".inputs").glob("metric-*.py"))
    assert len(written) == 1 and "def closeness" in written[0].read_text()
    with pytest.raises(agentopt.InputError, match="lambda"):
        agentopt.evaluate(TEST, task="general", metric=lambda a, r, e: 1, config=server.config_list(), progress=False)
    with pytest.raises(agentopt.InputError, match="unknown metric"):
        agentopt.evaluate(TEST, metric="bogus", config=server.config_list(), progress=False)


def test_validation_and_significance_keywords(workdir, server):
    val = [dict(p, id="v" + p["id"]) for p in problems(["8 + 1", "9 * 2"])]
    run = agentopt.train(train=TRAIN, test=TEST, val=val, accept="significant:0.2", epochs=2,
                         config=server.config_list(), cache=False, run="honest", progress=False)
    info = run.info["training"]
    assert info["select"] == "val" and info["accept"] == {"rule": "significant", "alpha": 0.2}
    assert [len(run.info["split"][k]) for k in ("train", "val", "test")] == [4, 2, 2]
    history = run.summary["history"]
    assert all("val" in h and "ci95" in h for h in history)
    assert "p_value" in history[1]
    with pytest.raises(agentopt.InputError, match="ALPHA"):
        agentopt.train(train=TRAIN, accept="significant:3", config=server.config_list(), progress=False)
