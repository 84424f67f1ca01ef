"""The job spec: trainq's public contract, in TensorFlow.js's field names.

One document describes a training job: the model (`tf.sequential` of `tf.layers.dense`),
its compilation (`model.compile`), its fit (`model.fit`) and its data. The HTTP API,
the worker and `trainq fit` all read this same document; `docs/job-spec.md` explains it.

pydantic checks the structure (types, ranges, unknown fields); `to_training_config` and
`arrays` turn it into the engine's dataclasses and float32 arrays, and
`services.engine.validate_training` checks what depends on the engine (names, shapes).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictInt,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapSerializer,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError
from typing_extensions import TypeAliasType

from trainq.services.engine import (
    CompileConfig,
    DenseConfig,
    EarlyStoppingConfig,
    FitConfig,
    InitializerConfig,
    InvalidData,
    ModelConfig,
    OptimizerConfig,
    TrainingConfig,
)
from trainq.services.engine.losses import LOSS_NAMES
from trainq.services.inline_data import InlineMatrix

# strict: a numeric string or a boolean is not a number (lax pydantic would take "1.5" and true)
Number = StrictFloat | StrictInt


def _inline_or_validated(value: Any, validate: ValidatorFunctionWrapHandler) -> Any:
    # parsed from the request's JSON text, and checked there (services.inline_data)
    return value if isinstance(value, InlineMatrix) else validate(value)


def _inline_as_lists(value: Any, serialize: SerializerFunctionWrapHandler) -> Any:
    # JobSpec.document keeps an InlineMatrix as it is; any other dump gets the lists it holds
    return json.loads(bytes(value.text)) if isinstance(value, InlineMatrix) else serialize(value)


# a request's well-formed matrix arrives parsed (api.inline_body), which the schema leaves out
INLINE_MATRIX = WrapValidator(_inline_or_validated)
# at least one row of at least one value, as samples() enforces: the schema says so too
Matrix = Annotated[
    Annotated[list[Annotated[list[Number], Field(min_length=1)]], Field(min_length=1)]
    | Annotated[list[Number], Field(min_length=1)],
    INLINE_MATRIX,
    WrapSerializer(_inline_as_lists),
]
# a named recursive alias: pydantic resolves it by name instead of recursing forever
NestedNumbers = TypeAliasType("NestedNumbers", "float | int | list[NestedNumbers]")


# the most epochs one job may train
MAX_EPOCHS = 100_000


class SpecModel(BaseModel):
    """camelCase on the wire (tf.js's names), snake_case in Python; unknown fields refused.
    Strict, as the JSON schema is: "32" or 32.0 is not an integer, "0.1" or true not a number."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True)


class Initializer(SpecModel):
    """An initializer with options, e.g. `{"name": "randomNormal", "mean": 0, "stddev": 0.05}`."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="tf.js initializer name, e.g. glorotNormal, heUniform, randomNormal")


class DenseLayer(SpecModel):
    """`tf.layers.dense(...)`: output = activation(input · kernel + bias)."""

    type: Literal["dense"] = Field("dense", description="Only Dense layers are supported")
    units: Annotated[int, Field(gt=0, le=65536, description="Number of outputs of the layer")]
    input_shape: list[Annotated[int, Field(gt=0)]] | None = Field(
        None, description="Required on the first layer: [number of features]", min_length=1, max_length=1
    )
    activation: str = Field("linear", description="tf.js activation name, e.g. relu, sigmoid, softmax")
    use_bias: bool = Field(True, description="Whether the layer adds a bias vector")
    kernel_initializer: str | Initializer = Field("glorotNormal", description="tf.js initializer")
    bias_initializer: str | Initializer = Field("zeros", description="tf.js initializer")


class Model(SpecModel):
    layers: list[DenseLayer] = Field(
        min_length=1, max_length=64, description="The Sequential stack, input first; the first needs inputShape"
    )
    weights: list[NestedNumbers] | None = Field(
        None,
        description="Initial weights in model.getWeights() order: kernel then bias, layer by layer",
    )


class Optimizer(SpecModel):
    """An optimizer with options, e.g. `{"name": "adam", "learningRate": 0.001, "beta1": 0.9}`."""

    name: str = Field(description="sgd, momentum, adam, adamax, rmsprop, adagrad or adadelta")
    learning_rate: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Step size; default: tf.js's for the optimizer (sgd 0.01, adam 0.001, ...)"
    )
    momentum: Annotated[float, Field(ge=0)] | None = Field(None, description="momentum and rmsprop only")
    use_nesterov: bool | None = Field(None, description="momentum only: Nesterov's update")
    beta1: Annotated[float, Field(ge=0, lt=1)] | None = Field(None, description="adam, adamax (default 0.9)")
    beta2: Annotated[float, Field(ge=0, lt=1)] | None = Field(None, description="adam, adamax (default 0.999)")
    epsilon: Annotated[float, Field(gt=0)] | None = Field(None, description="Fuzz factor (default 1e-7)")
    rho: Annotated[float, Field(ge=0, le=1)] | None = Field(None, description="adadelta's decay (default 0.95)")
    decay: Annotated[float, Field(ge=0)] | None = Field(
        None, description="rmsprop's decay of the squared-gradient average (default 0.9); adamax's lr decay"
    )
    centered: bool | None = Field(None, description="rmsprop only: normalise by the gradient's variance")
    initial_accumulator_value: Annotated[float, Field(ge=0)] | None = Field(
        None, description="adagrad only (default 0.1)"
    )


class Compile(SpecModel):
    optimizer: str | Optimizer = Field(description="An optimizer name, or an object with its options")
    loss: str = Field(
        description="tf.js loss name (meanSquaredError, ...) or Keras alias (mse, mae, ...)",
        json_schema_extra={"enum": list(LOSS_NAMES)},
    )
    metrics: list[str] = Field(default_factory=list, max_length=16, description="Metric names, e.g. accuracy, mse, mae")


class EarlyStopping(SpecModel):
    """`tf.callbacks.earlyStopping(...)`."""

    monitor: str = Field("val_loss", description="The log key watched, e.g. val_loss, loss, val_acc")
    min_delta: Annotated[float, Field(ge=0)] = Field(0.0, description="The least change that counts as better")
    patience: Annotated[int, Field(ge=0)] = Field(0, description="Epochs without improvement before stopping")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="min, max, or auto: max when monitor contains 'acc', else min"
    )
    baseline: float | None = Field(None, description="A value the monitor must beat from the start")


class Fit(SpecModel):
    epochs: Annotated[int, Field(gt=0, le=MAX_EPOCHS)] = Field(1, description="The epoch to train up to")
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = Field(32, description="Samples per gradient step")
    shuffle: bool = Field(True, description="Permute the training rows before each epoch")
    validation_split: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="Fraction of the LAST rows held out for validation, taken before shuffling"
    )
    initial_epoch: Annotated[int, Field(ge=0)] = Field(0, description="The epoch to start from (for resuming)")
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = Field(
        None, description="trainq's own: makes initialisation and shuffling reproducible"
    )
    early_stopping: EarlyStopping | None = Field(None, description="tf.callbacks.earlyStopping options")

    @model_validator(mode="after")
    def _initial_epoch_below_epochs(self) -> Fit:
        if self.initial_epoch >= self.epochs:
            raise ValueError("initialEpoch must be smaller than epochs")
        return self


class XY(SpecModel):
    x: Matrix = Field(description="Samples, one row each")
    y: Matrix = Field(description="Targets, one row each")


def refuse_null(value: Any) -> Any:
    """A field the schema gives no null: leaving it out is how a request says it has none."""
    if value is None:
        raise ValueError("must not be null; leave the field out instead")
    return value


class Data(SpecModel):
    """Either inline `x` and `y` (small jobs) or `datasetId`, an uploaded dataset (POST /v1/datasets)."""

    # the schema states what _inline_or_dataset enforces
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["x", "y"],
                    "not": {"anyOf": [{"required": [n]} for n in ("datasetId", "validationDatasetId")]},
                },
                {
                    "required": ["datasetId"],
                    "not": {"anyOf": [{"required": [n]} for n in ("x", "y", "validationData")]},
                },
            ]
        }
    )

    x: Matrix | SkipJsonSchema[None] = Field(None, description="Samples, one row each")
    y: Matrix | SkipJsonSchema[None] = Field(None, description="Targets, one row each")
    validation_data: XY | SkipJsonSchema[None] = Field(None, description="Held-out data; overrides validationSplit")
    dataset_id: Annotated[str, Field(min_length=1, max_length=64)] | SkipJsonSchema[None] = Field(
        None, description="An uploaded dataset to train on, instead of x and y"
    )
    validation_dataset_id: Annotated[str, Field(min_length=1, max_length=64)] | SkipJsonSchema[None] = Field(
        None, description="An uploaded dataset held out for validation; overrides validationSplit"
    )

    @field_validator("x", "y", "validation_data", "dataset_id", "validation_dataset_id", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return refuse_null(value)

    @model_validator(mode="after")
    def _inline_or_dataset(self) -> Data:
        # each fault is named as its own field (data.x, data.datasetId), not as `data`: a
        # ValidationError raised here keeps its locations, under this model's own
        faults: list[tuple[str, str, Any]] = []  # (field, message, value)
        if self.dataset_id is None:
            faults += [
                (
                    name,
                    "Field required: inline samples, or datasetId naming an uploaded dataset instead of x and y",
                    None,
                )
                for name, value in (("x", self.x), ("y", self.y))
                if value is None
            ]
            if self.validation_dataset_id is not None:
                faults.append(
                    (
                        "validationDatasetId",
                        "goes with datasetId; with inline x and y use validationData",
                        self.validation_dataset_id,
                    )
                )
        else:
            inline = [
                name
                for name, value in (("x", self.x), ("y", self.y), ("validationData", self.validation_data))
                if value is not None
            ]
            if inline:
                faults.append(
                    (
                        "datasetId",
                        f"give either datasetId or inline x and y (and validationData), "
                        f"not both; {' and '.join(inline)} given too",
                        self.dataset_id,
                    )
                )
        if faults:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(type=PydanticCustomError("data_source", message), loc=(name,), input=value)
                    for name, message, value in faults
                ],
            )
        return self

    @property
    def uses_dataset(self) -> bool:
        return self.dataset_id is not None


class ModelFrom(SpecModel):
    """`{"from": "<modelId>"}`: a stored model's layers (POST /v1/models), its weights the initial weights."""

    from_: str = Field(alias="from", min_length=1, max_length=64, description="The id POST /v1/models answered")


def _model_kind(value: Any) -> str:
    return "ModelFrom" if isinstance(value, ModelFrom) or (isinstance(value, dict) and "from" in value) else "Model"


# JobRequest's rule as JSON schema: compile, unless the model names a stored one
COMPILE_UNLESS_STORED: list[JsonValue] = [{"required": ["compile"]}, {"properties": {"model": {"required": ["from"]}}}]


class JobRequest(SpecModel):
    """A job spec as submitted: the model may name a stored model instead of its layers, and
    compile may then be left out when that model was saved compiled (a tf.js trainingConfig).
    `services.models.service.job_spec` turns it into the JobSpec that is stored and trained."""

    # the schema states what _compile_unless_stored enforces
    model_config = ConfigDict(json_schema_extra={"anyOf": COMPILE_UNLESS_STORED})

    # the tags are type names, which error paths leave out (model.layers[0].units, model.from)
    model: Annotated[
        Annotated[Model, Tag("Model")] | Annotated[ModelFrom, Tag("ModelFrom")],
        Discriminator(_model_kind),
    ] = Field(description="tf.sequential of tf.layers.dense, or {from: <modelId>}")
    compile: Compile | None = Field(
        None, description="model.compile options; optional when model.from names a model saved compiled"
    )
    fit: Fit = Field(Fit(), description="model.fit options")
    data: Data = Field(description="The training data")

    @model_validator(mode="after")
    def _compile_unless_stored(self) -> JobRequest:
        if self.compile is None and isinstance(self.model, Model):
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [InitErrorDetails(type="missing", loc=("compile",), input=None)],
            )
        return self


class JobSpec(SpecModel):
    """A training job: model, compile, fit and data."""

    model: Model = Field(description="tf.sequential of tf.layers.dense")
    compile: Compile = Field(description="model.compile options")
    fit: Fit = Field(Fit(), description="model.fit options")
    data: Data = Field(description="The training data")

    def to_training_config(self) -> TrainingConfig:
        return TrainingConfig(
            model=ModelConfig(
                layers=tuple(dense_config(layer) for layer in self.model.layers),
                weights=None
                if self.model.weights is None
                else tuple(_float32_array(w, f"model.weights[{i}]") for i, w in enumerate(self.model.weights)),
            ),
            compile=CompileConfig(
                optimizer=optimizer_config(self.compile.optimizer),
                loss=self.compile.loss,
                metrics=tuple(self.compile.metrics),
            ),
            fit=FitConfig(
                epochs=self.fit.epochs,
                batch_size=self.fit.batch_size,
                shuffle=self.fit.shuffle,
                validation_split=self.fit.validation_split,
                initial_epoch=self.fit.initial_epoch,
                seed=self.fit.seed,
                early_stopping=None
                if self.fit.early_stopping is None
                else EarlyStoppingConfig(
                    monitor=self.fit.early_stopping.monitor,
                    min_delta=self.fit.early_stopping.min_delta,
                    patience=self.fit.early_stopping.patience,
                    mode=self.fit.early_stopping.mode,
                    baseline=self.fit.early_stopping.baseline,
                ),
            ),
        )

    def document(self) -> dict[str, Any]:
        """The spec as stored: dumped by alias, JSON's types. Inline data parsed from the
        request's JSON stays an InlineMatrix, which `services.inline_data.json_text` (the
        database's JSON serializer) writes as the text it came as: not as lists of floats."""
        inline = _inline_matrices(self.data)
        validation = self.data.validation_data
        held_out = {} if validation is None else _inline_matrices(validation)
        left_out: dict[str, Any] = {**dict.fromkeys(inline, True), "validation_data": dict.fromkeys(held_out, True)}
        document = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"data": left_out})
        document["data"].update(inline)
        if held_out:
            document["data"]["validationData"].update(held_out)
        return document

    def arrays(self) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """x, y and the validation data as float32 matrices; InvalidData names the field.

        Inline data only: a job on an uploaded dataset reads it with
        `services.datasets.jobs.training_arrays`."""
        if self.data.x is None or self.data.y is None:
            raise InvalidData("data.datasetId", "the job trains on an uploaded dataset, not inline data")
        x, y = samples(self.data.x, "data.x"), samples(self.data.y, "data.y")
        validation = None
        if self.data.validation_data is not None:
            validation = (
                samples(self.data.validation_data.x, "data.validationData.x"),
                samples(self.data.validation_data.y, "data.validationData.y"),
            )
        return x, y, validation


def _inline_matrices(holder: Data | XY) -> dict[str, InlineMatrix]:
    """Its `x` and `y` that were parsed from the request's JSON text, by name."""
    found = {name: getattr(holder, name) for name in ("x", "y")}
    return {name: value for name, value in found.items() if isinstance(value, InlineMatrix)}


def samples(rows: Matrix, field: str) -> np.ndarray:
    """Rows of numbers as a float32 matrix; a flat list is one column per sample.

    Refuses ragged rows and values that are NaN, infinite, or too large for float32,
    naming the row and column at fault."""
    if isinstance(rows, InlineMatrix):
        return rows.array
    if len(rows) == 0:
        raise InvalidData(field, "must hold at least one row")
    if not isinstance(rows[0], list):
        rows = [[v] for v in rows]
    width = len(rows[0])
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = len(row) if isinstance(row, list) else "a number"
            raise InvalidData(f"{field}[{i}]", f"ragged rows: row {i} has {got} values, row 0 has {width}")
    if width == 0:
        raise InvalidData(f"{field}[0]", "rows must hold at least one value")
    try:
        with np.errstate(over="ignore"):
            array = np.asarray(rows, dtype=np.float32)
    except OverflowError:  # an integer written out in digits beyond any float
        i, j = next((i, j) for i, row in enumerate(rows) for j, v in enumerate(row) if abs(v) > _FLOAT32_MAX)
        raise _not_finite(field, rows, i, j) from None
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        i, j = (int(v) for v in bad[0])
        raise _not_finite(field, rows, i, j)
    return array


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _not_finite(field: str, rows: list[list[Number]], i: int, j: int) -> InvalidData:
    shown = repr(rows[i][j])
    if len(shown) > 40:
        shown = f"a number of {len(shown)} digits"
    return InvalidData(f"{field}[{i}][{j}]", f"{shown} is not a finite float32 number (row {i}, column {j})")


def _float32_array(values: Any, field: str) -> np.ndarray:
    try:
        with np.errstate(over="ignore"):
            array = np.asarray(values, dtype=np.float32)
    except (ValueError, OverflowError) as error:
        raise InvalidData(field, f"not a rectangular array of finite float32 numbers ({error})") from None
    if not np.all(np.isfinite(array)):
        raise InvalidData(field, "holds NaN or infinite values")
    return array


def _initializer_config(value: str | Initializer) -> InitializerConfig:
    if isinstance(value, str):
        return InitializerConfig(value)
    options = {k: v for k, v in (value.model_extra or {}).items()}
    return InitializerConfig(value.name, options)


def dense_config(layer: DenseLayer) -> DenseConfig:
    return DenseConfig(
        units=layer.units,
        activation=layer.activation,
        use_bias=layer.use_bias,
        kernel_initializer=_initializer_config(layer.kernel_initializer),
        bias_initializer=_initializer_config(layer.bias_initializer),
        input_shape=None if layer.input_shape is None else tuple(layer.input_shape),
    )


def optimizer_config(value: str | Optimizer) -> OptimizerConfig:
    if isinstance(value, str):
        return OptimizerConfig(value)
    options = value.model_dump(by_alias=True, exclude_none=True, exclude={"name"})
    return OptimizerConfig(value.name, options)


SEED_EXAMPLE: dict[str, Any] = {
    "model": {"layers": [{"units": 1, "inputShape": [1]}]},
    "compile": {"optimizer": {"name": "sgd", "learningRate": 0.01}, "loss": "meanAbsoluteError"},
    "fit": {"epochs": 20, "batchSize": 32, "validationSplit": 0.2, "seed": 7},
    "data": {
        "x": [[0.1], [0.5], [0.9], [1.3], [1.7]],
        "y": [[1.2], [2.0], [2.8], [3.6], [4.4]],
    },
}
