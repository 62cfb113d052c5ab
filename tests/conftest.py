"""Shared test helpers. Tests use small models and images; nothing here touches the network."""
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from hub_server import HubServer, use_hub

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


ROOT = Path(__file__).resolve().parents[1]
# The installed commands (tl-<name>) by their module; the lab's scripts live in scripts/.
COMMANDS = {name: f'tl_models.cli.{name}' for name in ('train', 'validate', 'visualize', 'export', 'download', 'push',
                                                       'convert_dinov2')}
COMMANDS['tl-benchmark'] = 'tl_models.cli.benchmark'


def load_script(name: str) -> ModuleType:
    """The module of command ``name`` (``train`` for tl-train, ...) or of ``scripts/<name>.py``, to call its
    ``main()`` in-process."""
    if name in COMMANDS:
        return importlib.import_module(COMMANDS[name])
    spec = importlib.util.spec_from_file_location(f'{name}_script', ROOT / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command(name: str) -> list:
    """The argv prefix that runs command ``name`` in a subprocess (``python -m tl_models.cli.<name>``), as its
    installed ``tl-<name>`` does."""
    return [sys.executable, '-m', COMMANDS[name]]


def randomize_(module: torch.nn.Module, std: float = 0.5) -> torch.nn.Module:
    """Fills every parameter with random values, so that no zero/one initialisation hides a wiring error."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std)
    return module


@pytest.fixture(scope='module')
def server():
    """A loopback server speaking the Hugging Face hub's file protocol (tests/hub_server.py)."""
    with HubServer() as server:
        yield server


@pytest.fixture
def hub(server, tmp_path, monkeypatch):
    """The server, with huggingface_hub pointed at it and its cache (HF_HOME) in a temp folder."""
    use_hub(monkeypatch, server.endpoint, tmp_path / 'hf_home')
    return server
