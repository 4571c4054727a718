"""The table network's sampling path: the same rows as its training path, to rounding."""

import pytest
import torch

from diffusio.tabular.net import INFERENCE_CHUNK, TableNet


@pytest.mark.parametrize("classes", [0, 3])
def test_sampling_forward_matches_training_forward(classes):
    torch.manual_seed(0)
    net = TableNet(dim=9, classes=classes, width=16, depth=2).eval()
    x = torch.randn(INFERENCE_CHUNK + 37, 9)  # more than one chunk
    given = x.clone()
    c_noise = torch.full((len(x),), 0.3)
    cond = torch.randint(0, classes + 1, (len(x),)) if classes else None
    trained = net(x, c_noise, cond)                       # gradients on: the general path
    with torch.no_grad():
        sampled = net(x, c_noise, cond)                   # one noise level, no gradients: the fast path
        direct = net._sampling_forward(x, c_noise[:1], cond)
    assert torch.allclose(trained.detach(), sampled, atol=1e-5)
    assert torch.allclose(sampled[:100], direct[:100], atol=1e-5)
    assert torch.equal(x, given)                          # the in-place sums never touch the input


def test_rows_at_different_noise_levels_take_the_general_path():
    torch.manual_seed(0)
    net = TableNet(dim=5, classes=2, width=8, depth=1).eval()
    x, cond = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    c_noise = torch.linspace(-1, 1, 6)
    with torch.no_grad():
        together = net(x, c_noise, cond)
        one_by_one = torch.cat([net(x[i:i + 1], c_noise[i:i + 1], cond[i:i + 1]) for i in range(6)])
    assert torch.allclose(together, one_by_one, atol=1e-5)
