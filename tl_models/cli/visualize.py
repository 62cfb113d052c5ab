"""Draws where each token learned by a TokenLearner model looks in an image.

    tl-visualize --model tl_vit_tiny_patch16_224_8at6 --image photo.jpg --output maps.png
    tl-visualize --model local-dir:RUN/model --image digit.png --output maps.png --gif
    tl-visualize --model local-dir:runs/digits/model --digit 0 --output maps.png
    tl-visualize --model tl_vit_nano_patch4_32_8at2.cifar10 --pretrained --image a.jpg b.jpg
    tl-visualize --model tl_vivit_pico_patch4_32_8f_8at2 --clip clip.npy --output maps.png
    tl-visualize --model tl_vivit_pico_patch4_32_8f_8at2 --clip frames/ --gif tokens.gif

The PNG shows the input (as the model's preprocessing crops it) and each token's map over it, one panel per
token, one row per TokenLearner (one per block for TokenFuser models), each image's rows below the previous
image's; ``--gif`` also writes an animation with one frame per block. Without ``--image`` the sample photo
that scikit-learn ships is used.

A video model (tl_vivit_*) takes ``--clip``: a .npy file [T, H, W, 3] uint8 or a folder of frame images (in name
order), of which the model's T frames are taken evenly. It always writes the GIF (default: the output with .gif),
one GIF frame per clip frame with its time step's token maps over it, and the PNG with the first frame of each
time step.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from tl_models.data import model_input
from tl_models.registry import VariantConfigError
from tl_models.registry.options import add_variants_option, register_variant_files
from tl_models.visualize import (
    SAMPLE_IMAGE,
    VisualizationError,
    digit_image,
    load_clip,
    load_image,
    load_model,
    moving_digit_clip,
    names_weights,
    sample_image,
    save_token_maps,
    save_video_token_maps,
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
                        help='use held-out digit INDEX of the digits data the default training run learns from '
                             '(for a video model: held-out moving-digits clip INDEX)')
    source.add_argument('--clip', type=Path, metavar='PATH',
                        help='for a video model: a .npy file [T, H, W, 3] uint8 or a folder of frame images')
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
    parser.add_argument('--frame-ms', type=int,
                        help='milliseconds each GIF frame shows (default: 800, 200 for a clip)')
    add_variants_option(parser)
    return parser.parse_args(argv)


def frame_ms(args: argparse.Namespace, default: int) -> int:
    """--frame-ms, or ``default`` when it is not given."""
    return default if args.frame_ms is None else args.frame_ms


def read_clip(args: argparse.Namespace) -> np.ndarray:
    """The clip a video model is drawn on, ``[T, H, W, 3]`` uint8: from ``--clip``, or held-out moving-digits
    clip ``--digit``.

    Raises:
        VisualizationError: neither given, or a clip that is not one.
    """
    if args.digit is not None:
        return moving_digit_clip(args.digit)
    if args.clip is None:
        raise VisualizationError(f'{args.model} is a video model: give a clip with --clip PATH (a .npy file '
                                 '[T, H, W, 3] uint8 or a folder of frame images) or --digit INDEX (a held-out '
                                 'moving-digits clip)')
    return load_clip(args.clip)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    gif = args.output.with_suffix('.gif') if args.gif == GIF_BESIDE_OUTPUT else args.gif
    style = dict(cmap=args.cmap, alpha=args.alpha, panel_size=args.panel_size)
    try:
        register_variant_files(args.variants)
        model = load_model(args.model, pretrained=True if args.pretrained else None)
        if not (args.pretrained or names_weights(args.model)):
            print(f'note: {args.model} has random weights (pass --pretrained for its default weights, '
                  'or a local-dir:/hf-hub: model)', file=sys.stderr)
        if model_input(model).is_video:
            if args.image is not None:
                raise VisualizationError(f'{args.model} is a video model: expected --clip or --digit, not --image')
            source = f'moving digits, held-out clip {args.digit}' if args.digit is not None else str(args.clip)
            written = save_video_token_maps(model, read_clip(args), gif or args.output.with_suffix('.gif'),
                                            args.output, frame_ms=frame_ms(args, 200), source=source,
                                            **style)
        elif args.clip is not None:
            raise VisualizationError(f'{args.model} is an image model: --clip needs a video model '
                                     "(timm.list_models('tl_vivit_*'))")
        else:
            if args.digit is not None:
                image = digit_image(args.digit)
            else:
                image = sample_image() if args.image is None else [load_image(path) for path in args.image]
            written = save_token_maps(model, image, args.output, gif=gif, frame_ms=frame_ms(args, 800), **style)
    except (VisualizationError, VariantConfigError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for path in written:
        print(f'wrote {path}')
    return 0




if __name__ == '__main__':
    sys.exit(main())
