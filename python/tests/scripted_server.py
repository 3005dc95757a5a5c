"""A scripted OpenAI-compatible server on 127.0.0.1 for the Python package's tests: a real HTTP server
whose replies a Python function decides from the request body. Every request is recorded.

`arithmetic_script` plays an assistant and an optimizer on problems "Compute EXPR.":
- the optimizer (a request offering `add_function`) adds `arith(expression)` and `square(x)` in one
  reply, then says TERMINATE; a function list that already has `arith` gets TERMINATE at once;
- the assistant calls `arith` when it is offered (as a tool, or as an AG2 legacy function), and boxes
  the result; without it, it answers sums with a code block and then boxes the output, and boxes a
  wrong `0` for anything else, so learning `arith` strictly improves the score; it says TERMINATE
  when AG2's proxy asks for it (or only nudges it on).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

# In halves: a test's sandboxed code scans every file it can read for the whole key.
TEST_KEY = "sk-test-" + "SECRET-d34db33f"
ARITH_CODE = "def arith(expression):\n    return eval(expression, {'__builtins__': {}})\n"
SQUARE_CODE = "def square(x):\n    return x * x\n"


def _add(name: str, description: str, arguments: dict, code: str) -> dict:
    return {"name": "add_function", "arguments": json.dumps({
        "name": name, "description": description, "arguments": json.dumps(arguments),
        "packages": "", "code": code,
    })}


def _text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _offered(body: dict) -> List[str]:
    names = [t.get("function", {}).get("name") for t in body.get("tools") or []]
    return names + [f.get("name") for f in body.get("functions") or []]


def arithmetic_script(body: dict) -> dict:
    messages = body.get("messages", [])
    offered = _offered(body)
    if "add_function" in offered:
        prompt = "\n".join(_text(m) for m in messages)
        if any(m.get("role") == "tool" for m in messages) or "def arith" in prompt:
            return {"content": "TERMINATE"}
        return {"tool_calls": [
            _add("arith", "Evaluates an arithmetic expression exactly.",
                 {"expression": {"type": "string", "description": "e.g. 17 * 3"}}, ARITH_CODE),
            _add("square", "The square of a number.", {"x": {"type": "number"}}, SQUARE_CODE),
        ]}
    opening = next((_text(m) for m in messages if m.get("role") == "user"), "")
    found = re.search(r"Compute (.+?)\.", opening)
    expression = found.group(1) if found else "0"
    last = messages[-1] if messages else {}
    if last.get("role") == "user" and len(messages) > 2 and ("TERMINATE" in _text(last) or _text(last).startswith("Continue")):
        return {"content": "TERMINATE"}  # AG2's proxy asks for it once an answer is in
    if last.get("role") in ("tool", "function"):
        return {"content": f"The result is \\boxed{{{_text(last).strip()}}}."}
    answered_by_code = any("```python" in _text(m) for m in messages if m.get("role") == "assistant")
    if answered_by_code:
        numbers = re.findall(r"-?\d+(?:\.\d+)?", _text(last))
        return {"content": f"So the answer is \\boxed{{{numbers[-1] if numbers else '?'}}}."}
    if "arith" in offered:
        call = {"name": "arith", "arguments": json.dumps({"expression": expression})}
        return {"function_call": call} if body.get("functions") else {"tool_calls": [call]}
    if "+" in expression:
        return {"content": f"Let me compute it.\n```python\nprint({expression})\n```"}
    return {"content": "I think it is \\boxed{0}."}


class ScriptedServer:
    """`with ScriptedServer(script) as server:` serves on `server.base_url` until the block ends."""

    def __init__(self, script: Callable[[dict], dict] = arithmetic_script, delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.requests: List[dict] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without this, Nagle plus delayed ACK
                # add ~40 ms to every call.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer.requests.append(body)
                if outer.delay:
                    time.sleep(outer.delay)
                reply = outer.script(body)
                status = reply.pop("status", 200)
                message: Dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
                if "function_call" in reply:
                    message["function_call"] = reply["function_call"]
                if "tool_calls" in reply:
                    message["tool_calls"] = [
                        {"id": f"call_{i}", "type": "function", "function": call}
                        for i, call in enumerate(reply["tool_calls"])
                    ]
                finish = "tool_calls" if "tool_calls" in reply else ("function_call" if "function_call" in reply else "stop")
                data = json.dumps({
                    "id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "test-model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                }).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the default 5 drops connections at high concurrency

        self._server = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread: Optional[threading.Thread] = None

    def config_list(self, model: str = "test-model") -> List[dict]:
        return [{"model": model, "base_url": self.base_url, "api_key": TEST_KEY,
                 "api_type": "openai", "price": [0.001, 0.002]}]

    def __enter__(self) -> "ScriptedServer":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
