"""`agentopt.AgentOptimizer` inside real AG2 agents (ag2 0.13.4, the last release with AgentOptimizer
and MathUserProxyAgent): the AgentOptimizer notebook's own training cell with only its import line
changed, then the same with AG2's class on the same script, to show what the drop-in fixes."""

from __future__ import annotations

import json
import warnings

import pytest

import agentopt
from notebook_cells import AG2_IMPORT, AGENTOPT_IMPORT, notebook_cells
from scripted_server import ScriptedServer, arithmetic_script

autogen = pytest.importorskip("autogen")

MODEL = "gpt-4-1106-preview"  # the notebook's optimizer_model: the config list must name it
TRAIN_DATA = [{"question": f"Compute {e}.", "answer": str(eval(e))} for e in ["2 + 3", "4 * 5", "7 + 8", "3 * 9"]]


def llm_config(server):
    return {"config_list": server.config_list(MODEL), "cache_seed": None}


def notebook_namespace(server, workdir, ag2_class: bool):
    """The notebook's imports and MathUserProxyAgent cell run as they are (with the drop-in's import
    unless `ag2_class`), and its agents built against the scripted server."""
    cells = notebook_cells()
    if cells is None:
        pytest.skip("the AgentOptimizer notebook (../shared/seeds/003_…) is not beside the repository")
    imports = cells["imports"]
    assert AG2_IMPORT in imports
    ns: dict = {}
    exec(imports if ag2_class else imports.replace(AG2_IMPORT, AGENTOPT_IMPORT), ns)
    exec(cells["agent"], ns)
    ns["llm_config"] = llm_config(server)
    ns["train_data"] = TRAIN_DATA
    ns["assistant"] = autogen.AssistantAgent(
        name="assistant", system_message="You are a helpful assistant.", llm_config=ns["llm_config"]
    )
    ns["user_proxy"] = ns["MathUserProxyAgent"](
        name="mathproxyagent", human_input_mode="NEVER",
        code_execution_config={"work_dir": str(workdir / "_output"), "use_docker": False},
    )
    return ns, cells["training"]


def test_the_notebooks_training_cell_runs_with_only_the_import_changed(workdir, server):
    ns, training = notebook_namespace(server, workdir, ag2_class=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(training, ns)
    optimizer = ns["optimizer"]
    assert isinstance(optimizer, agentopt.AgentOptimizer)
    # The cell reads the history after the proxy reset the assistant: empty, accepted, said once.
    said = [w for w in caught if "recorded empty" in str(w.message)]
    assert len(said) == 1
    decisions = [(h["score"], h["decision"]) for h in optimizer.history]
    assert decisions[:2] == [(0.5, "accept"), (1.0, "accept")]  # arith learned: every problem right
    assert all(d == "rollback" for _, d in decisions[2:]) and len(decisions) == 10
    assert [f["name"] for f in ns["assistant"].llm_config["functions"]] == ["arith", "square"]
    user_proxy = ns["user_proxy"]
    # Each learned function runs its own code.
    ok, reply = user_proxy.execute_function({"name": "arith", "arguments": json.dumps({"expression": "6 * 7"})})
    assert ok and reply["content"] == "42"
    ok, reply = user_proxy.execute_function({"name": "square", "arguments": json.dumps({"x": 4})})
    assert ok and reply["content"] == "16"
    ok, reply = user_proxy.execute_function({"name": "square", "arguments": json.dumps({"y": 4})})
    assert not ok and "unexpected keyword argument" in reply["content"]


def test_the_same_cell_with_ag2s_own_class_learns_nothing_that_works(workdir, server, monkeypatch):
    """The notebook's cell unchanged, with AG2's class: its executor for `arith` runs `square`'s code
    (run here without the Docker image AG2 asks for), so the learned function fails when called and
    the score never rises above the baseline."""
    from autogen.agentchat.contrib import agent_optimizer
    from autogen.code_utils import execute_code

    monkeypatch.setattr(agent_optimizer, "execute_code",
                        lambda code, **kw: execute_code(code, use_docker=False, timeout=10, work_dir=str(workdir)))
    # A conversation whose function failed ends without a verdict, and AG2's class then asks on stdin
    # whether the user was satisfied: they were not.
    monkeypatch.setattr("builtins.input", lambda *args: "0")
    ns, training = notebook_namespace(server, workdir, ag2_class=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            exec(training, ns)
        except TypeError as e:
            # Once its trial lists differ, AG2's step asks to remove a function the proxy no longer
            # has, and AG2's register_function passes the name as the warning category.
            assert "must be a Warning subclass" in str(e)
    theirs = ns["optimizer"]
    assert theirs._best_performance == 0.5
    ok, reply = ns["user_proxy"].execute_function({"name": "arith", "arguments": json.dumps({"expression": "6 * 7"})})
    assert not ok and "square" in reply["content"]


def test_ag2s_own_class_on_the_same_script_runs_the_last_function_under_every_name(workdir, server, monkeypatch):
    """The same step with AG2's class: its executors are closures over the loop variable, so every
    name runs the last function's code (here: `arith` runs `square`)."""
    from autogen.agentchat.contrib import agent_optimizer

    ran = []
    monkeypatch.setattr(agent_optimizer, "execute_code", lambda code, **kw: (ran.append(code), (0, "ran"))[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = agent_optimizer.AgentOptimizer(max_actions_per_step=2, llm_config=llm_config(server), optimizer_model=MODEL)
    ours = agentopt.AgentOptimizer(max_actions_per_step=2, llm_config=llm_config(server), optimizer_model=MODEL)
    history = [{"role": "user", "content": "Compute 2 + 3."}, {"role": "assistant", "content": "\\boxed{5}"}]
    for optimizer in (theirs, ours):
        optimizer.record_one_conversation(history, is_satisfied=True)
    (_, their_exec), (_, our_exec) = theirs.step(), ours.step()
    assert sorted(their_exec) == sorted(our_exec) == ["arith", "square"]
    their_exec["arith"](expression="2 + 3")
    assert "def square" in ran[-1] and "def arith" not in ran[-1]
    assert our_exec["arith"](expression="2 + 3") == "5"
    assert our_exec["square"](x=3) == "9"


def rollback_script(body):
    """Adds `arith` while the best list is empty; says TERMINATE once a list was rejected."""
    prompt = "\n".join(str(m.get("content")) for m in body.get("messages", []))
    if "they scored no better" in prompt:
        return {"content": "TERMINATE"}
    return arithmetic_script(body)


def test_rolled_back_functions_are_removed_from_the_agents(workdir):
    with ScriptedServer(rollback_script) as server:
        optimizer = agentopt.AgentOptimizer(max_actions_per_step=2, llm_config=autogen.LLMConfig(
            *server.config_list(MODEL), cache_seed=None), optimizer_model=MODEL)
        assistant = autogen.AssistantAgent(name="assistant", llm_config=llm_config(server))
        proxy = autogen.UserProxyAgent(name="proxy", human_input_mode="NEVER", code_execution_config=False)

        def apply(step):
            register_for_llm, register_for_executor = step
            for item in register_for_llm:
                assistant.update_function_signature(**item)
            if register_for_executor:
                proxy.register_function(function_map=register_for_executor)

        history = [{"role": "user", "content": "Compute 4 * 5."}, {"role": "assistant", "content": "\\boxed{0}"}]
        optimizer.record_one_conversation(history, is_satisfied=False)
        apply(optimizer.step())  # the first trial is the baseline: accepted, arith and square added
        assert [f["name"] for f in assistant.llm_config["functions"]] == ["arith", "square"]
        optimizer.record_one_conversation(history, is_satisfied=False)  # no better with them
        register_for_llm, register_for_executor = optimizer.step()
        assert {"func_sig": "arith", "is_remove": True} in register_for_llm
        assert register_for_executor == {"arith": None, "square": None}
        apply((register_for_llm, register_for_executor))
        assert "functions" not in assistant.llm_config or assistant.llm_config["functions"] == []
        assert not proxy.function_map
        assert [h["decision"] for h in optimizer.history] == ["accept", "rollback"]


def test_a_reset_forgets_everything_as_ag2s_does(workdir):
    asked = []

    def adds_once(body):  # the first optimizer request adds arith and square; later ones add nothing
        if "add_function" in [t["function"]["name"] for t in body.get("tools") or []]:
            asked.append(body)
            if len(asked) > 1:
                return {"content": "TERMINATE"}
        return arithmetic_script(body)

    with ScriptedServer(adds_once) as server:
        optimizer = agentopt.AgentOptimizer(2, llm_config(server), MODEL)
        history = [{"role": "user", "content": "Compute 4 * 5."}, {"role": "assistant", "content": "\\boxed{0}"}]
        optimizer.record_one_conversation(history, is_satisfied=False)
        _, executors = optimizer.step()
        assert sorted(executors) == ["arith", "square"]
        optimizer.reset_optimizer()
        assert optimizer.best_registry.names == [] and optimizer.history == []
        optimizer.record_one_conversation(history, is_satisfied=True)
        register_for_llm, executors = optimizer.step()
        # Nothing to remove: AG2's agents raise on removing what they may not hold (a new pair).
        assert register_for_llm == [] and executors == {}


def fix_after_feedback(body):
    """Proposes a function that does not compile, then, told why, a correct one; then TERMINATE."""
    messages = body.get("messages", [])
    tool_replies = [m for m in messages if m.get("role") == "tool"]
    if not tool_replies:
        return {"tool_calls": [{"name": "add_function", "arguments": json.dumps({
            "name": "half", "description": "Half of x.", "arguments": json.dumps({"x": {"type": "number"}}),
            "packages": "", "code": "def half(x)\n    return x / 2\n"})}]}
    if len(tool_replies) == 1:
        assert "SyntaxError" in tool_replies[0]["content"] or "syntax" in tool_replies[0]["content"].lower()
        return {"tool_calls": [{"name": "add_function", "arguments": json.dumps({
            "name": "half", "description": "Half of x.", "arguments": json.dumps({"x": {"type": "number"}}),
            "packages": "", "code": "def half(x):\n    return x / 2\n"})}]}
    return {"content": "TERMINATE"}


def test_a_proposal_that_fails_validation_is_fed_back_and_fixed(workdir):
    with ScriptedServer(fix_after_feedback) as server:
        optimizer = agentopt.AgentOptimizer(3, {"config_list": server.config_list(MODEL)}, MODEL)
        optimizer.record_one_conversation([{"role": "user", "content": "Halve 3."}], is_satisfied=False)
        _, executors = optimizer.step()
        events = [e["event"] for e in optimizer.history[0]["events"]]
        assert events.count("action_rejected") == 1 and events.count("action_applied") == 1
        assert events[-1] == "step_ended" and optimizer.history[0]["events"][-1]["reason"] == "TERMINATE"
        assert executors["half"](x=3) == "1.5"
        assert len(server.requests) == 3


def test_bad_llm_config_is_an_input_error():
    with pytest.raises(agentopt.InputError, match="gpt-4-1106-preview"):
        agentopt.AgentOptimizer(3, {"config_list": [{"model": "other", "api_key": "x"}]})
    with pytest.raises(agentopt.InputError, match="llm_config is required"):
        agentopt.AgentOptimizer(3)
    with pytest.raises(agentopt.InputError, match="nothing to score"):
        agentopt.AgentOptimizer(3, {"config_list": [{"model": MODEL, "api_key": "x"}]}).step()
