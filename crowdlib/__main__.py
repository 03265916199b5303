"""``python -m crowdlib``: count people in images, list the model zoo, train or re-measure a zoo model.

    python -m crowdlib count IMG_OR_DIR... [--model NAME] [--out DIR] [--json] [--threshold T]
    python -m crowdlib models [--json]
    python -m crowdlib train RECIPE
    python -m crowdlib evaluate NAME

``count`` prints one line per image (``path<TAB>count``) or, with ``--json``, one JSON list; with ``--out`` it also
writes ``<stem>_overlay.png`` per image (points or boxes drawn, the count in the corner) and ``counts.csv``. A
folder counts every image in it (sorted); files that are missing, unreadable or not images are named on stderr,
the others are still counted, and the exit status is 1. An unknown model name exits with status 2.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _expand(items: list[str]) -> list[Path]:
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out


def _overlay(path: Path, image: Any, res: dict[str, Any]) -> None:
    from PIL import Image, ImageDraw

    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    if "boxes" in res and len(res["boxes"]):
        for x0, y0, x1, y1 in res["boxes"].tolist():
            draw.rectangle([x0, y0, x1, y1], outline=(255, 40, 40), width=2)
    else:
        for x, y in res["points"].tolist():
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(255, 40, 40), width=2)
    label = f"count {res['count']:.0f}" if isinstance(res["count"], float) else f"count {res['count']}"
    draw.rectangle([0, 0, 8 * len(label) + 12, 22], fill=(0, 0, 0))
    draw.text((6, 5), label, fill=(255, 255, 255))
    im.save(path)


def cmd_count(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from crowdlib.counter import load_image, predict_one
    from crowdlib.zoo import UnknownModelError, load_model

    try:
        zm = load_model(args.model, device=args.device)
    except UnknownModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = _expand(args.images)
    if not files:
        print("error: no images given (or the folders hold none)", file=sys.stderr)
        return 1
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    rows, bad = [], []
    for path in tqdm(files, desc="count", disable=len(files) <= 3 or args.json, file=sys.stderr):
        try:
            image = load_image(path)
        except (OSError, ValueError) as exc:  # FileNotFoundError and ImageReadError are OSErrors
            bad.append((path, exc))
            print(f"error: {exc}", file=sys.stderr)
            continue
        res = predict_one(zm, image, args.threshold, tile=args.tile, overlap=args.overlap)
        rows.append({"image": str(path), "count": res["count"], "heads": int(len(res["points"])),
                     "model": zm.name, "threshold": res["threshold"], "seconds": round(res["seconds"], 3)})
        if args.out:
            _overlay(Path(args.out) / f"{path.stem}_overlay.png", image, res)
        if not args.json:
            c = res["count"]
            print(f"{path}\t{c:.1f}" if isinstance(c, float) else f"{path}\t{c}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    if args.out:
        with open(Path(args.out) / "counts.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["image", "count", "heads", "model", "threshold", "seconds"])
            w.writeheader()
            w.writerows(rows)
    if bad:
        print(f"{len(bad)} of {len(files)} file(s) could not be counted: " + ", ".join(str(p) for p, _ in bad),
              file=sys.stderr)
        return 1
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from crowdlib.zoo import list_models

    cards = list_models()
    if args.json:
        print(json.dumps([c.to_dict() for c in cards], indent=2))
        return 0
    if not cards:
        print("the zoo is empty (weights/MODELS.json is missing)")
        return 0
    for c in cards:
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in c.metrics.items())
        print(f"{c.name}  [{c.kind}, {c.size_bytes / 1e6:.1f} MB]  {c.data}\n    {metrics} on {c.metrics_on}; "
              f"{c.seconds_per_image:.2f} s per 1024x768 image on the 2-core CPU")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from crowdlib.recipes import RECIPES, train_recipe

    if args.recipe not in RECIPES:
        print(f"error: unknown recipe {args.recipe!r}; recipes: {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    card = train_recipe(args.recipe, result_file=args.result, trained_at=args.trained_at, notes=args.notes or "")
    print(json.dumps(card.to_dict(), indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from crowdlib.recipes import measure
    from crowdlib.zoo import UnknownModelError, model_card

    try:
        card = model_card(args.name)
    except UnknownModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics, on = measure(args.name)
    print(f"{args.name} on {on}:")
    for k, v in metrics.items():
        print(f"  {k:12s} {v:10.3f}   (MODELS.md: {card.metrics.get(k, float('nan')):.3f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m crowdlib", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("count", help="count people in images or folders of images")
    c.add_argument("images", nargs="+", help="image files or folders (every image in a folder is counted)")
    c.add_argument("--model", default="sdnet-shb", help="zoo model name (see `python -m crowdlib models`)")
    c.add_argument("--out", help="folder for <stem>_overlay.png per image and counts.csv")
    c.add_argument("--json", action="store_true", help="print one JSON list instead of a line per image")
    c.add_argument("--threshold", type=float, default=None,
                   help="score / confidence threshold (default: the one the recipe chose on validation)")
    c.add_argument("--tile", type=int, default=1024, help="largest tile side in px; larger images are tiled")
    c.add_argument("--overlap", type=int, default=128, help="px shared by neighbouring tiles")
    c.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    c.set_defaults(fn=cmd_count)
    m = sub.add_parser("models", help="list the model zoo (data, metrics, size)")
    m.add_argument("--json", action="store_true", help="the cards as JSON")
    m.set_defaults(fn=cmd_models)
    t = sub.add_parser("train", help="train (or take from the cache) a recipe's model and write it to weights/")
    t.add_argument("recipe", help="recipe name (crowdlib.recipes.RECIPES)")
    t.add_argument("--result", help="use this training-result checkpoint (made with the recipe's config)")
    t.add_argument("--trained-at", help="with --result: the git SHA that trained it")
    t.add_argument("--notes", help="a note for the model's card")
    t.set_defaults(fn=cmd_train)
    e = sub.add_parser("evaluate", help="re-measure a shipped model's metrics on its recipe's held-out images")
    e.add_argument("name", help="zoo model name")
    e.set_defaults(fn=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
