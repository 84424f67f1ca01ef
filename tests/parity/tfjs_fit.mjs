// Runs trainq job specs through the real TensorFlow.js 4.22 (pure JS 'cpu' backend).
//
// stdin: one JSON document, either
//   {"cases": [CASE, ...]}       one trainq job spec per case, plus the harness's own
//                                `evaluate: {x, y, batchSize?}` and `predict: {x, batchSize?}`;
//                                answers {"results": [RESULT, ...]} where RESULT is
//                                {"initialWeights", "history", "epochs", "weightsPerEpoch",
//                                 "weights", "evaluate"?, "predict"?}, or {"error": "..."}
//   {"bench": {...}}             times one fit of a workload read from raw float32 files
//                                (see `bench` below); answers {"seconds", "steps", "samples", "loss", "weights"}
// Weights travel as {"shape": [...], "values": [...flat...]}: every number a float32
// value written exactly (a float32 widens to a double without rounding).
// Fits always run with shuffle false: tf.js shuffles with an unseedable Math.random.

import { readFileSync } from 'node:fs';

// tf.js greets Node users on stdout; stdout carries only our JSON
console.log = (...args) => console.error(...args);
const tf = await import('@tensorflow/tfjs');

// Keras's short names, which tf.js's layers API refuses as loss strings
const LOSS_ALIASES = {
  mse: 'meanSquaredError',
  mae: 'meanAbsoluteError',
  mape: 'meanAbsolutePercentageError',
  msle: 'meanSquaredLogarithmicError',
  kld: 'kullbackLeiblerDivergence',
};

function lossFor(name) {
  // huberLoss is no layers string: a tf.js user hands compile tf.losses.huberLoss itself
  if (name === 'huberLoss') return (yTrue, yPred) => tf.losses.huberLoss(yTrue, yPred);
  return LOSS_ALIASES[name] ?? name;
}

function optimizerFor(spec) {
  if (typeof spec === 'string') {
    // momentum has no compile string in tf.js; trainq's defaults for it
    return spec === 'momentum' ? tf.train.momentum(0.01, 0.9, false) : spec;
  }
  const o = spec;
  switch (o.name) {
    case 'sgd':
      return tf.train.sgd(o.learningRate ?? 0.01);
    case 'momentum':
      return tf.train.momentum(o.learningRate ?? 0.01, o.momentum ?? 0.9, o.useNesterov ?? false);
    case 'adam':
      return tf.train.adam(o.learningRate ?? 0.001, o.beta1 ?? 0.9, o.beta2 ?? 0.999, o.epsilon);
    case 'adamax':
      return tf.train.adamax(o.learningRate ?? 0.002, o.beta1 ?? 0.9, o.beta2 ?? 0.999, o.epsilon, o.decay ?? 0);
    case 'rmsprop':
      return tf.train.rmsprop(o.learningRate ?? 0.001, o.decay ?? 0.9, o.momentum ?? 0, o.epsilon, o.centered ?? false);
    case 'adagrad':
      return tf.train.adagrad(o.learningRate ?? 0.01, o.initialAccumulatorValue ?? 0.1);
    case 'adadelta':
      return tf.train.adadelta(o.learningRate ?? 1, o.rho ?? 0.95, o.epsilon);
    default:
      throw new Error(`unknown optimizer ${o.name}`);
  }
}

function buildModel(modelSpec) {
  const model = tf.sequential();
  for (const layer of modelSpec.layers) {
    const options = {
      units: layer.units,
      activation: layer.activation ?? 'linear',
      useBias: layer.useBias ?? true,
    };
    if (layer.inputShape) options.inputShape = layer.inputShape;
    if (layer.kernelInitializer) options.kernelInitializer = layer.kernelInitializer;
    if (layer.biasInitializer) options.biasInitializer = layer.biasInitializer;
    model.add(tf.layers.dense(options));
  }
  return model;
}

function matrix(rows) {
  const twoD = rows.length > 0 && Array.isArray(rows[0]) ? rows : rows.map((v) => [v]);
  return tf.tensor2d(twoD, undefined, 'float32');
}

function weightsOf(model) {
  return model.getWeights().map((w) => ({ shape: w.shape, values: Array.from(w.dataSync()) }));
}

function setWeights(model, weights) {
  const current = model.getWeights();
  if (weights.length !== current.length) {
    throw new Error(`model.weights holds ${weights.length} arrays, the model ${current.length}`);
  }
  model.setWeights(weights.map((w, i) => tf.tensor(w, current[i].shape, 'float32')));
}

function numbers(result) {
  const scalars = Array.isArray(result) ? result : [result];
  return scalars.map((s) => s.dataSync()[0]);
}

async function runCase(spec) {
  const model = buildModel(spec.model);
  if (spec.model.weights) setWeights(model, spec.model.weights);
  const initialWeights = weightsOf(model);
  model.compile({
    optimizer: optimizerFor(spec.compile.optimizer),
    loss: lossFor(spec.compile.loss),
    metrics: spec.compile.metrics ?? [],
  });
  const fitSpec = spec.fit ?? {};
  const weightsPerEpoch = [];
  const epochLogs = [];
  // fit wraps plain-object callbacks only when the first is no Callback instance:
  // mixing with earlyStopping's instance needs ours to be one too
  const callbacks = [
    new tf.CustomCallback({
      onEpochEnd: async (epoch, logs) => {
        epochLogs.push({ epoch, logs: { ...logs } });
        weightsPerEpoch.push(weightsOf(model));
      },
    }),
  ];
  if (fitSpec.earlyStopping) callbacks.push(tf.callbacks.earlyStopping(fitSpec.earlyStopping));
  const x = matrix(spec.data.x);
  const y = matrix(spec.data.y);
  const options = {
    epochs: fitSpec.epochs ?? 1,
    batchSize: fitSpec.batchSize ?? 32,
    shuffle: false,
    initialEpoch: fitSpec.initialEpoch ?? 0,
    verbose: 0,
    callbacks,
  };
  if (spec.data.validationData) {
    options.validationData = [matrix(spec.data.validationData.x), matrix(spec.data.validationData.y)];
  } else if (fitSpec.validationSplit) {
    options.validationSplit = fitSpec.validationSplit;
  }
  const history = await model.fit(x, y, options);
  const result = {
    initialWeights,
    history: history.history,
    epochs: history.epoch,
    epochLogs,
    weightsPerEpoch,
    weights: weightsOf(model),
    metricsNames: model.metricsNames,
  };
  if (spec.evaluate) {
    const evaluated = model.evaluate(matrix(spec.evaluate.x), matrix(spec.evaluate.y), {
      batchSize: spec.evaluate.batchSize ?? 32,
    });
    result.evaluate = numbers(evaluated);
  }
  if (spec.predict) {
    const predicted = model.predict(matrix(spec.predict.x), { batchSize: spec.predict.batchSize ?? 32 });
    result.predict = predicted.arraySync();
  }
  return result;
}

function float32File(path, length) {
  const bytes = readFileSync(path);
  if (bytes.length !== length * 4) throw new Error(`${path}: ${bytes.length} bytes, expected ${length * 4}`);
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, length);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

// {"bench": {"x": PATH, "y": PATH, "samples", "features", "outputs", "model", "compile", "fit"}}:
// x and y are raw little-endian float32 row-major files; the model spec carries the weights.
async function bench(b) {
  const model = buildModel(b.model);
  setWeights(model, b.model.weights);
  model.compile({ optimizer: optimizerFor(b.compile.optimizer), loss: lossFor(b.compile.loss) });
  const x = tf.tensor2d(float32File(b.x, b.samples * b.features), [b.samples, b.features], 'float32');
  const y = tf.tensor2d(float32File(b.y, b.samples * b.outputs), [b.samples, b.outputs], 'float32');
  const batchSize = b.fit.batchSize;
  const epochs = b.fit.epochs;
  const start = process.hrtime.bigint();
  const history = await model.fit(x, y, { epochs, batchSize, shuffle: false, verbose: 0 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    seconds,
    steps: epochs * Math.ceil(b.samples / batchSize),
    samples: epochs * b.samples,
    loss: history.history.loss,
    weights: weightsOf(model),
  };
}

async function main() {
  const input = JSON.parse(readFileSync(0, 'utf8'));
  await tf.setBackend('cpu');
  await tf.ready();
  let output;
  if (input.bench) {
    output = await bench(input.bench);
  } else {
    const results = [];
    for (const spec of input.cases) {
      try {
        results.push(await runCase(spec));
      } catch (error) {
        results.push({ error: String(error && error.stack ? error.stack : error) });
      }
    }
    output = { backend: tf.getBackend(), version: tf.version.tfjs, results };
  }
  process.stdout.write(JSON.stringify(output));
}

await main();
