"""Fixtures every stage's tests share."""
from __future__ import annotations

import os

import pytest

from tests.shared_assets import shared_asset

# JAX runs keep compiled programs in ~/.cache/logogan/jax (models.backends.jax_runtime.keep_compiled_programs). The
# tests leave the user's cache alone and compile everything afresh, as on a new machine, unless told otherwise;
# tests/models/test_compilation_cache.py turns the cache on where it tests it. Workers inherit the setting.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "")


@pytest.fixture(scope="session")
def fashion_mnist_dir():
    """The shared folder of the first 8,226 Fashion-MNIST training images and labels (IDX gzip)."""
    shared_asset("data/fashion-mnist-8k/train-labels-idx1-ubyte.gz")
    return shared_asset("data/fashion-mnist-8k/train-images-idx3-ubyte.gz").parent


@pytest.fixture(scope="session")
def fid_assets():
    """The canonical FID network weights and the reference features (see ../shared/fid/README.md)."""
    return {
        "weights": shared_asset("fid/inception-2015-12-05.pt"),
        "reference": shared_asset("fid/reference-64.npz"),
    }


# run-tests.sh runs the suite on pytest-xdist workers, one per core. A worker takes a whole work unit at a time:
# a test file, so that a module-scoped fixture (a trained run, a server) is built once; the server's and the
# evaluator's folders, whose tests share session fixtures (a trained run, the embedded reference sets); and,
# each on its own, the parts of the JAX re-run, minutes each. Those parts go first, then the other units with
# a slow test, so that no long unit starts last and keeps the suite waiting on one worker.
SHARED_SESSION_FIXTURE_FOLDERS = ("tests/serve/", "tests/evaluation/")
TESTS_RUN_PART_BY_PART = ("tests/models/test_backends.py::test_trainer_tests_pass_on_jax[",)


def work_unit(nodeid: str) -> str:
    if nodeid.startswith(TESTS_RUN_PART_BY_PART):
        return nodeid
    folder = next((folder for folder in SHARED_SESSION_FIXTURE_FOLDERS if nodeid.startswith(folder)), None)
    return folder or nodeid.partition("::")[0]


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, called when it distributes the tests
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnitScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the work units: the JAX re-run's parts, then units with a slow test, then the rest."""
    units_with_a_slow_test = {work_unit(item.nodeid) for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> tuple[bool, bool]:
        unit = work_unit(item.nodeid)
        return not item.nodeid.startswith(TESTS_RUN_PART_BY_PART), unit not in units_with_a_slow_test

    items.sort(key=rank)  # stable, and the same for all of a unit's tests: each unit's tests stay together
