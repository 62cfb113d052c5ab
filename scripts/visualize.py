"""Draws where each token learned by a TokenLearner model looks in an image.

    python scripts/visualize.py --model tl_vit_tiny_patch16_224_8at6 --image photo.jpg --output maps.png
    python scripts/visualize.py --model local-dir:RUN/model --image digit.png --output maps.png --gif
    python scripts/visualize.py --model local-dir:runs/digits/model --digit 0 --output maps.png
    python scripts/visualize.py --model tl_vit_nano_patch4_32_8at2.cifar10 --pretrained --image a.jpg b.jpg

The PNG shows the input (as the model's preprocessing crops it) and each token's map over it, one panel per
token, one row per TokenLearner (one per block for TokenFuser models), each image's rows below the previous
image's; ``--gif`` also writes an animation with one frame per block. Without ``--image`` the sample photo
that scikit-learn ships is used.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from tl_models.registry import VariantConfigError
from tl_models.registry.options import add_variants_option, register_variant_files
from tl_models.visualize import (
    SAMPLE_IMAGE,
    VisualizationError,
    digit_image,
    load_image,
    load_model,
    names_weights,
    sample_image,
    save_token_maps,
)

GIF_BESIDE_OUTPUT = ''  # the value of a bare --gif: the output's name with .gif


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True,
                        help="a registered model (timm.list_models('tl_*')), hf-hub:ORG/REPO or local-dir:PATH")
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--image', type=Path, nargs='+',
                        help=f"the image(s); default: scikit-learn's sample photo {SAMPLE_IMAGE}")
    source.add_argument('--digit', type=int, metavar='INDEX',
                        help='use held-out digit INDEX of the digits data the default training run learns from')
    parser.add_argument('--output', type=Path, default=Path('maps.png'), help='the PNG to write (default: %(default)s)')
    parser.add_argument('--gif', nargs='?', const=GIF_BESIDE_OUTPUT, metavar='PATH',
                        help='also write a GIF with one frame per block (default path: the output with .gif)')
    parser.add_argument('--pretrained', action='store_true',
                        help='load the default weights of a registered model name (hf-hub:/local-dir: always do)')
    parser.add_argument('--cmap', default='jet', help='matplotlib colour map of the maps (default: %(default)s)')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='opacity of the maps over the image, 0..1 (default: %(default)s)')
    parser.add_argument('--panel-size', type=int, default=160,
                        help='longer side of each panel in pixels (default: %(default)s)')
    parser.add_argument('--frame-ms', type=int, default=800,
                        help='milliseconds each GIF frame shows (default: %(default)s)')
    add_variants_option(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    gif = args.output.with_suffix('.gif') if args.gif == GIF_BESIDE_OUTPUT else args.gif
    try:
        register_variant_files(args.variants)
        model = load_model(args.model, pretrained=True if args.pretrained else None)
        if not (args.pretrained or names_weights(args.model)):
            print(f'note: {args.model} has random weights (pass --pretrained for its default weights, '
                  'or a local-dir:/hf-hub: model)', file=sys.stderr)
        if args.digit is not None:
            image = digit_image(args.digit)
        else:
            image = sample_image() if args.image is None else [load_image(path) for path in args.image]
        written = save_token_maps(model, image, args.output, gif=gif, cmap=args.cmap, alpha=args.alpha,
                                  panel_size=args.panel_size, frame_ms=args.frame_ms)
    except (VisualizationError, VariantConfigError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for path in written:
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
