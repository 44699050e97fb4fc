"""The S3 artifact store against moto's S3 server on loopback: upload, prefix, download of a checkpoint."""

from __future__ import annotations

import io
import socket

import optuna
import pytest
import torch
from optuna.artifacts import upload_artifact

from hpo.study.artifacts import ARTIFACTS_ATTR, PrefixedArtifactStore, fetch_checkpoint, open_artifact_store

BUCKET = "hpo-artifacts"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1 with one empty bucket; yields its endpoint URL."""
    boto3 = pytest.importorskip("boto3", reason="boto3 not installed: pip install -e '.[s3,test]'")
    server_module = pytest.importorskip("moto.server", reason="moto not installed: pip install -e '.[test]'")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in {
                "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1",
            }.items():
                patch.setenv(name, value)
            boto3.client("s3").create_bucket(Bucket=BUCKET)
            yield endpoint
    finally:
        server.stop()


def test_s3_store_keeps_artifacts_under_prefix(s3_endpoint, tmp_path):
    import boto3

    store = open_artifact_store(f"s3://{BUCKET}/studies/hippocampus", tmp_path)
    assert isinstance(store, PrefixedArtifactStore)

    store.write("abc", io.BytesIO(b"content"))
    keys = [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert "studies/hippocampus/abc" in keys
    assert store.open_reader("abc").read() == b"content"
    store.remove("abc")
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="studies/hippocampus/")


def test_checkpoint_fetched_from_s3(s3_endpoint, tmp_path):
    """A checkpoint uploaded through Optuna's API is downloaded when its local file is gone."""
    store = open_artifact_store(f"s3://{BUCKET}", tmp_path)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", direction="maximize")
    trial = study.ask()
    weights = {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    checkpoint = tmp_path / "best_model.pt"
    torch.save(weights, checkpoint)
    artifact_id = upload_artifact(artifact_store=store, file_path=str(checkpoint), study_or_trial=trial)
    trial.set_user_attr("checkpoint", str(checkpoint))
    trial.set_user_attr(ARTIFACTS_ATTR, {"best_model.pt": artifact_id})
    study.tell(trial, 0.5)
    checkpoint.unlink()

    fetched = fetch_checkpoint(study.trials[0], store, tmp_path / "download" / "best_model.pt")

    assert fetched == tmp_path / "download" / "best_model.pt"
    assert torch.equal(torch.load(fetched, weights_only=True)["weight"], weights["weight"])
