"""TF Serving's JSON for tensors: a request's ``instances`` (rows) or ``inputs`` (columns) as NumPy arrays checked
against the signature, and outputs back as ``predictions`` or ``outputs``.

Strings arrive as JSON text or as ``{"b64": ...}`` (binary: image and WAV bytes); outputs whose name ends in
``_bytes`` go back as ``{"b64": ...}``, as TF Serving does.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf


class BadRequest(Exception):
    """A request the signature cannot take: a 400 with this message."""


@dataclass(frozen=True)
class Spec:
    """One input or output of a signature: its dtype and shape (None: any size)."""

    name: str
    dtype: tf.DType
    shape: tuple[int | None, ...] | None  # None: any rank

    @classmethod
    def of(cls, name: str, spec) -> Spec:
        rank = spec.shape.rank
        return cls(name, spec.dtype, None if rank is None else tuple(spec.shape.as_list()))

    @property
    def batched(self) -> bool:
        """Its first axis is the examples' (any number of them): requests can be stacked along it."""
        return self.shape is not None and len(self.shape) >= 1 and self.shape[0] is None

    def describe(self) -> str:
        shape = (
            "any shape"
            if self.shape is None
            else "[" + ", ".join("-1" if d is None else str(d) for d in self.shape) + "]"
        )
        return f"{dtype_name(self.dtype)} {shape}"


def dtype_name(dtype: tf.DType) -> str:
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(dtype.as_datatype_enum)


def decode_request(body: Any, inputs: dict[str, Spec]) -> tuple[dict[str, np.ndarray], bool]:
    """The named input arrays of a predict request, and whether it was in row format (``instances``)."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in body) == ("inputs" in body):
        raise BadRequest("give exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    if "instances" in body:
        return _from_rows(body["instances"], inputs), True
    return _from_columns(body["inputs"], inputs), False


def _from_rows(instances: Any, inputs: dict[str, Spec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise BadRequest("'instances' must be a list, one item per example")
    if not instances:
        raise BadRequest("'instances' is empty: give at least one example")
    names = list(inputs)
    columns: dict[str, list] = {name: [] for name in names}
    for i, instance in enumerate(instances):
        if len(names) == 1 and not (isinstance(instance, dict) and set(instance) == set(names)):
            columns[names[0]].append(instance)  # one input: the instance is its value
            continue
        if not isinstance(instance, dict):
            raise BadRequest(f"instances[{i}] must be an object of the named inputs: {', '.join(names)}")
        _check_names(instance, inputs, where=f"instances[{i}]")
        for name in names:
            columns[name].append(instance[name])
    return {name: _array(values, inputs[name], where=f"'{name}'") for name, values in columns.items()}


def _from_columns(given: Any, inputs: dict[str, Spec]) -> dict[str, np.ndarray]:
    names = list(inputs)
    if not (isinstance(given, dict) and len(names) == 1 and set(given) == set(names)) and len(names) == 1:
        given = {names[0]: given}  # one input: 'inputs' is its value
    if not isinstance(given, dict):
        raise BadRequest(f"'inputs' must be an object of the named inputs: {', '.join(names)}")
    _check_names(given, inputs, where="'inputs'")
    return {name: _array(given[name], inputs[name], where=f"'{name}'") for name in names}


def _check_names(given: dict, inputs: dict[str, Spec], where: str) -> None:
    missing = [name for name in inputs if name not in given]
    unknown = [name for name in given if name not in inputs]
    if missing or unknown:
        parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"has unknown {', '.join(map(repr, unknown))}"] if unknown else []
        )
        raise BadRequest(f"{where} {' and '.join(parts)}; the signature takes: {', '.join(inputs)}")


def _array(value: Any, spec: Spec, where: str) -> np.ndarray:
    """``value`` (nested lists) as an array of the spec's dtype and shape, or a BadRequest naming the input."""
    shape = _rectangular_shape(value, where)
    leaves = [_leaf(leaf, spec.dtype, where) for leaf in _leaves(value, len(shape))]
    if spec.dtype == tf.string:
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
    else:
        try:
            array = np.array(leaves, dtype=spec.dtype.as_numpy_dtype)
        except OverflowError:
            raise BadRequest(f"input {where}: a value out of the range of {dtype_name(spec.dtype)}") from None
    array = array.reshape(shape)
    _check_shape(array, spec, where)
    return array


def _leaf(value: Any, dtype: tf.DType, where: str) -> Any:
    """One JSON value as the dtype takes it: text or {"b64": ...} for strings, true/false, whole numbers, numbers."""
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest(f"input {where}: 'b64' is not valid base64") from None
        raise BadRequest(f'input {where}: expected strings or {{"b64": ...}} for DT_STRING, got {_kind(value)}')
    if dtype == tf.bool:
        if isinstance(value, bool):
            return value
        raise BadRequest(f"input {where}: expected true or false for DT_BOOL, got {_kind(value)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"input {where}: expected numbers for {dtype_name(dtype)}, got {_kind(value)}")
    if dtype.is_integer and not float(value).is_integer():
        raise BadRequest(f"input {where}: expected whole numbers for {dtype_name(dtype)}, got {value!r}")
    return value


def _kind(value: Any) -> str:
    return {type(None): "null", bool: "true/false", str: "a string", dict: "an object"}.get(type(value), "a number")


def _leaves(value: Any, depth: int) -> list:
    return [value] if depth == 0 else [leaf for item in value for leaf in _leaves(item, depth - 1)]


def _rectangular_shape(value: Any, where: str) -> tuple[int, ...]:
    shape, level = [], [value]
    while level and all(isinstance(x, list) for x in level):
        lengths = {len(x) for x in level}
        if len(lengths) != 1:
            raise BadRequest(
                f"input {where}: lists of different lengths at depth {len(shape)}; a tensor is rectangular"
            )
        shape.append(lengths.pop())
        level = [y for x in level for y in x]
    if any(isinstance(x, list) for x in level):
        raise BadRequest(f"input {where}: lists and values mixed at depth {len(shape)}; a tensor is rectangular")
    return tuple(shape)


def _check_shape(array: np.ndarray, spec: Spec, where: str) -> None:
    if spec.shape is None:
        return
    expected = spec.shape
    if array.ndim != len(expected) or any(d is not None and d != n for d, n in zip(expected, array.shape)):
        got = "[" + ", ".join(map(str, array.shape)) + "]"
        raise BadRequest(f"input {where}: shape {got}, the signature takes {spec.describe()}")


def encode_response(outputs: dict[str, np.ndarray], rows: bool) -> dict:
    """``{"predictions": ...}`` (row format) or ``{"outputs": ...}`` (columnar), one output's name left out."""
    values = {name: _json(name, np.asarray(value)) for name, value in outputs.items()}
    if not rows:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    counts = {len(v) if isinstance(v, list) else None for v in values.values()}
    if len(counts) != 1 or None in counts:
        raise BadRequest("the outputs do not share a first dimension; ask in columnar format ('inputs')")
    return {"predictions": [{name: v[i] for name, v in values.items()} for i in range(counts.pop())]}


def _json(name: str, array: np.ndarray) -> Any:
    if array.dtype == object or array.dtype.kind == "S":
        binary = name.endswith("_bytes")
        return _map(array.tolist(), lambda b: _text(b, binary))
    return array.tolist()  # NaN and Infinity stay: TF Serving writes them as JSON tokens too


def _text(value: bytes, binary: bool) -> Any:
    if not binary:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(value).decode("ascii")}


def _map(value: Any, fn) -> Any:
    return [_map(v, fn) for v in value] if isinstance(value, list) else fn(value)
