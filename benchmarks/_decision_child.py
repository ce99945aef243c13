"""Run by bench_decisions.py in a fresh interpreter on one checkout of the code (today's, or this one):
loads the API handler once, then for each ``<event> <calls>`` line on stdin times that many warm calls
and prints the samples (seconds) as one ``RESULT`` JSON line (the handler's own log lines go to stdout
too)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    code_root = Path(sys.argv[1])
    events = json.loads(Path(sys.argv[2]).read_text())
    sys.path[:0] = [str(code_root / "layers" / "runtime"), str(code_root / "functions" / "api")]
    import api_function

    import fraudops

    assert Path(fraudops.__file__).is_relative_to(code_root), (fraudops.__file__, code_root)
    from types import SimpleNamespace

    context = SimpleNamespace(function_name="bench", aws_request_id="bench", memory_limit_in_mb=1024,
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench",
                              get_remaining_time_in_millis=lambda: 30_000)  # fmt: skip
    bodies = {}
    for name, event in events.items():
        response = api_function.handler(event, context)
        assert response["statusCode"] == 200, response
        bodies[name] = json.loads(response["body"])
        for _ in range(300):
            api_function.handler(event, context)
    print("RESULT " + json.dumps(bodies), flush=True)
    for line in sys.stdin:
        name, calls = line.split()
        event = events[name]
        samples = []
        for _ in range(int(calls)):
            started = time.perf_counter()
            api_function.handler(event, context)
            samples.append(time.perf_counter() - started)
        print("RESULT " + json.dumps(samples), flush=True)


if __name__ == "__main__":
    main()
