"""The gradient step shared by the models that write their own ``train_step`` (GAN, VAE, translator)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf


def descend(optimizer, variables: Sequence[tf.Variable], compute: Callable[[], tuple], minimise: int = 0) -> tuple:
    """One step of ``optimizer`` on ``variables`` down the loss ``compute()[minimise]``; returns all of ``compute()``.

    The loss is scaled inside the tape: under mixed precision the loss-scaling optimizer unscales the gradients
    it is given, and a loss scaled outside the tape has no gradients at all.
    """
    with tf.GradientTape() as tape:
        outputs = compute()
        scaled = optimizer.scale_loss(outputs[minimise])
    optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
    return outputs
