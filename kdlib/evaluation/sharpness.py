"""How peaked a SimCC model's 1D distributions are, over a validation set: EKR's Fig. 4 as numbers
(the ``fig4`` table's columns, ``kdlib/paper_tables/ekr.py``)."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

__all__ = ['simcc_sharpness']


@torch.no_grad()
def simcc_sharpness(model, dataset, batch_size: int = 32, device=None) -> dict[str, float]:
    """EKR Fig. 4 as numbers: how peaked the model's softmax x / y distributions are.

    Over every visible joint (``target_weight`` > 0) of ``dataset`` and both axes: the mean peak
    probability max_i p_i (in %) and the mean entropy -sum_i p_i log p_i (nats) of
    p = softmax(simcc logits) over the bins. A more prominent centre (Fig. 4's "after
    distillation") raises the first and lowers the second.
    """
    device = device or next(model.parameters()).device
    model = model.eval().to(device)
    peak = entropy = count = 0.0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        out = model(batch['image'].to(device))
        visible = batch['target_weight'].to(device) > 0                 # (B, K)
        for axis in 'xy':
            log_p = out[f'simcc_{axis}'].float().log_softmax(-1)       # (B, K, bins)
            peak += float(log_p.amax(-1).exp()[visible].sum())
            entropy += float(-(log_p.exp() * log_p).sum(-1)[visible].sum())
            count += float(visible.sum())
    if count == 0:
        return {'Peak probability (%)': float('nan'), 'Entropy (nats)': float('nan')}
    return {'Peak probability (%)': 100.0 * peak / count, 'Entropy (nats)': entropy / count}
