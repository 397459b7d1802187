"""Shared test setup: one torch thread (2-core machines), seeded models, model-state checks."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from hypothesis import settings

# Property tests draw the same examples on every run (a CI run cannot fail by chance);
# HYPOTHESIS_PROFILE=explore draws new ones each time, to look for new failing inputs.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_num_threads(1)
# The widgets' language follows CNNVIZ_LANG, else the system locale: tests that read English
# texts must not depend on the machine's locale (tests of the choice set it themselves).
os.environ["CNNVIZ_LANG"] = "en"
warnings.filterwarnings("ignore", category=FutureWarning, module="torchvision")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def vgg11():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.vgg11(weights=None).eval()


@pytest.fixture(scope="session")
def resnet18():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()
