// The storefront's form: POST /api/images on the origin that served this page (through the proxy, the
// real routing), then the images, the generation id (leg_… the monolith made it, img_… the image
// service) and the visitor's earlier images, remembered in this browser. No library, no build step.
"use strict";

(function () {
  var HISTORY = "pixel-emporium-images";
  var KEEP = 12;

  function hex(bytes) {
    var out = new Uint8Array(bytes);
    window.crypto.getRandomValues(out);  // works on plain http too, unlike crypto.randomUUID
    return Array.prototype.map.call(out, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // The visitor's key for the proxy's sticky percentage (routes.yaml: sticky_key cookie:uid).
  if (!/(?:^|;\s*)uid=/.test(document.cookie)) {
    document.cookie = "uid=" + hex(16) + "; Path=/; Max-Age=31536000; SameSite=Lax";
  }

  function side(id) {
    if (id.indexOf("img_") === 0) { return "made by the new image service"; }
    if (id.indexOf("leg_") === 0) { return "made by the monolith"; }
    return "made somewhere we do not know";
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function remembered() {
    try {
      var items = JSON.parse(window.localStorage.getItem(HISTORY) || "[]");
      return Array.isArray(items) ? items : [];
    } catch (e) {
      return [];
    }
  }

  function remember(generation) {
    var items = remembered().filter(function (item) { return item.id !== generation.id; });
    items.unshift({ id: generation.id, prompt: generation.prompt, size: generation.size,
                    urls: generation.images.map(function (image) { return image.url; }) });
    window.localStorage.setItem(HISTORY, JSON.stringify(items.slice(0, KEEP)));
  }

  function showHistory() {
    var list = document.getElementById("history");
    var items = remembered();
    list.textContent = "";
    document.getElementById("history-empty").hidden = items.length > 0;
    items.forEach(function (item) {
      var entry = el("li", { "class": "earlier", "data-id": item.id });
      (item.urls || []).forEach(function (url) {
        entry.appendChild(el("img", { src: url, alt: item.prompt, loading: "lazy" }));
      });
      entry.appendChild(el("span", { "class": "caption" }, item.prompt + " · " + item.size));
      entry.appendChild(el("code", { "class": "id" }, item.id));
      list.appendChild(entry);
    });
  }

  function showGeneration(generation) {
    var result = document.getElementById("result");
    result.textContent = "";
    var head = el("p", { "class": "made" });
    head.appendChild(el("code", { id: "generation-id" }, generation.id));
    head.appendChild(document.createTextNode(" " + side(generation.id)));
    result.appendChild(head);
    generation.images.forEach(function (image) {
      result.appendChild(el("img", { src: image.url, alt: generation.prompt, width: String(image.width),
                                     height: String(image.height), "class": "made-image" }));
    });
  }

  var form = document.getElementById("make");
  var status = document.getElementById("status");
  var button = document.getElementById("make-button");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { prompt: form.prompt.value, size: form.size.value };
    button.disabled = true;
    status.textContent = "Making your image…";
    fetch("/api/images", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Idempotency-Key": hex(16) },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (json) { return { ok: response.ok, json: json }; });
    }).then(function (answer) {
      if (!answer.ok) {
        var error = (answer.json && answer.json.error) || {};
        throw new Error(error.message || "the shop could not make it");
      }
      showGeneration(answer.json);
      remember(answer.json);
      showHistory();
      status.textContent = "Here it is.";
    }).catch(function (error) {
      status.textContent = "Sorry: " + error.message;
    }).then(function () {
      button.disabled = false;
    });
  });

  showHistory();
})();
