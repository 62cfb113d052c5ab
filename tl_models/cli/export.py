"""Turn a training run, a training checkpoint or a model into a hub-ready folder.

    tl-export runs/digits out/tl-digits --repo-id ORG/tl-digits
    tl-export runs/digits/checkpoints/last.safetensors out/tl-digits-last
    tl-export tl_vit_tiny_patch16_224_8at6.vit_augreg_in21k_ft_in1k out/init --pretrained

The folder holds timm's config.json, model.safetensors and a README.md model card; it loads with
timm.create_model('local-dir:FOLDER', pretrained=True) after `import tl_models`. A run folder
exports checkpoints/best.safetensors (else last), with the metrics of its summary.json.
Upload it with tl-push.
"""
import argparse
import json
import sys
from typing import List, Optional

import yaml

import tl_models  # noqa: F401  (registers the tl_ models with timm)
from tl_models.cli.messages import error_message
from tl_models.hub import CLI_ERRORS, export_source, tag_entry
from tl_models.registry.options import add_variants_option, register_variant_files


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='a training run folder, a training checkpoint file, or a tl_ model name')
    parser.add_argument('out_dir', help='the folder to create')
    parser.add_argument('--repo-id', metavar='ORG/NAME', help='the hub repo it is for (shown in the model card)')
    parser.add_argument('--ema', action=argparse.BooleanOptionalAction, default=None,
                        help='export the EMA weights of a checkpoint (default: when it has them)')
    parser.add_argument('--pretrained', action='store_true', help='for a model name: with its pretrained weights')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing out_dir')
    add_variants_option(parser)
    args = parser.parse_args(argv)
    try:
        register_variant_files(args.variants)
        folder = export_source(args.source, args.out_dir, use_ema=args.ema, pretrained=args.pretrained,
                               repo_id=args.repo_id, overwrite=args.overwrite)
    except CLI_ERRORS as e:
        print(f'error: {error_message(e)}', file=sys.stderr)
        return 1
    print(f'wrote {folder}: ' + ', '.join(sorted(p.name for p in folder.iterdir())))
    if args.repo_id:
        architecture = json.loads((folder / 'config.json').read_text(encoding='utf-8'))['architecture']
        entry = yaml.safe_dump({'TAG': tag_entry(folder, args.repo_id)}, sort_keys=False, width=1000)
        print(f'upload it with: tl-push {folder} {args.repo_id}\n'
              f'then publish it as a pretrained tag: in the YAML file of {architecture}, add to its tags (a '
              f"variant's own tags replace the file's default tags; list those too):\n"
              + ''.join(f'  {line}\n' for line in entry.splitlines()))
    return 0




if __name__ == '__main__':
    sys.exit(main())
