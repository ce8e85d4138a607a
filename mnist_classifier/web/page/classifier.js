// The export's page classifies without a server: ONNX Runtime Web runs model.onnx in the browser, on a drawing
// prepared with the steps `serve` takes for one (mnist_classifier/inference/strokes.py, then images.py's
// place), and answers in the shape of serve's POST /predict. page.js uses it when it is there.
"use strict";

window.localModel = (async () => {
  const config = await (await fetch("config.json")).json();
  const release = config.release;
  ort.env.wasm.wasmPaths = new URL("page/ort/", document.baseURI).href;
  ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which a plain static host does not give
  const session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
  const [mean, std] = [release.normalization.mean[0], release.normalization.std[0]];
  const box = release.preprocessing.box, byMass = release.preprocessing.centre === "mass";
  const { temperature, unsure_below: unsureBelow, no_digit_below: noDigitBelow = 0 } = release.calibration;

  function inkOf(canvas) {  // strokes.digit_ink on a drawing: the light its ink absorbs, on white paper
    const { width, height } = canvas;
    const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
    const light = new Float32Array(width * height);
    for (let i = 0; i < light.length; i++) {  // transparency over white, as images.flatten; the darkest channel
      const alpha = rgba[4 * i + 3] / 255;
      const darkest = Math.min(rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]);
      light[i] = (alpha * darkest + (1 - alpha) * 255) / 255;
    }
    const sigma = Math.min(Math.max(0.3, Math.min(width, height) / 250), 2.0);  // blurs pixel noise, not strokes
    const blurred = gaussian(light, width, height, sigma);
    const ink = blurred.map((value) => Math.min(Math.max(1 - value, 0), 1));
    const strong = ink.filter((value) => value > 0.5).sort();  // the digit: a drawing's ink is all or nothing
    if (!strong.length) return null;
    const full = strong[Math.floor(0.9 * (strong.length - 1))];  // its 90th percentile becomes full ink
    return { ink: ink.map((value) => (value > 0.15 * full ? Math.min(value / full, 1) : 0)), width, height };
  }

  function gaussian(values, width, height, sigma) {  // as scipy.ndimage.gaussian_filter: truncated at 4 sigma
    const radius = Math.round(4 * sigma);
    const kernel = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma ** 2)));
    const total = kernel.reduce((a, b) => a + b);
    const pass = (source, step, count, stride, lines) => {
      const out = new Float32Array(source.length);
      for (let line = 0; line < lines; line++) {
        for (let i = 0; i < count; i++) {
          let sum = 0;
          for (let k = -radius; k <= radius; k++) {
            let j = i + k;  // scipy's "reflect" edges
            if (j < 0) j = -j - 1;
            if (j >= count) j = 2 * count - j - 1;
            sum += kernel[k + radius] * source[line * stride + j * step];
          }
          out[line * stride + i * step] = sum / total;
        }
      }
      return out;
    };
    return pass(pass(values, 1, width, width, height), width, height, 1, width);
  }

  function lanczos(source, width, height, newWidth, newHeight) {  // PIL's LANCZOS resize, separable
    const weights = (size, newSize) => {
      const scale = size / newSize, support = 3 * Math.max(scale, 1), filterScale = 1 / Math.max(scale, 1);
      const sinc = (x) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
      return Array.from({ length: newSize }, (_, i) => {
        const centre = (i + 0.5) * scale;
        const first = Math.max(Math.floor(centre - support + 0.5), 0);
        const last = Math.min(Math.floor(centre + support + 0.5), size);
        const w = [];
        for (let j = first; j < last; j++) {
          const x = (j - centre + 0.5) * filterScale;
          w.push(Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0);
        }
        const total = w.reduce((a, b) => a + b, 0) || 1;
        return { first, w: w.map((value) => value / total) };
      });
    };
    const across = weights(width, newWidth), down = weights(height, newHeight);
    const rows = new Float32Array(newWidth * height);
    for (let y = 0; y < height; y++) {
      across.forEach(({ first, w }, x) => {
        let sum = 0;
        w.forEach((weight, k) => { sum += weight * source[y * width + first + k]; });
        rows[y * newWidth + x] = Math.min(Math.max(Math.round(sum), 0), 255);
      });
    }
    const out = new Float32Array(newWidth * newHeight);
    down.forEach(({ first, w }, y) => {
      for (let x = 0; x < newWidth; x++) {
        let sum = 0;
        w.forEach((weight, k) => { sum += weight * rows[(first + k) * newWidth + x]; });
        out[y * newWidth + x] = Math.min(Math.max(Math.round(sum), 0), 255);
      }
    });
    return out;
  }

  function place({ ink, width, height }) {  // images.place, then to_mnist's stretch to full ink
    let [top, bottom, left, right] = [height, -1, width, -1];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (255 * ink[y * width + x] > 0.2 * 255) {
          top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
        }
      }
    }
    const digit = new Uint8Array(28 * 28);
    if (bottom < 0) return digit;
    const [w, h] = [right - left + 1, bottom - top + 1];
    const cropped = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) cropped[y * w + x] = Math.round(255 * ink[(top + y) * width + left + x]);
    }
    const scale = box / Math.max(w, h);
    const [sw, sh] = [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
    const small = lanczos(cropped, w, h, sw, sh);
    let [mass, cy, cx] = [0, 0, 0];
    for (let y = 0; y < sh; y++) {
      for (let x = 0; x < sw; x++) { const v = small[y * sw + x]; mass += v; cy += v * y; cx += v * x; }
    }
    [cy, cx] = byMass ? [cy / (mass || 1), cx / (mass || 1)] : [sh / 2, sw / 2];
    const y0 = Math.min(Math.max(Math.round(14 - cy), 0), 28 - sh), x0 = Math.min(Math.max(Math.round(14 - cx), 0), 28 - sw);
    const brightest = Math.max(...small, 1);
    for (let y = 0; y < sh; y++) {
      for (let x = 0; x < sw; x++) digit[(y0 + y) * 28 + x0 + x] = Math.round(small[y * sw + x] * 255 / brightest);
    }
    return digit;
  }

  function asPng(digit) {
    const view = Object.assign(document.createElement("canvas"), { width: 28, height: 28 });
    const pixels = new ImageData(28, 28);
    digit.forEach((value, i) => { pixels.data.set([value, value, value, 255], 4 * i); });
    view.getContext("2d").putImageData(pixels, 0, 0);
    return view.toDataURL("image/png");
  }

  function statusOf(calibrated, ink) {  // calibration.Calibration.status, from calibrated probabilities
    const [first, second = 0] = [...calibrated].sort((a, b) => b - a);
    if (!ink || first + second < noDigitBelow) return "no digit";  // no ink, or no digit stands out
    return first < unsureBelow ? "unsure" : "sure";
  }

  async function classify(canvas, topK) {  // serve's /predict answer, computed here
    const found = inkOf(canvas);
    const digit = found ? place(found) : new Uint8Array(28 * 28);
    const input = Float32Array.from(digit, (value) => (value - 255 * mean) / (255 * std));
    const output = await session.run({ image: new ort.Tensor("float32", input, [1, 1, 28, 28]) });
    const logProbabilities = Array.from(output.log_probabilities.data);
    const order = logProbabilities.map((_, i) => i).sort((a, b) => logProbabilities[b] - logProbabilities[a] || a - b);
    const scaled = logProbabilities.map((value) => value / temperature);
    const top = Math.max(...scaled), total = scaled.reduce((sum, value) => sum + Math.exp(value - top), 0);
    const calibrated = scaled.map((value) => Math.exp(value - top) / total);
    const confidence = calibrated[order[0]], status = statusOf(calibrated, digit.some((value) => value));
    return {
      label: release.class_names[order[0]], probability: Math.exp(logProbabilities[order[0]]), confidence, status,
      top_k: order.slice(0, topK).map((i) => ({ label: release.class_names[i], probability: Math.exp(logProbabilities[i]) })),
      input: asPng(digit),
    };
  }

  const info = { dataset: release.dataset, model: release.architecture.name, epoch: config.epoch,
                 test_accuracy: release.test_accuracy, class_names: release.class_names };
  return { info, classify, statusOf };
})();
