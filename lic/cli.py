"""``lic``: the command line, a thin layer over the library.

``lic``, ``python -m lic`` and ``python -m lic.cli`` are the same program. A user error (a bad
option, a missing file, a checkpoint that does not match) prints one line and exits with code 2;
an interruption exits with 130; nothing prints a traceback unless ``LIC_DEBUG`` is set.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import typer

from lic import __version__
from lic.config import (BD_METHODS, CLASSICAL_CODECS, CONTEXTS, DATA_DIR, KINDS, LAYOUTS, PERTURBATIONS, QUANTIZER_NAMES,
                        RETRAIN_MODES, STRATEGIES, TABLES, TRAINING_QUANTIZERS, WEIGHTINGS, ZOO, EvaluateConfig, LatentsConfig,
                        ModelConfig, RetrainConfig, TrainConfig, kind_architecture, load_training)
from lic.errors import LicError
from lic.fileio import atomic_write_bytes

Quantizer = Literal[QUANTIZER_NAMES]  # type: ignore[valid-type]
TrainedFor = Literal[TRAINING_QUANTIZERS]  # type: ignore[valid-type]
ENVVAR_PREFIX = "LIC"  # every option also comes from LIC_<COMMAND>_<OPTION>, e.g. LIC_TRAIN_STEPS=200
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Learned image compression with real USQ/TCQ bitstreams: train, quantize latents for real, "
                       "retrain on them, and measure rate from the bytes.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lic {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Learned image compression with real USQ/TCQ bitstreams."""


def _device(value: str) -> str:
    if value == "cpu":
        return value
    from lic.machine import check_device

    try:
        return check_device(value)
    except LicError as exc:
        raise typer.BadParameter(str(exc)) from None


Device = typer.Option(TrainConfig.device, "--device", callback=_device, help="torch device: cpu, cuda, cuda:1, ...")
Images = typer.Option(None, "--images", help="folder of images (default: the bundled photos)")
Tables = typer.Option("fitted", "--tables", help="fitted: the tables a checkpoint has fitted to the quantizer "
                      "(lic tables fit), where it has them; analytic: the Gaussian's (the control)")
_CODING = {  # keyword -> (the quantizer's parameter name, type, option)
    "tcq_states": ("states", Optional[Literal[4, 8]],
                   typer.Option(None, "--tcq-states", help="TCQ trellis states (default: the checkpoint's, else 8)")),
    "tcq_lambda": ("lambda_tcq", Optional[float],
                   typer.Option(None, "--tcq-lambda", help="TCQ rate weight lambda_tcq in J = D + lambda_tcq * bits")),
    "tcq_delta": ("delta", Optional[float],
                  typer.Option(None, "--tcq-delta", help="TCQ step delta (Q0 and Q1 each have step 2*delta)")),
    "tcq_layout": ("layout", Optional[Literal[LAYOUTS]],  # type: ignore[valid-type]
                   typer.Option(None, "--tcq-layout", help="what one trellis runs over (default: row)")),
    "tcq_weighting": ("weighting", Optional[Literal[WEIGHTINGS]],  # type: ignore[valid-type]
                      typer.Option(None, "--tcq-weighting",
                                   help="decoder: weight errors by g_s's sensitivity (default); none")),
    "rdoq_lambda": ("lambda_rdoq", Optional[float],
                    typer.Option(None, "--rdoq-lambda", help="RDOQ's search lambda (default: derived from the "
                                 "model's training lambda and its decoder's gain)")),
}


def coding_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the quantizers' coding options (``--tcq-*``, ``--rdoq-lambda``); it receives
    the given ones as ``coding: dict`` of quantizer parameters (the rest default to the checkpoint's
    or the library's)."""
    sig = inspect.signature(command)
    extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=t)
             for k, (_, t, opt) in _CODING.items()]
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values() if p.name != "coding"]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        from lic.quantizers import QuantizerParamsError

        given = {_CODING[k][0]: kwargs.pop(k) for k in _CODING}
        coding = {k: v for k, v in given.items() if v is not None}
        try:
            command(**kwargs, coding=coding)
        except QuantizerParamsError:
            if "lambda_rdoq" in coding and kwargs.get("quantizer") != "rdoq":  # no checkpoint is RDOQ's own
                raise LicError("--rdoq-lambda needs --quantizer rdoq") from None
            if not coding:
                raise
            raise LicError("the --tcq-* options need --quantizer tcq (or a TCQ checkpoint)") from None

    wrapper.__signature__ = sig.replace(parameters=params + extra)  # type: ignore[attr-defined]
    return wrapper


def _images(images: Optional[Path], split: str) -> Path:
    from lic.data import default_images

    return images if images is not None else default_images(split)


data_app = typer.Typer(rich_markup_mode=None, help="The bundled photos (no subcommand), or a standard data set (get).")
app.add_typer(data_app, name="data")


@data_app.callback(invoke_without_command=True)
def data(ctx: typer.Context,
         out: Path = typer.Option(DATA_DIR, "-o", "--out", help="folder for bundled-train/ and bundled-test/")) -> None:
    """Write the bundled photos as PNG into OUT/bundled-train and OUT/bundled-test."""
    if ctx.invoked_subcommand is not None:
        return
    from lic.data import prepare_default_dataset, split_sizes

    prepare_default_dataset(out)
    n_train, n_test = split_sizes()
    typer.echo(f"{out}: {n_train} train and {n_test} test images")


@data_app.command("get")
def data_get(
    name: str = typer.Argument(..., metavar="NAME", help="kodak, tecnick, clic2020-professional-valid, clic2020-professional-train, "
                                         "div2k-train, bundled-train, bundled-test (and LIC_DATA_REGISTRY's)"),
    out: Path = typer.Option(..., "-o", "--out", help="folder for the images (empty, or holding this set already)"),
    mirror: Optional[str] = typer.Option(None, "--mirror", help="base URL serving the same file names "
                                         "(default: LIC_DATA_MIRROR); checksums are checked all the same"),
) -> None:
    """Download a standard data set (resumable, SHA-256 checked) and extract its images into OUT."""
    from lic.download import get
    from lic.sources import registry

    count = get(name, out, mirror=mirror)
    spec = registry()[name]
    typer.echo(f"{out}: {count} images ({spec.source}), for {spec.use}")


@app.command()
def train(
    lmbda: Optional[float] = typer.Option(None, "--lmbda", show_default=False,
                                          help="rate-distortion trade-off: loss = lmbda * 255^2 * MSE + bpp (required)"),
    out: Path = typer.Option(..., "-o", "--out", help="checkpoint to write (and resume from)"),
    quantizer: TrainedFor = typer.Option(ModelConfig.quantizer, "--quantizer",
                                         help="quantizer the model is trained for (its training surrogate; rdoq "
                                              "trains as usq)"),
    tcq_perturbation: Optional[Literal[PERTURBATIONS]] = typer.Option(  # type: ignore[valid-type]
        None, "--tcq-perturbation", help="TCQ's training surrogate: switch (default), uniform (width 2*delta) or "
                                         "union (width delta)"),
    tcq_delta: Optional[float] = _CODING["tcq_delta"][2],
    steps: int = typer.Option(TrainConfig.steps, "--steps", help="training steps"),
    channels: tuple[int, int] = typer.Option((ModelConfig.N, ModelConfig.M), "--channels", metavar="N M",
                                             help="N M: channels of the hyper and the latent transforms"),
    kind: str = typer.Option(
        "hyperprior", "--kind", metavar="KIND",
        help=f"model kind: {', '.join(KINDS)} (cheng2020 kinds have M = N), or a CompressAI class of your "
             "own as module:Class (docs: your own model)"),
    slices: int = typer.Option(ModelConfig.slices, "--slices",
                               help="channel slices of a channel-context model (implies --kind channel-context)"),
    context: Literal[CONTEXTS] = typer.Option(  # type: ignore[valid-type]
        ModelConfig.context, "--context", help="a channel-context model's training contexts"),
    images: Optional[Path] = Images,
    patch_size: int = typer.Option(TrainConfig.patch_size, "--patch-size", help="training patch side, a multiple of 64"),
    batch_size: int = typer.Option(TrainConfig.batch_size, "--batch-size", help="patches per step"),
    min_scale: float = typer.Option(TrainConfig.min_scale, "--min-scale",
                                    help="draw patches at random scales from MIN_SCALE to 1 (1: no rescaling)"),
    lr: float = typer.Option(TrainConfig.lr, "--lr", help="Adam learning rate, cut 10x at 70% and 90% of the steps"),
    seed: int = typer.Option(TrainConfig.seed, "--seed", help="seed of the noise and of the patch sampling"),
    checkpoint_every: int = typer.Option(TrainConfig.checkpoint_every, "--checkpoint-every",
                                         help="steps between checkpoints (what --resume continues from)"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT if it exists"),
    init: Optional[Path] = typer.Option(None, "--init", help="start from this checkpoint's weights (fine-tuning)"),
    device: str = Device,
    config: Optional[str] = typer.Option(None, "--config", metavar="JSON",
                                         help="the whole model and training configuration as JSON, as "
                                              "lic.config.dump_training writes it (the pipeline's torchrun "
                                              "workers get it so): replaces the model and training options"),
) -> None:
    """Phase 1: train a model end to end: a mean-scale hyperprior, or another kind (--kind)."""
    from lic.train import train as run

    qparams = {k: v for k, v in {"perturbation": tcq_perturbation, "delta": tcq_delta}.items() if v is not None}
    if qparams and quantizer != "tcq":
        raise LicError("--tcq-* options need --quantizer tcq")
    if config is not None:
        model_cfg, cfg = load_training(config)
        steps = cfg.steps
    elif lmbda is None:
        raise LicError("lic train needs --lmbda")
    else:
        model_cfg = ModelConfig(architecture=kind_architecture("channel-context" if slices else kind), N=channels[0],
                                M=channels[1], quantizer=quantizer, quantizer_params=qparams, slices=slices,
                                context=context)
        cfg = TrainConfig(lmbda=lmbda, steps=steps, batch_size=batch_size, patch_size=patch_size,
                          min_scale=min_scale, lr=lr, seed=seed, checkpoint_every=checkpoint_every, device=device)
    m = run(model_cfg, cfg, _images(images, "train"), out, resume=resume, init=init)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return
    if m:
        typer.echo(f"{out}: step {m['step']}, loss {m['loss']:.4f}, bpp {m['bpp']:.4f}, PSNR {m['psnr']:.2f} dB")
    else:
        typer.echo(f"{out}: already trained for {steps} steps")


@app.command("import")
def import_zoo(
    out: Path = typer.Option(..., "-o", "--out", help="checkpoint to write"),
    quality: Optional[int] = typer.Option(None, "--quality", help="zoo quality 1-8 (1-6 for cheng2020)"),
    architecture: Optional[Literal[ZOO]] = typer.Option(  # type: ignore[valid-type]
        None, "--architecture", help="CompressAI zoo model (default mbt2018-mean; cheng2020: qualities 1-6)"),
    mirror: Optional[str] = typer.Option(None, "--mirror", help="base URL serving the zoo's file names "
                                         "(default: LIC_ZOO_MIRROR), when torch.hub's cache lacks the file"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="instead of the zoo: CompressAI weights of your "
                                           "own (a state dict, or a checkpoint holding one), with --kind, "
                                           "--channels and --lmbda"),
    kind: Optional[str] = typer.Option(None, "--kind", metavar="KIND", help="with --weights: the model kind "
                                       "(default hyperprior), or module:Class (docs: your own model)"),
    channels: Optional[tuple[int, int]] = typer.Option(None, "--channels", metavar="N M", help="with --weights: N M"),
    lmbda: Optional[float] = typer.Option(None, "--lmbda", help="with --weights: the lambda they were trained at"),
) -> None:
    """Turn CompressAI's pretrained zoo weights (downloaded and cached by torch.hub), or weights of your
    own (--weights), into a checkpoint."""
    from lic import zoo

    if weights is not None:
        if quality is not None or architecture is not None or mirror is not None or channels is None or lmbda is None:
            raise LicError("--weights takes --kind, --channels N M and --lmbda, not the zoo's --quality, "
                           "--architecture or --mirror")
        cfg = ModelConfig(architecture=kind_architecture(kind or "hyperprior"), N=channels[0], M=channels[1])
        source = zoo.import_weights(weights, cfg, lmbda, out)
        typer.echo(f"{out}: {source['architecture']} (N={source['N']}, M={source['M']}, lambda {lmbda}) from {weights}")
        return
    if quality is None:
        raise LicError("lic import needs --quality (the zoo) or --weights (your own)")
    if kind is not None or channels is not None or lmbda is not None:
        raise LicError("--kind, --channels and --lmbda go with --weights; the zoo's models record their own")
    source = zoo.import_zoo(quality, out, architecture or "mbt2018-mean", mirror=mirror)
    typer.echo(f"{out}: {source['architecture']} quality {quality} (N={source['N']}, M={source['M']}, "
               f"lambda {source['lmbda']}) from {source['url']}")


@app.command()
@coding_options
def compress(
    image: Path = typer.Argument(..., metavar="IMAGE", help="image to code (any format Pillow reads)"),
    model: Path = typer.Option(..., "-m", "--model", help="checkpoint"),
    out: Path = typer.Option(..., "-o", "--out", help="output .lic file"),
    quantizer: Optional[Quantizer] = typer.Option(None, "--quantizer", help="default: the checkpoint's"),
    tables: Literal[TABLES] = Tables,  # type: ignore[valid-type]
    device: str = Device,
    *,
    coding: dict[str, Any],
) -> None:
    """Code one image into a .lic bitstream."""
    from lic.codec import Codec
    from lic.data import load_image

    rgb, notes = load_image(image)
    for note in notes:
        _warn(f"{image}: {note}")
    codec = Codec.from_checkpoint(model, device)
    data = codec.encode(rgb, codec.quantizer(quantizer, tables=tables, **coding)).data
    atomic_write_bytes(out, data)
    h, w = rgb.shape[:2]
    typer.echo(f"{out}: {len(data)} bytes, {len(data) * 8 / (h * w):.4f} bpp")


@app.command()
def decompress(
    stream: Path = typer.Argument(..., metavar="STREAM", help=".lic file"),
    model: Path = typer.Option(..., "-m", "--model", help="checkpoint the stream was made with"),
    out: Path = typer.Option(..., "-o", "--out", help="output PNG"),
    device: str = Device,
) -> None:
    """Decode a .lic bitstream to a PNG image (the header carries the quantizer and its parameters)."""
    import io

    from PIL import Image

    from lic.codec import Codec

    if not stream.is_file():
        raise LicError(f"{stream}: no such file")
    codec = Codec.from_checkpoint(model, device)
    rgb = codec.decode(stream.read_bytes())
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    typer.echo(f"{out}: {rgb.shape[1]}x{rgb.shape[0]}")


@app.command("eval")
@coding_options
def evaluate(
    out: Path = typer.Option(..., "-o", "--out", help="results JSON (a per-image CSV goes beside it)"),
    model: Optional[list[Path]] = typer.Option(None, "-m", "--model", metavar="CKPT",
                                               help="checkpoint; repeat for a curve, one point each"),
    codec: Optional[Literal[CLASSICAL_CODECS]] = typer.Option(  # type: ignore[valid-type]
        None, "--codec", help="a Pillow codec instead of a model"),
    qualities: str = typer.Option(",".join(map(str, EvaluateConfig.qualities)), "--qualities",
                                  help="--codec's quality sweep, comma-separated (Pillow's 0-100)"),
    images: Optional[Path] = typer.Option(None, "--images", help="test images (default: the bundled held-out photos)"),
    quantizer: Optional[Quantizer] = typer.Option(None, "--quantizer", help="default: each checkpoint's own"),
    name: Optional[str] = typer.Option(None, "--name", help="curve name in the JSON"),
    tables: Literal[TABLES] = Tables,  # type: ignore[valid-type]
    device: str = Device,
    *,
    coding: dict[str, Any],
) -> None:
    """Evaluate checkpoints (or a Pillow codec) on real bitstreams: bpp from the bytes, PSNR, MS-SSIM."""
    from lic.data import list_images
    from lic.evaluate import evaluate_checkpoints, evaluate_codec

    if bool(model) == bool(codec):
        raise LicError("give either -m CHECKPOINT (one or more) or --codec jpeg|webp|avif")
    files = list_images(_images(images, "test"))
    if codec:
        try:
            qs = [int(q) for q in qualities.split(",")]
        except ValueError:
            raise LicError(f"--qualities must be comma-separated integers, got {qualities!r}") from None
        ev = evaluate_codec(codec, files, qs)
    else:
        params = {**coding, **({"tables": tables} if tables != "fitted" else {})}
        ev = evaluate_checkpoints(list(model), files, quantizer, device, name=name or "lic", quantizer_params=params)
    if name:
        ev.name = name
    for image, notes in ev.notes.items():
        for note in notes:
            _warn(f"{image}: {note}")
    for image, reason in ev.failed.items():
        typer.echo(f"skipped {image}: {reason}", err=True)
    csv_path = ev.write(out)
    res = ev.to_json()["results"]
    for point, bpp, p, s in zip(ev.points(), res["bpp"], res["psnr-rgb"], res["ms-ssim-rgb"]):
        typer.echo(f"{point}: {bpp:.4f} bpp, {p:.2f} dB PSNR, {s:.4f} MS-SSIM")
    typer.echo(f"wrote {out} and {csv_path} ({len(ev.rows)} coded images, {len(ev.failed)} skipped)")


@app.command()
def bdrate(
    anchor: Path = typer.Argument(..., metavar="ANCHOR", help="anchor results JSON"),
    test: Path = typer.Argument(..., metavar="TEST", help="test results JSON"),
    metric: Literal["psnr-rgb", "ms-ssim-rgb"] = typer.Option("psnr-rgb", "--metric", help="quality metric"),
    method: Literal[BD_METHODS] = typer.Option(  # type: ignore[valid-type]
        "pchip", "--method", help="interpolation (akima needs 4+ points)"),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="also write it to this JSON (dvc metrics)"),
    ci: bool = typer.Option(False, "--ci", help="add a 95% jackknife t-interval over images (from the per-image "
                                               "CSVs lic eval writes beside the JSONs)"),
    points: Optional[int] = typer.Option(None, "--points", min=2, help="only each curve's N lowest-rate points "
                                         "(e.g. 3: leave out a top point that folds)"),
) -> None:
    """Print the BD-rate (percent; negative saves rate) of TEST against ANCHOR."""
    import json

    from lic.bdrate import bd_rate, bd_rate_ci, has_per_image, load_per_image

    value = bd_rate(anchor, test, metric, method, points)
    record = {"anchor": str(anchor), "test": str(test), "metric": metric, "method": method, "points": points,
              "bd_rate_percent": value}
    if ci:
        iv = bd_rate_ci(load_per_image(anchor, metric, points), load_per_image(test, metric, points), method)
        typer.echo(f"{value:.2f} [{iv.low:.2f}, {iv.high:.2f}] ({iv.describe()})")
        record |= {"ci": [iv.low, iv.high], "level": iv.level, "per_image": iv.per_image, "defined": iv.defined,
                   "wilcoxon_p": iv.wilcoxon_p}
    else:
        missing = [str(p) for p in (anchor, test) if not has_per_image(p)]
        note = (f" (mean curves; no interval: {' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} no "
                "per-image results, which an interval over images needs)") if missing else ""
        typer.echo(f"{value:.2f}{note}")
    if metrics:
        atomic_write_bytes(metrics, (json.dumps(record, indent=2) + "\n").encode())


tables_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="Entropy tables fitted to a quantizer's own decisions (the analytic ones stay the control).")
app.add_typer(tables_app, name="tables")


@tables_app.command("fit")
@coding_options
def tables_fit(
    model: Path = typer.Option(..., "-m", "--model", help="checkpoint whose quantizer's tables are fitted"),
    out: Path = typer.Option(..., "-o", "--out", help="checkpoint to write: the model with its fitted tables"),
    quantizer: Quantizer = typer.Option(..., "--quantizer", help="the quantizer they are fitted to (rdoq, tcq)"),
    images: Optional[Path] = typer.Option(None, "--images", help="training images (default: the bundled ones); "
                                          "never the images you evaluate on"),
    max_images: int = typer.Option(16, "--max-images", help="fit on at most this many of them"),
    rounds: int = typer.Option(4, "--rounds", help="rounds of search and refit"),
    device: str = Device,
    *,
    coding: dict[str, Any],
) -> None:
    """Fit a checkpoint's entropy tables to its quantizer's decisions on training images; its streams
    then name the tables, and only a checkpoint holding them decodes those."""
    from lic.refit import fit_checkpoint

    r = fit_checkpoint(model, out, quantizer, coding, _images(images, "train"), max_images, rounds, device)
    typer.echo(f"{out}: {r['quantizer']} tables fitted on {r['images']} images in {r['rounds']} rounds "
               f"(digest {r['digest']})")


latents_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                          help="Phase 2: datasets of truly quantized latents; make, show and compare them.")
app.add_typer(latents_app, name="latents")
app.add_typer(latents_app, name="datasets", hidden=True)  # the older name of show and diff


@latents_app.command("make")
@coding_options
def latents_make(
    model: Path = typer.Option(..., "-m", "--model", help="checkpoint whose encoder and hyper networks are used"),
    out: Path = typer.Option(..., "-o", "--out", help="Zarr group to write"),
    quantizer: Optional[Quantizer] = typer.Option(None, "--quantizer", help="default: the checkpoint's"),
    images: Optional[Path] = typer.Option(None, "--images", help="training images (default: the bundled ones)"),
    patches: int = typer.Option(LatentsConfig.patches, "--patches", help="random training patches to quantize"),
    patch_size: int = typer.Option(LatentsConfig.patch_size, "--patch-size", help="patch side, a multiple of 64"),
    seed: int = typer.Option(LatentsConfig.seed, "--seed", help="seed of the patch sampling (chunk i: seed, i)"),
    chunk: int = typer.Option(LatentsConfig.chunk, "--chunk", help="samples per Zarr chunk"),
    resume: bool = typer.Option(False, "--resume", help="complete an interrupted dataset"),
    shard: str = typer.Option("0/1", "--shard", metavar="I/N",
                              help="write shard I of N (whole chunks); run N of them, in any order or at once"),
    device: str = Device,
    *,
    coding: dict[str, Any],
) -> None:
    """Quantize training patches with the real quantizer and store them as a Zarr v3 group."""
    from lic.latents import is_complete, make_latents

    i, sep, n = shard.partition("/")
    if not (sep and i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise LicError(f"--shard must be I/N with 0 <= I < N, got {shard!r}")
    cfg = LatentsConfig(patches=patches, patch_size=patch_size, chunk=chunk, seed=seed, device=device)
    make_latents(model, out, _images(images, "train"), quantizer, coding, cfg, resume, shard=(int(i), int(n)))
    done = "complete" if is_complete(out) else f"shard {i}/{n} done; the group completes with its last shard"
    typer.echo(f"{out}: {patches} samples, {done}")


@latents_app.command("show")
def latents_show(path: Path = typer.Argument(..., metavar="PATH", help="latent dataset (Zarr group)")) -> None:
    """Print a dataset's provenance and index statistics (JSON)."""
    import json

    from lic.datasets import describe

    typer.echo(json.dumps(describe(path), indent=2))


@latents_app.command("diff")
def latents_diff(a: Path = typer.Argument(..., metavar="A", help="latent dataset"),
                 b: Path = typer.Argument(..., metavar="B", help="latent dataset to compare with A")) -> None:
    """Compare two datasets: provenance, index statistics, differing indices (JSON)."""
    import json

    from lic.datasets import diff

    typer.echo(json.dumps(diff(a, b), indent=2))


@app.command()
def retrain(
    mode: Literal[RETRAIN_MODES] = typer.Argument(  # type: ignore[valid-type]
        ..., metavar="MODE", help="decoder (phase 3), hyper-decoder (phase 4), or their controls of as many steps "
                                  "on the training surrogate: control (of phase 3), hyper-control (of phase 4)"),
    model: Path = typer.Option(..., "-m", "--model", help="checkpoint to start from"),
    latents: Path = typer.Option(..., "--latents", help="latent dataset (Zarr group)"),
    out: Path = typer.Option(..., "-o", "--out", help="new checkpoint (metrics go to OUT.json)"),
    steps: int = typer.Option(RetrainConfig.steps, "--steps", help="retraining steps"),
    batch_size: int = typer.Option(RetrainConfig.batch_size, "--batch-size", help="patches per step"),
    lr: float = typer.Option(RetrainConfig.lr, "--lr", help="Adam learning rate (constant)"),
    lmbda: Optional[float] = typer.Option(RetrainConfig.lmbda, "--lmbda",
                                          help="hyper-decoder's and hyper-control's rate-distortion weight "
                                               "(default: the checkpoint's)"),
    seed: int = typer.Option(RetrainConfig.seed, "--seed", help="seed of the batches (and the control's noise)"),
    allow_stale: bool = typer.Option(RetrainConfig.allow_stale, "--allow-stale",
                                     help="use a dataset made with other weights (recorded)"),
    strategy: Literal[STRATEGIES] = typer.Option(  # type: ignore[valid-type]
        RetrainConfig.strategy, "--strategy",
        help="hyper-decoder's indices: online (quantize every batch again) or stale (the dataset's)"),
    weighting_every: int = typer.Option(RetrainConfig.weighting_every, "--weighting-every",
                                        help="online TCQ: steps between refreshes of the decoder weighting"),
    validation: float = typer.Option(RetrainConfig.validation, "--validation",
                                     help="fraction of patches held out; keep the weights best on them"),
    validate_every: int = typer.Option(RetrainConfig.validate_every, "--validate-every",
                                       help="steps between validations"),
    checkpoint_every: int = typer.Option(RetrainConfig.checkpoint_every, "--checkpoint-every",
                                         help="steps between the states --resume continues from"),
    lookahead: bool = typer.Option(RetrainConfig.lookahead, "--lookahead",
                                   help="online: search the next batch while this step runs (one step stale)"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT if it exists"),
    device: str = Device,
) -> None:
    """Phases 3/4: retrain the decoder (or hyper-decoder + decoder) on truly quantized latents."""
    from lic.retrain import retrain as run

    cfg = RetrainConfig(mode=mode, steps=steps, batch_size=batch_size, lr=lr, lmbda=lmbda, seed=seed,
                        device=device, allow_stale=allow_stale, strategy=strategy,
                        weighting_every=weighting_every, validation=validation, validate_every=validate_every,
                        checkpoint_every=checkpoint_every, lookahead=lookahead)
    rec = run(cfg, model, latents, out, resume=resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return
    stale = " (stale dataset)" if rec["stale"] else ""
    mode += f" ({strategy} indices)" if mode == "hyper-decoder" else ""
    best = f", kept step {rec['validation']['best_step']} (validation)" if "validation" in rec else ""
    typer.echo(f"{out}: {mode}, {steps} steps, last batch PSNR {rec['psnr']:.2f} dB{stale}{best}")


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and turns errors into one line and an exit code."""
    warnings.formatwarning = _one_line_warning
    try:
        code = typer.main.get_command(app).main(argv, prog_name="lic", standalone_mode=False,
                                                auto_envvar_prefix=ENVVAR_PREFIX)
    except LicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted (lic train, lic latents make and lic retrain continue with --resume)", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click's usage errors
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            message = exc.format_message().replace("Value error, ", "")  # typer's wording of a bad choice
            print(f"error: {message}{hint}", file=sys.stderr)
            sys.exit(exc.exit_code)
        if os.environ.get("LIC_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set LIC_DEBUG=1 for a traceback)", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
