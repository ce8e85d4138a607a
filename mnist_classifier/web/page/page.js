// The drawing page of `serve` and of an export: draw with pointer events (mouse, pen, finger), and after each
// stroke ask for the answer: from POST /predict (the canvas as a PNG), or, on an export's page, from the model in
// the browser (classifier.js); show the top classes as bars and the 28x28 image the model received.
"use strict";

const TOP_K = 5;
const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
const labelView = document.getElementById("label");
const bars = document.getElementById("bars");
const inputView = document.getElementById("input");
const status = document.getElementById("status");
const answerView = document.querySelector(".answer");  // aria-busy while the answer to the newest image is due
let drawing = null;   // the pointer drawing now, and where it was
let latest = 0;       // the newest request: answers to older ones arrive late and are dropped

function clearCanvas() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  latest += 1;
  answerView.setAttribute("aria-busy", "false");
  labelView.textContent = "…";
  bars.replaceChildren();
  inputView.removeAttribute("src");
  status.textContent = "";
}

function point(event) {  // canvas pixels, whatever size CSS shows the canvas at
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

function line(from, to) {
  pen.strokeStyle = "#000";
  pen.lineWidth = canvas.width / 13;  // a stroke as thick, against the digit, as MNIST's pen strokes
  pen.lineCap = pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(...from);
  pen.lineTo(...to);
  pen.stroke();
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  drawing = { id: event.pointerId, at: point(event) };
  line(drawing.at, drawing.at);
});

canvas.addEventListener("pointermove", (event) => {
  if (!drawing || event.pointerId !== drawing.id) return;
  const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const move of moves.length ? moves : [event]) {
    const to = point(move);
    line(drawing.at, to);
    drawing.at = to;
  }
});

function endStroke(event) {
  if (!drawing || event.pointerId !== drawing.id) return;
  drawing = null;
  answerView.setAttribute("aria-busy", "true");  // now, not once the PNG is made: the old answer is stale already
  if (window.localModel) send(null, null);
  else canvas.toBlob((png) => send(png, "image/png"), "image/png");
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

async function ask(body, type) {  // serve's answer to an image, or the export's to the canvas (body null)
  if (window.localModel) return (await window.localModel).classify(canvas, TOP_K);
  const response = await fetch(`/predict?top_k=${TOP_K}&show_input=true`,
                               { method: "POST", headers: { "Content-Type": type }, body });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

async function send(body, type) {
  const request = ++latest;
  const started = performance.now();
  answerView.setAttribute("aria-busy", "true");
  status.textContent = "";
  try {
    const answer = await ask(body, type);
    if (request !== latest) return;
    show(answer);
    document.body.dataset.answerMs = (performance.now() - started).toFixed(1);  // how long it took, for tests
  } catch (error) {
    if (request === latest) status.textContent = `error: ${error.message}`;
  } finally {
    if (request === latest) answerView.setAttribute("aria-busy", "false");
  }
}

function show(answer) {
  labelView.textContent = answer.label;
  bars.replaceChildren(...answer.top_k.map(({ label, probability }) => {
    const item = document.createElement("li");
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: label });
    const bar = Object.assign(document.createElement("span"), { className: "bar" });
    const fill = Object.assign(document.createElement("span"), { className: "fill" });
    fill.style.width = `${(100 * probability).toFixed(1)}%`;
    fill.style.display = "block";
    bar.append(fill);
    const share = Object.assign(document.createElement("span"), { textContent: `${(100 * probability).toFixed(1)}%` });
    item.append(name, bar, share);
    return item;
  }));
  inputView.src = answer.input;
  // the release's calibrated confidence: say so when the answer is a guess, or the picture holds no digit
  if (answer.status === "unsure") {
    status.textContent = `unsure: calibrated confidence ${(100 * answer.confidence).toFixed(0)}%`;
  } else if (answer.status === "no digit") {
    status.textContent = "no digit found";
  }
}

function sendFile(file) {
  if (!file) return;
  clearCanvas();
  const picture = new Image();
  picture.onload = () => {  // show the photo on the canvas, scaled to fit; serve reads the file itself
    const scale = Math.min(canvas.width / picture.width, canvas.height / picture.height);
    const w = picture.width * scale, h = picture.height * scale;
    pen.drawImage(picture, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    URL.revokeObjectURL(picture.src);
    if (window.localModel) send(null, null);
  };
  picture.src = URL.createObjectURL(file);
  if (!window.localModel) send(file, file.type || "application/octet-stream");
}

document.getElementById("clear").addEventListener("click", clearCanvas);
document.getElementById("file").addEventListener("change", (event) => sendFile(event.target.files[0]));
canvas.addEventListener("dragover", (event) => { event.preventDefault(); canvas.classList.add("dropping"); });
canvas.addEventListener("dragleave", () => canvas.classList.remove("dropping"));
canvas.addEventListener("drop", (event) => {
  event.preventDefault();
  canvas.classList.remove("dropping");
  sendFile(event.dataTransfer.files[0]);
});

async function loadInfo() {
  try {
    const info = window.localModel ? (await window.localModel).info : await (await fetch("/info")).json();
    const accuracy = info.test_accuracy == null ? "not tested" : `${(100 * info.test_accuracy).toFixed(2)}%`;
    document.getElementById("about").textContent =
      `${info.dataset} release (${info.model}), epoch ${info.epoch ?? "?"}, test accuracy ${accuracy}`;
    document.getElementById("classes").textContent = `Classes: ${info.class_names.join(", ")}`;
    if (info.dataset !== "mnist") document.querySelector("h1").textContent = `Draw or upload: ${info.dataset}`;
  } catch (error) {
    status.textContent = `error: cannot load the model (${error.message})`;
  }
}

clearCanvas();
loadInfo();
