"""Test helpers: a loopback server that speaks the Hugging Face hub's file protocol, and small test models.

What huggingface_hub 2.x asks of a hub to download ``{repo_id}/{filename}`` at ``{revision}``:

- ``HEAD {endpoint}/{repo_id}/resolve/{revision}/{filename}``. It reads ``X-Repo-Commit`` (the commit,
  required), ``X-Linked-Etag`` or ``ETag`` (the name of the blob in its cache, required) and
  ``X-Linked-Size`` or ``Content-Length`` (the size it checks the download against). A weight file is an
  LFS file: the hub answers ``302`` with ``Location`` on a CDN, another host, which huggingface_hub does
  not follow for HEAD; its ``X-Linked-Etag`` is the sha256 of the content. (Releases 2.0 and 2.1 follow a
  redirect to the same host name on another port, so the CDN here is ``localhost``, the hub ``127.0.0.1``.)
  A small file answers ``200`` with an ``ETag`` (the git blob id).
- ``GET`` on that ``Location`` (LFS) or on the resolve URL (small file): the bytes.
- Errors: ``404`` with ``X-Error-Code`` ``RepoNotFound``, ``RevisionNotFound`` or ``EntryNotFound``
  (the last with ``X-Repo-Commit``), which huggingface_hub turns into its exceptions.

The server records every request, and can break a file's transfer: ``short`` sends only the first half
(with a matching ``Content-Length``, so the client sees a size mismatch), ``corrupt`` flips one byte.
"""
import hashlib
import http.server
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import unquote

import pytest
import timm
import torch
import torch.nn as nn
from huggingface_hub import constants
from timm.models import VisionTransformer

LFS_SUFFIXES = ('.safetensors', '.bin', '.pth', '.pt')

# The tests use shipped variants: registering test variants in this process would change the global
# registry that other test modules check; only the download subprocess registers SUBPROCESS_VARIANTS_YAML.
SMALL = 'tl_vit_tiny_patch16_224_8at6'
SMALL_ARGS = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_tokens=4, tokenlearner_loc=1)
TINY_TAG = 'tl_vit_tiny_patch16_224_8at6.vit_augreg_in21k_ft_in1k'  # a shipped backbone tag ...
TINY_SOURCE_REPO = 'timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k'  # ... and the repo it names

SUBPROCESS_VARIANTS_YAML = """
defaults:
  architecture: {patch_size: 8, embed_dim: 32, depth: 2, num_heads: 2, class_token: false, global_pool: avg}
  pretrained_cfg: {input_size: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 0.9,
                   license: apache-2.0}
variants:
  tl_hubtest_small:
    description: A small TokenLearner ViT with a tag for weights of our own.
    architecture: {num_tokens: 4, tokenlearner_loc: 1}
    tags:
      trained: {hf_hub_id: hubtest/tl-trained, num_classes: 10, description: Trained TokenLearner weights.}
"""


def small_tl(pretrained: bool = False, **kwargs) -> nn.Module:
    """The shipped ViT-Ti TokenLearner variant made small (SMALL_ARGS): 32 px, 8 px patches, width 32, 2 blocks."""
    return timm.create_model(SMALL, pretrained=pretrained, **{**SMALL_ARGS, **kwargs})


def plain_vit(img_size: int = 32, patch_size: int = 8, embed_dim: int = 32, num_classes: int = 1000,
              **kwargs) -> VisionTransformer:
    """A plain timm ViT (2 blocks, class token, final norm) with random weights everywhere, as a backbone source."""
    model = VisionTransformer(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=2, num_heads=2,
                              num_classes=num_classes, **kwargs)
    return randomize(model)


def randomize(model: nn.Module, std: float = 0.2) -> nn.Module:
    """Random values in every parameter, so that no zero / one initialisation hides a wiring error; eval mode."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    return model.eval()


def folder_files(folder: Path) -> Dict[str, bytes]:
    """The files of a folder, name -> bytes, for :meth:`HubServer.add_repo`."""
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


class HubServer:
    """Serves repos (name -> files) over the hub's file protocol on 127.0.0.1; LFS bytes from localhost."""

    def __init__(self) -> None:
        self.repos: Dict[str, Dict[str, bytes]] = {}
        self.commits: Dict[str, str] = {}
        self.blobs: Dict[str, bytes] = {}
        self.faults: Dict[str, str] = {}  # sha256 of a blob -> 'short' | 'corrupt'
        self.requests: List[Tuple[str, str]] = []
        self._lock = threading.Lock()
        self._hub = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler(cdn=False))
        self._cdn = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler(cdn=True))
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self._hub, self._cdn)]

    @property
    def endpoint(self) -> str:
        return f'http://127.0.0.1:{self._hub.server_address[1]}'

    @property
    def cdn(self) -> str:
        return f'http://localhost:{self._cdn.server_address[1]}'  # another host name than the hub's, as on the hub

    def __enter__(self) -> 'HubServer':
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def add_repo(self, repo_id: str, files: Dict[str, bytes]) -> str:
        """Publishes (or replaces) a repo with ``files``; returns its commit id."""
        digest = hashlib.sha1(repo_id.encode())
        for name in sorted(files):
            digest.update(name.encode() + hashlib.sha256(files[name]).digest())
        with self._lock:
            self.repos[repo_id] = dict(files)
            self.commits[repo_id] = digest.hexdigest()
            for data in files.values():
                self.blobs[hashlib.sha256(data).hexdigest()] = data
        return self.commits[repo_id]

    def break_transfer(self, repo_id: str, filename: str, how: Optional[str]) -> None:
        """Makes the CDN send ``filename`` of ``repo_id`` 'short' or 'corrupt'; None repairs it."""
        sha = hashlib.sha256(self.repos[repo_id][filename]).hexdigest()
        if how is None:
            self.faults.pop(sha, None)
        else:
            self.faults[sha] = how

    def _handler(self, cdn: bool):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _send(self, status: int, headers: Dict[str, str], data: bytes, body: bool) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, code: str, body: bool, commit: Optional[str] = None) -> None:
                headers = {'X-Error-Code': code, 'X-Error-Message': code, 'Content-Type': 'application/json'}
                if commit:
                    headers['X-Repo-Commit'] = commit
                self._send(404, headers, b'{"error": "%s"}' % code.encode(), body)

            def _answer(self, body: bool) -> None:
                with server._lock:
                    server.requests.append((self.command, self.path))
                if cdn:
                    self._answer_cdn(body)
                else:
                    self._answer_hub(body)

            def _answer_cdn(self, body: bool) -> None:
                sha = self.path.strip('/')
                if sha not in server.blobs:
                    self._send(404, {}, b'', body)
                    return
                data = server.blobs[sha]
                fault = server.faults.get(sha)
                if fault == 'short':
                    data = data[:len(data) // 2]
                elif fault == 'corrupt':
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                self._send(200, {'Content-Type': 'application/octet-stream'}, data, body)

            def _answer_hub(self, body: bool) -> None:
                parts = self.path.split('?')[0].lstrip('/').split('/', 4)
                if len(parts) != 5 or parts[2] != 'resolve':
                    self._send(404, {}, b'', body)
                    return
                repo_id, revision, filename = f'{parts[0]}/{parts[1]}', unquote(parts[3]), unquote(parts[4])
                if repo_id not in server.repos:
                    self._error('RepoNotFound', body)
                    return
                commit = server.commits[repo_id]
                if revision not in ('main', commit):
                    self._error('RevisionNotFound', body)
                    return
                files = server.repos[repo_id]
                if filename not in files:
                    self._error('EntryNotFound', body, commit)
                    return
                data = files[filename]
                headers = {'X-Repo-Commit': commit}
                if filename.endswith(LFS_SUFFIXES):
                    sha = hashlib.sha256(data).hexdigest()
                    headers.update({'ETag': f'"{_git_blob_id(data)}"', 'X-Linked-Etag': f'"{sha}"',
                                    'X-Linked-Size': str(len(data)), 'Location': f'{server.cdn}/{sha}'})
                    self._send(302, headers, b'', body)
                else:
                    headers.update({'ETag': f'"{_git_blob_id(data)}"', 'Content-Type': 'application/octet-stream'})
                    self._send(200, headers, data, body)

        return Handler


def hub_environment(endpoint: str, hf_home: Path, offline: bool = False) -> Dict[str, str]:
    """The environment that points huggingface_hub at ``endpoint`` with its cache and token under ``hf_home``."""
    return {
        'HF_ENDPOINT': endpoint,
        'HF_HOME': str(hf_home),
        'HF_HUB_CACHE': str(Path(hf_home) / 'hub'),
        'HF_TOKEN_PATH': str(Path(hf_home) / 'token'),
        'HF_HUB_OFFLINE': '1' if offline else '0',
        'HF_HUB_DISABLE_TELEMETRY': '1',
        'HF_HUB_DISABLE_XET': '1',
    }


def use_hub(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: Path, offline: bool = False) -> None:
    """Points huggingface_hub, in this process, at ``endpoint`` and a cache under ``hf_home``; no token.

    huggingface_hub reads its environment once, at import, into ``huggingface_hub.constants``; its
    download code reads those constants at each call, so both are patched.
    """
    for key, value in hub_environment(endpoint, hf_home, offline).items():
        monkeypatch.setenv(key, value)
    for key in ('HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN'):
        monkeypatch.delenv(key, raising=False)
    hf_home = Path(hf_home)
    for name, value in {
        'ENDPOINT': endpoint,
        'HUGGINGFACE_CO_URL_TEMPLATE': endpoint + '/{repo_id}/resolve/{revision}/{filename}',
        'HF_HOME': str(hf_home),
        'HF_HUB_CACHE': str(hf_home / 'hub'),
        'HF_TOKEN_PATH': str(hf_home / 'token'),
        'HF_STORED_TOKENS_PATH': str(hf_home / 'stored_tokens'),
        'AGENT_HARNESSES_PATH': str(hf_home / '.agent_harnesses.json'),
        'HF_HUB_OFFLINE': offline,
        'HF_HUB_DISABLE_XET': True,
    }.items():
        if hasattr(constants, name):  # older huggingface_hub releases lack some of these
            monkeypatch.setattr(constants, name, value)
