"""Evaluate a model: top-1/top-5, loss and images per second, as a table and as JSON.

    tl-validate runs/digits                      # a training run (its exported model/)
    tl-validate runs/digits/checkpoints/best.safetensors --ema
    tl-validate local-dir:runs/digits/model --json metrics.json
    tl-validate tl_vit_base_patch16_224_8at6.vit_augreg2_in21k_ft_in1k --pretrained --data-dir IMAGENET
    tl-validate runs/moving_digits               # a video model: on the moving digits' clips
Default data: the held-out split of scikit-learn's digits (moving digits for video models).
"""
import argparse
import json
import sys
from pathlib import Path

import tl_models  # noqa: F401  (registers the tl_ models with timm)
from tl_models.data import ConfigError, DataConfig
from tl_models.evaluate import validate
from tl_models.io import write_json
from tl_models.registry import VariantConfigError
from tl_models.registry.options import add_variants_option, register_variant_files
from tl_models.weights import CheckpointError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='run folder, training checkpoint, hf-hub:/local-dir: name or model name[.tag]')
    parser.add_argument('--pretrained', action='store_true', help="model names: load the tag's pretrained weights")
    parser.add_argument('--ema', action='store_true', help='checkpoints: evaluate the EMA weights')
    parser.add_argument('--dataset', default='', help="'digits' (default without --data-dir), 'folder' or a timm name; "
                        "video models: 'moving_digits' (default without --data-dir) or 'video_folder'")
    parser.add_argument('--data-dir', default=None, help='image (or clip) folder with a validation/ (or val/) '
                        'sub-folder')
    parser.add_argument('--clip-stride', type=int, default=1, help='video models: take every this-many-th frame')
    parser.add_argument('--split', default='validation', help='split to evaluate (default: validation)')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--amp', action='store_true', help='bfloat16 autocast')
    parser.add_argument('--device', default=None, help="'cpu' or 'cuda' (default: cuda if available)")
    parser.add_argument('--json', type=Path, default=None, help="write the metrics as JSON to this file ('-': stdout)")
    add_variants_option(parser)
    args = parser.parse_args(argv)
    try:
        config = DataConfig(dataset=args.dataset, data_dir=args.data_dir, val_split=args.split,
                            batch_size=args.batch_size, workers=args.workers, clip_stride=args.clip_stride)
        register_variant_files(args.variants)
        result = validate(args.model, config, pretrained=args.pretrained, use_ema=args.ema, amp=args.amp,
                          device=args.device)
    except (ConfigError, CheckpointError, FileNotFoundError, VariantConfigError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    rows = [('model', result['model']),
            ('dataset', f"{result['dataset']} ({result['split']}, {result['images']} images)"),
            ('top-1', f"{result['top1']:.2f} %"), ('top-5', f"{result['top5']:.2f} %"),
            ('loss', f"{result['loss']:.4f}"), ('images/s', f"{result['images_per_second']:.1f}")]
    width = max(len(name) for name, _ in rows)
    print('\n'.join(f'{name:<{width}}  {value}' for name, value in rows))
    if args.json is not None:
        if str(args.json) == '-':
            print(json.dumps(result, indent=2))
        else:
            write_json(args.json, result)
    return 0




if __name__ == '__main__':
    sys.exit(main())
