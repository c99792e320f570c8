"""The `peerbeam` command."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8000"


def rate(text: str) -> float:
    from .peer.pacer import parse_rate

    try:
        return parse_rate(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


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
    serve.add_argument(
        "--public-url", default=None, metavar="URL",
        help="the URL users reach this server at (a reverse proxy, a DNS name); "
        "default: $PEERBEAM_PUBLIC_URL, else the address it listens on",
    )
    serve.add_argument(
        "--allowed-host", action="append", dest="allowed_hosts", default=None, metavar="NAME",
        help="another host name to answer for (repeatable; default: its own names only)",
    )

    send = commands.add_parser("send", help="offer files; prints the link on stdout")
    send.add_argument("files", nargs="+", type=Path)
    send.add_argument("--server", help=f"peerbeam site (default: $PEERBEAM_SERVER or {DEFAULT_SERVER})")
    send.add_argument("--password", default=os.environ.get("PEERBEAM_PASSWORD"),
                      help="also require this password (default: $PEERBEAM_PASSWORD)")
    send.add_argument("--one-time", action="store_true", help="the link works for one receiver")
    send.add_argument("--expires", type=int, metavar="SECONDS", help="room lifetime")
    send.add_argument("--max-receivers", type=int, metavar="N")
    send.add_argument("--max-rate", type=rate, metavar="RATE",
                      help="upload at most RATE bytes/s in all (e.g. 800K, 2M, 1.5G)")
    send.add_argument("--connections", type=int, choices=range(1, 9), metavar="N",
                      help="connections per receiver (1-8; default: add up to 4 while they help)")
    send.add_argument("--relay-only", action="store_true", help=argparse.SUPPRESS)

    receive = commands.add_parser("receive", help="receive the files behind a link")
    receive.add_argument("link")
    receive.add_argument("-o", "--output", type=Path, default=Path("."), help="directory")
    receive.add_argument("--password", default=os.environ.get("PEERBEAM_PASSWORD"))
    receive.add_argument("--max-rate", type=rate, metavar="RATE",
                         help="download at most RATE bytes/s (e.g. 800K, 2M, 1.5G)")
    receive.add_argument("--give-up-after", type=seconds, metavar="SECONDS",
                         help="after a lost connection, keep trying this long since the last "
                              "progress (default 600)")
    receive.add_argument("--relay-only", action="store_true", help=argparse.SUPPRESS)

    digest = commands.add_parser(
        "digest", help="print the peerbeam digest (as shown after a transfer) and the SHA-256 of files"
    )
    digest.add_argument("files", nargs="+", type=Path)

    from .deploy.commands import add_deploy_arguments, add_stage_arguments

    add_deploy_arguments(commands.add_parser("deploy", help="deploy to AWS (docs/deploy.md)"))
    add_stage_arguments(commands.add_parser("destroy", help="remove an AWS deployment"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from .server.config import ServeConfig
        from .server.run import default_data_dir, serve

        try:
            config = ServeConfig.from_env().with_options(args.public_url, args.allowed_hosts)
        except ValueError as error:
            build_parser().error(str(error))
        serve(args.host, args.port, args.data_dir or default_data_dir(), args.tls, config)
        return 0
    if args.command == "digest":
        from .digest import run as run_digest

        return run_digest(args.files)
    if args.command in ("deploy", "destroy"):
        from .deploy.commands import run as run_deploy

        return run_deploy(args)
    from .peer import commands as peer_commands

    if args.command == "send":
        return peer_commands.run(peer_commands.send(
            args.files, args.server, args.password, args.one_time, args.expires,
            args.max_receivers, args.relay_only, args.max_rate, args.connections,
        ))
    if args.command == "receive":
        return peer_commands.run(peer_commands.receive(
            args.link, args.output, args.password, args.relay_only, args.max_rate,
            args.give_up_after,
        ))
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
