"""bench/singan_per_scale.py (issue 17's scale-by-scale contrast table in bench/README.md)."""

from __future__ import annotations

import re


def test_one_line_per_scale_and_the_last_step_rebuilds_the_sampler_s_images(tiny_run, capsys, bench_script):
    module = bench_script("singan_per_scale")
    assert module.main([str(tiny_run), "--n", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    scales = [line for line in lines if re.match(r"s\d+ ", line)]
    assert [line.split()[0] for line in scales] == ["s0", "s1", "s2", "s3"]   # the tiny run's 4 scales
    last = [line for line in lines if line.startswith("last step")]
    assert [line.split(",")[1].split(":")[0].strip() for line in last] == ["as-trained", "running", "own", "standing"]
    # the finest scale's samples, made in one pass, equal the last step made in two (scales 0..N-2, then N-1)
    finest = scales[-1].split("| samples ")[1].split(" | amp")[0]
    assert last[-1].split("after the last ")[1] == finest
    # the real image's numbers are the image's, not the samples'
    assert scales[-1].split("real ")[1].split(" |")[0] != finest
