"""Launch settings from the command line, with environment variables as defaults (for Spaces)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields

from pipelines.model.variants import DEFAULT_VARIANT, QUANTIZATIONS, VARIANTS

ON_SPACES = bool(os.environ.get("SPACE_ID"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class AppConfig:
    variant: str = DEFAULT_VARIANT
    quantization: str = "auto"
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    preload: bool = False
    # One model, many users: how many generations may run at once, and how many may wait.
    concurrency_limit: int = 1
    max_queue: int = 16
    # What one visitor may have waiting or running at once: per browser tab / API session, and per address
    # (0: no cap). Beyond it a request is refused at once, so one client can't fill the queue.
    max_per_session: int = 3
    max_per_ip: int = 8
    # Serve only the configured variant and quantization: no request may switch (and reload) the model.
    lock_model: bool = False
    max_file_size: str = "50mb"
    mcp_server: bool = True
    # Where generation runs: "local" (this process) or "openai" (an OpenAI-compatible server).
    backend: str = "local"
    base_url: str | None = None
    api_key: str | None = None
    # Gradio's own temporary files (uploads, outputs): checked every hour, deleted when older than a day, and
    # all of this app's deleted when it closes. None keeps them (for a second app in the same process).
    delete_cache: tuple[int, int] | None = (3600, 86400)


def _variant(value: str) -> str:
    """A built-in variant key, or a pre-quantized checkpoint (folder or Hub id), registered as a variant."""
    from pipelines.errors import InputError
    from pipelines.model.variants import register_checkpoint

    try:
        return register_checkpoint(value).key
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_config(argv: list[str] | None = None) -> AppConfig:
    env = os.environ
    parser = argparse.ArgumentParser(description="Gemma 4 Showcase")
    parser.add_argument(
        "--variant",
        type=_variant,
        default=env.get("SHOWCASE_VARIANT", DEFAULT_VARIANT),
        help=f"one of {', '.join(VARIANTS)}, or a folder or Hub id of a pre-quantized checkpoint "
        "(python -m pipelines.model.local.export)",
    )
    parser.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        default=env.get("SHOWCASE_QUANTIZATION", "auto"),
    )
    parser.add_argument(
        "--host", default=env.get("GRADIO_SERVER_NAME", "0.0.0.0" if ON_SPACES else "127.0.0.1")
    )
    parser.add_argument("--port", type=int, default=int(env.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", default=_env_bool("SHOWCASE_SHARE", False))
    parser.add_argument(
        "--preload",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("SHOWCASE_PRELOAD", ON_SPACES),
        help="load the model in the background at start-up (default on Spaces)",
    )
    parser.add_argument(
        "--concurrency-limit", type=int, default=int(env.get("SHOWCASE_CONCURRENCY_LIMIT", "1"))
    )
    parser.add_argument("--max-queue", type=int, default=int(env.get("SHOWCASE_MAX_QUEUE", "16")))
    parser.add_argument(
        "--max-per-session",
        type=int,
        default=int(env.get("SHOWCASE_MAX_PER_SESSION", "3")),
        help="requests one browser tab or API session may have waiting or running (0: no cap)",
    )
    parser.add_argument(
        "--max-per-ip",
        type=int,
        default=int(env.get("SHOWCASE_MAX_PER_IP", "8")),
        help="requests one network address may have waiting or running (0: no cap)",
    )
    parser.add_argument(
        "--lock-model",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("SHOWCASE_LOCK_MODEL", False),
        help="serve only --variant/--quantization: requests can't switch the model",
    )
    parser.add_argument("--max-file-size", default=env.get("SHOWCASE_MAX_FILE_SIZE", "50mb"))
    parser.add_argument(
        "--mcp-server", action=argparse.BooleanOptionalAction, default=_env_bool("SHOWCASE_MCP_SERVER", True)
    )
    _add_backend_arguments(parser, env)
    args = parser.parse_args(argv)
    if args.backend == "openai" and not args.base_url:
        parser.error("--backend openai needs --base-url (or OPENAI_BASE_URL), e.g. http://127.0.0.1:8000/v1")
    # Every flag is named after the field it sets; limits below their floor are raised to it.
    given = {
        field.name: getattr(args, field.name) for field in fields(AppConfig) if hasattr(args, field.name)
    }
    floors = {"concurrency_limit": 1, "max_queue": 1, "max_per_session": 0, "max_per_ip": 0}
    return AppConfig(**given | {name: max(floor, given[name]) for name, floor in floors.items()})


def _add_backend_arguments(parser: argparse.ArgumentParser, env) -> None:
    from pipelines.model.backends import BACKENDS

    group = parser.add_argument_group("serving backend")
    group.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default=env.get("SHOWCASE_BACKEND", "local"),
        help="local: load the model in this process; openai: use an OpenAI-compatible server (vLLM, ...)",
    )
    group.add_argument(
        "--base-url",
        default=env.get("OPENAI_BASE_URL"),
        help="the server's OpenAI API root, e.g. http://127.0.0.1:8000/v1 (openai backend)",
    )
    group.add_argument(
        "--api-key", default=env.get("OPENAI_API_KEY"), help="the server's API key, if it needs one"
    )
