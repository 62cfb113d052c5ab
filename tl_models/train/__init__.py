"""Fine-tuning and evaluation on timm's training blocks, with the digits data as the embedded default."""
