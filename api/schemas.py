"""The HTTP shapes: camelCase on the wire, each field described for the OpenAPI docs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from trainq.services.db.models import Dataset, Evaluation, Job, StoredModel
from trainq.services.jobs.batch import MAX_BATCH
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.logs import finite_or_none
from trainq.services.spec import COMPILE_UNLESS_STORED, SEED_EXAMPLE, JobRequest, JobSpec, Matrix, refuse_null
from trainq.services.sweeps.service import Ranking, SweepSummary
from trainq.services.sweeps.space import RandomDraws, Range
from trainq.services.workers.registry import WorkerState, WorkerStatus

BatchSize = Annotated[
    int, Field(gt=0, le=1_000_000, description="Rows per batch of the computation (as tf.js's batchSize)")
]


# JSON has no NaN or infinity: a value that overflowed float32 (a metric over zero
# targets, a prediction on huge inputs) goes out as null instead of failing the answer
Value = Annotated[float | None, BeforeValidator(finite_or_none)]


class Schema(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @classmethod
    def of_attributes(cls, source: object, **given: Any) -> Self:
        """The shape of `source` (a row, a dataclass): each field its attribute of the same name, but for those
        `given` (named otherwise there, or computed)."""
        return cls(**{name: getattr(source, name) for name in cls.model_fields.keys() - given.keys()}, **given)


Item = TypeVar("Item", bound=Schema)


class Page(Schema, Generic[Item]):
    """One page of a list, newest first; each list names its own (JobPage, DatasetPage, ...)."""

    items: list[Item] = Field(description="The items, newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")

    @classmethod
    def of(cls, found: tuple[Iterable[Any], str | None], read: Callable[[Any], Item]) -> Self:
        """The page a service listed (its rows and the next cursor), each row as `read` shapes it."""
        rows, next_cursor = found
        return cls(items=[read(row) for row in rows], next_cursor=next_cursor)


class JobCreate(JobRequest):
    """A training job: the job spec (model, compile, fit, data) plus how to run it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**SEED_EXAMPLE, "name": "y = 2x + 1", "device": "auto"}],
            "anyOf": COMPILE_UNLESS_STORED,  # JobRequest's, which this configuration replaces
        }
    )

    name: str | None = Field(None, max_length=200, description="A label for people; need not be unique")
    # not strict as the spec is: an enum's value arrives as its string
    device: Device = Field(
        Device.auto, strict=False, description="Where to train: cpu, gpu, or auto (a GPU when the worker has one)"
    )


class JobBatchCreate(Schema):
    jobs: list[JobCreate] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"Up to {MAX_BATCH} jobs, each as POST /v1/jobs takes one"
    )


class JobBatchRead(Schema):
    jobs: list[JobRead] = Field(description="The stored jobs, queued, in the order given")


class Progress(Schema):
    epoch: int = Field(description="Epochs finished so far")
    epochs: int = Field(description="Epochs the fit runs in all (fit.epochs)")


class JobLinks(Schema):
    model_config = ConfigDict(alias_generator=None)

    self: str = Field(description="This job")
    history: str = Field(description="Its per-epoch logs")
    weights: str = Field(description="Its final weights, once it succeeded")
    evaluate: str = Field(description="Loss and metrics of its model on new data (POST)")
    predict: str = Field(description="Outputs of its model for new inputs (POST)")
    cancel: str = Field(description="Cancel it (POST)")


class JobRead(Schema):
    id: str = Field(description="The job's id")
    name: str | None = Field(description="The name it was submitted with")
    status: JobStatus = Field(description="queued, running, succeeded, failed or cancelled")
    device: Device = Field(description="Where it was asked to train: cpu, gpu or auto")
    attempt: int = Field(description="How many times a worker claimed it (more than 1: taken over after a worker died)")
    worker: str | None = Field(description="The worker that claimed it last: its node name and process id")
    progress: Progress = Field(description="Epochs finished of the epochs to run")
    metrics: dict[str, Value] | None = Field(
        description="The latest finished epoch's logs (loss, val_loss, metrics), in tf.js's keys"
    )
    error: str | None = Field(description="Why it failed, for a failed job")
    cancel_requested: bool = Field(description="Whether someone asked to cancel it")
    created_at: datetime = Field(description="When it was submitted (UTC)")
    started_at: datetime | None = Field(description="When a worker first started it (UTC)")
    finished_at: datetime | None = Field(description="When it ended (UTC)")
    links: JobLinks = Field(description="Where to read and act on it")
    reason: str | None = Field(
        None, description="Why a queued job waits, when no online worker can take it, e.g. no GPU worker online"
    )
    sweep_id: str | None = Field(None, description="The sweep the job is a point of")

    @classmethod
    def of(cls, job: Job, reason: str | None = None) -> JobRead:
        path = f"/v1/jobs/{job.id}"
        return cls.of_attributes(
            job,
            reason=reason,
            progress=Progress(epoch=job.epochs_done, epochs=job.epochs_total),
            metrics=job.latest_logs,
            links=JobLinks(
                self=path,
                history=f"{path}/history",
                weights=f"{path}/weights",
                evaluate=f"{path}/evaluate",
                predict=f"{path}/predict",
                cancel=f"{path}/cancel",
            ),
        )


class JobPage(Page[JobRead]):
    """Jobs, newest first."""


class EpochRead(Schema):
    epoch: int = Field(description="0-based, as tf.js's history.epoch")
    logs: dict[str, Value] = Field(description="loss, val_loss and metrics, in tf.js's keys; null if not finite")
    wall_time: float = Field(description="Seconds the worker spent training this epoch")
    recorded_at: datetime = Field(description="When the epoch ended on its worker (UTC)")


class History(Schema):
    job_id: str = Field(description="The job's id")
    epochs: list[EpochRead] = Field(description="The recorded epochs from `since` on, in order")


class WeightArray(Schema):
    shape: list[int] = Field(description="The array's shape: [inputDim, units] for a kernel, [units] for a bias")
    values: list[Any] = Field(description="The values as nested lists of that shape")


class WeightsRead(Schema):
    weights: list[WeightArray] = Field(description="In model.getWeights() order: kernel then bias, layer by layer")


class EvaluateRequest(Schema):
    # the schema states what the route enforces: x and y, or datasetId, not both
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["x", "y"], "not": {"required": ["datasetId"]}},
                {"required": ["datasetId"], "not": {"anyOf": [{"required": ["x"]}, {"required": ["y"]}]}},
            ]
        }
    )

    x: Matrix | SkipJsonSchema[None] = Field(
        None, description="Samples, one row each (a flat list: one feature per sample)"
    )
    y: Matrix | SkipJsonSchema[None] = Field(None, description="Targets, one row each")
    dataset_id: Annotated[str, Field(min_length=1, max_length=64)] | SkipJsonSchema[None] = Field(
        None, description="An uploaded dataset instead of x and y (a large one: POST /v1/jobs/{id}/evaluations)"
    )

    _not_null = field_validator("x", "y", "dataset_id", mode="before")(refuse_null)
    batch_size: BatchSize = 32


class EvaluateResponse(Schema):
    loss: Value = Field(description="The compiled loss over x and y, as model.evaluate computes it")
    metrics: dict[str, Value] = Field(description="Each compiled metric, by its tf.js log key")


class PredictRequest(Schema):
    x: Matrix = Field(description="Samples, one row each (a flat list: one feature per sample)")
    batch_size: BatchSize = 32


class PredictResponse(Schema):
    predictions: list[list[Value]] = Field(description="The model's outputs, one row per sample; null if not finite")


class Health(Schema):
    status: str = Field(description="ok while the process serves requests")


class Readiness(Schema):
    database: str = Field(description="ok, or why the database cannot be reached")
    broker: str = Field(description="ok, or why the broker cannot be reached")


class FieldError(Schema):
    field: str = Field(description="Dotted path of the request part at fault, e.g. model.layers[0].units")
    message: str = Field(description="What is wrong with it")


class ErrorBody(Schema):
    detail: str = Field(description="One human sentence")
    errors: list[FieldError] = Field(description="Each field at fault")


# --- datasets and evaluations (issue 4) -----------------------------------------------


class ColumnSummary(Schema):
    name: str = Field(description="The column's name: the CSV/Parquet header, the .npy index, or x[j] / y[j]")
    role: str = Field(description="x (a feature) or y (a target)")
    min: float = Field(description="Smallest value")
    max: float = Field(description="Largest value")
    mean: float = Field(description="Mean")
    std: float = Field(description="Standard deviation (population)")


class DatasetRead(Schema):
    id: str = Field(description="The dataset's id: name it in a job as data.datasetId")
    name: str | None = Field(description="The name it was uploaded with")
    format: str = Field(description="The format it was uploaded in: csv, npy, npz, json or parquet")
    rows: int = Field(description="Samples")
    x_shape: list[int] = Field(description="[rows, features]")
    y_shape: list[int] = Field(description="[rows, targets]")
    dtype: str = Field(description="How it is stored: float32")
    byte_size: int = Field(description="Bytes uploaded")
    sha256: str = Field(description="sha256 of the bytes uploaded")
    columns: list[ColumnSummary] = Field(description="Per column: min, max, mean, std")
    created_at: datetime = Field(description="When it was uploaded (UTC)")

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetRead:
        return cls.of_attributes(
            dataset,
            x_shape=[dataset.rows, dataset.x_columns],
            y_shape=[dataset.rows, dataset.y_columns],
            columns=[ColumnSummary(**column) for column in dataset.summary["columns"]],
        )


class DatasetPage(Page[DatasetRead]):
    """Datasets, newest first."""


class ModelLinks(Schema):
    model_config = ConfigDict(alias_generator=None)

    self: str = Field(description="This model")
    model_json: str = Field(
        serialization_alias="model.json", description="Its model.json: tf.loadLayersModel('<this URL>')"
    )
    weights_bin: str = Field(serialization_alias="weights.bin", description="The weights its model.json names")


class ModelRead(Schema):
    id: str = Field(description='The model\'s id: start a job from it with "model": {"from": "<id>"}')
    name: str | None = Field(description="The name it was stored with")
    layers: list[dict[str, Any]] = Field(description="Its layers, as a job spec's model.layers")
    compile: dict[str, Any] | None = Field(
        description="Its compile, as a job spec's (from tf.js's trainingConfig); null when saved uncompiled"
    )
    parameters: int = Field(description="How many weights it holds")
    source_job_id: str | None = Field(description="The job it was saved from; null for an upload")
    created_at: datetime = Field(description="When it was stored (UTC)")
    links: ModelLinks

    @classmethod
    def of(cls, model: StoredModel) -> ModelRead:
        base = f"/v1/models/{model.id}"
        return cls.of_attributes(
            model,
            links=ModelLinks(self=base, model_json=f"{base}/model.json", weights_bin=f"{base}/weights.bin"),
        )


class ModelPage(Page[ModelRead]):
    """Models, newest first."""


class EvaluationCreate(Schema):
    dataset_id: str = Field(max_length=64, description="The uploaded dataset to evaluate the job's model on")
    batch_size: BatchSize = 32


class EvaluationRead(Schema):
    id: str = Field(description="The evaluation's id: poll GET /v1/evaluations/{id}")
    job_id: str = Field(description="The job whose trained model is evaluated")
    dataset_id: str = Field(description="The dataset it is evaluated on")
    status: str = Field(description="queued, running, succeeded or failed")
    loss: Value = Field(description="The compiled loss, once succeeded")
    metrics: dict[str, Value] | None = Field(description="Each compiled metric by its tf.js log key, once succeeded")
    error: str | None = Field(description="Why it failed")
    attempt: int = Field(description="How many times a worker claimed it (more than 1: taken over from a dead worker)")
    worker: str | None = Field(description="The worker process that ran it (its last attempt)")
    created_at: datetime = Field(description="When it was asked for (UTC)")
    finished_at: datetime | None = Field(description="When it ended (UTC)")

    @classmethod
    def of(cls, evaluation: Evaluation) -> EvaluationRead:
        logs = dict(evaluation.logs or {})
        loss = logs.pop("loss", None)
        return cls.of_attributes(evaluation, loss=loss, metrics=logs if evaluation.logs is not None else None)


# --- the cluster: workers and sweeps (issue 6) -----------------------------------------


class WorkerRead(Schema):
    name: str = Field(description="The Celery node name, e.g. trainq-1@host")
    status: WorkerStatus = Field(description="online (recent heartbeat), lost (silent too long) or stopped")
    host: str = Field(description="The machine it runs on")
    pid: int = Field(description="Its main process")
    device_kind: Device = Field(description="cpu or gpu: which jobs it takes (and auto ones)")
    device_name: str = Field(description="The GPU's name, or the CPU's description")
    memory_bytes: int | None = Field(description="The GPU's memory, or the machine's")
    array_library: str = Field(description="What the engine computes with: numpy, torch or cupy")
    concurrency: int = Field(description="Jobs it trains at once")
    current_jobs: list[str] = Field(description="The jobs it is training now")
    started_at: datetime = Field(description="When it started (UTC)")
    heartbeat_at: datetime = Field(description="Its last heartbeat (UTC)")
    stopped_at: datetime | None = Field(description="When it shut down cleanly (UTC)")

    @classmethod
    def of(cls, state: WorkerState) -> WorkerRead:
        return cls.of_attributes(state.worker, status=state.status, current_jobs=state.current_jobs)


class WorkerList(Schema):
    items: list[WorkerRead] = Field(description="Every worker that recorded itself, online ones first")


class RandomRange(Schema):
    values: list[Any] | None = Field(None, min_length=1, description="Pick one of these uniformly")
    low: float | None = Field(None, description="Lower bound (with high)")
    high: float | None = Field(None, description="Upper bound, included for integers")
    log: bool = Field(False, description="Log-uniform between low and high (low > 0), e.g. for a learning rate")
    integer: bool = Field(False, description="Whole numbers, e.g. for units or a batch size")


class RandomSearch(Schema):
    draws: int = Field(gt=0, le=100_000, description="How many points to draw")
    seed: int = Field(0, ge=0, description="The seed of the draws: the same request gives the same points")
    ranges: dict[str, RandomRange] = Field(min_length=1, description="Per path into the job spec, its range")

    def draws_of(self) -> RandomDraws:
        ranges = {path: Range(**spread.model_dump()) for path, spread in self.ranges.items()}
        return RandomDraws(ranges, draws=self.draws, seed=self.seed)


class SweepCreate(Schema):
    """A sweep: the job spec `base`, and a `grid` (every combination) or `random` draws."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "learning rate x batch size",
                    "base": {**SEED_EXAMPLE, "fit": {**SEED_EXAMPLE["fit"], "epochs": 50}},
                    "grid": {"compile.optimizer.learningRate": [0.1, 0.01, 0.001], "fit.batchSize": [16, 64]},
                    "metric": "val_loss",
                }
            ],
            # the schema states what _grid_or_random enforces
            "oneOf": [{"required": ["grid"]}, {"required": ["random"]}],
        }
    )

    name: str | None = Field(None, max_length=200, description="A label for people")
    device: Device = Field(Device.auto, description="Where its jobs train: cpu, gpu or auto")
    base: JobSpec = Field(description="The job spec every point starts from (model, compile, fit, data)")
    grid: dict[str, list[Any]] | SkipJsonSchema[None] = Field(
        None, description='Per path into the job spec, its values: {"fit.batchSize": [16, 64]}; one job per combination'
    )
    random: RandomSearch | SkipJsonSchema[None] = Field(None, description="Seeded random draws instead of a grid")
    metric: str = Field("val_loss", min_length=1, max_length=64, description="The log key ranked by its final value")
    goal: Literal["min", "max"] = Field("min", description="min: smallest first (losses); max: largest first")

    _not_null = field_validator("grid", "random", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _grid_or_random(self) -> SweepCreate:
        if (self.grid is None) == (self.random is None):
            raise ValueError("give a grid or random draws, one of the two")
        return self


class SweepJob(Schema):
    rank: int | None = Field(description="1 is best; equal values share a rank; null: no final value yet")
    value: Value = Field(description="The metric's final value (the last epoch's), for a succeeded job")
    index: int = Field(description="The point's place in the sweep")
    point: dict[str, Any] = Field(description="The point: path -> value")
    job: JobRead = Field(description="The job")


class SweepLinks(Schema):
    model_config = ConfigDict(alias_generator=None)

    self: str = Field(description="This sweep, ranked")
    cancel: str = Field(description="Cancel all its jobs (POST)")


class SweepRead(Schema):
    id: str = Field(description="The sweep's id")
    name: str | None = Field(description="The name it was created with")
    device: Device = Field(description="Where its jobs train")
    metric: str = Field(description="The metric ranked by")
    goal: Literal["min", "max"] = Field(description="min: smallest first; max: largest first")
    space: dict[str, Any] = Field(description="The grid or random draws it was created with")
    created_at: datetime = Field(description="When it was created (UTC)")
    counts: dict[str, int] = Field(description="Its jobs by status")
    jobs: list[SweepJob] = Field(description="Ranked jobs best first, then the unranked in point order")
    links: SweepLinks = Field(description="Where to read and act on it")

    @classmethod
    def of(cls, ranking: Ranking) -> SweepRead:
        sweep = ranking.sweep
        counts: dict[str, int] = {}
        for entry in ranking.jobs:
            counts[entry.job.status] = counts.get(entry.job.status, 0) + 1
        return cls.of_attributes(
            sweep,
            metric=ranking.metric,
            goal=ranking.goal,
            counts=counts,
            jobs=[
                SweepJob(
                    rank=entry.rank,
                    value=entry.value,
                    index=entry.job.sweep_index or 0,
                    point=entry.point,
                    job=JobRead.of(entry.job),
                )
                for entry in ranking.jobs
            ],
            links=SweepLinks(self=f"/v1/sweeps/{sweep.id}", cancel=f"/v1/sweeps/{sweep.id}/cancel"),
        )


# --- the list of sweeps -----------------------------------------------------------------


class SweepBest(Schema):
    value: float = Field(description="The best final value of the sweep's metric so far")
    job_id: str = Field(description="The job that reached it (the first point, of equal values)")
    point: dict[str, Any] = Field(description="That job's point: path -> value")


class SweepSummaryRead(Schema):
    id: str = Field(description="The sweep's id")
    name: str | None = Field(description="The name it was created with")
    device: Device = Field(description="Where its jobs train")
    metric: str = Field(description="The metric it ranks by")
    goal: Literal["min", "max"] = Field(description="min: smallest first; max: largest first")
    created_at: datetime = Field(description="When it was created (UTC)")
    points: int = Field(description="How many points (jobs) it has")
    counts: dict[str, int] = Field(description="Its jobs by status")
    best: SweepBest | None = Field(description="Its best job so far by its metric; null until one succeeded with it")
    links: SweepLinks = Field(description="Where to read and act on it")

    @classmethod
    def of(cls, summary: SweepSummary) -> SweepSummaryRead:
        sweep, best = summary.sweep, summary.best
        return cls.of_attributes(
            sweep,
            points=len(sweep.points),
            counts=summary.counts,
            best=None if best is None else SweepBest.of_attributes(best),
            links=SweepLinks(self=f"/v1/sweeps/{sweep.id}", cancel=f"/v1/sweeps/{sweep.id}/cancel"),
        )


class SweepPage(Page[SweepSummaryRead]):
    """Sweeps, newest first."""
