"""Curriculum, task mixtures and distillation on tiny local data and models: orders follow the chosen measure and
pacing, survive a SIGKILL, mixtures sample tasks by weight, distillation pulls towards the teacher."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from ft_builders import FAST, chat_tokenizer, kill_at_step, make_data_dir, quiet, save_pretrained_gpt2, tiny_gpt2
from ft_builders import run_fast as run

from finetune import FinetuneConfig, train
from finetune import curriculum as ft_curriculum
from finetune.config import CurriculumSettings, MixtureSettings, TaskSettings
from finetune.data import Batcher, load_split, loss_token_counts, pack_rows
from finetune.distill import Distiller, distill_losses
from finetune.model import LossHead
from finetune.sampling import BatchOrder, Pacing, difficulty_rank, mixture_probs, plan_rows
from flows.report import model_section


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("mixed"))


def warm_batches(order: BatchOrder) -> list[np.ndarray]:
    return order.epoch(0)


# ---- curriculum -------------------------------------------------------------------------------------------------


def test_length_curriculum_opens_the_pool_from_short_to_long_with_linear_pacing(data):
    split = load_split(data, "train")
    rank = difficulty_rank(split.lengths.astype(float), "easy_first")
    plan = plan_rows(split, 64, packing=False, rank=rank)
    pacing = Pacing(batches=200, kind="linear", start=0.2, steps=4)
    order = BatchOrder(len(plan.rows), 4, seed=3, task=plan.task, level=plan.level, pacing=pacing)
    warm = warm_batches(order)
    assert len(warm) == 200
    n = len(split)
    for k, batch in enumerate(warm):
        examples = np.concatenate([plan.rows[r] for r in batch])
        assert rank[examples].max() < math.ceil(pacing.share(k) * n)  # only the rows open at k
    first = split.lengths[np.concatenate([plan.rows[r] for b in warm[:20] for r in b])]
    last = split.lengths[np.concatenate([plan.rows[r] for b in warm[-20:] for r in b])]
    assert first.max() <= np.quantile(split.lengths, 0.35) and last.mean() > first.mean()
    after = np.concatenate(order.epoch(1))
    assert sorted(after.tolist()) == list(range(len(plan.rows)))  # then plain shuffled epochs over everything

    hard = difficulty_rank(split.lengths.astype(float), "hard_first")
    plan = plan_rows(split, 64, packing=False, rank=hard)
    order = BatchOrder(len(plan.rows), 4, seed=3, task=plan.task, level=plan.level, pacing=pacing)
    opening = split.lengths[np.concatenate([plan.rows[r] for r in order.epoch(0)[0]])]
    assert opening.min() >= np.quantile(split.lengths, 0.75)  # hard first: the longest open first


def test_step_pacing_opens_the_pool_in_equal_jumps():
    pacing = Pacing(batches=100, kind="step", start=0.25, steps=3)
    shares = [pacing.share(k) for k in range(100)]
    assert sorted(set(shares)) == [0.25, 0.5, 0.75] and shares[0] == 0.25 and shares[-1] == 0.75
    assert shares == sorted(shares)
    level = np.arange(40) / 40
    order = BatchOrder(40, 4, seed=0, level=level, pacing=pacing)
    seen_per_stage = {}
    for k, batch in enumerate(order.epoch(0)):
        seen_per_stage.setdefault(shares[k], set()).update(batch.tolist())
    for share, seen in seen_per_stage.items():
        assert max(seen) < share * 40 and max(seen) >= share * 40 - 3  # every stage reaches to its new edge


def test_curriculum_by_a_numeric_column_and_packed_rows_follow_it(data):
    split = load_split(data, "train")
    score = ft_curriculum.example_difficulty(
        CurriculumSettings(by="column", column="score"),
        data,
        split,
        tokenizer=None,
        block_size=64,
        device=torch.device("cpu"),
        bf16=False,
        log=quiet,
    )
    assert np.allclose(score, np.asarray(split.dataset["score"])[split.rows])
    plan = plan_rows(split, 64, packing=True, rank=difficulty_rank(score, "easy_first"))
    assert sorted(np.concatenate(plan.rows).tolist()) == list(range(len(split)))  # every example, once
    by_level = np.argsort(plan.level)
    mean_score = np.asarray([score[plan.rows[r]].mean() for r in by_level])
    fifth = max(1, len(mean_score) // 5)
    assert mean_score[:fifth].max() < mean_score[-fifth:].min()  # packed within bins: easy rows hold easy examples
    with pytest.raises(ValueError, match="not in shards/train"):
        ft_curriculum.column_values(split, "nope")
    with pytest.raises(ValueError, match="not numbers"):
        ft_curriculum.column_values(split, "label")


def test_curriculum_by_reference_loss_is_computed_once_and_cached_beside_the_shards(data, tmp_path, monkeypatch):
    reference = save_pretrained_gpt2(chat_tokenizer(), tmp_path / "reference", seed=5)
    split = load_split(data, "train")
    settings = CurriculumSettings(by="loss", reference=str(reference))
    args = {"tokenizer": chat_tokenizer(), "block_size": 64, "device": torch.device("cpu"), "bf16": False, "log": quiet}
    rng_before = torch.get_rng_state()
    losses = ft_curriculum.example_difficulty(settings, data, split, **args)
    assert torch.equal(torch.get_rng_state(), rng_before)  # scoring leaves the run's RNG as it was
    cached = list((data / "curriculum").glob("loss-*.npy"))
    assert len(cached) == 1 and len(np.load(cached[0])) == len(split)

    # the same as each example's mean loss computed alone with the reference
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(reference).eval()
    head = LossHead(model)
    for i in (0, 7, len(split) - 1):
        batcher = Batcher(split, [np.asarray([i])], 0, "bool")
        with torch.no_grad():
            alone = head.scores(batcher.batch(np.arange(1))).losses.mean().item()
        assert losses[i] == pytest.approx(alone, rel=1e-4)

    def no_model(*_, **__):
        raise AssertionError("the reference losses should come from the cache")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_model)
    assert np.array_equal(ft_curriculum.example_difficulty(settings, data, split, **args), losses)
    originals = load_split(data, "train", use_augmented=False)  # another selection reads the same cache
    assert np.array_equal(ft_curriculum.example_difficulty(settings, data, originals, **args), losses[originals.rows])


def test_curriculum_needs_what_its_measure_reads():
    with pytest.raises(ValueError, match="needs `column`"):
        CurriculumSettings(by="column")
    with pytest.raises(ValueError, match="needs `reference`"):
        CurriculumSettings(by="loss")


def test_curriculum_and_mixture_orders_resume_mid_warm_phase_and_after_it():
    pacing = Pacing(batches=7, kind="linear", start=0.3, steps=4)
    task = np.asarray([0] * 12 + [1] * 8)
    order = BatchOrder(
        20, 3, seed=11, task=task, probs=np.asarray([0.4, 0.6]), level=np.arange(20) % 12 / 12, pacing=pacing
    )
    stream = order.stream()
    uninterrupted = [next(stream) for _ in range(30)]
    assert [e for e, _, _ in uninterrupted[:7]] == [0] * 7 and uninterrupted[7][0] == 1  # warm phase = epoch 0
    for k in (3, 7, 10, 20):
        epoch, cursor, _ = uninterrupted[k - 1]
        resumed = order.stream(epoch, cursor)
        for want in uninterrupted[k:]:
            got = next(resumed)
            assert got[:2] == want[:2] and got[2].tolist() == want[2].tolist()


def test_killed_curriculum_mixture_run_resumes_to_the_same_final_metrics(data, tmp_path):
    """SIGKILL inside the curriculum's warm phase (which lasts 50 of 60 steps), then the same command again."""
    cfg = FinetuneConfig(
        **{
            **FAST,
            "max_steps": 60,
            "batch_size": 2,
            "dropout": 0.1,
            "log_every": 5,
            "generate_n": 0,
            "curriculum": {"by": "length", "pacing": "step", "warm_fraction": 0.84},
            "mixture": {"temperature": 2.0},
        }
    )
    killed = tmp_path / "killed"
    kill_at_step(data, killed, cfg, 45, tmp_path)
    state = json.loads((killed / "checkpoints" / "step-00000040" / "state.json").read_text())["loop"]
    assert state["epoch"] == 0 and state["cursor"] == 40  # in the warm phase
    resumed = train(data, killed, cfg, log=quiet)
    uninterrupted = train(data, tmp_path / "straight", cfg, log=quiet)
    for key in ("base", "final", "best_step", "train_tokens"):
        assert resumed[key] == uninterrupted[key], key
    history = [json.loads((d / "training.json").read_text())["history"] for d in (killed, tmp_path / "straight")]
    assert history[0] == history[1]
    training = json.loads((killed / "training.json").read_text())
    assert "curriculum by length" in training["order"] and "mixture by temperature 2" in training["order"]


def test_a_curriculum_changes_what_is_trained_first(data, tmp_path):
    common = {"max_steps": 10, "eval_every": 0, "generate_n": 0, "packing": False}  # a row = one example
    plain = run(data, tmp_path / "plain", **common)
    easy = run(
        data, tmp_path / "easy", curriculum={"by": "length", "warm_fraction": 1.0, "start_fraction": 0.1}, **common
    )
    assert easy["train_tokens"] < plain["train_tokens"]  # short examples first: fewer loss tokens in as many steps


# ---- tasks and mixtures -----------------------------------------------------------------------------------------


def test_tasks_come_from_the_source_folder_a_label_or_a_mapping(data):
    by_source = load_split(data, "train", tasks=TaskSettings())
    assert by_source.task_names == ("chats", "docs")
    fmt = np.asarray(by_source.dataset["format"])[by_source.rows]
    assert ((by_source.tasks == 0) == (fmt == "chat")).all()
    by_label = load_split(data, "train", tasks=TaskSettings(by="label", map={"where": "questions", "the": "the-docs"}))
    assert set(by_label.task_names) <= {"questions", "the-docs", "a", "my", "our"}
    assert "questions" in by_label.task_names and "the-docs" in by_label.task_names
    with pytest.raises(ValueError, match="no column 'topic'"):
        load_split(data, "train", tasks=TaskSettings(by="column", column="topic"))


def test_mixture_settings_take_weights_or_a_temperature():
    assert MixtureSettings.model_validate({"docs": 1, "chats": 3}).weights == {"docs": 1, "chats": 3}
    assert MixtureSettings.model_validate({"temperature": 2}).temperature == 2
    for bad in ({"weights": {"a": 1}, "temperature": 2}, {"weights": {"a": 0}}, {}):
        with pytest.raises(ValueError):
            MixtureSettings.model_validate(bad)
    assert FinetuneConfig(mixture={"temperature": 3}).tasks == TaskSettings()  # tasks default to the source folder


def test_mixture_probabilities_by_weight_and_temperature():
    names, tokens = ("a", "b"), np.asarray([900, 100])
    assert mixture_probs(MixtureSettings(weights={"a": 1, "b": 3}), names, tokens).tolist() == [0.25, 0.75]
    assert mixture_probs(MixtureSettings(temperature=1), names, tokens) == pytest.approx([0.9, 0.1])
    assert mixture_probs(MixtureSettings(temperature=2), names, tokens) == pytest.approx([0.75, 0.25])  # 30 : 10
    flat = mixture_probs(MixtureSettings(temperature=1000), names, tokens)
    assert flat == pytest.approx([0.5, 0.5], abs=0.01)
    with pytest.raises(ValueError, match="lacks: \\['c'\\]"):
        mixture_probs(MixtureSettings(weights={"a": 1, "b": 1, "c": 1}), names, tokens)
    with pytest.raises(ValueError, match="no weight to \\['b'\\]"):
        mixture_probs(MixtureSettings(weights={"a": 1}), names, tokens)


def test_mixture_sampling_matches_the_weights_over_many_batches():
    task = np.asarray([0] * 40 + [1] * 10)  # a large task and a small one, weighted against their sizes
    probs = np.asarray([0.3, 0.7])
    order = BatchOrder(len(task), 8, seed=5, task=task, probs=probs)
    stream = order.stream()
    drawn = np.concatenate([next(stream)[2] for _ in range(3000)])
    share = np.bincount(task[drawn], minlength=2) / len(drawn)
    assert share == pytest.approx(probs, abs=0.01)
    # within an epoch a task goes through all its rows before repeating one
    epoch = np.concatenate(order.epoch(4))
    large = epoch[task[epoch] == 0]
    assert len(set(large.tolist())) == min(len(large), 40)
    small = epoch[task[epoch] == 1]
    assert np.bincount(small, minlength=50)[40:].max() - np.bincount(small, minlength=50)[40:].min() <= 1


def test_mixture_run_reports_per_task_loss_and_generation(data, tmp_path):
    metrics = run(data, tmp_path / "m", mixture={"docs": 1, "chats": 3}, max_steps=20)
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    assert training["data"]["tasks"] == ["chats", "docs"] and "chats 0.75" in training["order"]
    for when in ("base", "final"):
        for split in ("validation", "test"):
            m = metrics[when][split]
            assert set(m["by_task"]) == {"chats", "docs"}
            assert m["by_task"]["docs"]["loss"] == pytest.approx(m["by_format"]["text"]["loss"])
            assert m["by_task"]["chats"]["generation"]["n"] == m["generation"]["n"] > 0  # only chats converse
    section = "\n".join(model_section(metrics, {}))
    assert "| validation | task chats |" in section and "| validation, task chats |" in section


# ---- distillation -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teachers(data, tmp_path_factory):
    """A teacher trained on the data first, and an untrained one with the same tokenizer and shape."""
    root = tmp_path_factory.mktemp("teachers")
    train(
        data, root / "trained", FinetuneConfig(**{**FAST, "max_steps": 60, "eval_every": 0, "generate_n": 0}), log=quiet
    )
    random = root / "random"
    train(
        data,
        random,
        FinetuneConfig(**{**FAST, "max_steps": 1, "lr": 1e-9, "eval_every": 0, "generate_n": 0, "seed": 9}),
        log=quiet,
    )
    return root / "trained", random


def test_distillation_loss_is_lower_against_a_matching_teacher_than_a_random_one(data, teachers):
    from transformers import AutoModelForCausalLM

    trained, random = teachers
    split = load_split(data, "validation")
    batch = Batcher(split, pack_rows(split.lengths, 64), 0, "bool").batch(np.arange(4))
    student = LossHead(AutoModelForCausalLM.from_pretrained(trained).eval())  # the teacher's own twin
    tok = chat_tokenizer()
    settings = {"temperature": 2.0, "alpha": 0.5}
    from finetune.config import DistillSettings

    def loss(teacher) -> torch.Tensor:
        distiller = Distiller(
            DistillSettings(teacher=str(teacher), **settings), tok, student.model, 64, torch.device("cpu"), False
        )
        with torch.no_grad():
            return distiller.token_losses(student, batch)

    ce = student.token_losses(batch).detach()
    matching, other = loss(trained), loss(random)
    assert matching == pytest.approx(0.5 * ce, abs=1e-5)  # KL to itself is 0: only the label term is left
    assert other.mean() > matching.mean() + 0.1


def test_distillation_pulls_the_student_towards_its_teacher(data, teachers, tmp_path):
    from transformers import AutoModelForCausalLM

    from finetune.config import DistillSettings

    trained, random = teachers
    common = {"max_steps": 30, "eval_every": 0, "generate_n": 0, "seed": 1}
    run(data, tmp_path / "good", distill={"teacher": str(trained), "alpha": 1.0}, **common)
    run(data, tmp_path / "bad", distill={"teacher": str(random), "alpha": 1.0}, **common)
    split = load_split(data, "validation")
    batch = Batcher(split, pack_rows(split.lengths, 64), 0, "bool").batch(np.arange(len(pack_rows(split.lengths, 64))))
    tok = chat_tokenizer()
    to_trained = Distiller(
        DistillSettings(teacher=str(trained), temperature=1.0, alpha=1.0),
        tok,
        AutoModelForCausalLM.from_pretrained(trained),
        64,
        torch.device("cpu"),
        False,
    )

    def kl(student_dir) -> float:
        with torch.no_grad():
            student = LossHead(AutoModelForCausalLM.from_pretrained(student_dir).eval())
            return to_trained.token_losses(student, batch).mean().item()

    assert kl(tmp_path / "good") < 0.5 * kl(tmp_path / "bad")  # KL(trained teacher || student) per loss token


def test_alpha_zero_is_plain_training(data, teachers, tmp_path):
    _, random = teachers
    common = {"max_steps": 12, "eval_every": 6, "generate_n": 2, "dropout": 0.1}
    plain = run(data, tmp_path / "plain", **common)
    distilled = run(data, tmp_path / "alpha0", distill={"teacher": str(random), "alpha": 0.0}, **common)
    assert distilled["final"] == plain["final"] and distilled["train_tokens"] == plain["train_tokens"]


def test_chunked_distillation_equals_one_chunk_values_and_gradients(monkeypatch):
    torch.manual_seed(0)
    student, teacher = tiny_gpt2(40), tiny_gpt2(40, seed=1)
    hidden = torch.randn(37, 32, requires_grad=True)
    teacher_hidden = torch.randn(37, 32)
    targets = torch.randint(0, 40, (37,))
    args = (student.lm_head, teacher.lm_head, 40, 2.0, 0.3)

    def loss_and_grad():
        hidden.grad = None
        out = distill_losses(hidden, teacher_hidden, targets, args[0], args[1], *args[2:])
        out.sum().backward()
        return out.detach(), hidden.grad.clone()

    whole = loss_and_grad()
    monkeypatch.setattr("finetune.distill.LOGIT_CHUNK", 2 * 40 * 5)  # 5 rows a chunk, recomputed in backward
    chunked = loss_and_grad()
    assert torch.allclose(whole[0], chunked[0], atol=1e-6) and torch.allclose(whole[1], chunked[1], atol=1e-6)


def test_a_teacher_with_another_tokenizer_is_refused(data, tmp_path):
    from tiny_gpt2 import save_tiny_gpt2

    other = save_tiny_gpt2(["completely different words here"], tmp_path / "other")
    with pytest.raises(ValueError, match="teacher and student must share the tokenizer"):
        run(data, tmp_path / "m", distill={"teacher": str(other)})


def test_loss_token_counts_match_the_batches_targets(data):
    split = load_split(data, "train")
    counts = loss_token_counts(split)
    batcher = Batcher(split, [np.asarray([i]) for i in range(len(split))], 0, "bool")
    for i in (0, 5, len(split) - 1):
        assert counts[i] == int((batcher.batch(np.asarray([i]))["targets"] != -100).sum())


def test_max_tokens_trains_until_the_budget(data, tmp_path):
    metrics = run(data, tmp_path / "m", max_tokens=900, max_steps=None, eval_every=0, generate_n=0)
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    per_step_max = 4 * 64
    assert 900 <= metrics["train_tokens"] < 900 + per_step_max and training["steps"] >= 1
