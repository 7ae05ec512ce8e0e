"""bench/singan_quality.py --summarise: issue 17 point 2's bounds on the means over seeds."""

from __future__ import annotations

import json


def _m(std, p0, p99, swd, div, psnr):
    return {"std": std, "p0.5": p0, "p99.5": p99, "swd": swd, "swd_levels": [swd, swd], "diversity": div, "psnr": psnr}


REAL = {"std": 30.0, "p0.5": 10.0, "p99.5": 200.0, "max": 250.0}


def _entry(image, seed, fewgan, peer=None):
    programs = {"fewgan standing": fewgan}
    if peer is not None:
        programs["peer train"] = peer
    return {"image": image, "seed": seed, "real": REAL, "programs": programs}


def test_bounds_are_judged_on_the_means_over_seeds_and_a_later_file_replaces_an_entry(tmp_path, bench_script):
    q = bench_script("singan_quality")
    peer = _m(30.0, 10.0, 200.0, 0.10, 0.70, 28.0)
    first = [
        # a: the two seeds' means are inside every bound though seed 1 alone is outside the std bound
        _entry("a", 0, _m(28.0, 12.0, 195.0, 0.08, 0.72, 27.8), peer),
        _entry("a", 1, _m(38.0, 8.0, 203.0, 0.09, 0.70, 27.6), peer),      # std +26.7 % on its own
        # b: fewgan-only in the first file; the second file's run with the peer replaces it
        _entry("b", 0, _m(30.0, 10.0, 200.0, 0.05, 0.90, 30.0)),
        _entry("c", 0, _m(30.0, 10.0, 200.0, 0.05, 0.90, 30.0)),            # never beside the peer
    ]
    second = [_entry("b", 0, _m(25.0, 21.0, 189.0, 0.12, 0.69, 27.4), peer)]
    files = []
    for k, results in enumerate((first, second)):
        files.append(tmp_path / f"q{k}.json")
        files[-1].write_text(json.dumps({"config": {}, "results": results}))

    merged = q.merge(files)
    assert [(e["image"], e["seed"]) for e in merged] == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]
    assert merged[2]["programs"]["fewgan standing"]["std"] == 25.0
    rows = {r["image"]: r for r in q.bounds(merged)}
    a, b = rows["a"], rows["b"]
    assert a["seeds"] == [0, 1] and a["program"]["std"] == 33.0
    assert all(a["checks"].values())
    # b: std -16.7 % (bound 15 %), p0.5 11 levels off, p99.5 11 off, SWD above the peer's,
    # diversity below it, PSNR 0.6 dB below it: every bound fails
    assert not any(b["checks"].values())
    assert "checks" not in rows["c"] and rows["c"]["seeds"] == []

    out = tmp_path / "summary"
    assert q.main(["--summarise", *map(str, files), "--out", str(out)]) == 0
    table = (out / "bounds.md").read_text().splitlines()
    assert table[2].startswith("| a | 0 1 | 33.0 / 30.0 (30.0) |") and table[2].endswith("yes, yes, yes, yes, yes, yes |")
    assert table[3].count("**no**") == 6
    assert "none with the peer" in table[4]
    assert len(json.loads((out / "quality.json").read_text())["results"]) == 4


def test_variety_separates_layouts_from_brightness_and_contrast(bench_script):
    """bench/singan_quality.py's variety(): one layout at several brightnesses and contrasts has no
    structure variety but jitter; independent layouts of equal brightness have structure and no jitter."""
    import numpy as np

    q = bench_script("singan_quality")
    rng = np.random.default_rng(0)
    layout = rng.normal(size=(1, 16, 16))
    same = np.stack([a * layout + b for a, b in ((1.0, 0.0), (2.0, 5.0), (0.5, -3.0), (1.5, 1.0))])
    v = q.variety(same)
    assert v["structure"] < 1e-9
    assert v["mean_jitter"] > 2.0 and v["std_jitter"] > 0.2
    # pixel diversity counts the jitter as variety, structure does not
    assert same.std(0).mean() > 1.0
    many = rng.normal(size=(64, 1, 16, 16))
    many = (many - many.mean((1, 2, 3), keepdims=True)) / many.std((1, 2, 3), keepdims=True)
    w = q.variety(many)
    assert 0.9 < w["structure"] < 1.05
    assert w["mean_jitter"] < 1e-9 and w["std_jitter"] < 1e-9


def test_the_bounds_table_shows_structure_beside_the_bounds_where_every_seed_has_it(tmp_path, bench_script):
    q = bench_script("singan_quality")
    peer = {**_m(30.0, 10.0, 200.0, 0.10, 0.70, 28.0), "structure": 0.8}
    entries = [_entry("a", 0, {**_m(30.0, 10.0, 200.0, 0.08, 0.72, 28.0), "structure": 0.7}, peer),
               _entry("a", 1, {**_m(30.0, 10.0, 200.0, 0.08, 0.72, 28.0), "structure": 0.9}, peer),
               _entry("b", 0, _m(30.0, 10.0, 200.0, 0.08, 0.72, 28.0), peer)]   # judged before structure existed
    rows = {r["image"]: r for r in q.bounds(entries)}
    assert rows["a"]["program"]["structure"] == 0.8 and "structure" not in rows["b"]["program"]
    table = q.bounds_markdown(q.bounds(entries)).splitlines()
    assert "| 0.80 / 0.80 |" in table[2] and "| - |" in table[3]
    # structure is information, not a bound: both rows pass every bound
    assert table[2].endswith("yes, yes, yes, yes, yes, yes |") and table[3].endswith("yes, yes, yes, yes, yes, yes |")


def test_the_rules_table_judges_every_rule_of_both_programs_and_names_the_bounds_each_fails(tmp_path, bench_script):
    """rules.md: one line per image and rule; a rule missing from a seed is judged on the seeds that have it;
    the peer's own rows are judged against the real image (its excess contrast fails the std bound)."""
    q = bench_script("singan_quality")
    jitter = {"mean_jitter": 1.0, "std_jitter": 1.0}
    peer = {**_m(36.0, 10.0, 200.0, 0.10, 0.80, 28.0), **jitter, "structure": 0.8}            # std +20 %
    fewgan = {**_m(30.0, 10.0, 200.0, 0.08, 0.72, 28.0), **jitter, "structure": 0.72}
    other = {**_m(34.8, 10.0, 200.0, 0.12, 0.81, 28.0), **jitter, "structure": 0.7}           # std +16 %, SWD above
    entries = [_entry("a", 0, fewgan, peer), _entry("a", 1, fewgan, peer)]
    entries[0]["programs"]["fewgan own"] = other                                      # seed 0 only
    lines = q.rules_markdown(entries).splitlines()
    rows = {line.split(" | ")[1]: line for line in lines[2:]}
    assert list(rows) == ["fewgan standing", "peer train", "fewgan own"]
    assert rows["fewgan standing"].endswith("| 0.720 | 0.828 | diversity |")
    assert rows["peer train"].startswith("| a | peer train | 1.200 |") and rows["peer train"].endswith("| std |")
    assert rows["fewgan own"].endswith("| 0.700 | 0.805 | std, swd |")

    out = tmp_path / "summary"
    (tmp_path / "q.json").write_text(json.dumps({"config": {}, "results": entries}))
    assert q.main(["--summarise", str(tmp_path / "q.json"), "--out", str(out)]) == 0
    assert (out / "rules.md").read_text().splitlines() == lines
