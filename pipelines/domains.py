"""The registration of domains: CLI name -> (pipeline module, one-line description).

Adding a domain is one folder under ``pipelines/`` plus one line here. The CLI reads this
table without importing TensorFlow, so ``dlapps --help`` stays fast; the module is imported
only when a command of that domain runs. The module must expose ``PIPELINE``, an instance
of :class:`pipelines.core.pipeline.Pipeline`.
"""

DOMAINS = {
    "vision": ("pipelines.vision.pipeline", "Image classification: digits, MNIST, image folders, tfds."),
    "speech": (
        "pipelines.speech.pipeline",
        "Spoken-word classification from WAV files: log-mel CNN, LSTM, Transformer, raw-waveform CNN.",
    ),
    "fraud": (
        "pipelines.fraud.pipeline",
        "Card-fraud detection on transaction tables: simulator or CSV, time-based split, MLP, logistic, autoencoder, LSTM over card histories.",
    ),
    "generative": (
        "pipelines.generative.pipeline",
        "Image generation: DCGAN, class-conditional DCGAN and VAE on digits, MNIST, image folders, tfds.",
    ),
    "nlp": (
        "pipelines.nlp.pipeline",
        "Text classification from TSV/CSV, folders of .txt files or tfds: n-gram MLP, CNN, BiLSTM, Transformer; translation (--task translate): Transformer and LSTM encoder-decoders.",
    ),
}

# Domains whose models make examples instead of labelling them: `sample` takes the place of `predict`.
SAMPLING = {"generative"}

# Domains with more than one task (`train --task NAME`; the first is the default). The module's TASKS maps
# each name to its pipeline; a run directory's config.yaml records its task.
TASKS = {"nlp": ("classify", "translate")}
