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


def same(gold, target, seconds):
    """verify(gold, target) takes the reference first and is not symmetric (`x \\le 3` as gold accepts
    `(-\\infty, 3]`, not the other way round); an answer checker should be, so both orders are tried.
    Equations that are multiples of each other (`x+2=0`, `2x+4=0`) are also the same relation."""
    from math_verify import verify

    if verify(gold, target, timeout_seconds=seconds) or verify(target, gold, timeout_seconds=seconds):
        return True
    return any(proportional_equations(g, t) for g in gold for t in target)


def proportional_equations(a, b):
    import sympy

    if not (isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq)):
        return False
    da, db = a.lhs - a.rhs, b.lhs - b.rhs
    if da == 0 or db == 0:
        return False
    ratio = sympy.simplify(da / db)
    return bool(ratio.is_number and ratio != 0 and ratio.is_finite)


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
            equal = bool(gold) and bool(target) and same(gold, target, seconds)
            reply({"id": req["id"], "equal": equal})
        except BaseException as e:  # noqa: BLE001 - a bad case must not end the worker
            if isinstance(e, KeyboardInterrupt):
                raise
            reply({"id": req["id"], "equal": False, "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
