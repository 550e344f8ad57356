"""models.backends.interface: both backend modules implement the declared Backend and TrainStep, and nothing
outside models/backends imports a backend."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from models.backends import interface
from tests.models.helpers import PROJECT_ROOT


def backend_modules():
    from models.backends import jax_step, tensorflow_step

    return {"jax": jax_step, "tensorflow": tensorflow_step}


def incompatibility(declared, implemented) -> str | None:
    """Why ``implemented`` cannot stand where ``declared`` is called (None: it can). The declared parameters come
    first, in order, with the same names and kinds, a default where the declaration has one; any further
    parameter has a default."""
    expected = [p for p in inspect.signature(declared).parameters.values() if p.name != "self"]
    actual = [p for p in inspect.signature(implemented).parameters.values() if p.name != "self"]
    if len(actual) < len(expected):
        return f"takes {len(actual)} parameters, the interface {len(expected)}"
    for want, have in zip(expected, actual):
        if (want.name, want.kind) != (have.name, have.kind):
            return f"parameter {have.name} ({have.kind.description}) where the interface has {want.name}"
        if want.default is not inspect.Parameter.empty and have.default is inspect.Parameter.empty:
            return f"parameter {have.name} has no default; the interface gives it one"
    extra = [p.name for p in actual[len(expected):] if p.default is inspect.Parameter.empty]
    return f"extra parameters without a default: {extra}" if extra else None


def test_the_interface_lists_every_member_the_trainer_uses():
    assert set(interface.BACKEND_MEMBERS) == {
        "make_train_step", "fused", "compiled_inference", "compiled_batch_norm_update", "trains_statelessly",
        "training_devices", "local_device_names", "describe_devices", "accelerator_present", "device_memory_bytes", "start_distributed", "process_index",
        "process_count", "is_lost_process_error", "share_from_first_process", "keep_compiled_programs",
        "seed_everything"}


@pytest.mark.parametrize("name", ["jax", "tensorflow"])
def test_each_backend_module_has_every_member_with_a_compatible_signature(name):
    module = backend_modules()[name]
    problems = {}
    for member in interface.BACKEND_MEMBERS:
        if not callable(getattr(module, member, None)):
            problems[member] = "missing"
            continue
        problem = incompatibility(getattr(interface.Backend, member), getattr(module, member))
        if problem:
            problems[member] = problem
    assert problems == {}


@pytest.mark.parametrize("name", ["jax", "tensorflow"])
def test_each_backend_step_and_its_randomness_follow_the_interface(name):
    step = backend_modules()[name].make_train_step
    declared = {"__call__", "sync", "update_discriminator", "update_generator", "update_generator_ema"}
    assert {member: incompatibility(getattr(interface.TrainStep, member), getattr(step, member))
            for member in declared} == dict.fromkeys(declared)
    random_members = ("key", "fold", "normal", "uniform", "integers")
    assert {member: incompatibility(getattr(interface.StatelessRandom, member), getattr(step.random, member))
            for member in random_members} == dict.fromkeys(random_members)


def test_the_signature_check_finds_a_renamed_a_missing_and_a_required_extra_parameter():
    def declared(self, devices, count=1): ...

    assert incompatibility(declared, lambda devices, count=1, verbose=False: None) is None
    assert "parameter requested" in incompatibility(declared, lambda requested, count=1: None)
    assert "takes 1 parameters" in incompatibility(declared, lambda devices: None)
    assert "no default" in incompatibility(declared, lambda devices, count: None)
    assert "without a default: ['strict']" in incompatibility(declared, lambda devices, count=1, verbose=0, *,
                                                                strict: None)


def test_the_package_gives_the_running_backends_members_and_no_others():
    import keras

    import models.backends as backends

    running = backend_modules()[keras.backend.backend()]
    assert backends.backend() is running
    from models.backends import make_train_step, training_devices

    assert (make_train_step, training_devices) == (running.make_train_step, running.training_devices)
    with pytest.raises(AttributeError, match="no attribute 'TrainStep'"):
        backends.TrainStep  # noqa: B018  (the step's class is reached through make_train_step only)


def backend_imports(path: Path) -> list[str]:
    """The backend packages (jax, jaxlib, tensorflow) that ``path`` imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        found += [name for name in names if name.split(".")[0] in ("jax", "jaxlib", "tensorflow")]
    return found


def test_only_models_backends_imports_a_backend_among_models_evaluation_and_the_training_bench():
    # bench/bare_steps.py is the training bench's hand-written reference step on each backend, and
    # infra/device_check.py probes each backend's installation by name, by design.
    paths = [*sorted((PROJECT_ROOT / "models").rglob("*.py")), *sorted((PROJECT_ROOT / "evaluation").rglob("*.py")),
             PROJECT_ROOT / "bench" / "train_speed.py",
             PROJECT_ROOT / "bench" / "fid_speed.py"]
    outside = {str(path.relative_to(PROJECT_ROOT)): backend_imports(path) for path in paths
               if "backends" not in path.relative_to(PROJECT_ROOT).parts[:2]}
    assert {path: names for path, names in outside.items() if names} == {}
    assert backend_imports(PROJECT_ROOT / "models" / "backends" / "jax_runtime.py") == ["jax", "jax.experimental"]
