"""Pure helpers of the benchmarks (the benchmarks themselves run outside the suite)."""

from __future__ import annotations

from bench.loadgen import Outcome, p99_by_window


def test_p99_by_window_groups_requests_by_when_they_were_due() -> None:
    # 100 requests in each of three 10 s windows; the second window has a burst of 2 slow ones.
    out = Outcome()
    for w in range(3):
        for k in range(100):
            out.sent_at_s.append(w * 10 + k * 0.1)
            out.latency_ms.append(500.0 if (w == 1 and k >= 98) else 10.0 + k * 0.01)
    got = p99_by_window(out, 10.0)
    assert len(got) == 3 and got[1] == 500.0 and got[0] == got[2] == 11.0  # nearest-rank p99 of 10.00..10.99, to 0.1 ms
    assert p99_by_window(Outcome()) == []


def test_computed_keys_never_repeat_and_traffic_is_skewed() -> None:
    from collections import Counter

    from bench.serve import KeyPool, all_ids, zipf_keys

    users = all_ids("movielens", "user", 943)
    assert users[0] == "1" and users[-1] == "943" and all_ids("synthetic", "item", 3) == ["i0", "i1", "i2"]
    pool = KeyPool(users, seed=1)
    warm, phase1, phase2 = pool.take(100), pool.take(3000), pool.take(6000)
    assert len(set(warm) | set(phase1) | set(phase2)) == 9100  # no key repeats across the run's phases
    assert len({u for u, _ in phase1}) > 900 and len({n for _, n in phase1}) == 91
    counts = Counter(u for u, _ in zipf_keys(users, 10_000, seed=2))
    top = counts.most_common(10)
    assert sum(n for _, n in top) > 0.25 * 10_000  # a few users make much of the traffic
    assert zipf_keys(users, 50, seed=3) != zipf_keys(users, 50, seed=4)  # each phase draws its own


def test_hit_ratio_from_the_metrics_exposition() -> None:
    from bench.serve import hit_ratio, parse_cache_lookups

    before = parse_cache_lookups('# HELP x\ngraphrec_result_cache_lookups_total{operation="recommendations",result="hit"} 10.0\n'
                                 'graphrec_result_cache_lookups_total{operation="recommendations",result="miss"} 5.0\n')
    after = parse_cache_lookups('graphrec_result_cache_lookups_total{operation="recommendations",result="hit"} 40.0\n'
                                'graphrec_result_cache_lookups_total{operation="recommendations",result="miss"} 15.0\n'
                                'graphrec_result_cache_lookups_total{operation="similarItems",result="miss"} 3.0\n')
    assert hit_ratio(before, after, "recommendations") == (30, 10, 0.75)
    assert hit_ratio(before, after, "similarItems") == (0, 3, 0.0)
    assert hit_ratio(after, after, "recommendations") == (0, 0, None)


def test_the_scaling_doc_table_is_generated_from_the_summary(tmp_path) -> None:
    from bench import docs

    doc = tmp_path / "scaling.md"
    doc.write_text(f"# Title\n\nprose\n{docs.BEGIN}\nold table\n{docs.END}\n\nmore prose\n")
    summary = {"finished_at": "2026-12-03 18:00 UTC", "machine": {"cpus": 2, "cpu": "Test CPU"},
               "benchmarks": {"engine": {"exit_code": 0, "headline": [["engine home feed p99 ms", 12.5, "< 30"]]},
                              "serve": {"exit_code": 1, "report": "bench/reports/serve.json"}}}
    assert docs.update(doc, summary)
    text = doc.read_text()
    assert "old table" not in text and text.startswith("# Title\n\nprose\n") and text.endswith("more prose\n")
    assert "| engine | engine home feed p99 ms | 12.5 | < 30 |" in text
    assert "| serve | exit code 1 |" in text and "2 cores (Test CPU)" in text
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    assert not docs.update(bare, summary) and bare.read_text() == "no markers\n"


def test_soak_phases_leave_out_the_restart_and_keep_errors_by_message() -> None:
    from bench.soak import CpuSample, Done, _parse, buckets, latency_phases, legit_errors

    # 10 req/s for 300 s: 20 ms answers, but 900 ms ones from the stop (150 s) to 60 s after the
    # first whole answer (170 s); a few 429s in the hostile phase.
    done = [Done("recommendations", i / 10, i / 10 + (0.9 if 150 <= i / 10 < 230 else 0.02), 200, True)
            for i in range(3000)]
    done += [Done("recommendations", 120.0 + k, 120.01 + k, 429, False,
                  error="RATE_LIMITED: too many requests") for k in range(3)]
    cpu = [CpuSample(float(t), t * 1.0, t * 0.25, 1, t * 0.1, t * 0.05) for t in range(300)]
    ph = latency_phases(done, 300.0, 10.0, {"stop": 150.0}, (150.0, 170.0), 60.0, cpu)
    assert ph["excluded_s"] == [150.0, 230.0]
    assert ph["quiet"]["p99_ms"] == ph["hostile_before_restart"]["p99_ms"] == ph["hostile_after_recovery"]["p99_ms"]
    assert ph["hostile_whole"]["p99_ms"] == 900.0  # nothing left out there
    assert ph["hostile_before_restart"]["errors"] == 3 and ph["quiet"]["errors"] == 0
    assert ph["quiet"]["cores"] == {"machine": 1.0, "api": 0.25, "neo4j": 0.1, "soak": 0.05, "others": 0.6}
    errs = legit_errors(done, {"all": (0.0, 300.0)})
    assert errs == {"all": {"429": {"RATE_LIMITED: too many requests": 3}}}
    b = buckets(done, cpu)
    assert b["150"]["p99_ms"] == 900.0 and b["0"]["p99_ms"] == 20.0 and len(b) == 10
    ok, _, _, _, err = _parse("recommendations", 429,
                              b'{"data":null,"errors":[{"message":"rate limit exceeded","extensions":{"code":"RATE_LIMITED"}}]}')
    assert not ok and err == "RATE_LIMITED: rate limit exceeded"
    assert _parse("similarItems", 0, b"no answer within 10 s")[4] == "no answer within 10 s"


def test_served_quality_scores_the_api_as_the_offline_tables_and_loads_only_the_history(tmp_path) -> None:
    import csv

    import numpy as np

    from bench.served_quality import scored, write_csvs
    from graphrec.core.snapshot import KIND_CODE, ItemContent, Snapshot

    snap = Snapshot(["u1", "u2"], ["i1", "i2", "i3"], np.array([0, 0, 1]), np.array([0, 1, 2]),
                    np.array([1.0, 2.0, 3.0]), np.array([KIND_CODE["RATED"], KIND_CODE["SKIPPED"], KIND_CODE["RATED"]],
                                                        dtype=np.int8), np.array([4.0, 0.0, 5.0], dtype=np.float32),
                    [ItemContent(title=f"t{k}", categories=["Drama", "War"] if k == 0 else []) for k in range(3)])
    # u1 holds out i1 and i2; its list hits i2 at rank 1 and i1 at rank 150 (beyond 100); u2 got
    # no answer (an error): it scores 0, it is not left out.
    lists = {0: ["i2", "x"] + [f"y{k}" for k in range(148)] + ["i1"]}
    got = scored(lists, {0: {"i1", "i2"}, 1: {"i3"}}, snap)
    disc = 1.0 / np.log2(np.arange(2, 4))
    assert got["users"] == 2
    assert got["ndcg@10"] == (disc[0] / disc.sum()) / 2
    assert got["recall@100"] == 0.5 / 2
    paths = write_csvs(snap, np.array([True, True, False]), tmp_path)
    rows = {k: list(csv.DictReader(open(p))) for k, p in paths.items()}
    assert [r["id"] for r in rows["users"]] == ["u1"]  # u2's only interaction is held out
    assert [r["id"] for r in rows["items"]] == ["i1", "i2", "i3"] and rows["items"][0]["categories"] == "Drama|War"
    assert [(r["user_id"], r["item_id"], r["type"]) for r in rows["interactions"]] == [("u1", "i1", "RATE"),
                                                                                        ("u1", "i2", "SKIP")]
