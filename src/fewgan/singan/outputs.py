"""What a SinGAN run writes besides its resume checkpoints: the end of a scale and the end of the run.

The trainer (:mod:`fewgan.singan.train`) only trains; at the end of each scale and of the run it
hands itself to the functions here, which evaluate the scale (PSNR / SSIM of the fixed-noise
reconstruction against the real image, in the data's units), log the record and the line, and
write the scale's reconstruction, sample grid and networks, then the model file, the amplitudes
and the scale table. The figure of the scales is drawn by :mod:`fewgan.report.plots` from the
finished run (the API does it after training).

Shaham, Dekel, Michaeli, "SinGAN: Learning a Generative Model from a Single Natural Image",
ICCV 2019.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fewgan.singan.nets import RECONSTRUCTION_RULE, SAMPLING_RULE, image_part
from fewgan.run import (CHECKPOINT_DIR, SAMPLES_DIR, SINGAN_AMPS_FILE, SINGAN_MODEL_FILE,
                        SINGAN_TRAINING_LABELS_FILE, atomic_write_json, read_metrics, save_checkpoint,
                        singan_scale_checkpoint, singan_scale_images)


def end_of_scale(trainer, k: int) -> dict[str, Any]:
    """Evaluate, log and write scale ``k`` just trained; returns its ``scale_end`` record.

    ``trainer`` is the :class:`fewgan.singan.train.SinGANTrainer` (its state, config, pyramid,
    logger and run folder; its ``reconstruct`` and ``sample``), which calls this module, not the
    other way round.

    The samples draw from their own generator (seed ``seed * 1000 + k``), never from the training
    stream, so writing them does not change the run.
    """
    from fewgan.data.images import ImageMeta, save_grid, to_numpy, write_image
    from fewgan.metrics.fidelity import psnr, ssim

    st, cfg, log = trainer.state, trainer.cfg, trainer.log
    meta = ImageMeta.from_dict(trainer.meta)
    # the image's channels (a gray image trained as three comes back as their mean); labels never meet ImageMeta
    image = lambda y: image_part(y, trainer.image_channels, meta.channels)  # noqa: E731
    recon = image(trainer.reconstruct(k))
    g = torch.Generator().manual_seed(cfg.seed * 1000 + k)
    samples = image(trainer.sample(k, cfg.sample_count, g))
    real = image(st.reals[k][0])
    real_np = to_numpy(real, meta).astype(np.float64)
    recon_np = to_numpy(recon[0], meta).astype(np.float64)
    lo, hi = meta.data_range
    squeeze = (lambda a: a[..., 0]) if real_np.shape[-1] == 1 else (lambda a: a)
    value_psnr = psnr(squeeze(real_np), squeeze(recon_np), data_range=float(hi) - float(lo))
    value_ssim = ssim(squeeze(real_np), squeeze(recon_np), data_range=float(hi) - float(lo))
    h, w = trainer.pyramid.sizes[k]
    seconds_scale = st.elapsed - st.scale_elapsed0
    record = {"event": "scale_end", "scale": k, "size": [h, w], "amp": st.amps[k], "psnr": value_psnr,
              "ssim": value_ssim, "seconds_scale": round(seconds_scale, 4), "features": cfg.features_at(k),
              "sampling_rule": SAMPLING_RULE, "reconstruction_rule": RECONSTRUCTION_RULE,
              "sample_contrast": sample_contrast(samples, real)}
    log.metrics(record)
    log.info(f"s{k} done: {h}x{w}, amp {st.amps[k]:.3f}, reconstruction PSNR {value_psnr:.2f} dB, "
             f"SSIM {value_ssim:.4f}, {seconds_scale:.1f} s")
    run_dir = trainer.run_dir
    if run_dir is not None:
        out = run_dir / SAMPLES_DIR
        suffix = ".tif" if meta.format == "tiff" else ".png"
        recon_name, grid_name = singan_scale_images(k, suffix)
        write_image(out / recon_name, recon[0].cpu(), meta.with_size(h, w))
        save_grid(out / grid_name, samples.cpu(), nrow=min(cfg.sample_count, 4))
        save_checkpoint(run_dir / CHECKPOINT_DIR / singan_scale_checkpoint(k), {
            "scale": k, "size": [h, w], "amp": st.amps[k], "features": cfg.features_at(k),
            "generator": st.generators[k].state_dict(), "discriminator": st.discriminator.state_dict()})
        log.image(f"s{k}/recon", recon[0], k)
    return record


def sample_contrast(samples: torch.Tensor, real: torch.Tensor) -> list[float] | None:
    """``[min, mean, max]`` over ``samples`` ``[N, C, H, W]`` of each sample's intensity std over the
    real image's (``[C, H, W]``, the same units; pixels and channels pooled), or None for a flat real image.

    The sampler's BatchNorm rule sets the samples' contrast, and no rule is right for every trained model
    (bench/README.md, issue 17: of 21 models of one configuration, 9 of them with the public code's
    end-of-scale pass, one came out over-contrasted under standing statistics, another dulled under
    running averages); the critic cannot see contrast, so training does not catch it. Recorded per
    scale (over the scale's sample grid) so the report can say so.
    """
    ref = float(real.detach().double().std(unbiased=False))
    if not ref > 0 or samples.shape[0] == 0:
        return None
    ratios = samples.detach().double().flatten(1).std(1, unbiased=False) / ref
    return [round(float(ratios.min()), 3), round(float(ratios.mean()), 3), round(float(ratios.max()), 3)]


def end_of_run(trainer) -> None:
    """The scale table in the log (the public code's format), then the model file and ``amps.json``;
    a labelled run also writes :data:`fewgan.run.SINGAN_TRAINING_LABELS_FILE`: the instances of its
    real label channels at the finest scale (:func:`fewgan.data.labels.decode_instances`), i.e. the
    labels as the run trained on them, at the trained size (uint16, Cellpose convention)."""
    st, log, run_dir = trainer.state, trainer.log, trainer.run_dir
    records = ({r["scale"]: r for r in read_metrics(run_dir) if r.get("event") == "scale_end"}
               if run_dir is not None else {})
    log.info("")
    log.info("Scales:")
    for k, (h, w) in enumerate(trainer.pyramid.sizes):
        r = records.get(k, {})
        extra = f", psnr: {r['psnr']:.2f}, ssim: {r['ssim']:.4f}" if "psnr" in r else ""
        log.info(f"s{k}, size: {h}x{w}, amp: {st.amps[k]:.3f}{extra}")
    if run_dir is None:
        return
    save_checkpoint(run_dir / SINGAN_MODEL_FILE, trainer.model_dict())
    atomic_write_json(run_dir / SINGAN_AMPS_FILE, {f"s{k}": a for k, a in enumerate(st.amps)})
    if trainer.cfg.label_channels:  # the real instances as trained (finest scale), for the report and the user
        from fewgan.data.images import write_array
        from fewgan.data.labels import decode_instances

        channels = st.reals[-1][0, trainer.image_channels:].detach().float().cpu().numpy()
        write_array(run_dir / SINGAN_TRAINING_LABELS_FILE, decode_instances(channels).astype(np.uint16)[..., None],
                    "tiff")
