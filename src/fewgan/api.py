"""The Python API: one function per thing a user does; the CLI calls exactly these.

Each function delegates to the package that owns the work (``fewgan.singan``,
``fewgan.stylegan2``, ``fewgan.metrics``, ``fewgan.report``, ``fewgan.data``); imports of
those are local so that ``import fewgan`` stays fast. The training functions run a whole job:
they pass StyleGAN2 its selection metric and write the report after training.

Every option is an explicit keyword argument. The options of a training run are the fields
of its config (:class:`fewgan.singan.config.SinGANConfig`,
:class:`fewgan.stylegan2.config.StyleGAN2Config`), with their types and defaults taken from
the dataclass (one source of truth, as the CLI's options are); an option left at its
default is "not given", so that a resume keeps the run's own value and a preset applies.

Examples
--------
>>> import fewgan
>>> run = fewgan.train_singan("micrograph.tif", steps=2000)      # doctest: +SKIP
>>> images = fewgan.load(run).sample(16, seed=0)                   # doctest: +SKIP
>>> fewgan.evaluate("real/", "fake/", metrics=["swd", "particles"])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

from fewgan.gpnn import GPNNConfig as _GP
from fewgan.singan.config import SinGANConfig as _SG
from fewgan.stylegan2.config import StyleGAN2Config as _S2

PathLike = str | os.PathLike


class _Default:
    """The default of a keyword argument taken from a config field: it shows as the value (in
    ``help()`` and signatures) and tells the API that the option was not given."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def _type_text(field) -> str:
    t = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    return t.replace("Optional[int]", "int | None").replace("Optional[float]", "float | None")


def _config_options(cls, placeholder: str):
    """Give a training function the fields of its config as keyword arguments.

    The function is written with ``**options``; its signature (what ``help()``, ``inspect`` and IDEs
    show) gets one keyword-only argument per field of ``cls``, in the dataclass's order, with the
    field's type and default, and its docstring one entry per field in place of ``placeholder``.
    The list exists once, in the dataclass; an option the caller does not pass is "not given"
    (a resume keeps the run's value, a preset applies), which is what its :class:`_Default` shows.
    """
    import inspect

    def decorate(fn):
        sig = inspect.signature(fn)
        base = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        fields = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=_Default(f.default),
                                    annotation=_type_text(f)) for f in dataclasses.fields(cls)]
        fn.__signature__ = sig.replace(parameters=base + fields)
        if fn.__doc__:  # None under python -OO
            fn.__doc__ = fn.__doc__.replace(placeholder, _options_doc(cls))
        return fn

    return decorate


def _options_doc(cls) -> str:
    """One numpydoc entry per config field: name, type and default (their meaning: the config's docstring)."""
    return "\n".join(f"    {f.name} : {_type_text(f)}, default {f.default!r}" for f in dataclasses.fields(cls))


# --------------------------------------------------------------------------- data
def read_image(path: PathLike, *, channels: str | int = "auto", data_range: tuple[float, float] | None = None,
               page: int | None = None):
    """Read one image.

    Parameters
    ----------
    path : PNG, TIFF or JPEG file (8/16-bit, float TIFF; gray or RGB).
    channels : 'auto' (gray stays 1 channel), 1 or 3.
    data_range : (lo, hi) data values mapped to [-1, 1] (default: the dtype's range, or the value
        range of a float image).
    page : page of a multi-page TIFF.

    Returns
    -------
    (image, meta) : ``[C, H, W]`` float tensor in [-1, 1] and its :class:`fewgan.data.images.ImageMeta`.
    """
    from fewgan.data.images import read_image as _read

    return _read(path, channels=channels, data_range=data_range, page=page)


def write_image(path: PathLike, image, meta, *, format: str | None = None) -> Path:
    """Write a ``[C, H, W]`` image in [-1, 1] back in ``meta``'s format, bit depth and data range.

    Parameters
    ----------
    path : the file to write (atomically).
    image : ``[C, H, W]`` tensor or array in [-1, 1].
    meta : :class:`fewgan.data.images.ImageMeta` of the data (dtype, data range, pixel size).
    format : 'png' or 'tiff' (default: ``meta.format``).

    Returns
    -------
    Path : ``path``.
    """
    from fewgan.data.images import write_image as _write

    return _write(path, image, meta, format=format)


def load_folder(path: PathLike, *, resolution: int | None = None, channels: str | int = "auto", fit: str = "crop",
                recursive: bool = False, data_range: tuple[float, float] | None = None):
    """Load a folder of images as one tensor.

    Parameters
    ----------
    path : folder of PNG / TIFF / JPEG images.
    resolution : square side to bring every image to (default: the images' common size).
    channels : 'auto', 1 or 3.
    fit : 'crop', 'resize' or 'pad' to the square resolution.
    recursive : look in sub-folders too.
    data_range : (lo, hi) data values mapped to [-1, 1] (default: the dtype's range).

    Returns
    -------
    (images, meta) : ``[N, C, R, R]`` float tensor in [-1, 1] and :class:`fewgan.data.folder.FolderMeta`.
    """
    from fewgan.data.folder import load_folder as _load

    return _load(path, resolution=resolution, channels=channels, fit=fit, recursive=recursive, data_range=data_range)


def synth(out: PathLike, *, mode: str = "micrograph", n: int | None = None, size: int | None = None, seed: int = 0,
          format: str | None = None, **particles: Any) -> Path:
    """Make synthetic particle micrographs with exact ground truth.

    Parameters
    ----------
    out : folder to write into.
    mode : 'micrograph' (one image, default 512 x 512) or 'folder' (``n`` images, default 200 of 64 x 64).
    n : images in folder mode.
    size : image side, px.
    seed : seed of every random draw.
    format : 'png' (default) or 'tiff'.
    **particles : parameters of the rendering (radius, density, bit_depth, ...), see
        :func:`fewgan.data.synthetic.make_micrograph`.

    Returns
    -------
    Path : the image (micrograph mode) or the folder.
    """
    from fewgan.data.synthetic import synth as _synth

    return _synth(out, mode=mode, n=n, size=size, seed=seed, format=format, **particles)


# --------------------------------------------------------------------------- training
def _report_when_done(run_dir: Path, logger) -> None:
    """Write the report of a run whose training just finished, and say where (a failure is a warning:
    the report is a view of the run, not part of it)."""
    from fewgan.report.html import write_report

    try:
        logger.info(f"report: {write_report(run_dir)}")
    except Exception as exc:
        logger.warning(f"could not write the report: {type(exc).__name__}: {exc}")


def _singan_done(run_dir: Path, logger) -> None:
    """After a SinGAN run: the figure of its scales (``scales.png``), then the report."""
    from fewgan.report.plots import plot_singan_scales
    from fewgan.run import SINGAN_FIGURE_FILE, release_memory
    from fewgan.singan.sample import SinGANModel

    try:
        plot_singan_scales(SinGANModel.load(run_dir), run_dir / SINGAN_FIGURE_FILE)
    except Exception as exc:  # a figure must never cost the run
        logger.warning(f"could not draw {SINGAN_FIGURE_FILE}: {type(exc).__name__}: {exc}")
    release_memory()  # the figure's passes, before the report reads the images
    _report_when_done(run_dir, logger)


@_config_options(_SG, "@@SINGAN_DOC@@")
def train_singan(
    image: PathLike | None = None,
    *,
    results: PathLike = "results",
    resume: PathLike | None = None,
    device: str = "cpu",
    quiet: bool = False,
    dry_run: bool = False,
    **options: Any,
) -> Path:
    """Train SinGAN on one image; then draw its scales and write its report. Returns the run folder.

    Parameters
    ----------
    image : PNG, TIFF or JPEG (8/16-bit, float TIFF; gray trains as three identical channels and samples
        back gray, ``channels=1`` trains one); omit with ``resume``.
    results : parent of the timestamped run folder.
    resume : a run folder to continue exactly from its last checkpoint; only the run-time
        settings (:attr:`SinGANConfig.RUNTIME_FIELDS`) may be given, any other changed option is refused.
    device : 'cpu', 'cuda', 'cuda:N' or 'auto'.
    quiet : no progress bar or log lines on the terminal (files are still written).
    dry_run : print the resolved configuration and pyramid, train nothing.

    The remaining options are the fields of :class:`fewgan.singan.config.SinGANConfig` (their
    meaning: its docstring; left at the default: not given).

@@SINGAN_DOC@@

    Returns
    -------
    Path : the run folder (``config.json``, ``log.txt``, ``metrics.jsonl``, ``checkpoints/``,
    ``samples/``, ``generator.pt``, ``amps.json``, ``scales.png``, ``report.html``); ``results``
    with ``dry_run``.

    References
    ----------
    Shaham, Dekel, Michaeli, "SinGAN: Learning a Generative Model from a Single Natural Image", ICCV 2019.
    """
    from fewgan.singan.train import train

    return train(image, results=results, resume=resume, device=device, quiet=quiet, dry_run=dry_run,
                 on_finish=_singan_done, **options)


@_config_options(_S2, "@@STYLEGAN2_DOC@@")
def train_stylegan2(
    folder: PathLike | None = None,
    *,
    results: PathLike = "results",
    resume: PathLike | None = None,
    device: str = "cpu",
    quiet: bool = False,
    dry_run: bool = False,
    preset: str | None = None,
    **options: Any,
) -> Path:
    """Train data-efficient StyleGAN2 on a folder of images; then write its report. Returns the run folder.

    The selection metric that picks the best checkpoint is
    :func:`fewgan.metrics.selection.selection_metric` of the training images (``metric``).

    Parameters
    ----------
    folder : folder of PNG / TIFF / JPEG images (any size, fitted to ``resolution`` by ``fit``);
        omit with ``resume``.
    results : parent of the timestamped run folder.
    resume : a run folder to continue exactly from ``checkpoints/last.pt``; only the run-time
        settings (:attr:`StyleGAN2Config.RUNTIME_FIELDS`) may be given, any other changed option is refused.
    device : 'cpu', 'cuda', 'cuda:N' or 'auto' (under ``torchrun``: one process per device).
    quiet : no progress bar or log lines on the terminal (files are still written).
    dry_run : print the resolved configuration, train nothing.
    preset : 'default' or 'seed' (the seed document exactly, its leaking classical augmentation included).

    The remaining options are the fields of :class:`fewgan.stylegan2.config.StyleGAN2Config`
    (left at the default: not given).

@@STYLEGAN2_DOC@@

    Returns
    -------
    Path : the run folder (``config.json``, ``log.txt``, ``metrics.jsonl``, ``checkpoints/``
    with ``last.pt`` and the ``best_*`` files, ``samples/``, ``report.html``).

    References
    ----------
    Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; Zhao et al.,
    "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020.
    """
    from fewgan.metrics.selection import selection_metric
    from fewgan.stylegan2.train import train

    return train(folder, results=results, resume=resume, device=device, quiet=quiet, dry_run=dry_run, preset=preset,
                 metric_factory=selection_metric, on_finish=_report_when_done, **options)


# --------------------------------------------------------------------------- trained runs
def load(run: PathLike, *, device: str = "cpu"):
    """Load the trained model of a run folder, whichever method trained it.

    Parameters
    ----------
    run : a finished run folder (its ``config.json`` says the method).
    device : 'cpu', 'cuda', 'cuda:N' or 'auto'.

    Returns
    -------
    fewgan.model.TrainedModel : ``SinGANModel`` or ``StyleGAN2Model`` (``sample(n, seed=...)``,
    ``sample_tensor``, ``meta``, ``reconstruction()``, ``training_data()``).
    """
    from fewgan import trained

    return trained.load(run, device=device)


def sample(run: PathLike, out: PathLike | None = None, *, n: int = 16, batch: int = 16, seed: int = 0,
           size: Any = None, scale: Any = None, start_scale: int | None = None, reconstruct: bool = False,
           format: str | None = None, device: str = "cpu", export: str | None = None,
           tile: int | None = None) -> Path:
    """Write ``n`` samples of a SinGAN run, in the input's format, bit depth and data range.

    Parameters
    ----------
    run : a finished SinGAN run folder.
    out : output folder (default ``RUN/samples_seed<seed>``).
    n : number of images.
    batch : images per forward pass (no effect on the images).
    seed : image ``i`` depends only on ``(seed, i)``.
    size : output size ``'HxW'`` or ``(h, w)``.
    scale : output size factor, ``1.5`` or ``'1x2'`` (height x width).
    start_scale : inject the real image at this scale (variations close to the original).
    reconstruct : also write the fixed-noise reconstruction.
    format : 'png' or 'tiff' (default: the input's).
    device : 'cpu', 'cuda', 'cuda:N' or 'auto'.
    export : for a model trained with labels (which always writes ``NAME_masks.tif`` beside each
        sample): label formats to write as well, ``'cellpose,coco,yolo'`` (any of them, or
        ``'yolo-seg'``) or ``'all'``.
    tile : make each image tile by tile, ``tile`` px tiles with overlap (any size in bounded memory;
        the same image up to float rounding); None: automatic, tiled when the untiled pass would not
        fit :data:`fewgan.singan.sample.MEMORY_BUDGET`.

    Returns
    -------
    Path : the output folder.
    """
    from fewgan.singan.sample import sample_to_folder

    return sample_to_folder(run, out, n=n, batch=batch, seed=seed, size=size, scale=scale, start_scale=start_scale,
                            reconstruct=reconstruct, format=format, device=device, export=export, tile=tile)


def generate(run: PathLike, out: PathLike | None = None, *, n: int | None = None, seeds: Any = None,
             psi: float = 1.0, noise_mode: str = "const", batch: int = 32, grid: bool = False,
             interpolate: bool = False, format: str | None = None, device: str = "cpu", quiet: bool = False,
             export: Any = None) -> Path:
    """Write one image per seed of a StyleGAN2 run, in the data set's bit depth.

    A run trained with labels also writes ``NAME_masks.tif`` (instances, uint16) beside every image.

    Parameters
    ----------
    run : a StyleGAN2 run folder (best EMA generator, else best G, else the last checkpoint).
    out : output folder (default ``RUN/generated``).
    n : number of images (seeds ``0..n-1`` unless ``seeds``).
    seeds : ``'0-999'``, ``'1,5,9'``, an int or a list.
    psi : truncation, ``w' = w_avg + psi (w - w_avg)``.
    noise_mode : 'const', 'random' or 'none'.
    batch : images per forward pass (no effect on the images).
    grid : also ``grid.png`` (up to 64 seeds).
    interpolate : also ``interpolation.png`` between the first two seeds.
    format : 'png' or 'tiff' (default: the data set's).
    device : 'cpu', 'cuda', 'cuda:N' or 'auto'.
    quiet : print nothing.
    export : for a labelled run, label formats to write too: 'cellpose', 'coco', 'yolo', 'yolo-seg',
        a comma list or 'all' (:func:`fewgan.data.export.export`).

    Returns
    -------
    Path : the output folder (with ``generation.json``).

    References
    ----------
    Karras, Laine, Aila, "A Style-Based Generator Architecture for GANs", CVPR 2019 (truncation).
    """
    from fewgan.stylegan2.generate import generate_to_folder

    return generate_to_folder(run, out, n=n, seeds=seeds, psi=psi, noise_mode=noise_mode, batch=batch, grid=grid,
                              interpolate=interpolate, format=format, device=device, quiet=quiet, export=export)


@_config_options(_GP, "@@GPNN_DOC@@")
def gpnn(image: PathLike, out: PathLike, *, n: int = 8, seed: int = 0, size: Any = None, scale: Any = None,
         format: str | None = None, export: str | None = None, quiet: bool = False, **options: Any) -> Path:
    """Write ``n`` samples of one image by training-free patch nearest neighbours (GPNN); returns ``out``.

    Nothing is trained: every sample is made from the image's own patches, coarse to fine, at the
    image's own resolution and pixel size. Samples keep the input's format, bit depth and data range;
    with ``labels`` each gets ``NAME_masks.tif`` (its instances, assembled from the same source
    patches as its pixels) and ``out`` gets ``gpnn.json`` (config, seeds, input, sizes, seconds).

    Parameters
    ----------
    image : PNG, TIFF or JPEG (8/16-bit, float TIFF; gray or RGB).
    out : output folder.
    n : number of samples.
    seed : sample ``i`` depends only on ``(seed, i)``.
    size : sample size ``'HxW'`` or ``(h, w)`` (default: the image's).
    scale : sample size factor, ``1.5`` or ``'1x2'`` (height x width).
    format : 'png' or 'tiff' (default: the input's).
    export : with ``labels``, label formats besides the Cellpose masks: ``'coco,yolo'`` (any of
        cellpose, coco, yolo, yolo-seg) or ``'all'``.
    quiet : no progress bar or first lines on the terminal.

    The remaining options are the fields of :class:`fewgan.gpnn.GPNNConfig` (their meaning: its
    docstring).

@@GPNN_DOC@@

    Returns
    -------
    Path : ``out``.

    References
    ----------
    Granot, Feinstein, Shocher, Bagon, Irani, "Drop the GAN: In Defense of Patches Nearest Neighbors
    as Single Image Generative Models", CVPR 2022.
    """
    from fewgan.data.export import parse_formats
    from fewgan.errors import FewganError
    from fewgan.gpnn import GPNNConfig, sample_to_folder
    from fewgan.singan.sample import parse_scale, parse_size

    config = GPNNConfig.from_dict(options)
    formats = parse_formats(export)
    if formats and not config.labels:
        raise FewganError("--export needs labels to export: give --labels PATH, beside or auto")
    size, factors = parse_size(size), parse_scale(scale)
    instances = record = None
    if config.labels:
        from fewgan.data.images import read_image as _read
        from fewgan.singan.train import resolve_labels  # the one --labels rule, shared with SinGAN

        tensor, _ = _read(image)
        instances, record = resolve_labels(Path(image), tensor, config.labels)
    return sample_to_folder(image, out, n=n, seed=seed, size=size, scale=factors, config=config,
                            instances=instances, labels_record=record, formats=formats, format=format, quiet=quiet)


# --------------------------------------------------------------------------- evaluation and reports
def evaluate(real: Any, fake: Any, *, metrics: list[str] | tuple[str, ...] | None = None, json_path: Any = None,
             device: str = "cpu", n: int | None = None, seed: int = 0, resolution: int | None = None,
             channels: str | int = "auto", size_mismatch: str = "resize", floors: bool = True, resize: str = "clean",
             batch_size: int = 50, weights: Any = None, cache: bool | str | None = None,
             particle_options: dict[str, Any] | None = None, near_copy_threshold: float | None = None,
             log: Callable[[str], None] | None = None, progress: bool = False, real_labels: Any = None,
             second_real: Any = None, test: Any = None,
             utility_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Compare real and generated images with every requested metric beside its real-vs-real floor.

    Parameters
    ----------
    real, fake : image folder, image file or run folder (a run as FAKE generates ``n`` images; as
        REAL it stands for its training data), or a ``[N, C, H, W]`` tensor in [-1, 1].
    metrics : names of :data:`fewgan.metrics.evaluate.METRICS` (default: by mode).
    json_path : also write the result there as JSON (atomically).
    device : 'cpu', 'cuda' or 'auto'.
    n : images to generate from a run folder.
    seed : seed of generation, the half split, crops, SWD and KID subsets.
    resolution, channels : how folders are loaded.
    size_mismatch : 'resize' or 'error' for generated images of another size (set mode).
    floors : also compute every metric between two halves of the real data.
    resize, batch_size, weights, cache : Inception feature options.
    particle_options : fields of :class:`fewgan.metrics.particles.ParticleConfig`.
    near_copy_threshold : memorisation ratio threshold (default 0.5).
    log : called with progress lines.
    progress : feature-extraction progress bars.
    real_labels : REAL's instance labels: a label file (one image) or a folder of label files
        (default: ``NAME_masks.tif|png`` beside the images, when every image has one).
    second_real : an independent real image of REAL's size (single-image mode): what the copying
        measures give between two real images.
    test : held-out real images with labels beside them (image or folder) for the ``utility``
        metric (default: the last quarter of REAL's images); refused when the FAKE run's recorded
        training data holds them.
    utility_options : fields of :class:`fewgan.metrics.utility.UtilityConfig` (steps, batch, crop, ...).

    Returns
    -------
    dict : ``mode``, ``real``, ``fake``, ``metrics`` (numbers, floor, seconds or the reason skipped),
    ``table``, ``verdict`` (one ``{question, level, text}`` per question), ``warnings``; see
    :func:`fewgan.metrics.evaluate.evaluate`.
    """
    from fewgan import trained
    from fewgan.metrics.evaluate import evaluate as _evaluate

    return _evaluate(real, fake, metrics=metrics, json_path=json_path, device=device, n=n, seed=seed,
                     resolution=resolution, channels=channels, size_mismatch=size_mismatch, floors=floors,
                     resize=resize, batch_size=batch_size, weights=weights, cache=cache,
                     particle_options=particle_options, near_copy_threshold=near_copy_threshold, log=log,
                     progress=progress, run_loader=trained.run_image_set, real_labels=real_labels,
                     second_real=second_real, test=test, utility_options=utility_options)


def weights_status(path: PathLike | None = None) -> dict[str, Any]:
    """Where the Inception weights are looked for and what is found.

    Parameters
    ----------
    path : an explicit weights file to check first.

    Returns
    -------
    dict : ``candidates`` (source, path, exists) and ``found`` (a path or None).
    """
    from fewgan.metrics.features import weights_status as _status

    return _status(path)


def import_weights(file: PathLike, dest_dir: PathLike | None = None) -> Path:
    """Check the Inception weights' SHA-256 and copy them into torch's hub cache (atomically).

    Parameters
    ----------
    file : the downloaded weights file.
    dest_dir : where to install them (default: torch's hub checkpoints folder).

    Returns
    -------
    Path : the installed file.
    """
    from fewgan.metrics.features import import_weights as _import

    return _import(file, dest_dir)


def fetch_weights(url: str | None = None, dest_dir: PathLike | None = None) -> Path:
    """Download, check and install the Inception weights (needs internet).

    Parameters
    ----------
    url : where to download from (default: the reference release).
    dest_dir : where to install them (default: torch's hub checkpoints folder).

    Returns
    -------
    Path : the installed file.
    """
    from fewgan.metrics.features import fetch_weights as _fetch

    return _fetch(url, dest_dir)


def report(run: PathLike, *, out: PathLike | None = None, plots: bool = True, max_images: int = 24,
           log_lines: int = 60) -> Path:
    """Write a run folder's self-contained ``report.html`` (and its plots).

    Parameters
    ----------
    run : a run folder (finished or not).
    out : where to write the report (default ``RUN/report.html``).
    plots : draw the plots into ``RUN/plots`` first.
    max_images : most sample images embedded.
    log_lines : lines of ``log.txt`` shown.

    Returns
    -------
    Path : the report.
    """
    from fewgan.report.html import write_report

    return write_report(run, out=out, plots=plots, max_images=max_images, log_lines=log_lines)


