"""Shared test helpers. Tests use small models and images; nothing here touches the network."""
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def randomize_(module: torch.nn.Module, std: float = 0.5) -> torch.nn.Module:
    """Fills every parameter with random values, so that no zero/one initialisation hides a wiring error."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std)
    return module
