"""Speed of an OpenAI-compatible model serving ragline's answer prompts.

    python -m llama_cpp.server --model SmolLM2-135M-Instruct.Q4_1.gguf --port 8090 \\
        --n_threads 2 --n_ctx 4096 --model_alias smollm2 &
    .venv/bin/python benchmarks/llm_speed.py --base-url http://127.0.0.1:8090/v1 --model smollm2

Indexes the sample corpus in an empty RAGLINE_HOME, builds the grounded prompt of
each question from its retrieved passages, and asks the model twice: once whole
(prompt and completion token counts as the server reports them, and the time, most
of it reading the prompt on a CPU), once streamed (tokens per second after the first;
llama.cpp's server keeps the prompt it has just read, so the streamed run's first
token comes at once). Greedy decoding (temperature 0). Writes
benchmarks/results/llm_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from core import QUERIES  # benchmarks/core.py

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/llm_speed.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragline-llm-") as home:
        os.environ["RAGLINE_HOME"] = home
        from ragline.answer.llm.openai import OpenAICompatible
        from ragline.answer.prompt import build_messages
        from ragline.config import ProviderConfig, get_settings
        from ragline.ingest.connectors.files import FileSource
        from ragline.ingest.pipeline import Pipeline
        from ragline.search.hybrid import Searcher

        settings = get_settings()
        pipeline = Pipeline.from_settings(settings)
        pipeline.sync(FileSource(ROOT / "samples" / "corpus"), collection="samples")
        searcher = Searcher(pipeline.engine, settings, pipeline.embedder)
        llm = OpenAICompatible(
            ProviderConfig(name="bench", base_url=args.base_url, model=args.model, timeout=600)
        )
        runs = []
        for question in [q for q in QUERIES if len(q.split()) > 2][: args.questions]:
            messages = build_messages(question, searcher.search(question, k=settings.answer_k))
            started = time.perf_counter()
            whole = llm.complete(messages, max_tokens=args.max_tokens, temperature=0)
            whole_seconds = time.perf_counter() - started
            started = time.perf_counter()
            first = None
            deltas = 0
            with llm.stream(messages, max_tokens=args.max_tokens, temperature=0) as stream:
                for _ in stream:
                    deltas += 1
                    first = first or time.perf_counter() - started
            streamed_seconds = time.perf_counter() - started
            assert whole.usage is not None
            assert first is not None
            runs.append(
                {
                    "question": question,
                    "prompt_tokens": whole.usage.prompt_tokens,
                    "completion_tokens": whole.usage.completion_tokens,
                    "whole_seconds": round(whole_seconds, 3),
                    "first_token_seconds": round(first, 3),
                    "generation_tokens_per_second": round(
                        deltas / max(streamed_seconds - first, 1e-9), 1
                    ),
                }
            )
            print(json.dumps(runs[-1]))
    result = {
        "benchmark": "grounded answer prompts on an OpenAI-compatible server",
        "model": args.model,
        "max_tokens": args.max_tokens,
        "median_generation_tokens_per_second": statistics.median(
            r["generation_tokens_per_second"] for r in runs
        ),
        "median_prompt_tokens": statistics.median(r["prompt_tokens"] for r in runs),
        "median_whole_seconds": statistics.median(r["whole_seconds"] for r in runs),
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
