"""What counts as a model, and torchvision models built by name.

Every engine function takes the network itself, an ``nn.Module`` instance. The mistakes people
make most (a name, the class, the builder function, a weights enum) get a :class:`TypeError`
that says what to pass instead.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import inspect
import io
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn


def check_model(model: Any) -> nn.Module:
    """Return ``model`` if it is an ``nn.Module`` instance; otherwise raise the fix.

    Raises:
        TypeError: a string, a module class, a function, a weights enum or anything else that
            is not a module instance; the message names what to pass.
    """
    if isinstance(model, nn.Module):
        return model
    got = type(model).__name__
    if isinstance(model, str):
        fix = (
            f"a model named by a string ({model!r}). Build it first, for example "
            f"torchvision.models.get_model({model!r}, weights=None), or pass the name to "
            "LayerExplorer, which builds torchvision models by name."
        )
    elif inspect.isclass(model) and issubclass(model, nn.Module):
        fix = (
            f"the class {model.__name__}, not a model. Create an instance: "
            f"{model.__name__}(...)."
        )
    elif isinstance(model, enum.Enum):
        fix = (
            f"the weights entry {type(model).__name__}.{model.name}, not a model. Build the "
            "model with these weights, for example torchvision.models.resnet18(weights=...), "
            "and pass the weights separately where a function takes weights=."
        )
    elif callable(model):
        name = getattr(model, "__name__", got)
        fix = f"the function {name}, not a model. Call it: {name}()."
    else:
        fix = f"a {got}. Pass the network itself (for example torchvision.models.resnet18())."
    raise TypeError(f"Expected a torch.nn.Module instance as the model; got {fix}")


@dataclass(frozen=True)
class NamedModel:
    """A torchvision model built by :func:`build_model`.

    Attributes:
        model: the network, in eval mode.
        weights: the weights entry whose values were loaded (its transforms and class names
            apply), or ``None`` for random weights.
        note: why the weights are random, when they are (else ``""``).
    """

    model: nn.Module
    weights: Any
    note: str


DOWNLOAD_TIMEOUT_S = 10
"""Socket timeout while weights download: a machine behind a firewall fails in seconds."""


def _known(name: str) -> None:
    known = torchvision.models.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"{name!r} is not a torchvision model name.{hint} torchvision.models.list_models() "
            "lists them all."
        )


def _pretrained(name: str, weights: Any) -> tuple[nn.Module, Any]:
    """torchvision's ``name`` with ``weights`` loaded (from torch's hub cache, else downloaded
    with a short timeout and no progress output), in eval mode; raises when they cannot be."""
    entry = torchvision.models.get_model_weights(name).verify(weights)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            model = torchvision.models.get_model(name, weights=entry, progress=False)
    finally:
        socket.setdefaulttimeout(previous)
    return model.eval(), entry


def load_pretrained(name: str, weights: Any = "DEFAULT", fallback: str = "") -> nn.Module | None:
    """torchvision's model ``name`` with pretrained ``weights`` in eval mode, or ``None`` and one
    printed line (ending with ``fallback``) when the weights cannot be had (no network).

    Args:
        name: a torchvision model name (``"vgg11"``, ``"resnet18"``).
        weights: ``"DEFAULT"``, a weights entry or its name (``"IMAGENET1K_V1"``).
        fallback: what the caller does instead, for the printed line.

    Raises:
        ValueError: ``name`` is not a torchvision model (the message lists close names).
    """
    _known(name)
    try:
        return _pretrained(name, weights)[0]
    except Exception as err:
        tail = f": {fallback}" if fallback else ""
        print(f"No pretrained weights for {name} ({type(err).__name__}){tail}")
        return None


def build_model(name: str, weights: Any = "DEFAULT", seed: int = 0) -> NamedModel:
    """Build torchvision's model ``name`` with ``weights`` (``"DEFAULT"``, an entry or ``None``).

    When the weights cannot be loaded (no network, no cached file), the model gets random
    weights from ``torch.manual_seed(seed)`` (the global random state is left as it was) and
    :attr:`NamedModel.note` says why.

    Raises:
        ValueError: ``name`` is not a torchvision model; the message lists close names.
    """
    _known(name)
    note = ""
    if weights is not None:
        try:
            return NamedModel(*_pretrained(name, weights), note="")
        except Exception as err:  # no network, no cached file, no weights for this model
            note = (
                f"{name}: the pretrained weights could not be loaded ({type(err).__name__}: "
                f"{str(err).splitlines()[0][:160]}); using random weights (seed {seed})."
            )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.get_model(name, weights=None)
    return NamedModel(model.eval(), None, note)
