"""The models a server holds: each exported SavedModel under a name, with TF Serving's status and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from apps.serving.tensors import Spec

VERSION = "1"  # one export per run: TF Serving would number its folders; here each model has version 1


@dataclass
class Signature:
    name: str
    function: object  # the loaded concrete function
    inputs: dict[str, Spec]
    outputs: dict[str, Spec]

    @property
    def batchable(self) -> bool:
        """Every input and output has the examples on its first axis: requests can be stacked and split."""
        return all(s.batched for s in self.inputs.values()) and all(s.batched for s in self.outputs.values())

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {name: tf.constant(value, dtype=self.inputs[name].dtype) for name, value in inputs.items()}
        return {name: value.numpy() for name, value in self.function(**tensors).items()}


@dataclass
class Servable:
    name: str
    path: Path
    signatures: dict[str, Signature]
    signature_defs: dict = field(repr=False, default_factory=dict)  # as saved_model.pb states them, for metadata

    @classmethod
    def load(cls, name: str, path: Path) -> Servable:
        loaded = tf.saved_model.load(str(path))
        signatures = {}
        for key, function in loaded.signatures.items():
            _, kwargs = function.structured_input_signature
            outputs = function.structured_outputs
            signatures[key] = Signature(
                key,
                function,
                {k: Spec.of(k, v) for k, v in kwargs.items()},
                {k: Spec.of(k, v) for k, v in outputs.items()},
            )
        servable = cls(name, path, signatures, _signature_defs(path))
        servable._keep = loaded  # the functions need their object alive
        return servable

    def status(self) -> dict:
        """``GET /v1/models/NAME``: TF Serving's GetModelStatusResponse."""
        return {
            "model_version_status": [
                {"version": VERSION, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        }

    def metadata(self) -> dict:
        """``GET /v1/models/NAME/metadata``: TF Serving's GetModelMetadataResponse (the SignatureDefs)."""
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": VERSION},
            "metadata": {"signature_def": {"signature_def": self.signature_defs}},
        }


def _signature_defs(path: Path) -> dict:
    model = saved_model_pb2.SavedModel()
    model.ParseFromString((path / "saved_model.pb").read_bytes())
    defs = model.meta_graphs[0].signature_def
    return {key: json_format.MessageToDict(value, preserving_proto_field_name=True) for key, value in defs.items()}
