"""The small MLP that scores positions in TokenLearner v1.1 and TokenFuser (scenic's ``MlpBlock``), and the
initialisations of the TokenLearner modules."""
import torch
import torch.nn as nn

# 'official': the initialisers of the official code (scenic's MlpBlock: Xavier-uniform kernels, N(0, 1e-6)
# biases; flax's Conv: LeCun normal), under which the learned tokens start with distinct spatial maps.
# 'vit': what timm's ViT initialisation gives these layers (Linear: truncated normal, std 0.02, zero bias;
# Conv2d: PyTorch's default), tl_models' initialisation before 0.2: the tokens start with almost uniform,
# almost identical maps and on small data stay alike (see the README's CIFAR-10 study).
WEIGHT_INITS = ('official', 'vit')


def check_weight_init(weight_init: str) -> str:
    """Returns ``weight_init`` if it is one of :data:`WEIGHT_INITS`; raises ValueError naming them otherwise."""
    if weight_init not in WEIGHT_INITS:
        raise ValueError(f"weight_init must be one of {', '.join(WEIGHT_INITS)}, got {weight_init!r}")
    return weight_init


class BottleneckMlp(nn.Module):
    """Linear(in->hidden) ``fc1``, GELU, Dropout, Linear(hidden->out) ``fc2``, Dropout: ``[..., in]`` ->
    ``[..., out]``."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int, dropout_rate: float = 0.,
                 weight_init: str = 'official') -> None:
        super().__init__()
        self.weight_init = check_weight_init(weight_init)
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(dropout_rate)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(dropout_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """Initialises ``fc1`` and ``fc2`` as ``weight_init`` says (timm's weight init calls this after its own)."""
        for layer in (self.fc1, self.fc2):
            if self.weight_init == 'official':
                nn.init.xavier_uniform_(layer.weight)
                nn.init.normal_(layer.bias, std=1e-6)
            else:
                nn.init.trunc_normal_(layer.weight, std=.02)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., in]`` -> ``[..., out]``."""
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
