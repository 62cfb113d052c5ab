"""Fine-tune or distil a TokenLearner ViT; with no arguments, trains the embedded default on scikit-learn's digits
(video models: on moving digits, clips of those digits moving in four directions).

    python scripts/train.py --output runs/digits
    python scripts/train.py --config configs/train/finetune_folder.yaml --data-dir DATA --output runs/mine
    torchrun --nproc_per_node 2 scripts/train.py --output runs/ddp
    python scripts/train.py --resume runs/digits
    python scripts/train.py --model tl_vivit_pico_patch4_32_8f_8at2 --output runs/moving_digits   # video: moving digits
    python scripts/train.py --model tl_vivit_pico_patch4_32_8f_8at2 --data-dir CLIPS --clip-stride 2 --output runs/clips
    python scripts/train.py --variants my_variants.yaml --model tl_vit_mine_8at2 --output runs/mine
    python scripts/train.py --model tl_vit_nano_patch4_32_8at2 --distill-from vit_nano_patch4_32.cifar10 \\
        --config configs/train/cifar10.yaml --data-dir /tmp/data/cifar10 --epochs 4 --lr 5e-4 --output runs/distilled
"""
import argparse
import logging
import sys

import tl_models  # noqa: F401  (registers the tl_ models with timm)
from tl_models.registry import VariantConfigError
from tl_models.registry.options import add_variants_option, register_variant_files
from tl_models.train import TrainConfigError, add_arguments, config_from_args, train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    add_variants_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stdout)
    try:
        register_variant_files(args.variants)
        summary = train(config_from_args(args))
    except (TrainConfigError, VariantConfigError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f"held-out top-1 accuracy: {summary['selected_top1']:.2f}% ({summary['select']} of {summary['epochs']} "
          f"epochs)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
