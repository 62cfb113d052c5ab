"""The package as users install it: a wheel that carries the variant YAML files, and a ruff-clean tree."""
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope='module')
def installed_wheel(tmp_path_factory):
    """The wheel built from this tree, its file names, and the folder it is pip-installed into (no deps)."""
    tmp_path = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'hatchling', 'build', '-t', 'wheel', '-d', str(tmp_path / 'dist')],
                   cwd=ROOT, check=True, capture_output=True)
    (wheel,) = (tmp_path / 'dist').glob('tl_models-*.whl')
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-index',
                    '--target', str(target), str(wheel)], check=True, capture_output=True)
    return zipfile.ZipFile(wheel).namelist(), target


def _shipped_variant_count() -> int:
    """The shipped TokenLearner variants, and the generic tl_vit and tl_vit_plain."""
    return 2 + sum(1 for p in (ROOT / 'configs').glob('*.yaml') for line in p.read_text().splitlines()
                   if line.startswith('  tl_'))


@pytest.mark.slow
def test_installed_wheel_finds_its_configs_outside_a_checkout(installed_wheel, tmp_path):
    names, target = installed_wheel
    shipped = sorted(p.name for p in (ROOT / 'configs').glob('*.yaml'))
    assert sorted(n.rsplit('/', 1)[1] for n in names if n.startswith('tl_models/configs/') and n.endswith('.yaml')
                  and n.count('/') == 2) == shipped
    assert any(n.startswith('tl_models/configs/train/') for n in names)
    assert not [n for n in names if n.startswith(('lab/', 'tl_models/configs/study/', 'tl_models/lab/'))]

    script = ('import tl_models, timm; from tl_models.registry import builtin_config_dir; '
              'print(tl_models.__file__); print(builtin_config_dir()); print(len(timm.list_models("tl_*")))')
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    assert out[0].startswith(str(target)) and out[1] == str(target / 'tl_models' / 'configs')
    assert int(out[2]) == _shipped_variant_count()


def test_wheel_installs_the_commands(installed_wheel):
    names, target = installed_wheel
    (entry_points,) = [n for n in names if n.endswith('.dist-info/entry_points.txt')]
    text = (next(target.glob('tl_models-*.dist-info')) / 'entry_points.txt').read_text()
    commands = dict(line.split(' = ') for line in text.splitlines() if ' = ' in line)
    assert commands == {f'tl-{name}': f'tl_models.cli.{module}:main' for name, module in (
        ('train', 'train'), ('validate', 'validate'), ('benchmark', 'benchmark'), ('visualize', 'visualize'),
        ('export', 'export'), ('download', 'download'), ('push', 'push'), ('convert-dinov2', 'convert_dinov2'))}
    assert entry_points


@pytest.mark.slow
def test_installed_wheel_registers_with_timm_when_timm_is_imported(installed_wheel, tmp_path):
    """The wheel's start-up hook (a .pth file and its module, at the top of site-packages) in a Python started
    without site (-S) that then processes the wheel's folder first and this environment's site-packages after it."""
    names, target = installed_wheel
    assert {'_tl_models_timm_hook.pth', '_tl_models_timm_hook.py'} <= set(names)
    assert not [n for n in names if n.endswith('.pth') and '/' in n]
    sites = [str(target), *site.getsitepackages()]
    script = (f'import site, sys\nfor path in {sites!r}: site.addsitedir(path)\n'
              'import _tl_models_timm_hook, timm\n'
              'print(_tl_models_timm_hook.__file__); print(sys.modules["tl_models"].__file__); '
              'print(len(timm.list_models("tl_*")))')
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'TL_MODELS_NO_TIMM_HOOK')}
    out = subprocess.run([sys.executable, '-S', '-c', script], cwd=tmp_path, env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    assert out[0] == str(target / '_tl_models_timm_hook.py') and out[1].startswith(str(target))
    assert int(out[2]) == _shipped_variant_count()


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', '.'], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / 'README.md').read_text()
    commands = [line for line in readme.splitlines() if line.startswith('python3 -m venv .venv && ')]
    assert len(commands) == 2, 'the README gives two set-up commands'
    setup, tests = commands
    assert '.venv/bin/tl-train' in setup and 'pytest' in tests
    assert tests in (ROOT / '.ci' / 'run').read_text().splitlines()
