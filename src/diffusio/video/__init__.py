"""Video diffusion: text-to-video, and enhancing clips (denoise, fill missing frames, extend).

The image stack with one more axis (Video Diffusion Models, Ho et al. 2022): a factorised
space-time UNet (:mod:`.net`) under the same EDM preconditioning, samplers, guidance, EMA,
training loop and checkpoints as the images.  The pieces:

* :mod:`.clips`: Moving Fashion-MNIST, seeded clips of garments moving on a canvas, with captions;
* :mod:`.io`: GIF / MP4 / PNG-strip files; :mod:`.folder`: a folder of a user's clips;
* :mod:`.generator`: :class:`VideoGenerator`, the friendly API (``generate``, ``denoise``, ``fill``,
  ``extend``); :mod:`.editing` holds the enhancement functions it calls;
* :mod:`.training`: ``train_video`` (built-in clips or a folder);
* :mod:`.motion`: motion guidance, a noise-aware motion classifier and a reader of the caption's
  motion that steer sampling toward the motion the prompt names (``attach_motion_guide``);
* :mod:`.evaluation` and :mod:`.classifier`: the judges (object class per frame, motion from the
  centroid path, consistency, a Fréchet distance on a space-time classifier's features);
* :mod:`.files`: the file-level tasks behind ``diffusio video``.

May import: ``diffusio.generative`` (core, nets, training, conditioning, evaluation), ``_io``, ``errors``.

>>> from diffusio.video import VideoGenerator
>>> VideoGenerator.load().frames
16
"""

from diffusio.video.clips import moving_clips
from diffusio.video.generator import VideoGenerator
from diffusio.video.io import read_video, write_video

__all__ = ["VideoGenerator", "moving_clips", "read_video", "write_video"]
