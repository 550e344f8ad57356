"""What a Keras backend gives LogoGAN: the protocols each backend module implements (models.backends.jax_step
with models.backends.jax_runtime, models.backends.tensorflow_step), and nothing backend-specific itself.

:class:`Backend` is the module: the compiled training call and the process's runtime (devices, several
processes, seeding, the compilation cache). :class:`TrainStep` is what its ``make_train_step`` returns, and also
what :meth:`models.gan.GAN.train_step` calls back while the step is traced; :class:`StatelessRandom` is the
randomness that :class:`models.step_inputs.StepInputs` draws each step's batch with.
tests/models/test_backend_interface.py checks that both modules have every member with a compatible signature.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence


class StatelessRandom(Protocol):
    """Randomness from explicit keys: a key per (seed, purpose), folded with the step and with each draw's number,
    so a step's batch depends on (seed, step) alone and a resumed run draws what an unbroken one would."""

    def key(self, seed: int, purpose: int) -> Any: ...

    def fold(self, key: Any, value: Any) -> Any: ...

    def normal(self, key: Any, shape: Sequence[int]) -> Any: ...

    def uniform(self, key: Any, shape: Sequence[int]) -> Any: ...

    def integers(self, key: Any, shape: Sequence[int], high: int) -> Any: ...


class TrainStep(Protocol):
    """``count`` consecutive steps of :meth:`models.gan.GAN.train_step` in one compiled call.

    ``step(first_step, count, regularize_first, per_step)`` returns each metric as a (count,) array left on the
    device (reading it is the caller's choice, so nothing waits for the device between calls);
    ``regularize_first`` adds the lazy R1 term to the call's first step. ``per_step`` holds
    ``{"indices": (count, n_critic, B)}`` when the dataset is on the device, else the gathered ``images``
    (count, n_critic, B, H, W, C) and ``labels`` (count, n_critic, B)."""

    random: StatelessRandom

    def __call__(self, first_step: int, count: int, regularize_first: bool, per_step: dict) -> dict: ...

    def sync(self) -> None:
        """Write the weights back into the Keras variables (a no-op where training updates them in place); before
        saving or sampling."""

    # What models.gan.GAN.train_step calls while the step is traced. ``loss_fn(nets)`` returns (loss, aux) and
    # runs the models through ``nets`` (generate, discriminate, input_gradients), the backend's view of them.
    def update_discriminator(self, loss_fn: Callable) -> tuple[Any, Any]: ...

    def update_generator(self, loss_fn: Callable) -> tuple[Any, Any]: ...

    def update_generator_ema(self, beta: Any) -> None:
        """Average the generator's weights into the EMA copy; its buffers (batch-norm statistics) are copied."""


class Backend(Protocol):
    """A backend module. Each member is a module-level function (``make_train_step`` may be the step's class)."""

    def make_train_step(self, gan, generator_optimizer, discriminator_optimizer, generator_ema, training_state,
                        step_inputs, dataset, devices=None) -> TrainStep:
        """The compiled training call of ``gan``'s networks and optimizers.

        ``generator_ema``: the EMA copy of the generator, or None; ``training_state``: name -> Keras scalar
        variable that the step adapts; ``step_inputs``: a :class:`models.step_inputs.StepInputs`, which builds each
        step's batch on the device with ``step.random``; ``dataset``: {"images": uint8 (N, H, W, C), "labels":
        int32 (N,)} to keep on the device, or None; ``devices``: the devices to train on data-parallel
        (:meth:`training_devices`), None for the default one."""

    def fused(self, function: Callable) -> Callable:
        """``function`` (tensors in, tensors out) compiled into fused kernels where the backend would otherwise run
        each op on its own: a long elementwise chain over a large tensor then reads and writes memory once, not
        once per op."""

    def compiled_inference(self, model) -> Callable:
        """``model`` in inference mode as one compiled call, ``call(inputs, training=False)``, reading the model's
        current weights at each call (no retrace when they change)."""

    def compiled_batch_norm_update(self, model) -> Callable:
        """``model`` in training mode as one compiled call, ``update(inputs, momentum)``, that leaves the Keras
        variables as the eager ``model(inputs, training=True)`` would (the batch-norm layers' moving statistics, any
        other state), every batch-norm layer of ``model`` averaging with ``momentum`` in place of its own. The
        momentum is an argument of the program: a new value compiles nothing; so are the weights, read at each
        call."""

    def trains_statelessly(self) -> bool:
        """Whether the step runs the models statelessly, so that what a layer stores as a side effect of a training
        call (a spectrally normalized kernel) is not stored in the Keras variables."""

    def training_devices(self, requested: str | int) -> Sequence[Any] | None:
        """The devices a run trains on for the config's ``devices`` ("all" or a count), None for the default one;
        a one-line UserError when they are not there."""

    def local_device_names(self) -> list[str]:
        """This process's own devices as ``keras.distribution`` names ("gpu:0", ...) where Keras can split one
        batch over them (evaluation's data-parallel embedding); [] where it runs on one device."""

    def describe_devices(self, devices: Sequence[Any] | None) -> str:
        """E.g. "4 devices (cpu)", or "8 devices (gpu) in 2 processes"."""

    def accelerator_present(self) -> bool:
        """Whether the backend trains on a GPU or TPU rather than the CPU."""

    def device_memory_bytes(self) -> int | None:
        """Memory of the device training runs on, where the backend reports it (None: unknown, or a CPU)."""

    def start_distributed(self, coordinator: str, num_processes: int, process_id: int,
                          heartbeat_seconds: int) -> None:
        """Join a run of several processes (several VMs), before any computation; a one-line UserError where the
        backend cannot."""

    def process_index(self) -> int: ...

    def process_count(self) -> int: ...

    def is_lost_process_error(self, error: Exception) -> bool:
        """Whether ``error`` is the runtime's report that another process of the run has gone."""

    def share_from_first_process(self, values: list) -> list:
        """Every process gets process 0's ``values`` (a list of NumPy arrays), so all start from one checkpoint."""

    def keep_compiled_programs(self) -> None:
        """Before the first compilation: keep compiled programs on disk for the next run, where the backend can."""

    def seed_everything(self, seed: int, deterministic: bool) -> None:
        """Seed Python, NumPy and Keras; ``deterministic`` asks for deterministic kernels where that is a choice."""


BACKEND_MEMBERS = tuple(name for name, value in vars(Backend).items()
                        if callable(value) and not name.startswith("_"))
