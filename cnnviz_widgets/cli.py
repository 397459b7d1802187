"""Command line: ``python -m cnnviz_widgets demo --out DIR`` (also ``cnnviz-demo``).

``demo`` writes figures of the bundled demo model (no download needed) into a folder and prints
where: its kernels, the feature maps of every conv layer for sample images, class activation
maps when the CAM engine is installed, and ``explorer.html``: the interactive explorer as one
self-contained page (works offline, no kernel).

``top-examples`` finds, for every channel of some layers, the images of a folder that excite it
most, and writes them to one file that ``TopExamples.load`` reads. It runs alone or under
torchrun (each process reads its own shard; only rank 0 writes)::

    python -m cnnviz_widgets top-examples --model resnet50 --weights DEFAULT --data DIR \
        --layers layer3.5,layer4.2 --k 9 --out examples.npz
    torchrun --nproc_per_node=4 -m cnnviz_widgets top-examples ...
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any


def write_demo_figures(out: Path, n_images: int = 2) -> list[Path]:
    """Render the demo model's kernels and feature maps as PNG files in ``out``.

    Returns:
        The written paths, in the order they were written.
    """
    import numpy as np

    from .demo import demo_model
    from .engine import conv_layers
    from .engine.cam import cam
    from .render.plots import plot_feature_maps, plot_kernels, show_cam

    out.mkdir(parents=True, exist_ok=True)
    demo = demo_model()
    written: list[Path] = []

    def save(fig, name: str) -> None:
        path = out / name
        fig.savefig(path, dpi=110)
        written.append(path)

    layers = list(conv_layers(demo.model))
    for i, layer in enumerate(layers):
        save(plot_kernels(demo.model, layer), f"kernels_{i}_{layer.replace('.', '-')}.png")
    for k in range(min(n_images, len(demo.samples))):
        image = demo.samples[k]
        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        x = demo.transform(image)[None]
        label = demo.classes[int(demo.sample_labels[k])]
        for i, layer in enumerate(layers):
            fig = plot_feature_maps(demo.model, x, layer, image=rgb)
            fig.suptitle(f"sample {k} ({label})")
            save(fig, f"feature_maps_sample{k}_{i}_{layer.replace('.', '-')}.png")
        methods = ("GradCAM", "GradCAMPlusPlus", "XGradCAM", "ScoreCAM", "EigenCAM", "FullGrad")
        maps = {m: cam(demo.model, x, layers[-1], m) for m in methods}
        fig = show_cam(rgb, maps, ncols=3)
        fig.suptitle(f"sample {k} ({label}): where the model looks, layer {layers[-1]}")
        save(fig, f"cam_sample{k}.png")
    return written


def write_demo_page(out: Path) -> Path:
    """Write ``explorer.html``: the LayerExplorer of the demo model as one offline page."""
    from .widgets import LayerExplorer

    return LayerExplorer(background=False).save_html(out / "explorer.html")


class CommandError(Exception):
    """A command-line mistake; printed as one line, exit status 2."""


def load_model(spec: str, weights: str | None, seed: int) -> tuple[Any, Any]:
    """``(model, weights entry or None)`` for ``--model``/``--weights``/``--seed``.

    ``spec`` is a torchvision model name (``resnet50``), or ``package.module:function``: the
    function is called without arguments after ``torch.manual_seed(seed)`` and returns the
    model (or an object whose ``.model`` is one, like ``cnnviz_widgets.demo:demo_model``).
    ``weights``: ``DEFAULT``, a weights name, or ``none`` (random weights from ``seed``, the same
    in every process); an import path's function chooses its own weights.
    """
    import torch
    from torch import nn

    from .engine import build_model

    none = weights is None or weights.lower() == "none"
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if weights is not None and not none:
            raise CommandError(
                f"--weights {weights} applies to torchvision model names; {spec} builds its own "
                "weights. Leave --weights out (or pass --weights none)."
            )
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as err:
            raise CommandError(f"Cannot import {spec}: {err}.") from err
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            built = obj()
        model = getattr(built, "model", built)
        if not isinstance(model, nn.Module):
            raise CommandError(
                f"{spec}() returned {type(built).__name__}, not a torch model (nn.Module)."
            )
        return model.eval(), None
    try:
        named = build_model(spec, weights=None if none else weights, seed=seed)
    except ValueError as err:
        raise CommandError(str(err)) from err
    if named.note:
        raise CommandError(
            named.note.replace("using random weights", "stopping")
            + " Put the weights in torch's hub cache, or pass --weights none for a random model."
        )
    return named.model, named.weights


def top_examples_command(args: argparse.Namespace) -> int:
    """Run ``top-examples``: alone, or as one process of a torchrun job."""
    import torch
    import torch.distributed as dist

    from .engine.examples import top_examples

    if args.threads:
        torch.set_num_threads(args.threads)
    started = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and args.device in (None, "cuda")
        dist.init_process_group("nccl" if use_cuda else "gloo")
        started = True
    try:
        rank = dist.get_rank() if dist.is_initialized() else 0
        device = args.device
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and dist.is_initialized():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        model, weights = load_model(args.model, args.weights, args.seed)
        layers = [name for name in args.layers.split(",") if name] if args.layers else None
        result = top_examples(
            model.to(device),
            args.data,
            layers,
            k=args.k,
            score=args.score,
            batch_size=args.batch_size,
            num_workers=args.workers,
            weights=weights,
            size=args.size,
            checkpoint=args.checkpoint,
            progress=not args.quiet,
        )
        if rank == 0:
            path = result.save(args.out)
            channels = sum(result.channels(name) for name in result.layers)
            print(
                f"Wrote the top {result.k} examples of {channels} channels in "
                f"{len(result.layers)} layer(s) over {result.meta['data']['length']} images "
                f"to {path}"
            )
    finally:
        if started:
            dist.destroy_process_group()
    return 0


def _add_top_examples(sub: Any) -> None:
    cmd = sub.add_parser(
        "top-examples",
        help="the images of a folder that excite each channel most (alone or under torchrun)",
        description=(
            "For every channel of the chosen layers, the k images of a folder that excite it "
            "most, written to one file that cnnviz_widgets.TopExamples.load reads. Under "
            "torchrun each process reads its own shard and only rank 0 writes."
        ),
    )
    cmd.add_argument("--model", required=True, help="torchvision name, or package.module:function")
    cmd.add_argument(
        "--weights",
        default=None,
        help="DEFAULT, a weights name, or none (random, from --seed); torchvision names only "
        "(default: DEFAULT)",
    )
    cmd.add_argument("--data", required=True, help="folder of images (class sub-folders or flat)")
    cmd.add_argument("--layers", default="", help="comma-separated names (default: every conv)")
    cmd.add_argument("--k", type=int, default=9, help="examples per channel (default 9)")
    cmd.add_argument("--score", choices=("max", "mean"), default="max")
    cmd.add_argument("--out", type=Path, required=True, help="the file to write (.npz)")
    cmd.add_argument("--size", type=int, default=None, help="input side when no weights give it")
    cmd.add_argument("--seed", type=int, default=0, help="seed of random weights (default 0)")
    cmd.add_argument("--batch-size", type=int, default=None, help="images per batch (default 32)")
    cmd.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    cmd.add_argument("--checkpoint", type=Path, default=None, help="resume file, saved as it goes")
    cmd.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    cmd.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cnnviz-widgets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="write figures of the bundled demo model")
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    demo.add_argument("--images", type=int, default=2, help="how many sample images")
    _add_top_examples(sub)
    args = parser.parse_args(argv)
    if args.command == "top-examples":
        from .engine import ImageInputError, LayerNotExecutedError, LayerNotFoundError
        from .engine.examples import ExamplesError

        if args.weights is None and ":" not in args.model:
            args.weights = "DEFAULT"
        try:
            return top_examples_command(args)
        except (
            CommandError,
            ExamplesError,
            ImageInputError,
            LayerNotFoundError,
            LayerNotExecutedError,
            FileNotFoundError,
        ) as err:
            print(f"cnnviz-widgets top-examples: error: {err}", file=sys.stderr)
            return 2
    if args.command == "demo":
        paths = write_demo_figures(args.out, n_images=args.images)
        paths.append(write_demo_page(args.out))
        print(f"Wrote {len(paths)} figures of the demo model to {args.out.resolve()}/")
        for path in paths:
            print(f"  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
