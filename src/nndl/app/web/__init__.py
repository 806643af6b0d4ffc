"""``nndl serve``: the web page that shows inside the network (see :mod:`nndl.app.web.server`).

FastAPI and uvicorn are optional (``pip install 'nndl[web]'``) and imported only
when the command runs.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ...errors import ConfigError
from ..options import add_data_option, real_number, whole_number


def run_serve(args: argparse.Namespace) -> int:
    """Serve the page until Ctrl-C, printing its address first."""
    try:
        import uvicorn

        from .server import create_app
    except ImportError:
        raise ConfigError("nndl serve needs FastAPI and uvicorn: pip install 'nndl[web]'") from None
    app = create_app(args.models, args.data or os.environ.get("NNDL_DATA") or None, args.abandon_after)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    config.load()
    sockets = [config.bind_socket()]
    host, port = sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"nndl serve: the page is at http://{shown}:{port}/  (models in {app.state.server.models.folder}; "
          "Ctrl-C stops)", flush=True)
    server.run(sockets=sockets)
    return 0


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
    s.set_defaults(run=run_serve)
