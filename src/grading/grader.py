"""agentopt's math-verify worker: one JSON request a line on stdin, one JSON reply a line on stdout.

Request: {"id": N, "given": "...", "reference": "...", "timeout": seconds (0 = none)}
Reply:   {"id": N, "equal": true|false} or {"id": N, "equal": false, "error": "..."}
The first line written is {"ready": true} once math_verify is imported and warmed up, or
{"ready": false, "error": "..."} when it cannot be imported. Answers are wrapped in \\boxed{} because
math_verify's LaTeX extraction only looks inside boxes and $...$ (a bare "\\frac12" would not parse).
"""
import json
import logging
import sys

# math_verify logs every unparseable answer with a traceback; the Rust side only wants the verdict.
logging.disable(logging.CRITICAL)


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    try:
        from math_verify import parse, verify

        verify(parse("\\boxed{\\frac{1}{2}}"), parse("\\boxed{0.5}"))  # pays the lazy imports now
    except Exception as e:  # noqa: BLE001 - reported to the Rust side, which falls back
        reply({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return
    reply({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        # 0 disables math_verify's SIGALRM timeouts; the Rust side enforces its own deadline by killing us.
        seconds = max(0, int(req.get("timeout", 0)))
        try:
            gold = parse("\\boxed{" + req["reference"] + "}", parsing_timeout=seconds)
            target = parse("\\boxed{" + req["given"] + "}", parsing_timeout=seconds)
            # verify(gold, target): the reference goes first (the comparison is not symmetric).
            equal = bool(gold) and bool(target) and bool(verify(gold, target, timeout_seconds=seconds))
            reply({"id": req["id"], "equal": equal})
        except BaseException as e:  # noqa: BLE001 - a bad case must not end the worker
            if isinstance(e, KeyboardInterrupt):
                raise
            reply({"id": req["id"], "equal": False, "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
