"""Prefetch pretrained weights into the Hugging Face hub cache, or list the pretrained tags.

    tl-download tl_vit_base_patch16_224_8at6.vit_augreg2_in21k_ft_in1k
    tl-download hf-hub:ORG/NAME --cache-dir /data/hf-cache
    tl-download --list

A name without a tag fetches the variant's default (first) tag. Later loads find the files in the
cache, also offline (HF_HUB_OFFLINE=1). The cache is huggingface_hub's (HF_HOME, HF_HUB_CACHE) unless
--cache-dir is given; pass the same folder to timm.create_model(..., cache_dir=...) then.
"""
import argparse
import sys
from typing import List, Optional

from huggingface_hub.utils import enable_progress_bars

import tl_models  # noqa: F401  (registers the tl_ models with timm)
from tl_models.cli.messages import error_message
from tl_models.hub import CLI_ERRORS, cached_weight_file, list_pretrained_tags, prefetch
from tl_models.registry.options import add_variants_option, register_variant_files


def print_tags(cache_dir: Optional[str]) -> None:
    """One line per tag: name, source repo, whether its weights are cached (or shipped with tl-models)."""
    tags = list_pretrained_tags()
    width = max([len(t.name) for t in tags] + [len('NAME.TAG')])
    repo_width = max([len(t.source) for t in tags] + [len('SOURCE REPO')])
    print(f"{'NAME.TAG':<{width}}  {'SOURCE REPO':<{repo_width}}  CACHED")
    for tag in tags:
        if tag.file:
            cached = 'shipped'
        else:
            cached = 'yes' if cached_weight_file(tag.hf_hub_id, tag.filename, cache_dir) else 'no'
        print(f'{tag.name:<{width}}  {tag.source:<{repo_width}}  {cached}')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('names', nargs='*', metavar='NAME[.TAG]', help='tl_ model names, or hf-hub:ORG/NAME')
    parser.add_argument('--list', action='store_true', help='list every pretrained tag and its source repo')
    parser.add_argument('--cache-dir', help='hub cache folder (default: huggingface_hub\'s)')
    add_variants_option(parser)
    args = parser.parse_args(argv)
    if not args.list and not args.names:
        parser.error('give model names to download, or --list')
    try:
        register_variant_files(args.variants)
    except CLI_ERRORS as e:
        print(f'error: {error_message(e)}', file=sys.stderr)
        return 2
    if args.list:
        print_tags(args.cache_dir)
        return 0

    enable_progress_bars()  # huggingface_hub's bar per file (HF_HUB_DISABLE_PROGRESS_BARS=1 still turns them off)
    failed = 0
    for name in args.names:
        try:
            files = prefetch(name, args.cache_dir)
        except CLI_ERRORS as e:
            print(f'error: {name}: {error_message(e)}', file=sys.stderr)
            failed += 1
            continue
        for path in files:
            print(f'{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)')
    return 1 if failed else 0




if __name__ == '__main__':
    sys.exit(main())
