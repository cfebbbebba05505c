"""finetune/ data and loss: packing isolation, targets (loss mask, EOS, boundaries), refusals, exact sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ft_builders import chat_tokenizer, make_data_dir, tiny_gpt2, tiny_llama

from finetune import FinetuneConfig
from finetune import model as ft_model
from finetune.data import (
    IGNORE_INDEX,
    Batcher,
    check_examples,
    example_targets,
    load_split,
    pack_rows,
    single_rows,
)
from finetune.loop import accumulate_gradients, lr_factor
from finetune.model import LossHead, mask_mode, pick_device
from finetune.sampling import BatchOrder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    return make_data_dir(tmp_path_factory.mktemp("data"))


def per_example_loss(head: LossHead, batcher: Batcher, batch_rows: int) -> dict[int, float]:
    """Summed loss of each example (by its index in the split) over every batch of `batcher`."""
    out: dict[int, float] = {}
    with torch.no_grad():
        for batch in batcher.sequential(batch_rows):
            scores = head.scores(batch)
            for example, loss in zip(batch["example"][scores.keep].tolist(), scores.losses.tolist(), strict=True):
                out[example] = out.get(example, 0.0) + loss
    return out


MODELS = {
    "gpt2-sdpa": lambda v: tiny_gpt2(v, "sdpa"),
    "gpt2-eager": lambda v: tiny_gpt2(v, "eager"),
    "llama-sdpa": lambda v: tiny_llama(v, "sdpa"),
    "llama-eager": lambda v: tiny_llama(v, "eager"),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_an_examples_loss_is_the_same_packed_or_alone(data_dir, name):
    split = load_split(data_dir, "train")
    model = MODELS[name](len(chat_tokenizer())).eval()
    head = LossHead(model)
    assert head.body is not None  # the loss-tokens-only path is the one under test
    mode = mask_mode(model)
    packed_rows = pack_rows(split.lengths, 64)
    assert max(len(r) for r in packed_rows) >= 3, "rows must really hold several examples"
    packed = per_example_loss(head, Batcher(split, packed_rows, 0, mode), 4)
    alone = per_example_loss(head, Batcher(split, single_rows(len(split)), 0, mode), 1)
    assert packed.keys() == alone.keys() and len(alone) == len(split)
    worst = max(abs(packed[k] - alone[k]) for k in alone)
    assert worst < 1e-4, worst


def test_positions_only_mode_isolates_too(data_dir):
    """The route for flash attention and sliding-window models: no mask, restarting position ids, no cache."""
    split = load_split(data_dir, "train")
    model = tiny_llama(len(chat_tokenizer())).eval()
    head = LossHead(model)
    packed = per_example_loss(head, Batcher(split, pack_rows(split.lengths, 64), 0, "positions"), 4)
    alone = per_example_loss(head, Batcher(split, single_rows(len(split)), 0, "bool"), 1)
    assert max(abs(packed[k] - alone[k]) for k in alone) < 1e-4


def test_mask_modes_follow_the_attention_implementation():
    assert mask_mode(tiny_gpt2(50, "sdpa")) == "bool"
    assert mask_mode(tiny_gpt2(50, "eager")) == "float"
    sliding = tiny_llama(50)
    sliding.config.layer_types = ["sliding_attention", "full_attention"]
    assert mask_mode(sliding) == "positions"


def test_best_fit_packing_places_every_example_once_and_fills_rows():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, size=500)
    rows = pack_rows(lengths, 128)
    placed = np.concatenate(rows)
    assert sorted(placed.tolist()) == list(range(500))
    assert all(lengths[r].sum() <= 128 for r in rows)
    assert len(rows) <= np.ceil(lengths.sum() / 128) * 1.1  # within 10% of a perfect fill (a lower bound)
    assert [r.tolist() for r in rows] == [r.tolist() for r in pack_rows(lengths, 128)]  # deterministic


def test_targets_follow_the_loss_mask_and_eos_is_learned_even_when_pad_is_eos(tmp_path):
    tok = chat_tokenizer(pad_is_eos=True)
    assert tok.pad_token_id == tok.eos_token_id
    data = make_data_dir(tmp_path / "d", tokenizer=tok)
    split = load_split(data, "validation")
    batcher = Batcher(split, pack_rows(split.lengths, 64), tok.pad_token_id, "bool")
    eos = tok.eos_token_id
    seen_chat = seen_text = False
    for batch in batcher.sequential(8):
        ids, targets, example = batch["input_ids"], batch["targets"], batch["example"]
        for b in range(ids.shape[0]):
            for t in range(ids.shape[1] - 1):
                if example[b, t] < 0:
                    assert targets[b, t] == IGNORE_INDEX  # padding predicts nothing
                elif example[b, t + 1] != example[b, t]:
                    assert targets[b, t] == IGNORE_INDEX  # never across an example boundary
        row = ids[example == example.max()]  # any one example
        assert row.numel() > 0
        has_eos_target = (targets == eos).any()
        assert has_eos_target, "EOS must be a target, not masked as padding"
        seen_chat |= bool((batch["format"] == 1).any())
        seen_text |= bool((batch["format"] == 0).any())
    assert seen_chat and seen_text
    # one conversation, position by position: only assistant tokens (and their EOS) are targets
    ds = split.dataset
    chat = next(r for r in ds if r["format"] == "chat")
    targets = example_targets(np.asarray(chat["input_ids"]), np.asarray(chat["loss_mask"]))
    names = tok.convert_ids_to_tokens(chat["input_ids"])
    learned = [names[t + 1] for t in range(len(names) - 1) if targets[t] != IGNORE_INDEX]
    assert learned[-1] == "</s>" and "<|user|>" not in learned and "<|assistant|>" not in learned and "?" not in learned
    assert len(learned) == sum(chat["loss_mask"][1:])


def test_text_documents_learn_every_token_and_eos(data_dir):
    split = load_split(data_dir, "train")
    ds = split.dataset
    doc = next(r for r in ds if r["format"] == "text")
    targets = example_targets(np.asarray(doc["input_ids"]), np.asarray(doc["loss_mask"]))
    assert (targets[:-1] == np.asarray(doc["input_ids"][1:])).all() and targets[-1] == IGNORE_INDEX
    assert doc["input_ids"][-1] == chat_tokenizer().eos_token_id


def test_too_long_examples_and_double_bos_are_refused(data_dir, tmp_path):
    split = load_split(data_dir, "train")
    with pytest.raises(ValueError, match="longer than block_size 16.*nothing is truncated"):
        check_examples(split, 16, 10_000, None)
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        check_examples(split, 64, 10, None)
    tok = chat_tokenizer()
    tok.chat_template = "{{ bos_token }}" + tok.chat_template  # a template that writes BOS twice
    bad = make_data_dir(tmp_path / "bad", texts=False, tokenizer=tok)
    with pytest.raises(ValueError, match="two BOS tokens"):
        check_examples(load_split(bad, "train"), 64, 10_000, tok.bos_token_id)


def test_use_augmented_false_keeps_originals_only(data_dir):
    every, originals = load_split(data_dir, "train"), load_split(data_dir, "train", use_augmented=False)
    aug = every.dataset["aug_of"]
    assert len(originals) == sum(a is None for a in aug) < len(every)
    assert all(aug[i] is None for i in originals.rows)


def test_batch_order_resumes_mid_epoch_and_after_epoch_one():
    order = BatchOrder(n_rows=10, batch_size=3, seed=7)  # 4 micro-batches an epoch, the last one short
    assert order.per_epoch == 4
    stream = order.stream()
    uninterrupted = [next(stream) for _ in range(13)]
    for k in (2, 4, 6, 9):  # mid epoch 1, the boundary, mid epoch 2, mid epoch 3
        epoch, cursor, _ = uninterrupted[k - 1]
        resumed = order.stream(epoch, cursor)
        for want in uninterrupted[k:]:
            got = next(resumed)
            assert got[:2] == want[:2] and got[2].tolist() == want[2].tolist()
    firsts = [order.epoch(e)[0].tolist() for e in range(3)]
    assert firsts[0] != firsts[1] != firsts[2]  # reshuffled every epoch
    assert sorted(np.concatenate(order.epoch(5)).tolist()) == list(range(10))


def test_loss_on_loss_tokens_only_matches_full_logits_and_chunking(data_dir, monkeypatch):
    split = load_split(data_dir, "train")
    model = tiny_gpt2(len(chat_tokenizer())).eval()  # no dropout: the two forwards must see the same model
    batch = Batcher(split, pack_rows(split.lengths, 64), 0, "bool").batch(np.arange(4))
    targets = batch["targets"]
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
    ).logits
    keep = targets != IGNORE_INDEX
    reference = torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum")
    reference.backward()
    want = model.transformer.h[0].attn.c_attn.weight.grad.clone()
    model.zero_grad()
    head = LossHead(model)
    assert head.body is not None
    monkeypatch.setattr(ft_model, "LOGIT_CHUNK", 3 * model.config.vocab_size)  # 3 rows a chunk, recomputed in backward
    loss = head.scores(batch).losses.sum()
    loss.backward()
    assert torch.allclose(loss, reference, atol=1e-4)
    assert torch.allclose(model.transformer.h[0].attn.c_attn.weight.grad, want, atol=1e-5)
    model.zero_grad()
    head.chunk_elements = 10**9  # a GPU with room for the batch's logits: one chunk, nothing recomputed
    whole = head.scores(batch).losses.sum()
    whole.backward()
    assert torch.allclose(whole, reference, atol=1e-4)
    assert torch.allclose(model.transformer.h[0].attn.c_attn.weight.grad, want, atol=1e-5)
    assert ft_model.gpu_logit_chunk(torch.device("cpu")) is None


def test_gradient_accumulation_equals_one_big_batch(data_dir):
    """Micro-batches normalised by the loss tokens of the whole step: the same gradient as one batch."""
    split = load_split(data_dir, "train")
    batcher = Batcher(split, pack_rows(split.lengths, 64), 0, "bool")
    model = tiny_gpt2(len(chat_tokenizer())).eval()
    head = LossHead(model)
    ctx = ft_model.autocast(FinetuneConfig(), torch.device("cpu"))

    def grads(micro: list) -> torch.Tensor:
        model.zero_grad()
        accumulate_gradients(head.token_losses, micro, torch.device("cpu"), ctx)
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    one = grads([batcher.batch(np.arange(6))])
    three = grads([batcher.batch(np.arange(i, i + 2)) for i in (0, 2, 4)])
    uneven = grads([batcher.batch(np.arange(0, 1)), batcher.batch(np.arange(1, 6))])
    assert torch.allclose(one, three, atol=1e-6) and torch.allclose(one, uneven, atol=1e-6)


def test_schedule_warms_up_then_decays_to_the_floor():
    cfg = FinetuneConfig(warmup_steps=4, min_lr_ratio=0.1)
    factors = [lr_factor(s, 20, cfg) for s in range(20)]
    assert factors[0] < factors[3] < factors[4] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(0.1) and all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))


def test_config_rejects_typos_bad_shapes_and_bad_grids():
    with pytest.raises(ValueError):
        FinetuneConfig(learning_rate=1e-3)
    with pytest.raises(ValueError):
        FinetuneConfig(n_embd=65, n_head=2)
    with pytest.raises(ValueError, match="choose one"):
        FinetuneConfig(lora={"r": 4}, train_top_layers=1)
    with pytest.raises(ValueError, match="unknown setting"):
        FinetuneConfig(grid={"learning_rate": [1e-3]})
    with pytest.raises(ValueError):
        FinetuneConfig(grid={"batch_size": [4, 0]})  # every combination is validated up front
    assert pick_device("cpu").type == "cpu"
