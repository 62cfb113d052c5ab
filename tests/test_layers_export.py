"""The layers under autocast, half precision, torch.compile, TorchScript, torch.fx and ONNX."""
import pytest
import torch

from tl_models import TokenFuser, TokenLearner, TokenLearnerV11

from conftest import randomize_

C, S = 32, 8
LEARNERS = [TokenLearner, TokenLearnerV11]


class LearnFuse(torch.nn.Module):
    """TokenLearner followed by TokenFuser with the residual, so one module exercises both."""

    def __init__(self, learner):
        super().__init__()
        self.learner = learner(S, C)
        self.fuser = TokenFuser(S, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuser(self.learner(x), x)


def _module(learner):
    return randomize_(LearnFuse(learner), std=0.2).eval()


@pytest.mark.parametrize('learner', LEARNERS)
def test_bf16_autocast_on_cpu(learner):
    module, x = _module(learner), torch.randn(2, C, 4, 5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        tokens = module.learner(x)
        fused = module.fuser(tokens, x)
    assert tokens.dtype == fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused.float(), module.fuser(module.learner(x), x), rtol=0.1, atol=0.1)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('learner', LEARNERS)
def test_half_precision_inputs(learner, dtype):
    module, x = _module(learner), torch.randn(2, C, 4, 5)
    expected = module(x)
    out = module.to(dtype)(x.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected, rtol=0.1, atol=0.1)


@pytest.mark.parametrize('learner', LEARNERS)
def test_torch_compile_fullgraph(learner):
    module, x = _module(learner), torch.randn(2, C, 4, 5)
    compiled = torch.compile(module, fullgraph=True)
    torch.testing.assert_close(compiled(x), module(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('learner', LEARNERS)
def test_torchscript(learner):
    module = _module(learner)
    scripted = torch.jit.script(module)
    for x in (torch.randn(2, C, 4, 5), torch.randn(2, 16, C)):
        torch.testing.assert_close(scripted(x), module(x))
    with pytest.raises(torch.jit.Error, match=r'expected \[B, 32, H, W\] or \[B, N, 32\], got \(2, 16\)'):
        scripted(torch.randn(2, 16))


@pytest.mark.parametrize('learner', LEARNERS)
def test_torch_fx_trace(learner):
    module = _module(learner)
    traced = torch.fx.symbolic_trace(module)
    for x in (torch.randn(2, C, 4, 5), torch.randn(3, 16, C)):
        torch.testing.assert_close(traced(x), module(x))


@pytest.mark.parametrize('learner', LEARNERS)
def test_torch_fx_trace_with_grid_argument(learner):
    module = randomize_(learner(S, C), std=0.2).eval()
    traced = torch.fx.symbolic_trace(module)
    x = torch.randn(2, 15, C)
    torch.testing.assert_close(traced(x, (3, 5)), module(x, (3, 5)))


@pytest.mark.slow
@pytest.mark.parametrize('learner', LEARNERS)
def test_onnx_export_matches_onnxruntime(learner, tmp_path):
    import onnxruntime

    module, x = _module(learner), torch.randn(2, C, 4, 5)
    path = tmp_path / 'layer.onnx'
    torch.onnx.export(module, (x,), str(path), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), module(x), rtol=1e-4, atol=1e-4)
