"""Run `transformers serve` on the tiny checkpoint, on loopback, for tests and `bench/serving.py`.

The tiny checkpoint's processor is our `FramesGemma4Processor`, which transformers
doesn't know: `AutoProcessor` falls back to the bare tokenizer, and the server then
treats the model as text-only and silently drops images and audio. So the served
copy ships the class as checkpoint code (`auto_map`, loaded with
`--trust-remote-code`), which needs no torchvision (Gemma4Processor would, for its
video processor). The copy sits in a private Hugging Face cache under a repo id,
so `/v1/models`, which lists cached models, reports it like vLLM reports its model.

`text_only=True` serves the checkpoint folder as it is instead: the tokenizer-only
processor makes the server treat Gemma 4 as a text LLM, the only kind its
continuous batching takes (transformers 5.23 falls back to sequential generation
for multimodal models).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

SERVED_REPO_ID = "local/tiny-gemma4"
PROCESSOR_MODULE = "processing_frames_gemma4"
START_TIMEOUT_S = 90.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processor_source() -> str:
    """`FramesGemma4Processor` as a self-contained module (checkpoint code may import only transformers)."""
    from pipelines.model.local.processor import FramesGemma4Processor

    return (
        "from transformers import Gemma4Processor\n"
        "from transformers.processing_utils import ProcessorMixin\n\n\n"
        + inspect.getsource(FramesGemma4Processor)
    )


def prepare_hub_cache(root: Path, checkpoint: Path, repo_id: str = SERVED_REPO_ID) -> Path:
    """A Hugging Face cache under `root` holding `checkpoint` as `repo_id`, with the processor as code."""
    owner, name = repo_id.split("/")
    # transformers versions checkpoint code by the snapshot's commit hash, which must look like one.
    commit = hashlib.sha1(str(checkpoint.resolve()).encode()).hexdigest()
    repo = root / "hub" / f"models--{owner}--{name}"
    snapshot = repo / "snapshots" / commit
    if snapshot.exists():
        shutil.rmtree(snapshot)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for file in checkpoint.iterdir():
        if file.is_file():
            shutil.copy2(file, snapshot / file.name)
    (snapshot / f"{PROCESSOR_MODULE}.py").write_text(processor_source())
    for config_name in ("processor_config.json", "tokenizer_config.json"):
        path = snapshot / config_name
        config = json.loads(path.read_text())
        config["auto_map"] = {"AutoProcessor": f"{PROCESSOR_MODULE}.FramesGemma4Processor"}
        path.write_text(json.dumps(config, indent=2))
    return root / "hub"


def byte_token_bias(checkpoint: Path) -> dict[str, float]:
    """`logit_bias` that keeps the random tiny model off its 256 byte-fallback tokens.

    Random weights pick raw bytes most of the time, and invalid UTF-8 byte runs make the
    server's incremental decoder (tokenizers' DecodeStream) abort the stream with "Invalid
    prefix encountered". A trained model never writes such runs; the bias keeps the tiny
    model's output decodable so the test exercises the serving path, not that decoder limit.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    ids = tokenizer.convert_tokens_to_ids([f"<0x{byte:02X}>" for byte in range(256)])
    return {str(token_id): -100.0 for token_id in ids}


def wait_until_answering(
    process: subprocess.Popen,
    url: str,
    timeout_s: float,
    *,
    name: str = "the server",
    log_path: Path | None = None,
) -> None:
    """Until `url` answers HTTP 200; fails at once if `process` exits first (with its log's tail, if any)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited ({process.returncode}){_tail_of(log_path)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} didn't answer {url} within {timeout_s:.0f} s{_tail_of(log_path)}")


def _tail_of(log_path: Path | None) -> str:
    return f":\n{_tail(log_path)}" if log_path else ""


def _tail(log_path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    return ""


@contextlib.contextmanager
def transformers_serve(
    workdir: Path,
    *,
    checkpoint: Path | None = None,
    text_only: bool = False,
    continuous_batching: bool = False,
    timeout_s: float = START_TIMEOUT_S,
    extra_args: tuple[str, ...] = (),
) -> Iterator[tuple[str, str]]:
    """Start `transformers serve` on a free loopback port; yields `(base_url, served model name)`.

    The server runs offline on the CPU and is always stopped on exit (terminate, then kill).
    """
    from pipelines.model.local.tiny import build_tiny_checkpoint

    checkpoint = Path(checkpoint or build_tiny_checkpoint())
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        # Checkpoint code is copied here, not into the user's ~/.cache/huggingface.
        "HF_MODULES_CACHE": str(workdir / "modules"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    if text_only:
        model = str(checkpoint)
        env["HF_HUB_CACHE"] = str(workdir / "empty-hub")
        (workdir / "empty-hub").mkdir(exist_ok=True)
    else:
        model = SERVED_REPO_ID
        env["HF_HUB_CACHE"] = str(prepare_hub_cache(workdir, checkpoint))
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("transformers")),
        "serve",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--log-level",
        "warning",
        *(["--trust-remote-code"] if not text_only else []),
        *(["--continuous-batching"] if continuous_batching else []),
        *extra_args,
    ]
    log_path = workdir / f"serve-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until_answering(
            process,
            f"http://127.0.0.1:{port}/health",
            timeout_s,
            name="transformers serve",
            log_path=log_path,
        )
        yield f"http://127.0.0.1:{port}/v1", model
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """Ask `process` to end, and kill it if it hasn't within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)
