"""The servers a stack runs, in the foreground: the API under uvicorn (serve) and moto's S3 server
(s3-server). `fraudops up` starts both as `python -m fraudops_dev.cli serve | s3-server`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from fraudops.core.config import Settings
from fraudops_dev.cli.common import AddCommand, Subparsers, log


def serve_log_config(log_file: str | None) -> dict[str, Any]:
    """uvicorn's logging: the terminal, or (the stack's API) a file rotated at 10 MB so a million
    requests cannot fill the disk; either way credentials in a logged URL are masked."""
    import copy

    import uvicorn

    from fraudops_dev.local import LOG_BACKUPS, LOG_ROTATE_BYTES

    redact = {"redact": {"()": "fraudops.api.redact.RedactCredentials"}}
    if not log_file:
        config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
        config["filters"] = redact
        for handler in config["handlers"].values():
            handler["filters"] = ["redact"]
        return config
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": redact,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.handlers.RotatingFileHandler",
                "filename": log_file,
                "maxBytes": LOG_ROTATE_BYTES,
                "backupCount": LOG_BACKUPS,
                "formatter": "plain",
                "filters": ["redact"],
            },
        },
        "loggers": {
            name: {"handlers": ["file"], "level": "INFO", "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fraudops")
        },
    }


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from pydantic import SecretStr

    from fraudops.api import build_default_app
    from fraudops_dev.local import local_api_key

    if not settings.api_key_values() and not settings.api_keys_ssm_parameter:
        key = local_api_key(settings)
        if key:
            settings = settings.model_copy(update={"api_keys": SecretStr(key)})
            log.info("using the local API key from %s", settings.state_dir / "api-key")
    log_config = serve_log_config(args.log_file)
    host = args.host or settings.api_host
    app = build_default_app(settings)
    uvicorn.run(app, host=host, port=args.port or settings.api_port, log_level="info", log_config=log_config)
    return 0


def cmd_s3_server(args: argparse.Namespace, settings: Settings) -> int:
    from moto.server import ThreadedMotoServer

    port = args.port or settings.s3_port
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"moto S3 server on http://127.0.0.1:{port} (in memory: S3 mode keeps nothing across restarts)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def _add_serve(sub: Subparsers) -> None:
    serve = sub.add_parser("serve", help="serve the API with uvicorn in the foreground")
    serve.add_argument("--host", help="bind address (default FRAUDOPS_API_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default FRAUDOPS_API_PORT, 8000)")
    serve.add_argument("--log-file", help="log to this file, rotated at 10 MB (default: the terminal)")
    serve.set_defaults(func=cmd_serve)


def _add_s3_server(sub: Subparsers) -> None:
    s3 = sub.add_parser("s3-server", help="run moto's S3 server on 127.0.0.1 (foreground)")
    s3.add_argument("--port", type=int, help="port (default FRAUDOPS_S3_PORT, 5000)")
    s3.set_defaults(func=cmd_s3_server)


COMMANDS: dict[str, AddCommand] = {
    "serve": _add_serve,
    "s3-server": _add_s3_server,
}
