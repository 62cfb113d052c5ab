"""Upload a folder written by tl-export to a Hugging Face hub model repo.

    tl-push out/tl-digits ORG/tl-digits --dry-run
    tl-push out/tl-digits ORG/tl-digits --private

The folder is checked first (its files, its model card, and that the model loads from it). Log in
with `hf auth login` or set HF_TOKEN. --dry-run checks and shows what would be uploaded.
"""
import argparse
import sys
from typing import List, Optional

import tl_models  # noqa: F401  (registers the tl_ models with timm)
from tl_models.cli.messages import error_message
from tl_models.hub import CLI_ERRORS, push_folder
from tl_models.registry.options import add_variants_option, register_variant_files


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('folder', help='a folder written by tl-export')
    parser.add_argument('repo_id', metavar='ORG/NAME', help='the model repo to upload to (created if needed)')
    parser.add_argument('--private', action='store_true', help='create the repo private')
    parser.add_argument('--revision', help='the branch to commit to (default: main)')
    parser.add_argument('--message', default='Upload TokenLearner model', help='the commit message')
    parser.add_argument('--dry-run', action='store_true', help='check the folder and show what would be uploaded')
    add_variants_option(parser)
    args = parser.parse_args(argv)
    try:
        register_variant_files(args.variants)
        result = push_folder(args.folder, args.repo_id, private=args.private, revision=args.revision,
                             commit_message=args.message, dry_run=args.dry_run)
    except CLI_ERRORS as e:
        print(f'error: {error_message(e)}', file=sys.stderr)
        return 1
    files = ', '.join(f'{p.name} ({p.stat().st_size / 1e6:.2f} MB)' for p in result.files)
    if result.commit_url is None:
        print(f'dry run: {args.folder} checked; would upload to {args.repo_id}: {files}')
    else:
        print(f'uploaded to {args.repo_id}: {files}\n{result.commit_url}')
    return 0




if __name__ == '__main__':
    sys.exit(main())
