"""The package as users install it: a wheel that carries the variant YAML files, and a ruff-clean tree."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_installed_wheel_finds_its_configs_outside_a_checkout(tmp_path):
    subprocess.run([sys.executable, '-m', 'hatchling', 'build', '-t', 'wheel', '-d', str(tmp_path / 'dist')],
                   cwd=ROOT, check=True, capture_output=True)
    (wheel,) = (tmp_path / 'dist').glob('tl_models-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (ROOT / 'configs').glob('*.yaml'))
    assert sorted(Path(n).name for n in names if n.startswith('tl_models/configs/') and n.endswith('.yaml')
                  and '/train/' not in n) == shipped
    assert any(n.startswith('tl_models/configs/train/') for n in names)

    site = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-index', '--target', str(site),
                    str(wheel)], check=True, capture_output=True)
    script = ('import tl_models, timm; from tl_models.registry import builtin_config_dir; '
              'print(tl_models.__file__); print(builtin_config_dir()); print(len(timm.list_models("tl_*")))')
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    assert out[0].startswith(str(site)) and out[1] == str(site / 'tl_models' / 'configs')
    assert int(out[2]) == sum(1 for p in (ROOT / 'configs').glob('*.yaml') for line in p.read_text().splitlines()
                              if line.startswith('  tl_'))


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', '.'], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / 'README.md').read_text()
    commands = [line for line in readme.splitlines() if line.startswith('python3 -m venv .venv && ')]
    assert len(commands) == 2, 'the README gives two set-up commands'
    setup, tests = commands
    assert 'scripts/train.py' in setup and 'pytest' in tests
    assert tests in (ROOT / '.ci' / 'run').read_text().splitlines()
