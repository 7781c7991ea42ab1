"""`python -m serving.cli`, run in process against the running server."""

from __future__ import annotations

import os
import signal
import threading
import time

from serving import cli
from serving.client import RecommenderClient
from tests.conftest import DEFAULT_DATA
from tests.serving.conftest import MODEL_NAME

CATALOG = os.path.join(DEFAULT_DATA, "catalog.csv.gz")


def test_recommend_prints_the_top_k_with_titles(running, exported_model, capsys):
    session = exported_model.sessions[3]
    assert (
        cli.main(["recommend", "--target", running.target, "--model-name", MODEL_NAME, *session, "--catalog", CATALOG])
        == 0
    )
    printed = capsys.readouterr().out
    with RecommenderClient(running.target, model_name=MODEL_NAME) as client:
        [answer] = client.recommend(session)
    catalog = cli.read_catalog(CATALOG)
    lines = printed.splitlines()
    assert lines[0].split() == ["rank", "item", "id", "score", "title", "category"]
    top_title, top_path = catalog.loc[answer.item_ids[0]].tolist()
    assert lines[2].split()[:3] == ["1", answer.item_ids[0], f"{answer.scores[0]:.4f}"]
    assert top_title[:40] in lines[2] and lines[2].endswith(top_path)
    assert "Top categories:" in printed and f"  L1: {answer.top_categories[1][0][0]}" in printed


def test_recommend_reports_grpc_errors_without_a_traceback(running, capsys):
    assert cli.main(["recommend", "--target", running.target, "--model-name", "other", "100001"]) == 1
    err = capsys.readouterr().err
    assert "NOT_FOUND: model 'other' is not served here" in err and "Traceback" not in err
    assert cli.main(["recommend", "--target", running.target, "--model-name", MODEL_NAME, "no-such-item"]) == 1
    assert "INVALID_ARGUMENT: every session needs at least one item" in capsys.readouterr().err


def test_serve_runs_until_sigterm(exported_model, capsys):
    answers = []

    def use_then_stop() -> None:
        try:
            deadline = time.monotonic() + 60
            while "Serving" not in (out := capsys.readouterr().out) and time.monotonic() < deadline:
                time.sleep(0.1)
            port = out.split(":")[-1].split(";")[0]  # "Serving ... on 127.0.0.1:PORT; Ctrl-C to stop"
            with RecommenderClient(f"127.0.0.1:{port}", model_name=MODEL_NAME) as client:
                answers.extend(client.recommend(exported_model.sessions[0]))
        finally:  # whatever happened, end the server (the handler is in place before "Serving" prints)
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=use_then_stop)
    helper.start()
    code = cli.main(["serve", "--base-path", exported_model.base_path, "--model-name", MODEL_NAME, "--port", "0"])
    helper.join()
    assert code == 0 and len(answers) == 1 and answers[0].model_version == 1
