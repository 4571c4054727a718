// Shared helpers of the studio pages: call the JSON API, show errors, show base64 PNGs.
async function api(path, body) {
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify(body)});
  const data = await response.json().catch(() => ({detail: response.statusText}));
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}
function pngImg(b64, width, id) {
  const img = document.createElement("img");
  img.src = "data:image/png;base64," + b64;
  if (width) img.width = width;
  if (id) img.id = id;
  return img;
}
async function run(button, status, errorBox, work) {
  button.disabled = true; errorBox.textContent = ""; status.textContent = "working...";
  const start = performance.now();
  try {
    const note = await work();
    status.textContent = `done in ${((performance.now() - start) / 1000).toFixed(1)} s${note || ""}`;
  }
  catch (err) { errorBox.textContent = err.message; status.textContent = ""; }
  finally { button.disabled = false; }
}
function value(id) { const v = document.getElementById(id).value.trim(); return v === "" ? null : v; }
function number(id) { const v = value(id); return v === null ? null : Number(v); }
