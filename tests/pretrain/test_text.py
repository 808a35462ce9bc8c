"""The text side of Up-A-G: tokenizer, text tower, MLM masking and EDA, on the world's captions."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from intern_arch.text import TOKENIZER_FILE, TextTokenizer, TextTower, TextTowerCfg, train_tokenizer
from intern_data.world import generate
from intern_pretrain.upa_g.eda import EDA, world_synonyms
from intern_pretrain.upa_g.terms import IGNORE_INDEX, MLMHead, mask_tokens


@pytest.fixture(scope="module")
def captions() -> list[str]:
    return [text for sample in generate("world_captions", "train", count=200) for text in sample["text"]]


@pytest.fixture(scope="module")
def tokenizer(captions: list[str]) -> TextTokenizer:
    return train_tokenizer(captions, vocab_size=600)


@pytest.fixture(scope="module")
def tower(tokenizer: TextTokenizer) -> TextTower:
    torch.manual_seed(0)
    return TextTower(
        TextTowerCfg(width=64, layers=2, heads=2, context_length=32, vocab_size=600, embed_dim=48)
    )


def test_tokenizer_round_trips_normalised_text(tokenizer: TextTokenizer, captions: list[str]) -> None:
    assert tokenizer.vocab_size == 600
    texts = [*captions[:20], "  A Photo OF a  Crimson   Gem, unseen-Word 42!  "]
    ids, mask, eot = tokenizer.encode_batch(texts, context_length=77)
    for row, text in enumerate(texts):
        assert tokenizer.decode(ids[row, : eot[row] + 1]) == tokenizer.normalize(text)
    assert tokenizer.normalize(texts[-1]) == "a photo of a crimson gem, unseen-word 42!"


def test_special_tokens_and_padding(tokenizer: TextTokenizer, captions: list[str]) -> None:
    ids, mask, eot = tokenizer.encode_batch(captions[:50], context_length=77)
    rows = torch.arange(len(ids))
    assert ids.dtype == mask.dtype == eot.dtype == torch.long and ids.shape == mask.shape == (50, 77)
    assert (ids[:, 0] == tokenizer.sot_token_id).all()
    assert (ids[rows, eot] == tokenizer.eot_token_id).all()
    assert torch.equal(mask, (torch.arange(77) <= eot[:, None]).long())
    assert (ids[mask == 0] == tokenizer.pad_token_id).all()
    inner = ids[mask.bool()]
    assert (inner == tokenizer.eot_token_id).sum() == 50 and (inner == tokenizer.sot_token_id).sum() == 50
    assert not torch.isin(inner, torch.tensor([tokenizer.pad_token_id, tokenizer.mask_token_id])).any()


def test_truncation_keeps_end_of_text_last(tokenizer: TextTokenizer, captions: list[str]) -> None:
    long_text = " ".join(captions[:10])
    full, _, full_eot = tokenizer.encode_batch([long_text], context_length=512)
    ids, mask, eot = tokenizer.encode_batch([long_text, captions[0]], context_length=12)
    assert full_eot[0] > 11 and eot[0] == 11 and mask[0].all()
    assert ids[0, -1] == tokenizer.eot_token_id
    assert torch.equal(ids[0, :11], full[0, :11])
    assert ids[1, eot[1]] == tokenizer.eot_token_id


def test_save_load_and_corrupt_file(tokenizer: TextTokenizer, captions: list[str], tmp_path: Path) -> None:
    path = tokenizer.save(tmp_path / "run")
    assert path == tmp_path / "run" / TOKENIZER_FILE and sorted(p.name for p in path.parent.iterdir()) == [
        TOKENIZER_FILE
    ]
    loaded = TextTokenizer.load(tmp_path / "run")
    assert loaded.special_ids == tokenizer.special_ids and loaded.vocab_size == tokenizer.vocab_size
    for a, b in zip(loaded.encode_batch(captions, 24), tokenizer.encode_batch(captions, 24), strict=True):
        assert torch.equal(a, b)

    path.write_text('{"version": "1.0", "model": ')
    with pytest.raises(ValueError, match=TOKENIZER_FILE):
        TextTokenizer.load(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        TextTokenizer.load(tmp_path / "missing.json")


def test_tower_shapes_pooling_and_gradients(
    tower: TextTower, tokenizer: TextTokenizer, captions: list[str]
) -> None:
    ids, mask, eot = tokenizer.encode_batch(captions[:6], context_length=32)
    assert (eot < 31).all()
    pooled, states = tower(ids, mask, eot)
    assert pooled.shape == (6, 64) and states.shape == (6, 32, 64)
    assert torch.equal(pooled, states[torch.arange(6), eot])

    after_eot = torch.arange(32) > eot[:, None]
    changed = torch.where(after_eot, torch.randint(4, 600, ids.shape), ids)
    assert not torch.equal(changed, ids)
    with torch.no_grad():
        torch.testing.assert_close(tower(changed, mask, eot)[0], pooled.detach(), rtol=1e-5, atol=1e-5)

    head = MLMHead(64, 600, tied=tower.token_embedding)
    assert head.decoder.weight is tower.token_embedding.weight
    logits = head(states)
    assert logits.shape == (6, 32, 600)
    loss = tower.embed(ids, mask, eot).pow(2).mean() + logits.logsumexp(-1).mean()
    loss.backward()
    assert tower.proj.weight.grad is not None and tower.token_embedding.weight.grad.abs().sum() > 0
    for name, param in tower.encoder.named_parameters():
        assert param.grad is not None, name
    tower.zero_grad()


def test_mlm_masking_statistics(tokenizer: TextTokenizer, captions: list[str]) -> None:
    ids, mask, _ = tokenizer.encode_batch(captions * 10, context_length=32)
    masked, labels = mask_tokens(ids, mask, tokenizer, rng=torch.Generator().manual_seed(0))
    again = mask_tokens(ids, mask, tokenizer, rng=torch.Generator().manual_seed(0))
    assert torch.equal(masked, again[0]) and torch.equal(labels, again[1])

    special = torch.isin(ids, torch.tensor(tokenizer.special_ids))
    real = mask.bool() & ~special
    chosen = labels != IGNORE_INDEX
    assert not (chosen & ~real).any() and torch.equal(masked[~chosen], ids[~chosen])
    assert torch.equal(labels[chosen], ids[chosen])
    assert abs(chosen.sum() / real.sum() - 0.15) < 0.01

    n = chosen.sum()
    to_mask = (masked == tokenizer.mask_token_id) & chosen
    kept = (masked == ids) & chosen
    swapped = chosen & ~to_mask & ~kept
    assert abs(to_mask.sum() / n - 0.8) < 0.02
    # a random token may equal the original, so "kept" slightly exceeds 10%
    assert abs(kept.sum() / n - 0.1) < 0.02 and abs(swapped.sum() / n - 0.1) < 0.02
    assert not torch.isin(masked[swapped], torch.tensor(tokenizer.special_ids)).any()


def test_eda_is_seeded_uses_the_table_and_never_empties(captions: list[str]) -> None:
    eda = EDA(alpha=0.1, operations=("synonym", "swap", "delete", "insert"))
    texts = captions[:100]
    out = [eda(text, random.Random(i)) for i, text in enumerate(texts)]
    assert out == [eda(text, random.Random(i)) for i, text in enumerate(texts)]
    assert sum(a != b for a, b in zip(out, texts, strict=True)) >= 0.9 * len(texts)
    assert all(eda(word, random.Random(i)) for i, word in enumerate(["gem", "a", "two rings"] * 20))

    table = world_synonyms()
    assert table["gem"] == ("gemstone", "crystal") and table["fish"] == ("sea creature",)
    only_synonyms = EDA(table, alpha=0.5, operations=("synonym",))
    text = "a red striped gem and a blue spotted ring"
    for seed in range(20):
        new = only_synonyms(text, random.Random(seed)).split()
        assert new != text.split() and len(new) == len(text.split())
        for old, word in zip(text.split(), new, strict=True):
            assert word == old or word in table[old]

    plain = "a b c"
    assert only_synonyms(plain, random.Random(0)) == plain
