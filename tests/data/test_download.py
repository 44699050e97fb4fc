"""Decathlon download through MONAI's checksum-verified downloader, against a local archive."""

from __future__ import annotations

import functools
import hashlib
import http.server
import tarfile
import threading

import pytest

from hpo.cli.main import main
from hpo.data.download import decathlon_source, download_decathlon
from hpo.data.layouts import read_dataset
from hpo.errors import DatasetError
from tests.conftest import write_decathlon


class Archive:
    """A tar archive laid out like the public Task04_Hippocampus.tar, served over HTTP on loopback."""

    def __init__(self, path, url, md5):
        self.path = path
        self.url = url
        self.md5 = md5


@pytest.fixture
def local_archive(tmp_path):
    write_decathlon(tmp_path / "source" / "Task04_Hippocampus", n_cases=2)
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "Task04_Hippocampus.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "source" / "Task04_Hippocampus", arcname="Task04_Hippocampus")

    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/Task04_Hippocampus.tar"
    yield Archive(archive, url, hashlib.md5(archive.read_bytes()).hexdigest())
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        del format, args


def test_download_extracts_and_verifies(tmp_path, local_archive):
    dataset_dir = download_decathlon("Task04_Hippocampus", tmp_path / "data", url=local_archive.url, md5=local_archive.md5)
    assert dataset_dir == tmp_path / "data" / "Task04_Hippocampus"
    assert len(read_dataset(dataset_dir).cases) == 2
    assert not (tmp_path / "data" / "Task04_Hippocampus.tar").exists(), "the archive is removed after extraction"


def test_download_rejects_wrong_checksum(tmp_path, local_archive):
    with pytest.raises(DatasetError, match=r"Download of Task04_Hippocampus from http://127\.0\.0\.1:\d+/.* failed: .*[^.]\. Check the URL and the MD5\.$"):
        download_decathlon("Task04_Hippocampus", tmp_path / "data", url=local_archive.url, md5="0" * 32)
    assert not (tmp_path / "data" / "Task04_Hippocampus").exists(), "nothing half-extracted may remain"


def test_existing_dataset_kept(tmp_path, local_archive):
    download_decathlon("Task04_Hippocampus", tmp_path / "data", url=local_archive.url, md5=local_archive.md5)
    local_archive.path.unlink()  # a second call must not need the archive
    again = download_decathlon("Task04_Hippocampus", tmp_path / "data", url=local_archive.url, md5=local_archive.md5)
    assert again.is_dir()


def test_monai_source_for_hippocampus():
    url, md5 = decathlon_source("Task04_Hippocampus")
    assert url.endswith("Task04_Hippocampus.tar")
    assert len(md5) == 32


def test_unknown_task_lists_choices():
    with pytest.raises(DatasetError, match=r"Unknown Decathlon task 'Task99_Nothing'; choose one of .*Task04_Hippocampus"):
        decathlon_source("Task99_Nothing")


def test_cli_download(tmp_path, local_archive, capsys):
    arguments = ["--out", str(tmp_path / "d"), "--url", local_archive.url, "--md5", local_archive.md5]
    code = main(["data", "download", "Task04_Hippocampus", *arguments])
    assert code == 0
    assert "Dataset ready" in capsys.readouterr().out
