"""The README and docs/ as a user reads them: their Python snippets run, their links resolve, and every flag their
commands use is one the command takes.

A Python snippet that needs data, a file made by a command, or the network starts with ``# needs: ...`` and is
skipped. A YAML snippet whose first line is ``# NAME.yaml`` is written to that file first, for the snippets after it.
"""
import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from conftest import ROOT, load_script

PAGES = sorted([ROOT / 'README.md', ROOT / 'CHANGELOG.md', *(ROOT / 'docs').rglob('*.md')])
FENCE = re.compile(r'^```(\w*)\n(.*?)^```', re.M | re.S)
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)')
# How a documented command line starts -> the command (its module or script) whose --help lists its flags.
COMMANDS = {f'tl-{name}'.replace('_', '-'): name for name in ('train', 'validate', 'visualize', 'export', 'download',
                                                               'push', 'convert_dinov2')}
COMMANDS['tl-benchmark'] = 'tl-benchmark'
SCRIPTS = {'scripts/study.py': 'study', 'scripts/benchmark.py': 'benchmark', 'scripts/benchmark_layers.py':
           'benchmark_layers'}


def _blocks(page: Path, language: str) -> List[Tuple[int, str]]:
    text = page.read_text(encoding='utf-8')
    return [(text[:m.start()].count('\n') + 1, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == language]


def _snippets() -> List[Tuple[Path, int, str]]:
    return [(page, line, code) for page in PAGES for line, code in _blocks(page, 'python')]


SNIPPETS = _snippets()


@pytest.mark.parametrize('page, line, code', SNIPPETS,
                         ids=[f'{p.relative_to(ROOT)}:{line}' for p, line, _ in SNIPPETS])
def test_python_snippets_run(page, line, code, tmp_path, monkeypatch):
    first = code.splitlines()[0]
    if first.startswith('# needs:'):
        pytest.skip(f'{page.name}:{line} {first[2:]}')
    monkeypatch.chdir(tmp_path)
    for _, yaml_code in _blocks(page, 'yaml'):  # files the page's snippets read
        name = yaml_code.splitlines()[0].lstrip('# ').split()[0]
        if name.endswith('.yaml'):
            (tmp_path / name).write_text(yaml_code)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, f'{page.name}:{line}', 'exec'), {'__name__': '__snippet__'})


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (but - and _), spaces to hyphens."""
    text = re.sub(r'[`*]', '', heading.strip().lower())
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def _anchors(page: Path) -> set:
    text = FENCE.sub('', page.read_text(encoding='utf-8'))
    return {_slug(m.group(1)) for m in re.finditer(r'^#+ (.+)$', text, re.M)}


LINKS = [(page, target) for page in PAGES for m in LINK.finditer(FENCE.sub('', page.read_text(encoding='utf-8')))
         for target in [m.group(1) or m.group(2)] if not re.match(r'[a-z]+:', target)]


@pytest.mark.parametrize('page, target', LINKS, ids=[f'{p.relative_to(ROOT)}->{t}' for p, t in LINKS])
def test_relative_links_resolve(page, target):
    path, _, anchor = target.partition('#')
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f'{page.relative_to(ROOT)} links to {target}: no such file'
    if anchor:
        assert anchor in _anchors(resolved), f'{page.relative_to(ROOT)} links to {target}: no such heading'


def _command_lines() -> List[Tuple[Path, str]]:
    """Every documented command line (bash blocks, continuations joined; inline code spans) of a known command."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding='utf-8')
        lines = [line for _, block in _blocks(page, 'bash') for line in block.replace('\\\n', ' ').splitlines()]
        lines += re.findall(r'`((?:tl-[a-z0-9-]+|python scripts/\w+\.py) [^`]*)`', FENCE.sub('', text))
        for line in lines:
            line = line.split(' #')[0].strip()
            if any(line.startswith(c) or f' {c} ' in f' {line} ' for c in (*COMMANDS, *SCRIPTS)):
                found.append((page, line))
    return found


_HELP: Dict[str, str] = {}


def _help(command: str) -> str:
    """The ``--help`` text of a command (an installed tl- command or a lab script), run in this process."""
    if command not in _HELP:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            load_script(command).main(['--help'])
        _HELP[command] = out.getvalue()
    return _HELP[command]


COMMAND_LINES = _command_lines()


@pytest.mark.parametrize('page, line', COMMAND_LINES, ids=[f'{p.relative_to(ROOT)}:{i}'
                                                          for i, (p, _) in enumerate(COMMAND_LINES)])
def test_documented_flags_exist(page, line):
    words = shlex.split(line.replace('{', '').replace('}', ''), posix=True)
    start = next(i for i, w in enumerate(words) if w.split('/')[-1] in COMMANDS or w in SCRIPTS)
    name = words[start].split('/')[-1]
    command = COMMANDS.get(name) or SCRIPTS[words[start]]
    flags = {w.split('=')[0] for w in words[start + 1:] if w.startswith('--') and w != '--'}
    help_text = _help(command)
    missing = sorted(f for f in flags if not re.search(rf'{re.escape(f)}\b', help_text))
    assert not missing, f'{page.relative_to(ROOT)}: `{line}` uses {missing}, not in {name} --help'
