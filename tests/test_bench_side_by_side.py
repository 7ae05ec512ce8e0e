"""bench/side_by_side.py and bench/gpnn_speed.py: the pieces whose numbers bench/README.md reports.

What could fail: the ``/usr/bin/time -v`` report read wrongly (wall clock in h:mm:ss or m:ss, CPU as
user + system, RSS in kB); the seed-default SinGAN column compared against a real image resized
otherwise than the pyramid resizes its training image.
"""

import types

import pytest


REPORT = """\tCommand being timed: "python -m fewgan singan train x.tif"
\tUser time (seconds): 1500.20
\tSystem time (seconds): 12.50
\tPercent of CPU this job got: 33%
\tElapsed (wall clock) time (h:mm:ss or m:ss): {clock}
\tMaximum resident set size (kbytes): 3145728
\tExit status: 0
"""


@pytest.mark.parametrize("clock, seconds", [("1:02:03", 3723.0), ("2:03.46", 123.5), ("0:07.04", 7.0)])
def test_time_v_report(clock, seconds, bench_script):
    timing = bench_script("gpnn_speed").time_v(REPORT.format(clock=clock))
    assert timing == {"peak_rss_gib": 3.0, "cpu_s": 1512.7, "time_wall_s": seconds}


def test_resized_alike_is_the_pyramids_resize(tmp_path, bench_script):
    """A 300 px image under the seed defaults trains at 200 px; the real image the column compares
    against is the pyramid's own finest real (up to the 16-bit rounding of the written TIFF)."""
    import torch

    from fewgan import api
    from fewgan.singan.config import SinGANConfig
    from fewgan.singan.pyramid import build_reals
    from fewgan.singan.train import prepare

    image = api.synth(tmp_path / "real", size=300, seed=7, format="tiff")
    tensor, meta, pyramid = prepare(image, SinGANConfig())
    assert tuple(pyramid.sizes[-1]) == (200, 200)
    model = types.SimpleNamespace(pyramid=pyramid, meta=meta)
    written = bench_script("side_by_side").resized_alike(image, model, tmp_path / "resized.tif")
    resized, resized_meta = api.read_image(written)
    finest = build_reals(tensor, pyramid)[-1][0, :1]  # gray trains as three equal channels
    assert resized.shape == (1, 200, 200) and resized_meta.bit_depth == 16
    assert torch.allclose(resized, finest, atol=2 / 65535)
    # and it is not the image itself cut or left alone: the particles' contrast survives the resize
    assert float(resized.max() - resized.min()) > 0.1


def test_reused_columns(tmp_path, bench_script):
    """Columns of earlier results are taken as they are, from this script's layout and gpnn_speed's."""
    import json

    earlier = tmp_path / "gpnn_speed.json"
    earlier.write_text(json.dumps({"sizes": {"512": {"wall_s": 11.6}, "2048": {"wall_s": 242.0}}}))
    mine = tmp_path / "native.json"
    mine.write_text(json.dumps({"date": "x", "singan_native": {"run": "R"}}))
    columns = bench_script("side_by_side").reused([earlier, mine], 512)
    assert set(columns) == {"gpnn", "singan_native"}
    assert columns["gpnn"]["wall_s"] == 11.6 and columns["gpnn"]["from"] == str(earlier)
    assert columns["singan_native"] == {"run": "R", "from": str(mine)}
