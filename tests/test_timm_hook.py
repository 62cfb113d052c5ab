"""The start-up hook: timm finds the tl_ models without ``import tl_models``, and never breaks because of them.

Each test runs a fresh Python. The installed hook (if this environment has one) is turned off at start-up with
TL_MODELS_NO_TIMM_HOOK=1; the script then clears the variable and installs the checkout's hook by its path, so
these tests check the code of this tree whatever is installed. ``test_packaging`` checks the installed files.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tl_models.hub import Provenance, export_model

from hub_server import randomize, small_tl

HOOK = Path(__file__).parents[1] / 'tl_models' / '_timm_hook.py'

INSTALL_HOOK = f"""
import importlib.util, os, sys
os.environ.pop('TL_MODELS_NO_TIMM_HOOK')
spec = importlib.util.spec_from_file_location('checkout_timm_hook', {str(HOOK)!r})
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)
hook.install()
assert 'timm' not in sys.modules and 'tl_models' not in sys.modules
"""


def _python(script: str, cwd: Path, pythonpath: str = '') -> subprocess.CompletedProcess:
    env = dict(os.environ, TL_MODELS_NO_TIMM_HOOK='1', PYTHONPATH=pythonpath)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(script)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A folder exported from a random small model, and a file holding an input and the model's output for it."""
    root = tmp_path_factory.mktemp('hook')
    model = randomize(small_tl(num_classes=3, use_tokenfuse=True)).eval()
    folder = export_model(model, root / 'export', Provenance('Test weights.'))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        save_file({'x': x, 'y': model(x)}, str(root / 'io.safetensors'))
    return folder, root / 'io.safetensors'


@pytest.mark.slow
def test_local_dir_model_loads_without_importing_tl_models(exported, tmp_path):
    folder, io_file = exported
    result = _python(INSTALL_HOOK + f"""
import timm, torch
from safetensors.torch import load_file
assert 'tl_models' in sys.modules  # imported by the hook, not by this script
model = timm.create_model('local-dir:{folder}', pretrained=True).eval()
io = load_file({str(io_file)!r})
with torch.no_grad():
    assert torch.allclose(model(io['x']), io['y'], rtol=1e-5, atol=1e-6)
print('loaded', type(model).__name__)
""", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['loaded', 'TokenLearnerVisionTransformer']


@pytest.mark.slow
def test_without_the_hook_timm_does_not_know_the_model(exported, tmp_path):
    """The control: what the hook prevents (with TL_MODELS_NO_TIMM_HOOK=1 and no ``import tl_models``)."""
    folder, _ = exported
    result = _python(f"""
import sys, timm
assert 'tl_models' not in sys.modules
timm.create_model('local-dir:{folder}', pretrained=True)
""", tmp_path)
    assert result.returncode != 0
    assert 'Unknown model (tl_vit_tiny_patch16_224_8at6)' in result.stderr


@pytest.mark.slow
def test_importing_tl_models_first_registers_once_without_warnings(tmp_path):
    result = _python(INSTALL_HOOK + """
import warnings
warnings.simplefilter('error')
import tl_models, timm
print(len(set(timm.list_models('tl_*')) - {'tl_vit', 'tl_vit_plain'}),
      len(tl_models.list_variants()) + len(tl_models.registry.list_video_variants()))
""", tmp_path)
    assert result.returncode == 0, result.stderr
    registered, variants = result.stdout.split()
    assert registered == variants and int(registered) > 0


@pytest.mark.slow
def test_a_broken_tl_models_leaves_timm_working_and_warns(tmp_path):
    broken = tmp_path / 'broken' / 'tl_models'
    broken.mkdir(parents=True)
    (broken / '__init__.py').write_text("raise ImportError('tl_models is broken on purpose')\n")
    result = _python(INSTALL_HOOK + """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    import timm
print(timm.create_model('vit_tiny_patch16_224', img_size=32, num_classes=2).num_classes)
for warning in caught:
    print(warning.category.__name__, warning.message)
""", tmp_path, pythonpath=str(broken.parent))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == '2'
    (warning,) = [line for line in lines[1:] if 'tl_models' in line]
    assert warning.startswith('RuntimeWarning tl_models is installed but could not register')
    assert 'ImportError: tl_models is broken on purpose' in warning and 'TL_MODELS_NO_TIMM_HOOK=1' in warning


def test_the_variable_turns_the_hook_off(tmp_path):
    check = "print(any(type(finder).__name__ == 'TimmImportWatcher' for finder in sys.meta_path))"
    turned_off = INSTALL_HOOK.replace("os.environ.pop('TL_MODELS_NO_TIMM_HOOK')",
                                      "os.environ['TL_MODELS_NO_TIMM_HOOK'] = '1'")
    outputs = [_python(script + check, tmp_path).stdout.strip() for script in (INSTALL_HOOK, turned_off)]
    assert outputs == ['True', 'False']


@pytest.mark.slow
def test_installing_after_timm_was_imported_registers_at_once(tmp_path):
    """A site folder added while the program runs (``site.addsitedir``) installs the hook after ``import timm``."""
    script = "import timm\n" + INSTALL_HOOK.replace(
        "assert 'timm' not in sys.modules and 'tl_models' not in sys.modules", "assert 'tl_models' in sys.modules")
    result = _python(script + "print(len(timm.list_models('tl_*')))", tmp_path)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0
