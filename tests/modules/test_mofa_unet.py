"""SVD's UNet forward with MOFA's residuals: diffusers' forward without them, MOFA's multiplicity with them."""

from __future__ import annotations

import torch

from motionforge.backbones.diffusion import tiny
from motionforge.modules import mofa_unet

MOFA_MULTIPLICITY = [4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1]


def inputs(batch: int = 1, frames: int = 3):
    """A tiny SVD UNet's input: sample [B, F, 8, 8, 8], timestep, image embedding [B, 1, 32], added time ids [B, 3]."""
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(batch, frames, 8, 8, 8, generator=generator)
    return sample, torch.tensor(0.7), torch.randn(batch, 1, 32, generator=generator), torch.tensor([[6.0, 127.0, 0.02]] * batch)


def test_without_residuals_it_is_diffusers_forward_exactly() -> None:
    unet = tiny.tiny_svd_components()["unet"]
    sample, timestep, embeddings, time_ids = inputs(batch=2)
    with torch.no_grad():
        expected = unet(sample, timestep, encoder_hidden_states=embeddings, added_time_ids=time_ids, return_dict=False)[0]
        assert torch.equal(mofa_unet.forward(unet, sample, timestep, embeddings, time_ids), expected)


def test_the_full_size_unet_adds_skip_k_its_residual_4_4_4_4_3_3_3_2_2_2_1_1_times() -> None:
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel()  # diffusers' defaults are SVD's
    assert mofa_unet.skip_counts(unet) == [1, 4, 7, 10, 12]
    assert mofa_unet.multiplicities(unet) == MOFA_MULTIPLICITY


def test_one_hot_residuals_reach_the_up_blocks_that_many_times_and_the_mid_one_once() -> None:
    unet = tiny.tiny_svd_components()["unet"]
    sample, timestep, embeddings, time_ids = inputs()
    seen: list[dict] = []

    def capture(module, args, kwargs):
        seen[-1][module] = ([t.clone() for t in kwargs["res_hidden_states_tuple"]], kwargs["hidden_states"].clone())

    hooks = [block.register_forward_pre_hook(capture, with_kwargs=True) for block in unet.up_blocks]

    def skips_and_mid(down, mid) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The skips the up blocks receive (in the order they were gathered) and the first up block's input."""
        seen.append({})
        with torch.no_grad():
            mofa_unet.forward(unet, sample, timestep, embeddings, time_ids, down, mid)
        taken = [seen[-1][block][0] for block in unet.up_blocks]
        return [skip for tensors in reversed(taken) for skip in tensors], seen[-1][unet.up_blocks[0]][1]

    try:
        plain, plain_mid = skips_and_mid(None, None)
        zeros = [torch.zeros_like(skip) for skip in plain]
        measured = []
        for k in range(len(plain)):
            residual = torch.randn(plain[k].shape, generator=torch.Generator().manual_seed(k))
            skips, mid = skips_and_mid([residual if i == k else z for i, z in enumerate(zeros)], torch.zeros_like(plain_mid))
            assert all(torch.equal(skips[i], plain[i]) for i in range(len(plain)) if i != k) and torch.equal(mid, plain_mid)
            ratio = ((skips[k] - plain[k]) / residual).median()
            assert torch.allclose(skips[k] - plain[k], ratio * residual, atol=1e-5)
            measured.append(round(float(ratio)))
        residual = torch.randn(plain_mid.shape, generator=torch.Generator().manual_seed(99))
        _, mid = skips_and_mid(zeros, residual)
        assert torch.allclose(mid - plain_mid, residual, atol=1e-6)  # the mid residual: once
    finally:
        for hook in hooks:
            hook.remove()
    assert measured == mofa_unet.multiplicities(unet) == [2, 2, 2, 2, 1, 1]  # two blocks: the full size's rule, shorter
