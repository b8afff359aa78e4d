"""Decoder training for AdaIN (Huang & Belongie, ICCV 2017) with any :mod:`mmd` style loss.

For a content batch ``c`` and a style batch ``s`` (``[B, 3, S, S]``), with the frozen encoder ``E`` and the
decoder ``D`` being trained::

    t = AdaIN(E(c), E(s))                          at the encoder's adain_layer
    g = D(t)                                       [B, 3, S, S]  (unclamped, as in the original)
    L_c = mean (E(g) − t)²                         at the adain_layer
    L_s = mean_b Σ_l w_l · loss(E_l(g), E_l(s))    the mmd.StyleObjective of the config
    total = content_weight · L_c + style_weight · L_s [+ tv_weight · L_tv, the total variation of g]

With ``reconstruction`` (the warm start of a staged schedule) the decoder learns to invert the encoder:
``t = E(c)``, and ``pixel_weight · mean (g − c)²`` replaces the style term (the log's ``style`` column then
holds that pixel MSE).

With ``layer_normalisation="initial"`` each layer's term is divided by ``ref_l``, its batch-mean value at
the starting decoder on the run's first batch (no gradient; equal weights under ``layer_weighting="auto"``)::

    L_s = mean_b Σ_l w_l · loss(E_l(g), E_l(s)) / ref_l       (= Σ_l w_l at iteration 1)

``ref_l`` is stored in the checkpoint (``training["normalisers"]``) and reused on resume.

Adam with ``lr_i = lr / (1 + lr_decay · i)`` at iteration ``i`` (the original recipe). With
``ema_decay = d > 0`` an average of the weights, ``ema ← d·ema + (1 − d)·w`` after every step, is kept in
the checkpoint and written as ``decoder_ema.pth`` beside it.

Where things are:

* :mod:`adain.train.config`: :class:`TrainConfig`, the frozen, validated run definition.
* :mod:`adain.train.checkpoint`: checkpoints, which are model files plus the training state.
* :mod:`adain.train.reporting`: the CSV log, the loss plot, samples (through ``AdaINModel.stylize``).
* :mod:`adain.train.loop`: :class:`Trainer`, the training step and loop.
* the objective (style loss per layer, layer weights, content loss) is :class:`mmd.StyleObjective`.

>>> config = TrainConfig(content_dir="photos", style_dir="art", encoder="mobilenet_v2", output="runs/a")
>>> result = Trainer(config).run()                    # or .run(resume="runs/a/checkpoint.pth")
>>> result.model_path                                 # runs/a/decoder_final.pth: a model file

Files in ``config.output``: ``checkpoint.pth`` (latest, atomic; also a model file), ``log.csv`` (one row per
iteration), ``loss.png``, ``samples/iter_NNNNNNN.png`` (fixed pairs: content | style | output per row;
written before the checkpoint of that iteration) and ``decoder_final.pth``.

**Exact resume.** All randomness is a pure function of ``(seed, stream, sample number)`` (see
:mod:`adain.data`); decoder initialisation (and a random encoder, for tests) draws from a seeded fork of
the global RNG that is restored afterwards. A checkpoint therefore holds the decoder, the optimiser, the
schedule, the iteration and the samplers' positions, which is all the state there is: on the CPU with
the same thread count a resumed run reaches bit-identical weights. It also holds a fingerprint (names and
sizes) of the training images, and a resume on other data is refused. A resumed run may change ``lr``
(and the other :data:`RUN_FIELDS`), e.g. to recover from a divergence.

**Signals.** During :meth:`Trainer.run` SIGINT and SIGTERM (main thread only) finish the current
iteration, write a checkpoint and return ``stopped_by`` = the signal; the previous handlers are restored.

**Non-finite values.** :class:`NonFiniteLossError` for a non-finite loss (checked before the step) or
non-finite decoder weights (checked after it); nothing non-finite is ever written, the last checkpoint is
left as is.

**Multi-process.** Under ``torchrun --nproc_per_node=K`` (see :mod:`adain.distributed`; pass its
:class:`~adain.distributed.Distributed` as ``dist``) the decoder is wrapped in DistributedDataParallel.
``batch_size`` is the *combined* batch of all K processes (it must be divisible by K): each rank draws
``batch_size / K`` samples per iteration from its shard of each epoch (``perm[rank::K]``, crops seeded by
global slot), so the ranks' shards together are exactly the batch a single process would draw (when the
number of files is divisible by K), and as both losses are batch means, DDP's averaged gradient is the
combined-batch gradient. A checkpoint records the world size and resuming needs the same K. Every
iteration the ranks all-reduce their losses together with a signal flag, so a non-finite loss or a signal
on any rank stops all ranks at the same iteration. Only rank 0 writes files (followed by a barrier).
"""

from adain.errors import CheckpointError, LayerNormaliserError

from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, TrainingWriteError, load_checkpoint
from .config import RUN_FIELDS, TrainConfig
from .loop import (
    CHECKPOINT_NAME,
    EMA_MODEL_NAME,
    FINAL_MODEL_NAME,
    NonFiniteLossError,
    Trainer,
    TrainResult,
    check_normalisers,
    default_style_layers,
    learning_rate,
    style_layer_weights,
    style_objective,
)
from .reporting import LOG_COLUMNS, read_log

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "CHECKPOINT_VERSION",
    "EMA_MODEL_NAME",
    "FINAL_MODEL_NAME",
    "LOG_COLUMNS",
    "RUN_FIELDS",
    "CheckpointError",
    "LayerNormaliserError",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingWriteError",
    "check_normalisers",
    "default_style_layers",
    "learning_rate",
    "load_checkpoint",
    "read_log",
    "style_layer_weights",
    "style_objective",
]
