"""TokenLearner layers: plain PyTorch, no timm. Shapes use B batch, N positions, C channels, S learned tokens."""
from .token_fuser import TokenFuser
from .token_learner import TokenLearner, TokenLearnerV11

__all__ = ['TokenFuser', 'TokenLearner', 'TokenLearnerV11']
