"""dlapps pipelines: per-domain deep-learning pipelines on Keras 3 and TensorFlow."""
