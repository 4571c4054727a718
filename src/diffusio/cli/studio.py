"""``diffusio serve``: the studio web page and HTTP API on this machine."""

from __future__ import annotations

import argparse

from diffusio.cli.args import non_negative_float, positive_int
from diffusio.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("serve", help="start diffusio studio: a local web page and JSON HTTP API",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Generate and inpaint images and simulate spread from a browser. "
                                   "Binds to 127.0.0.1 (this machine only) unless --host says otherwise.",
                       epilog="Example:\n  diffusio serve --port 8000    # then open http://127.0.0.1:8000\n"
                              "  curl -s localhost:8000/v1/generate -H 'Content-Type: application/json' "
                              "-d '{\"prompt\": \"a bag\", \"n\": 4}'")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: local only)")
    p.add_argument("--port", type=positive_int("--port"), default=8000)
    p.add_argument("--max-n", type=positive_int("--max-n"), default=64, help="most images per request")
    p.add_argument("--max-steps", type=positive_int("--max-steps"), default=100)
    p.add_argument("--max-trials", type=positive_int("--max-trials"), default=2000)
    p.add_argument("--timeout", type=non_negative_float("--timeout", 86400), default=120.0,
                   help="seconds a request may take; its work stops then too (default 120)")
    p.add_argument("--max-running", type=positive_int("--max-running"), default=2,
                   help="requests at work at once; more get 429 (default 2, one per core)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from diffusio.studio import Limits, create_app
    except ImportError as err:
        raise UsageError(f"the studio needs its web packages ({err.name}); "
                         "pip install 'diffusio[studio]'") from err
    if args.port > 65535:
        raise UsageError(f"--port must be at most 65535, got {args.port}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding to {args.host} makes the studio reachable from other machines")
    app = create_app(Limits(max_n=args.max_n, max_steps=args.max_steps, max_trials=args.max_trials,
                            request_seconds=args.timeout, max_running=args.max_running))
    print(f"diffusio studio on http://{args.host}:{args.port} (API docs: /docs); Ctrl-C to stop")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
