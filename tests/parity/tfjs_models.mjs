// tf.js 4.22 saving and loading layers models, for trainq's model.json tests.
//
// stdin: {"steps": [STEP, ...]}; stdout: {"results": [RESULT, ...]}, one per step, each
// {"error": "..."} when the step threw. Steps:
//   {"save": {model, compile, url?, headers?}}
//       builds `model` (a trainq job spec's model: layers, weights) and compiles it with
//       `compile` (optimizer, loss, metrics; optional). With `url`: model.save(tf.io.http(url,
//       {requestInit: {headers}})), answering {status, body}. Without: the artifact tf.js
//       writes, {modelJson, weights (base64)}, model.json as tf.io.http would send it.
//   {"load": {url, headers?, x?}} or {"load": {modelJson, weights (base64), x?}}
//       tf.loadLayersModel over HTTP (or from memory), answering {weights, predict?,
//       optimizer: {className, config}?, loss?, metricsNames?, userDefinedMetadata}.
//   {"fit": {url, headers?, x, y, epochs, batchSize, validationSplit?}}
//       loads the model over HTTP, compiled by its trainingConfig, and fits it with
//       shuffle false: {history, weights}.
// Weights travel as {"shape", "values"}, float32 values written exactly.

import { readFileSync } from 'node:fs';

console.log = (...args) => console.error(...args);
const tf = await import('@tensorflow/tfjs');

function buildModel(spec) {
  const model = tf.sequential();
  for (const layer of spec.layers) {
    if (layer.type && layer.type !== 'dense') {
      // what a tf.js user may save that trainq refuses
      model.add(tf.layers[layer.type](layer.options));
      continue;
    }
    const options = { units: layer.units, activation: layer.activation ?? 'linear', useBias: layer.useBias ?? true };
    if (layer.inputShape) options.inputShape = layer.inputShape;
    if (layer.kernelInitializer) options.kernelInitializer = initializer(layer.kernelInitializer);
    if (layer.biasInitializer) options.biasInitializer = initializer(layer.biasInitializer);
    model.add(tf.layers.dense(options));
  }
  if (spec.weights) {
    const current = model.getWeights();
    model.setWeights(spec.weights.map((w, i) => tf.tensor(w, current[i].shape, 'float32')));
  }
  return model;
}

function initializer(value) {
  if (typeof value === 'string') return value;
  const { name, ...config } = value;
  return { className: name[0].toUpperCase() + name.slice(1), config };
}

function optimizer(spec) {
  if (typeof spec === 'string') return spec === 'momentum' ? tf.train.momentum(0.01, 0.9, false) : spec;
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

const weightsOf = (model) => model.getWeights().map((w) => ({ shape: w.shape, values: Array.from(w.dataSync()) }));
const matrix = (rows) => tf.tensor2d(rows, undefined, 'float32');
const requestInit = (headers) => ({ requestInit: { headers: headers ?? {} } });

async function save({ model: spec, compile, url, headers, includeOptimizer }) {
  const model = buildModel(spec);
  if (compile) {
    model.compile({ optimizer: optimizer(compile.optimizer), loss: compile.loss, metrics: compile.metrics ?? [] });
  }
  // tf.js 4.22 cannot save Adamax's state: includeOptimizer false leaves trainingConfig out
  const config = { includeOptimizer: includeOptimizer ?? compile != null };
  if (url) {
    try {
      const result = await model.save(tf.io.http(url, requestInit(headers)), config);
      return { status: result.responses[0].status, body: await result.responses[0].json() };
    } catch (error) {
      // tf.io.http throws on a status that is not ok; ask again to read trainq's answer
      const artifacts = await artifactOf(model, config);
      const form = new FormData();
      form.append('model.json', new Blob([JSON.stringify(artifacts.modelJson)], { type: 'application/json' }), 'model.json');
      form.append('model.weights.bin', new Blob([Buffer.from(artifacts.weights, 'base64')]), 'model.weights.bin');
      const response = await fetch(url, { method: 'POST', body: form, headers: headers ?? {} });
      return { status: response.status, body: await response.json(), thrown: error.message };
    }
  }
  return artifactOf(model, config);
}

async function artifactOf(model, config) {
  // exactly what tf.io.http sends: its multipart form, caught by a fetch of our own
  let form;
  const capture = async (url, init) => {
    form = init.body;
    return new Response('{}', { status: 200 });
  };
  await model.save(tf.io.http('http://trainq.test/v1/models', { fetchFunc: capture }), config);
  const modelJson = JSON.parse(await form.get('model.json').text());
  const weights = Buffer.from(await form.get('model.weights.bin').arrayBuffer()).toString('base64');
  return { modelJson, weights, fields: [...form.keys()] };
}

async function loadModel({ url, headers, modelJson, weights }) {
  if (url) return tf.loadLayersModel(url, requestInit(headers));
  // served from memory through tf.io.http's own loader (weights path resolved as over HTTP)
  const serve = async (path) =>
    path.endsWith('/model.json')
      ? new Response(JSON.stringify(modelJson), { status: 200 })
      : new Response(Buffer.from(weights, 'base64'), { status: 200 });
  return tf.loadLayersModel(tf.io.http('http://trainq.test/v1/jobs/j/model.json', { fetchFunc: serve }));
}

async function load(step) {
  const model = await loadModel(step);
  const result = { weights: weightsOf(model), userDefinedMetadata: model.getUserDefinedMetadata() ?? null };
  if (step.x) result.predict = Array.from(model.predict(matrix(step.x)).dataSync());
  if (model.optimizer) {
    result.optimizer = { className: model.optimizer.getClassName(), config: model.optimizer.getConfig() };
    result.loss = model.loss;
    result.metricsNames = model.metricsNames;
  }
  return result;
}

async function fit(step) {
  const model = await loadModel(step);
  const options = { epochs: step.epochs, batchSize: step.batchSize, shuffle: false, verbose: 0 };
  if (step.validationSplit) options.validationSplit = step.validationSplit;
  const history = await model.fit(matrix(step.x), matrix(step.y), options);
  return { history: history.history, weights: weightsOf(model), metricsNames: model.metricsNames };
}

const { steps } = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const step of steps) {
  try {
    if (step.save) results.push(await save(step.save));
    else if (step.load) results.push(await load(step.load));
    else if (step.fit) results.push(await fit(step.fit));
    else throw new Error(`unknown step ${Object.keys(step)}`);
  } catch (error) {
    results.push({ error: error.stack ?? String(error) });
  }
}
process.stdout.write(JSON.stringify({ results }));
