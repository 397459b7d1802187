"""Long jobs in a kernel: progress, a heartbeat while a step reports nothing, and Cancel that
answers every request it stops, quickly."""

from __future__ import annotations

import time

import pytest

from cnnviz_widgets import LayerExplorer, saliency
from cnnviz_widgets.widgets import dispatch
from cnnviz_widgets.widgets.cache import Reply
from cnnviz_widgets.widgets.recorder import Recorder


def wait_for(condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


@pytest.fixture
def background():
    ex = LayerExplorer(background=True)  # a worker thread, as inside a kernel
    yield ex, Recorder(ex)
    ex.close()


def answers(rec: Recorder, rid: int) -> list[dict]:
    return [m for m, _ in list(rec.sent) if m.get("id") == rid and m["type"] in ("reply", "error")]


def test_a_step_without_progress_still_says_busy(background, monkeypatch):
    ex, rec = background
    monkeypatch.setattr(dispatch, "HEARTBEAT_S", 0.2)
    handler = ex._handlers["saliency"]

    def slow(subject, params, job):
        time.sleep(1.0)  # one long step that reports nothing
        return Reply({"stack": None}, [])

    monkeypatch.setattr(handler, "compute", slow)
    monkeypatch.setattr(dispatch, "SHOWN_BYTES", -1)  # answer by message, easier to read here
    rec.request(ex, "saliency", rid=5, method="vanilla", target=0, version=ex.image_version)
    wait_for(lambda: answers(rec, 5))
    beats = [m for m, _ in rec.sent if m["type"] == "progress" and m.get("heartbeat")]
    assert len(beats) >= 2 and "still computing" in beats[-1]["text"]


def test_cancel_answers_the_running_and_the_queued_requests_within_a_second(
        background, monkeypatch):
    ex, rec = background
    handler = ex._handlers["saliency"]

    def long_job(subject, params, job):
        for step in range(600):  # 60 s if never cancelled
            time.sleep(0.1)
            job.progress(step, 600)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(handler, "compute", long_job)
    for rid, target in ((1, 0), (2, 1), (3, 2)):
        rec.request(ex, "saliency", rid=rid, method="vanilla", target=target,
                    version=ex.image_version, key=f"k{rid}")
    wait_for(lambda: any(m["type"] == "progress" for m, _ in rec.sent))
    start = time.monotonic()
    ex._on_msg(ex, {"type": "cancel"}, [])
    wait_for(lambda: all(answers(rec, rid) for rid in (1, 2, 3)), timeout=5)
    assert time.monotonic() - start < 1.0
    assert all(answers(rec, rid)[0]["message"] == "cancelled" for rid in (1, 2, 3))
    # the widget is usable afterwards: a new request is answered
    monkeypatch.undo()
    rec.request(ex, "kernels", rid=9, layer="features.3")
    wait_for(lambda: answers(rec, 9))
    assert answers(rec, 9)[0]["type"] == "reply"


@pytest.mark.parametrize(("method", "options", "total"), [
    ("smoothgrad", {"n_samples": 6, "internal_batch_size": 4}, 12),
    ("integrated_gradients", {"n_steps": 5, "internal_batch_size": 4}, 10),
])
def test_saliency_reports_progress_and_a_raise_stops_it(method, options, total):
    from cnnviz_widgets.demo import demo_model

    demo = demo_model()
    x = demo.transform(demo.samples[:2])
    calls: list[tuple[int, int]] = []
    saliency(demo.model, x, target=0, method=method,
             progress=lambda d, t: calls.append((d, t)), **options)
    assert calls[-1] == (total, total) and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})  # increasing

    class Stop(Exception):
        pass

    def stop(done, t):
        raise Stop

    with pytest.raises(Stop):
        saliency(demo.model, x, target=0, method=method, progress=stop, **options)
    assert all(p.grad is None for p in demo.model.parameters())
    assert not demo.model.training


def test_progress_says_how_long_is_left(monkeypatch):
    ex = LayerExplorer(background=False)
    rec = Recorder(ex)
    monkeypatch.setattr(dispatch, "ESTIMATE_AFTER_S", 0.0)
    handler = ex._handlers["saliency"]

    def job(subject, params, job):
        for step in range(1, 5):
            time.sleep(0.15)
            job.progress(step, 4)
        return Reply({}, [])

    monkeypatch.setattr(handler, "compute", job)
    rec.request(ex, "saliency", rid=3, method="vanilla", target=0, version=ex.image_version)
    estimates = [m for m, _ in rec.sent if m["type"] == "progress" and "left_s" in m]
    assert estimates, rec.sent
    first = estimates[0]  # after 1 of 4 steps of ~0.15 s: about 3 x 0.15 s left
    assert first["done"] == 1 and 0.3 < first["left_s"] < 1.5
    assert "left" in first["text"]


def test_activation_maximization_plain_or_regularised(monkeypatch):
    import numpy as np

    import cnnviz_widgets.engine.actmax as actmax

    seen = []

    def fake(model, layer, channels, size=None, seed=None, progress=None, regularize=True,
             **kw):
        seen.append(regularize)
        return np.zeros((1, size, size, 3), np.uint8)

    monkeypatch.setattr(actmax, "activation_max", fake)
    ex = LayerExplorer(background=False)
    rec = Recorder(ex)
    msg, _ = rec.request(ex, "actmax", layer="features.3", channels=[1], regularize=False)
    assert msg["type"] == "reply" and msg["regularize"] is False
    msg, _ = rec.request(ex, "actmax", rid=2, layer="features.3", channels=[1])
    assert msg["regularize"] is True and seen == [False, True]
    msg, _ = rec.request(ex, "actmax", rid=3, layer="features.3", channels=[1], regularize="no")
    assert msg["type"] == "error" and "regularize" in msg["message"]
