"""`dlapps serve` as a client sees it: a real server process on a free loopback port, answered over HTTP in TF
Serving's REST format (its document's requests and responses), batching concurrent requests, refusing bad
requests with a 4xx and a message while it goes on serving, stopping on Ctrl-C."""

import base64
import json
import signal
import socket
import threading

import numpy as np
import pytest

from tests.helpers import assert_one_line_error, dlapps
from tests.serving.server import Server


@pytest.fixture(scope="module")
def half_plus_three(tmp_path_factory):
    """The model of TF Serving's REST document: y = x / 2 + 3; and a signature on its three-input example."""
    import tensorflow as tf

    class HalfPlusThree(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x / 2 + 3}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="tag"),
                tf.TensorSpec([None, 5], tf.float32, name="signal"),
                tf.TensorSpec([None, 2, 2], tf.float32, name="sensor"),
            ]
        )
        def three(self, tag, signal, sensor):
            return {"tag": tag, "total": tf.reduce_sum(signal, 1) + tf.reduce_sum(sensor, [1, 2])}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def broken(self, x):  # a model that fails when it runs (a file it needs is gone): not the client's fault
            return {"y": x + tf.strings.to_number(tf.io.read_file("/nonexistent/dlapps-serve-test"))}

    module, path = HalfPlusThree(), tmp_path_factory.mktemp("half_plus_three") / "saved_model"
    tf.saved_model.save(
        module,
        str(path),
        signatures={"serving_default": module.serve, "three": module.three, "broken": module.broken},
    )
    return path


@pytest.fixture(scope="module")
def server(folder_run, nlp_run, half_plus_three, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    models = [folder_run[0], nlp_run[0], f"half_plus_three={half_plus_three}"]
    served = Server([*models, "--batch-wait-ms", "30", "--max-body-mb", "1"], log)
    yield served
    served.stop()


def png_b64(folder_run) -> str:
    png = next((folder_run[0] / "samples").glob("*.png"))  # any PNG: the model fits it to its size
    return base64.b64encode(png.read_bytes()).decode()


def test_status_and_metadata_as_tf_serving_gives_them(server):
    assert server.call("/v1/models/shapes") == (
        200,
        {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
    )
    assert server.call("/v1/models/shapes/versions/1")[0] == 200
    status, metadata = server.call("/v1/models/shapes/metadata")
    assert status == 200 and metadata["model_spec"] == {"name": "shapes", "signature_name": "", "version": "1"}
    default = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert default["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert default["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"] == "3"
    assert default["method_name"] == "tensorflow/serving/predict"


def test_tf_serving_apis_own_messages_read_the_status_and_metadata(server):
    """What a TF Serving client parses our answers into: tensorflow-serving-api's protos."""
    pytest.importorskip("tensorflow_serving.apis", reason="tensorflow-serving-api is not installed")
    from google.protobuf import json_format
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

    status = json_format.ParseDict(server.call("/v1/models/shapes")[1], get_model_status_pb2.GetModelStatusResponse())
    (version,) = status.model_version_status
    assert version.version == 1 and version.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    metadata = server.call("/v1/models/shapes/metadata")[1]
    spec = json_format.ParseDict(metadata["model_spec"], model_pb2.ModelSpec())
    assert spec.name == "shapes" and spec.version.value == 1
    defs = json_format.ParseDict(metadata["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap())
    default = defs.signature_def["serving_default"]
    assert default.inputs["image_bytes"].dtype == types_pb2.DT_STRING
    assert [d.size for d in default.outputs["probabilities"].tensor_shape.dim] == [-1, 3]
    assert set(defs.signature_def) >= {"serving_default", "serving_pixels"}


def test_the_rest_documents_requests_get_its_answers(server):
    assert server.call("/v1/models/half_plus_three:predict", {"instances": [1.0, 2.0, 5.0]}) == (
        200,
        {"predictions": [3.5, 4.0, 5.5]},
    )
    rows = {
        "signature_name": "three",
        "instances": [
            {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
            {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
        ],
    }
    columns = {
        "signature_name": "three",
        "inputs": {
            "tag": ["foo", "bar"],
            "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
            "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]],
        },
    }
    assert server.call("/v1/models/half_plus_three:predict", rows) == (
        200,
        {"predictions": [{"tag": "foo", "total": 25.0}, {"tag": "bar", "total": 38.0}]},
    )
    assert server.call("/v1/models/half_plus_three:predict", columns) == (
        200,
        {"outputs": {"tag": ["foo", "bar"], "total": [25.0, 38.0]}},
    )
    status, answer = server.call("/v1/models/half_plus_three:classify", {"examples": [{"x": 1.0}]})
    assert status == 400 and ":classify" in answer["error"]


def test_a_model_that_fails_is_a_500_in_one_line_and_the_server_goes_on(server):
    status, answer = server.call("/v1/models/half_plus_three:predict", {"signature_name": "broken", "instances": [1.0]})
    assert status == 500 and answer["error"].startswith("the model failed") and "\n" not in answer["error"]
    assert "dlapps-serve-test" in answer["error"]
    assert server.call("/v1/models/half_plus_three:predict", {"instances": [1.0]}) == (200, {"predictions": [3.5]})


def test_predict_in_row_and_columnar_format_agrees_with_the_saved_model(server, folder_run):
    import tensorflow as tf

    image = png_b64(folder_run)
    status, rows = server.call("/v1/models/shapes:predict", {"instances": [{"b64": image}, {"b64": image}]})
    assert status == 200, rows
    assert len(rows["predictions"]) == 2 and set(rows["predictions"][0]) == {"class_id", "class_name", "probabilities"}
    status, columns = server.call("/v1/models/shapes/versions/1:predict", {"inputs": {"image_bytes": [{"b64": image}]}})
    assert status == 200 and columns["outputs"]["class_name"] == [rows["predictions"][0]["class_name"]]
    serve = tf.saved_model.load(str(folder_run[0] / "export" / "saved_model")).signatures["serving_default"]
    direct = serve(image_bytes=tf.constant([base64.b64decode(image)]))
    np.testing.assert_allclose(rows["predictions"][0]["probabilities"], direct["probabilities"][0].numpy(), rtol=1e-5)
    classes = json.loads((folder_run[0] / "run.json").read_text())["class_names"]
    assert rows["predictions"][0]["class_name"] in classes


def test_another_signature_and_another_model(server, folder_run):
    shape = json.loads((folder_run[0] / "run.json").read_text())["input_shape"]
    pixels = np.zeros(shape).tolist()
    status, answer = server.call(
        "/v1/models/shapes:predict", {"signature_name": "serving_pixels", "instances": [pixels]}
    )
    assert status == 200 and len(answer["predictions"][0]["probabilities"]) == 3, answer
    status, answer = server.call(
        "/v1/models/spam:predict", {"instances": ["WIN a FREE prize now!!", "see you at dinner"]}
    )
    assert status == 200 and {p["class_name"] for p in answer["predictions"]} <= {"ham", "spam"}


def test_what_tf_serving_answers_404_and_400_to(server):
    assert server.call("/v1/models/half:predict", {"instances": [1.0]}) == (
        404,
        {"error": "Servable not found for request: Latest(half)"},
    )
    assert server.call("/v1/models/shapes/versions/7:predict", {"instances": [1.0]})[0] == 404
    status, answer = server.call("/v1/models/shapes:predict", {"signature_name": "nope", "instances": [1]})
    assert status == 400 and "nope" in answer["error"]


def bad_requests(image: str) -> dict:
    """Ten kinds of malformed request, by name: (path, body bytes)."""
    predict = "/v1/models/shapes:predict"
    return {
        "bad JSON": (predict, b'{"instances": [1, 2'),
        "not UTF-8": (predict, b'{"instances": ["\xff\xfe"]}'),
        "wrong field": (predict, json.dumps({"examples": [{"b64": image}]}).encode()),
        "wrong dtype": (predict, json.dumps({"instances": [3.5]}).encode()),
        "wrong shape": (predict, json.dumps({"signature_name": "serving_pixels", "instances": [[1, 2, 3]]}).encode()),
        "huge body": (predict, b'{"instances": ["' + b"a" * (2 << 20) + b'"]}'),
        "truncated b64": (predict, json.dumps({"instances": [{"b64": image[:-3]}]}).encode()),
        "empty instances": (predict, json.dumps({"instances": []}).encode()),
        "not an image": (predict, json.dumps({"instances": [{"b64": base64.b64encode(b"GIF8 no").decode()}]}).encode()),
        "ragged": (predict, json.dumps({"signature_name": "serving_pixels", "instances": [[[1]], [[1, 2]]]}).encode()),
    }


def test_malformed_requests_get_a_4xx_with_a_message_and_good_ones_still_succeed(server, folder_run):
    image = png_b64(folder_run)
    good = json.dumps({"instances": [{"b64": image}]}).encode()
    for kind, (path, body) in bad_requests(image).items():
        status, answer = server.call(path, raw=body, method="POST")
        assert 400 <= status < 500 and answer["error"], (kind, status, answer)
        assert "Detected at node" not in answer["error"], (kind, answer)
        status, answer = server.call("/v1/models/shapes:predict", raw=good, method="POST")
        assert status == 200 and len(answer["predictions"]) == 1, (kind, answer)
    assert server.call("/healthz")[1]["status"] == "ok"


def test_a_chunked_body_over_the_limit_is_a_413_and_the_connection_still_answers(server):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    chunks = [b'{"instances": ["'] + [b"a" * (64 << 10)] * 32 + [b'"]}']  # 2 MB, no Content-Length
    connection.request("POST", "/v1/models/shapes:predict", body=iter(chunks), encode_chunked=True)
    answer = connection.getresponse()
    assert answer.status == 413 and "over 1,048,576 bytes" in json.loads(answer.read())["error"]
    assert server.call("/healthz")[0] == 200


def test_concurrent_requests_are_batched_and_each_gets_its_answer(server, folder_run):
    image = png_b64(folder_run)
    before = server.call("/healthz")[1]
    start, answers = threading.Barrier(16), [None] * 16

    def client(i):
        start.wait()
        answers[i] = server.call("/v1/models/shapes:predict", {"instances": [{"b64": image}] * (1 + i % 3)})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for i, (status, answer) in enumerate(answers):
        assert status == 200 and len(answer["predictions"]) == 1 + i % 3
    after = server.call("/healthz")[1]
    assert after["requests"] - before["requests"] == 16
    assert after["model_calls"] - before["model_calls"] < 16  # some requests shared a call
    assert after["largest_batch"] > 3


def test_ctrl_c_stops_the_server_cleanly_and_the_log_has_each_request(server):
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(60) == 0
    log = server.log.read_text()
    assert "POST /v1/models/shapes:predict 200" in log and " ms" in log
    assert "Traceback" not in log


def test_serve_refuses_what_it_cannot_serve_in_one_line(tmp_path, folder_run):
    assert_one_line_error(dlapps("serve", tmp_path), "neither a run directory", "nor a SavedModel")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_error(dlapps("serve", folder_run[0], "--port", port), f"127.0.0.1:{port}", "--port")
