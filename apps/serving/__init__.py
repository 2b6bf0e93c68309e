"""``dlapps serve``: exported SavedModels behind TensorFlow Serving's REST API (``/v1/models/NAME:predict``),
with requests gathered into batches and a demo page; a client written for TF Serving works unchanged."""
