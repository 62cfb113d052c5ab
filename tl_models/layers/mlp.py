"""The small MLP that scores positions in TokenLearner v1.1 and TokenFuser (scenic's ``MlpBlock``)."""
import torch
import torch.nn as nn


class BottleneckMlp(nn.Module):
    """Linear(in->hidden), GELU, Dropout, Linear(hidden->out), Dropout: ``[..., in]`` -> ``[..., out]``."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int, dropout_rate: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(dropout_rate)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
