"""Imports run one way between the package's rooms, inside functions too: no cycle hidden by a late import."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / 'tl_models'
# Each room may import only rooms of a lower rank (and itself). The package root imports the rooms it exports.
# Deprecated import paths (checkpoint, pretrained, study) import nothing but tl_models._moved.
RANKS = {
    'version': 0, 'io': 0, 'layers': 0, 'runtime': 0,
    'weights': 1, 'checkpoint': 1, 'pretrained': 1,
    'models': 2,
    'registry': 3,
    'data': 4,
    'evaluate': 5, 'hub': 5,
    'train': 6,
    'benchmark': 7, 'visualize': 7,
    'cli': 8, 'study': 8,
}


def _room(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix('').parts
    return parts[0]


def _imported_rooms(path: Path):
    """(line, room) of every import of another room of the package in ``path``, wherever the import sits."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for tl_models/x.py, 1 for tl_models/room/x.py
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom) and node.level:
            up = node.level - depth  # 1: the package root
            if up != 1:
                continue  # within the room
            names = [node.module.split('.')[0]] if node.module else [alias.name for alias in node.names]
            for name in names:
                yield node.lineno, name
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, 'level', 0):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or '']
            for module in modules:
                if module.startswith('tl_models.'):
                    yield node.lineno, module.split('.')[1]


FILES = sorted(p for p in PACKAGE.rglob('*.py') if _room(p) in RANKS)


def test_every_room_has_a_rank():
    rooms = {p.name if p.is_dir() else p.stem for p in PACKAGE.iterdir()
             if not p.name.startswith(('_', '.')) and (p.is_dir() or p.suffix == '.py')}
    assert rooms == set(RANKS)


@pytest.mark.parametrize('path', FILES, ids=[str(p.relative_to(PACKAGE)) for p in FILES])
def test_imports_go_to_lower_rooms_only(path):
    room = _room(path)
    upward = [f'line {line}: {other}' for line, other in _imported_rooms(path)
              if other != room and RANKS.get(other, -1) >= RANKS[room]]
    assert not upward, f'{path.relative_to(PACKAGE)} ({room}, rank {RANKS[room]}) imports upward: {upward}'


@pytest.mark.parametrize('path', FILES, ids=[str(p.relative_to(PACKAGE)) for p in FILES])
def test_the_package_never_imports_the_lab(path):
    """The experiment harness (lab/) is outside the wheel: the package runs without it."""
    imports = [node for node in ast.walk(ast.parse(path.read_text(encoding='utf-8')))
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in imports if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or '' for n in imports if isinstance(n, ast.ImportFrom) and not n.level]
    assert not [name for name in names if name == 'lab' or name.startswith('lab.')]
