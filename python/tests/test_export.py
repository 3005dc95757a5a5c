"""The `python` export (`agentopt functions export --format python`) inside real AG2 (ag2 0.13.4):
unannotated functions, as optimizers write them, go through `autogen.register_function` as they are,
a function whose package is missing leaves the rest importable, and names that would shadow the
module's own stay reachable."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from conftest import run_cli

autogen = pytest.importorskip("autogen")


def function(name, code, properties, required, packages=()):
    return {
        "name": name,
        "description": f"The {name} function.",
        "parameters": {"type": "object", "properties": properties, "required": list(required)},
        "packages": list(packages),
        "code": code,
    }


REGISTRY = {
    "functions": [
        function(
            "scale",
            "def scale(values, factor=2):\n    return [v * factor for v in values]\n",
            {
                "values": {"type": "array", "items": {"type": "number"}, "description": "The numbers."},
                "factor": {"type": "number"},
            },
            ["values"],
        ),
        function(
            "needs_missing",
            "import agentopt_no_such_package\n\ndef needs_missing(x):\n    return x\n",
            {"x": {"type": "integer"}},
            ["x"],
            packages=["agentopt-no-such-package"],
        ),
        function("SCHEMAS", "def SCHEMAS(text):\n    return text.upper()\n", {"text": {"type": "string"}}, ["text"]),
    ]
}


@pytest.fixture
def learned(cli, workdir):
    (workdir / "registry.json").write_text(json.dumps(REGISTRY), encoding="utf-8")
    out = run_cli(cli, "functions", "export", "--format", "python", "--out", "learned.py", "registry.json", cwd=workdir)
    assert out.returncode == 0, out.stderr
    spec = importlib.util.spec_from_file_location("learned", workdir / "learned.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("learned", None)


def test_a_missing_package_spoils_only_its_own_function(learned):
    assert learned.scale([1, 2]) == [2, 4]
    assert "needs_missing" in learned.UNAVAILABLE
    with pytest.raises(ImportError, match="pip install agentopt-no-such-package"):
        learned.needs_missing(x=1)
    assert learned.PACKAGES["needs_missing"] == ["agentopt-no-such-package"]


def test_a_name_of_the_modules_own_stays_in_functions(learned):
    assert isinstance(learned.SCHEMAS, dict) and set(learned.SCHEMAS) == {"scale", "needs_missing", "SCHEMAS"}
    assert learned.FUNCTIONS["SCHEMAS"]("a") == "A"
    assert learned.__all__ == ["scale", "needs_missing"]


def test_register_function_takes_the_unannotated_functions(learned):
    assistant = autogen.ConversableAgent(
        "assistant",
        llm_config={"config_list": [{"model": "gpt-4", "api_key": "unused"}], "cache_seed": None},
    )
    proxy = autogen.ConversableAgent("proxy", llm_config=False, human_input_mode="NEVER")
    for name in ["scale", "needs_missing"]:
        autogen.register_function(
            learned.FUNCTIONS[name], caller=assistant, executor=proxy, description=learned.DESCRIPTIONS[name]
        )
    tools = {t["function"]["name"]: t["function"] for t in assistant.llm_config["tools"]}
    assert set(tools) == {"scale", "needs_missing"}
    scale = tools["scale"]["parameters"]
    assert scale["required"] == ["values"]
    assert scale["properties"]["values"]["description"] == "The numbers."
    assert scale["properties"]["values"]["type"] == "array"
    assert scale["properties"]["factor"]["type"] == "number"
    assert tools["needs_missing"]["parameters"]["properties"]["x"]["type"] == "integer"
    # The executor runs the function's own code through AG2's tool-call path.
    call = {"id": "c1", "type": "function", "function": {"name": "scale", "arguments": '{"values": [1.5, 2]}'}}
    _, reply = proxy.generate_tool_calls_reply([{"role": "assistant", "content": None, "tool_calls": [call]}])
    assert reply["tool_responses"][0]["content"] == "[3.0, 4]"
