"""Generative models: a DCGAN (optionally class-conditional) and a convolutional VAE.

Each is a ``keras.Model`` with its own ``train_step``, trained by the shared driver's ``fit``.
Called on a latent batch (and labels, when conditional) every model returns images in [-1, 1],
so sampling, evaluation and the exported graph treat them alike.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf
from keras import layers

from pipelines.core.layers import networks_from, with_networks
from pipelines.core.registry import Registry
from pipelines.core.steps import descend

MODELS = Registry("generative model")


@dataclasses.dataclass
class Shape:
    """What a builder needs to know about the data."""

    image: tuple[int, int, int]  # (h, w, c), h and w multiples of 4
    classes: int


def upsampling_generator(config, shape: Shape, conditional: bool, name: str = "generator") -> keras.Model:
    """latent (+ label) -> image in [-1, 1]: a dense layer to a quarter-size map, two stride-2 transposed
    convolutions."""
    h, w, c = shape.image
    latent = keras.Input((config.latent_dim,), name="latent")
    inputs, x = [latent], latent
    if conditional:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        x = layers.Concatenate()([x, layers.Embedding(shape.classes, config.latent_dim)(label)])
    x = layers.Dense((h // 4) * (w // 4) * config.width * 2, use_bias=False)(x)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
    x = layers.Reshape((h // 4, w // 4, config.width * 2))(x)
    for filters in (config.width * 2, config.width):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
    images = layers.Conv2D(c, 5, padding="same", activation="tanh", dtype="float32", name="images")(x)
    return keras.Model(inputs, images, name=name)


def downsampling_discriminator(config, shape: Shape, conditional: bool) -> keras.Model:
    """image (+ label) -> one logit (real vs generated): two stride-2 convolutions, dropout, a dense layer."""
    h, w, c = shape.image
    image = keras.Input(shape.image, name="image")
    inputs, x = [image], image
    if conditional:  # the label as one more image channel
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        plane = layers.Reshape((h, w, 1))(layers.Embedding(shape.classes, h * w)(label))
        x = layers.Concatenate()([x, plane])
    for filters in (config.width, config.width * 2):
        conv = layers.Conv2D(filters, 4, strides=2, padding="same")
        x = layers.LeakyReLU(0.2)(layers.SpectralNormalization(conv)(x) if config.spectral_norm else conv(x))
    x = layers.Dropout(0.3)(layers.Flatten()(x))
    outputs = layers.Dense(1, dtype="float32", name="real")(x)
    if conditional and config.class_loss_weight:  # AC-GAN's second head: which class the image shows
        outputs = [outputs, layers.Dense(shape.classes, dtype="float32", name="classes")(x)]
    return keras.Model(inputs, outputs, name="discriminator")


def replica_normal(shape):
    """Standard normal draws of this replica's own. Every worker traces the same graph with the same seeds, so a plain
    draw would give every worker the same noise for its share of a batch: each folds its replica number into the
    seed of a stateless draw."""
    context = tf.distribute.get_replica_context()
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32) if context is not None else 0
    seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32) + tf.stack([0, replica])
    return tf.random.stateless_normal(shape, seed=seed)


@keras.saving.register_keras_serializable(package="dlapps")
class GAN(keras.Model):
    """Generator and discriminator trained in turn, each by its own optimizer (compile's ``optimizer`` is the
    generator's, ``discriminator_optimizer`` the discriminator's)."""

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim: int,
        conditional: bool = False,
        label_smoothing: float = 0.0,
        class_loss_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.conditional, self.label_smoothing = latent_dim, conditional, label_smoothing
        self.class_loss_weight = class_loss_weight
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True  # its two networks are built functional models

    def compile(self, optimizer, discriminator_optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        if (
            kwargs.get("auto_scale_loss", True)
            and self.dtype_policy.name == "mixed_float16"
            and not isinstance(discriminator_optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            # As compile does for ``optimizer``: float16 gradients of an unscaled loss underflow to zero.
            discriminator_optimizer = keras.optimizers.LossScaleOptimizer(discriminator_optimizer)
        self.discriminator_optimizer = discriminator_optimizer
        # Built now, so --resume can restore both optimizers' state before the first step.
        self.optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _conditioned(self, x, labels):
        return [x, labels] if self.conditional else x

    def latent_noise(self, batch):
        return replica_normal((batch, self.latent_dim))

    @staticmethod
    def bce(targets, logits):
        # This replica's mean, as descend() takes it (Keras' loss objects would also divide it by the replicas)
        return tf.reduce_mean(keras.losses.binary_crossentropy(targets, logits, from_logits=True))

    @staticmethod
    def class_loss(labels, logits):
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    def losses_of(self, images, labels, training: bool):
        latent = self.latent_noise(tf.shape(images)[0])
        fake = self.generator(self._conditioned(latent, labels), training=training)
        real_logits = self.discriminator(self._conditioned(images, labels), training=training)
        fake_logits = self.discriminator(self._conditioned(fake, labels), training=training)
        if self.class_loss_weight:  # AC-GAN: the discriminator learns the classes of real images, the generator
            real_logits, real_classes = real_logits  # is rewarded when its images show the class it was asked for
            fake_logits, fake_classes = fake_logits
        # One-sided label smoothing: real images are labelled 1 - smoothing, so the discriminator stays unsure.
        d_loss = self.bce(tf.fill(tf.shape(real_logits), 1.0 - self.label_smoothing), real_logits) + self.bce(
            tf.zeros_like(fake_logits), fake_logits
        )
        g_loss = self.bce(tf.ones_like(fake_logits), fake_logits)
        if self.class_loss_weight:
            d_loss += self.class_loss_weight * self.class_loss(labels, real_classes)
            g_loss += self.class_loss_weight * self.class_loss(labels, fake_classes)
        return d_loss, g_loss

    def train_step(self, data):
        images, labels = data

        def losses():
            return self.losses_of(images, labels, training=True)

        d_loss, _ = descend(self.discriminator_optimizer, self.discriminator.trainable_variables, losses)
        _, g_loss = descend(self.optimizer, self.generator.trainable_variables, losses, minimise=1)
        return self.track(d_loss, g_loss)

    def test_step(self, data):
        return self.track(*self.losses_of(*data, training=False))

    def track(self, d_loss, g_loss):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    NETWORKS = ("generator", "discriminator")

    def get_config(self):
        return with_networks(
            {
                **super().get_config(),
                "latent_dim": self.latent_dim,
                "conditional": self.conditional,
                "label_smoothing": self.label_smoothing,
                "class_loss_weight": self.class_loss_weight,
            },
            self,
        )

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from(config, cls.NETWORKS))


@MODELS.register("dcgan")
def build_dcgan(config, shape: Shape) -> keras.Model:
    """DCGAN: transposed-convolution generator, convolutional discriminator, two optimizers."""
    return GAN(
        upsampling_generator(config, shape, False),
        downsampling_discriminator(config, shape, False),
        config.latent_dim,
        False,
        config.label_smoothing,
        name="dcgan",
    )


@MODELS.register("cgan")
def build_cgan(config, shape: Shape) -> keras.Model:
    """Class-conditional DCGAN: both networks see the label (sample --label 7; the default)."""
    return GAN(
        upsampling_generator(config, shape, True),
        downsampling_discriminator(config, shape, True),
        config.latent_dim,
        True,
        config.label_smoothing,
        config.class_loss_weight,
        name="cgan",
    )


@keras.saving.register_keras_serializable(package="dlapps")
class VAE(keras.Model):
    """Variational autoencoder: the encoder gives a Gaussian per image, the decoder an image per latent point.
    Loss: per-pixel cross-entropy of the reconstruction (images scaled to [0, 1]) + kl_weight * KL to N(0, I)."""

    def __init__(self, encoder, decoder, latent_dim: int, kl_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.kl_weight = latent_dim, kl_weight
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", "reconstruction_loss", "kl_loss")]
        self.built = True

    @property
    def metrics(self):
        return self.trackers

    def call(self, latent, training=False):
        return self.decoder(latent, training=training)

    def losses_of(self, images, training: bool):
        mean, log_variance = self.encoder(images, training=training)
        latent = mean + tf.exp(0.5 * log_variance) * replica_normal(tf.shape(mean))
        reconstruction = self.decoder(latent, training=training)
        targets, predicted = (images + 1) / 2, tf.clip_by_value((reconstruction + 1) / 2, 1e-6, 1 - 1e-6)
        pixels = -(targets * tf.math.log(predicted) + (1 - targets) * tf.math.log(1 - predicted))
        reconstruction_loss = tf.reduce_mean(tf.reduce_sum(pixels, axis=[1, 2, 3]))
        kl = tf.reduce_mean(-0.5 * tf.reduce_sum(1 + log_variance - mean**2 - tf.exp(log_variance), axis=1))
        return reconstruction_loss + self.kl_weight * kl, reconstruction_loss, kl

    def train_step(self, data):
        images, _ = data
        return self.track(
            descend(self.optimizer, self.trainable_variables, lambda: self.losses_of(images, training=True))
        )

    def test_step(self, data):
        return self.track(self.losses_of(data[0], training=False))

    def track(self, losses):
        for tracker, value in zip(self.trackers, losses):
            tracker.update_state(value)
        return {t.name: t.result() for t in self.trackers}

    NETWORKS = ("encoder", "decoder")

    def get_config(self):
        return with_networks({**super().get_config(), "latent_dim": self.latent_dim, "kl_weight": self.kl_weight}, self)

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from(config, cls.NETWORKS))


@MODELS.register("vae")
def build_vae(config, shape: Shape) -> keras.Model:
    """Convolutional variational autoencoder (the decoder samples; the encoder is used in training only)."""
    image = keras.Input(shape.image, name="image")
    x = image
    for filters in (config.width, config.width * 2):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Dense(config.width * 2, activation="relu")(layers.Flatten()(x))
    # The Gaussian in float32 under mixed precision too: exp(log_variance) and the KL term overflow in float16.
    encoder = keras.Model(
        image,
        [
            layers.Dense(config.latent_dim, dtype="float32", name="mean")(x),
            layers.Dense(config.latent_dim, dtype="float32", name="log_variance")(x),
        ],
        name="encoder",
    )
    decoder = upsampling_generator(config, shape, False, name="decoder")
    return VAE(encoder, decoder, config.latent_dim, config.kl_weight, name="vae")
