"""A MarianMT model small enough to build in seconds, for testing the transformers back-translation path offline.

Weights are random, so translations are junk; the point is the real loading,
tokenizing, batching and generation code path with no model hub.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import sentencepiece as spm
import torch


def _train_spm(lines: Sequence[str], vocab_size: int) -> bytes:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        unk_id=1,
        bos_id=-1,
        eos_id=0,
        pad_id=-1,
        eos_piece="</s>",
        minloglevel=2,
        num_threads=1,
    )
    return model.getvalue()


def build_tiny_marian(
    out_dir: Path,
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
    vocab_size: int = 120,
    d_model: int = 16,
    seed: int = 0,
    layers: int = 1,
) -> Path:
    """Save a MarianMT model of ``layers`` encoder and decoder layers (random weights) plus its MarianTokenizer in ``out_dir`` and return the path."""
    from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "_spm"
    work.mkdir(exist_ok=True)
    pieces: dict[str, None] = {"</s>": None, "<unk>": None}
    for name, lines in (("source.spm", src_texts), ("target.spm", tgt_texts)):
        blob = _train_spm(lines, vocab_size)
        (work / name).write_bytes(blob)
        proc = spm.SentencePieceProcessor(model_proto=blob)
        pieces.update({proc.id_to_piece(i): None for i in range(proc.get_piece_size())})
    vocab = {piece: i for i, piece in enumerate(pieces)}
    vocab["<pad>"] = len(vocab)
    (work / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")

    tokenizer = MarianTokenizer(
        source_spm=str(work / "source.spm"), target_spm=str(work / "target.spm"), vocab=str(work / "vocab.json")
    )
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=2 if d_model < 64 else 8,
        decoder_attention_heads=2 if d_model < 64 else 8,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=512,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=pad, pad_token_id=pad, eos_token_id=0, bad_words_ids=[[pad]], max_length=64
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    for f in work.iterdir():
        f.unlink()
    work.rmdir()
    return out_dir
