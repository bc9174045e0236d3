"""What Wan's transformer reads besides the noise, as WanImageToVideoPipeline builds it, and the decoder of its latents.

The prompt through UMT5 (cleaned as diffusers cleans it, padded to ``max_sequence_length``, zero
past its own tokens), CLIP's penultimate image features (Wan 2.1), and the picture through the
causal VAE: for I2V a 4-channel mask (the first latent frame is the picture) and the latents of the
picture followed by black frames; for TI2V the picture's own latent. Latents are normalised per
channel by the VAE's ``latents_mean`` and ``latents_std``. ``models`` is a loaded
:class:`~motionforge.backbones.diffusion.wan.WanModels`.
"""

from __future__ import annotations

import html
import importlib.util
import logging
import re
from typing import Any

import torch
from einops import rearrange
from PIL import Image

from motionforge.backbones.diffusion.schedules import Schedule
from motionforge.core.types import Decode

log = logging.getLogger(__name__)

LAYOUT = "b f c h w -> b c f h w"  # the sampler's latents as WanImageToVideoPipeline holds them


def clean_prompt(text: str) -> str:
    """The prompt as diffusers cleans it for UMT5: ftfy's fixes (when installed), HTML entities undone, whitespace collapsed."""
    if importlib.util.find_spec("ftfy") is not None:
        import ftfy

        text = ftfy.fix_text(text)
    return re.sub(r"\s+", " ", html.unescape(html.unescape(text)).strip()).strip()


def encode_prompt(models: Any, prompt: str, length: int, device: torch.device) -> torch.Tensor:
    """UMT5's last hidden state for a prompt, padded to ``length`` tokens and zero past the prompt's own: [1, length, D]."""
    tokens = models.tokenizer(
        [clean_prompt(prompt)],
        padding="max_length",
        max_length=length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    if len(models.tokenizer(clean_prompt(prompt)).input_ids) > length:
        log.warning("the prompt is longer than backbone.max_sequence_length=%d tokens; the rest is cut off", length)
    mask = tokens.attention_mask  # [1, length]
    hidden = models.text_encoder(tokens.input_ids.to(device), mask.to(device)).last_hidden_state  # [1, length, D]
    kept = int(mask.gt(0).sum())
    hidden = torch.cat([hidden[:, :kept], hidden.new_zeros(1, length - kept, hidden.shape[-1])], dim=1)
    return hidden.to(models.transformer.dtype)


def picture_pil(image: torch.Tensor) -> Image.Image:
    """The picture [3, H, W] in [0, 1] as the 8-bit PIL image a diffusers user would hand the pipeline."""
    pixels = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(rearrange(pixels, "c h w -> h w c").numpy())


def clip_features(models: Any, image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """CLIP's penultimate hidden states of the picture, as Wan 2.1 reads them: [1, N, D]."""
    pixels = models.image_processor(images=picture_pil(image), return_tensors="pt").pixel_values  # [1, 3, S, S]
    hidden = models.image_encoder(pixel_values=pixels.to(device, models.image_encoder.dtype), output_hidden_states=True)
    return hidden.hidden_states[-2].to(models.transformer.dtype)


def normalising(models: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE's per-channel latent mean and std [1, C, 1, 1, 1]: a model latent is (raw − mean)/std."""
    config = models.vae.config
    mean = torch.tensor(config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1).to(device)
    std = torch.tensor(config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1).to(device)
    return mean, std


def encode_video(models: Any, video: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A pixel video [1, 3, F, H, W] in [-1, 1] → its normalised VAE latents (the mode) [1, C, F_l, h, w] in float32."""
    vae = models.vae
    latent = vae.encode(video.to(device=device, dtype=vae.dtype)).latent_dist.mode().float()  # [1, C, F_l, h, w]
    mean, std = normalising(models, latent.device)
    return (latent - mean) / std


def picture_condition(models: Any, image: torch.Tensor, num_frames: int, device: torch.device) -> torch.Tensor:
    """What the transformer reads of the picture beside the noise, as the pipeline builds it.

    I2V: a mask (4 channels: the first latent frame's 4 sub-frames are the picture, the rest not)
    and the latents of the picture followed by black frames, [1, 4 + C, F_l, h, w]; TI2V: the
    picture's own latent [1, C, 1, h, w].
    """
    pixels = image[None, :, None].float().cpu() * 2.0 - 1.0  # [1, 3, 1, H, W] in [-1, 1]
    if models.layout.expand_timesteps:
        return encode_video(models, pixels, device)
    video = torch.cat([pixels, pixels.new_zeros(1, 3, num_frames - 1, *pixels.shape[-2:])], dim=2)  # [1, 3, F, H, W]
    latents = encode_video(models, video, device)  # [1, C, F_l, h, w]
    factor, frames = models.temporal, latents.shape[2]
    known = torch.zeros(1, 1, frames, *latents.shape[-2:], device=latents.device)  # [1, 1, F_l, h, w]
    known[:, :, 0] = 1
    mask = known.repeat_interleave(factor, dim=1)  # [1, 4, F_l, h, w]: the 4 sub-frames of each latent frame
    return torch.cat([mask, latents], dim=1)


def reference_latent(models: Any, image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The clean picture as a normalised single-frame latent [1, C, h, w]: what latent_init warps and the region hold keeps.

    It is latent frame 0 of the clip; the later latent frames of a still clip (4 frames each) are
    taken to look like it too.
    """
    pixels = image[None, :, None].float().cpu() * 2.0 - 1.0  # [1, 3, 1, H, W]
    return encode_video(models, pixels, device)[:, :, 0]


def wan_decoder(models: Any, schedule: Schedule) -> Decode:
    """A decoder bound to a run's VAE and schedule (TI2V's latent frame 0 is already the picture's: the steering holds it)."""
    vae = models.vae

    @torch.no_grad()
    def decode(latents: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """Latents [1, F_l, C, h, w] at sigma (default: the schedule's final one) → frames [4(F_l − 1) + 1, 3, H, W] in [0, 1]."""
        sample = schedule.to_sample(latents, schedule.final_sigma if sigma is None else sigma)  # [1, F_l, C, h, w]
        video = rearrange(sample, LAYOUT).float()  # [1, C, F_l, h, w]
        mean, std = normalising(models, video.device)
        pixels = vae.decode((video * std + mean).to(vae.dtype), return_dict=False)[0]  # [1, 3, F, H, W]
        return (rearrange(pixels, "1 c f h w -> f c h w").float() / 2 + 0.5).clamp(0, 1)

    return decode
