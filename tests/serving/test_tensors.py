"""TF Serving's JSON for tensors, as its REST API document writes it (row and columnar formats, b64)."""

import base64

import numpy as np
import pytest
import tensorflow as tf

from apps.serving.tensors import BadRequest, Spec, decode_request, encode_response


def specs(**shapes):
    return {name: Spec(name, dtype, shape) for name, (dtype, shape) in shapes.items()}


THREE = specs(tag=(tf.string, (None,)), signal=(tf.float32, (None, 5)), sensor=(tf.float32, (None, 2, 2)))


def test_the_documents_row_and_columnar_examples_decode_alike():
    rows = {
        "instances": [
            {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
            {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
        ]
    }
    columns = {
        "inputs": {
            "tag": ["foo", "bar"],
            "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
            "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]],
        }
    }
    (by_rows, is_rows), (by_columns, is_columns) = decode_request(rows, THREE), decode_request(columns, THREE)
    assert is_rows and not is_columns
    for name in THREE:
        np.testing.assert_array_equal(by_rows[name], by_columns[name])
    assert by_rows["sensor"].shape == (2, 2, 2) and by_rows["sensor"].dtype == np.float32
    assert by_rows["tag"].tolist() == [b"foo", b"bar"]


def test_one_input_takes_its_values_bare_and_binary_as_b64():
    image = specs(image_bytes=(tf.string, (None,)))
    png = b"\x89PNG\r\n\x1a\n not utf-8 \xff"
    got, _ = decode_request({"instances": [{"b64": base64.b64encode(png).decode()}]}, image)
    assert got["image_bytes"].tolist() == [png]
    got, _ = decode_request({"inputs": [{"b64": base64.b64encode(png).decode()}, "text"]}, image)
    assert got["image_bytes"].tolist() == [png, b"text"]
    got, _ = decode_request({"instances": [{"image_bytes": "named"}]}, image)  # named, as TF Serving also allows
    assert got["image_bytes"].tolist() == [b"named"]


def test_outputs_as_predictions_or_outputs_and_bytes_as_b64():
    outputs = {"class_name": np.array([b"cat", b"dog"], dtype=object), "scores": np.array([[0.5], [0.25]])}
    assert encode_response(outputs, rows=True) == {
        "predictions": [{"class_name": "cat", "scores": [0.5]}, {"class_name": "dog", "scores": [0.25]}]
    }
    assert encode_response(outputs, rows=False) == {
        "outputs": {"class_name": ["cat", "dog"], "scores": [[0.5], [0.25]]}
    }
    assert encode_response({"y": np.array([3.5, 4.0, 5.5])}, rows=True) == {"predictions": [3.5, 4.0, 5.5]}
    assert encode_response({"png_bytes": np.array([b"\x89PNG"], dtype=object)}, rows=True) == {
        "predictions": [{"b64": base64.b64encode(b"\x89PNG").decode()}]
    }


@pytest.mark.parametrize(
    "body,fragment",
    [
        ([1, 2], "must be a JSON object"),
        ({"instances": [1], "inputs": [1]}, "exactly one of"),
        ({"examples": [1]}, "exactly one of"),
        ({"instances": []}, "'instances' is empty"),
        ({"instances": {"tag": "x"}}, "must be a list"),
        ({"instances": [{"tag": "x", "signal": [1] * 5}]}, "lacks 'sensor'"),
        ({"instances": [{"tag": "x", "signal": [1] * 5, "sensor": [[1, 2], [3, 4]], "extra": 1}]}, "unknown 'extra'"),
        ({"instances": ["just a value"]}, "must be an object of the named inputs"),
        ({"inputs": {"tag": ["x"], "signal": [[1, 2, 3, 4]], "sensor": [[[1, 2], [3, 4]]]}}, "shape [1, 4]"),
        ({"inputs": {"tag": ["x"], "signal": [[1, 2, 3, 4, "5"]], "sensor": [[[1, 2], [3, 4]]]}}, "got a string"),
        ({"inputs": {"tag": ["x"], "signal": [[1, 2, 3, 4, None]], "sensor": [[[1, 2], [3, 4]]]}}, "got null"),
        ({"inputs": {"tag": ["x"], "signal": [[1, 2, 3], [4, 5]], "sensor": [[[1, 2], [3, 4]]]}}, "different lengths"),
        ({"inputs": {"tag": [7], "signal": [[1] * 5], "sensor": [[[1, 2], [3, 4]]]}}, "expected strings"),
        ({"inputs": {"tag": [{"b64": "!!!"}], "signal": [[1] * 5], "sensor": [[[1, 2], [3, 4]]]}}, "not valid base64"),
    ],
)
def test_bad_requests_name_what_is_wrong(body, fragment):
    with pytest.raises(BadRequest, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        decode_request(body, THREE)


def test_integer_inputs_take_whole_numbers_in_range():
    seeds = specs(seed=(tf.int32, (None,)))
    assert decode_request({"instances": [1, 2.0]}, seeds)[0]["seed"].tolist() == [1, 2]
    with pytest.raises(BadRequest, match="whole numbers"):
        decode_request({"instances": [1.5]}, seeds)
    with pytest.raises(BadRequest, match="out of the range of DT_INT32"):
        decode_request({"instances": [2**40]}, seeds)
