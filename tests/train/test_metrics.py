"""Retrieval metrics counted in chunks, against a plain argsort reference."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from vlp_sweep.metric_names import RETRIEVAL_METRICS
from vlp_sweep.train import metrics
from vlp_sweep.train.metrics import RetrievalResult, ranks_to_metrics, retrieval_metrics

# ---------------------------------------------------------------------------------------------
# Reference: sort each query's scores and find where its positive lands.
# ---------------------------------------------------------------------------------------------


def ref_ranks(sim: np.ndarray, ties: str = "optimistic") -> np.ndarray:
    """Rows are queries, the positive of row i is column i. Ties: first (optimistic) or last position."""
    ranks = []
    for i in range(len(sim)):
        order = np.argsort(-sim[i], kind="stable")
        tied = np.flatnonzero(sim[i][order] == sim[i, i])  # positions of every score equal to the positive
        ranks.append((tied[0] if ties == "optimistic" else tied[-1]) + 1)
    return np.array(ranks, dtype=np.int64)


def ref_group_ranks(sim: np.ndarray, groups: list[int], ties: str = "optimistic") -> np.ndarray:
    """1 + number of incorrect candidates above (or tied with, pessimistic) the best correct one."""
    ranks = []
    for i in range(len(sim)):
        correct = [j for j in range(len(sim)) if groups[j] == groups[i]]
        best = max(sim[i, j] for j in correct)
        wrong = [sim[i, j] for j in range(len(sim)) if groups[j] != groups[i]]
        beaten = [s for s in wrong if (s > best if ties == "optimistic" else s >= best)]
        ranks.append(1 + len(beaten))
    return np.array(ranks, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def tie_free_matrix(n: int, seed: int) -> np.ndarray:
    """``[n, n]`` float32 of distinct integers (exact in float32 below 2**24); positives tend to be high."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n)) + 2.5 * np.eye(n)
    return np.argsort(np.argsort(x, axis=None)).reshape(n, n).astype(np.float32)


def exact_embeddings(n: int, seed: int, e: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Multiples of 1/8 in [-1, 1]: every dot product is exact in float32 (and fp16/bf16 inputs)."""
    rng = np.random.default_rng(seed)
    text = rng.integers(-8, 9, (n, e)) / 8
    video = np.clip(text + rng.integers(-3, 4, (n, e)) / 8, -1, 1)
    return text.astype(np.float32), video.astype(np.float32)


def tied_matrix(n: int, seed: int) -> np.ndarray:
    """Scores from only five values: lots of ties, including with the positive."""
    return np.random.default_rng(seed).integers(0, 5, (n, n)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

@functools.cache
def tie_free_case(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tie-free matrix and its reference t2v / v2t ranks (shared by the parametrised tests)."""
    sim = tie_free_matrix(n, seed=n)
    return sim, ref_ranks(sim), ref_ranks(sim.T)


@functools.cache
def exact_case(ties: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact embeddings (many ties), their float64 scores and the reference ranks."""
    text, video = exact_embeddings(1000, seed=2)
    sim = text.astype(np.float64) @ video.T.astype(np.float64)
    return text, video, sim, ref_ranks(sim, ties), ref_ranks(sim.T, ties)


SIZES_AND_CHUNKS = [(1, 8192), (2, 1), (7, 3), (300, 64), (300, 7), (1000, 999), (2000, 333), (2000, 8192)]


@pytest.mark.parametrize(("n", "chunk"), SIZES_AND_CHUNKS)
@pytest.mark.parametrize("ties", ["optimistic", "pessimistic"])
def test_matrix_matches_argsort_reference(n: int, chunk: int, ties: str) -> None:
    sim, t2v, v2t = tie_free_case(n)
    res = retrieval_metrics(torch.from_numpy(sim), chunk=chunk, ties=ties)
    np.testing.assert_array_equal(res.t2v_ranks, t2v)
    np.testing.assert_array_equal(res.v2t_ranks, v2t)
    assert res.t2v_ranks.dtype == np.int64 and res.v2t_ranks.dtype == np.int64
    assert res.metrics == ranks_to_metrics(t2v, v2t)


def test_inputs_are_left_unchanged() -> None:
    sim = tie_free_matrix(50, seed=13)
    tensor = torch.from_numpy(sim.copy())
    text, video = (torch.from_numpy(x) for x in exact_embeddings(50, seed=14))
    sim_before = sim.copy()
    tensors_before = [tensor.clone(), text.clone(), video.clone()]
    for ties in ("optimistic", "pessimistic"):
        for groups in (None, np.arange(50) // 2):
            retrieval_metrics(sim, groups=groups, chunk=16, ties=ties)
            retrieval_metrics(tensor, groups=groups, chunk=16, ties=ties)
            retrieval_metrics(text=text, video=video, groups=groups, chunk=16, ties=ties)
    np.testing.assert_array_equal(sim, sim_before)
    for now, then in zip((tensor, text, video), tensors_before):
        assert torch.equal(now, then)


def test_numpy_matrix_equals_tensor_matrix() -> None:
    sim = tie_free_matrix(257, seed=1)
    a, b = retrieval_metrics(sim, chunk=50), retrieval_metrics(torch.from_numpy(sim), chunk=50)
    np.testing.assert_array_equal(a.t2v_ranks, b.t2v_ranks)
    np.testing.assert_array_equal(a.v2t_ranks, b.v2t_ranks)
    np.testing.assert_array_equal(retrieval_metrics(np.asfortranarray(sim), chunk=50).v2t_ranks, a.v2t_ranks)


@pytest.mark.parametrize("chunk", [7, 100, 333, 4096])
@pytest.mark.parametrize("ties", ["optimistic", "pessimistic"])
def test_embeddings_path_matches_reference_and_matrix_path(chunk: int, ties: str) -> None:
    text, video, sim, t2v, v2t = exact_case(ties)
    from_emb = retrieval_metrics(text=torch.from_numpy(text), video=torch.from_numpy(video), chunk=chunk,
                                 ties=ties)
    from_mat = retrieval_metrics(sim, chunk=chunk, ties=ties)
    np.testing.assert_array_equal(from_emb.t2v_ranks, t2v)
    np.testing.assert_array_equal(from_emb.v2t_ranks, v2t)
    np.testing.assert_array_equal(from_emb.t2v_ranks, from_mat.t2v_ranks)
    np.testing.assert_array_equal(from_emb.v2t_ranks, from_mat.v2t_ranks)
    assert from_emb.metrics == from_mat.metrics


@pytest.mark.parametrize("ties", ["optimistic", "pessimistic"])
@pytest.mark.parametrize("chunk", [4, 64])
def test_ties_against_reference(ties: str, chunk: int) -> None:
    sim = tied_matrix(150, seed=3)
    res = retrieval_metrics(sim, chunk=chunk, ties=ties)
    np.testing.assert_array_equal(res.t2v_ranks, ref_ranks(sim, ties))
    np.testing.assert_array_equal(res.v2t_ranks, ref_ranks(sim.T, ties))


def test_ties_by_hand() -> None:
    sim = np.array([[0.5, 0.5, 0.1],    # text 0: one other ties with its positive
                    [0.9, 0.2, 0.2],    # text 1: one above, one tie
                    [0.3, 0.3, 0.3]],   # text 2: everything ties
                   dtype=np.float32)
    opt = retrieval_metrics(sim, ties="optimistic")
    pes = retrieval_metrics(sim, ties="pessimistic")
    np.testing.assert_array_equal(opt.t2v_ranks, [1, 2, 1])
    np.testing.assert_array_equal(pes.t2v_ranks, [2, 3, 3])
    # Columns are the video queries: video 0 -> [0.5, 0.9, 0.3], video 1 -> [0.5, 0.2, 0.3],
    # video 2 -> [0.1, 0.2, 0.3]; no ties with a positive there.
    np.testing.assert_array_equal(opt.v2t_ranks, [2, 3, 1])
    np.testing.assert_array_equal(pes.v2t_ranks, [2, 3, 1])


def test_groups_by_hand() -> None:
    # Texts 0 and 1 are the same caption; videos 0 and 1 both match it.
    sim = np.array([[0.1, 0.8, 0.5, 0.2],
                    [0.7, 0.3, 0.9, 0.1],
                    [0.6, 0.4, 0.5, 0.6],
                    [0.0, 0.0, 0.3, 0.9]], dtype=np.float32)
    groups = np.array([4, 4, 7, 9])
    opt = retrieval_metrics(sim, groups=groups)
    pes = retrieval_metrics(sim, groups=groups, ties="pessimistic")
    # t2v: row 0 best correct 0.8 (video 1) beats 0.5, 0.2 -> 1; row 1 best correct 0.7 < 0.9 -> 2;
    # row 2 positive 0.5 < 0.6, 0.6 -> 3; row 3 -> 1. No ties with a best correct score here.
    np.testing.assert_array_equal(opt.t2v_ranks, [1, 2, 3, 1])
    np.testing.assert_array_equal(pes.t2v_ranks, [1, 2, 3, 1])
    # v2t (columns): video 0 [0.1, 0.7, 0.6, 0.0] best correct 0.7 -> 1; video 1 [0.8, 0.3, 0.4, 0.0]
    # -> 1; video 2 [0.5, 0.9, 0.5, 0.3]: 0.9 above and a 0.5 tie -> opt 2, pes 3; video 3 -> 1.
    np.testing.assert_array_equal(opt.v2t_ranks, [1, 1, 2, 1])
    np.testing.assert_array_equal(pes.v2t_ranks, [1, 1, 3, 1])
    # Without groups, text 0's own video (0.1) is last.
    assert retrieval_metrics(sim).t2v_ranks[0] == 4


@pytest.mark.parametrize("ties", ["optimistic", "pessimistic"])
@pytest.mark.parametrize("chunk", [5, 128])
def test_groups_against_reference(ties: str, chunk: int) -> None:
    rng = np.random.default_rng(4)
    groups = rng.integers(0, 40, 120).tolist()
    sim = tied_matrix(120, seed=5)
    res = retrieval_metrics(torch.from_numpy(sim), groups=torch.tensor(groups), chunk=chunk, ties=ties)
    np.testing.assert_array_equal(res.t2v_ranks, ref_group_ranks(sim, groups, ties))
    np.testing.assert_array_equal(res.v2t_ranks, ref_group_ranks(sim.T, groups, ties))
    text, video = exact_embeddings(120, seed=6)
    res = retrieval_metrics(text=text, video=video, groups=groups, chunk=chunk, ties=ties)
    sim = text.astype(np.float64) @ video.T.astype(np.float64)
    np.testing.assert_array_equal(res.t2v_ranks, ref_group_ranks(sim, groups, ties))
    np.testing.assert_array_equal(res.v2t_ranks, ref_group_ranks(sim.T, groups, ties))


def test_unique_groups_equal_no_groups() -> None:
    sim = tied_matrix(60, seed=7)
    for ties in ("optimistic", "pessimistic"):
        a = retrieval_metrics(sim, groups=np.arange(60), chunk=16, ties=ties)
        b = retrieval_metrics(sim, chunk=16, ties=ties)
        np.testing.assert_array_equal(a.t2v_ranks, b.t2v_ranks)
        np.testing.assert_array_equal(a.v2t_ranks, b.v2t_ranks)


def test_metrics_for_even_n() -> None:
    m = ranks_to_metrics(np.array([1, 2, 7, 12]), np.array([3, 1, 1, 40]))
    assert list(m) == list(RETRIEVAL_METRICS)
    assert all(type(v) is float for v in m.values())
    assert m["t2v_R1"] == 25.0 and m["t2v_R5"] == 50.0 and m["t2v_R10"] == 75.0
    assert m["t2v_MedR"] == 4.5 and m["t2v_MeanR"] == 5.5
    assert m["v2t_R1"] == 50.0 and m["v2t_R5"] == 75.0 and m["v2t_R10"] == 75.0
    assert m["v2t_MedR"] == 2.0 and m["v2t_MeanR"] == 11.25
    assert m["mean_R1"] == 37.5 and m["mean_R5"] == 62.5 and m["mean_R10"] == 75.0
    assert m["rsum"] == 25 + 50 + 75 + 50 + 75 + 75


def test_metrics_through_retrieval_for_even_n() -> None:
    # Text i's positive is placed so that its rank is exactly wanted[i].
    wanted = [1, 2, 4, 3]
    sim = np.zeros((4, 4), dtype=np.float32)
    for i, r in enumerate(wanted):
        others = [j for j in range(4) if j != i]
        sim[i, others[:r - 1]] = 2.0  # r - 1 candidates above the positive
        sim[i, i] = 1.0
    res = retrieval_metrics(sim, chunk=3)
    np.testing.assert_array_equal(res.t2v_ranks, wanted)
    assert res.metrics["t2v_MedR"] == 2.5 and res.metrics["t2v_MeanR"] == 2.5
    assert res.metrics["t2v_R1"] == 25.0 and res.metrics["t2v_R5"] == 100.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs(dtype: torch.dtype) -> None:
    text, video = exact_embeddings(200, seed=8)  # exactly representable in both formats
    full = retrieval_metrics(text=text, video=video, chunk=64)
    t, v = torch.from_numpy(text).to(dtype), torch.from_numpy(video).to(dtype)
    low = retrieval_metrics(text=t, video=v, chunk=64)
    np.testing.assert_array_equal(low.t2v_ranks, full.t2v_ranks)
    sim = torch.from_numpy(tied_matrix(100, seed=9))
    np.testing.assert_array_equal(retrieval_metrics(sim.to(dtype), chunk=30).v2t_ranks,
                                  retrieval_metrics(sim, chunk=30).v2t_ranks)


def test_autocast_does_not_change_ranks() -> None:
    text, video = torch.randn(300, 24), torch.randn(300, 24)
    plain = retrieval_metrics(text=text, video=video, chunk=64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = retrieval_metrics(text=text, video=video, chunk=64)
    np.testing.assert_array_equal(mixed.t2v_ranks, plain.t2v_ranks)


def test_nan_scores_rank_last() -> None:
    text, video = exact_embeddings(10, seed=10)
    text[3] = np.nan
    res = retrieval_metrics(text=text, video=video)
    assert res.t2v_ranks[3] == 10 and res.v2t_ranks[3] == 10
    everything_nan = retrieval_metrics(np.full((6, 6), np.nan, dtype=np.float32))
    assert everything_nan.metrics["t2v_R1"] == 0.0 and everything_nan.metrics["v2t_MedR"] == 6.0


def test_result_type() -> None:
    res = retrieval_metrics(tie_free_matrix(20, seed=11))
    assert isinstance(res, RetrievalResult)
    assert list(res.metrics) == list(RETRIEVAL_METRICS)
    assert res.t2v_ranks.shape == (20,) and res.t2v_ranks.min() >= 1 and res.t2v_ranks.max() <= 20


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "either similarity"),
    ({"similarity": np.zeros((3, 3)), "text": np.zeros((3, 2))}, "not both"),
    ({"text": np.zeros((3, 2))}, "either similarity"),
    ({"similarity": np.zeros((3, 4))}, "square"),
    ({"text": np.zeros((3, 2)), "video": np.zeros((4, 2))}, r"\[N, E\]"),
    ({"similarity": np.zeros((3, 3)), "groups": [1, 2]}, "groups"),
    ({"similarity": np.zeros((3, 3)), "chunk": 0}, "chunk"),
    ({"similarity": np.zeros((3, 3)), "ties": "random"}, "ties"),
])
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(**kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_matches_cpu(dtype: torch.dtype) -> None:
    text, video = exact_embeddings(3000, seed=12)
    cpu = retrieval_metrics(text=text, video=video, groups=np.arange(3000) // 3, chunk=1000)
    t, v = (torch.from_numpy(x).cuda().to(dtype) for x in (text, video))
    gpu = retrieval_metrics(text=t, video=v, groups=torch.arange(3000, device="cuda") // 3, chunk=1000)
    np.testing.assert_array_equal(gpu.t2v_ranks, cpu.t2v_ranks)
    np.testing.assert_array_equal(gpu.v2t_ranks, cpu.v2t_ranks)



@pytest.mark.parametrize("ties", ["optimistic", "pessimistic"])
def test_gathered_groups_equal_the_mask_path_with_nans_ties_and_large_groups(ties: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Many duplicate groups (sizes 1 to 30), scores from five values (ties with the best correct one), NaNs.
    rng = np.random.default_rng(9)
    groups = np.minimum(rng.geometric(0.15, 200), 60)
    groups[:30] = 999  # one large group
    sim = tied_matrix(200, seed=10)
    sim[rng.random(sim.shape) < 0.02] = np.nan
    gathered = retrieval_metrics(sim, groups=groups, chunk=17, ties=ties)
    monkeypatch.setattr(metrics, "MAX_GATHERED_MEMBERS", 0)  # every group through the [c, N] mask
    masked = retrieval_metrics(sim, groups=groups, chunk=17, ties=ties)
    np.testing.assert_array_equal(gathered.t2v_ranks, masked.t2v_ranks)
    np.testing.assert_array_equal(gathered.v2t_ranks, masked.v2t_ranks)
    clean = np.nan_to_num(sim, nan=-1.0)  # and both equal the reference where no NaN is involved
    np.testing.assert_array_equal(retrieval_metrics(clean, groups=groups, chunk=17, ties=ties).t2v_ranks,
                                  ref_group_ranks(clean, groups.tolist(), ties))


def test_a_block_never_exceeds_the_memory_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    text, video = exact_embeddings(500, seed=11)
    groups = np.arange(500) // 3
    want = retrieval_metrics(text=text, video=video, groups=groups, ties="pessimistic")
    assert metrics.block_queries(100_000, 8192) * 100_000 * 4 <= metrics.MAX_BLOCK_BYTES <= 2**30
    monkeypatch.setattr(metrics, "MAX_BLOCK_BYTES", 40 * 500 * 4)  # 40 queries' scores
    assert metrics.block_queries(500, 8192) == 40
    got = retrieval_metrics(text=text, video=video, groups=groups, ties="pessimistic")
    np.testing.assert_array_equal(got.t2v_ranks, want.t2v_ranks)
    np.testing.assert_array_equal(got.v2t_ranks, want.v2t_ranks)
