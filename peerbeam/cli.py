"""The `peerbeam` command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peerbeam", description="Send very large files directly between devices."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the signaling server and web client locally")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: LAN)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--data-dir", type=Path, default=None, help="where rooms are stored")
    serve.add_argument(
        "--tls", action="store_true", help="HTTPS/WSS with a self-signed certificate"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from .server.run import default_data_dir, serve

        serve(args.host, args.port, args.data_dir or default_data_dir(), args.tls)
        return 0
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
