"""``nndl serve``: the web page that shows inside the network (see :mod:`nndl.app.web.server`).

FastAPI and uvicorn are optional (``pip install 'nndl[web]'``) and imported only
when the command runs.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
from typing import Any

from ...device import DEVICES, array_module
from ...errors import ConfigError
from ..options import add_data_option, real_number, whole_number


def run_serve(args: argparse.Namespace) -> int:
    """Serve the page until Ctrl-C, printing its address first."""
    try:
        import uvicorn

        from .server import create_app
    except ImportError:
        raise ConfigError("nndl serve needs FastAPI and uvicorn: pip install 'nndl[web]'") from None
    array_module(args.device)  # a missing GPU or CuPy is said before the page starts
    app = create_app(args.models, args.data or os.environ.get("NNDL_DATA") or None, args.abandon_after, args.device)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    config.load()
    sockets = [listen(args.host, args.port)]
    host, port = sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"nndl serve: the page is at http://{shown}:{port}/  (models in {app.state.server.models.folder}; "
          "Ctrl-C stops)", flush=True)
    server.run(sockets=sockets)
    return 0


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port``; a port in use or an address not on this computer is one line."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"--host {host}: not an address of this computer ({exc}); the default is 127.0.0.1") from None
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once after a stop
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use (another nndl serve?): stop that program "
                              f"or choose another port with --port N (--port 0 picks a free one)") from None
        raise ConfigError(f"cannot listen on {host} port {port} ({exc.strerror or exc}): choose another --host "
                          "or --port") from None
    return listener


def register(commands: Any) -> None:
    """Add ``nndl serve`` to the command line's subcommands."""
    s = commands.add_parser(
        "serve", help="a local web page: draw digits, train and watch, see mistakes and inside the network",
        description="Serve a web page on this computer (no internet needed): draw a digit and see each "
        "preprocessing step, the hidden activations, the costs and BP1-BP4; train the book's runs and watch the "
        "curves live; see the confusion matrix and the digits behind it; chapter 3's learning slowdown.")
    s.add_argument("--models", default="models", metavar="DIR",
                   help="folder of model files to use, save into and upload to (default ./models)")
    add_data_option(s)
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
    s.add_argument("--port", type=whole_number(0, 65535), default=8000, help="port (default 8000; 0 picks a free one)")
    s.add_argument("--abandon-after", type=real_number(0.0, 604_800.0), default=60.0, metavar="SECONDS",
                   help="stop a training run no open page has watched for this long (default 60)")
    s.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where the page's training runs compute: cpu (NumPy, the default) or gpu (CuPy)")
    s.set_defaults(run=run_serve)
