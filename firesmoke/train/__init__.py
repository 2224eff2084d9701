"""Training loops of the firesmoke models.

* :mod:`firesmoke.train.common`: seeding, metric logs (CSV + JSON), checkpoints and
  resume, progress bars, optimisers and learning-rate schedules;
* :mod:`firesmoke.train.augment`: random crop / flip / 90-degree rotation of image and
  mask pairs (the smoke reference augmentation);
* :mod:`firesmoke.train.smoke_data`: smoke chips in memory, class-balanced sampling,
  augmented batches, evaluation with the standard and legacy metrics;
* :mod:`firesmoke.train.smoke`: :func:`~firesmoke.train.smoke.train_smoke_classifier`
  and :func:`~firesmoke.train.smoke.train_smoke_segmenter` on a chip dataset;
  :mod:`firesmoke.train.smoke_init` loads torchvision ResNet-50 ImageNet weights for the
  classifier's reference recipe;
* :mod:`firesmoke.train.sources`, :mod:`firesmoke.train.sampler`,
  :mod:`firesmoke.train.augment_banet`, :mod:`firesmoke.train.banet` (with its steps in
  :mod:`firesmoke.train.banet_steps`): BA-Net training windows, augmentations and loop.

Submodules are imported on use, so importing :mod:`firesmoke.train` stays cheap.
"""

__all__ = ["augment", "common", "smoke", "smoke_data"]
