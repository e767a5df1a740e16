/*
 * graphrec similar-items widget. No build step: include it and mark up an element.
 *
 *   <div class="graphrec-similar" data-item-id="50" data-first="6"
 *        data-endpoint="/graphql" data-api-key="grk_... (an interact key)" data-user-id="u42"></div>
 *   <script src="/widget/similar-items.js" defer></script>
 *
 * It renders the item's similar items (title, categories, reason) and records a CLICK
 * interaction when one is clicked. Without data-user-id an anonymous id is kept in localStorage.
 *
 * Keys in public HTML: with anonymous reads on (api.anonymous_read) the widget reads with no key;
 * for clicks give data-api-key an `interact` key, which may only record interactions and only
 * from the origins it was made for:
 *   graphrec apikey create --scopes interact --origins https://shop.example
 * Never put a `write` key in a page: it can also change items and users.
 */
(function () {
  "use strict";
  var QUERY = "query Similar($itemId: ID!, $first: Int!) { similarItems(itemId: $itemId, first: $first) " +
    "{ requestId degraded items { rank reason item { id title categories } } } }";
  var CLICK = "mutation Click($input: InteractionInput!) { recordInteraction(input: $input) { key stored } }";

  function userId(el) {
    if (el.dataset.userId) return el.dataset.userId;
    var k = "graphrec-anon-id", id = null;
    try { id = window.localStorage.getItem(k); } catch (e) { /* private mode */ }
    if (!id) {
      id = "anon-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
      try { window.localStorage.setItem(k, id); } catch (e) { /* ignore */ }
    }
    return id;
  }

  // A 503 (OVERLOADED) or 429 (RATE_LIMITED) answer was refused before any work was done, so the
  // request (a click too) is sent once more after Retry-After (1 s when unreadable, at most 5 s).
  function gql(el, query, variables, retried) {
    var headers = { "Content-Type": "application/json" };
    if (el.dataset.apiKey) headers["Authorization"] = "Bearer " + el.dataset.apiKey;
    return fetch(el.dataset.endpoint || "/graphql", {
      method: "POST", headers: headers, body: JSON.stringify({ query: query, variables: variables })
    }).then(function (r) {
      if ((r.status === 503 || r.status === 429) && !retried) {
        var wait = Math.min(Math.max(parseFloat(r.headers.get("Retry-After")) || 1, 0), 5);
        return new Promise(function (done) { setTimeout(done, wait * 1000); })
          .then(function () { return gql(el, query, variables, true); });
      }
      return r.json().then(function (body) {
        if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
        return body.data;
      });
    });
  }

  function text(tag, value, cls) {
    var n = document.createElement(tag);
    n.textContent = value == null ? "" : String(value);  // never innerHTML: titles are data
    if (cls) n.className = cls;
    return n;
  }

  function render(el, data) {
    var list = document.createElement("ul");
    list.className = "graphrec-list";
    data.similarItems.items.forEach(function (rec) {
      var li = document.createElement("li");
      li.className = "graphrec-item";
      li.setAttribute("data-graphrec-item", rec.item.id);
      li.tabIndex = 0;
      li.appendChild(text("strong", rec.item.title || rec.item.id, "graphrec-title"));
      li.appendChild(text("span", rec.item.categories.join(", "), "graphrec-categories"));
      if (rec.reason) li.appendChild(text("em", rec.reason, "graphrec-reason"));
      li.addEventListener("click", function () {
        li.classList.add("graphrec-clicked");
        gql(el, CLICK, { input: { userId: userId(el), itemId: rec.item.id, type: "CLICK",
                                  sessionId: el.dataset.sessionId || null } })
          .then(function (res) { el.dispatchEvent(new CustomEvent("graphrec:click", { detail: res.recordInteraction })); })
          .catch(function (e) { el.dispatchEvent(new CustomEvent("graphrec:error", { detail: e.message })); });
      });
      list.appendChild(li);
    });
    el.innerHTML = "";
    el.appendChild(list);
    el.setAttribute("data-graphrec-state", "rendered");
  }

  function mount(el) {
    if (el.getAttribute("data-graphrec-state")) return;
    el.setAttribute("data-graphrec-state", "loading");
    var first = parseInt(el.dataset.first || "6", 10);
    gql(el, QUERY, { itemId: el.dataset.itemId, first: first })
      .then(function (data) { render(el, data); })
      .catch(function (e) {
        el.setAttribute("data-graphrec-state", "error");
        el.textContent = "Recommendations are unavailable right now.";
        el.dispatchEvent(new CustomEvent("graphrec:error", { detail: e.message }));
      });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-item-id].graphrec-similar"), mount);
  }
  window.graphrecSimilarItems = { init: init, mount: mount };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
