"""Command line: ``python -m cnnviz_widgets demo --out DIR`` (also ``cnnviz-demo``).

Writes figures of the bundled demo model (no download needed) into a folder and prints where:
its kernels, the feature maps of every conv layer for sample images, class activation maps
when the CAM engine is installed, and ``explorer.html``: the interactive explorer as one
self-contained page (works offline, no kernel).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cnnviz-widgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="write figures of the bundled demo model")
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    demo.add_argument("--images", type=int, default=2, help="how many sample images")
    args = parser.parse_args(argv)
    if args.command == "demo":
        paths = write_demo_figures(args.out, n_images=args.images)
        paths.append(write_demo_page(args.out))
        print(f"Wrote {len(paths)} figures of the demo model to {args.out.resolve()}/")
        for path in paths:
            print(f"  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
