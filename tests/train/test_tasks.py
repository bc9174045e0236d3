"""The three training tasks: a few steps on one fixed batch lower each loss, and each saves a folder the real loaders read."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from motionforge.modules.mofa import load_adapter
from motionforge.toy.dataset import ToyDataset, write_dataset
from motionforge.toy.world import WorldSettings
from motionforge.train.adapter import AdapterTask, load_svd
from motionforge.train.data import load_clips
from motionforge.train.loop import step_generator
from motionforge.train.unet import UnetTask
from motionforge.train.vae import VaeTask

SMALL = WorldSettings(size=32, num_frames=4)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four small toy clips in memory."""
    return load_clips(ToyDataset.open(write_dataset(tmp_path_factory.mktemp("toy") / "data", SMALL, count=4)))


def lowered(task, steps: int = 4, lr: float = 1e-3) -> tuple[float, float]:
    """The loss on one fixed batch before and after a few Adam steps on it."""
    batch = task.batch(0, step_generator(0, 0, 0), torch.device("cpu"))
    optimiser = torch.optim.Adam([p for p in task.module.parameters() if p.requires_grad], lr=lr)
    first = None
    for _ in range(steps):
        loss = task.module(**batch)
        first = float(loss) if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return first, float(task.module(**batch))


@pytest.fixture(scope="module")
def folders(clips, tmp_path_factory):
    """A VAE folder, an SVD pipeline folder on it and an adapter folder on that, each saved by its task (random weights)."""
    root = tmp_path_factory.mktemp("models")
    vae = VaeTask(clips, OmegaConf.create({"batch_size": 2, "kl_weight": 1e-6}), seed=0)
    vae.save(vae.module, root / "vae")
    unet = UnetTask(
        clips, OmegaConf.create({"vae": str(root / "vae"), "batch_size": 2, "uncond_prob": 0.1, "p_mean": 0.7, "p_std": 1.6}), 0
    )
    unet.save(unet.module, root / "svd")
    model = {"svd": str(root / "svd"), "batch_size": 2, "variants": 2, "uncond_prob": 0.1, "p_mean": 0.7, "p_std": 1.6}
    adapter = AdapterTask(clips, OmegaConf.create(model), 0)
    adapter.save(adapter.module, root / "mofa")
    saved = {name: value.clone() for name, value in adapter.module.adapter.state_dict().items()}
    return {"root": root, "vae": vae, "unet": unet, "adapter": adapter, "saved": saved}


@pytest.mark.parametrize("name", ["vae", "unet", "adapter"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(folders, name):
    before, after = lowered(folders[name])
    assert after < before


def test_the_vae_records_its_latent_scale_and_the_pipeline_keeps_the_vae_it_was_trained_on(folders):
    from diffusers import AutoencoderKLTemporalDecoder

    saved = AutoencoderKLTemporalDecoder.from_pretrained(folders["root"] / "svd" / "vae")
    assert saved.config.scaling_factor == folders["unet"].vae.config.scaling_factor != 0.18215


def test_the_saved_adapter_loads_through_the_released_adapters_loader(folders):
    svd = load_svd(str(folders["root"] / "svd"), "model.svd")
    adapter = load_adapter(folders["root"] / "mofa", "traj", svd.unet.config, "backbone.mofa")
    assert all(torch.equal(value, folders["saved"][name]) for name, value in adapter.state_dict().items())


def test_the_adapter_sees_the_flow_the_trajectory_control_plans(folders):
    flows = folders["adapter"].flows  # [N, V, F, 2, h, w] at the latents' size (the VAE's factor 4: 8×8 for 32 px)
    assert flows.shape[1:] == (2, 4, 2, 8, 8)
    assert flows[:, :, 0].abs().max() == 0 and flows[:, :, -1].abs().max() > 1  # frame 0 still; the sprites move
