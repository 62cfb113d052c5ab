"""Fine-tune or distil a TokenLearner ViT; with no arguments, trains the embedded default on scikit-learn's digits
(video models: on moving digits, clips of those digits moving in four directions).

    tl-train --output runs/digits
    tl-train --config configs/train/finetune_folder.yaml --data-dir DATA --output runs/mine
    torchrun --nproc_per_node 2 -m tl_models.cli.train --output runs/ddp
    tl-train --resume runs/digits
    tl-train --model tl_vivit_pico_patch4_32_8f_8at2 --output runs/moving_digits   # video: moving digits
    tl-train --model tl_vivit_pico_patch4_32_8f_8at2 --data-dir CLIPS --clip-stride 2 --output runs/clips
    tl-train --variants my_variants.yaml --model tl_vit_mine_8at2 --output runs/mine
    tl-train --model tl_vit_nano_patch4_32_8at2 --distill-from vit_nano_patch4_32.cifar10 \\
        --config configs/train/cifar10.yaml --data-dir /tmp/data/cifar10 --epochs 4 --lr 5e-4 --output runs/distilled
"""
import argparse
import logging
import sys
from typing import Any, Dict

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
    print(final_lines(summary))
    return 0


def final_lines(summary: Dict[str, Any]) -> str:
    """The run's result, ending on the figure that no choice on the held-out split has biased: the last epoch's."""
    lines = []
    if summary['select'] == 'best' and summary['selected_epoch']:
        lines.append(f"exported the best held-out epoch, {summary['selected_epoch']} of {summary['epochs']} "
                     f"({summary['selected_top1']:.2f}%): picked on the held-out split, so that figure is biased "
                     'upwards')
    if summary['last_top1'] is None:
        lines.append(f"held-out top-1 accuracy: not measured yet (stopped after epoch {summary['epochs']}; "
                     'continue with --resume)')
    else:
        lines.append(f"held-out top-1 accuracy: {summary['last_top1']:.2f}% (the last epoch, {summary['epochs']} "
                     f"of {summary['epochs_planned']}; not picked on the held-out split)")
    return '\n'.join(lines)




if __name__ == '__main__':
    sys.exit(main())
