"""Atomic output: files and folders appear whole, with the permissions a plain open or mkdir gives."""
import os
import stat

import pytest
import torch

from tl_models.io import atomic_dir, write_json, write_safetensors, write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_and_folders_are_readable_by_others_as_plain_ones_are(tmp_path, umask_022):
    write_text(tmp_path / 'card.md', 'hello')
    write_json(tmp_path / 'config.json', {'a': 1})
    write_safetensors(tmp_path / 'model.safetensors', {'w': torch.zeros(2)})
    with atomic_dir(tmp_path / 'model') as folder:
        write_text(folder / 'README.md', 'card')
    assert _mode(tmp_path / 'card.md') == _mode(tmp_path / 'config.json') == 0o644
    assert _mode(tmp_path / 'model.safetensors') == 0o644
    assert _mode(tmp_path / 'model') == 0o755 and _mode(tmp_path / 'model' / 'README.md') == 0o644
    assert (tmp_path / 'card.md').read_text() == 'hello'


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / 'model') as folder:
        write_text(folder / 'README.md', 'card')
        raise RuntimeError('interrupted')
    assert list(tmp_path.iterdir()) == []
