"""The gradient step shared by the models that write their own ``train_step`` (GAN, VAE, translator)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf


def descend(optimizer, variables: Sequence[tf.Variable], compute: Callable[[], tuple], minimise: int = 0) -> tuple:
    """One step of ``optimizer`` on ``variables`` down the loss ``compute()[minimise]``; returns all of ``compute()``.

    The loss is this replica's mean (not a Keras loss object's value, which is already divided by the replicas).
    Under a strategy of N replicas the optimizer sums the replicas' gradients, so the loss is divided by N: the step
    follows the mean of the replicas' means (the global batch's mean where the shares are equal). It is
    scaled inside the tape: under mixed precision the loss-scaling optimizer unscales the gradients it is given, and
    a loss scaled outside the tape has no gradients at all.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
        outputs = compute()
        scaled = optimizer.scale_loss(outputs[minimise] / replicas if replicas > 1 else outputs[minimise])
    optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
    return outputs
