"""Derive the CLIP tokenizer files the endpoint ships, from the BPE data in open-clip-torch.

Run once by a developer, never at run time:

    pip download --no-deps -d /tmp/oc open-clip-torch
    python tools/derive_clip_vocab.py /tmp/oc/open_clip_torch-*.whl

Why: diffusers loads a single-file Stable Diffusion checkpoint offline only when a local
config folder holds a tokenizer (vocab.json + merges.txt). The real CLIP BPE table that
every SD 1.x/SDXL text encoder was trained with is public data shipped inside the
open-clip-torch wheel; deriving the two files from it once (the same way CLIP builds its
vocabulary) lets the endpoint run without open-clip-torch and without the Hugging Face hub.
The outputs are written gzipped (mtime 0, so re-running gives identical bytes) to
aws_extension/endpoint/data/.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import zipfile
from pathlib import Path

BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
#: CLIP keeps the first 49152 - 256 - 2 merges: 256 byte tokens, 256 byte+</w> tokens, the
#: merges and 2 special tokens make the 49408 ids the SD text encoders' embeddings have.
MERGE_COUNT = 49152 - 256 - 2
VOCAB_SIZE = 49408
OUT_DIR = Path(__file__).resolve().parent.parent / "aws_extension" / "endpoint" / "data"


def byte_symbols() -> list[str]:
    """The printable stand-in for each byte value, in CLIP's (and GPT-2's) byte-level order.

    Printable bytes stand for themselves; the others are mapped to code points from 256 up,
    so every byte has a visible, whitespace-free symbol a BPE merge can name.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols: dict[int, int] = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = 256 + extra
            extra += 1
    return [chr(symbols[b]) for b in printable + [b for b in range(256) if b not in printable]]


def derive(bpe_text: str) -> tuple[dict[str, int], list[str]]:
    """The vocabulary (token -> id) and the merge lines, in CLIP's id order."""
    lines = bpe_text.split("\n")[1 : MERGE_COUNT + 1]
    merges = [tuple(line.split()) for line in lines]
    if len(merges) != MERGE_COUNT or any(len(pair) != 2 for pair in merges):
        raise ValueError("unexpected BPE file: not 48894 two-symbol merges after the header")
    base = byte_symbols()
    tokens = base + [symbol + "</w>" for symbol in base] + ["".join(pair) for pair in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise ValueError(f"derived {len(vocab)} distinct tokens, expected {VOCAB_SIZE}")
    return vocab, [" ".join(pair) for pair in merges]


def write_gzip(path: Path, text: str) -> None:
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(text.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("wheel", type=Path, help="an open_clip_torch-*.whl file")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as wheel:
        bpe_text = gzip.decompress(wheel.read(BPE_MEMBER)).decode("utf-8")
    vocab, merges = derive(bpe_text)
    args.out.mkdir(parents=True, exist_ok=True)
    write_gzip(args.out / "clip_vocab.json.gz", json.dumps(vocab, ensure_ascii=False))
    write_gzip(args.out / "clip_merges.txt.gz", "#version: 0.2\n" + "\n".join(merges) + "\n")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
